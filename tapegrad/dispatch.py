"""NumPy calling tapegrad: ``np.exp(t)``, ``np.sum(t)``, ``ndarray * t`` on Tensors.

A NumPy function or ufunc applied to a Tensor runs the registered op that implements
it (``OpDef.implements``, or a ufunc ``forward``), so it is recorded like any op. This
is what lets vjp rules be written once in NumPy style: on ndarrays they are plain NumPy,
on Tensors (under ``create_graph=True``) they are recorded and can be differentiated
again.

A NumPy function with no op behind it still works on Tensors when its result cannot
carry a gradient (comparisons, ``np.argmax``, ``np.zeros_like``, ...) or when no
argument is being tracked; on a tracked Tensor it raises, rather than silently
dropping the gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import graph
from .errors import DifferentiabilityError
from .tensor import Tensor

#: Filled by the registry: NumPy ufunc / function -> op caller.
UFUNC_OPS: dict[np.ufunc, Callable[..., Any]] = {}
FUNCTION_OPS: dict[Callable[..., Any], Callable[..., Any]] = {}

# Ufuncs whose result is piecewise constant: their gradient is zero wherever defined.
_CONSTANT_UFUNCS = {np.sign, np.floor, np.ceil, np.trunc, np.rint, np.heaviside}

# Functions whose result carries no gradient (indices, shapes, tests, fresh constants).
_CONSTANT_FUNCTIONS = {
    np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.nonzero,
    np.flatnonzero, np.count_nonzero, np.allclose, np.isclose, np.array_equal,
    np.array_equiv, np.zeros_like, np.ones_like, np.empty_like, np.full_like,
    np.result_type, np.may_share_memory, np.shares_memory, np.iscomplexobj,
    np.isrealobj, np.any, np.all, np.searchsorted, np.round, np.around,
    np.broadcast_shapes, np.can_cast, np.min_scalar_type,
    np.array2string, np.array_repr, np.array_str, np.atleast_1d,
}


def array_of(t: Tensor, dtype: Any = None, copy: Any = None) -> np.ndarray:
    """``np.asarray(t)``: the data, refused inside a vjp that must stay differentiable."""
    if graph.state.strict_depth and t._node is not None:
        raise DifferentiabilityError(
            "its vjp converted a tracked Tensor to a plain ndarray (np.asarray or a "
            "function tapegrad has no op for), which would drop the gradient"
        )
    data = t.data
    if dtype is not None and data.dtype != dtype:
        return data.astype(dtype)
    if copy:
        return data.copy()
    return data


def _unwrap(x: Any) -> Any:
    if isinstance(x, Tensor):
        return x._data
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v) for v in x)
    return x


def _tracked(values: Any) -> bool:
    for v in values:
        if isinstance(v, Tensor):
            if v._node is not None:
                return True
        elif type(v) in (list, tuple) and _tracked(v):
            return True
    return False


def array_ufunc(ufunc: np.ufunc, method: str, inputs: tuple, kwargs: dict) -> Any:
    op = UFUNC_OPS.get(ufunc) if method == "__call__" and not kwargs else None
    if op is not None:
        return op(*inputs)
    result = getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))
    if _tracked(inputs) and not _is_constant(ufunc, result):
        raise _no_op_error(f"np.{ufunc.__name__}" + ("" if method == "__call__"
                                                     else f".{method}"))
    return result


def array_function(func: Callable, args: tuple, kwargs: dict) -> Any:
    op = FUNCTION_OPS.get(func)
    if op is not None:
        return op(*args, **kwargs)
    if func in _CONSTANT_FUNCTIONS or not (_tracked(args) or _tracked(kwargs.values())):
        return func(*_unwrap(args), **_unwrap(kwargs))
    raise _no_op_error(f"np.{func.__name__}")


def _is_constant(ufunc: np.ufunc, result: Any) -> bool:
    if ufunc in _CONSTANT_UFUNCS:
        return True
    results = result if isinstance(result, tuple) else (result,)
    return all(np.asarray(r).dtype.kind in "biu" for r in results)


def _no_op_error(what: str) -> Exception:
    msg = (
        f"{what} was called on a tracked Tensor, but no registered op implements it, so "
        f"its gradient is unknown. Use a tapegrad op (tg.ops), or register one with "
        f"OpDef(..., implements=({what},))"
    )
    if graph.state.strict_depth:
        return DifferentiabilityError(f"its vjp called {what}, which no op implements")
    return TypeError(msg)
