"""Rendering for generated code: unique identifiers, Python expressions for the values
of a plan (constants go to the code's namespace, never into its text), output trees, and
``exec`` of the finished source (kept in ``linecache`` for tracebacks)."""

from __future__ import annotations

import builtins
import keyword
import linecache
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tree
from .steps import Var

ndarray = np.ndarray


def _exec(source: str, namespace: dict, fname: str, name: str) -> Callable[..., Any]:
    """The function ``fname`` defined by generated ``source`` (shown in tracebacks)."""
    filename = f"<tg.compile {name} #{next(_plan_ids)}>"
    code = builtins.compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, namespace)  # noqa: S102 - generated from the trace, never from user text
    return namespace[fname]


_plan_ids = iter(range(1, 1 << 62))


class _Namer:
    """Identifiers for the generated code, unique within one plan."""

    def __init__(self) -> None:
        self.used = set(keyword.kwlist)  # builtins may be shadowed: the code calls none

    def __call__(self, want: str) -> str:
        base = re.sub(r"\W+", "_", want).strip("_") or "v"
        if base[0].isdigit():
            base = "_" + base
        name, i = base, 1
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


_LITERAL_TYPES = (bool, int, str, type(None))
# ufuncs written as Python operators (the same call on arrays, and code that reads like
# the NumPy one writes by hand).
_BINARY = {np.add: "+", np.subtract: "-", np.multiply: "*", np.true_divide: "/",
           np.floor_divide: "//", np.remainder: "%", np.power: "**", np.matmul: "@",
           np.greater: ">", np.less: "<", np.greater_equal: ">=", np.less_equal: "<=",
           np.equal: "==", np.not_equal: "!=", np.bitwise_and: "&", np.bitwise_or: "|",
           np.bitwise_xor: "^"}
_UNARY = {np.negative: "-", np.invert: "~"}


class _Emitter:
    """Renders values as Python expressions; constants go to the namespace."""

    def __init__(self, namer: _Namer, ns: dict) -> None:
        self.namer = namer
        self.ns = ns
        self.consts: dict[int, str] = {}
        self.funcs: dict[int, str] = {}

    def const(self, x: Any, hint: str = "c") -> str:
        name = self.consts.get(id(x))
        if name is None:
            name = self.consts[id(x)] = self.namer(hint)
            self.ns[name] = x
        return name

    def func(self, fn: Any, want: str) -> str:
        name = self.funcs.get(id(fn))
        if name is None:
            name = self.funcs[id(fn)] = self.namer(want)
            self.ns[name] = fn
        return name

    def expr(self, x: Any) -> str:
        tx = type(x)
        if tx is Var:
            return x.name
        if tx in _LITERAL_TYPES:
            return repr(x)
        if tx is float:
            return repr(x) if np.isfinite(x) else self.const(x)
        if x is Ellipsis:
            return "..."
        if tx is tuple:
            inner = ", ".join(self.expr(v) for v in x)
            return f"({inner},)" if len(x) == 1 else f"({inner})"
        if tx is list:
            return "[" + ", ".join(self.expr(v) for v in x) + "]"
        if tx is slice:
            return f"slice({self.expr(x.start)}, {self.expr(x.stop)}, {self.expr(x.step)})"
        if tx is dict and all(type(k) is str for k in x):
            return "{" + ", ".join(f"{k!r}: {self.expr(v)}" for k, v in x.items()) + "}"
        return self.const(x)


def _out_expr(r: Any, em: _Emitter) -> str:
    if type(r) is Var:
        return r.name
    if type(r) is ndarray:
        return f"{em.const(r)}.copy()"  # the caller may write into it; the plan keeps it
    return em.expr(r)


def _tree_expr(d: tree.TreeDef, leaves: Any, em: _Emitter) -> str:
    kind = d.kind
    if kind == "leaf":
        return next(leaves)
    if kind == "none":
        return "None"
    items = [_tree_expr(c, leaves, em) for c in d.children]
    if kind == "list":
        return "[" + ", ".join(items) + "]"
    if kind == "tuple":
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if kind == "named":
        return f"{em.const(d.node_type, d.node_type.__name__)}({', '.join(items)})"
    if kind == "dict" and d.node_type is dict:
        return "{" + ", ".join(f"{em.expr(k)}: {v}" for k, v in zip(d.keys, items,
                                                                   strict=True)) + "}"
    body = ", ".join(f"({em.expr(k)}, {v})" for k, v in zip(d.keys, items, strict=True))
    if d.extra is not None:
        return f"{em.const(d.node_type, d.node_type.__name__)}({em.const(d.extra)}, [{body}])"
    return f"{em.const(d.node_type, d.node_type.__name__)}([{body}])"
