"""Forward mode: native jvps, the double-vjp fallback, nesting, every op.

Test plugins use op names starting with ``tfm_`` and are always unregistered.
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.forward_mode import native_jvp_ops
from tapegrad.testing import check_op_all_modes

OPS = [info for info in tg.list_ops() if info.differentiable]
RNG = np.random.default_rng(5)


# ----------------------------------------------------------------------- values


def test_jvp_of_product_rule():
    x = np.array([1.0, 2.0, 3.0])
    v = np.array([1.0, 0.5, -1.0])
    out, t = tg.jvp(lambda a: tg.ops.sin(a) * a, (x,), (v,))
    assert isinstance(out, np.ndarray) and isinstance(t, np.ndarray)
    np.testing.assert_allclose(out, np.sin(x) * x)
    np.testing.assert_allclose(t, (np.cos(x) * x + np.sin(x)) * v)


def test_jvp_of_matmul_and_reductions():
    A = RNG.standard_normal((3, 4))
    B = RNG.standard_normal((4, 2))
    dA = RNG.standard_normal((3, 4))
    dB = RNG.standard_normal((4, 2))
    _, t = tg.jvp(lambda a, b: (a @ b).sum(axis=0), (A, B), (dA, dB))
    np.testing.assert_allclose(t, (dA @ B + A @ dB).sum(axis=0))
    _, t = tg.jvp(lambda a: a.mean(), (A,), (dA,))
    assert t == pytest.approx(dA.mean())


def test_jvp_of_shaping_ops():
    x = RNG.standard_normal((2, 3))
    v = RNG.standard_normal((2, 3))
    _, t = tg.jvp(lambda a: a.T.reshape(6)[1:4], (x,), (v,))
    np.testing.assert_allclose(t, v.T.reshape(6)[1:4])


def test_jvp_with_a_none_tangent_is_a_partial_derivative():
    a, b = 2.0, 5.0
    _, t = tg.jvp(lambda x, y: x * x * y, (a, b), (1.0, None))
    assert t == pytest.approx(2 * a * b)


def test_jvp_equals_jacobian_times_tangent():
    A = RNG.standard_normal((3, 3))
    f = lambda x: tg.ops.exp(A @ x) / (1.0 + (x * x).sum())
    x = RNG.standard_normal(3)
    v = RNG.standard_normal(3)
    _, t = tg.jvp(f, (x,), (v,))
    np.testing.assert_allclose(t, tg.jacobian(f)(x) @ v, rtol=1e-12)


def test_jvp_checks_tangent_shape():
    with pytest.raises(ValueError, match="shape"):
        tg.jvp(lambda a: a * 2, (np.ones(3),), (np.ones(4),))


def test_native_jvps_are_declared_for_core_builtins():
    native = set(native_jvp_ops())
    for name in ("add", "sub", "mul", "div", "neg", "pow", "matmul", "abs", "sum", "mean",
                 "max", "min", "reshape", "transpose", "getitem", "where", "concatenate"):
        assert name in native


# ----------------------------------------------------------------------- fallback


def test_op_without_jvp_uses_its_vjp(register):
    calls = []

    def cube_vjp(g, out, x):
        calls.append(1)
        return g * 3 * x * x

    register(tg.OpDef("tfm_cube", lambda x: x ** 3, cube_vjp))
    assert tg.get_op("tfm_cube").jvp is None
    x = np.array([1.0, -2.0])
    v = np.array([0.5, 2.0])
    out, t = tg.jvp(tg.ops.tfm_cube, (x,), (v,))
    np.testing.assert_allclose(out, x ** 3)
    np.testing.assert_allclose(t, 3 * x * x * v)
    assert calls  # the vjp did the work


def test_declared_jvp_is_used(register):
    register(tg.OpDef("tfm_twice", lambda x: 2 * x, lambda g, out, x: 2 * g,
                      jvp=lambda ts, out, x: 2 * ts[0] + 100.0))  # deliberately off
    _, t = tg.jvp(tg.ops.tfm_twice, (1.0,), (1.0,))
    assert t == pytest.approx(102.0)
    with pytest.raises(tg.GradcheckError, match="forward-mode"):
        tg.check_grads(tg.ops.tfm_twice, np.array([1.0, 2.0]), modes=("fwd",))
    tg.check_grads(tg.ops.tfm_twice, np.array([1.0, 2.0]), modes=("rev",))


def test_raw_numpy_vjp_in_nested_forward_mode_says_so(register):
    register(tg.OpDef("tfm_raw_sin", np.sin,
                      lambda g, out, x: g * np.asarray(np.cos(np.asarray(x)))))
    # outermost forward mode only needs the vjp to be linear in g: it works
    _, t = tg.jvp(tg.ops.tfm_raw_sin, (0.5,), (2.0,))
    assert t == pytest.approx(2 * np.cos(0.5))
    # differentiating that jvp again needs the vjp to be differentiable in x
    with pytest.raises(tg.DifferentiabilityError, match="tfm_raw_sin"):
        tg.grad(lambda x: tg.jvp(tg.ops.tfm_raw_sin, (x,), (1.0,))[1])(0.5)


# ----------------------------------------------------------------------- nesting


def test_forward_over_reverse_hessian_vector_product():
    f = lambda x: (tg.ops.sin(x) * x * x).sum()
    x = np.array([0.3, 1.1, -0.7])
    v = np.array([1.0, -2.0, 0.5])
    _, hv = tg.jvp(tg.grad(f), (x,), (v,))
    # f = sum x^2 sin x: diagonal Hessian 2 sin x + 4 x cos x - x^2 sin x
    diag = 2 * np.sin(x) + 4 * x * np.cos(x) - x * x * np.sin(x)
    np.testing.assert_allclose(hv, diag * v, rtol=1e-12)


def test_reverse_over_forward():
    v = np.array([1.0, 2.0])
    g = tg.grad(lambda x: tg.jvp(lambda a: (a * a * a).sum(), (x,), (v,))[1])
    x = np.array([0.5, -1.0])
    np.testing.assert_allclose(g(x), 6 * x * v)


def test_forward_over_forward():
    x = np.array([0.2, 0.9])
    v = np.array([1.0, 3.0])
    inner = lambda a: tg.jvp(tg.ops.sin, (a,), (v,))[1]
    _, t = tg.jvp(inner, (x,), (v,))
    np.testing.assert_allclose(t, -np.sin(x) * v * v)


# ----------------------------------------------------------------------- every op


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_every_op_forward_mode(info):
    check_op_all_modes(info, order=1, modes=("fwd",), rng=np.random.default_rng(13))


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_every_op_forward_over_reverse(info):
    check_op_all_modes(info, order=2, modes=("fwd",), rng=np.random.default_rng(17))
