"""The spec field ``ufunc: MODULE.NAME``: a ufunc of an allowlisted module as forward,
and every way it is refused (nothing outside the allowlist is ever imported)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import spec as specmod
from tapegrad.gradcheck import check_op
from tapegrad.registry import REGISTRY


def op_yaml(name: str = "f", **fields) -> str:
    return yaml.safe_dump({"ops": {name: fields}}, sort_keys=False)


def spec_error(text: str) -> str:
    with pytest.raises(tg.SpecError) as info:
        specmod.compile_spec_source(text, REGISTRY.ops, "u.yaml")
    return str(info.value)


def good(**over):
    fields = {"args": ["x"], "ufunc": "scipy.special.erf",
              "vjp": {"x": "g * 1.1283791670955126 * exp(-x * x)"}}
    return {**fields, **over}


def test_a_scipy_ufunc_forward_dispatches_and_differentiates(tmp_path):
    special = pytest.importorskip("scipy.special")
    path = tmp_path / "u_erf.yaml"
    path.write_text(op_yaml("u_erf_test", **good()))
    (info,) = tg.load_spec(path)
    try:
        assert info.definition.forward is special.erf
        assert special.erf in info.definition.implements
        x = np.linspace(-1.5, 1.5, 7)
        t = tg.tensor(x, requires_grad=True)
        y = special.erf(t)                     # __array_ufunc__ runs the op
        np.testing.assert_allclose(y.data, special.erf(x), rtol=0, atol=0)
        y.sum().backward()
        np.testing.assert_allclose(t.grad, 2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-14)
        check_op(info, order=2)
    finally:
        tg.unregister_plugin(f"spec:{path.resolve()}")


def test_numpy_is_an_allowed_module_too():
    (d,) = specmod.compile_spec_source(
        op_yaml("f", args=["x"], ufunc="numpy.exp", vjp={"x": "g * out"}), REGISTRY.ops)
    assert d.forward is np.exp and d.implements == (np.exp,)


@pytest.mark.parametrize("value, words", [
    ("os.system", ["module not allowed", "'os'", "allowed modules: numpy, scipy.special"]),
    ("scipy.linalg.inv", ["module not allowed", "'scipy.linalg'"]),
    ("scipy.specal.erf", ["module not allowed", "did you mean 'scipy.special'"]),
    ("erf", ["expected MODULE.NAME"]),
    (3, ["expected MODULE.NAME"]),
    ("scipy.special._ufuncs", ["expected the name of a ufunc"]),
    ("scipy.special.erff", ["not a ufunc of scipy.special", "did you mean 'erf'"]),
    ("scipy.special.polygamma", ["not a ufunc of scipy.special"]),
    ("scipy.special.beta", ["scipy.special.beta takes 2 input(s)", "1 arg(s)"]),
])
def test_refused_ufunc_names(value, words, monkeypatch):
    imported = []
    real = specmod.importlib.import_module
    monkeypatch.setattr(specmod.importlib, "import_module",
                        lambda name, *a: imported.append(name) or real(name, *a))
    msg = spec_error(op_yaml("f", **good(ufunc=value)))
    for w in ["u.yaml", "op 'f'", "field 'ufunc'", *words]:
        assert w in msg, (w, msg)
    assert set(imported) <= set(specmod.UFUNC_MODULES)


@pytest.mark.parametrize("module", ["numpy", "scipy.special"])
def test_module_getattr_hooks_are_never_consulted(module, monkeypatch):
    """Names are looked up in the module's own namespace: a module ``__getattr__`` (which
    NumPy and SciPy use to import submodules lazily) never runs."""
    mod = pytest.importorskip(module)
    asked = []
    monkeypatch.setattr(mod, "__getattr__", lambda name: asked.append(name), raising=False)
    msg = spec_error(op_yaml("f", **good(ufunc=f"{module}.lazy_submodule")))
    assert "field 'ufunc'" in msg and "not a" in msg
    assert asked == []


@settings(max_examples=100, deadline=None, derandomize=True)
@given(value=st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(["numpy", "scipy", "special", "os", "erf", "exp", "_ufuncs",
                              "__class__", "linalg", "f2py", "", "sys"]),
             min_size=1, max_size=4).map(".".join)))
def test_random_ufunc_names_give_an_op_or_spec_error(value):
    try:
        specmod.compile_spec_source(op_yaml("f", **good(ufunc=value)), REGISTRY.ops)
    except tg.SpecError as exc:
        assert "field 'ufunc'" in str(exc)


def test_numpy_and_ufunc_together_and_params_are_refused():
    msg = spec_error(op_yaml("f", **good(numpy="exp")))
    assert "field 'ufunc'" in msg and "not both" in msg
    msg = spec_error(op_yaml("f", **good(params={"k": 1.0})))
    assert "field 'params'" in msg and "takes no params" in msg
