"""Arguments of a compiled function: their signature (the key of the plan cache), the
arrays that become the plan's inputs, and names for them in the generated code."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tree
from ..tensor import Tensor

ndarray = np.ndarray


class _Eager(Exception):
    """The call must run ``f`` eagerly (a tracked Tensor among the arguments)."""


def _classify(x: Any) -> Any:
    """An argument leaf: an array for the plan (``ndarray``), or a static value."""
    if type(x) is ndarray:
        return x
    if isinstance(x, Tensor):
        if x._node is not None:
            raise _Eager
        x = x._data
        if type(x) is not ndarray:
            raise _Eager  # Dask and other array libraries: not compiled
        return x
    if isinstance(x, (bool, int, str, bytes, type(None))):
        return _STATIC
    if isinstance(x, (float, complex, np.generic, ndarray)):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):  # a list of numbers: array data
        return np.asarray(x)
    if hasattr(x, "__array_function__"):
        raise _Eager
    return _STATIC


_STATIC = object()


class _Slow(Exception):
    """An argument :func:`_walk` leaves to the general signature (tapegrad.tree)."""


def _walk(x: Any, leaves: list, sig: list) -> None:
    """The plan's arrays in ``x`` (appended to ``leaves``) and its signature (to ``sig``):
    the common containers (list, tuple, dict) and leaves, in :mod:`tapegrad.tree`'s
    order and with its rules (a list of numbers is one array); anything else raises
    :class:`_Slow`."""
    t = type(x)
    if t is ndarray:
        leaves.append(x)
        sig.append((x.shape, x.dtype))
    elif t is list or t is tuple:
        if x and tree._is_number(x[0]) and tree._is_number_list(x):
            a = np.asarray(x)
            leaves.append(a)
            sig.append((a.shape, a.dtype))
            return
        sig.append((t, len(x)))
        for v in x:
            _walk(v, leaves, sig)
    elif t is dict:
        sig.append((dict, tuple(x)))
        for v in x.values():
            _walk(v, leaves, sig)
    elif t is float or t is complex or isinstance(x, np.generic):
        a = np.asarray(x)
        leaves.append(a)
        sig.append((a.shape, a.dtype))
    elif x is None or t is int or t is bool or t is str:
        sig.append(("s", t, x))
    elif t is Tensor:
        if x._node is not None or type(x._data) is not ndarray:
            raise _Eager
        leaves.append(x._data)
        sig.append((x._data.shape, x._data.dtype))
    else:
        raise _Slow


def _arg_names(f: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[list[str], list[str]]:
    """Names for the positional and keyword arguments of ``f`` (its parameters' names)."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    pos = []
    for i in range(len(args)):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY,
                                                  params[i].POSITIONAL_OR_KEYWORD):
            pos.append(params[i].name)
        elif params and params[-1].kind is params[-1].VAR_POSITIONAL:
            pos.append(f"{params[-1].name}{i}")
        else:
            pos.append(f"arg{i}")
    return pos, list(kwargs)


def _leaf_name(path: str, pos_names: list[str]) -> str:
    """``params_W`` for the leaf at ``[0]['W']`` of ``[params, x, {}]`` (the positional
    arguments, then the keyword ones)."""
    m = re.match(r"\[(\d+)\](?:\[('[^']*'|\d+)\])?(.*)", path)
    if not m:
        return "x"
    i, first, rest = int(m.group(1)), m.group(2), m.group(3)
    if i < len(pos_names):
        base = pos_names[i]
        rest = f"[{first}]{rest}" if first is not None else rest
    else:  # a keyword argument
        base = (first or "kw").strip("'")
    rest = re.sub(r"[\[\]'\".]+", "_", rest).strip("_")
    return f"{base}_{rest}" if rest else base
