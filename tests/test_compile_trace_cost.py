"""tg.compile's tracing shortcuts: what the tracer aliases as it records (identity
views, products by one, repeated calls), the collector paused while tracing, and a
plan that the reference counts alone free."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.compiler import HOOKED, HOT
from tapegrad.compiler.steps import Step

pytestmark = pytest.mark.skipif(not HOOKED, reason="the engine has no trace hook")


def run_all(f, want):
    """The compiled ``f`` (``f`` takes an array, a Tensor while traced) on ``X``
    (traced) then on ``Y`` (the flat loop, then the generated code): ``want(x)`` each
    time. The compiled function."""
    c = tg.compile(f)
    np.testing.assert_allclose(c(X), want(X), rtol=1e-12)
    for _ in range(HOT):
        np.testing.assert_allclose(c(Y), want(Y), rtol=1e-12)
    assert c.plans[0].generated and c.cache_info().misses == 1
    return c


X = np.array([0.5, -1.25, 2.0])
Y = np.array([1.5, 0.25, -0.75])


def names(c):
    return [s.name for s in c.plans[0].steps]


def test_repeated_call_is_one_step():
    c = run_all(lambda x: x * x + x * x, lambda x: 2 * x * x)
    assert names(c) == ["mul", "add"]  # the second product is the first one


def test_calls_differing_in_a_constant_or_param_stay_apart():
    def f(x):
        u = x * 2.0 + x * 3.0  # floats: by value
        v = x * np.full(3, 2.0) + x * np.full(3, 2.0)  # arrays: by identity
        return u + v + tg.ops.sum(x, axis=0) + tg.ops.sum(x)

    c = run_all(f, lambda x: 9 * x + 2 * x.sum())
    assert names(c).count("mul") == 4 and names(c).count("sum") == 2, names(c)


def test_products_by_one_and_identity_views_are_aliases():
    ones, almost = np.ones(3), np.array([1.0, 1.0, 2.0])
    c = run_all(lambda x: (x * 1.0) * ones + (x * almost).reshape(3) / 1,
                lambda x: x + x * almost)
    # Only the product by [1, 1, 2] (its first element is 1) and the sum are left.
    assert names(c) == ["mul", "add"]


def test_value_and_grad_with_repeats():
    # tanh's vjp recomputes out * out: the forward's square.
    vg = tg.value_and_grad(lambda x: tg.ops.sum(tg.ops.tanh(x) * tg.ops.tanh(x)))
    c = tg.compile(vg)
    for z in (X, Y, Y, Y):
        t = np.tanh(z)
        v, g = c(z)
        np.testing.assert_allclose(v, np.sum(t * t), rtol=1e-12)
        np.testing.assert_allclose(g, 2 * t * (1 - t * t), rtol=1e-12)
    assert names(c).count("tanh") == 1


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_is_restored(enabled):
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()
        c = tg.compile(lambda x: x * 2.0)
        np.testing.assert_allclose(c(X), 2 * X)
        assert gc.isenabled() is enabled
        with pytest.raises(tg.CompileError):  # a value leaving for Python: refused
            tg.compile(lambda x: x * float(tg.ops.sum(x)))(X)
        assert gc.isenabled() is enabled
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


def n_steps_alive():
    return sum(type(o) is Step for o in gc.get_objects())


def test_plan_is_freed_without_the_collector():
    was = gc.isenabled()
    gc.disable()
    try:
        before = n_steps_alive()
        c = tg.compile(tg.value_and_grad(lambda x: tg.ops.sum(tg.ops.sin(x) * x)))
        c(X)
        plan = weakref.ref(c.plans[0])
        assert n_steps_alive() > before
        del c
        assert plan() is None and n_steps_alive() == before
    finally:
        if was:
            gc.enable()
