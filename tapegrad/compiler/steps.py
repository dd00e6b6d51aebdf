"""What a plan is made of: values (:class:`Var`), calls (:class:`Step`), the pruned
:class:`Program` the runners read, helpers walking the values nested in a call's
arguments, and the exceptions a running plan raises."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import tree
from ..tensor import Tensor

ndarray = np.ndarray



def _value_dtyped(s: Step) -> bool:
    """Whether a step's result dtype depends on values (``OpDef.traits``): the plan
    checks the dtype after it, and runs ``f`` eagerly when it differs."""
    return s.op is not None and "value_dtype" in s.op.definition.traits


class Var:
    """A value the plan computes: an argument leaf, a step's output, or a live tensor."""

    __slots__ = ("kind", "fn", "shape", "dtype", "wrap", "tensor", "name", "last", "nbytes")

    def __init__(self, kind: str, data: Any, fn: Callable[..., Any] | None = None,
                 wrap: bool = False, tensor: Tensor | None = None) -> None:
        self.kind = kind  # "arg", "step" or "live"
        self.fn = fn  # the function of the step computing it (not the step: no cycle)
        if type(data) is ndarray:  # (nearly always: no getattr with a default)
            self.shape = data.shape
            self.dtype = data.dtype
            self.nbytes = data.nbytes
        else:
            self.shape = getattr(data, "shape", ())
            self.dtype = getattr(data, "dtype", None)
            self.nbytes = getattr(data, "nbytes", 0)
        self.wrap = wrap  # the engine made an array of the forward's result (a scalar)
        self.tensor = tensor  # a live tensor (read at every call)
        self.name = ""
        self.last = -1  # index of the last step that reads it


class Step:
    """One call of the plan: ``outs = fn(*args, **params)``."""

    __slots__ = ("fn", "name", "args", "params", "variadic", "outs", "op", "guard", "vars",
                 "pvars")

    def __init__(self, fn: Callable[..., Any], name: str, args: list, params: dict,
                 variadic: bool, op: Any = None, pvars: Sequence | None = None,
                 reads: list | None = None) -> None:
        self.fn = fn
        self.name = name
        self.args = args
        self.params = params
        self.variadic = variadic
        self.outs: list[Var] = []
        self.op = op
        self.guard: bool | None = None  # a guard step: bool(args[0]) must be this
        self.pvars = pvars if pvars is not None else _vars_in(params, [])  # Vars in params
        if reads is None:  # every Var it reads (``args`` itself when they all are Vars)
            reads = [a for a in args if type(a) is Var]
            reads += self.pvars
        self.vars = reads


def _vars_in(x: Any, out: list) -> list:
    """The Vars in a (nested) argument or param value."""
    if type(x) is Var:
        out.append(x)
    elif type(x) in (tuple, list):
        for v in x:
            _vars_in(v, out)
    elif type(x) is dict:
        for v in x.values():
            _vars_in(v, out)
    elif type(x) is slice:
        _vars_in((x.start, x.stop, x.step), out)
    return out


def _map_vars(x: Any, fn: Callable[[Var], Any]) -> Any:
    tx = type(x)
    if tx is Var:
        return fn(x)
    if tx is tuple or tx is list:
        return tx(_map_vars(v, fn) for v in x)
    if tx is dict:
        return {k: _map_vars(v, fn) for k, v in x.items()}
    if tx is slice:
        return slice(_map_vars(x.start, fn), _map_vars(x.stop, fn), _map_vars(x.step, fn))
    return x


class Program:
    """A traced function, pruned: its steps, arguments, live tensors and outputs. What
    the runners read (the flat loop, the generated code, its float version)."""

    def __init__(self, name: str, steps: list[Step], args: list[Var], lives: list[Var],
                 out_def: tree.TreeDef, out_refs: list, arg_names: list[str]) -> None:
        self.name = name
        self.steps = steps
        self.n_steps = len(steps)
        self.args = args
        self.lives = lives
        self.out_def = out_def
        self.out_refs = out_refs
        self.arg_names = arg_names


class _Stale(Exception):
    """A live tensor's shape or dtype changed since the trace: trace again."""


class _Guard(Exception):
    """A guard of the plan failed: this call runs ``f`` eagerly."""
