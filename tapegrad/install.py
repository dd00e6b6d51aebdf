"""Publishing an op table where users call it: ``tg.ops``, the Tensor methods and
operators ops ask for (``OpDef(method=, operators=, properties=)``), and the tables
NumPy's protocols dispatch through (``dispatch.py``).

The registry builds a table aside, then calls :func:`attributes` (which Tensor
attributes the ops claim; the first op claiming one keeps it) and :func:`publish`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from . import dispatch
from .opdef import OpInfo
from .tensor import CORE_ATTRIBUTES, Tensor

# Python's reflected binary operators: bound with their operands swapped.
_REFLECTED = {
    f"__r{n}__" for n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow",
                          "matmul", "and", "or", "xor", "lshift", "rshift", "divmod")
}


def attributes(table: dict[str, OpInfo], problems: list[str]) -> dict[str, Any]:
    """The Tensor attributes the ops ask for: name -> function or property."""
    bound: dict[str, Any] = {}
    owner: dict[str, str] = {}

    def claim(attr: str, info: OpInfo, value: Any) -> None:
        if attr in CORE_ATTRIBUTES:
            problems.append(
                f"op {info.name!r} ({info.source}) cannot bind Tensor.{attr}: it is "
                "a core Tensor attribute"
            )
        elif attr in bound:
            problems.append(
                f"op {info.name!r} ({info.source}) wants Tensor.{attr}, already bound "
                f"to op {owner[attr]!r}; keeping the first"
            )
        else:
            bound[attr] = value
            owner[attr] = info.name

    for info in table.values():
        d = info.definition
        call = info.call
        if d.method:
            if callable(d.method) and not isinstance(d.method, bool):
                claim(info.name, info, _method_adapter(d.method, call))
            else:
                attr = d.method if isinstance(d.method, str) else info.name
                claim(attr, info, call)
        for attr in d.operators:
            claim(attr, info, _reflected(call) if attr in _REFLECTED else call)
        for attr in d.properties:
            claim(attr, info, property(call, doc=info.doc or info.name))
    return bound


def publish(table: dict[str, OpInfo], bound: dict[str, Any], namespace: Any,
            previous: set[str]) -> None:
    """Publish a table built aside: ``tg.ops`` (``namespace``), the Tensor attributes
    ``bound`` (dropping those of ``previous`` it no longer binds) and NumPy's dispatch
    tables. Readers in other threads must never miss an entry present in both the old
    table and the new one: every shared mapping gets its new entries first and loses
    its stale ones after."""
    ufuncs: dict[Any, Any] = {}
    functions: dict[Any, Any] = {}
    for info in table.values():
        d = info.definition
        targets = list(d.implements)
        if isinstance(d.forward, np.ufunc) and d.forward.nin == info.nargs:
            targets.append(d.forward)
        for fn in targets:
            call = info.call
            if isinstance(fn, tuple):  # (NumPy function, adapter of its signature)
                fn, call = fn[0], functools.partial(fn[1], info.call)
            (ufuncs if isinstance(fn, np.ufunc) else functions).setdefault(fn, call)
    for attr, value in bound.items():
        setattr(Tensor, attr, value)
    _publish(namespace.__dict__, {name: info.call for name, info in table.items()})
    dispatch.TABLES = (ufuncs, functions)  # one store: readers see old or new, whole
    for attr in previous - bound.keys():
        if attr in Tensor.__dict__:
            delattr(Tensor, attr)


def _publish(target: dict[Any, Any], new: dict[Any, Any]) -> None:
    """Make ``target`` equal to ``new`` without a moment where a key of both is missing."""
    target.update(new)
    for key in [k for k in target if k not in new]:
        target.pop(key, None)


def _reflected(call: Callable[..., Any]) -> Callable[..., Any]:
    def reflected(self: Any, other: Any) -> Any:
        return call(other, self)

    reflected.__name__ = f"r{call.__name__}"
    return reflected


def _method_adapter(fn: Callable[..., Any], call: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(call, self, *args, **kwargs)

    method.__name__ = call.__name__
    method.__doc__ = call.__doc__
    return method
