"""YAML op specs: the shipped files, the format, tg.load_spec, every SpecError, and
higher-order gradients of ops compiled from formulas."""

from __future__ import annotations

import re
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

import tapegrad as tg
from tapegrad import spec as specmod
from tapegrad.builtins.specs import spec_dir
from tapegrad.gradcheck import check_grads, check_op, numerical_grad
from tapegrad.registry import REGISTRY

SPEC_DIR = spec_dir()
SHIPPED = sorted(SPEC_DIR.glob("*.yaml"))
ELEMENTWISE = str(SPEC_DIR / "elementwise.yaml")
NN = str(SPEC_DIR / "nn.yaml")


def compile_text(text: str, path: str = "test.yaml"):
    return specmod.compile_spec_source(text, REGISTRY.ops, path)


def op_yaml(name: str = "f", **fields) -> str:
    return yaml.safe_dump({"ops": {name: fields}}, sort_keys=False)


@pytest.fixture
def load(tmp_path):
    """Write YAML text to a fresh file and tg.load_spec it; unregistered afterwards."""
    loaded: list[str] = []

    def _load(text: str, name: str | None = None):
        path = tmp_path / (name or f"spec_{uuid.uuid4().hex[:8]}.yaml")
        path.write_text(text)
        infos = tg.load_spec(path)
        loaded.append(f"spec:{path.resolve()}")
        return path, infos

    yield _load
    for name in loaded:
        if tg.plugin_manager().get_plugin(name) is not None:
            tg.unregister_plugin(name)


# ------------------------------------------------------------------ shipped specs


def test_shipped_spec_files_document_the_format_in_a_header():
    assert {"elementwise.yaml", "nn.yaml"} <= {p.name for p in SHIPPED}
    for p in SHIPPED:
        text = p.read_text()
        header = text[:text.index("\nops:")]
        assert header.startswith("# tapegrad op spec"), p
        assert all(line.startswith("#") or not line.strip() for line in header.splitlines())
        for field in specmod.OP_FIELDS:
            assert re.search(rf"#\s+{field}:", header), (p.name, field)


def test_issue_ops_come_from_the_shipped_spec_files():
    wanted = {
        ELEMENTWISE: ["exp", "log", "sqrt", "sin", "cos", "tanh", "log1p", "expm1",
                      "square", "reciprocal", "tan", "arcsin", "arctan", "sinh", "cosh"],
        NN: ["sigmoid", "relu", "softplus", "silu", "gelu", "leaky_relu", "elu"],
    }
    for path, names in wanted.items():
        for name in names:
            info = tg.get_op(name)
            assert info.source == path, name
            assert getattr(tg.ops, name) is info.call


def test_spec_ops_compute_the_right_values():
    x = np.array([-1.5, -0.3, 0.4, 2.0])
    c = np.sqrt(2 / np.pi)
    expect = {
        "exp": np.exp(x), "sin": np.sin(x), "cos": np.cos(x), "tanh": np.tanh(x),
        "expm1": np.expm1(x), "square": x * x, "reciprocal": 1 / x,
        "tan": np.tan(x), "arctan": np.arctan(x), "sinh": np.sinh(x), "cosh": np.cosh(x),
        "sigmoid": 1 / (1 + np.exp(-x)), "relu": np.maximum(x, 0),
        "softplus": np.log(1 + np.exp(x)), "silu": x / (1 + np.exp(-x)),
        "gelu": 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3))),
        "leaky_relu": np.where(x > 0, x, 0.01 * x), "elu": np.where(x > 0, x, np.expm1(x)),
    }
    for name, want in expect.items():
        np.testing.assert_allclose(getattr(tg.ops, name)(x).data, want, rtol=1e-12,
                                   err_msg=name)
    pos = np.array([0.25, 1.0, 2.5])
    np.testing.assert_allclose(tg.ops.log(pos).data, np.log(pos))
    np.testing.assert_allclose(tg.ops.log1p(pos - 1).data, np.log(pos))
    np.testing.assert_allclose(tg.ops.sqrt(pos).data, np.sqrt(pos))
    np.testing.assert_allclose(tg.ops.arcsin(pos / 3).data, np.arcsin(pos / 3))
    np.testing.assert_allclose(tg.ops.leaky_relu(x, slope=0.2).data,
                               np.where(x > 0, x, 0.2 * x))
    np.testing.assert_allclose(tg.ops.elu(x, alpha=0.5).data,
                               np.where(x > 0, x, 0.5 * np.expm1(x)))


def test_activations_are_stable_for_large_inputs():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            s = tg.ops.sigmoid(x).data
            sp = tg.ops.softplus(x).data
            e = tg.ops.elu(x).data
            t = tg.tensor(x, requires_grad=True)
            (tg.ops.softplus(t) + tg.ops.sigmoid(t)).sum().backward()
    np.testing.assert_allclose(s, [0.0, 1.9287498479639178e-22, 0.5, 1.0, 1.0], atol=1e-16)
    np.testing.assert_allclose(sp, [0.0, 1.9287498479639178e-22, np.log(2), 50.0, 1000.0])
    assert e[-1] == 1000.0 and e[0] == -1.0
    assert np.isfinite(t.grad).all()
    np.testing.assert_allclose(t.grad[2], 0.5 + 0.25)


def test_spec_ops_bind_tensor_methods():
    x = tg.tensor([-0.5, 0.5, 2.0], requires_grad=True)
    for name in ("exp", "log1p", "tanh", "sigmoid", "relu", "sin", "cos", "softplus",
                 "gelu", "square"):
        np.testing.assert_allclose(getattr(x, name)().data,
                                   getattr(tg.ops, name)(x.data).data, err_msg=name)
    np.testing.assert_allclose(x.leaky_relu(0.1).data, [-0.05, 0.5, 2.0])
    np.testing.assert_allclose(x.leaky_relu(slope=0.1).data, [-0.05, 0.5, 2.0])
    y = tg.tensor([4.0, 9.0])
    np.testing.assert_allclose(y.sqrt().data, [2.0, 3.0])
    np.testing.assert_allclose(y.log().data, np.log([4.0, 9.0]))
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0])


def test_numpy_ufuncs_on_tensors_run_the_spec_ops():
    x = tg.tensor([0.5, 1.5], requires_grad=True)
    y = np.exp(x)
    assert isinstance(y, tg.Tensor) and y._node.op is tg.get_op("exp")
    z = np.log1p(np.sin(y))
    assert z._node.op.name == "log1p"
    z.sum().backward()
    ex = np.exp(x.data)
    np.testing.assert_allclose(x.grad, np.cos(ex) * ex / (1 + np.sin(ex)))
    assert np.reciprocal(tg.tensor([2.0]))._node is None  # not tracked: not recorded
    assert tg.get_op("exp").definition.implements == (np.exp,)


def test_rules_keep_only_what_they_use():
    exp, log, elu = (tg.get_op(n).definition for n in ("exp", "log", "elu"))
    assert exp.save_inputs is False     # g * out
    assert log.save_inputs is True      # g / x
    assert elu.save_inputs is True
    assert isinstance(exp.vjp, tuple) and len(exp.vjp) == 1


@pytest.mark.parametrize("name", ["leaky_relu", "elu", "softplus", "gelu", "silu", "relu",
                                  "reciprocal", "arcsin", "log1p"])
def test_new_ops_pass_gradient_checks_on_their_samples(name):
    info = tg.get_op(name)
    check_op(info, rng=np.random.default_rng(7))
    d = info.definition
    if d.samples is not None:  # the union domains keep inputs away from kinks and poles
        for inputs, _ in d.samples(np.random.default_rng(3)):
            assert (np.abs(inputs[0]) >= 0.2).all() or name in ("arcsin", "log1p")


def test_param_samples_reach_the_checker():
    cases = tg.get_op("leaky_relu").definition.samples(np.random.default_rng(0))
    assert [p for _, p in cases] == [{}, {}, {}, {"slope": 0.2}, {"slope": 0.2},
                                     {"slope": 0.2}]
    assert [np.shape(a[0]) for a, _ in cases[:3]] == [(3, 4), (3, 4), ()]


# ------------------------------------------------------------------ higher order


def second_derivative(name, x, **params):
    t = tg.tensor(x, requires_grad=True)
    getattr(tg.ops, name)(t, **params).sum().backward(create_graph=True)
    first = t.grad
    assert isinstance(first, tg.Tensor)
    t.grad = None
    first.sum().backward()
    return first.data, t.grad


SECOND = {
    "exp": (lambda x: np.exp(x), lambda x: np.exp(x)),
    "sin": (lambda x: np.cos(x), lambda x: -np.sin(x)),
    "cos": (lambda x: -np.sin(x), lambda x: -np.cos(x)),
    "tanh": (lambda x: 1 - np.tanh(x) ** 2,
             lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "sigmoid": (lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s),
                lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s)),
    "softplus": (lambda x: 1 / (1 + np.exp(-x)),
                 lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s)),
    "log": (lambda x: 1 / x, lambda x: -1 / x ** 2),
    "sqrt": (lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 * x ** -1.5),
    "reciprocal": (lambda x: -1 / x ** 2, lambda x: 2 / x ** 3),
    "arctan": (lambda x: 1 / (1 + x * x), lambda x: -2 * x / (1 + x * x) ** 2),
    "elu": (lambda x: np.where(x > 0, 1.0, np.exp(x)), lambda x: np.where(x > 0, 0, np.exp(x))),
}


@pytest.mark.parametrize("name", sorted(SECOND))
def test_second_derivative_matches_analytic(name):
    x = np.array([0.3, 0.7, 1.6])
    d1, d2 = SECOND[name]
    first, second = second_derivative(name, x)
    np.testing.assert_allclose(first, d1(x), rtol=1e-10)
    np.testing.assert_allclose(second, d2(x), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("name", ["gelu", "silu", "softplus", "elu"])
def test_second_derivative_matches_finite_differences_of_the_first(name):
    x = np.array([-1.3, -0.4, 0.45, 1.2])

    def first(t):
        with tg.enable_grad():
            s = tg.tensor(t.data, requires_grad=True)
            getattr(tg.ops, name)(s).sum().backward()
        return tg.tensor(s.grad)

    _, second = second_derivative(name, x)
    numeric = np.array([numerical_grad(lambda t, i=i: first(t)[i], x)[i]
                        for i in range(len(x))])
    np.testing.assert_allclose(second, numeric, rtol=1e-5, atol=1e-7)


def test_third_derivative_of_a_yaml_op():
    x = tg.tensor([0.2, -0.5], requires_grad=True)
    tg.ops.sin(x).sum().backward(create_graph=True)
    g1 = x.grad
    x.grad = None
    g1.sum().backward(create_graph=True)
    g2 = x.grad
    x.grad = None
    g2.sum().backward()
    np.testing.assert_allclose(g1.data, np.cos(x.data))
    np.testing.assert_allclose(g2.data, -np.sin(x.data))
    np.testing.assert_allclose(x.grad, -np.cos(x.data))


def test_first_order_gradients_stay_plain_ndarrays():
    x = tg.tensor([0.5, 2.0], requires_grad=True)
    tg.ops.gelu(x).sum().backward()
    assert type(x.grad) is np.ndarray


# ------------------------------------------------------------------ jvp rules


@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tanh", "sigmoid", "softplus",
                                  "leaky_relu", "square", "reciprocal"])
def test_jvp_formulas_match_finite_differences(name):
    info = tg.get_op(name)
    x = np.array([0.3, 0.9, 1.7])
    v = np.array([1.0, -0.5, 2.0])
    out = info.definition.forward(x, **info.params)
    tangent = info.definition.jvp((v,), out, x, **info.params)
    eps = 1e-6
    numeric = (info.definition.forward(x + eps * v, **info.params)
               - info.definition.forward(x - eps * v, **info.params)) / (2 * eps)
    np.testing.assert_allclose(tangent, numeric, rtol=1e-6)
    assert info.definition.jvp((None,), out, x, **info.params) is None


def test_jvp_zero_tangents_drop_out_of_sums_and_calls(load):
    _, (info,) = load(op_yaml(
        "spec_t_blend", args=["c", "a", "b"], nondiff=["c"], forward="where(c, a, 2 * b)",
        vjp={"a": "where(c, g, 0)", "b": "where(c, 0, 2 * g)"},
        jvp="where(c, da, 2 * db)"))
    c = np.array([True, False, True])
    a, b = np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])
    jvp = info.definition.jvp
    out = info.definition.forward(c, a, b)
    np.testing.assert_array_equal(jvp((None, None, np.ones(3)), out, c, a, b), [0, 2, 0])
    np.testing.assert_array_equal(jvp((None, np.ones(3), None), out, c, a, b), [1, 0, 1])
    assert jvp((None, None, None), out, c, a, b) is None
    _, (lin,) = load(op_yaml("spec_t_lin", args=["x", "y"], forward="3 * x - y",
                             vjp={"x": "3 * g", "y": "-g"}, jvp="3 * dx - dy"))
    x, y = np.zeros((2, 3)), np.zeros(3)
    out = lin.definition.forward(x, y)
    t = lin.definition.jvp((None, np.array([1.0, 2.0, 3.0])), out, x, y)
    np.testing.assert_array_equal(t, -np.array([[1.0, 2.0, 3.0]] * 2))  # out's shape


# ------------------------------------------------------------------ load_spec


CUBE = """
ops:
  spec_t_cube:
    args: [x]
    forward: "x * x * x"
    vjp: {x: "3 * g * x * x"}
    method: true
  spec_t_scaled:
    args: [x]
    params: {k: 2.0}
    forward: "k * spec_t_cube(x)"
    vjp: {x: "g * k * 3 * x * x"}
"""


def test_load_spec_registers_ops_with_the_file_as_source(load):
    path, infos = load(CUBE)
    assert [i.name for i in infos] == ["spec_t_cube", "spec_t_scaled"]
    assert all(i.source == str(path.resolve()) for i in infos)
    assert tg.get_op("spec_t_cube") is infos[0]
    x = tg.tensor([1.0, -2.0], requires_grad=True)
    y = tg.ops.spec_t_scaled(x, k=0.5) + x.spec_t_cube()
    np.testing.assert_allclose(y.data, 1.5 * x.data ** 3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 4.5 * x.data ** 2)
    check_grads(lambda t: tg.ops.spec_t_scaled(t, 3.0), np.array([0.3, -1.1]))


def test_load_spec_twice_reloads_the_file(load, tmp_path):
    path, _ = load(CUBE, name="reload.yaml")
    path.write_text(CUBE.replace("x * x * x", "x * x * x + 1"))
    infos = tg.load_spec(path)
    assert [i.name for i in infos] == ["spec_t_cube", "spec_t_scaled"]
    np.testing.assert_allclose(tg.ops.spec_t_cube(np.array([2.0])).data, [9.0])
    path.write_text(CUBE.replace('forward: "x * x * x"', 'forward: "x ** "'))
    with pytest.raises(tg.SpecError, match="syntax error"):
        tg.load_spec(path)
    np.testing.assert_allclose(tg.ops.spec_t_cube(np.array([2.0])).data, [9.0])  # kept


def test_unregistering_a_loaded_spec_removes_its_ops_and_methods(load):
    path, _ = load(CUBE)
    tg.unregister_plugin(f"spec:{path.resolve()}")
    assert "spec_t_cube" not in dir(tg.ops)
    assert not hasattr(tg.Tensor, "spec_t_cube")


def test_plugins_hand_spec_files_through_the_hook(tmp_path):
    path = tmp_path / "plugged.yaml"
    path.write_text(CUBE)

    class Plugin:
        @tg.hookimpl
        def tapegrad_spec_files(self):
            return [str(path)]

    name = tg.register_plugin(Plugin(), name="spec-test-plugin")
    try:
        assert tg.get_op("spec_t_cube").source == str(path)
        assert tg.get_op("spec_t_cube").plugin == "spec-test-plugin"
    finally:
        tg.unregister_plugin(name)


def test_nondiff_args_get_no_gradient_and_no_rule(load):
    _, (info,) = load(op_yaml("spec_t_scale", args=["x", "w"], nondiff=["w"],
                              forward="x * w", vjp={"x": "g * w"}))
    assert info.definition.nondiff == (1,)
    assert info.definition.vjp[1] is None
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    w = tg.tensor([3.0, 4.0], requires_grad=True)
    tg.ops.spec_t_scale(x, w).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])
    assert w.grad is None


def test_only_needed_vjp_formulas_run(load):
    # the rule for b would fail on these shapes: it must not run when b needs no gradient
    _, (info,) = load(op_yaml("spec_t_lazy", args=["a", "b"], forward="a * b",
                              vjp={"a": "g * b", "b": "g @ a"}))
    a = tg.tensor(np.ones((2, 3)), requires_grad=True)
    tg.ops.spec_t_lazy(a, np.full((2, 3), 2.0)).sum().backward()
    np.testing.assert_array_equal(a.grad, np.full((2, 3), 2.0))


def test_all_args_nondiff_makes_a_constant_op(load):
    _, (info,) = load(op_yaml("spec_t_const", args=["x"], nondiff=["x"],
                              forward="(x > 0) * 1.0"))
    assert not info.differentiable
    x = tg.tensor([-1.0, 1.0], requires_grad=True)
    assert tg.ops.spec_t_const(x)._node is None


def test_forward_may_call_earlier_ops_and_rules_any_op_of_the_file(load):
    _, infos = load("""
ops:
  spec_t_a:
    args: [x]
    forward: "2 * x"
    vjp: {x: "spec_t_b(g)"}       # defined below: fine in a rule
  spec_t_b:
    args: [x]
    forward: "spec_t_a(x) * 1"    # defined above: fine in a forward
    vjp: {x: "2 * g"}
""")
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.ops.spec_t_a(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_positional_params_and_keyword_values(load):
    _, (info,) = load(op_yaml("spec_t_kw", args=["x"], params={"lo": -1.0},
                              forward="clip(x, lo, None) + sum(x, axis=-1, keepdims=True)",
                              vjp={"x": "g * (x >= lo) + sum(g, axis=-1, keepdims=True)"}))
    x = np.array([[-2.0, 0.5], [1.0, 3.0]])
    np.testing.assert_allclose(tg.ops.spec_t_kw(x).data,
                               np.clip(x, -1, None) + x.sum(-1, keepdims=True))
    check_op(info)


@pytest.mark.parametrize("forward, vjp", [
    ("k * sin(x)", "k * (g * cos(x))"),          # a param on the left of the top '*'
    ("sin(x) * k", "g * (k * cos(x))"),
    ("scale(sin(x), by=k)", "g * scale(cos(x), by=k)"),
])
def test_plain_forms_pass_params_whatever_the_formula_shape(load, forward, vjp):
    # Plain formulas whose top is 'name * ...' or a call take their values as arguments;
    # an op with params must hand them over the same way.
    _, infos = load(f"""
ops:
  spec_t_scale:
    args: [x]
    params: {{by: 1.0}}
    forward: "by * x"
    vjp: {{x: "by * g"}}
  spec_t_kparam:
    args: [x]
    params: {{k: 2.0}}
    forward: "{forward.replace("scale(", "spec_t_scale(")}"
    vjp: {{x: "{vjp.replace("scale(", "spec_t_scale(")}"}}
""")
    x0 = np.array([0.3, -1.1, 2.0])
    for kw, k in (({}, 2.0), ({"k": 3.0}, 3.0)):
        x = tg.tensor(x0, requires_grad=True)
        y = tg.ops.spec_t_kparam(x, **kw)
        np.testing.assert_allclose(y.data, k * np.sin(x0))
        y.sum().backward()
        np.testing.assert_allclose(x.grad, k * np.cos(x0))
    for info in infos:
        check_op(info)


def test_integer_literals_in_rules_keep_float32_gradients(load):
    _, (info,) = load(op_yaml("spec_t_cube", args=["x"], forward="x * x * x",
                              vjp={"x": "3 * g * x ** 2"}, jvp="3 * dx * x ** 2"))
    x = tg.tensor(np.array([1.0, -2.0, 0.5], dtype=np.float32), requires_grad=True)
    tg.ops.spec_t_cube(x).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [3.0, 12.0, 0.75], rtol=1e-6)
    g, xd = np.ones(3, np.float32), x.data.copy()
    assert info.definition.vjp[0](g, None, xd).dtype == np.float32
    _, tangent = tg.jvp(tg.ops.spec_t_cube, (np.array([2.0]),), (np.array([1.0]),))
    np.testing.assert_allclose(tangent, [12.0])


def test_yaml_loader_is_the_fast_safe_one():
    assert specmod._Loader is getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert issubclass(specmod._Loader, yaml.SafeLoader) or "Safe" in specmod._Loader.__name__


# ------------------------------------------------------------------ SpecError


def spec_error(text: str, path: str = "errs.yaml") -> str:
    with pytest.raises(tg.SpecError) as info:
        compile_text(text, path)
    return str(info.value)


def assert_names(msg: str, *needles: str) -> None:
    missing = [n for n in needles if n not in msg]
    assert not missing, f"{missing} not in {msg!r}"


def good(**over):
    fields = {"args": ["x"], "forward": "x * 2", "vjp": {"x": "2 * g"}}
    fields.update(over)
    return {k: v for k, v in fields.items() if v is not None}


def test_error_malformed_yaml():
    msg = spec_error("ops:\n  f: [unclosed\n")
    assert_names(msg, "errs.yaml", "malformed YAML", "line")


def test_error_unsafe_yaml_tags_are_refused():
    msg = spec_error("ops: !!python/object/apply:os.system ['echo hi']\n")
    assert_names(msg, "errs.yaml", "malformed YAML", "unsupported tag", "python/object")
    msg = spec_error("ops: {f: {args: [x], forward: !!python/name:os.system x}}\n")
    assert_names(msg, "errs.yaml", "malformed YAML", "python/name")


@pytest.mark.parametrize("field", ["args", "forward", "vjp"])
def test_error_missing_field(field):
    msg = spec_error(op_yaml("myop", **good(**{field: None})))
    assert_names(msg, "errs.yaml", "op 'myop'", f"field '{field}'", "missing field")


def test_error_missing_ops_and_unknown_top_level_key():
    assert_names(spec_error("opz: {}\n"), "errs.yaml", "unknown top-level key", "'opz'",
                 "did you mean 'ops'?")
    assert_names(spec_error("- a\n- b\n"), "a mapping with one key, ops")


def test_error_unknown_field_with_close_match():
    msg = spec_error(op_yaml("myop", **good(), vpj={"x": "g"}))
    assert_names(msg, "op 'myop'", "field 'vpj'", "unknown field", "did you mean 'vjp' or 'jvp'?")


def test_error_vjp_for_unknown_arg():
    msg = spec_error(op_yaml("myop", **good(args=["alpha"], forward="alpha",
                                            vjp={"alpha": "g", "alpah": "g"})))
    assert_names(msg, "errs.yaml", "op 'myop'", "field 'vjp.alpah'",
                 "vjp for an unknown arg", "'alpah'", "did you mean 'alpha'?")


def test_error_missing_vjp_for_differentiable_arg():
    msg = spec_error(op_yaml("myop", **good(args=["x", "w"], forward="x * w",
                                            vjp={"x": "g * w"})))
    assert_names(msg, "op 'myop'", "field 'vjp'", "missing vjp for a differentiable arg",
                 "'w'", "nondiff")


def test_error_unknown_op_with_close_match():
    msg = spec_error(op_yaml("myop", **good(forward="2 * sigmod(x)")))
    assert_names(msg, "errs.yaml", "op 'myop'", "field 'forward'", "unknown op",
                 "'sigmod'", "'2 * sigmod(x)'", "did you mean 'sigmoid'")


def test_error_unknown_name_with_close_match():
    msg = spec_error(op_yaml("myop", **good(args=["alpha"], forward="alpah * 2",
                                            vjp={"alpha": "2 * g"})))
    assert_names(msg, "field 'forward'", "unknown name", "'alpah'", "did you mean 'alpha'?")
    msg = spec_error(op_yaml("myop", **good(forward="g * x")))
    assert_names(msg, "unknown name", "'g'", "only available in vjp")


def test_error_syntax_error():
    msg = spec_error(op_yaml("myop", **good(vjp={"x": "g * (x +"})))
    assert_names(msg, "errs.yaml", "op 'myop'", "field 'vjp.x'", "syntax error", "'g * (x +'")


REFUSED = [
    ("x.__class__", "attribute access", "x.__class__"),
    ("np.exp(x)", "attribute access", "np.exp"),
    ("x[0]", "subscripts", "x[0]"),
    ("(lambda: x)()", "lambda", "lambda: x"),
    ("sum([v for v in x])", "comprehensions", "[v for v in x]"),
    ("__import__('os')", "dunder names", "__import__"),
    ("open('f')", "unknown op", "open"),
    ("x * 'a'", "str literals", "'a'"),
    ("f'{x}'", "f-strings", "f'{x}'"),
    ("(y := x)", "assignment expressions", "y := x"),
    ("exp(*x)", "starred", "*x"),
    ("x if x else x", "conditional expressions", "x if x else x"),
    ("x and x", "'and'/'or'", "x and x"),
    ("x // 2", "operator FloorDiv", "x // 2"),
    ("0 < x < 1", "chained comparisons", "0 < x < 1"),
    ("~x", "unary operator Invert", "~x"),
    ("x * True", "True is refused", "True"),
    ("x ** 9 ** 9 ** 9", "overflows", "9 ** 9 ** 9"),
    ("x / (1 / 0)", "divides by zero", "1 / 0"),
    ("sum(x, axsi=0)", "has no param 'axsi'", "did you mean 'axis'?"),
    ("exp(x, x)", "takes 1 input(s)", "exp(x, x)"),
    ("stack(x)", "list of inputs", "stack"),
    ("exp(**x)", "keyword unpacking", "x"),
    ("x(1)", "unknown op", "is a value, not an op"),
]


@pytest.mark.parametrize("formula, problem, offending", REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_error_refused_constructs_name_the_offending_text(formula, problem, offending):
    msg = spec_error(op_yaml("myop", **good(forward=formula)))
    assert_names(msg, "errs.yaml", "op 'myop'", "field 'forward'", problem, offending)


def test_error_names_defined_twice():
    dup_op = "ops:\n  f: {args: [x], forward: x, vjp: {x: g}}\n  f: {args: [x], forward: x}\n"
    assert_names(spec_error(dup_op), "errs.yaml", "name defined twice (line 3)", "'f'")
    dup_vjp = "ops:\n  f:\n    args: [x]\n    forward: x\n    vjp: {x: g, x: g}\n"
    assert_names(spec_error(dup_vjp), "op 'f'", "field 'vjp'", "defined twice", "'x'")
    assert_names(spec_error(op_yaml("f", **good(args=["x", "x"]))), "op 'f'", "field 'args'",
                 "defined twice", "'x'")
    assert_names(spec_error(op_yaml("f", **good(params={"x": 1.0}))), "op 'f'",
                 "field 'params'", "defined twice", "'x'")
    assert_names(spec_error(op_yaml("f", **good(args=["x", "dx"], forward="x + dx",
                                                vjp={"x": "g", "dx": "g"}, jvp="dx"))),
                 "field 'jvp'", "defined twice", "'dx'")


def test_error_op_already_registered(tmp_path):
    path = tmp_path / "clash.yaml"
    path.write_text(op_yaml("sigmoid", **good()))
    with pytest.raises(tg.SpecError) as info:
        tg.load_spec(path)
    assert_names(str(info.value), "clash.yaml", "op 'sigmoid'", "name defined twice", NN)
    assert tg.get_op("sigmoid").source == NN


def test_error_rules_must_be_linear_in_their_seed():
    assert_names(spec_error(op_yaml("f", **good(vjp={"x": "2 * x"}))), "field 'vjp.x'",
                 "must use g", "nondiff")
    assert_names(spec_error(op_yaml("f", **good(jvp="2 * x"))), "field 'jvp'",
                 "must use a tangent (dx)")


def test_error_bad_field_values():
    assert_names(spec_error(op_yaml("f", **good(numpy="expp"))), "field 'numpy'",
                 "not a NumPy ufunc", "did you mean 'exp'")
    assert_names(spec_error(op_yaml("f", **good(numpy="add"))), "field 'numpy'",
                 "np.add takes 2 input(s)")
    assert_names(spec_error(op_yaml("f", **good(nondiff=["y"]))), "field 'nondiff'",
                 "not an arg", "'y'")
    assert_names(spec_error(op_yaml("f", **good(nondiff=["x"]))), "field 'vjp.x'",
                 "listed under nondiff")
    assert_names(spec_error(op_yaml("f", **good(domain=[2, 1]))), "field 'domain'", "lo < hi")
    assert_names(spec_error(op_yaml("f", **good(domain={"y": [0, 1]}))), "field 'domain'",
                 "unknown arg", "'y'")
    assert_names(spec_error(op_yaml("f", **good(samples=[{"params": {"k": 1}}]))),
                 "field 'samples[0]'", "not a param", "'k'")
    assert_names(spec_error(op_yaml("f", **good(forward=3))), "field 'forward'",
                 "expected a formula string")
    assert_names(spec_error(op_yaml("f", **good(args=["g"]))), "field 'args'", "reserved")
    assert_names(spec_error(op_yaml("f", **good(method=3))), "field 'method'")
    assert_names(spec_error(op_yaml("lambda", **good())), "an op name must be a Python "
                 "identifier", "'lambda'")


def test_error_forward_cannot_call_later_ops_of_the_file():
    text = ("ops:\n  f: {args: [x], forward: 'h(x)', vjp: {x: g}}\n"
            "  h: {args: [x], forward: x, vjp: {x: g}}\n")
    assert_names(spec_error(text), "op 'f'", "unknown op", "'h'", "defined after it")


def test_error_too_long_or_too_deep():
    deep = "(" * 250 + "x" + ")" * 250
    assert_names(spec_error(op_yaml("f", **good(forward=deep))), "field 'forward'",
                 "too many nested parentheses")
    unary = "-" * 150 + "x"
    assert_names(spec_error(op_yaml("f", **good(forward=unary))), "nested deeper")
    nested = "exp(" * 120 + "x" + ")" * 120
    assert_names(spec_error(op_yaml("f", **good(forward=nested))), "nested deeper")
    long = "x" + " + x" * 600
    assert_names(spec_error(op_yaml("f", **good(forward=long))), "longer than")


def test_spec_error_carries_its_parts():
    with pytest.raises(tg.SpecError) as info:
        compile_text(op_yaml("myop", **good(forward="x.real")), "parts.yaml")
    e = info.value
    assert (e.path, e.op, e.field, e.text) == ("parts.yaml", "myop", "forward", "x.real")
    assert isinstance(e, ValueError) and isinstance(e, tg.TapegradError)


def test_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(tg.SpecError, match="nope.yaml.*cannot read"):
        tg.load_spec(tmp_path / "nope.yaml")


def test_compiled_file_is_cached_by_mtime(tmp_path):
    path = tmp_path / "cached.yaml"
    path.write_text(CUBE)
    a = specmod._read_yaml(Path(path))
    assert specmod._read_yaml(Path(path)) is a
