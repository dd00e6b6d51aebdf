"""Gradient utilities."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tapegrad.errors import TapegradTypeError, TapegradValueError
from tapegrad.tensor import Tensor


def as_param_list(params: Any) -> list[Tensor]:
    """A list of tensors from a tensor, an iterable of tensors, or a Module."""
    if isinstance(params, Tensor):
        return [params]
    if hasattr(params, "parameters") and callable(params.parameters):
        return list(params.parameters())
    if isinstance(params, np.ndarray) or not hasattr(params, "__iter__"):
        raise TapegradTypeError(f"expected a Tensor, an iterable of Tensors or a Module, got "
                                f"{type(params).__name__}")
    return list(params)


def compute_lazy_grads(params: Any) -> None:
    """Replace the Dask ``.grad`` of ``params`` by their values, computed in one pass.

    Gradients that came through Dask data are lazy until computed; computing them one
    by one would run the shared forward and backward once per gradient.
    """
    from tapegrad.lazy import compute, is_lazy

    lazy = [p for p in params if is_lazy(p.grad)]
    if lazy:
        for p, g in zip(lazy, compute(*[p.grad for p in lazy]), strict=True):
            p.grad = g


def _plain(g: Any) -> np.ndarray:
    return g.data if isinstance(g, Tensor) else np.asarray(g)


def clip_grad_norm(params: Any, max_norm: float, norm_type: float = 2.0,
                   eps: float = 1e-6) -> float:
    """Scale the gradients of ``params`` in place so their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector
    (``norm_type=2`` by default; ``float("inf")`` for the largest absolute value).
    Parameters without a gradient are skipped. Gradients keep their dtype. Returns the
    total norm *before* clipping, as a Python float.
    """
    if not max_norm >= 0:  # NaN too
        raise TapegradValueError(f"clip_grad_norm: max_norm must be >= 0, got {max_norm}")
    if not float(norm_type) > 0:
        raise TapegradValueError(f"clip_grad_norm: norm_type must be > 0, got {norm_type}")
    grads = [p for p in as_param_list(params) if p.grad is not None]
    if not grads:
        return 0.0
    compute_lazy_grads(grads)
    norm_type = float(norm_type)
    arrays = [_plain(p.grad) for p in grads]
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(a))) if a.size else 0.0 for a in arrays)
    else:
        total = sum(float(np.sum(np.abs(a.astype(np.float64)) ** norm_type)) for a in arrays)
        total = total ** (1.0 / norm_type)
    coef = float(max_norm) / (total + eps)
    if coef < 1.0:
        for p in grads:
            g = p.grad
            if isinstance(g, np.ndarray) and g.flags.writeable:
                g *= coef
            else:
                p.grad = g * coef
    return total


clip_grad_norm_ = clip_grad_norm
