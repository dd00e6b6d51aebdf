"""Core engine properties: graph lifetime, retain_graph, tapes, dtypes, plugins, indexing.

Every assertion is a number, a type or a message checked against an analytic value.
Test plugins use op names starting with ``te_`` and are always unregistered.
"""

from __future__ import annotations

import gc
import tracemalloc
import uuid
import weakref

import numpy as np
import pytest

import tapegrad as tg

# ----------------------------------------------------------------------- helpers


def _plugin(*opdefs, hook_name="tapegrad_ops"):
    """An object plugin whose ``tapegrad_ops`` hook returns ``opdefs``."""

    class P:
        pass

    def hook():
        return list(opdefs)

    hook.__name__ = hook_name
    setattr(P, hook_name, staticmethod(tg.hookimpl(hook)))
    return P()


@pytest.fixture
def plugins():
    """Register plugins by name; unregister them all after the test."""
    names = []

    def register(plugin, name=None):
        name = name or f"te-{uuid.uuid4().hex[:8]}"
        got = tg.register_plugin(plugin, name=name)
        names.append(got)
        return got

    yield register
    for n in names:
        if tg.plugin_manager().has_plugin(n):
            tg.unregister_plugin(n)


def _still_works():
    x = tg.tensor([1.0, -2.0, 3.0], requires_grad=True)
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * np.array([1.0, 4.0, 9.0]))


# ----------------------------------------------------------------------- backward


def test_second_backward_without_retain_graph_raises_and_says_so():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()
    np.testing.assert_allclose(x.grad, [2.0, 4.0])  # the failed call added nothing


def test_retain_graph_allows_a_second_backward_that_accumulates():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x.exp()).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    expected = np.exp([1.0, 2.0]) * (1 + np.array([1.0, 2.0]))
    np.testing.assert_allclose(first, expected)
    np.testing.assert_allclose(x.grad, 2 * expected)


def test_backward_with_grad_for_non_scalar_output():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * x
    y.backward(np.array([1.0, 0.5, -1.0]))
    np.testing.assert_allclose(x.grad, [2.0, 2.0, -6.0])


def test_backward_without_grad_on_non_scalar_raises_value_error():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"exactly one element.*\(2,\)"):
        (x * 2).backward()


def test_backward_on_size_one_non_scalar_needs_no_grad():
    x = tg.tensor([[3.0]], requires_grad=True)
    (x * x).backward()
    np.testing.assert_allclose(x.grad, [[6.0]])


def test_leaf_gradients_never_alias_each_other_or_the_seed():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    seed = np.array([1.0, 1.0])
    (a + b).backward(seed)  # add's vjp hands the same g to both inputs
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)
    (a * 2).backward(np.array([10.0, 10.0]))
    np.testing.assert_array_equal(a.grad, [21.0, 21.0])
    np.testing.assert_array_equal(b.grad, [1.0, 1.0])
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.backward(seed)
    x.backward(seed)  # backward on the leaf itself: the seed is its gradient
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])
    np.testing.assert_array_equal(seed, [1.0, 1.0])


@pytest.mark.parametrize("build", [
    lambda x: x.sum(), lambda x: x.mean(), lambda x: (x + np.zeros((4, 2, 3))).sum(),
    lambda x: x.T.sum(), lambda x: x[0].sum(),
], ids=["sum", "mean", "broadcast", "transpose", "index"])
def test_leaf_gradient_is_a_writable_array_of_its_own(build):
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    build(x).backward()
    g = x.grad
    assert type(g) is np.ndarray and g.shape == (2, 3) and g.flags.writeable
    assert 0 not in g.strides  # not a broadcast view
    before = g.copy()
    g[...] = 0.0  # users and optimizers may write into .grad
    build(x).backward()
    np.testing.assert_array_equal(x.grad, before)


def test_no_grad_records_nothing():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = x * 3
        assert not tg.is_grad_enabled()
    assert tg.is_grad_enabled()
    assert not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()
    with tg.no_grad():
        with tg.enable_grad():
            z = (x * 3).sum()
    z.backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])


def test_no_grad_as_decorator():
    @tg.no_grad()
    def f(t):
        return t * 2

    x = tg.tensor(1.0, requires_grad=True)
    assert not f(x).requires_grad
    assert (x * 2).requires_grad


# ----------------------------------------------------------------------- tapes


def test_tape_gradient_zero_for_unrelated_source():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    u = tg.tensor([5.0, 6.0, 7.0], requires_grad=True)
    with tg.Tape() as tape:
        y = (x * x).sum()
    gx, gu = tape.gradient(y, [x, u])
    np.testing.assert_allclose(gx, [2.0, 4.0])
    np.testing.assert_array_equal(gu, np.zeros(3))
    assert gu.shape == (3,)


def test_tape_single_source_returns_an_array():
    x = tg.tensor(3.0)
    with tg.Tape() as tape:
        tape.watch(x)
        y = x * x * x
    g = tape.gradient(y, x)
    assert isinstance(g, np.ndarray)
    assert float(g) == pytest.approx(27.0)
    assert x.grad is None  # tape.gradient returns, it does not accumulate


def test_non_persistent_tape_reuse_raises():
    x = tg.tensor(2.0, requires_grad=True)
    with tg.Tape() as tape:
        y = x * x
    assert float(tape.gradient(y, x)) == 4.0
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, x)


def test_persistent_tape_answers_twice():
    x = tg.tensor(2.0, requires_grad=True)
    with tg.Tape(persistent=True) as tape:
        y = x * x
        z = y * x
    assert float(tape.gradient(y, x)) == 4.0
    assert float(tape.gradient(z, x)) == 12.0


def test_tape_gradient_for_intermediate_source():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as tape:
        h = x * 3
        y = (h * h).sum()
    np.testing.assert_allclose(tape.gradient(y, h), 2 * np.array([3.0, 6.0]))


def test_tape_gradient_of_target_made_after_the_tape_closed_is_not_silently_zero():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.Tape() as tape:
        a = x * x
    target = a.sum()  # recorded, but not on this tape
    try:
        g = tape.gradient(target, x)
    except (RuntimeError, ValueError) as exc:
        assert "tape" in str(exc).lower()
        return
    np.testing.assert_allclose(g, [2.0, 4.0])


# ----------------------------------------------------------------------- graph lifetime


def test_million_op_chain_backpropagates_without_recursion_error():
    x = tg.tensor(0.5, requires_grad=True)
    y = x
    for _ in range(1_000_000):
        y = y * 1.0000001
    y.backward()
    assert float(x.grad) == pytest.approx(1.0000001 ** 1_000_000, rel=1e-9)


def _mlp_forward(params, xb):
    w1, b1, w2, b2 = params
    h = (xb @ w1 + b1).tanh()
    return ((h @ w2 + b2) ** 2).mean()


def test_graphs_whose_outputs_are_dropped_are_freed():
    rng = np.random.default_rng(0)
    params = [tg.tensor(rng.standard_normal(s), requires_grad=True)
              for s in [(8, 64), (64,), (64, 1), (1,)]]
    xb = rng.standard_normal((32, 8))
    for _ in range(5):  # warm caches
        _mlp_forward(params, xb)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            loss = _mlp_forward(params, xb)
        del loss
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    # one pass keeps ~50 KB of saved arrays alive; 200 leaked passes would be ~10 MB
    assert grown < 500_000, f"memory grew by {grown} bytes over 200 dropped graphs"


def test_dropping_the_output_frees_its_graph_without_the_cycle_collector():
    x = tg.tensor(np.ones(3), requires_grad=True)
    mid = x * 2
    y = mid.exp()
    refs = [weakref.ref(mid._node), weakref.ref(y), weakref.ref(mid.data)]
    del mid
    assert refs[0]() is not None, "the graph of y still needs the record of x * 2"
    gc.disable()
    try:
        del y  # reference counting alone: the graph holds no cycles
        assert [r() for r in refs] == [None, None, None]
    finally:
        gc.enable()


def test_backward_frees_saved_arrays():
    x = tg.tensor(np.arange(4.0), requires_grad=True)
    h = x * 2.0
    saved = weakref.ref(h.data)
    y = (h * h).sum()  # mul saves h.data for its vjp
    del h
    gc.collect()
    assert saved() is not None, "the graph must keep what its vjp needs until backward"
    y.backward()
    gc.collect()
    assert saved() is None, "backward without retain_graph must free saved arrays"
    np.testing.assert_allclose(x.grad, 8 * np.arange(4.0))


def test_retain_graph_keeps_saved_arrays():
    x = tg.tensor(np.arange(4.0), requires_grad=True)
    h = x * 2.0
    saved = weakref.ref(h.data)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    gc.collect()
    assert saved() is not None


# ----------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("build", [
    lambda x: (x * x).sum(),
    lambda x: (x.exp() / (1.0 + x * x)).mean(),
    lambda x: (x @ x.T).tanh().sum(),
    lambda x: (2.0 ** x + np.ones((2, 3), dtype=np.float32) * x).max(),
    lambda x: (x[:, 1:] * x.mean(axis=0)[1:]).sigmoid().relu().sum(),
], ids=["mul", "exp_div", "matmul", "pow_max", "getitem_mean"])
def test_float32_gradients_stay_float32(build):
    x = tg.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    out = build(x)
    assert out.dtype == np.float32
    out.backward()
    assert x.grad.dtype == np.float32
    assert x.grad.shape == (2, 3)


def test_float32_stays_float32_through_python_scalars():
    x = tg.tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = (2.5 * x + 1.0) ** 2 / 3.0
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2 * (2.5 * np.array([1.0, 2.0]) + 1) * 2.5 / 3,
                               rtol=1e-6)


def test_python_floats_default_to_float64():
    assert tg.tensor(1.5).dtype == np.float64
    assert tg.tensor([1.0, 2.0]).dtype == np.float64
    assert tg.tensor(np.ones(2, dtype=np.float32)).dtype == np.float32


@pytest.mark.parametrize("data", [[1, 2], np.arange(3), True, np.array([1], dtype=np.int8)])
def test_requires_grad_on_integer_or_bool_raises_type_error(data):
    with pytest.raises(TypeError, match="float"):
        tg.tensor(data, requires_grad=True)


def test_requires_grad_setter_on_integer_raises():
    t = tg.tensor([1, 2])
    with pytest.raises(TypeError, match="int64"):
        t.requires_grad = True


# ----------------------------------------------------------------------- plugins


def test_duplicate_op_name_from_two_plugins_is_refused_naming_both(plugins):
    name = f"te_dup_{uuid.uuid4().hex[:6]}"
    first = _plugin(tg.OpDef(name, lambda x: x * 2, lambda g, out, x: 2 * g))
    second = _plugin(tg.OpDef(name, lambda x: x * 3, lambda g, out, x: 3 * g))
    p1 = plugins(first, name="te-first-src")
    with pytest.raises(tg.PluginError) as err:
        plugins(second, name="te-second-src")
    msg = str(err.value)
    assert name in msg and "te-first-src" in msg and "te-second-src" in msg
    assert not tg.plugin_manager().has_plugin("te-second-src")
    assert tg.get_op(name).source == p1
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = getattr(tg.ops, name)(x)
    np.testing.assert_allclose(y.data, [2.0, 4.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [2.0, 2.0])


def test_plugin_clashing_with_builtin_op_is_refused(plugins):
    clash = _plugin(tg.OpDef("exp", np.sin, lambda g, out, x: g * np.cos(x)))
    with pytest.raises(tg.PluginError, match="exp.*twice"):
        plugins(clash, name="te-exp-clash")
    x = tg.tensor(1.0, requires_grad=True)
    x.exp().backward()
    assert float(x.grad) == pytest.approx(np.e)


def test_vjp_returning_wrong_number_of_gradients_names_op_and_source(plugins):
    name = f"te_count_{uuid.uuid4().hex[:6]}"
    plugins(_plugin(tg.OpDef(name, np.add, lambda g, out, a, b: (g,))), name="te-count-src")
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = getattr(tg.ops, name)(x, x).sum()
    with pytest.raises(tg.OpRuleError) as err:
        y.backward()
    assert isinstance(err.value, ValueError)
    assert name in str(err.value) and "te-count-src" in str(err.value)
    assert "1" in str(err.value) and "2" in str(err.value)
    _still_works()


def test_vjp_returning_unsummable_shape_names_op_and_source(plugins):
    name = f"te_shape_{uuid.uuid4().hex[:6]}"
    plugins(_plugin(tg.OpDef(name, np.sin, lambda g, out, x: np.ones(5))), name="te-shape-src")
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(tg.OpRuleError) as err:
        getattr(tg.ops, name)(x).sum().backward()
    msg = str(err.value)
    assert name in msg and "te-shape-src" in msg and "(5,)" in msg and "(2,)" in msg
    _still_works()


def test_vjp_gradient_of_a_shape_the_call_never_broadcast_to_is_refused(plugins):
    name = f"te_bcast_{uuid.uuid4().hex[:6]}"
    # a (3,) input, a (3,) output, and a (4, 3) gradient: summing it would be silently
    # wrong (4x), since nothing in the call was broadcast to (4, 3)
    plugins(_plugin(tg.OpDef(name, lambda x: x * 1.0,
                             lambda g, out, x: np.broadcast_to(g, (4, 3)))))
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(tg.OpRuleError, match=rf"{name}.*\(4, 3\)"):
        getattr(tg.ops, name)(x).sum().backward()


def test_vjp_gradient_of_the_calls_broadcast_shape_is_summed_back(plugins):
    name = f"te_bcast2_{uuid.uuid4().hex[:6]}"
    plugins(_plugin(tg.OpDef(name, lambda a, b: (a * b).sum(),
                             lambda g, out, a, b: (g * b, g * a))))
    a = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    b = np.arange(12.0).reshape(4, 3)
    getattr(tg.ops, name)(a, b).backward()
    np.testing.assert_allclose(a.grad, b.sum(axis=0))


@pytest.mark.parametrize("call, names", [
    (lambda x: tg.ops.tanh(x, axis=0), ["tanh", "axis"]),      # an op without params
    (lambda x: tg.ops.mul(x, x, 3), ["mul", "3 were given"]),
    (lambda x: tg.ops.sum(x, bogus=1), ["sum", "bogus"]),       # an op with params
    (lambda x: tg.ops.sum(x, 0, 1, 2), ["sum"]),
])
def test_wrong_arguments_to_an_op_raise_type_error_naming_it(call, names):
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    with pytest.raises(TypeError) as err:
        call(x)
    for name in names:
        assert name in str(err.value)
    _still_works()


def test_unknown_op_name_raises_key_error_with_close_matches():
    with pytest.raises(KeyError) as err:
        tg.get_op("tahn")
    assert isinstance(err.value, tg.UnknownOpError)
    assert "tanh" in str(err.value)
    with pytest.raises(KeyError, match="sigmoid"):
        tg.get_op("sigmod")
    with pytest.raises(AttributeError, match="exp"):
        tg.ops.exq  # noqa: B018


def test_list_ops_reports_name_source_nargs():
    infos = {i.name: i for i in tg.list_ops()}
    assert infos["add"].nargs == 2 and infos["exp"].nargs == 1
    assert "arithmetic" in infos["add"].source
    assert [i.name for i in tg.list_ops()] == sorted(infos)


# ----------------------------------------------------------------------- ops semantics


def test_integer_array_indexing_with_repeated_indices_accumulates():
    x = tg.tensor([10.0, 20.0, 30.0, 40.0], requires_grad=True)
    y = x[np.array([0, 2, 2, 2, 3])]
    np.testing.assert_array_equal(y.data, [10.0, 30.0, 30.0, 30.0, 40.0])
    (y * np.array([1.0, 2.0, 3.0, 4.0, 5.0])).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 9.0, 5.0])


def test_two_dimensional_fancy_indexing_accumulates():
    x = tg.tensor(np.zeros((2, 3)), requires_grad=True)
    x[np.array([0, 1, 0]), np.array([2, 2, 2])].sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0, 2], [0, 0, 1]])


def test_basic_slicing_gradient():
    x = tg.tensor(np.arange(12.0).reshape(3, 4), requires_grad=True)
    x[1:, ::2].sum().backward()
    expected = np.zeros((3, 4))
    expected[1:, ::2] = 1
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("op", ["max", "min"])
def test_extremum_ties_split_the_gradient_evenly(op):
    x = tg.tensor([1.0, 5.0, 5.0, 5.0, -1.0] if op == "max" else [1.0, -5.0, 0.0, -5.0],
                  requires_grad=True)
    getattr(x, op)().backward()
    expected = [0, 1 / 3, 1 / 3, 1 / 3, 0] if op == "max" else [0, 0.5, 0, 0.5]
    np.testing.assert_allclose(x.grad, expected)


def test_max_along_axis_ties_split_per_row():
    x = tg.tensor([[2.0, 2.0, 1.0], [0.0, 3.0, -1.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]])


def test_comparisons_return_plain_bool_arrays():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    other = tg.tensor([3.0, 2.0, 1.0])
    results = [x < 2, x <= 2, x > 2, x >= 2, x == 2, x != 2, x < other]
    for r in results:
        assert type(r) is np.ndarray and r.dtype == bool
    np.testing.assert_array_equal(results[0], [True, False, False])
    np.testing.assert_array_equal(results[4], [False, True, False])
    np.testing.assert_array_equal(results[6], [True, False, False])


def test_reflected_ops_with_ndarrays_and_scalars():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    terms = [np.ones(3) + x, 2 * x, x + np.ones(3), np.full(3, 10.0) - x,
             np.full(3, 6.0) / x, 2.0 ** x, np.ones(3) * x]
    for t in terms:
        assert isinstance(t, tg.Tensor) and t.requires_grad
    np.testing.assert_allclose(terms[0].data, [2.0, 3.0, 4.0])
    np.testing.assert_allclose(terms[3].data, [9.0, 8.0, 7.0])
    total = terms[0] + terms[1] + terms[2] + terms[3] + terms[4] + terms[5] + terms[6]
    total.sum().backward()
    xs = np.array([1.0, 2.0, 3.0])
    expected = 1 + 2 + 1 - 1 - 6 / xs ** 2 + np.log(2) * 2.0 ** xs + 1
    np.testing.assert_allclose(x.grad, expected)


def test_reflected_matmul_with_ndarray():
    w = tg.tensor(np.eye(2) * 2, requires_grad=True)
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = a @ w
    assert isinstance(out, tg.Tensor)
    out.sum().backward()
    np.testing.assert_allclose(w.grad, a.T @ np.ones((2, 2)))


def test_len_repr_item_T_detach():
    x = tg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True, name="x")
    assert len(x) == 2
    with pytest.raises(TypeError):
        len(tg.tensor(1.0))
    r = repr(x)
    assert "1." in r and "6." in r and "requires_grad=True" in r and "'x'" in r
    assert x.T.shape == (3, 2)
    np.testing.assert_array_equal(x.T.data, x.data.T)
    s = x.sum()
    assert s.item() == 21.0 and isinstance(s.item(), float)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    np.testing.assert_array_equal(d.data, 2 * x.data)
    (x.T * np.array([[1.0], [2.0], [3.0]])).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 2, 3], [1, 2, 3]])
    assert "grad=" in repr(x)


def test_detach_shares_data_without_copy():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    d = x.detach()
    assert np.shares_memory(d.data, x.data)
    assert x.data is x.data  # .data is never copied behind the user's back


def test_tensor_copies_its_input():
    a = np.array([1.0, 2.0])
    t = tg.tensor(a)
    a[0] = 99.0
    assert t.data[0] == 1.0


def test_numpy_functions_on_tensors_record():
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    y = np.sum(np.exp(x) * np.tanh(x))
    assert isinstance(y, tg.Tensor)
    y.backward()
    xs = np.array([0.5, 1.0])
    np.testing.assert_allclose(x.grad, np.exp(xs) * (np.tanh(xs) + 1 - np.tanh(xs) ** 2))


def test_numpy_function_without_op_on_tracked_tensor_refuses():
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    with pytest.raises(TypeError, match="np.unwrap"):
        np.unwrap(x)
