"""A catalogue of bad inputs: each raises a clear error naming the culprit, and nothing is lost.

Every case is ``(callable, exception type, substrings the message must contain)``. The
callable gets ``ctx`` (a temporary directory and a list where it records the plugins it
registers, all unregistered afterwards). After every case a small forward and backward
pass must still give the right gradient: an error never leaves the library broken.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg

HERE = Path(__file__).name

@dataclass
class Ctx:
    tmp: Path
    plugins: list[str] = field(default_factory=list)

    def register(self, *opdefs, hook_name="tapegrad_ops", hook=None, name=None):
        name = name or f"bad-{uuid.uuid4().hex[:8]}"
        self.plugins.append(name)
        tg.register_plugin(_plugin(*opdefs, hook_name=hook_name, hook=hook), name=name)
        return name


def _plugin(*opdefs, hook_name="tapegrad_ops", hook=None):
    class P:
        pass

    if hook is None:
        def hook():
            return list(opdefs)

    setattr(P, hook_name, staticmethod(tg.hookimpl(hook)))
    return P()


def message(exc: BaseException) -> str:
    """The text a user sees: the message, its notes and the chained cause's message."""
    parts = [str(exc), *getattr(exc, "__notes__", ())]
    return "\n".join(parts)


def still_works():
    """A fresh forward and backward pass gives the analytic gradient."""
    x = tg.tensor([0.5, -1.0, 2.0], requires_grad=True)
    w = tg.tensor([[1.0], [2.0], [3.0]], requires_grad=True)
    loss = ((x @ w).tanh() + (x * x).sum()).sum()
    loss.backward()
    z = 0.5 * 1 - 1.0 * 2 + 2.0 * 3
    dt = 1 - np.tanh(z) ** 2
    np.testing.assert_allclose(x.grad, dt * np.array([1.0, 2.0, 3.0]) + 2 * x.data)
    np.testing.assert_allclose(w.grad, dt * x.data[:, None])


def _unique(prefix):
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------ catalogue


def _tensor_case(data):
    return lambda ctx: tg.tensor(data)


def _binary_case(fn):
    def run(ctx):
        a = tg.tensor(np.ones(2), requires_grad=True)
        b = tg.tensor(np.ones(3), requires_grad=True)
        return fn(a, b)
    return run


def _backward_no_grad(ctx):
    tg.tensor([1.0, 2.0]).sum().backward()


def _backward_under_no_grad(ctx):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with tg.no_grad():
        y = (x * x).sum()
    y.backward()


def _backward_twice(ctx):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    y.backward()


def _backward_wrong_grad_shape(ctx):
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    (x * 2).backward(np.ones((3, 2)))


def _backward_non_scalar(ctx):
    x = tg.tensor(np.ones((2, 3)), requires_grad=True)
    (x * 2).backward()


def _hook_name_typo(ctx):
    ctx.register(hook_name="tapegrad_opz", name="bad-typo-name")


def _hook_arg_typo(ctx):
    def tapegrad_ops(registry):
        return []
    ctx.register(hook=tapegrad_ops, name="bad-typo-args")


def _plugin_forward_raises(ctx):
    def forward(x):
        raise RuntimeError("kaboom in forward")
    ctx.register(tg.OpDef("bad_fwd_op", forward, lambda g, out, x: g), name="bad-fwd-plugin")
    tg.ops.bad_fwd_op(tg.tensor([1.0], requires_grad=True))


def _plugin_vjp_raises(ctx):
    def vjp(g, out, x):
        raise ZeroDivisionError("kaboom in vjp")
    ctx.register(tg.OpDef("bad_vjp_op", np.sin, vjp), name="bad-vjp-plugin")
    tg.ops.bad_vjp_op(tg.tensor([1.0], requires_grad=True)).sum().backward()


def _plugin_non_opdef(ctx):
    ctx.register(hook=lambda: ["not an op"], name="bad-non-opdef")


def _plugin_dict_opdef(ctx):
    ctx.register(hook=lambda: [{"name": "x", "forward": np.sin}], name="bad-dict-opdef")


def _plugin_hook_raises(ctx):
    def tapegrad_ops():
        raise LookupError("hook exploded")
    ctx.register(hook=tapegrad_ops, name="bad-hook-raises")


def _plugin_forward_returns_tensor(ctx):
    ctx.register(tg.OpDef("bad_tensor_fwd", lambda x: tg.tensor(x), lambda g, out, x: g),
                 name="bad-tensor-plugin")
    tg.ops.bad_tensor_fwd(tg.tensor([1.0], requires_grad=True))


def _plugin_vjp_wrong_count(ctx):
    ctx.register(tg.OpDef("bad_count_op", np.multiply, lambda g, out, a, b: (g * b,)),
                 name="bad-count-plugin")
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.ops.bad_count_op(x, x).sum().backward()


def _plugin_duplicate(ctx):
    ctx.register(tg.OpDef("tanh", np.sin, lambda g, out, x: g * np.cos(x)),
                 name="bad-dup-plugin")


def _unknown_op(ctx):
    return tg.ops.sigmiod


CATALOGUE = [
    # non-numeric data to tg.tensor
    pytest.param(_tensor_case("abc"), TypeError, ["numeric", "'abc'"], id="tensor-str"),
    pytest.param(_tensor_case([1.0, "a"]), TypeError, ["numeric", "'a'"], id="tensor-mixed"),
    pytest.param(_tensor_case({"a": 1}), TypeError, ["numeric", "{'a': 1}"], id="tensor-dict"),
    pytest.param(_tensor_case(None), TypeError, ["numeric", "None"], id="tensor-none"),
    pytest.param(_tensor_case(object()), TypeError, ["numeric", "object"], id="tensor-object"),
    pytest.param(_tensor_case([[1, 2], [3]]), TypeError, ["[[1, 2], [3]]"], id="tensor-ragged"),
    pytest.param(lambda ctx: tg.tensor([1, 2], requires_grad=True), TypeError,
                 ["requires_grad", "int64"], id="requires-grad-int"),
    pytest.param(lambda ctx: tg.tensor([True], requires_grad=True), TypeError,
                 ["requires_grad", "bool"], id="requires-grad-bool"),
    # incompatible shapes: each binary operator and matmul
    *[pytest.param(_binary_case(fn), ValueError, [op, "(2,)", "(3,)"], id=f"shapes-{op}")
      for op, fn in [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                     ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b),
                     ("pow", lambda a, b: a ** b)]],
    pytest.param(lambda ctx: tg.tensor(np.ones((2, 3))) @ tg.tensor(np.ones((4, 2))),
                 ValueError, ["matmul", "(2, 3)", "(4, 2)"], id="shapes-matmul"),
    pytest.param(lambda ctx: tg.ops.where(np.array([True, False]), np.ones(2),
                                          tg.tensor(np.ones(3), requires_grad=True)),
                 ValueError, ["where", "(2,)", "(3,)"], id="shapes-where"),
    # bad axis / bad shape arguments
    *[pytest.param(lambda ctx, r=r: getattr(tg.tensor(np.ones((2, 3))), r)(axis=3),
                   ValueError, ["axis", "3", "2"], id=f"axis-{r}")
      for r in ("sum", "mean", "max", "min")],
    pytest.param(lambda ctx: tg.tensor(np.ones((2, 3))).swapaxes(0, 5), ValueError,
                 ["axis", "5"], id="axis-swapaxes"),
    pytest.param(lambda ctx: tg.tensor(np.ones(3), requires_grad=True).transpose(1, 0),
                 ValueError, ["transpose", "(1, 0)"], id="axis-transpose"),
    pytest.param(lambda ctx: tg.tensor(np.ones(6), requires_grad=True).reshape(4, 2),
                 ValueError, ["reshape", "size 6"], id="reshape-size"),
    # backward misuse
    pytest.param(_backward_no_grad, RuntimeError, ["does not require grad"],
                 id="backward-no-requires-grad"),
    pytest.param(_backward_under_no_grad, RuntimeError, ["does not require grad", "no_grad"],
                 id="backward-made-under-no-grad"),
    pytest.param(_backward_twice, RuntimeError, ["second time", "retain_graph"],
                 id="backward-twice"),
    pytest.param(_backward_wrong_grad_shape, ValueError, ["(3, 2)", "(2, 3)"],
                 id="backward-wrong-grad-shape"),
    pytest.param(_backward_non_scalar, ValueError, ["one element", "(2, 3)"],
                 id="backward-non-scalar-without-grad"),
    # plugins
    pytest.param(_hook_name_typo, tg.PluginError, ["tapegrad_opz", "tapegrad_ops"],
                 id="plugin-hook-name-typo"),
    pytest.param(_hook_arg_typo, tg.PluginError, ["bad-typo-args", "registry", "tapegrad_ops"],
                 id="plugin-hook-arg-typo"),
    pytest.param(_plugin_forward_raises, Exception,
                 ["bad_fwd_op", "bad-fwd-plugin", "kaboom in forward"],
                 id="plugin-forward-raises"),
    pytest.param(_plugin_vjp_raises, tg.OpRuleError,
                 ["bad_vjp_op", "bad-vjp-plugin", "ZeroDivisionError", "kaboom in vjp"],
                 id="plugin-vjp-raises"),
    pytest.param(_plugin_non_opdef, tg.PluginError, ["bad-non-opdef", "'not an op'", "OpDef"],
                 id="plugin-returns-non-opdef"),
    pytest.param(_plugin_dict_opdef, tg.PluginError, ["bad-dict-opdef", "dict", "OpDef"],
                 id="plugin-returns-dict"),
    pytest.param(_plugin_hook_raises, tg.PluginError,
                 ["bad-hook-raises", "LookupError", "hook exploded"], id="plugin-hook-raises"),
    pytest.param(_plugin_forward_returns_tensor, tg.OpRuleError,
                 ["bad_tensor_fwd", "bad-tensor-plugin", "Tensor"],
                 id="plugin-forward-returns-tensor"),
    pytest.param(_plugin_vjp_wrong_count, tg.OpRuleError,
                 ["bad_count_op", "bad-count-plugin", "1", "2"], id="plugin-vjp-wrong-count"),
    pytest.param(_plugin_duplicate, tg.PluginError, ["tanh", "bad-dup-plugin", "elementwise"],
                 id="plugin-duplicate-op"),
    pytest.param(_unknown_op, KeyError, ["sigmiod", "sigmoid"], id="unknown-op"),
]


@pytest.mark.parametrize(("action", "exc_type", "needles"), CATALOGUE)
def test_catalogue(action, exc_type, needles, tmp_path):
    ctx = Ctx(tmp_path)
    try:
        with pytest.raises(exc_type) as info:
            action(ctx)
        text = message(info.value)
        missing = [n for n in needles if n not in text]
        assert not missing, f"message lacks {missing}: {text!r}"
        assert isinstance(info.value, exc_type)
    finally:
        for name in ctx.plugins:
            if tg.plugin_manager().has_plugin(name):
                tg.unregister_plugin(name)
    still_works()


# ------------------------------------------------------------------ plugins: nothing lost


@pytest.mark.parametrize("hook_name, hook", [
    ("tapegrad_opz", None),
    ("tapegrad_ops", lambda registry: []),
], ids=["name-typo", "arg-typo"])
def test_refused_plugin_is_not_left_registered(hook_name, hook):
    name = _unique("bad-left")
    plugin = _plugin(hook_name=hook_name, hook=hook)
    try:
        with pytest.raises(tg.PluginError):
            tg.register_plugin(plugin, name=name)
        assert not tg.plugin_manager().has_plugin(name)
        # the same name can be used again by a valid plugin
        good = _plugin(tg.OpDef(_unique("bad_ok"), np.negative, lambda g, out, x: -g))
        tg.register_plugin(good, name=name)
    finally:
        if tg.plugin_manager().has_plugin(name):
            tg.unregister_plugin(name)
    still_works()


def test_refused_plugin_leaves_op_table_unchanged():
    before = {i.name: i.source for i in tg.list_ops()}
    op = _unique("bad_new")
    # a good op and a clashing op in one plugin: the whole plugin is refused
    plugin = _plugin(tg.OpDef(op, np.negative, lambda g, out, x: -g),
                     tg.OpDef("exp", np.sin, lambda g, out, x: g))
    name = _unique("bad-half")
    try:
        with pytest.raises(tg.PluginError):
            tg.register_plugin(plugin, name=name)
    finally:
        if tg.plugin_manager().has_plugin(name):
            tg.unregister_plugin(name)
    assert {i.name: i.source for i in tg.list_ops()} == before
    assert not hasattr(tg.ops, op)
    x = tg.tensor(1.0, requires_grad=True)
    x.exp().backward()
    assert float(x.grad) == pytest.approx(np.e)


def test_tape_stays_usable_after_plugin_forward_and_vjp_raise():
    op_fwd, op_vjp = _unique("bad_tf"), _unique("bad_tv")

    def broken_forward(x):
        raise RuntimeError("forward broke")

    def broken_vjp(g, out, x):
        raise RuntimeError("vjp broke")

    plugin = _plugin(tg.OpDef(op_fwd, broken_forward, lambda g, out, x: g),
                     tg.OpDef(op_vjp, np.sin, broken_vjp))
    name = tg.register_plugin(plugin, name=_unique("bad-tape"))
    try:
        x = tg.tensor([1.0, 2.0], requires_grad=True)
        with tg.Tape(persistent=True) as tape:
            a = x * x
            with pytest.raises(Exception, match="forward broke"):
                getattr(tg.ops, op_fwd)(a)
            bad = getattr(tg.ops, op_vjp)(a).sum()
            b = (a * x).sum()
            c = a.sum()
        with pytest.raises(tg.OpRuleError, match=op_vjp):
            tape.gradient(bad, x)
        np.testing.assert_allclose(tape.gradient(b, x), 3 * x.data ** 2)
        np.testing.assert_allclose(tape.gradient(c, x), 2 * x.data)
        assert x.grad is None
    finally:
        tg.unregister_plugin(name)
    still_works()


def test_backward_after_failed_vjp_reports_freed_graph_not_wrong_gradient():
    op = _unique("bad_once")
    calls = []

    def flaky_vjp(g, out, x):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first call fails")
        return g * np.cos(x)

    name = tg.register_plugin(_plugin(tg.OpDef(op, np.sin, flaky_vjp)), name=_unique("bad-fl"))
    try:
        x = tg.tensor([0.3, 0.7], requires_grad=True)
        y = (getattr(tg.ops, op)(x) * 2.0).sum()
        with pytest.raises(tg.OpRuleError):
            y.backward(retain_graph=True)
        assert x.grad is None, "a failed backward must not leave a partial gradient"
        y.backward()
        np.testing.assert_allclose(x.grad, 2 * np.cos(x.data))
    finally:
        tg.unregister_plugin(name)


# ------------------------------------------------------------------ anomaly mode


def _nan_input():
    x = tg.tensor([1.0, np.nan], requires_grad=True)
    return x * 2.0


def _inf_input():
    x = tg.tensor([np.inf, 1.0], requires_grad=True)
    return (x - x).sum()


def _log_of_zero():
    return tg.ops.log(tg.tensor([0.0, 1.0], requires_grad=True))


def _sqrt_vjp_at_zero():
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    tg.ops.sqrt(x).sum().backward()


@pytest.mark.parametrize("action, needles", [
    (_nan_input, ["mul", "NaN", HERE, "_nan_input"]),
    (_inf_input, ["sub", "NaN", HERE, "_inf_input"]),
    (_log_of_zero, ["log", "inf", HERE, "_log_of_zero"]),
    (_sqrt_vjp_at_zero, ["sqrt", "vjp", "inf", HERE, "_sqrt_vjp_at_zero"]),
], ids=["nan-input", "inf-input", "log-zero", "sqrt-vjp"])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own divide/invalid notes
def test_detect_anomaly_names_op_and_line(action, needles):
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError) as info:
            action()
    text = message(info.value)
    missing = [n for n in needles if n not in text]
    assert not missing, f"message lacks {missing}: {text!r}"
    still_works()
    # outside the context the same computation runs without raising
    x = tg.tensor([0.0, 4.0], requires_grad=True)
    tg.ops.sqrt(x).sum().backward()
    assert np.isinf(x.grad[0]) and x.grad[1] == pytest.approx(0.25)


# ------------------------------------------------------------------ YAML specs


def _spec_cases():
    """(id, yaml text, substrings): each spec problem named by the spec issue."""
    return [
        ("malformed-yaml", "ops:\n  bad_op: [unclosed\n", ["malformed", "line"]),
        ("not-a-mapping", "- just\n- a list\n", ["ops"]),
        ("missing-forward",
         "ops:\n  bad_nofwd:\n    args: [x]\n    vjp:\n      x: \"g\"\n",
         ["bad_nofwd", "forward"]),
        ("vjp-unknown-arg",
         "ops:\n  bad_vjparg:\n    args: [x]\n    forward: \"x * 2\"\n    vjp:\n"
         "      y: \"g * 2\"\n      x: \"g * 2\"\n",
         ["bad_vjparg", "vjp", "y"]),
        ("missing-vjp",
         "ops:\n  bad_novjp:\n    args: [x, w]\n    forward: \"x * w\"\n    vjp:\n"
         "      x: \"g * w\"\n",
         ["bad_novjp", "vjp", "w"]),
        ("unknown-op",
         "ops:\n  bad_unk:\n    args: [x]\n    forward: \"tahn(x)\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_unk", "forward", "tahn", "tanh"]),
        ("unknown-name",
         "ops:\n  bad_name:\n    args: [x]\n    forward: \"x * z\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_name", "forward", "z"]),
        ("syntax-error",
         "ops:\n  bad_syntax:\n    args: [x]\n    forward: \"x * (2 +\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_syntax", "forward", "x * (2 +"]),
        ("attribute",
         "ops:\n  bad_attr:\n    args: [x]\n    forward: \"x.__class__\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_attr", "forward", "__class__"]),
        ("import-call",
         "ops:\n  bad_imp:\n    args: [x]\n    forward: \"__import__('os')\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_imp", "forward", "__import__"]),
        ("subscript",
         "ops:\n  bad_sub:\n    args: [x]\n    forward: \"x[0]\"\n    vjp:\n      x: \"g\"\n",
         ["bad_sub", "forward", "x[0]"]),
        ("lambda",
         "ops:\n  bad_lam:\n    args: [x]\n    forward: \"(lambda: x)()\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_lam", "forward", "lambda"]),
        ("comprehension",
         "ops:\n  bad_comp:\n    args: [x]\n    forward: \"sum([x for x in x])\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_comp", "forward"]),
        ("vjp-refused-construct",
         "ops:\n  bad_vjpc:\n    args: [x]\n    forward: \"x * 2\"\n    vjp:\n"
         "      x: \"g.__dict__\"\n",
         ["bad_vjpc", "vjp", "__dict__"]),
        ("duplicate-arg",
         "ops:\n  bad_dupe:\n    args: [x, x]\n    forward: \"x * x\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_dupe", "args", "twice", "x"]),
        ("arg-and-param-same-name",
         "ops:\n  bad_pa:\n    args: [x]\n    params: {x: 1.0}\n    forward: \"x * 2\"\n"
         "    vjp:\n      x: \"g * 2\"\n",
         ["bad_pa", "params", "twice", "x"]),
        ("op-twice-in-file",
         "ops:\n  bad_a:\n    args: [x]\n    forward: \"x * 2\"\n    vjp:\n      x: \"g * 2\"\n"
         "  bad_a:\n    args: [x]\n    forward: \"x * 3\"\n    vjp:\n      x: \"g * 3\"\n",
         ["bad_a", "twice"]),
        ("clash-with-registered-op",
         "ops:\n  tanh:\n    args: [x]\n    forward: \"x * 2\"\n    vjp:\n      x: \"g * 2\"\n",
         ["tanh", "twice"]),
        ("wrong-arity-call",
         "ops:\n  bad_ar:\n    args: [x]\n    forward: \"tanh(x, x)\"\n    vjp:\n      x: \"g\"\n",
         ["bad_ar", "forward", "tanh(x, x)"]),
        ("unknown-field",
         "ops:\n  bad_uf:\n    args: [x]\n    forwrd: \"x\"\n    forward: \"x\"\n    vjp:\n"
         "      x: \"g\"\n",
         ["bad_uf", "forwrd", "forward"]),
        ("string-literal",
         "ops:\n  bad_str:\n    args: [x]\n    forward: \"x * 'a'\"\n    vjp:\n      x: \"g\"\n",
         ["bad_str", "forward", "'a'"]),
        ("args-not-a-list",
         "ops:\n  bad_al:\n    args: x\n    forward: \"x\"\n    vjp:\n      x: \"g\"\n",
         ["bad_al", "args"]),
    ]


SPEC_CASES = _spec_cases()


@pytest.mark.parametrize("text, needles", [(t, n) for _, t, n in SPEC_CASES],
                         ids=[i for i, _, _ in SPEC_CASES])
def test_yaml_spec_errors_name_file_op_field_text(text, needles, tmp_path):
    path = tmp_path / f"spec_{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(text)
    before = {i.name for i in tg.list_ops()}
    with pytest.raises(tg.SpecError) as info:
        tg.load_spec(path)
    text_msg = message(info.value)
    missing = [n for n in [path.name, *needles] if n not in text_msg]
    assert not missing, f"message lacks {missing}: {text_msg!r}"
    assert {i.name for i in tg.list_ops()} == before, "a refused spec must register nothing"
    still_works()


def test_yaml_spec_missing_file_names_the_path(tmp_path):
    path = tmp_path / "no_such_spec.yaml"
    with pytest.raises((tg.SpecError, FileNotFoundError)) as info:
        tg.load_spec(path)
    assert "no_such_spec.yaml" in message(info.value)
    still_works()


# ------------------------------------------------------------------ state_dict files


def _model():
    return tg.nn, tg.nn.MLP(3, [4, 2])


def _write(kind, path: Path, good: dict):
    if kind == "garbage":
        path.write_bytes(b"this is not a zip archive at all" * 4)
    elif kind == "truncated":
        np.savez(path, **good)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "npy":
        with open(path, "wb") as f:
            np.save(f, np.ones(3))
    elif kind == "missing-key":
        np.savez(path, **{k: v for k, v in list(good.items())[1:]})
    elif kind == "extra-key":
        np.savez(path, **good, surprise=np.ones(2))
    elif kind == "wrong-shape":
        bad = dict(good)
        k = next(iter(bad))
        bad[k] = np.ones((7, 7))
        np.savez(path, **bad)
    elif kind == "strings":
        bad = dict(good)
        k = next(iter(bad))
        bad[k] = np.full(bad[k].shape, "x")
        np.savez(path, **bad)
    elif kind == "pickled-object":
        bad = dict(good)
        k = next(iter(bad))
        arr = np.empty(bad[k].shape, dtype=object)
        arr[...] = 1.0
        bad[k] = arr
        np.savez(path, **bad)
    return path


@pytest.mark.parametrize("kind, needles", [
    ("garbage", []), ("truncated", []), ("empty", []),
    ("npy", []),
    ("missing-key", ["missing"]), ("extra-key", ["surprise"]),
    ("wrong-shape", ["(7, 7)"]), ("strings", []), ("pickled-object", []),
])
def test_corrupt_state_dict_files(kind, needles, tmp_path):
    nn, model = _model()
    good = model.state_dict()
    path = _write(kind, tmp_path / "params.npz", good)
    with pytest.raises(nn.StateDictError) as info:
        model.load(path)
    text = message(info.value)
    assert isinstance(info.value, tg.TapegradError)
    if kind in ("garbage", "truncated", "empty", "npy"):
        needles = [*needles, "params.npz"]
    else:
        needles = [*needles, next(iter(good))] if kind in ("wrong-shape", "strings") else needles
    missing = [n for n in needles if n not in text]
    assert not missing, f"message lacks {missing}: {text!r}"
    # nothing was changed, and the model still trains
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, good[k])
    x = tg.tensor(np.ones((5, 3)))
    out = model(x)
    loss = (out * out).mean()
    loss.backward()
    for p in model.parameters():
        assert p.grad is not None and p.grad.shape == p.shape and np.isfinite(p.grad).all()
    still_works()


def test_state_dict_round_trip_after_failures(tmp_path):
    nn, model = _model()
    path = tmp_path / "good.npz"
    model.save(path)
    other = nn.MLP(3, [4, 2])
    with pytest.raises(tg.TapegradError):
        other.load(_write("garbage", tmp_path / "bad.npz", {}))
    other.load(path)
    x = tg.tensor(np.linspace(-1, 1, 6).reshape(2, 3))
    np.testing.assert_allclose(other(x).data, model(x).data)


def test_invalid_reload_of_a_spec_keeps_the_old_ops_working(tmp_path):
    op = _unique("bad_cube")
    path = tmp_path / "cube.yaml"
    path.write_text(f"ops:\n  {op}:\n    args: [x]\n    forward: \"x * x * x\"\n"
                    f"    vjp:\n      x: \"3 * g * x * x\"\n")
    tg.load_spec(path)
    try:
        path.write_text(f"ops:\n  {op}:\n    args: [x]\n    forward: \"x.__class__\"\n"
                        f"    vjp:\n      x: \"g\"\n")
        with pytest.raises(tg.SpecError, match=op):
            tg.load_spec(path)
        x = tg.tensor([1.0, -2.0], requires_grad=True)
        y = getattr(tg.ops, op)(x)
        np.testing.assert_allclose(y.data, [1.0, -8.0])
        y.sum().backward()
        np.testing.assert_allclose(x.grad, [3.0, 12.0])
    finally:
        name = f"spec:{path.resolve()}"
        if tg.plugin_manager().has_plugin(name):
            tg.unregister_plugin(name)
    assert not hasattr(tg.ops, op)
    still_works()


def _binary_ops():
    """Every registered two-input op that NumPy-style broadcasting refuses (2,) with (3,)."""
    found = []
    for info in tg.list_ops():
        if info.variadic or info.nargs != 2 or info.definition.nondiff:
            continue
        try:
            with np.errstate(all="ignore"):
                info.definition.forward(np.ones(2), np.ones(3), **info.params)
        except Exception:  # noqa: BLE001 - the ones that refuse are the ones we want
            found.append(info.name)
    return found


@pytest.mark.parametrize("name", _binary_ops())
def test_every_binary_op_names_itself_and_both_shapes(name):
    a = tg.tensor(np.ones(2), requires_grad=True)
    b = tg.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError) as info:
        getattr(tg.ops, name)(a, b)
    text = message(info.value)
    missing = [n for n in (name, "(2,)", "(3,)") if n not in text]
    assert not missing, f"message lacks {missing}: {text!r}"
    still_works()
