"""Differentiable ``scipy.linalg``: triangular and Cholesky solves, the matrix square root
and exponential, and the Sylvester solver their rules need.

SciPy's linalg functions convert their arguments with ``np.asarray`` and do not dispatch
on Tensors, so call the functions of this module (SciPy's signatures, less the
``overwrite_*``/``check_finite`` performance flags); each runs a tapegrad op
(``tg.ops.NAME``) whose forward is SciPy's own function:

- ``solve_triangular(a, b, trans=0, lower=False, unit_diagonal=False)``: gradients in
  ``b`` and in the triangle of ``a`` SciPy reads (its strict triangle with
  ``unit_diagonal``); the other entries get zero, as they do not change the result.
- ``cholesky(a, lower=False)`` and ``cho_factor(a, lower=False)``: tapegrad's built-in
  ``cholesky`` op (the Cholesky rule, on the symmetric part of ``a``: for a symmetric
  ``a``, SciPy's factor). ``cho_factor`` returns ``(c, lower)`` with zeros in the
  unused triangle of ``c``, where SciPy leaves arbitrary values.
- ``cho_solve((c, lower), b)``: gradients in ``b`` and in the triangle of ``c`` (the
  factor), so ``cho_solve(cho_factor(a), b)`` differentiates in ``a`` too.
- ``sqrtm(a)``: the principal square root ``X``; gradient ``G`` -> the solution of the
  Sylvester equation ``X^T Y + Y X^T = G``. Real matrices with a real square root only:
  a real matrix whose root is complex (an eigenvalue on the negative real axis) raises
  ``ValueError``. Singular matrices have no derivative there.
- ``expm(a)``: gradient ``G`` -> the Frechet derivative of expm at ``a^T`` in direction
  ``G``, the upper-right block of ``expm([[a^T, G], [0, a^T]])``.
- ``solve_sylvester(a, b, q)``: ``X`` with ``a X + X b = q``; gradients in all three.

Every rule is written with ops (the same ones, ``lift``-ed, and NumPy functions on
Tensors), so all differentiate again, to any order; forward mode has its own rules.
Stacks of matrices ``(..., n, n)`` work where SciPy takes them. Complex inputs that need
a gradient are refused (rules are checked for real ones); none of these ops runs lazily
on Dask arrays (SciPy computes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg as sl

import tapegrad as tg
from tapegrad import OpDef
from tapegrad.errors import TapegradValueError
from tapegrad.registry import lift

__all__ = ["solve_triangular", "cholesky", "cho_factor", "cho_solve", "sqrtm", "expm",
           "solve_sylvester"]

_solve_triangular = lift("solve_triangular")
_cho_solve = lift("cho_solve")
_solve_sylvester = lift("solve_sylvester")
_expm = lift("expm")
_cholesky = lift("cholesky")


def _t(x):
    return x.swapaxes(-1, -2)


def _triangle(n, lower, strict=False):
    """The 0/1 mask of the triangle of an ``n x n`` matrix LAPACK reads."""
    tri = np.tri(n, k=-1 if strict else 0)
    return tri if lower else tri.T


def _as_matrix(b, *rest):
    """A vector right-hand side (``b.ndim == 1``) as a one-column matrix, with the arrays
    of its shape in ``rest`` (the result, the gradient): rules then treat one case."""
    if b.ndim != 1:
        return (False, b, *rest)
    return (True, b[..., None], *(r[..., None] for r in rest))


def _as_vector(vec, x):
    return x[..., 0] if vec else x


# ----------------------------------------------------------------- solve_triangular


def _transposed(trans):
    if trans not in (0, 1, 2, "N", "T", "C"):
        raise TapegradValueError(f"solve_triangular: trans must be 0, 1, 2, 'N', 'T' or "
                                 f"'C', got {trans!r}")
    return trans in (1, 2, "T", "C")


def solve_triangular_forward(a, b, trans=0, lower=False, unit_diagonal=False):
    return sl.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal)


def solve_triangular_vjp(g, out, a, b, trans=0, lower=False, unit_diagonal=False):
    vec, _, x, gm = _as_matrix(b, out, g)
    flipped = 0 if _transposed(trans) else 1
    gb = _solve_triangular(a, gm, trans=flipped, lower=lower, unit_diagonal=unit_diagonal)
    ga = -(x @ _t(gb)) if _transposed(trans) else -(gb @ _t(x))
    return ga * _triangle(a.shape[-1], lower, unit_diagonal), _as_vector(vec, gb)


def solve_triangular_jvp(ts, out, a, b, trans=0, lower=False, unit_diagonal=False):
    ta, tb = ts
    if ta is None and tb is None:
        return None
    vec, _, x = _as_matrix(b, out)
    rhs = 0.0 if tb is None else (tb[..., None] if vec else tb)
    if ta is not None:
        dm = ta * _triangle(a.shape[-1], lower, unit_diagonal)
        rhs = rhs - (_t(dm) if _transposed(trans) else dm) @ x
    return _as_vector(vec, _solve_triangular(a, rhs, trans=trans, lower=lower,
                                             unit_diagonal=unit_diagonal))


def _triangular(rng, *batch, n=3):
    """A well-conditioned matrix whose unused triangle holds noise (the op ignores it)."""
    return rng.uniform(-0.5, 0.5, (*batch, n, n)) + 2.0 * np.eye(n)


def _solve_triangular_samples(rng):
    r = rng.standard_normal
    a = _triangular(rng)
    return [
        ((a, r((3, 2))), {}),
        ((a, r(3)), {"lower": True}),
        ((a, r((3, 2))), {"trans": 1, "lower": True}),
        ((a, r(3)), {"trans": 2}),
        ((a, r((3, 1))), {"trans": "T", "unit_diagonal": True}),
        ((a, r(3)), {"trans": "N", "lower": True, "unit_diagonal": True}),
        ((a, r((3, 2))), {"trans": "C", "lower": True}),
        ((_triangular(rng, 2), r((2, 3, 2))), {"lower": True}),
        ((_triangular(rng, 2), r(3)), {"trans": 1}),
    ]


# ----------------------------------------------------------------- cho_solve


def cho_solve_forward(c, b, lower=False):
    return sl.cho_solve((c, lower), b)


def _factor_gradient(ga, c, lower):
    """The gradient in the factor of ``a = c c^T`` (lower) or ``c^T c`` (upper), from the
    gradient ``ga`` in ``a``: only ``c``'s triangle counts."""
    mask = _triangle(c.shape[-1], lower)
    s = ga + _t(ga)
    return ((s @ (c * mask)) if lower else ((c * mask) @ s)) * mask


def cho_solve_vjp(g, out, c, b, lower=False):
    vec, _, x, gm = _as_matrix(b, out, g)
    gb = _cho_solve(c, gm, lower=lower)
    return _factor_gradient(-(gb @ _t(x)), c, lower), _as_vector(vec, gb)


def cho_solve_jvp(ts, out, c, b, lower=False):
    tc, tb = ts
    if tc is None and tb is None:
        return None
    vec, _, x = _as_matrix(b, out)
    rhs = 0.0 if tb is None else (tb[..., None] if vec else tb)
    if tc is not None:
        mask = _triangle(c.shape[-1], lower)
        cm, dc = c * mask, tc * mask
        da = dc @ _t(cm) + cm @ _t(dc) if lower else _t(dc) @ cm + _t(cm) @ dc
        rhs = rhs - da @ x
    return _as_vector(vec, _cho_solve(c, rhs, lower=lower))


def _factor(rng, *batch, n=3, lower=False):
    """A Cholesky factor of a well-conditioned SPD matrix, noise in its unused triangle."""
    b = rng.standard_normal((*batch, n, n))
    low = np.linalg.cholesky(b @ _t(b) + n * np.eye(n))
    c = low if lower else _t(low)
    return c + rng.uniform(-0.5, 0.5, c.shape) * (1 - _triangle(n, lower))


def _cho_solve_samples(rng):
    r = rng.standard_normal
    return [
        ((_factor(rng), r((3, 2))), {}),
        ((_factor(rng, lower=True), r(3)), {"lower": True}),
        ((_factor(rng), r(3)), {"lower": False}),
        ((_factor(rng, 2, lower=True), r((2, 3, 2))), {"lower": True}),
    ]


# ----------------------------------------------------------------- solve_sylvester


def solve_sylvester_vjp(g, out, a, b, q):
    w = _solve_sylvester(_t(a), _t(b), g)
    return -(w @ _t(out)), -(_t(out) @ w), w


def solve_sylvester_jvp(ts, out, a, b, q):
    ta, tb, tq = ts
    if ta is None and tb is None and tq is None:
        return None
    rhs = 0.0 if tq is None else tq
    if ta is not None:
        rhs = rhs - ta @ out
    if tb is not None:
        rhs = rhs - out @ tb
    return _solve_sylvester(a, b, rhs)


def _dominant(rng, *batch, n=3, scale=2.0):
    """A matrix with eigenvalues near ``scale`` (positive real parts, away from 0)."""
    return rng.uniform(-0.4, 0.4, (*batch, n, n)) + scale * np.eye(n)


def _solve_sylvester_samples(rng):
    r = rng.standard_normal
    return [
        ((_dominant(rng), _dominant(rng), r((3, 3))), {}),
        ((_dominant(rng), _dominant(rng, n=2), r((3, 2))), {}),
        ((_dominant(rng, 2), _dominant(rng, 2), r((2, 3, 3))), {}),
    ]


# ----------------------------------------------------------------- sqrtm


def sqrtm_forward(a):
    out = sl.sqrtm(a)
    if np.iscomplexobj(out) and not np.iscomplexobj(a):
        raise TapegradValueError(
            "sqrtm: this real matrix has no real principal square root (an eigenvalue on "
            "the negative real axis); tapegrad_scipy's sqrtm differentiates real matrices "
            "with a real square root only")
    return out


def sqrtm_vjp(g, out, a):
    return _solve_sylvester(_t(out), _t(out), g)


def sqrtm_jvp(ts, out, a):
    return None if ts[0] is None else _solve_sylvester(out, out, ts[0])


def _sqrtm_samples(rng):
    b = rng.standard_normal((3, 3))
    return [((_dominant(rng),), {}), ((b @ b.T + np.eye(3),), {}),
            ((_dominant(rng, 2, n=2, scale=1.5),), {})]


# ----------------------------------------------------------------- expm


def _frechet(a, e):
    """The Frechet derivative of expm at ``a`` in direction ``e``: the upper-right block
    of ``expm([[a, e], [0, a]])`` (Higham, Functions of Matrices, (3.16))."""
    n = a.shape[-1]
    top = np.concatenate([a, e], axis=-1)
    bottom = np.concatenate([np.zeros(a.shape), a], axis=-1)
    return _expm(np.concatenate([top, bottom], axis=-2))[..., :n, n:]


def expm_vjp(g, out, a):
    return _frechet(_t(a), g)


def expm_jvp(ts, out, a):
    return None if ts[0] is None else _frechet(a, ts[0])


def _expm_samples(rng):
    r = rng.standard_normal
    # (no 1x1 matrix: its expm is exp, which registry-wide checks take for elementwise)
    return [((0.5 * r((3, 3)),), {}), ((0.5 * r((2, 2, 2)),), {})]


# ----------------------------------------------------------------- the pack


def op_definitions() -> list[OpDef]:
    return [
        OpDef("solve_triangular", solve_triangular_forward, solve_triangular_vjp,
              jvp=solve_triangular_jvp, nargs=2,
              params={"trans": 0, "lower": False, "unit_diagonal": False},
              samples=_solve_triangular_samples, lazy=False,
              doc="scipy.linalg.solve_triangular: x with op(a) x = b, a's triangle only "
                  "(gradient zero elsewhere; its strict triangle with unit_diagonal)"),
        OpDef("cho_solve", cho_solve_forward, cho_solve_vjp, jvp=cho_solve_jvp, nargs=2,
              params={"lower": False}, samples=_cho_solve_samples, lazy=False,
              doc="scipy.linalg.cho_solve((c, lower), b): x with (c c^T or c^T c) x = b, "
                  "gradient in c's triangle and b"),
        OpDef("solve_sylvester", sl.solve_sylvester, solve_sylvester_vjp,
              jvp=solve_sylvester_jvp, nargs=3, samples=_solve_sylvester_samples,
              lazy=False,
              doc="scipy.linalg.solve_sylvester: x with a x + x b = q (a and -b sharing no "
                  "eigenvalue)"),
        OpDef("sqrtm", sqrtm_forward, sqrtm_vjp, jvp=sqrtm_jvp, nargs=1,
              samples=_sqrtm_samples, lazy=False,
              doc="scipy.linalg.sqrtm: principal square root of a real matrix with a real "
                  "one (refused otherwise; no gradient at singular matrices)"),
        OpDef("expm", sl.expm, expm_vjp, jvp=expm_jvp, nargs=1, samples=_expm_samples,
              lazy=False, doc="scipy.linalg.expm: matrix exponential (stacks too)"),
    ]


# ----------------------------------------------------------------- SciPy's signatures


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                     unit_diagonal: bool = False) -> Any:
    """``x`` with ``op(a) @ x = b`` for triangular ``a`` (``trans``: 0/'N' a, 1/'T' and
    2/'C' its transpose); reads only ``a``'s ``lower`` (or upper) triangle."""
    return tg.ops.solve_triangular(a, b, trans=trans, lower=lower,
                                   unit_diagonal=bool(unit_diagonal))


def cholesky(a: Any, lower: bool = False) -> Any:
    """The Cholesky factor of symmetric positive definite ``a``: upper ``U`` with
    ``a = U^T U`` (default) or lower ``L`` with ``a = L L^T``."""
    return tg.ops.cholesky(a, upper=not lower)


def cho_factor(a: Any, lower: bool = False) -> tuple[Any, bool]:
    """``(c, lower)`` for :func:`cho_solve`: ``c = cholesky(a, lower)`` (zeros in its
    other triangle)."""
    return cholesky(a, lower=lower), bool(lower)


def cho_solve(c_and_lower: tuple[Any, bool], b: Any) -> Any:
    """``x`` with ``a @ x = b`` given ``(c, lower) = cho_factor(a)``; reads only ``c``'s
    triangle."""
    c, lower = c_and_lower
    return tg.ops.cho_solve(c, b, lower=bool(lower))


def sqrtm(A: Any) -> Any:
    """The principal square root of real ``A`` (``ValueError`` if it is complex)."""
    return tg.ops.sqrtm(A)


def expm(A: Any) -> Any:
    """The matrix exponential of ``A`` (stacks of matrices too)."""
    return tg.ops.expm(A)


def solve_sylvester(a: Any, b: Any, q: Any) -> Any:
    """``x`` with ``a @ x + x @ b = q``."""
    return tg.ops.solve_sylvester(a, b, q)
