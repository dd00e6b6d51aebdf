"""Creation helpers: ``zeros``, ``ones``, ``full``, ``zeros_like``, ``ones_like``,
``arange``, ``linspace``, ``eye``, ``randn``, ``rand``.

Each returns a fresh leaf :class:`~tapegrad.Tensor` (its own array, nothing shared
with the arguments) and takes the keywords ``dtype=None`` and ``requires_grad=False``.
Without ``dtype`` the values are float64, except where NumPy infers another dtype
from the arguments (``arange(5)`` and ``full(shape, 7)`` are integers, ``zeros_like``
and ``ones_like`` keep the argument's dtype). ``requires_grad=True`` with an integer
or bool dtype raises ``TypeError`` (as :func:`tapegrad.tensor` does).

Shapes may be given the NumPy way (one int or tuple: ``zeros((2, 3))``) or the
PyTorch way (several ints: ``zeros(2, 3)``). ``randn`` and ``rand`` draw from
``rng``: ``None`` (fresh OS entropy, as ``np.random.default_rng()``), an int seed or a
``np.random.Generator``; a seed gives the numbers NumPy gives,
``randn(3, rng=0) == np.random.default_rng(0).standard_normal(3)``, and a float32
draw is the float64 draw rounded (the same numbers whatever the dtype).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .compiler import tracer
from .errors import TapegradTypeError, TapegradValueError
from .tensor import Tensor, _make

__all__ = ["zeros", "ones", "full", "zeros_like", "ones_like", "arange", "linspace", "eye",
           "randn", "rand"]


def _leaf(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = _make(data, None)
    if requires_grad:
        t.requires_grad = True  # TypeError for integer and bool dtypes
    return t


def _shape(shape: tuple, name: str) -> tuple[int, ...]:
    """``(2, 3)`` from ``((2, 3),)``, ``([2, 3],)`` or ``(2, 3)``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        dims = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TapegradTypeError(f"tg.{name}: the shape must be ints (or one tuple of ints), got "
                                f"{shape!r}; pass dtype= as a keyword") from None
    if any(d < 0 for d in dims):
        raise TapegradValueError(f"tg.{name}: negative dimension in shape {dims}")
    return dims


def _default(dtype: Any) -> Any:
    return np.float64 if dtype is None else dtype


def _float_dtype(dtype: Any, name: str) -> np.dtype:
    dt = np.dtype(np.float64 if dtype is None else dtype)
    if dt.kind != "f":
        raise TapegradTypeError(f"tg.{name}: dtype must be a real floating dtype, got {dt}")
    return dt


def zeros(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float64 by default)."""
    return _leaf(np.zeros(_shape(shape, "zeros"), dtype=_default(dtype)), requires_grad)


def ones(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float64 by default)."""
    return _leaf(np.ones(_shape(shape, "ones"), dtype=_default(dtype)), requires_grad)


def full(shape: Any, fill_value: Any, dtype: Any = None, *,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``fill_value`` (NumPy's ``full``: the dtype is the
    value's unless given, so ``full(3, 7)`` is int64 and ``full(3, 7.0)`` float64)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.data
    dims = _shape((shape,), "full")
    return _leaf(np.full(dims, fill_value, dtype=dtype), requires_grad)


def _like_data(x: Any) -> np.ndarray:
    return x._data if isinstance(x, Tensor) else np.asarray(x)  # (its shape and dtype)


def zeros_like(x: Any, dtype: Any = None, *, requires_grad: bool = False) -> Tensor:
    """Zeros with the shape (and, unless ``dtype`` is given, the dtype) of ``x``."""
    return _leaf(np.zeros_like(_like_data(x), dtype=dtype), requires_grad)


def ones_like(x: Any, dtype: Any = None, *, requires_grad: bool = False) -> Tensor:
    """Ones with the shape (and, unless ``dtype`` is given, the dtype) of ``x``."""
    return _leaf(np.ones_like(_like_data(x), dtype=dtype), requires_grad)


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None, *,
           requires_grad: bool = False) -> Tensor:
    """Evenly spaced values in ``[start, stop)``: NumPy's ``arange``, same signature and
    dtype rules (``arange(5)`` is int64, ``arange(0.0, 1.0, 0.25)`` float64)."""
    if stop is None:
        data = np.arange(start, step=1 if step is None else step, dtype=dtype)
    else:
        data = np.arange(start, stop, 1 if step is None else step, dtype=dtype)
    return _leaf(data, requires_grad)


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True,
             retstep: bool = False, dtype: Any = None, axis: int = 0, *,
             requires_grad: bool = False) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop``: NumPy's ``linspace`` (with
    ``retstep=True`` the result is ``(tensor, step)``)."""
    out = np.linspace(start, stop, num, endpoint=endpoint, retstep=retstep,
                      dtype=dtype, axis=axis)
    if retstep:
        return _leaf(out[0], requires_grad), out[1]
    return _leaf(out, requires_grad)


def eye(n: int, m: int | None = None, k: int = 0, dtype: Any = None, *,
        requires_grad: bool = False) -> Tensor:
    """An ``n`` x ``m`` tensor (``m`` defaults to ``n``) with ones on diagonal ``k``."""
    return _leaf(np.eye(n, m, k, dtype=_default(dtype)), requires_grad)


def _generator(rng: Any, name: str) -> Any:
    trace = tracer()
    if trace is not None and not isinstance(rng, (int, np.integer)):
        trace.escape(None, f"tg.{name} draws random numbers (rng={rng!r})")
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    raise TapegradTypeError(f"tg.{name}: rng must be None, an int seed or a np.random.Generator, "
                            f"got {type(rng).__name__}")


def randn(*shape: Any, rng: Any = None, dtype: Any = None,
          requires_grad: bool = False) -> Tensor:
    """Samples of the standard normal distribution (``Generator.standard_normal``)."""
    dt = _float_dtype(dtype, "randn")
    data = _generator(rng, "randn").standard_normal(_shape(shape, "randn"))
    return _leaf(np.asarray(data, dtype=dt), requires_grad)


def rand(*shape: Any, rng: Any = None, dtype: Any = None,
         requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on ``[0, 1)`` (``Generator.random``)."""
    dt = _float_dtype(dtype, "rand")
    gen = _generator(rng, "rand")
    dims = _shape(shape, "rand")
    data = gen.random(dims) if isinstance(gen, np.random.Generator) else gen.random_sample(dims)
    return _leaf(np.asarray(data, dtype=dt), requires_grad)
