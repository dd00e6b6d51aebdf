"""Arithmetic: the operators ``+ - * / ** @``, negation and absolute value.

Rules return gradients in the broadcast shape; the engine sums them back to each
input's shape. Per-input rules (a tuple of functions) are only called for inputs that
need a gradient: ``x ** 2`` never computes a log for the constant exponent.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef

from . import _jvp
from ._samples import away_from_zero, binary_samples, unary_samples

# ------------------------------------------------------------------ matmul


def matmul_grad_a(g, out, a, b):
    if b.ndim == 1:                          # (..., n, k) @ (k,) -> (..., n)
        return g[..., None] * b
    if a.ndim == 1:                          # (k,) @ (..., k, m) -> (..., m)
        return (g[..., None, :] @ b.swapaxes(-1, -2))[..., 0, :]
    return g @ b.swapaxes(-1, -2)  # a method: no NumPy dispatch on the plain path


def matmul_grad_b(g, out, a, b):
    if a.ndim == 1:
        if b.ndim == 1:                      # (k,) @ (k,) -> ()
            return g * a
        return a[:, None] * g[..., None, :]  # (k,) @ (..., k, m) -> (..., m)
    if b.ndim == 1:                          # (..., n, k) @ (k,) -> (..., n)
        return (a.swapaxes(-1, -2) @ g[..., None])[..., 0]
    return a.swapaxes(-1, -2) @ g


def _matmul_samples(rng):
    r = rng.standard_normal
    return [
        ((r((3, 4)), r((4, 2))), {}),
        ((r(4), r((4, 3))), {}),
        ((r((3, 4)), r(4)), {}),
        ((r(4), r(4)), {}),
        ((r((2, 3, 4)), r((4, 5))), {}),
        ((r((2, 1, 3, 4)), r((3, 4, 2))), {}),
        ((r(4), r((2, 4, 3))), {}),
        ((r((2, 3, 4)), r(4)), {}),
    ]


# ------------------------------------------------------------------ pow


def pow_grad_base(g, out, a, b):
    # b * a ** (b - 1), with the exponent kept off -1 where b == 0: x ** 0 has gradient
    # 0 at x == 0, not 0 * inf (and likewise for the second derivative of x ** 1).
    return g * b * a ** _jvp.less_one(b)


def pow_grad_exponent(g, out, a, b):
    # d(a**b)/db = a**b * log(a); where a <= 0 the real log is undefined: use 0 there.
    return g * out * np.log(_jvp.log_safe_base(a))


# ------------------------------------------------------------------ abs


def abs_grad(g, out, x):
    # autograd's g * conj(x) / |x|, 0 at 0; for real x that is sign(x), whose own
    # derivative is exactly 0.
    if np.iscomplexobj(x):
        return g * np.conj(x) / np.where(out == 0, 1.0, out)
    return g * np.sign(x)


def _pow_samples(rng):
    a = rng.uniform(0.5, 2.0, (3, 4))
    return [
        ((a, rng.uniform(-2, 2, (3, 4))), {}),
        ((a, rng.uniform(-2, 2, (4,))), {}),
        ((rng.uniform(-2, 2, (3,)), 2), {}),
        ((rng.uniform(-2, 2, (3,)), 3.0), {}),
        ((a, 0.5), {}),
    ]


def _div_samples(rng):
    den = rng.uniform(0.5, 2.0, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    return [((rng.uniform(-2, 2, (3, 4)), den), {}),
            ((rng.uniform(-2, 2, (4,)), den), {}),
            ((2.0, den), {})]


@hookimpl
def tapegrad_ops():
    return [
        OpDef("add", np.add, lambda g, out, a, b: (g, g), jvp=_jvp.add,
              save_inputs=False, operators=("__add__", "__radd__"),
              samples=binary_samples, complex=True, doc="a + b, elementwise with broadcasting"),
        OpDef("sub", np.subtract, (lambda g, out, a, b: g, lambda g, out, a, b: -g),
              jvp=_jvp.sub,
              save_inputs=False, operators=("__sub__", "__rsub__"),
              samples=binary_samples, complex=True, doc="a - b"),
        OpDef("mul", np.multiply,
              (lambda g, out, a, b: g * b, lambda g, out, a, b: g * a), jvp=_jvp.mul,
             operators=("__mul__", "__rmul__"),
              samples=binary_samples, complex=True, doc="a * b"),
        OpDef("div", np.true_divide,
              (lambda g, out, a, b: g / b, lambda g, out, a, b: -g * a / (b * b)),
              jvp=_jvp.div, operators=("__truediv__", "__rtruediv__"),
              samples=_div_samples, complex=True, doc="a / b"),
        OpDef("neg", np.negative, lambda g, out, x: -g, jvp=_jvp.neg,
              save_inputs=False, operators=("__neg__",),
              samples=unary_samples, complex=True, doc="-x"),
        OpDef("pow", np.power,
              (pow_grad_base, pow_grad_exponent), jvp=_jvp.pow_,
              operators=("__pow__", "__rpow__"), samples=_pow_samples,
              complex=True, doc="a ** b (tensor or scalar exponent)"),
        OpDef("matmul", np.matmul, (matmul_grad_a, matmul_grad_b), jvp=_jvp.matmul,
             operators=("__matmul__", "__rmatmul__"),
              samples=_matmul_samples, complex=True, doc="matrix product: 1-D, 2-D and batched"),
        OpDef("abs", np.absolute, abs_grad, jvp=_jvp.abs_,
             operators=("__abs__",), method=True,
              implements=(np.abs,), samples=away_from_zero,
              complex=True,
              doc="|x| (gradient sign(x), conj(x) / |x| for complex x; 0 at 0)"),
    ]
