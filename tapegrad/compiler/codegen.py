"""The plan as straight-line Python: one statement per step (ufuncs with an operator
written as operators, others called through the namespace with their non-default
params), each value deleted after its last use, results written into dead arrays."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..tensor import Tensor
from .buffers import _Buffers
from .emit import _BINARY, _UNARY, _Emitter, _Namer, _out_expr, _tree_expr
from .steps import Program, Step, Var, _Guard, _Stale, _value_dtyped

ndarray = np.ndarray

# The generated code deletes every value right after its last use (a plan holding all
# its small arrays until it returns was measured 30% slower than one freeing them: the
# allocator keeps reusing the same memory).


def _generate(plan: Program) -> tuple[str, dict, str]:
    """The plan as the source of one function, and its namespace."""
    namer = _Namer()
    ns: dict[str, Any] = {"asarray": np.asarray, "_Stale": _Stale, "_Guard": _Guard}
    namer.used.update(ns)
    em = _Emitter(namer, ns)
    fname = namer("compiled_" + re.sub(r"\W+", "_", plan.name).strip("_"))
    for v, want in zip(plan.args, plan.arg_names, strict=True):
        v.name = namer(want)
    lines = [f"def {fname}({', '.join(v.name for v in plan.args)}):"]
    for i, v in enumerate(plan.lives):
        t = v.tensor
        v.name = namer(t.name or f"live{i}")
        tname = em.const(t, f"{v.name}_tensor")
        shape = em.const(v.shape, f"{v.name}_shape")
        dtype = em.const(v.dtype, f"{v.name}_dtype")
        lines.append(f"    {v.name} = {tname}._data  # a tensor f reads: its value now")
        lines.append(f"    if {v.name}.shape != {shape} or {v.name}.dtype != {dtype}:")
        lines.append("        raise _Stale")
    outputs = {id(r) for r in plan.out_refs if type(r) is Var}
    reuse = _Buffers(plan.steps, outputs)
    counter = 0
    for i, s in enumerate(plan.steps):
        if s.guard is not None:
            lines.append(f"    if {'not ' if s.guard else ''}{em.expr(s.args[0])}:")
            lines.append("        raise _Guard  # a rule's test came out differently: eager")
            continue
        buf = reuse.dead_buffer(i, s)
        call = None if buf is not None else _operator(s, em)
        if call is None:
            call = _call(s, em)
            if buf is not None:  # the result goes into an array nothing reads any more
                call = f"{call[:-1]}, out={buf.name})"
        outs = []
        for v in s.outs:
            counter += 1
            v.name = namer(f"v{counter}")
            outs.append(v.name if v.last >= 0 or id(v) in outputs else "_")
        _assign(lines, s, call, outs, em)
        dead = [v.name for v in dict.fromkeys(s.vars)
                if v.last == i and v.kind == "step" and id(v) not in outputs]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    leaves = [_out_expr(r, em) for r in plan.out_refs]
    lines.append(f"    return {_tree_expr(plan.out_def, iter(leaves), em)}")
    lines[1:1] = _legend(em)
    return "\n".join(lines) + "\n", ns, fname


def _legend(em: _Emitter) -> list[str]:
    """Comment lines saying what the constants of the plan are."""
    shown = []
    for name in em.consts.values():
        x = em.ns[name]
        if type(x) is ndarray:
            if x.size <= 3:
                what = np.array2string(x, separator=", ", precision=4).replace("\n", "")
                what = f"{what} ({x.dtype})" if x.ndim else f"{x.item()!r} (a {x.dtype} array)"
            elif x.size and np.all(x == x.flat[0]):
                what = f"full({x.shape}, {x.flat[0].item()!r}) ({x.dtype})"
            else:
                what = f"an array of shape {x.shape} ({x.dtype})"
        elif isinstance(x, Tensor):
            continue  # (a live tensor: named on its own line)
        else:
            what = repr(x)
            what = what if len(what) <= 60 else what[:57] + "..."
        shown.append(f"    # {name} = {what}")
    return shown


def _operator(s: Step, em: _Emitter) -> str | None:
    """``a * b`` for a step calling a ufunc that has a Python operator, else None."""
    if s.params or s.variadic or not any(type(a) is Var for a in s.args):
        return None
    try:
        op = _BINARY.get(s.fn) if len(s.args) == 2 else _UNARY.get(s.fn) \
            if len(s.args) == 1 else None
    except TypeError:  # an unhashable function
        return None
    if op is None:
        return None
    ops = [em.expr(a) for a in s.args]
    ops = [f"({o})" if o.startswith("-") else o for o in ops]
    return f"{ops[0]} {op} {ops[1]}" if len(ops) == 2 else f"{op}{ops[0]}"


def _call(s: Step, em: _Emitter) -> str:
    """``fn(args, params)`` for a step."""
    fn = em.func(s.fn, s.name)
    if s.variadic:
        parts = [em.expr(list(s.args))]
    else:
        parts = [em.expr(a) for a in s.args]
    defaults = _defaults(s.fn)
    for k, val in (s.params or {}).items():
        if k in defaults and _same(defaults[k], val):
            continue
        parts.append(f"{k}={em.expr(val)}")
    return f"{fn}({', '.join(parts)})"


def _assign(lines: list[str], s: Step, call: str, outs: list[str], em: _Emitter) -> None:
    """The statement(s) binding a step's outputs."""
    if len(s.outs) == 1:
        v = s.outs[0]
        lines.append(f"    {v.name} = {'asarray(' + call + ')' if v.wrap else call}")
    else:
        lines.append(f"    {', '.join(outs)} = {call}")
        for v, o in zip(s.outs, outs, strict=True):
            if v.wrap and o != "_":
                lines.append(f"    {v.name} = asarray({v.name})")
    if _value_dtyped(s):
        for v, o in zip(s.outs, outs, strict=True):
            if o != "_":
                lines.append(f"    if {v.name}.dtype != {em.const(v.dtype, 'dtype')}:")
                lines.append("        raise _Guard  # the result's dtype depends on values")


@functools.lru_cache(maxsize=1024)
def _defaults(fn: Callable[..., Any]) -> dict:
    """The keyword defaults of a forward (params equal to them are left out)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in sig.parameters.values() if p.default is not p.empty}


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or not isinstance(a, (bool, int, float, str, tuple)):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays inside tuples: not the same
        return False
