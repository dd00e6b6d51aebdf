"""Reductions beyond sum/mean/max/min, scans, sorting and diagonals.

Every forward is NumPy's own function with NumPy's parameters (``dtype=`` and ``out=``
aside, as for ``sum``). The rules are written with operators, registered ops and
``getitem``, so they are themselves differentiable (second order and beyond).

Products never divide by an input where it may be zero: ``prod`` differentiates through
the products of the other elements (exclusive cumulative products from both ends), and
``cumprod`` falls back to a division-free rule when a zero is present.

Permutations (``sort``, ``partition``) route the gradient back along the permutation the
forward applied; among tied values it follows the stable ``argsort`` order. Index
results (``argmax``, ``argmin``, ``argsort``) are not differentiable: their Tensor
methods return plain integer ndarrays, as ``ndarray``'s do.
"""

from __future__ import annotations

import numpy as np

from tapegrad.compiler import tracer
from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift
from tapegrad.tensor import Tensor

from . import _jvp
from .reductions import REDUCE_PARAMS, _axes, _kept

scatter_add = lift("scatter_add")


def _plain(x):
    """The values of ``x``, for computing masks and indices (constants of the rules).
    While tg.compile traces, a detached Tensor: the masks become steps of its plan."""
    if isinstance(x, Tensor):
        return x.detach() if tracer() is not None else x.data
    return x


def _constant_like(v, x):
    """A constant param (weights, prepend) in ``x``'s floating dtype: like a Python
    scalar, a constant does not decide the precision (float32 inputs stay float32)."""
    v = np.asarray(_plain(v))
    dtype = x.dtype if hasattr(x, "dtype") else np.asarray(x).dtype
    return v.astype(dtype) if dtype.kind in "fc" and v.dtype.kind in "biuf" else v


def _count(shape, axis):
    """How many elements a reduction over ``axis`` combines."""
    n = 1
    for a in _axes(len(shape), axis):
        n *= shape[a]
    return n


def _along(axis, ndim, key):
    """An index applying ``key`` along ``axis`` only."""
    return (slice(None),) * (axis % ndim) + (key,)


def _reverse(v, axis):
    return v[_along(axis, v.ndim, slice(None, None, -1))]


def _gather(v, idx, axis):
    """``take_along_axis(v, idx, axis)`` as indexing: differentiable in ``v``."""
    grid = list(np.ix_(*(np.arange(n) for n in idx.shape)))
    grid[axis % idx.ndim] = idx
    return v[tuple(grid)]


def _pad(v, before, after, axis):
    """``v`` with ``before`` / ``after`` zeros along ``axis``."""
    def zeros(k):
        shape = list(v.shape)
        shape[axis] = k
        return np.zeros(tuple(shape), dtype=v.dtype)
    parts = ([zeros(before)] if before else []) + [v] + ([zeros(after)] if after else [])
    return np.concatenate(parts, axis=axis) if len(parts) > 1 else v


def _flat_axis(fn):
    """A vjp for ``axis=None`` (the input flattened) from the rule for ``axis=0``."""
    def rule(g, out, x, axis=None, **params):
        if axis is None:
            return fn(g, out, x.reshape(-1), axis=0, **params).reshape(x.shape)
        return fn(g, out, x, axis=axis, **params)
    return rule


def _moved_last(x, axis):
    """``x`` with the axes of ``axis`` moved last and merged into one; and the shape and
    permutation that undo it (``_restore``)."""
    axes = _axes(x.ndim, axis)
    perm = [a for a in range(x.ndim) if a not in axes] + list(axes)
    xt = np.transpose(x, perm)
    return xt.reshape(xt.shape[:x.ndim - len(axes)] + (-1,)), (xt.shape, perm)


def _restore(v, undo):
    shape, perm = undo
    return np.transpose(v.reshape(shape), tuple(np.argsort(perm)))


# ----------------------------------------------------------------- scans


def cumsum_grad(g, out, x, axis):
    return _reverse(np.cumsum(_reverse(g, axis), axis=axis), axis)


def cumprod_grad(g, out, x, axis):
    if not (x == 0).any():
        return cumsum_grad(g * out, out, x, axis) / x
    # With zeros: dy_i/dx_k = prod_{j <= i, j != k} x_j, from the cumulative products of
    # copies of x in which x_k is 1 (n copies of the slice: O(n^2) along the axis).
    xl, gl = np.swapaxes(x, axis, -1), np.swapaxes(g, axis, -1)
    n = xl.shape[-1]
    others = np.cumprod(np.where(np.eye(n, dtype=bool), 1, xl[..., None, :]), axis=-1)
    later = np.triu(np.ones((n, n), dtype=bool))          # [k, i]: i >= k
    return np.swapaxes(np.sum(np.where(later, others, 0) * gl[..., None, :], axis=-1),
                       axis, -1)


def cumsum_jvp(ts, out, x, axis=None):
    return np.cumsum(ts[0], axis=axis)


# ----------------------------------------------------------------- products


def _exclusive_cumprod(v):
    """prod of the elements before each one, along the last axis."""
    ones = np.ones(v.shape[:-1] + (1,), dtype=v.dtype)
    return np.concatenate([ones, np.cumprod(v[..., :-1], axis=-1)], axis=-1)


def prod_of_others(x, axis=None):
    """For each element, the product of the other elements of its reduced slice; no
    division, so exact with zeros."""
    if not _axes(x.ndim, axis):
        return np.ones_like(x)
    flat, undo = _moved_last(x, axis)
    if flat.shape[-1] == 0:
        return np.zeros_like(x)
    left = _exclusive_cumprod(flat)
    right = _reverse(_exclusive_cumprod(_reverse(flat, -1)), -1)
    return _restore(left * right, undo)


def prod_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * prod_of_others(x, axis)


def prod_jvp(ts, out, x, axis=None, keepdims=False):
    return np.sum(ts[0] * prod_of_others(x, axis), axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------- moments


def _centered(x, axis):
    return x - np.mean(x, axis=axis, keepdims=True)


def var_grad(g, out, x, axis=None, ddof=0, keepdims=False):
    scale = 2.0 / (_count(x.shape, axis) - ddof)
    return _kept(g, x.ndim, axis, keepdims) * _centered(x, axis) * scale


def var_jvp(ts, out, x, axis=None, ddof=0, keepdims=False):
    scale = 2.0 / (_count(x.shape, axis) - ddof)
    return np.sum(ts[0] * _centered(x, axis), axis=axis, keepdims=keepdims) * scale


def std_grad(g, out, x, axis=None, ddof=0, keepdims=False):
    n = _count(x.shape, axis) - ddof
    return (_kept(g, x.ndim, axis, keepdims) * _centered(x, axis)
            / (_kept(out, x.ndim, axis, keepdims) * n))


def std_jvp(ts, out, x, axis=None, ddof=0, keepdims=False):
    n = _count(x.shape, axis) - ddof
    return np.sum(ts[0] * _centered(x, axis), axis=axis, keepdims=keepdims) / (out * n)


def _full_weights(weights, x, axis):
    """``np.average``'s weights broadcast against ``x``, as NumPy aligns them."""
    shape = x.shape
    w = _constant_like(weights, x)
    if w.shape == tuple(shape):
        return w
    if axis is None:
        raise TypeError("average: axis must be given when weights and input differ in shape")
    axes = _axes(len(shape), axis)
    if w.shape != tuple(shape[a] for a in axes):
        raise ValueError("average: weights must have the input's shape, or its shape "
                         "along axis")
    w = w.transpose(np.argsort(axes))
    return w.reshape(tuple(s if a in axes else 1 for a, s in enumerate(shape)))


def average(a, axis=None, weights=None, keepdims=False):
    if isinstance(weights, Tensor) and weights.requires_grad:
        raise TypeError("average: weights that require grad are not supported (the op "
                        "differentiates in a only); write (a * w).sum(axis) / w.sum(axis)")
    if weights is not None:
        weights = _constant_like(weights, a)
    return np.average(a, axis=axis, weights=weights, keepdims=keepdims)


def average_grad(g, out, a, axis=None, weights=None, keepdims=False):
    gk = _kept(g, a.ndim, axis, keepdims)
    if weights is None:
        return np.broadcast_to(gk / _count(a.shape, axis), a.shape)
    w = _full_weights(weights, _plain(a), axis)
    return gk * (w / np.sum(np.broadcast_to(w, a.shape), axis=axis, keepdims=True))


def average_jvp(ts, out, a, axis=None, weights=None, keepdims=False):
    return np.average(ts[0], axis=axis, weights=weights, keepdims=keepdims)


# ----------------------------------------------------------------- order statistics


def _extremum_share(x, m, axis):
    hit = x == m                                           # a plain bool mask
    return hit / hit.sum(axis=axis, keepdims=True)


def _ptp_weights(x, axis):
    return (_extremum_share(x, np.max(x, axis=axis, keepdims=True), axis)
            - _extremum_share(x, np.min(x, axis=axis, keepdims=True), axis))


def ptp_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * _ptp_weights(_plain(x), axis)


def ptp_jvp(ts, out, x, axis=None, keepdims=False):
    return np.sum(ts[0] * _ptp_weights(_plain(x), axis), axis=axis, keepdims=keepdims)


def median_weights(x, axis=None):
    """Weight of each element in its slice's median: 1 on the middle element of an odd
    count, 1/2 on each of the two middle ones of an even count (stable order on ties)."""
    flat, undo = _moved_last(_plain(x), axis)
    n = flat.shape[-1]
    rank = np.argsort(np.argsort(flat, axis=-1, kind="stable"), axis=-1, kind="stable")
    return _restore(0.5 * (rank == (n - 1) // 2) + 0.5 * (rank == n // 2), undo)


def median_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * median_weights(x, axis)


def median_jvp(ts, out, x, axis=None, keepdims=False):
    return np.sum(ts[0] * median_weights(x, axis), axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------- NaN-ignoring


def _present(x):
    return ~np.isnan(_plain(x))


def nansum_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * _present(x)


def nansum_jvp(ts, out, x, axis=None, keepdims=False):
    return np.sum(ts[0] * _present(x), axis=axis, keepdims=keepdims)


def _nanmean_weights(x, axis):
    present = _present(x)
    # An all-NaN slice (mean NaN) gets a zero gradient, not 0 / 0.
    return present / np.maximum(present.sum(axis=axis, keepdims=True), 1)


def nanmean_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * _nanmean_weights(x, axis)


def nanmean_jvp(ts, out, x, axis=None, keepdims=False):
    return np.sum(ts[0] * _nanmean_weights(x, axis), axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------- permutations


def _sources(x, out, axis):
    """``p`` with ``out == take_along_axis(x, p, axis)``: where each output element came
    from, matching equal values in stable order (for any permutation NumPy applied)."""
    by_value = np.argsort(x, axis=axis, kind="stable")
    out_rank = np.argsort(np.argsort(out, axis=axis, kind="stable"), axis=axis,
                          kind="stable")
    return np.take_along_axis(by_value, out_rank, axis=axis)


def _unpermute(g, x, out, axis):
    """The gradient of a permutation along ``axis``: ``g`` routed back to the sources."""
    p = _sources(_plain(x), _plain(out), axis)
    return _gather(g, np.argsort(p, axis=axis), axis)


def sort(x, axis=-1, kind=None, stable=None):
    return np.sort(x, axis=axis, kind=kind, stable=stable)


def sort_grad(g, out, x, axis, kind=None, stable=None):
    return _unpermute(g, x, out, axis)


def sort_jvp(ts, out, x, axis=-1, kind=None, stable=None):
    if axis is None:
        return sort_jvp((ts[0].reshape(-1),), out, x.reshape(-1), axis=0)
    return _gather(ts[0], np.argsort(_plain(x), axis=axis, kind="stable"), axis)


def partition(x, kth, axis=-1, kind="introselect"):
    return np.partition(x, kth, axis=axis, kind=kind)


def partition_grad(g, out, x, kth, axis, kind="introselect"):
    return _unpermute(g, x, out, axis)


def partition_jvp(ts, out, x, kth=None, axis=-1, kind="introselect"):
    if axis is None:
        return partition_jvp((ts[0].reshape(-1),), out, x.reshape(-1), axis=0)
    return _gather(ts[0], _sources(_plain(x), _plain(out), axis), axis)


# ----------------------------------------------------------------- diagonals


def trace_grad(g, out, x, offset=0, axis1=0, axis2=1):
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    eye = np.eye(x.shape[a1], x.shape[a2], k=offset, dtype=bool)
    shape = [1] * x.ndim
    shape[a1], shape[a2] = x.shape[a1], x.shape[a2]
    mask = (eye if a1 < a2 else eye.T).reshape(shape)
    return _kept(g, x.ndim, (a1, a2), False) * mask


def diagonal(x, offset=0, axis1=0, axis2=1):
    return np.diagonal(x, offset, axis1, axis2).copy()  # not a read-only view into x


def diagonal_grad(g, out, x, offset=0, axis1=0, axis2=1):
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    perm = [a for a in range(x.ndim) if a not in (a1, a2)] + [a1, a2]
    k = np.arange(g.shape[-1])
    full = scatter_add(g, tuple(x.shape[a] for a in perm),
                       (Ellipsis, k + max(-offset, 0), k + max(offset, 0)))
    return np.transpose(full, tuple(np.argsort(perm)))


# ----------------------------------------------------------------- differences


def _extra(v, axis):
    """How many entries ``diff``'s prepend / append ``v`` adds along ``axis``."""
    return 0 if v is None else 1 if np.ndim(v) == 0 else np.shape(v)[axis]


def diff(x, n=1, axis=-1, prepend=None, append=None):
    ends = {k: _constant_like(v, x) for k, v in (("prepend", prepend), ("append", append))
            if v is not None}
    return np.diff(x, n=n, axis=axis, **ends)


def diff_grad(g, out, x, n=1, axis=-1, prepend=None, append=None):
    if n == 0:
        return g
    ax = axis % x.ndim
    for _ in range(n):                    # adjoint of z -> z[1:] - z[:-1]
        g = _pad(g, 1, 0, ax) - _pad(g, 0, 1, ax)
    start = _extra(prepend, ax)
    return g[_along(ax, x.ndim, slice(start, start + x.shape[ax]))]


def diff_jvp(ts, out, x, n=1, axis=-1, prepend=None, append=None):
    ends = {k: np.zeros_like(v) for k, v in (("prepend", prepend), ("append", append))
            if v is not None}
    return np.diff(ts[0], n=n, axis=axis, **ends)


def _gradient_axis(ndim, axis):
    if axis is None and ndim == 1:
        return 0
    if isinstance(axis, (tuple, list)) and len(axis) == 1:
        axis = axis[0]
    if axis is None or isinstance(axis, (tuple, list)):
        raise ValueError(
            "gradient: the op takes one axis (axis=k); np.gradient(t, ...) over several "
            "axes gives one result per axis")
    return axis % ndim


def gradient(f, spacing=1.0, axis=None, edge_order=1):
    if np.ndim(spacing) != 0:
        raise NotImplementedError("gradient: only a scalar spacing is supported")
    return np.gradient(f, spacing, axis=_gradient_axis(np.ndim(f), axis),
                       edge_order=edge_order)


#: np.gradient's one-sided stencils at the first and the last points, times spacing.
_EDGES = {1: ([-1.0, 1.0], [-1.0, 1.0]), 2: ([-1.5, 2.0, -0.5], [0.5, -2.0, 1.5])}


def gradient_grad(g, out, f, spacing=1.0, axis=None, edge_order=1):
    ax = _gradient_axis(f.ndim, axis)
    n = f.shape[ax]
    head, tail = (np.array(c, dtype=out.dtype).reshape(
        (1,) * ax + (-1,) + (1,) * (f.ndim - ax - 1)) / spacing for c in _EDGES[edge_order])
    m = head.size
    inner = g[_along(ax, f.ndim, slice(1, -1))] / (2.0 * spacing)
    return (_pad(inner, 2, 0, ax) - _pad(inner, 0, 2, ax)
            + _pad(g[_along(ax, f.ndim, slice(0, 1))] * head, 0, n - m, ax)
            + _pad(g[_along(ax, f.ndim, slice(n - 1, n))] * tail, n - m, 0, ax))


_gradient = lift("gradient")


def numpy_gradient(op, f, *varargs, axis=None, edge_order=1):
    """``np.gradient``: one ``gradient`` op per axis, a tuple for several axes."""
    ndim = np.ndim(f)
    axes = range(ndim) if axis is None else axis if isinstance(axis, (tuple, list)) \
        else (axis,)
    axes = tuple(np.lib.array_utils.normalize_axis_index(a, ndim) for a in axes)
    if not varargs:
        spacings = (1.0,) * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacings = varargs * len(axes)
    elif len(varargs) == len(axes):
        spacings = varargs
    else:
        raise TypeError("invalid number of arguments")
    outs = tuple(op(f, spacing=h, axis=a, edge_order=edge_order)
                 for a, h in zip(axes, spacings, strict=True))
    return outs[0] if len(outs) == 1 else outs


def gradient_jvp(ts, out, f, **params):
    return _gradient(ts[0], **params)


# ----------------------------------------------------------------- indices (no gradient)


def _plain_result(op, self, *args, **kwargs):
    """Index methods return plain integer ndarrays, as ndarray's do (while tg.compile
    traces, the Tensor: a step of its plan that later steps can use)."""
    res = op(self, *args, **kwargs)
    return res if tracer() is not None else res.data


# ------------------------------------------------------------------ logic (no gradient)
# Masks combine with & | ^ ~ and .any() / .all() as bool ndarrays do (inside tg.compile,
# comparisons of traced tensors are bool Tensors). Plain functions, not ufuncs, so that
# np.bitwise_and & co. called on Tensors keep NumPy's plain results.


def bitwise_and(a, b):
    return np.bitwise_and(a, b)


def bitwise_or(a, b):
    return np.bitwise_or(a, b)


def bitwise_xor(a, b):
    return np.bitwise_xor(a, b)


def invert(x):
    return np.invert(x)


def _bool_samples(rng, n=2):
    return [(tuple(rng.uniform(size=(3, 4)) > 0.5 for _ in range(n)), {})]


def _logic_ops():
    both = (0, 1)  # (never differentiable: not checked as binary ops with a gradient)
    one = lambda rng: _bool_samples(rng, 1)  # noqa: E731
    return [
        OpDef("bitwise_and", bitwise_and, None, nondiff=both, samples=_bool_samples,
              operators=("__and__", "__rand__"),
              doc="a & b for bool or integer tensors (no gradient)"),
        OpDef("bitwise_or", bitwise_or, None, nondiff=both, samples=_bool_samples,
              operators=("__or__", "__ror__"),
              doc="a | b for bool or integer tensors (no gradient)"),
        OpDef("bitwise_xor", bitwise_xor, None, nondiff=both, samples=_bool_samples,
              operators=("__xor__", "__rxor__"),
              doc="a ^ b for bool or integer tensors (no gradient)"),
        OpDef("invert", invert, None, operators=("__invert__",), samples=one,
              doc="~x for bool or integer tensors (no gradient)"),
        OpDef("any", np.any, None, params={"axis": None, "keepdims": False}, method=True,
              samples=one,
              doc="whether any element along axis is true (no gradient)"),
        OpDef("all", np.all, None, params={"axis": None, "keepdims": False}, method=True,
              samples=one,
              doc="whether every element along axis is true (no gradient)"),
    ]


def argsort(x, axis=-1, kind=None, stable=None):
    return np.argsort(x, axis=axis, kind=kind, stable=stable)


# ----------------------------------------------------------------- copies


def copy(x, order="K"):
    if not isinstance(x, np.ndarray) and hasattr(x, "__dask_graph__"):
        return x.copy()  # lazy, and layout-free
    return np.array(x, order=order, copy=True)


def identity_grad(g, out, x, **params):
    return g


def identity_jvp(ts, out, x, **params):
    return ts[0]


# ----------------------------------------------------------------- samples


def _reduce_samples(rng):
    x = rng.standard_normal((3, 4, 2))
    return [((x,), {}), ((x,), {"axis": 1}), ((x,), {"axis": (0, 2)}),
            ((x,), {"axis": -1, "keepdims": True}), ((x,), {"keepdims": True}),
            ((rng.standard_normal(()),), {})]


def _prod_samples(rng):
    # |x| in [0.5, 1.5]: products of 24 elements stay of order one
    x = rng.uniform(0.5, 1.5, (3, 4, 2)) * rng.choice([-1.0, 1.0], (3, 4, 2))
    one_zero = np.array([[0.0, 2.0, 3.0], [1.5, -0.5, 2.5]])
    return [((x,), {}), ((x,), {"axis": 1}), ((x,), {"axis": (0, 2)}),
            ((x,), {"axis": -1, "keepdims": True}), ((x,), {"keepdims": True}),
            ((rng.standard_normal(()),), {}), ((one_zero,), {"axis": 1}),
            ((one_zero,), {}), ((np.array([0.0, 1.5, 0.0, -2.0]),), {})]


def _scan_samples(rng):
    x = rng.uniform(0.5, 1.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    return [((x,), {}), ((x,), {"axis": 0}), ((x,), {"axis": -1}),
            ((np.array([1.5, 0.0, 2.0, -1.0]),), {"axis": 0}),
            ((np.array([[0.5, 0.0, 2.0, 0.0], [1.2, -0.7, 0.0, 1.1]]),), {"axis": 1})]


def _moment_samples(rng):
    x = rng.standard_normal((3, 4, 2))
    return [((x,), {}), ((x,), {"axis": 1}), ((x,), {"axis": (0, 2), "ddof": 1}),
            ((x,), {"axis": -1, "keepdims": True, "ddof": 1}), ((x,), {"keepdims": True})]


def _average_samples(rng):
    x = rng.standard_normal((3, 4))
    w = rng.uniform(0.5, 2.0, (3, 4))
    return [((x,), {}), ((x,), {"axis": 0}), ((x,), {"weights": w}),
            ((x,), {"axis": 1, "weights": w[0], "keepdims": True}),
            ((x,), {"axis": (1, 0), "weights": w.T}), ((x,), {"axis": 0, "weights": w})]


def _nan_samples(rng):
    x = rng.standard_normal((3, 4))
    x[0, 1] = x[2, 3] = np.nan
    return [((x,), {}), ((x,), {"axis": 0}), ((x,), {"axis": 1, "keepdims": True}),
            ((rng.standard_normal(5),), {})]


def _median_samples(rng):
    x = rng.standard_normal((3, 4, 5))
    return [((x,), {}), ((x,), {"axis": 1}), ((x,), {"axis": 2}),
            ((x,), {"axis": (0, 2), "keepdims": True}), ((x[0, 0],), {}),
            ((x[0],), {"axis": -1, "keepdims": True})]


def _sort_samples(rng):
    x = rng.standard_normal((3, 4))
    return [((x,), {}), ((x,), {"axis": 0}), ((x,), {"axis": None}),
            ((x,), {"kind": "stable"}), ((rng.standard_normal(6),), {"stable": True})]


def _partition_samples(rng):
    x = rng.standard_normal((3, 5))
    return [((x,), {"kth": 2}), ((x,), {"kth": 1, "axis": 0}), ((x,), {"kth": (1, 3)}),
            ((x,), {"kth": 4, "axis": None})]


def _diag_samples(rng):
    x = rng.standard_normal((3, 4))
    y = rng.standard_normal((2, 3, 4))
    return [((x,), {}), ((x,), {"offset": 1}), ((x,), {"offset": -2}),
            ((y,), {"axis1": 1, "axis2": 2}), ((y,), {"offset": 1, "axis1": 2, "axis2": 0})]


def _diff_samples(rng):
    x = rng.standard_normal((3, 5))
    return [((x,), {}), ((x,), {"n": 2}), ((x,), {"axis": 0}), ((x,), {"n": 0}),
            ((x,), {"prepend": 0.5}), ((x,), {"axis": 0, "append": x[:2] * 2}),
            ((x,), {"n": 2, "prepend": x[:, :1], "append": 1.0})]


def _gradient_samples(rng):
    x = rng.standard_normal((4, 5))
    return [((x[0],), {}), ((x[0],), {"spacing": 0.5}), ((x,), {"axis": 0}),
            ((x,), {"axis": -1, "edge_order": 2, "spacing": 2.0}),
            ((x[:, :2],), {"axis": (1,)}), ((x[1],), {"edge_order": 2})]


def _copy_samples(rng):
    return [((rng.standard_normal((3, 4)),), {}), ((rng.standard_normal(()),), {}),
            ((rng.standard_normal((2, 3)),), {"order": "F"})]


def _diag_doc(what):
    return f"{what} of the diagonal at offset between axis1 and axis2"


@hookimpl
def tapegrad_ops():
    return [
        OpDef("prod", np.prod, prod_grad, jvp=prod_jvp, params=REDUCE_PARAMS, method=True,
              implements=(np.prod,), samples=_prod_samples, complex=True,
              doc="product over axis; the gradient is the product of the others (zeros ok)"),
        OpDef("cumsum", np.cumsum, _flat_axis(cumsum_grad), jvp=cumsum_jvp,
              params={"axis": None}, method=True, implements=(np.cumsum,),
              samples=_scan_samples, complex=True, doc="cumulative sum along axis"),
        OpDef("cumprod", np.cumprod, _flat_axis(cumprod_grad), params={"axis": None},
              method=True, implements=(np.cumprod,), samples=_scan_samples, complex=True,
              lazy=False, doc="cumulative product along axis (gradient exact with zeros)"),
        OpDef("var", np.var, var_grad, jvp=var_jvp,
              params={"axis": None, "ddof": 0, "keepdims": False}, method=True,
              implements=(np.var,), samples=_moment_samples,
              doc="variance over axis, divided by N - ddof"),
        OpDef("std", np.std, std_grad, jvp=std_jvp,
              params={"axis": None, "ddof": 0, "keepdims": False}, method=True,
              implements=(np.std,), samples=_moment_samples,
              doc="standard deviation over axis, sqrt(var(x, axis, ddof))"),
        OpDef("average", average, average_grad, jvp=average_jvp,
              params={"axis": None, "weights": None, "keepdims": False},
              implements=(np.average,), samples=_average_samples,
              doc="weighted mean over axis (weights are constants)"),
        OpDef("ptp", np.ptp, ptp_grad, jvp=ptp_jvp, params=REDUCE_PARAMS,
              implements=(np.ptp,), samples=_reduce_samples,
              lazy=False, doc="max - min over axis; ties share the gradient evenly"),
        OpDef("nansum", np.nansum, nansum_grad, jvp=nansum_jvp, params=REDUCE_PARAMS,
              implements=(np.nansum,), samples=_nan_samples,
              doc="sum over axis, NaNs counted as zero (and given no gradient)"),
        OpDef("nanmean", np.nanmean, nanmean_grad, jvp=nanmean_jvp, params=REDUCE_PARAMS,
              implements=(np.nanmean,), samples=_nan_samples,
              doc="mean over axis of the entries that are not NaN"),
        OpDef("median", np.median, median_grad, jvp=median_jvp, params=REDUCE_PARAMS,
              implements=(np.median,), samples=_median_samples,
              doc="median over axis; an even count splits the gradient between its two "
                  "middle elements"),
        OpDef("sort", sort, _flat_axis(sort_grad), jvp=sort_jvp,
              params={"axis": -1, "kind": None, "stable": None},
              implements=(np.sort,), samples=_sort_samples,
              lazy=False, doc="sorted copy along axis; ties follow the stable argsort order"),
        OpDef("partition", partition, _flat_axis(partition_grad), jvp=partition_jvp,
              params={"kth": None, "axis": -1, "kind": "introselect"},
              implements=(np.partition,), samples=_partition_samples,
              lazy=False,
              doc="np.partition: the kth elements in sorted place, smaller before, larger "
                  "after"),
        OpDef("trace", np.trace, trace_grad, jvp=_jvp.linear(np.trace),
              params={"offset": 0, "axis1": 0, "axis2": 1}, method=True,
              implements=(np.trace,), samples=_diag_samples, complex=True,
              doc=_diag_doc("sum")),
        OpDef("diagonal", diagonal, diagonal_grad, jvp=_jvp.linear(np.diagonal),
              params={"offset": 0, "axis1": 0, "axis2": 1}, method=True,
              implements=(np.diagonal,), samples=_diag_samples, complex=True,
              doc=_diag_doc("the elements (last axis)")),
        OpDef("diff", diff, diff_grad, jvp=diff_jvp,
              params={"n": 1, "axis": -1, "prepend": None, "append": None},
              implements=(np.diff,), samples=_diff_samples, complex=True,
              doc="n-th discrete difference along axis (prepend / append are constants)"),
        OpDef("gradient", gradient, gradient_grad, jvp=gradient_jvp,
              params={"spacing": 1.0, "axis": None, "edge_order": 1},
              implements=((np.gradient, numpy_gradient),), samples=_gradient_samples,
              complex=True, doc="np.gradient along one axis with a scalar spacing "
                                "(np.gradient over several axes: a tuple, one per axis)"),
        OpDef("copy", copy, identity_grad, jvp=identity_jvp, params={"order": "K"},
              method=True, implements=(np.copy,), samples=_copy_samples, complex=True,
              doc="a copy of x (differentiable identity)"),
        OpDef("clone", copy, identity_grad, jvp=identity_jvp, params={"order": "K"},
              method=True, samples=_copy_samples, complex=True,
              doc="a copy of x (differentiable identity), PyTorch's name"),
        OpDef("argmax", np.argmax, None, params={"axis": None, "keepdims": False},
              method=_plain_result, doc="index of the maximum along axis (no gradient)"),
        OpDef("argmin", np.argmin, None, params={"axis": None, "keepdims": False},
              method=_plain_result, doc="index of the minimum along axis (no gradient)"),
        OpDef("argsort", argsort, None, params={"axis": -1, "kind": None, "stable": None},
              method=_plain_result, lazy=False, doc="indices that sort x along axis (no gradient)"),
        *_logic_ops(),
    ]
