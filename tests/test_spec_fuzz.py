"""Fuzzing the YAML formula compiler: whatever the text, it returns ops or raises SpecError.

Nothing in a formula is ever evaluated by Python: these strings are parsed and compiled,
and anything outside the formula language is refused at load time.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad import spec as specmod
from tapegrad.opdef import OpDef
from tapegrad.registry import REGISTRY

FIELDS = ("forward", "vjp", "jvp")

HOSTILE = [
    "__import__('os')", "__import__('os').system('echo pwned')", "x.__class__",
    "x.__class__.__bases__[0].__subclasses__()", "(lambda: 1)()", "[i for i in x]",
    "{i: i for i in x}", "(i for i in x)", "x[0]", "x[::-1]", "open('f')",
    "open('/etc/passwd').read()", "eval('1')", "exec('x=1')", "compile('1', 'f', 'eval')",
    "globals()", "locals()", "vars()", "getattr(x, 'data')", "breakpoint()", "f'{x}'",
    "f'{x!r:>{10}}'", "(y := 1)", "exp(*x)", "exp(**x)", "exp(x, *[1])", "x if x else g",
    "not x", "x and g", "x or g", "~x", "x // 2", "x % 2", "x << 1", "x | g", "x & g",
    "x ^ g", "1 < x < 2", "x is g", "x in g", "await x", "yield x", "x; import os",
    "import os", "x = 1", "del x", "\x00", "x\x00", "'a' * 10", "b'x'", "1j * x", "...",
    "None", "True + x", "x ** 9 ** 9 ** 9", "9 ** 9 ** 9", "1 / 0", "1e999 * x",
    "10 ** 400", "(" * 300 + "x" + ")" * 300, "-" * 5000 + "x", "+" * 1999 + "x",
    "exp(" * 300 + "x" + ")" * 300, "x" + " + x" * 3000, "x" * 10000, "exp(x)" * 50,
    "sum(x, axis=__import__)", "sum(x, __x__=1)", "sum(x, nope=1)", "exp(x, x, x)",
    "stack(x)", "print(x)", "tg.ops.exp(x)", "np.exp(x)", "__builtins__", "__class__",
    "_" * 50, "x.real", "g.T", "out[...]", "exp", "exp.__call__(x)", "(exp)(x)",
    "exp(x)(x)", "[x]", "(x, g)", "{x}", "{}", "x @ 1 @ 2", "2 @ 3", "-(1 / 0)",
    "sum(x, axis=(0, __import__))", "sum(x, keepdims=True)", "sum(x, axis=-1)",
    "clip(x, None, 1)", "\\\n", "#", "x # comment", "\t x", "\n\nx", "lambda", "x.",
    "1_000 * x", "0x1F * x", "0b101 * x", "1e-3 * x", "x ** -1", "(((x)))",
]

NAMES = ["x", "y", "g", "out", "alpha", "dx", "dy", "exp", "sum", "where", "sigmoid",
         "__import__", "os", "open", "__class__", "lambda", "tg", "np", "eval", "nope"]
TOKENS = NAMES + ["1", "2.5", "1e308", "0", "-", "+", "*", "/", "**", "@", "//", "<", "==",
                  "(", ")", "[", "]", "{", "}", ",", ".", ":", ":=", "=", "'", '"', "f'",
                  " ", "if", "else", "for", "in", "not", "and", "*", "**", "\\", "\n",
                  "axis=", "keepdims=", "True", "None", "...", ";", "#", "!r", "$"]

token_formulas = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
formulas = st.one_of(st.text(max_size=200), token_formulas, st.sampled_from(HOSTILE))


def op_data(formula: str, field: str) -> dict:
    op = {"args": ["x", "y"], "params": {"alpha": 1.0}, "forward": "x * y + alpha",
          "vjp": {"x": "g * y", "y": "g * x"}}
    if field == "forward":
        op["forward"] = formula
    elif field == "vjp":
        op["vjp"] = {"x": formula, "y": "g * x"}
    else:
        op["jvp"] = formula
    return {"ops": {"fuzzed": op}}


@pytest.fixture(autouse=True)
def no_code_runs(monkeypatch):
    """Trip wires: a formula that reached eval/exec/compile/import/open would fail here."""
    def trap(name):
        def tripped(*args, **kwargs):
            raise AssertionError(f"{name} was called while compiling a spec")
        return tripped

    for name in ("eval", "exec", "compile", "open", "__import__"):
        monkeypatch.setattr(specmod, name, trap(name), raising=False)
    monkeypatch.setattr(os, "system", trap("os.system"))
    yield


def only_ops_or_spec_error(call):
    try:
        result = call()
    except tg.SpecError as exc:
        assert str(exc).strip()
        return None
    assert isinstance(result, list) and all(isinstance(d, OpDef) for d in result)
    return result


@settings(max_examples=400, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(formula=formulas, field=st.sampled_from(FIELDS))
def test_formula_compiler_returns_ops_or_spec_error(formula, field):
    result = only_ops_or_spec_error(
        lambda: specmod.compile_spec_data(op_data(formula, field), REGISTRY.ops, "fuzz.yaml"))
    if result is not None:  # what compiled runs as a closure tree on numbers, no Python eval
        (d,) = result
        x, y = np.array([0.5, 1.5]), np.array([2.0, 3.0])
        with np.errstate(all="ignore"):
            try:
                d.forward(x, y, alpha=1.0)
            except (ValueError, TypeError, ArithmeticError, tg.TapegradError):
                pass  # a numeric problem at run time is fine; no other effect is possible


@pytest.mark.parametrize("formula", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("field", FIELDS)
def test_hostile_formulas(formula, field):
    only_ops_or_spec_error(
        lambda: specmod.compile_spec_data(op_data(formula, field), REGISTRY.ops, "fuzz.yaml"))


@pytest.mark.parametrize("formula", ["__import__('os')", "x.__class__", "(lambda: 1)()",
                                     "[i for i in x]", "x[0]", "open('f')", "f'{x}'",
                                     "(y := 1)", "exp(*x)"])
def test_named_hostile_strings_are_refused_naming_the_text(formula):
    with pytest.raises(tg.SpecError) as info:
        specmod.compile_spec_data(op_data(formula, "forward"), REGISTRY.ops, "fuzz.yaml")
    msg = str(info.value)
    assert "fuzz.yaml" in msg and "op 'fuzzed'" in msg and "field 'forward'" in msg
    assert repr(formula) in msg or repr(formula.split("(")[0]) in msg or "f-strings" in msg


yaml_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                         st.text(max_size=20))
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.sampled_from(
                                ["ops", "args", "params", "forward", "vjp", "jvp", "nondiff",
                                 "method", "domain", "samples", "doc", "numpy", "x", "g",
                                 "shapes", "f"]), st.text(max_size=5)), inner, max_size=5)),
    max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=yaml_values)
def test_random_spec_structures_give_ops_or_spec_error(data):
    only_ops_or_spec_error(lambda: specmod.compile_spec_data(data, REGISTRY.ops, "r.yaml"))
    text = yaml.safe_dump(data)
    only_ops_or_spec_error(lambda: specmod.compile_spec_source(text, REGISTRY.ops, "r.yaml"))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.one_of(st.text(max_size=300),
                      st.lists(st.sampled_from(["ops:", "\n", "  ", "f:", "args:", "[x]", "{",
                                                "}", "&a", "*a", "!!python/object:os.system",
                                                "!!binary", "<<:", "- ", ":", "'", '"', "#",
                                                "forward: x", "vjp: {x: g}", "---", "..."]),
                               max_size=40).map("".join)))
def test_random_yaml_text_gives_ops_or_spec_error(text):
    only_ops_or_spec_error(lambda: specmod.compile_spec_source(text, REGISTRY.ops, "t.yaml"))


def test_yaml_bombs_are_refused_quickly():
    laughs = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n" for i in range(8))
    with pytest.raises(tg.SpecError, match="unknown top-level key"):
        specmod.compile_spec_source(laughs, REGISTRY.ops)
    with pytest.raises(tg.SpecError, match="recursive anchor"):
        specmod.compile_spec_source("ops: &a [*a]\n", REGISTRY.ops)
    with pytest.raises(tg.SpecError, match="recursive anchor"):
        specmod.compile_spec_source("ops: &a {f: *a}\n", REGISTRY.ops)
    shared = laughs.replace("a: &a", "x: &a").replace("i: &i", "ops: {f: {domain: *i}}\nj: &i")
    with pytest.raises(tg.SpecError):  # a huge shared structure is reported, not expanded
        specmod.compile_spec_source(shared, REGISTRY.ops)
