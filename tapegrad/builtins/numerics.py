"""Numerical routines users' NumPy code calls: interpolation, polynomials, integration,
1-D convolution, covariance, gathering along an axis, grids, quantiles, least squares.

Every forward is NumPy's own function on plain arrays; every rule is written with
operators, NumPy functions that registered ops implement, and ``lift``-ed ops, so under
``create_graph=True`` it is recorded and differentiable again. Indices that a rule reads
from input values (``interp``'s knot intervals, ``quantile``'s ranks) are constants of
the rule, computed on the values (``_plain``: a step of the plan while ``tg.compile``
traces).

Inputs without a gradient: ``interp``'s knots ``xp``, ``take_along_axis``'s indices,
``quantile``'s and ``percentile``'s ``q`` (a parameter), ``np.polyfit``'s ``x``.

Several outputs: ``lstsq`` is an op with three outputs ``(x, residuals, s)``;
``np.linalg.lstsq`` adds NumPy's integer ``rank`` (no gradient) as the third of four.
``np.meshgrid`` gives as many arrays as it is given: the ops ``meshgrid1`` to
``meshgrid4`` (``nout`` fixed per op, one op per input count); more inputs are grids
built from ``reshape`` and ``broadcast_to``, which differentiate the same way.
"""

from __future__ import annotations

import numpy as np

from tapegrad.errors import DifferentiabilityError
from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift
from tapegrad.tensor import Tensor

from ._decomp_rules import used as _used
from .products import bilinear
from .reductions import _kept
from .scans import _along, _moved_last, _pad, _plain, _restore
from .shaping import _plain_index

scatter_add = lift("scatter_add")
_polyval = lift("polyval")
_take_along_axis = lift("take_along_axis")
_svd_u = lift("svd_u")
_svd_vh = lift("svd_vh")


def _constant(v, name, op):
    """A parameter given as a Tensor: its values, refusing one that needs a gradient."""
    if isinstance(v, Tensor):
        if v._node is not None:
            raise TypeError(f"{op}: {name} takes no gradient; pass {name}.detach()")
        return v.data
    return v


def _float_dtype(*arrays):
    """The inputs' floating dtype (float64 for integers): float32 data stays float32,
    where np.interp and np.cov compute in float64 (and a float64 q would promote it)."""
    dtype = np.result_type(*(a for a in arrays if a is not None))
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


# ----------------------------------------------------------------- interp


def interp(x, xp, fp, left=None, right=None, period=None):
    if period is not None:
        raise NotImplementedError(
            "interp: period= is not supported on Tensors; wrap x into one period "
            "yourself (x % period) and pass xp, fp extended past both ends")
    out = np.interp(x, xp, fp, left=left, right=right)
    return np.asarray(out, dtype=_float_dtype(x, fp))


def _segments(x, xp):
    """Per element of ``x``: the knot interval ``(i, i + 1)`` it falls in (the first or
    last one outside the knots), and whether it lies left of or right of all knots."""
    xv, kv = _plain(x), _plain(xp)
    i = np.clip(np.searchsorted(kv, xv, side="right") - 1, 0, kv.shape[0] - 2)
    return i, xv < kv[0], xv > kv[-1]


def interp_grad_x(g, out, x, xp, fp, left=None, right=None, period=None):
    if xp.shape[0] < 2:
        return None
    i, below, above = _segments(x, xp)
    return g * ((fp[i + 1] - fp[i]) / (xp[i + 1] - xp[i])) * ~(below | above)


def interp_grad_fp(g, out, x, xp, fp, left=None, right=None, period=None):
    n = fp.shape[0]
    if n < 2:  # one knot: fp[0] everywhere, but left / right where given
        xv, k = _plain(x), _plain(xp)[0]
        keep = ~(((xv < k) & (left is not None)) | ((xv > k) & (right is not None)))
        return np.sum(g * keep).reshape(1)
    i, below, above = _segments(x, xp)
    inside = ~(below | above)
    w = (x - xp[i]) / (xp[i + 1] - xp[i])
    lower = g * (1 - w) * inside + (g * below if left is None else 0.0)
    upper = g * w * inside + (g * above if right is None else 0.0)
    return scatter_add(lower, (n,), i) + scatter_add(upper, (n,), i + 1)


# ----------------------------------------------------------------- polynomials


def polyval(p, x):
    if np.ndim(p) != 1:
        raise ValueError(f"polyval: p must be 1-D (coefficients, highest power first), "
                         f"got shape {np.shape(p)}")
    return np.asarray(np.polyval(p, x))


def _derivative(p):
    """The coefficients of p's derivative."""
    n = p.shape[0]
    return p[:-1] * np.arange(n - 1, 0, -1)


def polyval_grad_p(g, out, p, x):
    powers = np.expand_dims(x, -1) ** np.arange(p.shape[0] - 1, -1, -1)
    return np.sum(np.expand_dims(g, -1) * powers, axis=tuple(range(np.ndim(g))))


def polyval_grad_x(g, out, p, x):
    return g * _polyval(_derivative(p), x) if p.shape[0] > 1 else None


def polyval_jvp(ts, out, p, x):
    tp, tx = ts
    total = None if tp is None else _polyval(tp, x)
    if tx is not None and p.shape[0] > 1:
        term = tx * _polyval(_derivative(p), x)
        total = term if total is None else total + term
    return total


# ----------------------------------------------------------------- trapezoid


def trapezoid(y, x=None, dx=1.0, axis=-1):
    return np.asarray(np.trapezoid(y, x, dx=dx, axis=axis))


def _widths(y, x, dx, axis):
    """The widths of the intervals along ``axis`` (NumPy's ``d``), broadcasting against
    ``y``'s intervals."""
    if x is None:
        shape = [1] * y.ndim
        shape[axis] = y.shape[axis] - 1
        return np.full(tuple(shape), dx, dtype=y.dtype if y.dtype.kind == "f" else float)
    if x.ndim == 1:
        shape = [1] * y.ndim
        shape[axis] = x.shape[0] - 1
        return np.diff(x).reshape(tuple(shape))
    return np.diff(x, axis=axis)


def _axis_from_end(y, axis):
    """``axis`` counted from the end, so that it names the same axis of ``y`` and of an
    ``x`` broadcasting against it."""
    return axis % y.ndim - y.ndim


def trapezoid_grad_y(g, out, y, x=None, dx=1.0, axis=-1):
    ax = _axis_from_end(y, axis)
    d = _widths(y, x, dx, ax)
    return _kept(g, y.ndim, ax, False) * (_pad(d, 1, 0, ax) + _pad(d, 0, 1, ax)) / 2


def trapezoid_grad_x(g, out, y, x=None, dx=1.0, axis=-1):
    ax = _axis_from_end(y, axis)
    n = y.shape[ax]
    s = y[_along(ax, y.ndim, slice(1, None))] + y[_along(ax, y.ndim, slice(None, n - 1))]
    gx = _kept(g, y.ndim, ax, False) * (_pad(s, 1, 0, ax) - _pad(s, 0, 1, ax)) / 2
    if x.ndim == 1:
        return np.sum(gx, axis=tuple(a for a in range(gx.ndim) if a != gx.ndim + ax))
    return gx


def numpy_trapezoid(op, y, x=None, dx=1.0, axis=-1):
    """``np.trapezoid`` (``np.trapz``): x is an optional input."""
    return op(y, dx=dx, axis=axis) if x is None else op(y, x, dx=dx, axis=axis)


# ----------------------------------------------------------------- convolve, correlate

_MODES = ("full", "same", "valid")


def _check_mode(name, a, v, mode):
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be one of {_MODES}, got {mode!r}")
    if np.ndim(a) != 1 or np.ndim(v) != 1:
        raise ValueError(f"{name}: a and v must be 1-D, got shapes {np.shape(a)} and "
                         f"{np.shape(v)}")


def convolve(a, v, mode="full"):
    _check_mode("convolve", a, v, mode)
    return np.convolve(a, v, mode)


def correlate(a, v, mode="valid"):
    _check_mode("correlate", a, v, mode)
    return np.correlate(a, v, mode)


def _full_cotangent(g, n, m, mode, correlating):
    """``g`` placed where NumPy's ``mode`` result sits in the full result (length
    n + m - 1), zeros elsewhere."""
    if mode == "full":
        start = 0
    elif mode == "valid":
        start = min(n, m) - 1
    elif correlating and n < m:  # NumPy correlates the other way round and reverses
        start = n // 2
    else:
        start = (min(n, m) - 1) // 2
    return np.pad(g, (start, n + m - 1 - start - g.shape[0]))


# The full convolution is z[k] = sum_j a[k - j] v[j]; its adjoint in a (in v) correlates
# the cotangent with v (with a). Full correlation is the full convolution with v reversed.
def convolve_grad_a(g, out, a, v, mode="full"):
    return np.correlate(_full_cotangent(g, a.shape[0], v.shape[0], mode, False), v, "valid")


def convolve_grad_v(g, out, a, v, mode="full"):
    return np.correlate(_full_cotangent(g, a.shape[0], v.shape[0], mode, False), a, "valid")


def correlate_grad_a(g, out, a, v, mode="valid"):
    return np.convolve(_full_cotangent(g, a.shape[0], v.shape[0], mode, True), v, "valid")


def correlate_grad_v(g, out, a, v, mode="valid"):
    gf = _full_cotangent(g, a.shape[0], v.shape[0], mode, True)
    return np.correlate(gf, a, "valid")[::-1]


# ----------------------------------------------------------------- cov, corrcoef


def _as_rows(v, rowvar, first):
    """The shape ``v`` takes in np.cov's variables-by-observations matrix, and whether
    it is transposed there (NumPy tests m by its ndim, y by its first row count)."""
    shape = (1,) * (2 - np.ndim(v)) + tuple(np.shape(v))
    flip = not rowvar and (np.ndim(v) != 1 if first else shape[0] != 1)
    return shape, flip


def _variables(m, y, rowvar):
    """np.cov's data matrix: one row per variable (m's, then y's), one column per
    observation."""
    rows = []
    for v, first in ((m, True), (y, False)):
        if v is not None:
            shape, flip = _as_rows(v, rowvar, first)
            v2 = v.reshape(shape)
            rows.append(v2.T if flip else v2)
    return rows[0] if len(rows) == 1 else np.concatenate(rows, axis=0)


def _split_variables(gX, m, y, rowvar):
    """The gradient of the data matrix, cut back into m's and y's shapes."""
    grads, start = [], 0
    for v, first in ((m, True), (y, False)):
        if v is None:
            grads.append(None)
            continue
        shape, flip = _as_rows(v, rowvar, first)
        k = shape[1] if flip else shape[0]
        part = gX[start:start + k]
        grads.append((part.T if flip else part).reshape(np.shape(v)))
        start += k
    return tuple(grads)


def _centred(X):
    return X - np.mean(X, axis=1, keepdims=True)


def cov(m, y=None, rowvar=True, bias=False, ddof=None):
    if np.ndim(m) > 2 or (y is not None and np.ndim(y) > 2):
        raise ValueError("cov: m and y must have at most 2 dimensions")
    return np.asarray(np.cov(m, y, rowvar=rowvar, bias=bias, ddof=ddof,
                             dtype=_float_dtype(m, y)))


def cov_grad(g, out, m, y=None, rowvar=True, bias=False, ddof=None):
    X = _variables(m, y, rowvar)
    p, n = X.shape
    ddof = ddof if ddof is not None else 0 if bias else 1
    G = g.reshape((p, p))
    # (G + G^T) Xc has rows summing to zero already: the centring's adjoint is a no-op.
    return _split_variables((G + G.T) @ _centred(X) / (n - ddof), m, y, rowvar)


def corrcoef(x, y=None, rowvar=True):
    if np.ndim(x) > 2 or (y is not None and np.ndim(y) > 2):
        raise ValueError("corrcoef: x and y must have at most 2 dimensions")
    return np.asarray(np.corrcoef(x, y, rowvar=rowvar, dtype=_float_dtype(x, y)))


def corrcoef_grad(g, out, x, y=None, rowvar=True):
    # R = Xn Xn^T with Xn the centred rows scaled to unit norm.
    X = _centred(_variables(x, y, rowvar))
    p = X.shape[0]
    norm = np.sqrt(np.sum(X * X, axis=1, keepdims=True))
    Xn = X / norm
    G = g.reshape((p, p))
    gXn = (G + G.T) @ Xn
    return _split_variables((gXn - Xn * np.sum(gXn * Xn, axis=1, keepdims=True)) / norm,
                            x, y, rowvar)


def _no_weights(name):
    def adapter(op, m, y=None, rowvar=True, bias=False, ddof=None, fweights=None,
                aweights=None, *, dtype=None):
        if fweights is not None or aweights is not None or dtype is not None:
            raise NotImplementedError(f"np.{name} on Tensors: fweights, aweights and dtype "
                                      "are not supported")
        return op(m, rowvar=rowvar, bias=bias, ddof=ddof) if y is None \
            else op(m, y, rowvar=rowvar, bias=bias, ddof=ddof)
    return adapter


def numpy_corrcoef(op, x, y=None, rowvar=True, *, dtype=None):
    if dtype is not None:
        raise NotImplementedError("np.corrcoef on Tensors: dtype is not supported")
    return op(x, rowvar=rowvar) if y is None else op(x, y, rowvar=rowvar)


# ----------------------------------------------------------------- take_along_axis


def take_along_axis(arr, indices, axis=-1):
    return np.take_along_axis(arr, _plain_index(indices), axis=axis)


def _gather_index(shape, indices, axis):
    """The integer-array index ``take_along_axis`` reads ``arr[index]`` with."""
    nd = len(shape)
    ax = axis % nd
    return tuple(indices if d == ax else
                 np.arange(shape[d]).reshape((1,) * d + (-1,) + (1,) * (nd - d - 1))
                 for d in range(nd))


def take_along_axis_grad(g, out, arr, indices, axis=-1):
    # scatter_add accumulates repeated indices (put_along_axis would keep only one).
    if axis is None:
        return scatter_add(g, (arr.size,), indices).reshape(arr.shape)
    return scatter_add(g, arr.shape, _gather_index(arr.shape, indices, axis))


def take_along_axis_jvp(ts, out, arr, indices, axis=-1):
    return None if ts[0] is None else _take_along_axis(ts[0], indices, axis=axis)


# ----------------------------------------------------------------- meshgrid

_MAX_GRID = 4


def _grid_axis(j, k, indexing):
    """The axis of the grids along which input ``j`` of ``k`` varies."""
    return {0: 1, 1: 0}.get(j, j) if indexing == "xy" and k > 1 else j


def _meshgrid(k):
    def forward(*xs, indexing="xy", sparse=False, copy=True):
        outs = tuple(np.meshgrid(*xs, indexing=indexing, sparse=sparse, copy=copy))
        return outs if k > 1 else outs[0]
    return forward


def meshgrid_grad(g, out, *xs, indexing="xy", sparse=False, copy=True):
    k = len(xs)
    gs = g if k > 1 else (g,)
    return tuple(
        np.sum(gj, axis=tuple(a for a in range(k) if a != _grid_axis(j, k, indexing)))
        .reshape(np.shape(x))
        for j, (gj, x) in enumerate(zip(gs, xs, strict=True)))


_MESHGRIDS = {k: lift(f"meshgrid{k}") for k in range(1, _MAX_GRID + 1)}


def numpy_meshgrid(op, *xi, copy=True, sparse=False, indexing="xy"):
    """``np.meshgrid``: the op for the number of inputs; beyond that, broadcast views."""
    if indexing not in ("xy", "ij"):
        raise ValueError("Valid values for `indexing` are 'xy' and 'ij'.")
    k = len(xi)
    if k == 0:
        return ()
    if k <= _MAX_GRID:
        outs = _MESHGRIDS[k](*xi, indexing=indexing, sparse=sparse, copy=copy)
        return outs if k > 1 else (outs,)
    sizes = [int(np.size(x)) for x in xi]
    full = [sizes[_grid_axis(a, k, indexing)] for a in range(k)]
    grids = []
    for j, x in enumerate(xi):
        shape = [1] * k
        shape[_grid_axis(j, k, indexing)] = sizes[j]
        grid = np.reshape(x, tuple(shape))
        if not sparse:
            grid = np.broadcast_to(grid, tuple(full))
            grid = np.copy(grid) if copy else grid
        grids.append(grid)
    return tuple(grids)


# ----------------------------------------------------------------- quantiles


def _check_method(name, method):
    if method != "linear":
        raise NotImplementedError(
            f"{name}: method={method!r} is not supported on Tensors; only 'linear' "
            "(NumPy's default) has a gradient here")


def quantile(a, q, axis=None, keepdims=False, method="linear"):
    _check_method("quantile", method)
    return np.asarray(np.quantile(a, q, axis=axis, keepdims=keepdims), dtype=_float_dtype(a))


def percentile(a, q, axis=None, keepdims=False, method="linear"):
    _check_method("percentile", method)
    return np.asarray(np.percentile(a, q, axis=axis, keepdims=keepdims), dtype=_float_dtype(a))


def _quantile_weights(a, qs, axis):
    """Per quantile in ``qs`` (fractions): each element's weight in it, by method
    'linear' (the two order statistics around (n - 1) q; ties in stable order)."""
    flat, undo = _moved_last(_plain(a), axis)
    n = flat.shape[-1]
    rank = np.argsort(np.argsort(flat, axis=-1, kind="stable"), axis=-1, kind="stable")
    weights = []
    for q in qs:
        h = (n - 1) * float(q)
        lo = int(np.floor(h))
        frac = h - lo
        weights.append(_restore((1 - frac) * (rank == lo) + frac * (rank == min(lo + 1, n - 1)),
                                undo))
    return weights


def _quantile_grad(scale):
    def rule(g, out, a, q, axis=None, keepdims=False, method="linear"):
        ws = _quantile_weights(a, np.reshape(q, -1) / scale, axis)
        gq = g.reshape((len(ws),) + g.shape[np.ndim(q):])
        total = 0.0
        for k, w in enumerate(ws):
            total = total + _kept(gq[k], a.ndim, axis, keepdims) * w
        return total
    return rule


def _numpy_quantile(name):
    def adapter(op, a, q, axis=None, out=None, overwrite_input=False, method="linear",
                keepdims=False, *, weights=None, interpolation=None):
        if out is not None or weights is not None or interpolation is not None:
            raise NotImplementedError(f"np.{name} on Tensors: out, weights and "
                                      "interpolation are not supported")
        return op(a, q=_constant(q, "q", name), axis=axis, keepdims=keepdims, method=method)
    return adapter


# ----------------------------------------------------------------- least squares


def lstsq(a, b, rcond=None):
    x, residuals, _, s = np.linalg.lstsq(a, b, rcond=rcond)
    return x, residuals, s


def _rank(s, rcond, shape):
    """LAPACK's rank: the singular values above rcond times the largest."""
    if rcond is None or rcond < 0:
        rcond = np.finfo(s.dtype).eps * max(shape)
    return np.count_nonzero(s > rcond * s[0]) if s.shape[0] else 0


def lstsq_grad(g, out, a, b, rcond=None):
    (gx, gres, gs), (x, res, s) = g, out
    m, n = a.shape
    rank = _rank(_plain(s), rcond, a.shape)
    if rank < n:
        raise DifferentiabilityError(
            f"lstsq: a ({m}x{n}) has rank {rank} < {n} columns: the least-squares solution "
            "is not unique (NumPy picks the minimum-norm one) and has no gradient here")
    vector = b.ndim == 1
    x2, b2, gx2 = (x[:, None], b[:, None], gx[:, None]) if vector else (x, b, gx)
    # x = (A^T A)^-1 A^T b: with z = (A^T A)^-1 gx and r = b - A x,
    # gA = r z^T - A z x^T and gb = A z.
    z = np.linalg.solve(a.T @ a, gx2)
    r = b2 - a @ x2
    ga = r @ z.T - (a @ z) @ x2.T
    gb = a @ z
    if res.shape[0] and _used(gres) is not None:
        # residuals = |r|^2 per column; at the optimum A^T r = 0, so x's change drops out.
        gr = 2 * r * gres[None, :]
        ga = ga - gr @ x2.T
        gb = gb + gr
    if _used(gs) is not None:  # the singular values of a, as svdvals'
        ga = ga + (_svd_u(a) * gs) @ _svd_vh(a)
    return ga, gb[:, 0] if vector else gb


def numpy_lstsq(op, a, b, rcond=None):
    """``np.linalg.lstsq``: NumPy's ``(x, residuals, rank, s)``, rank a plain integer."""
    x, residuals, s = op(a, b, rcond=rcond)
    return x, residuals, _rank(_plain(s), rcond, np.shape(a)), s


def numpy_polyfit(op, x, y, deg, rcond=None, full=False, w=None, cov=False):
    """``np.polyfit`` on NumPy's algorithm (a column-scaled Vandermonde lstsq):
    differentiable in y; x and w are constants."""
    if full or cov:
        raise NotImplementedError("np.polyfit on Tensors: full=True and cov=True are not "
                                  "supported")
    x = np.asarray(_constant(x, "x", "np.polyfit"), dtype=float)
    order = int(deg) + 1
    if deg < 0 or x.ndim != 1 or x.size == 0 or np.ndim(y) not in (1, 2) \
            or np.shape(y)[0] != x.shape[0]:
        raise ValueError("np.polyfit: expected deg >= 0, and x and y 1-D (or y 2-D) of the "
                         "same non-zero length")
    lhs = np.vander(x, order)
    rhs = y
    if w is not None:
        w = np.asarray(_constant(w, "w", "np.polyfit"), dtype=float)
        lhs = lhs * w[:, None]
        rhs = rhs * (w[:, None] if np.ndim(y) == 2 else w)
    if rcond is None:
        rcond = x.shape[0] * np.finfo(x.dtype).eps
    scale = np.sqrt((lhs * lhs).sum(axis=0))
    c = op(lhs / scale, rhs, rcond=rcond)[0]
    return (c.T / scale).T


# ----------------------------------------------------------------- samples


def _r(rng, *shape):
    return rng.standard_normal(shape)


def _interp_samples(rng):
    xp = np.array([-1.0, -0.2, 0.5, 1.1, 2.0])
    fp = _r(rng, 5)
    # x between the knots, never on one; some left of them and some right
    x = np.array([[-1.5, -0.6, 0.1], [0.8, 1.6, 2.4]])
    return [((x, xp, fp), {}), ((x, xp, fp), {"left": 0.3, "right": -2.0}),
            ((x[0], xp, fp), {"right": 1.5}), ((np.array(0.2), xp, fp), {}),
            ((x, xp[:1], fp[:1]), {"left": -1.0})]


def _polyval_samples(rng):
    return [((_r(rng, 4), _r(rng, 2, 3)), {}), ((_r(rng, 1), _r(rng, 3)), {}),
            ((_r(rng, 3), _r(rng)), {})]


def _trapezoid_samples(rng):
    y = _r(rng, 3, 4)
    x = np.cumsum(rng.uniform(0.2, 1.0, 4))
    return [((y,), {}), ((y,), {"dx": 0.5, "axis": 0}), ((y, x), {}),
            ((y, x[:3]), {"axis": 0}), ((y, np.cumsum(rng.uniform(0.2, 1.0, (3, 4)), 1)), {}),
            ((_r(rng, 2, 3, 2), np.cumsum(rng.uniform(0.2, 1.0, 3))), {"axis": 1})]


def _conv_samples(rng):
    return [((_r(rng, n), _r(rng, m)), {"mode": mode})
            for n, m in ((5, 3), (3, 5), (4, 4), (2, 5), (1, 3))
            for mode in _MODES]


def _cov_samples(rng):
    m = _r(rng, 3, 5)
    return [((m,), {}), ((m.T,), {"rowvar": False}), ((m, _r(rng, 2, 5)), {}),
            ((m, _r(rng, 5)), {"bias": True}), ((m[0], _r(rng, 5)), {"ddof": 2}),
            ((m.T, _r(rng, 5, 2)), {"rowvar": False}), ((m[0],), {}),
            ((m[0], m[1]), {"rowvar": False})]


def _corrcoef_samples(rng):
    m = _r(rng, 3, 5)
    return [((m,), {}), ((m.T,), {"rowvar": False}), ((m, _r(rng, 2, 5)), {}),
            ((m[0], _r(rng, 5)), {}), ((m.T, _r(rng, 5)), {"rowvar": False})]


def _take_along_samples(rng):
    x = _r(rng, 3, 4)
    return [((x, np.array([[0, 3, 3], [1, 1, 2], [2, 0, 0]])), {"axis": 1}),
            ((x, np.array([[2, 0, 1, 2]])), {"axis": 0}),          # broadcast along axis 1
            ((x, np.array([[-1], [0], [-1]])), {}),
            ((x, np.array([5, 5, 0, 11])), {"axis": None}),
            ((_r(rng, 2, 3, 2), np.array([[[1, 0]], [[2, 2]]])), {"axis": 1})]


def _meshgrid_samples(k):
    def samples(rng):
        xs = tuple(_r(rng, n) for n in (3, 2, 4, 2)[:k])
        return [(xs, {}), (xs, {"indexing": "ij"}), (xs, {"sparse": True}),
                ((_r(rng, 2, 2),) + xs[1:], {"copy": False})]
    return samples


def _quantile_samples(scale):
    def samples(rng):
        x = _r(rng, 3, 5)         # continuous draws: no ties
        return [((x,), {"q": 0.3 * scale}), ((x,), {"q": [0.1 * scale, 0.5 * scale],
                                                    "axis": 1}),
                ((x,), {"q": np.array([[0.25], [0.9]]) * scale, "axis": 0, "keepdims": True}),
                ((x,), {"q": 1.0 * scale, "axis": (0, 1)}), ((x,), {"q": 0.0, "axis": -1}),
                ((x,), {"q": 0.7 * scale, "keepdims": True})]
    return samples


def _lstsq_samples(rng):
    a = _r(rng, 5, 3)
    return [((a, _r(rng, 5)), {}), ((a, _r(rng, 5, 2)), {}), ((_r(rng, 3, 3), _r(rng, 3)), {}),
            ((a, _r(rng, 5, 2)), {"rcond": 1e-10})]


# ----------------------------------------------------------------- the ops


def _meshgrid_op(k):
    return OpDef(
        f"meshgrid{k}", _meshgrid(k), meshgrid_grad, nargs=k, nout=k,
        params={"indexing": "xy", "sparse": False, "copy": True},
        implements=((np.meshgrid, numpy_meshgrid),) if k == 1 else (),
        samples=_meshgrid_samples(k), save_inputs="shape", lazy=False,
        doc=("np.meshgrid: the grids of its (raveled) inputs, by op meshgridK for K = 1..4 "
             "inputs, broadcast views beyond; each input's gradient sums its grid over the "
             "other axes") if k == 1 else f"np.meshgrid of {k} inputs: {k} grids")


def _quantile_op(name, forward, scale):
    """``quantile`` (q in [0, 1]) or ``percentile`` (``scale`` 100: q in [0, 100])."""
    return OpDef(
        name, forward, _quantile_grad(scale), nargs=1,
        params={"q": None, "axis": None, "keepdims": False, "method": "linear"},
        implements=((getattr(np, name), _numpy_quantile(name)),),
        samples=_quantile_samples(scale), lazy=False,
        doc=f"q-th {name}s over axis, method 'linear' only (q gets no gradient; kinks "
            "where values tie)")


def _trapezoid_targets():
    targets = [(np.trapezoid, numpy_trapezoid)]
    if hasattr(np, "trapz"):  # NumPy < 2.0's name
        targets.append((np.trapz, numpy_trapezoid))
    return tuple(targets)


@hookimpl
def tapegrad_ops():
    return [
        OpDef("interp", interp, (interp_grad_x, None, interp_grad_fp), nargs=3, nondiff=(1,),
              params={"left": None, "right": None, "period": None},
              implements=(np.interp,), samples=_interp_samples, lazy=False,
              doc="piecewise-linear interpolation of (xp, fp) at x (xp gets no gradient; "
                  "kinks at the knots; period not supported)"),
        OpDef("polyval", polyval, (polyval_grad_p, polyval_grad_x), jvp=polyval_jvp,
              nargs=2, params={}, implements=(np.polyval,), samples=_polyval_samples, lazy=False,
              doc="the polynomial with 1-D coefficients p (highest power first) at x"),
        OpDef("trapezoid", trapezoid, (trapezoid_grad_y, trapezoid_grad_x), nargs=2,
              optional=1, params={"dx": 1.0, "axis": -1},
              implements=_trapezoid_targets(), samples=_trapezoid_samples, lazy=False,
              doc="trapezoidal integral of y along axis, at sample points x or spacing dx"),
        OpDef("convolve", convolve, (convolve_grad_a, convolve_grad_v),
              jvp=bilinear(np.convolve), nargs=2, params={"mode": "full"},
              implements=(np.convolve,), samples=_conv_samples, lazy=False,
              doc="discrete linear convolution of two 1-D arrays, modes full/same/valid"),
        OpDef("correlate", correlate, (correlate_grad_a, correlate_grad_v),
              jvp=bilinear(np.correlate), nargs=2, params={"mode": "valid"},
              implements=(np.correlate,), samples=_conv_samples, lazy=False,
              doc="cross-correlation of two 1-D real arrays, modes valid/same/full"),
        OpDef("cov", cov, cov_grad, nargs=2, optional=1,
              params={"rowvar": True, "bias": False, "ddof": None},
              implements=((np.cov, _no_weights("cov")),), samples=_cov_samples, lazy=False,
              doc="covariance matrix of the variables in m (and y); no fweights/aweights"),
        OpDef("corrcoef", corrcoef, corrcoef_grad, nargs=2, optional=1,
              params={"rowvar": True}, implements=((np.corrcoef, numpy_corrcoef),),
              samples=_corrcoef_samples, lazy=False,
              doc="Pearson correlation coefficients of the variables in x (and y)"),
        OpDef("take_along_axis", take_along_axis, (take_along_axis_grad, None),
              jvp=take_along_axis_jvp, nargs=2, nondiff=(1,), params={"axis": -1},
              implements=(np.take_along_axis,), samples=_take_along_samples, lazy=False,
              doc="arr's elements at indices along axis (repeated indices accumulate)"),
        *(_meshgrid_op(k) for k in range(1, _MAX_GRID + 1)),
        _quantile_op("quantile", quantile, 1.0),
        _quantile_op("percentile", percentile, 100.0),
        OpDef("lstsq", lstsq, lstsq_grad, nargs=2, nout=3, params={"rcond": None},
              implements=((np.linalg.lstsq, numpy_lstsq), (np.polyfit, numpy_polyfit)),
              samples=_lstsq_samples, lazy=False,
              doc="least squares (x, residuals, s) for full-column-rank a "
                  "(np.linalg.lstsq adds the rank; np.polyfit: gradient in y)"),
    ]
