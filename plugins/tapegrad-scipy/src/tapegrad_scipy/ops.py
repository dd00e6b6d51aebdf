"""The plugin's Python ops: those whose forward is not a ufunc of one array per arg or
whose rule needs statements. Everything with a one-formula rule is in ``special.yaml``.

``polygamma(n, x)`` and ``yn(n, x)`` take integer orders (nondiff), which the YAML
sampler cannot draw; ``multigammaln(a, d=...)`` sums over ``d``. ``linsolve``, ``matinv``
and ``logabsdet`` are the linear algebra ``multivariate_normal`` needs, for square
nonsingular matrices of any batch shape (LU-based, so their gradients are the general,
unsymmetrized ones). Rules call ops (``lift``), so every op here differentiates again.
"""

from __future__ import annotations

import numpy as np
import scipy.special as sp

from tapegrad import OpDef
from tapegrad.registry import lift

_polygamma = lift("polygamma")
_digamma = lift("digamma")
_yn = lift("yn")
_linsolve = lift("linsolve")
_matinv = lift("matinv")

# ----------------------------------------------------------------- gamma family


def _floating(x):
    """The floating dtype of results for input ``x`` (float32 stays float32)."""
    return np.result_type(x, np.float32)


def polygamma_forward(n, x):
    return np.asarray(sp.polygamma(n, x), dtype=_floating(x))


def polygamma_vjp(g, out, n, x):
    return None, g * _polygamma(n + 1, x)


def multigammaln_forward(a, d=1):
    return np.asarray(sp.multigammaln(a, d), dtype=_floating(a))


def multigammaln_vjp(g, out, a, d=1):
    """d/da sum_j gammaln(a - j/2) = sum_j digamma(a - j/2), j = 0 .. d-1."""
    total = _digamma(a)
    for j in range(1, d):
        total = total + _digamma(a - 0.5 * j)
    return g * total


def _polygamma_samples(rng):
    x = rng.uniform(0.5, 3.0, (3, 4))
    return [((np.array([0, 1, 2, 3]), x), {}),
            ((np.array(1), x), {}),
            ((np.array(0), rng.uniform(0.5, 3.0, ())), {}),
            ((np.array([[2], [0], [1]]), rng.uniform(0.5, 3.0, (4,))), {})]


def _multigammaln_samples(rng):
    return [((rng.uniform(1.5, 4.0, (3, 4)),), {"d": d}) for d in (1, 2, 3)] + \
        [((rng.uniform(1.5, 4.0, ()),), {"d": 2})]


# ----------------------------------------------------------------- Bessel, integer order


def yn_forward(n, x):
    return np.asarray(sp.yn(n, x), dtype=_floating(x))


def yn_vjp(g, out, n, x):
    return None, g * (_yn(n - 1, x) - _yn(n + 1, x)) / 2


def _yn_samples(rng):
    x = rng.uniform(0.5, 5.0, (3, 4))
    return [((np.array([0, 1, 2, 3]), x), {}),
            ((np.array(2), x), {}),
            ((np.array(1), rng.uniform(0.5, 5.0, ())), {})]


# ----------------------------------------------------------------- linear algebra


def _mT(a):
    return np.swapaxes(a, -1, -2)


def linsolve_forward(a, b):
    if np.ndim(b) < 2:
        raise ValueError(f"linsolve: b must be a matrix (..., n, k), got shape {np.shape(b)}; "
                         "pass b[..., None] for a vector")
    return np.linalg.solve(a, b)


def linsolve_vjp(g, out, a, b):
    gb = _linsolve(_mT(a), g)
    return -(gb @ _mT(out)), gb


def linsolve_jvp(ts, out, a, b):
    da, db = ts
    rhs = db if da is None else (-(da @ out) if db is None else db - da @ out)
    return None if rhs is None else _linsolve(a, rhs)


def matinv_vjp(g, out, a):
    t = _mT(out)
    return -(t @ g @ t)


def matinv_jvp(ts, out, a):
    return None if ts[0] is None else -(out @ ts[0] @ out)


def logabsdet_forward(a):
    return np.linalg.slogdet(a)[1]


def logabsdet_vjp(g, out, a):
    return g[..., None, None] * _mT(_matinv(a))


def logabsdet_jvp(ts, out, a):
    if ts[0] is None:
        return None
    return np.sum(_mT(_matinv(a)) * ts[0], axis=(-2, -1))


def _matrix(rng, *batch, n=3):
    return rng.uniform(-0.5, 0.5, (*batch, n, n)) + 2.0 * np.eye(n)


def _linsolve_samples(rng):
    return [((_matrix(rng), rng.standard_normal((3, 2))), {}),
            ((_matrix(rng, 2), rng.standard_normal((2, 3, 1))), {}),
            ((_matrix(rng, n=2), rng.standard_normal((2, 4))), {})]


def _square_samples(rng):
    return [((_matrix(rng),), {}), ((_matrix(rng, 2),), {}), ((_matrix(rng, 3, n=2),), {})]


# ----------------------------------------------------------------- the pack


def op_definitions() -> list[OpDef]:
    return [
        OpDef("polygamma", polygamma_forward, polygamma_vjp, nargs=2, nondiff=(0,),
              samples=_polygamma_samples,
              doc="n-th derivative of digamma (n = 0: digamma); integer n, gradient in x"),
        OpDef("multigammaln", multigammaln_forward, multigammaln_vjp, params={"d": 1},
              samples=_multigammaln_samples,
              doc="log of the multivariate gamma function of dimension d"),
        OpDef("yn", yn_forward, yn_vjp, nargs=2, nondiff=(0,), implements=(sp.yn,),
              samples=_yn_samples,
              doc="Bessel function of the second kind of integer order n; gradient in x"),
        OpDef("linsolve", linsolve_forward, linsolve_vjp, jvp=linsolve_jvp, nargs=2,
              samples=_linsolve_samples,
              doc="solve(a, b) for square a (..., n, n) and b (..., n, k)"),
        OpDef("matinv", np.linalg.inv, matinv_vjp, jvp=matinv_jvp, nargs=1,
              samples=_square_samples, doc="inverse of square matrices (..., n, n)"),
        OpDef("logabsdet", logabsdet_forward, logabsdet_vjp, jvp=logabsdet_jvp, nargs=1,
              samples=_square_samples,
              doc="log|det(a)| of square matrices (..., n, n)"),
    ]
