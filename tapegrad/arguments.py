"""An op's arguments: how many array inputs and which params its forward takes, and
how the arguments of one call bind to them.

An op's inputs are its forward's positional arguments without a default (or
``OpDef(nargs=...)``); its params are the keyword arguments (or ``OpDef(params=...)``).
A call may pass params positionally after the inputs, as NumPy's functions allow.
Below, ``op`` is an ``OpDef`` and ``info`` an ``OpInfo`` (``opdef.py`` imports this
module, so it does not import that one).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import PluginError, TapegradTypeError

ndarray = np.ndarray
NUMBERS = (int, float, complex, bool, np.generic)


# --------------------------------------------------------------------------- declaring


def input_names(forward: Callable[..., Any], nargs: int, params: Mapping[str, Any]) -> list:
    """The forward's own names for its array inputs (``x0, x1`` when it has none)."""
    try:
        names = [p.name for p in inspect.signature(forward).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                 and p.name not in params]
    except (TypeError, ValueError):
        names = []
    return names[:nargs] if len(names) >= nargs else [f"x{i}" for i in range(nargs)]


def resolve_arity(op: Any, source: str) -> tuple[int, dict[str, Any]]:
    """Number of array inputs and keyword params of ``op``, inferring what it leaves out."""
    params = dict(op.params) if op.params is not None else None
    nargs = op.nargs
    if op.variadic:
        return 1, params or {}
    if nargs is None or params is None:
        inferred_n, inferred_p = _infer_signature(op.forward, params or {})
        if nargs is None:
            # optional inputs are the first keyword arguments, defaulting to None
            nargs = inferred_n + op.optional
        if params is None:
            params = dict(list(inferred_p.items())[op.optional:])
    if nargs is None or nargs < 0:
        raise PluginError(
            f"op {op.name!r} from {source}: cannot tell how many inputs its forward "
            "takes; pass nargs= to OpDef"
        )
    return nargs, params or {}


def _infer_signature(fn: Callable[..., Any],
                     declared: Mapping[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """Inputs = positional arguments without default that are not declared params."""
    if isinstance(fn, np.ufunc):
        return fn.nin, {}
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, {}
    n = 0
    params: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.name in declared:
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[p.name] = None if p.default is p.empty else p.default
        elif p.kind is p.VAR_POSITIONAL:
            return None, params
    return n, params


# --------------------------------------------------------------------------- calling


def as_input(x: Any, info: Any, pos: int) -> Any:
    """An op input that is not a Tensor: arrays and numbers pass, sequences convert."""
    if x is None or isinstance(x, (ndarray, *NUMBERS)) or hasattr(x, "__array_function__"):
        return x
    if isinstance(x, (list, tuple)):
        arr = np.asarray(x)  # a sequence holding a tracked Tensor refuses (conversion rule)
        if arr.dtype.kind in "biufc":
            return arr
    raise TapegradTypeError(f"op {info.name!r} ({info.source}): input {pos} is a "
                            f"{type(x).__name__}, expected a Tensor, an array or a number")


def bind(info: Any, args: tuple, params: dict) -> tuple[tuple, dict]:
    """Split a call's arguments into inputs and params (positional params allowed)."""
    need = info.nargs - info.definition.optional
    if len(args) < need:
        raise TapegradTypeError(f"op {info.name!r} ({info.source}) takes {need} input(s), "
                                f"got {len(args)}")
    ninputs = min(len(args), info.nargs)
    inputs = args[:ninputs] + (None,) * (info.nargs - ninputs)
    return inputs, bind_params(info, args[ninputs:], params)


def bind_variadic(info: Any, args: tuple, params: dict) -> tuple[list, dict]:
    if not args:
        raise TapegradTypeError(f"op {info.name!r} ({info.source}) takes a sequence of inputs")
    extra = args[1:]
    return list(args[0]), (bind_params(info, extra, params) if extra or params
                           else info.params)


def bind_params(info: Any, extra: tuple, params: dict) -> dict:
    names = list(info.params)
    if len(extra) > len(names):
        raise TapegradTypeError(f"op {info.name!r} ({info.source}) takes {info.nargs} "
                                f"input(s) and params {names}, but "
                                f"{info.nargs + len(extra)} were given")
    unknown = params.keys() - info.params.keys()
    if unknown:
        raise TapegradTypeError(f"op {info.name!r} ({info.source}) got unexpected "
                                f"parameter(s) {sorted(unknown)}; it takes {names or 'none'}")
    bound = dict(zip(names, extra, strict=False))
    dup = bound.keys() & params.keys()
    if dup:
        raise TapegradTypeError(f"op {info.name!r}: got multiple values for {sorted(dup)}")
    return {**info.params, **bound, **params}
