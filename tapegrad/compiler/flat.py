"""The flat loop: a plan run as a loop over its steps, reading and writing a list of
registers. Cheap to build (no source, no ``compile``): what runs a plan's first calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tree
from .steps import Program, Var, _Guard, _map_vars, _Stale, _value_dtyped

ndarray = np.ndarray

#: The flat loop frees arrays of at least ``FREE_BYTES`` after their last use (its first
#: calls only: fewer statements; the generated code frees every value).
FREE_BYTES = 4096


def _flat(plan: Program) -> Callable[..., Any]:
    """The plan as a loop over its steps, reading and writing a list of registers.

    Cheap to build (no source, no ``compile``): what runs the first calls of a plan.
    """
    regs0, lives, prog, results = _assemble(plan)
    n_args = len(plan.args)
    out_def = plan.out_def
    asarray = np.asarray

    def run(*leaves: Any) -> Any:
        r = regs0.copy()
        r[:n_args] = leaves
        for k, t, shape, dtype in lives:
            d = t._data
            if d.shape != shape or d.dtype != dtype:
                raise _Stale
            r[k] = d
        for kind, fn, ins, kw, out, extra in prog:
            if kind == 0:
                r[out] = fn(r[ins], r[kw])
            elif kind == 1:
                r[out] = fn(r[ins])
            elif kind == 2:
                r[out] = fn(*[r[i] for i in ins], **kw)
            elif kind == 3:
                variadic, wraps, checks, frees = extra
                args = [[r[i] for i in ins]] if variadic else [r[i] for i in ins]
                res = fn(*args, **(kw(r) if callable(kw) else kw))
                for o, v, w in zip(out, res if len(out) > 1 else (res,), wraps, strict=True):
                    r[o] = asarray(v) if w else v
                if checks is not None and any(r[o].dtype != d for o, d in checks):
                    raise _Guard
                if frees is not None:
                    for j in frees:
                        r[j] = None
            elif bool(r[ins]) is not kw:
                raise _Guard
        return tree.unflatten(out_def, [r[x] if is_reg else
                                        (x.copy() if type(x) is ndarray else x)
                                        for is_reg, x in results])

    return run


def _assemble(plan: Program) -> tuple[list, list, list, list]:
    """The flat loop's program: the initial registers (constants in place), the live
    tensors to read, one instruction per step, and where each output comes from.

    An instruction is ``(kind, fn, ins, kw, out, extra)``: kind 0 a plain call of two
    arguments (``ins`` and ``kw`` their registers), 1 of one (``ins`` its register), 2
    of any number with params ``kw``, all with one output; kind 3 any other call;
    kind 4 a guard (``bool(r[ins])`` must be ``kw``). Built once per plan, with plain
    loops; the common kinds keep no list (the cyclic GC scans what a plan keeps).
    """
    slots: dict[Var, int] = {}
    regs0: list[Any] = []
    for v in plan.args:
        slots[v] = len(regs0)
        regs0.append(None)
    lives = []
    for v in plan.lives:
        lives.append((len(regs0), v.tensor, v.shape, v.dtype))
        slots[v] = len(regs0)
        regs0.append(None)
    outputs = set()
    for x in plan.out_refs:
        if type(x) is Var:
            outputs.add(x)
    prog: list[tuple] = []
    for i, s in enumerate(plan.steps):
        ins = []
        for a in s.args:
            if type(a) is Var:
                ins.append(slots[a])
            else:  # a constant: in its own register
                ins.append(len(regs0))
                regs0.append(a)
        if s.guard is not None:
            prog.append((4, bool, ins[0], s.guard, None, None))
            continue
        outs = []
        for v in s.outs:
            outs.append(len(regs0))
            slots[v] = len(regs0)
            regs0.append(None)
        frees = None
        for v in s.vars:  # (_frees only for a step reading a large value)
            if v.nbytes >= FREE_BYTES:
                frees = _frees(s, i, slots, outputs)
                break
        checks = tuple((o, v.dtype) for o, v in zip(outs, s.outs, strict=True)) \
            if _value_dtyped(s) else None
        if (len(outs) == 1 and not s.variadic and not s.pvars and not s.outs[0].wrap
                and frees is None and checks is None):
            if s.params:
                prog.append((2, s.fn, ins, s.params, outs[0], None))
            elif len(ins) == 2:
                prog.append((0, s.fn, ins[0], ins[1], outs[0], None))
            elif len(ins) == 1:
                prog.append((1, s.fn, ins[0], None, outs[0], None))
            else:
                prog.append((2, s.fn, ins, {}, outs[0], None))
        else:
            params = s.params or {}
            kw = (lambda r, p=params: _map_vars(p, lambda x: r[slots[x]])) \
                if s.pvars else params
            wraps = tuple(v.wrap for v in s.outs)
            prog.append((3, s.fn, ins, kw, outs, (s.variadic, wraps, checks, frees)))
    results = [(True, slots[r]) if type(r) is Var else (False, r) for r in plan.out_refs]
    return regs0, lives, prog, results


def _frees(s: Any, i: int, slots: dict, outputs: set) -> tuple | None:
    """The registers of the large values step ``i`` (``s``) reads for the last time."""
    frees = None
    for v in s.vars:
        if v.nbytes >= FREE_BYTES and v.last == i and v.kind == "step" and v not in outputs:
            if frees is None:
                frees = []
            if slots[v] not in frees:
                frees.append(slots[v])
    return tuple(frees) if frees is not None else None
