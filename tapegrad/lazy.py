"""Arrays of other libraries, and Dask's lazy arrays in particular.

A Tensor's data may be a Dask array (``tg.tensor(dask_array)`` keeps it as it is): ops
run their NumPy-written forward and vjp on it through NumPy's protocols
(``__array_ufunc__``, ``__array_function__``), so forward, backward and ``.grad`` stay
lazy Dask graphs until something asks for values. :func:`compute` asks for several at
once, so that what they share (the forward) runs once.

This module imports no optional library at import time: the engine's core asks it
whether a value is :func:`foreign` (another library's array, never converted to NumPy
implicitly) and whether a shape is :func:`unknown` (NaN sizes: Dask arrays of unknown
chunk sizes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeError, TapegradTypeError

__all__ = ["compute", "foreign", "guarded", "is_lazy", "same_shape", "unknown",
           "unknown_call_error", "unknown_shape_error"]

ndarray = np.ndarray


def foreign(x: Any) -> bool:
    """Whether ``x`` is another library's array (Dask, CuPy): the engine uses it as it
    is and never converts it to NumPy (that would compute a lazy array, or copy a
    device array to the host). Tensors, ndarrays and numbers are not foreign."""
    return (not isinstance(x, ndarray) and hasattr(x, "__array_function__")
            and not hasattr(x, "_node"))


def is_lazy(x: Any) -> bool:
    """Whether ``x`` (or a Tensor's data) is a Dask collection: values not computed yet."""
    return hasattr(getattr(x, "_data", x), "__dask_graph__")


def unknown(*shapes: tuple) -> bool:
    """Whether any of ``shapes`` holds an unknown size (NaN: Dask's unknown chunks)."""
    return any(s != s for shape in shapes for s in shape)


def same_shape(a: tuple, b: tuple) -> bool:
    """Whether two shapes are equal up to unknown (NaN) sizes in the same places (NaN
    never equals NaN, so ``a == b`` alone says no)."""
    return len(a) == len(b) and all(x == y or (x != x and y != y)
                                    for x, y in zip(a, b, strict=True))


def unknown_shape_error(op: Any, i: int, gshape: tuple, shape: tuple) -> ShapeError:
    """The error for a gradient that needs summing over axes of unknown size."""
    return ShapeError(
        f"op {op.name!r} (from {op.source}): the gradient of input {i} has shape "
        f"{tuple(gshape)} and the input {tuple(shape)}: sizes Dask does not know yet "
        "(NaN: unknown chunk sizes, e.g. after boolean indexing) cannot be matched to "
        "sum the gradient over broadcast axes. Call .compute_chunk_sizes() on the Dask "
        "array (or build it with known chunks) before this op")


def guarded(info: Any) -> Any:
    """The forward the engine calls for op ``info``, with the inputs as positional
    arguments (a variadic op's forward gets them as one list). For an op declared
    ``OpDef(lazy=False)`` it refuses Dask arrays with an error naming the op (rather
    than letting Dask compute them eagerly). Decided once, when the op is registered:
    other ops pay nothing."""
    forward = own = info.definition.forward
    if info.definition.variadic:
        def spread(*arrays: Any, **params: Any) -> Any:
            return own(list(arrays), **params)
        spread.__name__ = getattr(own, "__name__", info.name)
        forward = spread
    if info.definition.lazy:
        return forward

    def refusing(*args: Any, **params: Any) -> Any:
        for a in args:
            if hasattr(a, "__dask_graph__"):
                raise TapegradTypeError(
                    f"op {info.name!r} (from {info.source}) needs concrete values and "
                    "cannot run lazily on a Dask array (Dask would compute it here, or "
                    "has no equivalent). Compute the input first (tg.compute(x), "
                    "x.compute(), or x.persist() to keep it on the cluster), or write "
                    "the step with dask.array functions")
        return forward(*args, **params)

    refusing.__name__ = getattr(forward, "__name__", info.name)
    return refusing


def unknown_call_error(op: Any, shapes: list) -> ShapeError | None:
    """Why a vjp failed, when the call involved unknown (NaN) sizes: the rule needed a
    shape Dask does not know yet (a reduction broadcasting its gradient back)."""
    if not unknown(*shapes):
        return None
    return ShapeError(
        f"op {op.name!r} (from {op.source}): its gradient needs the shapes of the call, "
        f"{', '.join(str(tuple(s)) for s in shapes)}, and Dask does not know some sizes "
        "yet (NaN: unknown chunk sizes, e.g. after boolean indexing). Call "
        ".compute_chunk_sizes() on the Dask array (or build it with known chunks) "
        "before this op")


def compute(*xs: Any, **kwargs: Any) -> tuple:
    """The values of Tensors and arrays, computed in one Dask pass: NumPy arrays (a tuple).

    ``tg.compute(loss, w.grad)`` runs the graph that ``loss`` and ``w.grad`` share once
    (computing them one after the other would run the forward twice). Dask arrays, and
    Tensors holding them, are computed together with ``dask.compute`` (``kwargs`` go
    to it: ``scheduler=...``; a ``dask.distributed`` client that is open is used as
    Dask always does); NumPy arrays, numbers and Tensors holding them come back as
    arrays without Dask. The result always has one entry per argument, even for one.
    """
    arrays = [_array_of(x, k) for k, x in enumerate(xs)]
    lazy = [k for k, a in enumerate(arrays) if hasattr(a, "__dask_graph__")]
    if lazy:
        import dask

        done = dask.compute(*[arrays[k] for k in lazy], **kwargs)
        for k, value in zip(lazy, done, strict=True):
            arrays[k] = value
    return tuple(np.asarray(a) for a in arrays)


def _array_of(x: Any, k: int) -> Any:
    data = x.data if hasattr(x, "_node") else x  # a Tensor: its data, read-only
    if isinstance(data, (ndarray, np.generic, int, float, complex, bool)) \
            or hasattr(data, "__dask_graph__"):
        return data
    raise TapegradTypeError(f"tg.compute: argument {k} is a {type(x).__name__}; expected "
                            "a Tensor, a Dask or NumPy array, or a number")
