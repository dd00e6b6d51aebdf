"""The float version of a plan whose every value is a float64 scalar: the same steps on
Python floats (operators, the ``math`` module), with the NumPy plan as its fallback."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .emit import _BINARY, _Emitter, _Namer, _out_expr, _tree_expr
from .steps import Program, Step, Var, _Guard, _Stale, _value_dtyped

ndarray = np.ndarray

# A plan whose every value is a float64 scalar (micrograd's workload: one op per
# number) runs on Python floats: a NumPy call on a 0-d array costs about 0.5 us, a
# float operation 0.03 us. Each step has a float form (operators, the math module);
# a float operation that fails (division by zero, overflow, a math domain error: NumPy
# would give inf or NaN with a warning) makes the call run the NumPy plan instead, so
# results are NumPy's. Elementary functions may differ from NumPy's in the last bit.

_MATH = {np.tanh: "tanh", np.exp: "exp", np.log: "log", np.sin: "sin", np.cos: "cos",
         np.tan: "tan", np.sqrt: "sqrt", np.arctan: "atan", np.arcsin: "asin",
         np.arccos: "acos", np.sinh: "sinh", np.cosh: "cosh", np.expm1: "expm1",
         np.log1p: "log1p", np.log2: "log2", np.log10: "log10", np.arctan2: "atan2"}
_FLOAT_BINARY = {k: v for k, v in _BINARY.items() if k not in (np.matmul, np.power)}
_FLOAT_KINDS = (np.dtype(np.float64), np.dtype(np.bool_))


def _scalar(v: Any) -> bool:
    return type(v) is Var and v.shape == () and v.dtype in _FLOAT_KINDS


def _generate_floats(plan: Program) -> tuple[str, dict, str] | None:
    """The plan on Python floats, or None when some value or step has no float form."""
    if not plan.steps or any(not _scalar(v) for v in plan.lives):
        return None
    namer = _Namer()
    ns: dict[str, Any] = {"asarray": np.asarray, "_Stale": _Stale, "_Guard": _Guard,
                          "math": math, "_numpy_plan": None, "_args": None}
    namer.used.update(ns)
    namer.used.update(v.name for v in plan.args)
    namer.used.update(v.name for v in plan.lives)
    namer.used.update(v.name for s in plan.steps for v in s.outs)
    em = _Emitter(namer, ns)
    exprs = _float_exprs(plan, em)
    if exprs is None:
        return None
    fname = namer("compiled_" + re.sub(r"\W+", "_", plan.name).strip("_") + "_floats")
    return _float_source(plan, exprs, em, fname), ns, fname


def _float_exprs(plan: Program, em: _Emitter) -> list[tuple[Step, str]] | None:
    """Each step's float expression ("" for a guard), or None when one has none."""
    arrays = {id(v) for v in plan.args if not _scalar(v)}  # index sources only (X[i])
    exprs: list[tuple[Step, str]] = []
    for s in plan.steps:
        if s.guard is not None:  # (a guard step has no output)
            exprs.append((s, ""))
            continue
        out = s.outs[0]
        if len(s.outs) != 1 or s.variadic or _value_dtyped(s):
            return None
        if (s.op is not None and "index" in s.op.definition.traits
                and type(s.args[0]) is Var and id(s.args[0]) in arrays and not s.pvars):
            index = em.expr(s.params["index"])
            if _scalar(out):
                exprs.append((s, f"float({s.args[0].name}[{index}])"))
            else:
                arrays.add(id(out))
                exprs.append((s, f"{s.args[0].name}[{index}]"))
            continue
        if not _scalar(out) or s.pvars:
            return None
        ins = [_operand(a) for a in s.args]
        if None in ins:
            return None
        expr = _float_expr(s, ins)
        if expr is None:
            return None
        exprs.append((s, expr))
    return exprs


def _operand(x: Any) -> str | None:
    """A step's argument as a float expression, or None."""
    if type(x) is Var:
        return x.name if _scalar(x) else None
    if type(x) in (ndarray, np.float64) and np.shape(x) == () and x.dtype == np.float64:
        x = float(x)
    if type(x) in (float, int, bool):
        text = repr(x) if np.isfinite(x) else f"float({str(float(x))!r})"
        return f"({text})" if text.startswith("-") else text
    return None


def _float_expr(s: Step, ins: list[str]) -> str | None:
    """The float form of step ``s`` on operands ``ins``, or None."""
    out = s.outs[0]
    fn, params = s.fn, s.params or {}
    try:
        binary = _FLOAT_BINARY.get(fn) if len(ins) == 2 and not params else None
        unary = _MATH.get(fn) if not params else None
    except TypeError:
        binary = unary = None
    if binary is not None:
        return f"{ins[0]} {binary} {ins[1]}"
    if unary is not None:
        return f"math.{unary}({', '.join(ins)})"
    if fn is np.negative and len(ins) == 1:
        return f"-{ins[0]}"
    if fn is np.power and len(ins) == 2 and not params:
        return f"math.pow({ins[0]}, {ins[1]})"
    if fn is np.absolute and len(ins) == 1:
        return f"abs({ins[0]})"
    if (fn is np.maximum or fn is np.minimum) and len(ins) == 2 and not params:
        a, b = ins  # NumPy's: a NaN on either side is the result; on a tie, b
        return f"({a} if {a} {'>' if fn is np.maximum else '<'} {b} or {a} != {a} else {b})"
    if (len(ins) == 1 and out.dtype == np.float64 and s.op is not None
            and "view" in s.op.definition.traits):
        return f"float({ins[0]})"  # a reshape, a cast... of one number: the number
    return None


def _float_source(plan: Program, exprs: list[tuple[Step, str]], em: _Emitter,
                  fname: str) -> str:
    """The float function's source: the steps in a ``try``, the NumPy plan on failure."""
    names = ", ".join(v.name for v in plan.args)
    lines = [f"def {fname}({names}):",
             "    # on Python floats; the NumPy plan below runs if a float operation fails",
             f"    _args = ({names}{',' if len(plan.args) == 1 else ''})",
             "    try:"]
    for v in plan.args:
        if _scalar(v):
            lines.append(f"        {v.name} = {'float' if v.dtype == np.float64 else 'bool'}"
                         f"({v.name})")
    for v in plan.lives:
        tname = em.const(v.tensor, f"{v.name}_tensor")
        lines.append(f"        {v.name} = {tname}._data")
        lines.append(f"        if {v.name}.shape != () or {v.name}.dtype != "
                     f"{em.const(v.dtype, 'float64')}:")
        lines.append("            raise _Stale")
        lines.append(f"        {v.name} = float({v.name})")
    for s, expr in exprs:
        if s.guard is not None:
            lines.append(f"        if {'not ' if s.guard else ''}{s.args[0].name}:")
            lines.append("            raise _Guard")
        else:
            lines.append(f"        {s.outs[0].name} = {expr}")
    lines.append("    except (ArithmeticError, ValueError):")
    lines.append("        return _numpy_plan(*_args)")
    leaves = [f"asarray({r.name})" if _scalar(r) else
              (r.name if type(r) is Var else _out_expr(r, em))
              for r in plan.out_refs]
    lines.append(f"    return {_tree_expr(plan.out_def, iter(leaves), em)}")
    return "\n".join(lines) + "\n"
