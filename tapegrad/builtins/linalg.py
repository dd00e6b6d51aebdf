"""Linear algebra (np.linalg): inv, pinv, det, solve, cholesky, norm, matrix_power, svdvals,
and the decompositions slogdet, eigh, eigvalsh, eig, eigvals, svd, qr.

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

The decompositions with several outputs (``slogdet``, ``eigh``, ``eig``, ``svd``,
``qr``) are ops with ``nout > 1`` returning NumPy's named tuples of Tensors; their rules
(:mod:`._decomp_rules`) are written over the op's own outputs, so under
``create_graph=True`` they record through the same op and every order is available.
Their single-output relatives (``eigvalsh``, ``eigvals``) take the vectors they need
from the decomposition op (``lift``), likewise recorded. Eigen- and singular vectors
keep NumPy's (LAPACK's) signs: locally constant, so finite differences agree with the
rules, which assume distinct eigenvalues (distinct, non-zero singular values) and
full-rank input for ``qr``. Where a decomposition is not unique (the extra columns of
``svd(full_matrices=True)`` or ``qr(mode='complete')`` of a non-square matrix) those
outputs have no gradient: a non-zero cotangent for them raises
:class:`~tapegrad.DifferentiabilityError`.
"""

from __future__ import annotations

import numpy as np

from tapegrad.errors import DifferentiabilityError
from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift
from tapegrad.tensor import Tensor

from ._decomp_rules import eig_vjp, eigh_vjp, qr_vjp, slogdet_vjp, svd_vjp
from ._decomp_rules import used as _used
from ._jvp import plus

_svd_u = lift("svd_u")
_svd_vh = lift("svd_vh")
_eigh = lift("eigh")
_eig = lift("eig")


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


# ------------------------------------------------------------------ decompositions


def _no_gradient(g, what):
    """Refuse a non-zero cotangent for outputs that are not a function of the input."""
    data = g.data if isinstance(g, Tensor) else g
    if np.any(data):
        raise DifferentiabilityError(
            f"{what} are not unique (any orthonormal completion would do), so they have "
            "no gradient; use the reduced decomposition, or leave them out of the loss")


def slogdet_grad(g, out, a):
    return slogdet_vjp(None, g[1], out[0], out[1], a)


def slogdet_jvp(ts, out, a):
    return None, _trace(np.linalg.solve(a, ts[0]))


def eigh_forward(a, UPLO="L"):
    return np.linalg.eigh(a, UPLO=UPLO)


def eigh_grad(g, out, a, UPLO="L"):
    return eigh_vjp(g[0], _used(g[1]), out[0], out[1], a, UPLO)


def eigvalsh_forward(a, UPLO="L"):
    return np.linalg.eigvalsh(a, UPLO=UPLO)


def eigvalsh_grad(g, out, a, UPLO="L"):
    w, v = _eigh(a, UPLO=UPLO)
    return eigh_vjp(g, None, w, v, a, UPLO)


def eig_grad(g, out, a):
    return eig_vjp(g[0], _used(g[1]), out[0], out[1], a)


def eigvals_grad(g, out, a):
    e, u = _eig(a)
    return eig_vjp(g, None, e, u, a)


def _eigen_tangent(t, u):
    """``u^-1 t u``: its diagonal is the eigenvalues' tangent."""
    return np.linalg.solve(u, t @ u)


def eig_jvp(ts, out, a):
    # du = u C, C = F * (u^-1 da u) off the diagonal, F_ij = 1 / (e_j - e_i); the
    # diagonal keeps each vector at unit norm (Re(u_j^H du_j) = 0), as eig_vjp assumes.
    e, u = out
    n = e.shape[-1]
    p = _eigen_tangent(ts[0], u)
    c = p * (1.0 - np.eye(n)) / (e[..., None, :] - e[..., :, None] + np.eye(n))
    uc = u @ c
    norm = np.real(np.sum(np.conj(u) * uc, axis=-2))
    return np.sum(p * np.eye(n), axis=-1), uc - u * norm[..., None, :]


def eigvals_jvp(ts, out, a):
    _, u = _eig(a)
    return np.sum(_eigen_tangent(ts[0], u) * np.eye(out.shape[-1]), axis=-1)


def svd_forward(a, full_matrices=True, hermitian=False):
    # hermitian=True reads one triangle of a: symmetrised, as in pinv and cholesky.
    return np.linalg.svd(_sym(a) if hermitian else a, full_matrices=full_matrices,
                         hermitian=hermitian)


def svd_grad(g, out, a, full_matrices=True, hermitian=False):
    (gu, gs, gvh), (u, s, vh) = g, out
    m, n = a.shape[-2], a.shape[-1]
    k = min(m, n)
    if full_matrices and m > n:
        _no_gradient(gu[..., :, k:], "the last m - n columns of u from "
                                     "svd(full_matrices=True)")
        u, gu = u[..., :, :k], gu[..., :, :k]
    elif full_matrices and n > m:
        _no_gradient(gvh[..., k:, :], "the last n - m rows of vh from "
                                      "svd(full_matrices=True)")
        vh, gvh = vh[..., :k, :], gvh[..., :k, :]
    ga = svd_vjp(_used(gu), gs, _used(gvh), u, s, vh, a)
    return _sym(ga) if hermitian else ga


def svd_dispatch(op, a, full_matrices=True, compute_uv=True, hermitian=False):
    """``np.linalg.svd``: ``compute_uv=False`` gives the singular values (``svdvals``)."""
    if compute_uv:
        return op(a, full_matrices=full_matrices, hermitian=hermitian)
    return np.linalg.svdvals(_sym(a) if hermitian else a)


def qr_forward(a, mode="reduced"):
    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode {mode!r} is not an op mode; use 'reduced' or "
                         "'complete' (np.linalg.qr(t, mode='r') gives R alone)")
    return np.linalg.qr(a, mode=mode)


def qr_grad(g, out, a, mode="reduced"):
    (gq, gr), (q, r) = g, out
    m, n = a.shape[-2], a.shape[-1]
    if mode == "complete" and m > n:
        _no_gradient(gq[..., :, n:], "the last m - n columns of q from qr(mode='complete')")
        q, gq, r, gr = q[..., :, :n], gq[..., :, :n], r[..., :n, :], gr[..., :n, :]
    gq, gr = _used(gq), _used(gr)
    if gq is None and gr is None:
        return np.zeros(a.shape)
    return qr_vjp(gq, gr, q, r, a)


def qr_dispatch(op, a, mode="reduced"):
    """``np.linalg.qr``: mode ``'r'`` gives R alone (recorded through the op)."""
    if mode == "r":
        return op(a, mode="reduced")[1]
    if mode == "raw":
        raise ValueError("np.linalg.qr(mode='raw') on a Tensor: the Householder "
                         "reflectors have no gradient here; use mode='reduced', "
                         "'complete' or 'r'")
    return op(a, mode=mode)


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


def _orthogonal(rng, shape):
    q, _ = np.linalg.qr(rng.standard_normal(shape))
    return q


def _symmetric(rng, shape, values=(-1.5, 0.5, 2.0)):
    """Symmetric matrices with the given, well-separated eigenvalues."""
    n = shape[-1]
    q = _orthogonal(rng, shape)
    return (q * np.asarray(values[:n])) @ np.swapaxes(q, -1, -2)


def _slogdet_samples(rng):
    neg = _matrices(rng, (3, 3))
    neg[0] *= -1.0                                       # a negative determinant
    return [((_matrices(rng, (3, 3)),), {}), ((neg,), {}), ((_matrices(rng, (2, 2, 2)),), {})]


def _one_triangle(rng, a, UPLO="L"):
    """``a``'s triangle UPLO (diagonal included) with noise in the other, unread one."""
    n = a.shape[-1]
    keep = np.tri(n, dtype=bool) if UPLO == "L" else np.tri(n, dtype=bool).T
    return np.where(keep, a, rng.standard_normal(a.shape))


def _eigh_samples(rng):
    return [((_one_triangle(rng, _symmetric(rng, (3, 3))),), {}),
            ((_one_triangle(rng, _symmetric(rng, (3, 3)), "U"),), {"UPLO": "U"}),
            ((_one_triangle(rng, _symmetric(rng, (2, 2, 2))),), {})]


def _real_spectrum(rng, shape, values=(-1.0, 0.5, 2.0)):
    """Non-symmetric matrices with distinct real eigenvalues."""
    p = _matrices(rng, shape)                            # a = p diag(values) p^-1
    pd = p * np.asarray(values[:shape[-1]])
    a = np.linalg.solve(p.swapaxes(-1, -2), pd.swapaxes(-1, -2)).swapaxes(-1, -2)
    return np.ascontiguousarray(a)


def _eig_samples(rng):
    return [((_real_spectrum(rng, (3, 3)),), {}), ((_real_spectrum(rng, (2, 2, 2)),), {})]


def _eigvals_samples(rng):
    rot = np.array([[1.0, -2.0, 0.3], [2.0, 1.0, 0.0], [0.1, 0.2, -1.0]])
    return [((_real_spectrum(rng, (3, 3)),), {}),
            ((rot + 0.1 * rng.standard_normal((3, 3)),), {})]   # complex eigenvalues


def _svd_samples(rng):
    r = rng.standard_normal
    skew = r((3, 3))
    skew = skew - skew.T                     # hermitian=True reads the symmetric part
    return [((r((3, 2)),), {"full_matrices": False}), ((r((2, 3)),), {"full_matrices": False}),
            ((r((2, 3, 3)),), {}), ((_symmetric(rng, (3, 3), (-2.0, 0.5, 1.2)) + skew,),
                                    {"hermitian": True})]


def _qr_samples(rng):
    r = rng.standard_normal
    return [((r((3, 2)),), {}), ((r((2, 3)),), {}), ((r((2, 3, 3)),), {}),
            ((r((2, 3)),), {"mode": "complete"})]


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
              lazy=False,
              doc="np.linalg.pinv: Moore-Penrose pseudo-inverse (gradient at constant rank)"),
        OpDef("det", np.linalg.det, det_grad, jvp=det_jvp, implements=(np.linalg.det,),
              samples=_square_samples, complex=True,
              lazy=False, doc="np.linalg.det: determinant (gradient needs a non-singular matrix)"),
        OpDef("solve", np.linalg.solve, (solve_grad_a, solve_grad_b), jvp=solve_jvp,
              implements=(np.linalg.solve,), samples=_solve_samples, complex=True,
              doc="np.linalg.solve: x with a @ x = b (b a vector or stacked matrices)"),
        OpDef("cholesky", cholesky_forward, cholesky_grad, params={"upper": False},
              implements=(np.linalg.cholesky,), samples=_cholesky_samples,
              lazy=False, doc="np.linalg.cholesky of the symmetric part of a (gradient symmetric)"),
        OpDef("matrix_power", np.linalg.matrix_power, matrix_power_grad,
              jvp=matrix_power_jvp, params={"n": 1}, implements=(np.linalg.matrix_power,),
              samples=_matrix_power_samples, complex=True,
              lazy=False, doc="np.linalg.matrix_power: a ** n for integer n (negative: of inv(a))"),
        OpDef("svdvals", svdvals_forward, svdvals_grad,
              implements=(np.linalg.svdvals,), samples=_svdvals_samples,
              lazy=False, doc="np.linalg.svdvals: singular values (svd with compute_uv=False)"),
        OpDef("svd_u", svd_u_forward, svd_u_grad, samples=_factor_samples,
              lazy=False, doc="u of np.linalg.svd(a, full_matrices=False) (NumPy's signs)"),
        OpDef("svd_vh", svd_vh_forward, svd_vh_grad, samples=_factor_samples,
              lazy=False, doc="vh of np.linalg.svd(a, full_matrices=False) (NumPy's signs)"),
        OpDef("slogdet", np.linalg.slogdet, slogdet_grad, jvp=slogdet_jvp, nout=2,
              implements=(np.linalg.slogdet,), samples=_slogdet_samples,
              lazy=False,
              doc="np.linalg.slogdet: (sign, log|det|), SlogdetResult; the sign gets no "
                  "gradient"),
        OpDef("eigh", eigh_forward, eigh_grad, nout=2, params={"UPLO": "L"},
              implements=(np.linalg.eigh,), samples=_eigh_samples,
              lazy=False,
              doc="np.linalg.eigh: EighResult(eigenvalues, eigenvectors) of the triangle "
                  "UPLO (gradient there; distinct eigenvalues, NumPy's vector signs)"),
        OpDef("eigvalsh", eigvalsh_forward, eigvalsh_grad, params={"UPLO": "L"},
              implements=(np.linalg.eigvalsh,), samples=_eigh_samples,
              lazy=False, doc="np.linalg.eigvalsh: ascending eigenvalues of the triangle UPLO"),
        OpDef("eig", np.linalg.eig, eig_grad, jvp=eig_jvp, nout=2,
              implements=(np.linalg.eig,), samples=_eig_samples,
              lazy=False, traits=("value_dtype",),
              doc="np.linalg.eig: EigResult(eigenvalues, eigenvectors), complex when the "
                  "spectrum is (distinct eigenvalues; for complex vectors, gradients of "
                  "functions invariant to each vector's phase)"),
        OpDef("eigvals", np.linalg.eigvals, eigvals_grad, jvp=eigvals_jvp,
              implements=(np.linalg.eigvals,), samples=_eigvals_samples,
              lazy=False, traits=("value_dtype",),
              doc="np.linalg.eigvals: eigenvalues, complex when the spectrum is"),
        OpDef("svd", svd_forward, svd_grad, nout=3,
              params={"full_matrices": True, "hermitian": False},
              implements=((np.linalg.svd, svd_dispatch),), samples=_svd_samples,
              lazy=False,
              doc="np.linalg.svd: SVDResult(U, S, Vh) (distinct non-zero singular values, "
                  "NumPy's signs; compute_uv=False: svdvals)"),
        OpDef("qr", qr_forward, qr_grad, nout=2, params={"mode": "reduced"},
              implements=((np.linalg.qr, qr_dispatch),), samples=_qr_samples,
              lazy=False, doc="np.linalg.qr: QRResult(Q, R), modes 'reduced' and 'complete' "
                  "(np.linalg.qr(t, 'r'): R alone); full-rank input"),
        OpDef("norm", np.linalg.norm, norm_grad,
              params={"ord": None, "axis": None, "keepdims": False},
              implements=(np.linalg.norm,), samples=_norm_samples,
              doc="np.linalg.norm: vector and matrix norms over axis (0 at 0 for ord 2)"),
    ]
