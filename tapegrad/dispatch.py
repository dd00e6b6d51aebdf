"""NumPy calling tapegrad: ``np.exp(t)``, ``np.sum(t)``, ``ndarray * t`` on Tensors.

A NumPy function or ufunc applied to a Tensor runs the registered op that implements
it (``OpDef.implements``, or a ufunc ``forward``), so it is recorded like any op. This
is what lets vjp rules be written once in NumPy style: on ndarrays they are plain NumPy,
on Tensors (under ``create_graph=True``) they are recorded and can be differentiated
again.

The conversion rule: a Tensor that requires grad is never turned into an ndarray
implicitly (``np.asarray(t)``, ``np.array([t, 2 * t])``, third-party code calling
them): that raises ``TypeError``, because the gradient would be silently lost. A NumPy
function with no op behind it still works on Tensors when its result cannot carry a
gradient (comparisons, ``np.argmax``, ``np.zeros_like``, ...) or when no argument is
tracked; on a tracked Tensor it raises ``TypeError`` naming the function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import ConversionError, DifferentiabilityError
from .state import STATE

#: Filled by the registry: NumPy ufunc / function -> op caller. Replaced whole, never
#: edited in place, so readers in other threads always see a complete table.
TABLES: tuple[dict, dict] = ({}, {})

# Functions whose result carries no gradient: indices, shapes, tests, fresh constants.
CONSTANT_FUNCTIONS = frozenset({
    np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.nonzero,
    np.flatnonzero, np.count_nonzero, np.allclose, np.isclose, np.array_equal,
    np.array_equiv, np.zeros_like, np.ones_like, np.empty_like, np.result_type,
    np.may_share_memory, np.shares_memory, np.iscomplexobj, np.isrealobj, np.any, np.all,
    np.searchsorted, np.broadcast_shapes, np.can_cast, np.min_scalar_type,
    np.array2string, np.array_repr, np.array_str, np.isreal, np.iscomplex, np.argwhere,
    np.digitize, np.bincount, np.unravel_index, np.ravel_multi_index,
})


class NumpyProtocol:
    """NumPy's array protocols for :class:`~tapegrad.Tensor` (its base class)."""

    __slots__ = ()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        if not STATE.quiet and STATE.thread.trace is not None:
            STATE.thread.trace.escape(self, "np.asarray()")  # a traced value: refused
        if self._node is not None:
            raise conversion_error(self)
        data = self._data
        if not isinstance(data, np.ndarray):  # Dask, CuPy: an explicit conversion
            data = np.asarray(data)
        if dtype is not None and data.dtype != dtype:
            return data.astype(dtype)
        return data.copy() if copy else data

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any):
        op = TABLES[0].get(ufunc) if method == "__call__" and not kwargs else None
        if op is not None:
            return op(*inputs)
        if _tracked(inputs) and not _is_constant(ufunc):
            raise no_op_error(f"np.{ufunc.__name__}" +
                              ("" if method == "__call__" else f".{method}"))
        if not STATE.quiet and STATE.thread.trace is not None:  # a step of tg.compile's plan
            return STATE.thread.trace.numpy(getattr(ufunc, method), inputs, kwargs)
        return getattr(ufunc, method)(*_unwrap(inputs), **_unwrap(kwargs))

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any):
        op = TABLES[1].get(func)
        if op is not None:
            return op(*args, **kwargs)
        if func in CONSTANT_FUNCTIONS or not (_tracked(args) or _tracked(kwargs.values())):
            if not STATE.quiet and STATE.thread.trace is not None:  # tg.compile's plan
                return STATE.thread.trace.numpy(func, args, kwargs)
            return func(*_unwrap(args), **_unwrap(kwargs))
        raise no_op_error(_numpy_name(func))


def _unwrap(x: Any) -> Any:
    if isinstance(x, NumpyProtocol):
        return x._data
    if type(x) in (list, tuple):
        return type(x)(_unwrap(v) for v in x)
    if type(x) is dict:
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _tracked(values: Any) -> bool:
    for v in values:
        if isinstance(v, NumpyProtocol):
            if v._node is not None:
                return True
        elif type(v) in (list, tuple) and _tracked(v):
            return True
    return False


def _is_constant(ufunc: np.ufunc) -> bool:
    """Comparisons, logical and bitwise ufuncs: results that carry no gradient."""
    return all(t[-1] in "?bBhHiIlLqQ" for t in ufunc.types)


def _numpy_name(func: Callable) -> str:
    module = getattr(func, "__module__", "numpy") or "numpy"
    module = module.replace("numpy.linalg._linalg", "numpy.linalg").replace(
        "numpy.fft._pocketfft", "numpy.fft")
    prefix = "np" + module[len("numpy"):] if module.startswith("numpy") else module
    return f"{prefix}.{func.__name__}"


def conversion_error(t: Any) -> Exception:
    if STATE.thread.strict:
        return DifferentiabilityError("its vjp converted a tracked Tensor to a plain "
                                      "array (np.asarray or a function tapegrad has no op "
                                      "for), which would drop the gradient")
    node = t._node
    what = (f"the result of op {node.op.name!r}" if hasattr(node, "op")
            else "a tensor that requires grad")
    return ConversionError(
        f"cannot convert {what} to a NumPy array implicitly: its gradient would be "
        "silently lost (np.asarray, np.array, or a library calling them). Use a tapegrad "
        "op for the computation (tg.ops, or a registered op: see docs/NUMPY.md), or take "
        "the values as a deliberate constant with .detach() or .data")


def no_op_error(what: str) -> Exception:
    if STATE.thread.strict:
        return DifferentiabilityError(f"its vjp called {what}, which no op implements")
    return ConversionError(
        f"{what} was called on a tracked Tensor, but no registered op implements it, so "
        f"its gradient is unknown. Use a tapegrad op (tg.ops, see docs/NUMPY.md), or "
        f"register one with OpDef(..., implements=({what},)); .detach() the tensor to use "
        "its values as a constant")
