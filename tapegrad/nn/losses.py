"""Loss functions. ``reduction`` is ``"mean"`` (default), ``"sum"`` or ``"none"``.

``cross_entropy`` and ``binary_cross_entropy_with_logits`` run the fused ops of
``tapegrad.builtins.nn_ops`` (stable for logits of any size, vjp in closed form:
``(softmax - onehot) / N`` and ``(sigmoid(x) - y) / N``); ``mse_loss`` is composed
from ordinary ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tapegrad.builtins.nn_ops import REDUCTIONS
from tapegrad.errors import TapegradValueError
from tapegrad.lazy import foreign
from tapegrad.registry import ops
from tapegrad.tensor import Tensor

from .module import Module


def _target(t: Any, like: Any) -> Any:
    """Targets given as lists/ndarrays take the prediction's float dtype (no upcast)."""
    if isinstance(t, Tensor):
        return t
    arr = t if foreign(t) else np.asarray(t)  # a Dask array stays lazy
    dtype = like.dtype if isinstance(like, (Tensor, np.ndarray)) or foreign(like) else None
    if dtype is not None and dtype.kind == "f" and arr.dtype != dtype:
        arr = arr.astype(dtype)
    return arr


def mse_loss(pred: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error ``(pred - target) ** 2``, averaged (default), summed or per element."""
    if reduction not in REDUCTIONS:
        raise TapegradValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    diff = ops.sub(pred, _target(target, pred))
    sq = diff * diff
    if reduction == "mean":
        return ops.mean(sq)
    if reduction == "sum":
        return ops.sum(sq)
    return sq


def binary_cross_entropy_with_logits(logits: Any, targets: Any,
                                     reduction: str = "mean") -> Tensor:
    """``-(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x)))`` for logits ``x`` and targets
    ``y`` in [0, 1], computed stably as ``max(x, 0) - x y + log(1 + exp(-|x|))``."""
    return ops.binary_cross_entropy_with_logits(logits, _target(targets, logits),
                                                reduction=reduction)


def cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (shape ``(..., C)``) against integer class
    ids ``labels`` (shape ``(...)``): ``logsumexp(logits) - logits[label]``.

    Runs op ``softmax_cross_entropy`` (its first output): the backward reuses the
    softmax the forward computed, ``(softmax(logits) - onehot(labels)) / N``."""
    if isinstance(labels, Tensor):
        if labels.dtype.kind in "iu":  # class ids as they are (inside tg.compile: traced)
            return ops.softmax_cross_entropy(logits, labels, reduction=reduction)[0]
        labels = labels.data
    labels = np.asarray(labels)
    if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
        labels = labels.astype(np.int64)
    return ops.softmax_cross_entropy(logits, labels, reduction=reduction)[0]


def softmax(x: Any, axis: int = -1) -> Tensor:
    return ops.softmax(x, axis=axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    return ops.log_softmax(x, axis=axis)


def logsumexp(x: Any, axis: Any = -1, keepdims: bool = False) -> Tensor:
    return ops.logsumexp(x, axis=axis, keepdims=keepdims)


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    def forward(self, pred: Any, target: Any) -> Tensor:
        return mse_loss(pred, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    def forward(self, logits: Any, targets: Any) -> Tensor:
        return binary_cross_entropy_with_logits(logits, targets, self.reduction)


class CrossEntropyLoss(_Loss):
    def forward(self, logits: Any, labels: Any) -> Tensor:
        return cross_entropy(logits, labels, self.reduction)
