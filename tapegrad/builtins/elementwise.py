"""Elementwise functions whose rules need Python statements (the formula ones live in
``specs/elementwise.yaml`` and ``specs/elementwise_more.yaml``).

Rules follow HIPS autograd's numpy_vjps.py. Piecewise-constant functions (sign, floor,
round, ...) are differentiable ops whose gradient is exactly zero, as in autograd, so
``np.floor(x)`` stays on the tape instead of cutting it. The complex parts (real, imag,
conj, angle) use autograd's non-holomorphic rules; on real inputs imag and angle are
constant and get a zero gradient.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef

from . import _jvp
from ._samples import away_from_zero

# ------------------------------------------------------------------ shared rules and samples


def zero_grad(g, out, *inputs, **params):
    """The gradient of a piecewise-constant function: 0 wherever it is defined."""
    return np.zeros_like(g)


def zero_tangent(tangents, out, *inputs, **params):
    return None


def _off_the_steps(rng, shape, scale=1.0):
    """Values a fifth of a step or more away from integers and half-integers (times
    scale), where floor, ceil, rint, round and trunc are locally constant."""
    steps = rng.integers(-3, 3, shape) + rng.uniform(0.1, 0.4, shape) \
        + 0.5 * rng.integers(0, 2, shape)
    return steps * scale


def _step_samples(rng):
    return [((_off_the_steps(rng, s),), {}) for s in ((3, 4), (), (5,))]


def _round_samples(rng):
    return [*_step_samples(rng), ((_off_the_steps(rng, (3, 4), 0.1),), {"decimals": 1}),
            ((_off_the_steps(rng, (5,), 10.0),), {"decimals": -1})]


def _signed(rng, shape):
    return rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def piecewise_constant(name, forward, doc, **fields):
    """An op whose derivative is 0 away from its jumps (and undefined on them)."""
    fields.setdefault("params", {})
    return OpDef(name, forward, zero_grad, jvp=zero_tangent, nargs=1,
                 doc=doc + " (gradient 0)", **fields)


# ------------------------------------------------------------------ nan_to_num


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    # Always a fresh array: the result of an op never aliases its input (copy is ignored).
    if hasattr(x, "__dask_graph__") and x.dtype.kind == "f":  # Dask's takes no options
        big = np.finfo(x.dtype).max
        y = np.where(np.isnan(x), nan, x)
        y = np.where(np.isposinf(x), big if posinf is None else posinf, y)
        return np.where(np.isneginf(x), -big if neginf is None else neginf, y).astype(x.dtype)
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


def nan_to_num_grad(g, out, x, **params):
    # The identity where x is finite; NaN and inf were replaced by constants.
    return np.where(np.isfinite(x), g, 0.0)


def nan_to_num_jvp(tangents, out, x, **params):
    return np.where(np.isfinite(x), tangents[0], 0.0)


def _nan_to_num_samples(rng):
    x = rng.uniform(-2, 2, (3, 4))
    x[0, 1] = np.nan
    y = x.copy()
    y[1, 2], y[2, 3] = np.inf, -np.inf
    return [((x,), {}), ((y,), {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}),
            ((rng.uniform(-2, 2, (5,)),), {})]


# ------------------------------------------------------------------ sinc


def sinc_slope(x, out):
    """d sinc(x) / dx = (cos(pi x) - sinc(x)) / x; near 0 (where that cancels, and 0/0 at
    0) its series -pi^2 x / 3 + pi^4 x^3 / 30, exact to the second derivative."""
    small = np.abs(x) < 1e-3
    far = (np.cos(np.pi * x) - out) / np.where(small, 1.0, x)
    near = x * (-np.pi ** 2 / 3 + (np.pi ** 4 / 30) * (x * x))
    return np.where(small, near, far)


def _sinc_samples(rng):
    return [((rng.uniform(-2, 2, (3, 4)),), {}), ((np.array([0.0, 1e-4, -3e-4, 0.7]),), {}),
            ((rng.uniform(-2, 2, ()),), {})]


# ------------------------------------------------------------------ complex parts


def real_part(x):
    """np.real as a view (np.real of a real array is that very array)."""
    if not isinstance(x, np.ndarray) and hasattr(x, "__dask_graph__"):
        return x.real  # lazy: no views to take
    return np.asarray(x).real[...]


def imag_part(x):
    x = x if hasattr(x, "__dask_graph__") else np.asarray(x)
    return x.imag[...] if np.iscomplexobj(x) else np.zeros_like(x)


def imag_grad(g, out, x):
    # autograd: match_complex(x, -1j * g); its real part, for a real x, is 0.
    return -1j * g if np.iscomplexobj(x) else np.zeros_like(g)


def angle_grad(g, out, x, deg=False):
    # autograd: match_complex(x, g * conj(x * 1j) / |x| ** 2); a real x has angle 0 or pi.
    if not np.iscomplexobj(x):
        return np.zeros_like(g)
    scale = g * (180.0 / np.pi) if deg else g
    return scale * np.conj(x * 1j) / np.abs(x) ** 2


def angle_jvp(tangents, out, x, deg=False):
    # d angle(z) = Im(conj(z) dz) / |z| ** 2
    if not np.iscomplexobj(x):
        return None
    t = np.imag(np.conj(x) * tangents[0]) / np.abs(x) ** 2
    return t * (180.0 / np.pi) if deg else t


def _angle_samples(rng):
    return [((_signed(rng, (3, 4)),), {}), ((_signed(rng, (5,)),), {"deg": True})]


# ------------------------------------------------------------------ remainder, floor_divide


def remainder_grad_divisor(g, out, a, b):
    return -g * np.floor(a / b)


def remainder_jvp(tangents, out, a, b):
    ta, tb = tangents
    return _jvp.plus(ta, None if tb is None else -tb * np.floor(a / b))


def divmod_jvp(tangents, out, a, b):
    return None, remainder_jvp(tangents, out[1], a, b)


def _remainder_samples(rng):
    """Quotients a quarter step or more away from integers: a % b is smooth there."""
    def pair(shape_a, shape_b):
        b = _signed(rng, shape_b) + np.sign(_signed(rng, shape_b)) * 0.3
        q = rng.integers(-3, 3, shape_a) + rng.uniform(0.25, 0.75, shape_a)
        return q * b, b
    a, b = pair((3, 4), (3, 4))
    a2, b2 = pair((3, 4), (4,))
    return [((a, b), {}), ((a2, b2), {}), ((np.array([2.4, -3.7, 0.6]), 1.3), {}),
            ((2.5, np.array([0.7, -0.9, 1.1])), {})]


# ------------------------------------------------------------------ copysign


def copysign_grad(g, out, a, b):
    # copysign(a, b) = +-a: the sign of a times the sign b imposes (its sign bit).
    return g * np.sign(a) * np.sign(out)


def copysign_jvp(tangents, out, a, b):
    t = tangents[0]
    return None if t is None else t * np.sign(a) * np.sign(out)


def _copysign_samples(rng):
    return [((_signed(rng, (3, 4)), _signed(rng, (3, 4))), {}),
            ((_signed(rng, (3, 4)), _signed(rng, (4,))), {}),
            ((_signed(rng, (3,)), -0.0), {})]


@hookimpl
def tapegrad_ops():
    return [
        # -------------------------------------------------------------- piecewise constant
        piecewise_constant("sign", np.sign, "-1, 0 or 1 by the sign of x",
                           samples=away_from_zero),
        piecewise_constant("floor", np.floor, "largest integer <= x", samples=_step_samples),
        piecewise_constant("ceil", np.ceil, "smallest integer >= x", samples=_step_samples),
        piecewise_constant("trunc", np.trunc, "x rounded toward 0", samples=_step_samples),
        piecewise_constant("fix", np.fix, "x rounded toward 0 (np.fix)",
                           implements=(np.fix,), samples=_step_samples),
        piecewise_constant("rint", np.rint, "x rounded to the nearest integer, half to even",
                           samples=_step_samples),
        piecewise_constant("round", np.round, "x rounded to decimals places, half to even",
                           params={"decimals": 0}, method=True,
                           implements=(np.round, np.around), samples=_round_samples),
        # -------------------------------------------------------------- nan_to_num, sinc
        OpDef("nan_to_num", nan_to_num, nan_to_num_grad, jvp=nan_to_num_jvp, nargs=1,
              params={"copy": True, "nan": 0.0, "posinf": None, "neginf": None},
              implements=(np.nan_to_num,), samples=_nan_to_num_samples,
              doc="NaN and +-inf replaced by numbers (gradient passes where x is finite, "
                  "0 elsewhere)"),
        OpDef("sinc", np.sinc, lambda g, out, x: g * sinc_slope(x, out),
              jvp=lambda ts, out, x: ts[0] * sinc_slope(x, out), nargs=1,
              implements=(np.sinc,), samples=_sinc_samples, complex=True,
              doc="sin(pi x) / (pi x), 1 at 0"),
        # -------------------------------------------------------------- complex parts
        OpDef("real", real_part, lambda g, out, x: g, jvp=_jvp.linear(real_part),
              properties=("real",), implements=(np.real,), complex=True, traits=("view",),
              doc="real part (x itself for real x)"),
        OpDef("imag", imag_part, imag_grad, jvp=_jvp.linear(imag_part),
              properties=("imag",), implements=(np.imag,), complex=True,
              doc="imaginary part (zeros for real x, gradient 0)"),
        OpDef("conj", np.conjugate, lambda g, out, x: np.conj(g),
              jvp=_jvp.linear(np.conjugate), method=True, complex=True,
              doc="complex conjugate (x itself for real x)"),
        OpDef("conjugate", np.conjugate, lambda g, out, x: np.conj(g),
              jvp=_jvp.linear(np.conjugate), method=True, complex=True,
              doc="complex conjugate, the same as conj"),
        OpDef("angle", np.angle, angle_grad, jvp=angle_jvp, nargs=1, params={"deg": False},
              implements=(np.angle,), samples=_angle_samples, complex=True,
              doc="the argument of complex x (0 or pi for real x, gradient 0)"),
        # -------------------------------------------------------------- remainder, division
        OpDef("remainder", np.remainder, (lambda g, out, a, b: g, remainder_grad_divisor),
              jvp=remainder_jvp, operators=("__mod__", "__rmod__"),
              samples=_remainder_samples,
              doc="a % b with the sign of b (gradients 1 and -floor(a / b))"),
        OpDef("mod", np.remainder, (lambda g, out, a, b: g, remainder_grad_divisor),
              jvp=remainder_jvp, samples=_remainder_samples,
              doc="a % b, the same as remainder"),
        OpDef("divmod", np.divmod, (lambda g, out, a, b: g[1],
                                    lambda g, out, a, b: remainder_grad_divisor(g[1], out, a, b)),
              jvp=divmod_jvp, nout=2, operators=("__divmod__", "__rdivmod__"),
              samples=_remainder_samples,
              doc="(a // b, a % b): the quotient gets no gradient, the remainder that of "
                  "remainder"),
        OpDef("floor_divide", np.floor_divide, None, operators=("__floordiv__",
                                                                 "__rfloordiv__"),
              doc="a // b, floor(a / b): not differentiable, its results are untracked"),
        OpDef("copysign", np.copysign, (copysign_grad, zero_grad), jvp=copysign_jvp,
              samples=_copysign_samples,
              doc="|a| with the sign of b (gradient +-1 for a, 0 for b)"),
    ]
