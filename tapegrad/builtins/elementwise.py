"""Elementwise functions: one line of forward, one line of vjp each.

Rules use ``out`` where the derivative is cheapest in terms of the result (exp, tanh,
sigmoid, sqrt) so the input need not be kept alive.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef

from ._samples import away_from_zero


def sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # stable for large |x|, unlike 1 / (1 + exp(-x))


def relu(x):
    return np.maximum(x, 0)


@hookimpl
def tapegrad_ops():
    def by_out(name, fwd, vjp, **kw):
        return OpDef(name, fwd, vjp, save_inputs=False, method=True, **kw)

    def by_in(name, fwd, vjp, **kw):
        return OpDef(name, fwd, vjp, save_out=False, method=True, **kw)

    return [
        by_out("exp", np.exp, lambda g, out, x: g * out, doc="e ** x"),
        by_in("log", np.log, lambda g, out, x: g / x, domain=(0.1, 3.0), doc="natural log"),
        by_out("sqrt", np.sqrt, lambda g, out, x: g / (2 * out), domain=(0.1, 3.0),
               doc="square root"),
        by_out("tanh", np.tanh, lambda g, out, x: g * (1 - out * out), doc="tanh"),
        by_out("sigmoid", sigmoid, lambda g, out, x: g * out * (1 - out),
               doc="logistic sigmoid 1 / (1 + e ** -x)"),
        by_out("relu", relu, lambda g, out, x: g * (out > 0), samples=away_from_zero,
               doc="max(x, 0)"),
        by_in("sin", np.sin, lambda g, out, x: g * np.cos(x), doc="sine"),
        by_in("cos", np.cos, lambda g, out, x: -g * np.sin(x), doc="cosine"),
    ]
