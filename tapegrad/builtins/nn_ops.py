"""Neural-network ops: stable softmax family and fused losses.

Each forward is written to be finite for any finite input (logits of +-1000 included):
the largest logit is subtracted before exponentiating, and ``log(1 + exp(-|x|))`` is
used for the logistic loss. The vjps are the fused closed forms, e.g. for
``cross_entropy`` with ``reduction="mean"`` the gradient of the logits is
``(softmax(logits) - onehot(labels)) / N``. They are written with operators, NumPy
functions and ``lift``-ed ops, so under ``create_graph=True`` they record and can be
differentiated again (Hessians of a classifier's loss).

Reductions: ``"mean"`` (over every loss element), ``"sum"``, ``"none"`` (per element).
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift

from ._decomp_rules import used

REDUCTIONS = ("mean", "sum", "none")

_add, _max, _all = np.add.reduce, np.maximum.reduce, np.logical_and.reduce

_softmax = lift("softmax")
_sigmoid = lift("sigmoid")


def _lazy(x):
    """A Dask array (also inside a Tensor, under create_graph): no value to branch on."""
    return hasattr(getattr(x, "_data", x), "__dask_graph__")


def _check_reduction(reduction):
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _reduce(loss, reduction):
    """``loss`` reduced as ``reduction`` says (already checked by the caller). Plain
    arrays only: reductions call the ufuncs (``ndarray.sum`` & co. are Python wrappers)."""
    if reduction != "none" and not isinstance(loss, (np.ndarray, np.generic)):
        total = loss.sum()  # Dask, CuPy: their own reduction (lazy for Dask)
        return (total / loss.size if reduction == "mean" else total).astype(loss.dtype)
    if reduction == "mean":
        return np.asarray(_add(loss, axis=None) / loss.size if loss.size else np.nan,
                          dtype=loss.dtype)
    if reduction == "sum":
        return np.asarray(_add(loss, axis=None), dtype=loss.dtype)
    return loss


def _scale(g, size, reduction):
    """The upstream gradient of a reduced loss, per loss element."""
    if reduction == "mean":
        return g / size
    return g


def _kept(g, ndim, axis, keepdims):
    """``g`` with the reduced axes put back as length-1 axes."""
    if keepdims:
        return g
    axes = tuple(range(ndim)) if axis is None else axis if isinstance(axis, tuple) else (axis,)
    shape = list(g.shape)
    for a in sorted(a % ndim for a in axes):
        shape.insert(a, 1)
    return g.reshape(tuple(shape))


# ----------------------------------------------------------------- softmax family


def _shift(x, axis):
    """The max along ``axis`` (kept), 0 where it is not finite (all -inf rows)."""
    m = x.max(axis=axis, keepdims=True)
    if _lazy(m) or not np.isfinite(m).all():
        m = np.where(np.isfinite(m), m, 0)
    return m


def logsumexp_forward(x, axis=None, keepdims=False):
    x = x if _lazy(x) else np.asarray(x)
    m = _shift(x, axis)
    # A row of -inf gives log(0) = -inf and one holding +inf gives inf: both right.
    with np.errstate(divide="ignore", over="ignore"):
        s = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    if keepdims:
        return s
    return s.squeeze(axis=axis) if axis is not None else s.reshape(())


def _lse_weights(x, out, axis):
    """d logsumexp / dx = exp(x - out) (``out`` kept), also at infinities: a row whose
    result is +inf splits the gradient between its +inf entries, one whose result is
    -inf (all -inf) gets zeros; NaN rows stay NaN."""
    infinite = np.isinf(out)                         # plain bool: a constant of the rule
    if not _lazy(infinite) and not infinite.any():
        return np.exp(x - out)
    top = (x == out) & (out > 0) & infinite
    share = top / np.maximum(top.sum(axis=axis, keepdims=True), 1)
    return np.exp(np.where(infinite, -np.inf, x - np.where(infinite, 0.0, out))) + share


def logsumexp_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * _lse_weights(x, _kept(out, x.ndim, axis,
                                                                     keepdims), axis)


def logsumexp_jvp(ts, out, x, axis=None, keepdims=False):
    w = _lse_weights(x, _kept(out, x.ndim, axis, keepdims), axis)
    return np.sum(ts[0] * w, axis=axis, keepdims=keepdims)


def softmax_forward(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def softmax_grad(g, out, x, axis=-1):
    return out * (g - (g * out).sum(axis=axis, keepdims=True))


def log_softmax_forward(x, axis=-1):
    return x - logsumexp_forward(x, axis=axis, keepdims=True)


def log_softmax_grad(g, out, x, axis=-1):
    return g - np.exp(out) * g.sum(axis=axis, keepdims=True)


# ----------------------------------------------------------------- cross-entropy


def cross_entropy_saving_softmax(logits, labels, reduction="mean"):
    """The forward of a recorded call: ``(loss, softmax)``, the softmax for the backward.

    One function on purpose: it runs once per training step right after large matmuls
    have emptied the CPU caches, where every further Python call costs microseconds.
    """
    if reduction not in REDUCTIONS:
        _check_reduction(reduction)
    labels = np.asarray(labels)
    shape = logits.shape if type(logits) is np.ndarray else np.shape(logits)
    if not shape:
        raise ValueError("cross_entropy: logits need a class axis (shape (..., C))")
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: labels must be integer class ids, got dtype {labels.dtype}"
        )
    if labels.shape != shape[:-1]:
        raise ValueError(
            f"cross_entropy: logits of shape {shape} need labels of shape "
            f"{shape[:-1]}, got {labels.shape}"
        )
    n_classes = shape[-1]
    if labels.size and (np.minimum.reduce(labels, axis=None) < 0
                        or _max(labels, axis=None) >= n_classes):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {n_classes - 1}], got values from "
            f"{labels.min()} to {labels.max()}"
        )
    m = _max(logits, axis=-1, keepdims=True)
    if not _all(np.isfinite(m), axis=None):  # rows of -inf only: no shift
        m = np.where(np.isfinite(m), m, 0)
    e = np.exp(logits - m)
    s = _add(e, axis=-1, keepdims=True)
    rows = logits.reshape(-1, n_classes)  # the logit of each row's label, subtracted:
    picked = rows[np.arange(rows.shape[0]), labels.reshape(-1)].reshape(labels.shape)
    loss = _reduce((np.log(s) + m)[..., 0] - picked, reduction)
    e /= s
    return loss, e


def cross_entropy_forward(logits, labels, reduction="mean"):
    return cross_entropy_saving_softmax(logits, labels, reduction)[0]


def softmax_cross_entropy_grad(g, out, logits, labels, reduction="mean"):
    """The fused gradient from the softmax the forward saved, plus the softmax's own
    term when that output is used too."""
    (g_loss, g_probs), probs = g, out[1]
    scale = g_loss[..., None] if reduction == "none" else _scale(g_loss, labels.size, reduction)
    onehot = (np.arange(logits.shape[-1]) == labels[..., None]).astype(logits.dtype)
    d = (probs - onehot) * scale
    if used(g_probs) is not None:
        d = d + softmax_grad(g_probs, probs, logits)
    return d, None


def cross_entropy_grad(g, out, logits, labels, reduction="mean"):
    scale = g[..., None] if reduction == "none" else _scale(g, labels.size, reduction)
    onehot = (np.arange(logits.shape[-1]) == labels[..., None]).astype(logits.dtype)
    return (_softmax(logits, axis=-1) - onehot) * scale, None


# ----------------------------------------------------------------- logistic loss


def bce_logits_forward(logits, targets, reduction="mean"):
    _check_reduction(reduction)
    loss = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return _reduce(loss if _lazy(loss) else np.asarray(loss), reduction)


def _bce_scale(g, logits, targets, reduction):
    if reduction == "none":
        return g
    size = int(np.prod(np.broadcast_shapes(np.shape(logits), np.shape(targets))))
    return _scale(g, size, reduction)


def bce_grad_logits(g, out, logits, targets, reduction="mean"):
    return (_sigmoid(logits) - targets) * _bce_scale(g, logits, targets, reduction)


def bce_grad_targets(g, out, logits, targets, reduction="mean"):
    return -logits * _bce_scale(g, logits, targets, reduction)


# ----------------------------------------------------------------- samples


def _axis_samples(rng):
    x = rng.standard_normal((3, 4)) * 2
    y = rng.standard_normal((2, 3, 4))
    return [((x,), {}), ((x,), {"axis": 0}), ((y,), {"axis": 1}),
            ((rng.standard_normal(5),), {})]


def _lse_samples(rng):
    x = rng.standard_normal((3, 4)) * 2
    y = rng.standard_normal((2, 3, 4))
    return [((x,), {}), ((x,), {"axis": 0, "keepdims": True}), ((y,), {"axis": (0, 2)}),
            ((y,), {"axis": None}), ((rng.standard_normal(5),), {})]


def _ce_samples(rng):
    logits = rng.standard_normal((5, 4)) * 2
    labels = rng.integers(0, 4, 5)
    cube = rng.standard_normal((2, 3, 4))
    return [((logits, labels), {}), ((logits, labels), {"reduction": "sum"}),
            ((logits, labels), {"reduction": "none"}),
            ((cube, rng.integers(0, 4, (2, 3))), {}),
            ((rng.standard_normal(3), np.array(1)), {})]


def _bce_samples(rng):
    x = rng.standard_normal((4, 3)) * 2
    y = rng.uniform(0, 1, (4, 3))
    return [((x, y), {}), ((x, y), {"reduction": "sum"}), ((x, y), {"reduction": "none"}),
            ((x, rng.uniform(0, 1, 3)), {}), ((x[:, :1], y), {"reduction": "none"})]


@hookimpl
def tapegrad_ops():
    return [
        OpDef("logsumexp", logsumexp_forward, logsumexp_grad, jvp=logsumexp_jvp,
              params={"axis": None, "keepdims": False}, method=True, samples=_lse_samples,
              doc="log(sum(exp(x), axis)), computed without overflow"),
        OpDef("softmax", softmax_forward, softmax_grad, params={"axis": -1},
              save_inputs=False, method=True, samples=_axis_samples,
              doc="exp(x) / sum(exp(x), axis), computed without overflow"),
        OpDef("log_softmax", log_softmax_forward, log_softmax_grad, params={"axis": -1},
              save_inputs=False, method=True, samples=_axis_samples,
              doc="x - logsumexp(x, axis)"),
        OpDef("cross_entropy", cross_entropy_forward, cross_entropy_grad, nargs=2,
              params={"reduction": "mean"}, nondiff=(1,),
              samples=_ce_samples,
              lazy=False, doc="softmax cross-entropy of logits (..., C) against int labels (...); "
                  "fused: vjp (softmax - onehot) / N"),
        OpDef("softmax_cross_entropy", cross_entropy_saving_softmax,
              softmax_cross_entropy_grad, nargs=2, nout=2, params={"reduction": "mean"},
              nondiff=(1,), samples=_ce_samples, lazy=False,
              doc="(cross_entropy(logits, labels), softmax(logits)) in one pass, the vjp "
                  "reusing the softmax: what tg.nn.cross_entropy runs"),
        OpDef("binary_cross_entropy_with_logits", bce_logits_forward,
              (bce_grad_logits, bce_grad_targets), nargs=2, params={"reduction": "mean"},
             samples=_bce_samples,
              doc="-(y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))), stable for any x"),
    ]
