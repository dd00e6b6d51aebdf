"""Differentiable ``scipy.stats`` densities and distribution functions, as HIPS autograd's
``autograd.scipy.stats`` has them, with scipy.stats' parameter names and defaults:
``norm.logpdf(x, loc=0, scale=1)``, ``gamma.cdf(x, a, loc=0, scale=1)``, ...

Each function composes tapegrad ops, so it differentiates in every argument, to any
order, with no rule of its own. The exceptions are the shape parameters of the CDFs
built on incomplete gamma/beta/t functions (``a`` of ``gamma.cdf``, ``df`` of
``chi2.cdf`` and ``t.cdf``, ``a, b`` of ``beta.cdf``) and the counts ``k`` of
``poisson``: they are nondiff (``x``, ``loc``, ``scale`` and ``mu`` differentiate).
Outside a distribution's support the results are scipy's (``-inf`` log density, 0
density, CDF 0 or 1), with zero gradient there: the formulas run on a safe stand-in
value and ``where`` picks, so no NaN leaks into gradients. Results are Tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import tapegrad as tg

__all__ = ["norm", "t", "gamma", "beta", "poisson", "chi2", "dirichlet",
           "multivariate_normal"]

O = tg.ops
LOG_2PI = math.log(2 * math.pi)


def _data(x: Any) -> np.ndarray:
    return x.data if isinstance(x, tg.Tensor) else np.asarray(x)


def _standard(x: Any, loc: Any, scale: Any) -> Any:
    return (x - loc) / scale


def _inside(mask: np.ndarray, z: Any, stand_in: float) -> Any:
    """``z`` where ``mask`` holds, ``stand_in`` elsewhere: a safe argument for formulas
    whose result ``where`` discards outside the support."""
    return O.where(mask, z, stand_in)


class _Distribution:
    """A namespace of functions, named like the scipy.stats object it mirrors."""

    def __init__(self, name: str, **functions: Any) -> None:
        self.name = name
        for k, f in functions.items():
            f.__name__ = f.__qualname__ = k
            f.__doc__ = f"scipy.stats.{name}.{k}, differentiable. " + (f.__doc__ or "")
            setattr(self, k, f)
        self._functions = tuple(functions)

    def __repr__(self) -> str:
        return f"<tapegrad_scipy.stats.{self.name}: {', '.join(self._functions)}>"


# ----------------------------------------------------------------- norm


def _norm_logpdf(x, loc=0.0, scale=1.0):
    z = _standard(x, loc, scale)
    return -0.5 * z * z - O.log(scale) - 0.5 * LOG_2PI


def _norm_pdf(x, loc=0.0, scale=1.0):
    return O.exp(_norm_logpdf(x, loc, scale))


def _norm_cdf(x, loc=0.0, scale=1.0):
    return O.ndtr(_standard(x, loc, scale))


def _norm_logcdf(x, loc=0.0, scale=1.0):
    return O.log_ndtr(_standard(x, loc, scale))


def _norm_sf(x, loc=0.0, scale=1.0):
    return O.ndtr(-_standard(x, loc, scale))


def _norm_logsf(x, loc=0.0, scale=1.0):
    return O.log_ndtr(-_standard(x, loc, scale))


norm = _Distribution("norm", logpdf=_norm_logpdf, pdf=_norm_pdf, cdf=_norm_cdf,
                     logcdf=_norm_logcdf, sf=_norm_sf, logsf=_norm_logsf)


# ----------------------------------------------------------------- Student t


def _t_logpdf(x, df, loc=0.0, scale=1.0):
    z = _standard(x, loc, scale)
    half = (df + 1) / 2
    return (O.gammaln(half) - O.gammaln(df / 2) - 0.5 * O.log(df * math.pi)
            - O.log(scale) - half * O.log1p(z * z / df))


def _t_pdf(x, df, loc=0.0, scale=1.0):
    return O.exp(_t_logpdf(x, df, loc, scale))


def _t_cdf(x, df, loc=0.0, scale=1.0):
    """``df`` is nondiff."""
    return O.stdtr(df, _standard(x, loc, scale))


def _t_logcdf(x, df, loc=0.0, scale=1.0):
    """``df`` is nondiff."""
    return O.log(_t_cdf(x, df, loc, scale))


t = _Distribution("t", logpdf=_t_logpdf, pdf=_t_pdf, cdf=_t_cdf, logcdf=_t_logcdf)


# ----------------------------------------------------------------- gamma and chi2


def _gamma_logpdf(x, a, loc=0.0, scale=1.0):
    z = _standard(x, loc, scale)
    ok = _data(z) >= 0
    zs = _inside(ok, z, 1.0)
    lp = O.xlogy(a - 1, zs) - zs - O.gammaln(a) - O.log(scale)
    return O.where(ok, lp, -np.inf)


def _gamma_pdf(x, a, loc=0.0, scale=1.0):
    return O.exp(_gamma_logpdf(x, a, loc, scale))


def _gamma_cdf(x, a, loc=0.0, scale=1.0):
    """``a`` is nondiff."""
    z = _standard(x, loc, scale)
    ok = _data(z) > 0
    return O.where(ok, O.gammainc(a, _inside(ok, z, 1.0)), 0.0)


gamma = _Distribution("gamma", logpdf=_gamma_logpdf, pdf=_gamma_pdf, cdf=_gamma_cdf)


# chi2(df, loc, scale) is gamma(df / 2, loc, 2 * scale)


def _chi2_logpdf(x, df, loc=0.0, scale=1.0):
    return _gamma_logpdf(x, df / 2, loc, 2 * scale)


def _chi2_pdf(x, df, loc=0.0, scale=1.0):
    return _gamma_pdf(x, df / 2, loc, 2 * scale)


def _chi2_cdf(x, df, loc=0.0, scale=1.0):
    """``df`` is nondiff."""
    return _gamma_cdf(x, df / 2, loc, 2 * scale)


chi2 = _Distribution("chi2", logpdf=_chi2_logpdf, pdf=_chi2_pdf, cdf=_chi2_cdf)


# ----------------------------------------------------------------- beta


def _beta_logpdf(x, a, b, loc=0.0, scale=1.0):
    z = _standard(x, loc, scale)
    zd = _data(z)
    ok = (zd >= 0) & (zd <= 1)
    zs = _inside(ok, z, 0.5)
    lp = O.xlogy(a - 1, zs) + O.xlog1py(b - 1, -zs) - O.betaln(a, b) - O.log(scale)
    return O.where(ok, lp, -np.inf)


def _beta_pdf(x, a, b, loc=0.0, scale=1.0):
    return O.exp(_beta_logpdf(x, a, b, loc, scale))


def _beta_cdf(x, a, b, loc=0.0, scale=1.0):
    """``a`` and ``b`` are nondiff."""
    z = _standard(x, loc, scale)
    zd = _data(z)
    ok = (zd > 0) & (zd < 1)
    inner = O.betainc(a, b, _inside(ok, z, 0.5))
    return O.where(ok, inner, np.where(zd >= 1, 1.0, 0.0))


beta = _Distribution("beta", logpdf=_beta_logpdf, pdf=_beta_pdf, cdf=_beta_cdf)


# ----------------------------------------------------------------- poisson


def _counts(k: Any, loc: Any) -> np.ndarray:
    """The counts ``k - loc`` as plain floats: they are nondiff (integers)."""
    return np.asarray(_data(k) - _data(loc), dtype=np.float64)


def _poisson_logpmf(k, mu, loc=0):
    """``k`` (and ``loc``) nondiff; gradient in ``mu``."""
    kk = _counts(k, loc)
    ok = (kk >= 0) & (kk == np.floor(kk))
    ks = np.where(ok, kk, 0.0)
    lp = O.xlogy(ks, mu) - O.gammaln(ks + 1) - mu
    return O.where(ok, lp, -np.inf)


def _poisson_pmf(k, mu, loc=0):
    """``k`` (and ``loc``) nondiff; gradient in ``mu``."""
    return O.exp(_poisson_logpmf(k, mu, loc))


def _poisson_cdf(k, mu, loc=0):
    """``k`` (and ``loc``) nondiff; gradient in ``mu``: P(K <= k) = Q(floor(k) + 1, mu)."""
    kk = np.floor(_counts(k, loc))
    ok = kk >= 0
    return O.where(ok, O.gammaincc(np.where(ok, kk, 0.0) + 1, mu), 0.0)


poisson = _Distribution("poisson", logpmf=_poisson_logpmf, pmf=_poisson_pmf,
                        cdf=_poisson_cdf)


# ----------------------------------------------------------------- dirichlet


def _dirichlet_quantiles(x: Any, alpha: Any) -> tuple[Any, Any]:
    """scipy's layout: components along axis 0 of ``x`` (K of them, or K - 1 with the
    last implied); ``alpha`` of shape (K,), broadcast against ``x``."""
    ad, xd = _data(alpha), _data(x)
    if ad.ndim != 1 or ad.size < 2:
        raise ValueError("Parameter vector 'a' must be one dimensional, with at least "
                         "two entries")
    if np.any(ad <= 0):
        raise ValueError("All parameters must be greater than 0")
    k = ad.shape[0]
    if xd.ndim == 0 or xd.shape[0] not in (k, k - 1):
        raise ValueError(f"Vector 'x' must have either the same number of entries as, "
                         f"or one entry fewer than, parameter vector 'a', but alpha.shape"
                         f" = {ad.shape} and x.shape = {xd.shape}.")
    if xd.shape[0] == k - 1:
        rest = 1 - O.sum(x, axis=0, keepdims=True)
        x = O.concatenate([x, rest], axis=0)
        xd = x.data
    if np.any(xd < 0) or np.any(xd > 1):
        raise ValueError("Each entry in 'x' must be in [0, 1]")
    if np.any(np.abs(xd.sum(axis=0) - 1) > 1e-9):
        raise ValueError("The input vector 'x' must lie within the normal simplex.")
    return x, alpha.reshape((k,) + (1,) * (xd.ndim - 1))


def _dirichlet_logpdf(x, alpha):
    if not isinstance(alpha, tg.Tensor):
        alpha = np.asarray(alpha, dtype=np.float64)
    x, a = _dirichlet_quantiles(x, alpha)
    log_b = O.sum(O.gammaln(alpha)) - O.gammaln(O.sum(alpha))
    return O.sum(O.xlogy(a - 1, x), axis=0) - log_b


def _dirichlet_pdf(x, alpha):
    return O.exp(_dirichlet_logpdf(x, alpha))


dirichlet = _Distribution("dirichlet", logpdf=_dirichlet_logpdf, pdf=_dirichlet_pdf)


# ----------------------------------------------------------------- multivariate normal


def _mvn_parameters(mean: Any, cov: Any) -> tuple[int, Any, Any]:
    """scipy's rules: the dimension is ``mean``'s size, or without a mean ``cov``'s (1
    for a scalar or vector ``cov``); ``cov`` a scalar (times I), a vector (the diagonal)
    or a matrix."""
    cd = _data(cov)
    if mean is None:
        dim = 1 if cd.ndim < 2 else cd.shape[0]
        mean = np.zeros(dim)
    else:
        md = _data(mean)
        if md.ndim > 1:
            raise ValueError("Array 'mean' must be a vector of length 1 or a scalar.")
        dim = md.size
    if not isinstance(mean, tg.Tensor):
        mean = np.asarray(mean, dtype=np.float64)
    mean = mean.reshape((dim,))
    eye = np.eye(dim)
    if cd.ndim == 0:
        return dim, mean, cov * eye
    if cd.ndim == 1 and cd.size == dim:
        return dim, mean, (cov if isinstance(cov, tg.Tensor) else cd).reshape((dim, 1)) * eye
    if cd.shape != (dim, dim):
        raise ValueError(f"Array 'cov' must be of shape ({dim}, {dim}) (or a vector of "
                         f"length {dim}, or a scalar), got {cd.shape}")
    return dim, mean, cov


def _mvn_quantiles(x: Any, dim: int) -> Any:
    xd = _data(x)
    if xd.ndim == 0:
        return x.reshape((1, 1)) if isinstance(x, tg.Tensor) else xd.reshape(1, 1)
    if xd.ndim == 1:
        shape = (xd.shape[0], 1) if dim == 1 else (1, xd.shape[0])
        return x.reshape(shape) if isinstance(x, tg.Tensor) else xd.reshape(shape)
    return x


def _squeezed(out: Any) -> Any:
    return out.reshape(tuple(n for n in out.shape if n != 1))


def _mvn_logpdf(x, mean=None, cov=1):
    dim, mean, cov = _mvn_parameters(mean, cov)
    x = _mvn_quantiles(x, dim)
    diff = x - mean
    batch = diff.shape[:-1]
    flat = diff.reshape((-1, dim))
    solved = O.linsolve(cov, flat.T)                          # cov^-1 diff, (dim, n)
    maha = O.sum(flat * solved.T, axis=-1).reshape(batch)
    return _squeezed(-0.5 * (dim * LOG_2PI + O.logabsdet(cov) + maha))


def _mvn_pdf(x, mean=None, cov=1):
    return O.exp(_mvn_logpdf(x, mean, cov))


def _mvn_entropy(mean=None, cov=1):
    dim, _, cov = _mvn_parameters(mean, cov)
    return 0.5 * (dim * (1 + LOG_2PI) + O.logabsdet(cov))


multivariate_normal = _Distribution("multivariate_normal", logpdf=_mvn_logpdf,
                                    pdf=_mvn_pdf, entropy=_mvn_entropy)
