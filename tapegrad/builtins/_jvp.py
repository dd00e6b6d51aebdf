"""Native forward-mode rules (``OpDef(jvp=...)``) of the built-in ops.

A rule is ``jvp(tangents, out, *inputs, **params)``: ``tangents`` holds one tangent per
input, ``None`` for a zero one; it returns the output's tangent (``None`` for zero).
Like vjps they are written with operators and NumPy functions, so they run on ndarrays
and, nested inside another transform, on Tensors (recorded).
"""

from __future__ import annotations

import numpy as np


def plus(*terms):
    """The sum of the terms that are not ``None`` (``None`` if all are)."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total


def scaled(t, factor):
    """``t * factor``, or ``None`` for a zero tangent."""
    return None if t is None else t * factor


def linear(fn):
    """The rule of an op linear in its single input: apply the op to the tangent."""
    def rule(tangents, out, x, **params):
        t = tangents[0]
        return None if t is None else fn(t, **params)
    return rule


def add(ts, out, a, b):
    return plus(ts[0], ts[1])


def sub(ts, out, a, b):
    return plus(ts[0], None if ts[1] is None else -ts[1])


def mul(ts, out, a, b):
    return plus(scaled(ts[0], b), scaled(ts[1], a))


def div(ts, out, a, b):
    return plus(None if ts[0] is None else ts[0] / b,
                None if ts[1] is None else -ts[1] * a / (b * b))


def neg(ts, out, x):
    return -ts[0]


def less_one(b):
    """``b - 1``, except 1 where ``b == 0``: ``b * a ** less_one(b)`` is then exactly 0 at
    ``a == 0, b == 0`` (not ``0 * inf``), and the same holds again one order up."""
    if isinstance(b, (int, float)):
        return 1 if b == 0 else b - 1
    return np.where(b == 0, 1, b - 1)


def log_safe_base(a):
    """``a`` with 1 where ``log(a)`` has no (real) value: a <= 0 for real ``a``, 0 for
    complex ``a`` (autograd's replace_zero). There the exponent gets gradient 0."""
    if np.iscomplexobj(a):
        return np.where(a == 0, 1.0, a)
    return np.where(a > 0, a, 1.0)


def pow_(ts, out, a, b):
    ta, tb = ts
    return plus(None if ta is None else ta * b * a ** less_one(b),
                None if tb is None else tb * out * np.log(log_safe_base(a)))


def matmul(ts, out, a, b):
    return plus(None if ts[0] is None else ts[0] @ b, None if ts[1] is None else a @ ts[1])


def abs_(ts, out, x):
    if np.iscomplexobj(x):  # Re(conj(x) dx) / |x|, 0 at 0
        return np.real(ts[0] * np.conj(x)) / np.where(out == 0, 1.0, out)
    return ts[0] * np.sign(x)


def where(ts, out, cond, x, y):
    if ts[1] is None and ts[2] is None:
        return None
    return np.where(cond, 0.0 if ts[1] is None else ts[1], 0.0 if ts[2] is None else ts[2])


def joined(fn):
    """concatenate / stack: join the tangents, zeros standing in for missing ones."""
    def rule(ts, out, *xs, axis=0):
        parts = [np.zeros(x.shape, out.dtype if out is not None else np.float64)
                 if t is None else t for t, x in zip(ts, xs, strict=True)]
        return fn(parts, axis=axis)
    return rule
