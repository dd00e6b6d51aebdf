"""Linear algebra (np.linalg): inv, pinv, det, solve, cholesky, norm, matrix_power, svdvals.

Every op takes stacks of matrices ``(..., m, n)`` where NumPy does. Rules use solves
rather than explicit inverses where they can. inv, det, solve and matrix_power are
holomorphic, so their rules (plain transposes, no conjugates: HIPS autograd's
convention) hold for complex inputs too.

Singular inputs: ``det``'s rule solves with ``a``, so its gradient at a singular matrix
raises ``LinAlgError`` (the true gradient there is the transposed adjugate, which a
solve cannot give); ``inv`` and ``solve`` fail there already in the forward.

``svdvals``' rule ``U diag(g) V^T`` needs the singular vectors: they come from the ops
``svd_u`` and ``svd_vh`` (the thin SVD's factors, one output each), whose rules are the
SVD's (:func:`._decomp_rules.svd_vjp`) written over the same three ops, so every order
of derivative is recorded. Distinct, non-zero singular values are assumed.

Multi-output decompositions (slogdet, eigh, eig, svd, qr) wait for engine support;
their rules are in :mod:`._decomp_rules`.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift

from ._decomp_rules import svd_vjp
from ._jvp import plus

_svd_u = lift("svd_u")
_svd_vh = lift("svd_vh")


def _t(x):
    return x.swapaxes(-1, -2)


def _eye(a):
    return np.eye(a.shape[-1])


def _trace(x):
    return np.sum(x * np.eye(x.shape[-1]), axis=(-2, -1))


def _sym(a):
    return (a + _t(a)) / 2


# ------------------------------------------------------------------ inv, pinv, det


def inv_grad(g, out, a):
    return -_t(out) @ g @ _t(out)


def pinv_forward(a, rcond=None, hermitian=False, rtol=None):
    # hermitian=True reads one triangle of a: symmetrise, so the gradient is symmetric
    # and every entry's finite difference agrees with it.
    kw = {} if rtol is None else {"rtol": rtol}
    if rcond is not None:
        kw["rcond"] = rcond
    return np.linalg.pinv(_sym(a) if hermitian else a, hermitian=hermitian, **kw)


def pinv_grad(g, out, a, rcond=None, hermitian=False, rtol=None):
    # Golub & Pereyra: the derivative of the pseudo-inverse at constant rank.
    p = out
    x = _sym(a) if hermitian else a
    ga = _t(-p @ _t(g) @ p
            + p @ _t(p) @ g @ (np.eye(x.shape[-2]) - x @ p)
            + (np.eye(p.shape[-2]) - p @ x) @ g @ _t(p) @ p)
    return _sym(ga) if hermitian else ga


def det_grad(g, out, a):
    return (g * out)[..., None, None] * np.linalg.solve(_t(a), _eye(a))


def det_jvp(ts, out, a):
    return out * _trace(np.linalg.solve(a, ts[0]))


# ------------------------------------------------------------------ solve


def _vector_rhs(a, b):
    return b.ndim == 1


def solve_grad_b(g, out, a, b):
    if _vector_rhs(a, b):
        return np.linalg.solve(_t(a), g[..., None])[..., 0]
    return np.linalg.solve(_t(a), g)


def solve_grad_a(g, out, a, b):
    gb = solve_grad_b(g, out, a, b)
    if _vector_rhs(a, b):
        return -gb[..., :, None] * out[..., None, :]
    return -gb @ _t(out)


def solve_jvp(ts, out, a, b):
    ta, tb = ts
    if _vector_rhs(a, b):
        rhs = plus(tb, None if ta is None else -(ta @ out[..., None])[..., 0])
        return np.linalg.solve(a, rhs[..., None])[..., 0]
    rhs = plus(tb, None if ta is None else -(ta @ out))
    return np.linalg.solve(a, rhs)


# ------------------------------------------------------------------ cholesky


def cholesky_forward(a, upper=False):
    # NumPy reads the lower triangle only. Symmetrising first makes the op a function
    # of every entry, so the symmetric rule agrees with each entry's finite difference;
    # for a symmetric input the result is NumPy's, bit for bit.
    return np.linalg.cholesky(_sym(a), upper=upper)


def cholesky_grad(g, out, a, upper=False):
    # Iain Murray, "Differentiation of the Cholesky decomposition" (2016), symmetrised.
    low, gl = (_t(out), _t(g)) if upper else (out, g)
    n = a.shape[-1]
    phi = (_t(low) @ gl) * (np.tri(n) - 0.5 * np.eye(n))
    s = _t(np.linalg.solve(_t(low), _t(np.linalg.solve(_t(low), phi))))
    return _sym(s)


# ------------------------------------------------------------------ matrix_power


def _power_base(a, n):
    return a if n > 0 else np.linalg.inv(a)


def matrix_power_grad(g, out, a, n):
    if n == 0:
        return np.zeros(a.shape)
    b = _power_base(a, n)
    m = abs(n)
    powers = [None]
    for _ in range(m - 1):
        powers.append(_t(b) if powers[-1] is None else powers[-1] @ _t(b))
    gb = None
    for k in range(m):
        term = g if powers[k] is None else powers[k] @ g
        term = term if powers[m - 1 - k] is None else term @ powers[m - 1 - k]
        gb = term if gb is None else gb + term
    return gb if n > 0 else -_t(b) @ gb @ _t(b)


def matrix_power_jvp(ts, out, a, n):
    if n == 0:
        return None
    b = _power_base(a, n)
    t = ts[0] if n > 0 else -b @ ts[0] @ b
    m = abs(n)
    total = None
    for k in range(m):
        term = t if k == 0 else np.linalg.matrix_power(b, k) @ t
        term = term if k == m - 1 else term @ np.linalg.matrix_power(b, m - 1 - k)
        total = term if total is None else total + term
    return total


# ------------------------------------------------------------------ svdvals


def svdvals_forward(a):
    return np.linalg.svd(a, compute_uv=False)


def svd_u_forward(a):
    return np.linalg.svd(a, full_matrices=False)[0]


def svd_vh_forward(a):
    return np.linalg.svd(a, full_matrices=False)[2]


def _factors(a):
    """The thin SVD's factors as ops (recorded on Tensors)."""
    return _svd_u(a), np.linalg.svdvals(a), _svd_vh(a)


def svdvals_grad(g, out, a):
    return (_svd_u(a) * g[..., None, :]) @ _svd_vh(a)


def svd_u_grad(g, out, a):
    u, s, vh = _factors(a)
    return svd_vjp(g, None, None, u, s, vh, a)


def svd_vh_grad(g, out, a):
    u, s, vh = _factors(a)
    return svd_vjp(None, None, g, u, s, vh, a)


# ------------------------------------------------------------------ norm


def _axes(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(int(a) % x.ndim for a in axes)


def _kept(v, x, axes, keepdims):
    if keepdims:
        return v
    shape = list(v.shape)
    for a in sorted(axes):
        shape.insert(a, 1)
    return v.reshape(tuple(shape))


def _is_matrix_norm(x, ord, axis):
    if axis is None:
        return ord is not None and x.ndim == 2
    return isinstance(axis, tuple) and len(axis) == 2


def _vector_norm_grad(gk, nk, x, ord, axes):
    if ord is None or ord == 2 or ord == "fro":
        return gk * x / np.where(nk == 0, 1.0, nk)
    if ord == 0:
        return np.zeros(x.shape)
    if ord == 1:
        return gk * np.sign(x)
    if ord in (np.inf, -np.inf):
        hit = np.abs(x) == nk          # a plain mask: ties share the gradient
        return gk * np.sign(x) * hit / hit.sum(axis=axes, keepdims=True)
    return gk * np.sign(x) * np.abs(x) ** (ord - 1) / nk ** (ord - 1)


def _spectral_norm_grad(gk, x, ord, axes):
    rest = [i for i in range(x.ndim) if i not in axes]
    perm = tuple(rest) + axes
    back = tuple(int(i) for i in np.argsort(perm))
    xm = np.transpose(x, perm)
    gm = np.transpose(gk, perm)[..., 0, :]          # (..., 1): one value per matrix
    s = np.linalg.svdvals(xm)
    gm = gm * (np.max(s, axis=-1, keepdims=True) > 0)    # 0 at 0, as the vector 2-norm
    if ord == "nuc":
        gs = gm * np.ones(s.shape)
    else:
        hit = s == (np.max(s, axis=-1, keepdims=True) if ord == 2
                    else np.min(s, axis=-1, keepdims=True))
        gs = gm * hit / hit.sum(axis=-1, keepdims=True)
    return np.transpose(svdvals_grad(gs, None, xm), back)


def _sum_norm_grad(gk, nk, x, ord, axes):
    # ord 1: max over columns of column sums; ord inf: max over rows of row sums.
    row, col = axes
    summed, over = (row, col) if ord in (1, -1) else (col, row)
    sums = np.sum(np.abs(x), axis=summed, keepdims=True)
    hit = sums == nk
    return gk * np.sign(x) * hit / hit.sum(axis=over, keepdims=True)


def norm_grad(g, out, x, ord=None, axis=None, keepdims=False):
    axes = _axes(x, axis)
    gk = _kept(g, x, axes, keepdims)
    nk = _kept(out, x, axes, keepdims)
    if not _is_matrix_norm(x, ord, axis) or ord in (None, "fro"):
        return _vector_norm_grad(gk, nk, x, ord, axes)
    if ord in ("nuc", 2, -2):
        return _spectral_norm_grad(gk, x, ord, axes)
    return _sum_norm_grad(gk, nk, x, ord, axes)


# ------------------------------------------------------------------ samples


def _matrices(rng, shape):
    """Well-conditioned square matrices: identity-dominated plus noise."""
    n = shape[-1]
    return 2.0 * np.eye(n) + 0.5 * rng.standard_normal(shape)


def _spd(rng, shape):
    b = rng.standard_normal(shape)
    return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])


def _square_samples(rng):
    return [((_matrices(rng, (3, 3)),), {}), ((_matrices(rng, (2, 3, 3)),), {}),
            ((_matrices(rng, (2, 2)),), {})]


def _pinv_samples(rng):
    r = rng.standard_normal
    return [((r((3, 2)),), {}), ((r((2, 3)),), {}), ((_matrices(rng, (3, 3)),), {}),
            ((r((2, 3, 2)),), {"rcond": 1e-10}), ((r((3, 2)),), {"rtol": 1e-8}),
            ((_spd(rng, (3, 3)),), {"hermitian": True})]


def _solve_samples(rng):
    r = rng.standard_normal
    return [
        ((_matrices(rng, (3, 3)), r(3)), {}),
        ((_matrices(rng, (3, 3)), r((3, 2))), {}),
        ((_matrices(rng, (2, 3, 3)), r((2, 3, 2))), {}),
        ((_matrices(rng, (2, 3, 3)), r(3)), {}),
        ((_matrices(rng, (3, 3)), r((2, 3, 1))), {}),
    ]


def _cholesky_samples(rng):
    return [((_spd(rng, (3, 3)),), {}), ((_spd(rng, (2, 3, 3)),), {}),
            ((_spd(rng, (3, 3)),), {"upper": True})]


def _matrix_power_samples(rng):
    a = _matrices(rng, (3, 3)) / 2
    return [((a,), {"n": 3}), ((a,), {"n": 1}), ((a,), {"n": 0}), ((a,), {"n": -2}),
            ((_matrices(rng, (2, 2, 2)) / 2,), {"n": 2}), ((a,), {"n": -1})]


def _svdvals_samples(rng):
    r = rng.standard_normal
    return [((r((3, 2)),), {}), ((r((2, 3)),), {}), ((r((2, 3, 3)),), {})]


def _factor_samples(rng):
    r = rng.standard_normal
    return [((r((3, 2)),), {}), ((r((2, 3)),), {}), ((r((2, 2, 2)),), {})]


def _norm_samples(rng):
    v = rng.uniform(0.3, 2.0, 5) * rng.choice([-1.0, 1.0], 5)
    v[np.argmax(np.abs(v))] *= 1.5                       # one clear largest |v_i|
    v[np.argmin(np.abs(v))] *= 0.5                       # and one clear smallest
    m = rng.standard_normal((3, 4))
    m += 0.3 * np.sign(m)                                # away from the kinks at 0
    t = rng.standard_normal((2, 3, 4)) + 0.0
    t += 0.3 * np.sign(t)
    return [
        ((v,), {}), ((v,), {"ord": 1}), ((v,), {"ord": 2}), ((v,), {"ord": np.inf}),
        ((v,), {"ord": -np.inf}), ((v,), {"ord": 3}), ((v,), {"ord": 0.5}),
        ((v,), {"ord": 0}), ((v,), {"ord": -1.5}),
        ((m,), {}), ((m,), {"ord": "fro"}), ((m,), {"ord": "nuc"}), ((m,), {"ord": 2}),
        ((m,), {"ord": -2}), ((m,), {"ord": 1}), ((m,), {"ord": -1}),
        ((m,), {"ord": np.inf}), ((m,), {"ord": -np.inf}),
        ((t,), {}), ((t,), {"axis": 1}), ((t,), {"axis": -1, "keepdims": True}),
        ((t,), {"ord": 1, "axis": 0}), ((t,), {"ord": 3, "axis": 2}),
        ((t,), {"axis": (0, 2)}), ((t,), {"ord": "nuc", "axis": (2, 1)}),
        ((t,), {"ord": 2, "axis": (1, 2), "keepdims": True}),
        ((t,), {"ord": 1, "axis": (2, 0)}), ((t,), {"ord": np.inf, "axis": (1, 2)}),
        ((m,), {"ord": "fro", "keepdims": True}),
    ]


@hookimpl
def tapegrad_ops():
    return [
        OpDef("inv", np.linalg.inv, inv_grad,
              jvp=lambda ts, out, a: -out @ ts[0] @ out,
              implements=(np.linalg.inv,), samples=_square_samples, complex=True,
              doc="np.linalg.inv: matrix inverse (stacks too)"),
        OpDef("pinv", pinv_forward, pinv_grad,
              params={"rcond": None, "hermitian": False, "rtol": None},
              implements=(np.linalg.pinv,), samples=_pinv_samples,
              doc="np.linalg.pinv: Moore-Penrose pseudo-inverse (gradient at constant rank)"),
        OpDef("det", np.linalg.det, det_grad, jvp=det_jvp, implements=(np.linalg.det,),
              samples=_square_samples, complex=True,
              doc="np.linalg.det: determinant (gradient needs a non-singular matrix)"),
        OpDef("solve", np.linalg.solve, (solve_grad_a, solve_grad_b), jvp=solve_jvp,
              implements=(np.linalg.solve,), samples=_solve_samples, complex=True,
              doc="np.linalg.solve: x with a @ x = b (b a vector or stacked matrices)"),
        OpDef("cholesky", cholesky_forward, cholesky_grad, params={"upper": False},
              implements=(np.linalg.cholesky,), samples=_cholesky_samples,
              doc="np.linalg.cholesky of the symmetric part of a (gradient symmetric)"),
        OpDef("matrix_power", np.linalg.matrix_power, matrix_power_grad,
              jvp=matrix_power_jvp, params={"n": 1}, implements=(np.linalg.matrix_power,),
              samples=_matrix_power_samples, complex=True,
              doc="np.linalg.matrix_power: a ** n for integer n (negative: of inv(a))"),
        OpDef("svdvals", svdvals_forward, svdvals_grad,
              implements=(np.linalg.svdvals,), samples=_svdvals_samples,
              doc="np.linalg.svdvals: singular values (svd with compute_uv=False)"),
        OpDef("svd_u", svd_u_forward, svd_u_grad, samples=_factor_samples,
              doc="u of np.linalg.svd(a, full_matrices=False) (NumPy's signs)"),
        OpDef("svd_vh", svd_vh_forward, svd_vh_grad, samples=_factor_samples,
              doc="vh of np.linalg.svd(a, full_matrices=False) (NumPy's signs)"),
        OpDef("norm", np.linalg.norm, norm_grad,
              params={"ord": None, "axis": None, "keepdims": False},
              implements=(np.linalg.norm,), samples=_norm_samples,
              doc="np.linalg.norm: vector and matrix norms over axis (0 at 0 for ord 2)"),
    ]
