"""Differentiable ``scipy.special``, with SciPy's signatures; every function returns a
Tensor (recorded when an input is tracked).

The ufuncs (``gammaln``, ``erf``, ``iv``, ...) also work without this module:
``scipy.special.gammaln(tensor)`` runs ``tg.ops.gammaln`` through ``__array_ufunc__``.
The functions here cover the rest: those SciPy writes in Python (``polygamma``,
``multigammaln``, ``logsumexp``, ``softmax``, ``log_softmax``), which cannot dispatch.
``logsumexp``, ``softmax`` and ``log_softmax`` reuse tapegrad's built-in ops of those
names (fused, overflow-free rules); ``logsumexp`` with weights ``b`` or ``return_sign``
is composed of ops, so it differentiates in ``a`` and ``b`` to any order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import tapegrad as tg

#: The ops declared in special.yaml (forward: the scipy.special ufunc of the same name).
UFUNCS = (
    "gammaln", "gamma", "rgamma", "digamma", "beta", "betaln", "gammainc", "gammaincc",
    "betainc", "erf", "erfc", "erfcx", "erfinv", "erfcinv", "ndtr", "log_ndtr", "ndtri",
    "stdtr", "expit", "logit", "log_expit", "xlogy", "xlog1py", "entr", "iv", "ive",
    "i0", "i1", "i0e", "i1e", "jv", "j0", "j1", "y0", "y1", "yn",
)

__all__ = [*UFUNCS, "psi", "polygamma", "multigammaln", "logsumexp", "softmax",
           "log_softmax"]


def _op(name: str) -> Callable[..., Any]:
    """``scipy.special.<name>`` running ``tg.ops.<name>`` (looked up at call time)."""

    def call(*args: Any) -> Any:
        return getattr(tg.ops, name)(*args)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"scipy.special.{name}, differentiable (tg.ops.{name})."
    return call


for _name in UFUNCS:
    globals()[_name] = _op(_name)
psi = globals()["digamma"]


def polygamma(n: Any, x: Any) -> Any:
    """The n-th derivative of digamma at ``x`` (integer ``n``; gradient in ``x``)."""
    return tg.ops.polygamma(n, x)


def multigammaln(a: Any, d: int) -> Any:
    """log of the multivariate gamma function of dimension ``d`` (needs a > (d-1)/2)."""
    return tg.ops.multigammaln(a, d=int(d))


def _data(x: Any) -> np.ndarray:
    return x.data if isinstance(x, tg.Tensor) else np.asarray(x)


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """``log(sum(b * exp(a), axis))`` without overflow; with ``return_sign``, the pair
    ``(log|sum|, sign)`` (the sign a plain ndarray, as it has no gradient)."""
    if b is None and not return_sign:
        return tg.ops.logsumexp(a, axis=axis, keepdims=keepdims)
    ad = _data(a)
    if b is not None:
        ad = np.broadcast_to(ad, np.broadcast_shapes(ad.shape, np.shape(_data(b))))
    # A constant shift: the result does not depend on it, so it needs no gradient.
    shift = np.max(ad, axis=axis, keepdims=True) if ad.size else np.zeros((1,) * ad.ndim)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    terms = tg.ops.exp(a - shift)
    if b is not None:
        terms = terms * b
    s = tg.ops.sum(terms, axis=axis, keepdims=True)
    out = tg.ops.log(tg.ops.abs(s)) + shift
    sign = np.sign(s.data)
    if not keepdims:
        shape = np.sum(np.empty(out.shape), axis=axis).shape
        out, sign = out.reshape(shape), sign.reshape(shape)
    return (out, sign) if return_sign else out


def softmax(x: Any, axis: Any = None) -> Any:
    """``exp(x) / sum(exp(x), axis)`` (SciPy's default ``axis=None``: over every element)."""
    return tg.ops.softmax(x, axis=axis)


def log_softmax(x: Any, axis: Any = None) -> Any:
    """``x - logsumexp(x, axis)`` (SciPy's default ``axis=None``: over every element)."""
    return tg.ops.log_softmax(x, axis=axis)
