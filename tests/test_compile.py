"""tg.compile: a traced plan replays what the eager function computes, on later inputs.

Every check compares the compiled function with the eager one on inputs other than the
ones it was traced with: a value frozen into the plan at trace time shows up as a
mismatch. Plans run as a flat loop on their first calls and as generated code once hot;
both are checked.
"""

from __future__ import annotations

import re
from collections import namedtuple

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import tree
from tapegrad.compiler import HOOKED, HOT, not_compilable
from tapegrad.gradcheck import op_samples

HERE = __file__
pytestmark = pytest.mark.skipif(not HOOKED, reason="the engine has no trace hook")


def assert_tree_close(got, want, rtol=1e-10, atol=1e-12):
    gl, gd = tree.flatten(got)
    wl, wd = tree.flatten(want)
    assert gd == wd, (gd, wd)
    for g, w in zip(gl, wl, strict=True):
        assert isinstance(g, np.ndarray) or np.isscalar(g), type(g)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)


def check_replays(F, trace_args, later_args, rtol=1e-10, atol=1e-12, guarded=False):
    """Trace ``tg.compile(F)`` on ``trace_args``; on each of ``later_args`` the first
    plan (vjps called whole), the flat plan and the generated plan (rules expanded)
    all equal eager ``F``. ``guarded``: the later calls may fail a guard of the plan (a
    rule's branch, a value-dependent dtype) and run eagerly; the plan itself then runs
    on the traced values."""
    first = tg.compile(F)
    first(*trace_args)
    assert_tree_close(first(*later_args[0]), F(*later_args[0]), rtol, atol)
    C = tg.compile(F)
    assert_tree_close(C(*trace_args), F(*trace_args), rtol, atol)
    if guarded:
        for _ in range(HOT):
            assert_tree_close(C(*trace_args), F(*trace_args), rtol, atol)
        assert C.plans[0].generated and C.cache_info().eager == 0
    for args in later_args:
        want = F(*args)
        for _ in range(HOT):  # the flat loop first, then the generated code
            assert_tree_close(C(*args), want, rtol, atol)
    info = C.cache_info()
    assert info.misses == 1 and (guarded or info.eager == 0), info
    assert C.plans[0].generated
    return C


def line_of(text):
    """The line number of ``text`` in this file."""
    with open(HERE) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError(text)


# ----------------------------------------------------------------------- every op


def _permuted(x, rng):
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc" and x.size > 1:
        x = rng.permutation(x.reshape(-1)).reshape(x.shape)
    return _nudged(x, rng)


def _nudged(x, rng):
    if isinstance(x, np.ndarray) and x.dtype.kind in "fc":
        return np.asarray(x * (1 + 0.01 * rng.uniform(-1, 1, x.shape))).astype(x.dtype)
    return x


def _objective(info, params, weights):
    """``sum(out_k * w_k)`` (real part) over the op's floating outputs."""
    def L(*xs):
        out = info.call(*([list(xs)] if info.variadic else xs), **params)
        total = 0.0
        for o, w in zip(out if isinstance(out, tuple) else (out,), weights, strict=True):
            if w is not None:
                total = total + np.real(o * w).sum()
        return total
    return L


def _cases(info, order):
    """(function of the sample's floating inputs, inputs, later inputs) per sample."""
    rng = np.random.default_rng(0)
    for inputs, params in op_samples(info, rng):
        seq = list(inputs[0]) if info.variadic else list(inputs)
        nums = tuple(i for i, a in enumerate(seq)
                     if isinstance(a, np.ndarray) and a.dtype.kind in "fc"
                     and (info.variadic or i not in info.definition.nondiff))
        if not nums:
            continue
        out = info.call(*([seq] if info.variadic else seq), **params)
        weights = [rng.standard_normal(o.shape) if o.dtype.kind in "fc" else None
                   for o in (out if isinstance(out, tuple) else (out,))]
        L = _objective(info, params, weights)
        F = tg.value_and_grad(L, argnums=nums)
        if order == 2:  # a Hessian-vector product: grad of <grad L, v>
            vs = [rng.standard_normal(np.shape(seq[i])) for i in nums]
            g = tg.grad(L, argnums=nums)
            F = tg.grad(lambda *xs, g=g, vs=vs: sum(np.real(gi * v).sum()
                                                     for gi, v in zip(g(*xs), vs, strict=True)),
                        argnums=nums)
        later = None
        for how in (_permuted, _nudged):  # new values (masks flip), else nearby ones
            cand = [how(a, rng) for a in seq]
            try:
                with np.errstate(all="ignore"):
                    want = F(*cand)
            except Exception:  # noqa: BLE001 - outside the op's domain: try the next
                continue
            if all(np.all(np.isfinite(v)) for v in tree.flatten(want)[0]):
                later = cand
                break
        yield F, seq, later or [_nudged(a, rng) for a in seq]


OPS = [info for info in tg.list_ops() if info.differentiable]


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_every_op_compiled_equals_eager_first_order(info):
    for F, seq, later in _cases(info, 1):
        check_replays(F, seq, [later], rtol=1e-9, atol=1e-11, guarded=True)


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_every_op_compiled_equals_eager_second_order(info):
    for F, seq, later in _cases(info, 2):
        check_replays(F, seq, [later], rtol=1e-8, atol=1e-10, guarded=True)


# ----------------------------------------------------------------------- masks, branches


def test_a_mask_is_a_step_of_the_plan():
    C = check_replays(lambda x: (x * (x > 0)).sum(), [np.array([1.0, -2.0, 3.0])],
                      [[np.array([-1.0, 2.0, 3.0])], [np.array([-5.0, -2.0, 0.5])]])
    assert C(np.array([-1.0, 2.0, 3.0])) == 5.0
    assert ">" in C.source or "greater" in C.source


def test_masks_combine_and_where_follows_them():
    def f(x, lo, hi):
        inside = (x > lo) & (x < hi)
        return tg.ops.where(inside | (x == 0.0), x * x, -x).sum() + (~inside).sum()

    rng = np.random.default_rng(1)
    check_replays(f, [rng.standard_normal(10), -0.5, 0.5],
                  [[rng.standard_normal(10), -0.1, 1.0] for _ in range(3)])


def test_argmax_and_integer_indices_are_steps():
    def f(x):
        i = x.argmax()
        return x[i] * 2.0 + np.take(x, np.argmin(x))

    check_replays(f, [np.array([1.0, 5.0, 2.0])], [[np.array([7.0, 1.0, -3.0])]])


def test_gradient_of_relu_network_follows_the_signs():
    rng = np.random.default_rng(2)
    W = rng.standard_normal((4, 3))

    def loss(x):
        return tg.ops.relu(x @ W).sum() + tg.ops.maximum(x, 0.1).sum()

    check_replays(tg.value_and_grad(loss), [rng.standard_normal((5, 4))],
                  [[rng.standard_normal((5, 4))] for _ in range(3)])


def test_a_rule_branching_on_values_is_guarded():
    # logsumexp's vjp takes a fast path when no result is infinite. A first plan calls
    # the rule whole (it branches by itself); once the plan is hot its rule is expanded
    # into ops, and the plan checks that test at every call, running f eagerly when it
    # comes out the other way.
    F = tg.grad(lambda x: tg.ops.logsumexp(x, axis=1).sum())
    C = tg.compile(F)
    x = np.array([[0.0, 1.0], [2.0, 3.0]])
    y = np.array([[0.0, np.inf], [2.0, 3.0]])
    C(x)
    np.testing.assert_array_equal(C(y), F(y))  # the rule whole: no guard needed
    assert C.cache_info().eager == 0 and not C.plans[0].full
    np.testing.assert_allclose(C(x), F(x))  # the HOT-th call: expanded
    assert C.plans[0].full and "raise _Guard" in C.source
    np.testing.assert_array_equal(C(y), F(y))
    assert C.cache_info().eager == 1
    np.testing.assert_allclose(C(x), F(x))
    assert C.cache_info().eager == 1


# ----------------------------------------------------------------------- refusals


def refusal(f, *args):
    with pytest.raises(tg.CompileError) as info:
        tg.compile(f)(*args)
    assert isinstance(info.value, tg.TapegradError)
    return str(info.value)


def test_python_branch_on_a_traced_value_is_refused_naming_the_line():
    def f(x):
        if x.sum() > 0:  # the refused line
            return x * 2
        return x

    msg = refusal(f, np.ones(3))
    assert f"{HERE}:{line_of('# the refused line')}" in msg
    assert "bool()" in msg and "tg.ops.where" in msg


@pytest.mark.parametrize("leak", [
    lambda x: float(x.sum()) * x,
    lambda x: x.sum().item() * x,
    lambda x: x * x.data,
    lambda x: x * x.numpy(),
    lambda x: x * np.asarray(x.detach()),
    lambda x: x * int(x.argmax()),
    lambda x: x * x.tolist()[0],
], ids=["float", "item", "data", "numpy", "asarray", "int", "tolist"])
def test_values_leaving_for_python_are_refused(leak):
    msg = refusal(leak, np.arange(3.0))
    assert f"{HERE}:" in msg


def test_value_dependent_shapes_are_refused():
    assert "boolean mask" in refusal(lambda x: x[x > 0].sum(), np.array([1.0, -1.0]))
    assert "np.nonzero" in refusal(lambda x: x[np.nonzero(x > 0)].sum(), np.ones(2))


def test_side_effects_are_refused():
    w = tg.tensor(np.ones(3), requires_grad=True)

    def step(x):
        loss = (w * x).sum()
        loss.backward()
        return loss

    assert "backward()" in refusal(step, np.ones(3))

    def update2(x):
        with tg.no_grad():
            w.__isub__(x)
        return x

    assert "in-place" in refusal(update2, np.ones(3))  # (w -= x, under no_grad)
    assert "tg.randn" in refusal(lambda x: x + tg.randn(3), np.ones(3))
    seeded = tg.compile(lambda x: x + tg.randn(3, rng=0))  # a seed: the same every call
    np.testing.assert_allclose(seeded(np.zeros(3)), tg.randn(3, rng=0).data)


@pytest.mark.skipif("compilable" not in tg.OpDef.__dataclass_fields__,
                    reason="OpDef has no compilable field")
def test_an_opdef_not_compilable_is_refused():
    class Plugin:
        @staticmethod
        @tg.hookimpl
        def tapegrad_ops():
            return [tg.OpDef("tcp_draw", lambda x: x * np.random.default_rng().random(),
                             lambda g, out, x: g, compilable=False)]

    tg.register_plugin(Plugin, name="tcp_plugin2")
    try:
        msg = refusal(lambda x: tg.ops.tcp_draw(x).sum(), np.ones(2))
        assert "'tcp_draw'" in msg and "not compilable" in msg
    finally:
        tg.unregister_plugin("tcp_plugin2")


def test_traits_are_checked_and_tell_the_plan_about_a_plugin_op():
    with pytest.raises(tg.PluginError, match="unknown traits"):
        tg.OpDef("tcp_bad", np.negative, traits=("viewish",))

    class Plugin:
        @staticmethod
        @tg.hookimpl
        def tapegrad_ops():
            return [tg.OpDef("tcp_view", lambda x: x.view(), lambda g, out, x: g,
                             traits=("view",)),
                    tg.OpDef("tcp_copy", lambda x: x.copy(), lambda g, out, x: g)]

    tg.register_plugin(Plugin, name="tcp_plugin3")
    try:
        for op, kept in (("tcp_view", False), ("tcp_copy", True)):
            F = tg.value_and_grad(lambda x, op=op: (getattr(tg.ops, op)(x) * x).sum())
            C = check_replays(F, [np.arange(3.0)], [[np.ones(3)]])
            assert any(s.name == op for s in C.plans[0].steps) is kept, op
    finally:
        tg.unregister_plugin("tcp_plugin3")


def test_an_op_declared_not_compilable_is_refused():
    @tg.hookimpl
    def tapegrad_ops():
        return [tg.OpDef("tcp_noise", lambda x: x + np.random.default_rng().normal(size=x.shape),
                         lambda g, out, x: g)]

    class Plugin:
        pass

    Plugin.tapegrad_ops = staticmethod(tapegrad_ops)
    tg.register_plugin(Plugin, name="tcp_plugin")
    try:
        not_compilable("tcp_noise", "it draws random numbers")
        msg = refusal(lambda x: tg.ops.tcp_noise(x).sum(), np.ones(2))
        assert "'tcp_noise'" in msg and "random" in msg and f"{HERE}:" in msg
    finally:
        tg.unregister_plugin("tcp_plugin")


# ----------------------------------------------------------------------- transforms


def test_compiled_grad_of_grad():
    f = lambda x: (tg.ops.sin(x) * x * x).sum()  # noqa: E731
    check_replays(tg.grad(tg.grad(f)), [np.array(0.3)], [[np.array(-1.2)], [np.array(2.0)]])
    C = tg.compile(tg.grad(tg.grad(tg.grad(tg.ops.sin))))
    assert float(C(np.array(0.5))) == pytest.approx(-np.cos(0.5))
    assert float(C(np.array(1.5))) == pytest.approx(-np.cos(1.5))


def test_compiled_hessian_jacobian_jvp_vjp():
    A = np.array([[2.0, 1.0], [0.5, 3.0]])
    f = lambda x: (tg.ops.tanh(A @ x) ** 2).sum()  # noqa: E731
    rng = np.random.default_rng(3)
    xs = [[rng.standard_normal(2)] for _ in range(3)]
    check_replays(tg.hessian(f), xs[0], xs[1:])
    check_replays(tg.jacobian(lambda x: tg.ops.tanh(A @ x)), xs[0], xs[1:])
    g = lambda x: tg.ops.exp(A @ x) * x  # noqa: E731
    check_replays(lambda x, v: tg.jvp(g, (x,), (v,)), [xs[0][0], np.ones(2)],
                  [[xs[1][0], rng.standard_normal(2)]])
    check_replays(lambda x, u: tg.vjp(g, x)[1](u), [xs[0][0], np.ones(2)],
                  [[xs[2][0], rng.standard_normal(2)]])
    # forward over reverse: a Hessian-vector product
    check_replays(lambda x, v: tg.jvp(tg.grad(f), (x,), (v,))[1], [xs[0][0], np.ones(2)],
                  [[xs[1][0], rng.standard_normal(2)]])


def test_user_tape_inside_is_recorded():
    def f(x):
        t = tg.tensor(x)  # a copy: a step of the plan when x is traced
        with tg.Tape() as tape:
            tape.watch(t)
            y = (t * t * t).sum()
        return tape.gradient(y, t)

    check_replays(f, [np.array([1.0, 2.0])], [[np.array([-3.0, 0.5])]])


# ----------------------------------------------------------------------- containers, cache


def test_containers_in_and_out():
    Pair = namedtuple("Pair", "a b")

    def f(params, data, scale=2.0):
        h = tg.ops.tanh(data["x"] @ params["W"] + params["b"])
        return {"out": [h.sum() * scale, (h * h).mean()], "pair": Pair(h, None)}

    rng = np.random.default_rng(4)

    def args():
        return [{"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)},
                {"x": rng.standard_normal((4, 3))}]

    C = check_replays(f, args(), [args(), args()])
    got = C(*args())
    assert list(got) == ["out", "pair"] and type(got["pair"]) is Pair
    assert got["pair"].b is None
    grads = check_replays(tg.grad(lambda p, d: f(p, d)["out"][0]), args(), [args()])
    assert grads.source.startswith("def compiled_lambda(p_W, p_b, d_x):")


def test_retracing_on_new_shapes_dtypes_and_static_values():
    C = tg.compile(lambda x, n: (x ** n).sum())
    for shape in [(3,), (3,), (4,), (2, 2), (3,)]:
        x = np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape)
        assert C(x, 2) == pytest.approx((x ** 2).sum())
    assert C(np.ones(3, np.float32), 2).dtype == np.float32
    assert C(np.full(3, 2.0), 3) == 24.0
    info = C.cache_info()
    assert (info.misses, info.retraces, info.hits, info.size) == (5, 4, 2, 5)


def test_cache_limit_evicts_the_least_recently_used_and_warns_on_retraces():
    C = tg.compile(lambda x: x.sum(), cache_size=2, warn_after=3)
    C(np.ones(1))
    C(np.ones(2))
    C(np.ones(1))  # hit: (1,) is now the most recent
    C(np.ones(3))  # evicts (2,)
    assert C.cache_info().size == 2
    C(np.ones(1))
    assert C.cache_info().hits == 2
    with pytest.warns(tg.CompileWarning, match="traced 4 times"):
        C(np.ones(2))
    C.cache_clear()
    assert C.cache_info() == (0, 0, 0, 0, 0, 2)


def test_decorator_forms_and_eager_fallback():
    @tg.compile
    def f(x):
        return tg.ops.exp(x).sum()

    @tg.compile(cache_size=1)
    def g(x):
        return x * 3.0

    assert f(np.zeros(2)) == 2.0 and g.cache_size == 1
    # Inside a transform the argument is tracked: f runs eagerly and stays differentiable.
    np.testing.assert_allclose(tg.grad(f)(np.array([0.0, 1.0])), np.exp([0.0, 1.0]))
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    f(x).backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]))
    assert f.cache_info().eager == 2


def test_parameters_read_at_every_call():
    lin = tg.nn.Linear(3, 2, rng=0)
    C = tg.compile(lambda x: tg.ops.tanh(lin(x)).sum())
    x = np.ones((4, 3))
    C(x)
    with tg.no_grad():
        lin.weight -= 1.0  # in place
    want = tg.ops.tanh(lin(x)).sum().data
    np.testing.assert_allclose(C(x), want)
    lin.weight.data = lin.weight.data * 2.0  # rebound
    np.testing.assert_allclose(C(x), tg.ops.tanh(lin(x)).sum().data)
    lin.weight.data = np.ones((3, 5))  # another shape: traced again
    lin.bias.data = np.zeros(5)
    np.testing.assert_allclose(C(x), np.tanh(3.0) * 20)
    assert C.cache_info().misses == 2


# ----------------------------------------------------------------------- training


def _mlp_problem(dtype):
    rng = np.random.default_rng(5)
    params = {"W1": rng.standard_normal((8, 16)) * 0.3, "b1": np.zeros(16),
              "W2": rng.standard_normal((16, 3)) * 0.3, "b2": np.zeros(3)}
    params = {k: v.astype(dtype) for k, v in params.items()}
    X = rng.standard_normal((64, 8)).astype(dtype)
    y = rng.integers(0, 3, 64)
    return params, X, y


def _loss(p, X, y):
    h = tg.ops.relu(X @ p["W1"] + p["b1"])
    return tg.nn.cross_entropy(h @ p["W2"] + p["b2"], y)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_training_run_matches_eager(dtype):
    step = tg.value_and_grad(_loss)
    fast = tg.compile(step)
    runs = {}
    for name, fn in (("eager", step), ("compiled", fast)):
        params, X, y = _mlp_problem(dtype)
        ps = {k: tg.tensor(v, requires_grad=True) for k, v in params.items()}
        opt = tg.optim.Adam(list(ps.values()), lr=0.05)
        losses = []
        for i in range(12):
            batch = slice(16 * (i % 4), 16 * (i % 4) + 16)
            loss, grads = fn({k: p.data for k, p in ps.items()}, X[batch], y[batch])
            for k, p in ps.items():
                p.grad = grads[k]
            opt.step()
            losses.append(float(loss))
        runs[name] = ({k: p.data.copy() for k, p in ps.items()}, losses)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(runs["compiled"][1], runs["eager"][1], rtol=tol)
    for k in runs["eager"][0]:
        np.testing.assert_allclose(runs["compiled"][0][k], runs["eager"][0][k], rtol=tol,
                                   atol=tol)
    assert runs["compiled"][1][-1] < runs["compiled"][1][0]
    assert fast.cache_info().misses == 1 and fast.cache_info().hits == 11


def test_functional_update_inside_the_compiled_step():
    @tg.compile
    def sgd(params, X, y, lr):
        loss, g = tg.value_and_grad(_loss)(params, X, y)
        return loss, {k: params[k] - lr * g[k] for k in params}

    params, X, y = _mlp_problem(np.float64)
    eager = dict(params)
    for _ in range(5):
        loss, params = sgd(params, X, y, 0.1)
        le, g = tg.value_and_grad(_loss)(eager, X, y)
        eager = {k: eager[k] - 0.1 * g[k] for k in eager}
        assert float(loss) == pytest.approx(float(le), rel=1e-12)
    assert_tree_close(params, eager)


# ----------------------------------------------------------------------- the plan


def test_source_reads_like_numpy_and_frees_big_arrays():
    def neuron(w, b, x):
        return tg.ops.tanh((w * x).sum() + b)

    C = tg.compile(tg.grad(neuron, argnums=(0, 1)))
    C(np.ones(3), 0.5, np.ones(3))
    src = C.source
    assert src.startswith("def compiled_neuron(w, b, x):")
    assert re.search(r"= w \* x$", src, re.M) and "tanh(" in src and "return (" in src
    assert "Tensor" not in src and "record" not in src
    small_plan = tg.compile(lambda x: x * 2.0 + 1.0)
    small_plan(np.ones(3))
    assert small_plan.source.splitlines()[1:] == [
        "    v1 = x * 2.0", "    v2 = v1 + 1.0", "    del v1", "    return v2"]


def test_identity_views_and_repeats_are_not_steps():
    C = tg.compile(tg.value_and_grad(lambda x: (x * x).reshape(x.shape).sum()
                                      + (x * x).sum()))
    C(np.ones(3))
    body = C.source.splitlines()[1:]
    assert sum("reshape" in line for line in body) == 0
    assert sum("x * x" in line for line in body) == 1
    assert sum("sum(" in line for line in body) == 1


def test_buffers_are_reused_only_when_nothing_reads_them():
    def f(x):
        y = tg.ops.exp(x)  # a ufunc's result ...
        t = y.T  # ... with a view read later: y's memory must not be overwritten
        z = y * 2.0
        u = z * 3.0 + 1.0  # z is dead after z * 3.0: its buffer takes the result
        return (u + t.T).sum(), u

    rng = np.random.default_rng(6)
    C = check_replays(f, [rng.standard_normal((40, 40))],
                      [[rng.standard_normal((40, 40))] for _ in range(2)])
    assert re.search(r"= add\(v\d+, 1\.0, out=v\d+\)", C.source)
    assert not re.search(r"= mul\(v1, 2\.0, out=", C.source)
    rng = np.random.default_rng(7)

    def problem():
        p = {"W1": rng.standard_normal((32, 64)), "b1": rng.standard_normal(64),
             "W2": rng.standard_normal((64, 5)), "b2": rng.standard_normal(5)}
        return [p, rng.standard_normal((128, 32)), rng.integers(0, 5, 128)]

    C = check_replays(tg.value_and_grad(_loss), problem(), [problem(), problem()])
    assert "out=" in C.source


def test_float_plans_keep_numpys_maximum_and_minimum():
    # NaN on either side, and on a tie of 0.0 and -0.0 the second argument: NumPy's.
    F = tg.value_and_grad(lambda x, y: tg.ops.maximum(x, y) + tg.ops.relu(x)
                          + tg.ops.minimum(y, x), argnums=(0, 1))
    C = tg.compile(F)
    for _ in range(HOT):
        C(0.5, 2.0)
    assert "def compiled_lambda_floats(" in C.source
    for args in [(np.nan, 1.0), (1.0, np.nan), (-0.0, 0.0), (0.0, -0.0), (2.0, 2.0)]:
        got, want = C(*args), F(*args)
        for g, w in zip([got[0], *got[1]], [want[0], *want[1]], strict=True):
            np.testing.assert_array_equal(g, w)
            assert np.signbit(g) == np.signbit(w), args


def test_scalar_plans_run_on_floats_and_fall_back_to_numpy():
    def f(x, y):
        return tg.ops.log(x) / y + tg.ops.tanh(x * y) ** 2 - tg.ops.relu(y - x)

    F = tg.value_and_grad(f, argnums=(0, 1))
    C = check_replays(F, [0.5, 2.0], [[1.5, -0.5], [0.2, 3.0]])
    assert "def compiled_f_floats(x, y):" in C.source and "math.tanh(" in C.source
    with np.errstate(all="ignore"):  # 1 / 0: NumPy's inf and NaN, from the NumPy plan
        got, want = C(1.0, 0.0), F(1.0, 0.0)
    assert_tree_close(got, want)
    assert not np.isfinite(got[0])
