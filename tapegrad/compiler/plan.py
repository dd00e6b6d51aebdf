"""Plans: a trace pruned (identity views, products by one and repeated calls aliased,
unused steps dropped, each value's last use noted) and run by a flat loop at first,
then by the straight-line code generated from it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import tree
from .codegen import _generate
from .emit import _exec
from .flat import _flat
from .floats import _generate_floats
from .steps import Program, Step, Var, _map_vars, _resolve, _vars_in
from .trace import Tracer

ndarray = np.ndarray
_NO = object()


class Plan(Program):
    """One traced signature: its steps, run by a flat loop at first and, once the plan
    has been reused (``HOT`` calls), by straight-line code generated from it.

    ``source`` is that code (generated on first read); ``n_steps`` the number of steps.
    """

    def __init__(self, tracer: Tracer, out_def: tree.TreeDef, out_refs: list,
                 arg_names: list[str], name: str) -> None:
        super().__init__(name, _prune(tracer.steps, out_refs), tracer.args,
                         list(tracer.lives.values()), out_def, out_refs, arg_names)
        self.calls = 0
        self.generated = False
        self._source: str | None = None
        self._namespace: dict[str, Any] = {}
        self._fname = ""
        self._floats: tuple[str, dict, str] | None = None
        self._numpy_source = ""
        self.run = _flat(self)

    @property
    def source(self) -> str:
        """The plan as the source of one Python function (two when every value is a
        float64 scalar: the one on Python floats first, then its NumPy fallback)."""
        if self._source is None:
            self._source, self._namespace, self._fname = _generate(self)
            self._numpy_source = self._source
            self._floats = _generate_floats(self)
            if self._floats is not None:
                self._source = self._floats[0] + "\n\n" + self._source
        return self._source

    def generate(self) -> None:
        """Replace the flat loop by the compiled straight-line code."""
        self.source  # noqa: B018 - generates the sources
        run = _exec(self._numpy_source, self._namespace, self._fname, self.name)
        if self._floats is not None:
            fsource, fns, fname = self._floats
            fns["_numpy_plan"] = run
            run = _exec(fsource, fns, fname, self.name)
        self.run = run
        self.generated = True


def _prune(steps: list[Step], out_refs: list) -> list[Step]:
    """Alias identity views and repeated calls (the same function on the same values:
    a vjp recomputing ``out * out``), drop the steps nothing needs, note each value's
    last use."""
    seen: dict[Any, Step] = {}
    pkeys: dict[int, Any] = {}  # params dicts are often shared (an op's defaults)
    mul, div = np.multiply, np.true_divide
    for s in steps:  # (one pass per step list, plain loops: it runs once per step)
        akey = _resolve_args(s)
        if s.view:
            s.outs[0].alias = s.args[0]
            continue
        if s.guard is not None:
            continue
        if s.fn is mul or s.fn is div:
            same = _times_one(s)
            if same is not None:  # x * 1 (a seed of ones, a 1.0 factor): x itself
                s.outs[0].alias = same
                s.view = True
                continue
        if s.pvars:
            pkey = _key(s.params)
        else:
            pkey = pkeys.get(id(s.params), _NO)
            if pkey is _NO:
                pkey = pkeys[id(s.params)] = _key(s.params)
        if pkey is None or akey is None:
            continue
        key = (id(s.fn), akey, pkey)
        first = seen.get(key)
        if first is None:
            seen[key] = s
            continue
        s.view = True  # a repeat: its outputs are the first call's
        for v, w in zip(s.outs, first.outs, strict=True):
            v.alias = w
    return _needed(steps, out_refs)


def _resolve_args(s: Step) -> tuple | None:
    """Resolve the aliases among the values ``s`` reads (in place), and return the key
    of its arguments (values by identity; None when a constant has none)."""
    args = s.args
    akey = []
    for j in range(len(args)):
        a = args[j]
        if type(a) is Var:
            if a.alias is not None:
                a = args[j] = _resolve(a)
            akey.append(id(a))  # (a bare int: constants' keys are tuples)
        else:
            k = _key(a)
            if k is None:
                akey = None
                break
            akey.append(k)
    reads = s.vars
    for j in range(len(reads)):
        if reads[j].alias is not None:
            reads[j] = _resolve(reads[j])
    if s.pvars:
        s.params = _map_vars(s.params, _resolve)
        s.pvars = [_resolve(v) for v in s.pvars]
    if akey is None:
        for j in range(len(args)):  # (the rest of them)
            if type(args[j]) is Var:
                args[j] = _resolve(args[j])
        return None
    return tuple(akey)


def _needed(steps: list[Step], out_refs: list) -> list[Step]:
    """The steps the outputs need (guards too), in order, each value's last use noted."""
    needed: set[Var] = set()
    for v in _vars_in(out_refs, []):
        needed.add(_resolve(v))
    kept = []
    for s in reversed(steps):
        if s.view:
            continue
        if s.guard is None:
            for v in s.outs:
                if v in needed:
                    break
            else:
                continue
        kept.append(s)
        needed.update(s.vars)
    kept.reverse()
    for i in range(len(kept)):
        for v in kept[i].vars:
            v.last = i
    return kept


def _times_one(s: Step) -> Var | None:
    """``x`` for a step computing ``x * 1`` or ``x / 1`` that leaves ``x`` as it is (its
    shape and dtype), else None."""
    if (s.fn is not np.multiply and s.fn is not np.true_divide) or len(s.args) != 2 \
            or s.params:
        return None
    out = s.outs[0]
    pairs = ((s.args[0], s.args[1]), (s.args[1], s.args[0])) if s.fn is np.multiply \
        else ((s.args[0], s.args[1]),)
    for a, b in pairs:
        if type(a) is Var and type(b) is not Var and a.shape == out.shape \
                and a.dtype == out.dtype:
            if type(b) in (int, float) and b == 1:
                return a
            if type(b) is ndarray and b.ndim <= len(out.shape) and b.dtype.kind in "fc" \
                    and np.all(b == 1):
                return a
    return None


def _key(x: Any) -> Any:
    """A hashable key for a step's call (values by identity), or None."""
    tx = type(x)
    if tx is Var:
        return ("v", id(x))
    if tx is tuple or tx is list:
        items = tuple(_key(v) for v in x)
        return None if None in items else (tx.__name__, items)
    if tx is dict:
        items = tuple((k, _key(v)) for k, v in x.items())
        return None if any(v is None for _, v in items) else ("d", items)
    if tx is slice:
        return _key(("slice", x.start, x.stop, x.step))
    if x is None or tx in (bool, int, float, complex, str):
        return (tx.__name__, x)
    if isinstance(x, np.dtype):
        return ("dtype", x.str)
    return ("id", id(x))  # arrays and other constants: by identity
