"""Differentiable ``scipy.signal`` convolutions: ``convolve``, ``correlate`` (n-d, modes
``full``, ``same``, ``valid``, every ``method``) and ``fftconvolve`` (with ``axes``).

SciPy's functions convert their arguments with ``np.asarray`` and do not dispatch on
Tensors: call the functions of this module (SciPy's signatures), which run the ops
``signal_convolve``, ``signal_correlate`` and ``fftconvolve`` (``convolve`` and
``correlate`` name NumPy's 1-d functions in tapegrad). Their forwards are SciPy's.

Gradients in both inputs: the result of each mode is a centred crop of the full one, so
the upstream gradient is put back in place in a zero array of the full shape, then
correlated with (for ``convolve``: convolved with, for ``correlate``) the other input in
``valid`` mode, by the same op and method (``fftconvolve`` correlates as a convolution
with the flipped input). Along axes outside ``axes`` of ``fftconvolve`` inputs broadcast,
and the engine sums their gradients back. The rules call the ops themselves, so they
differentiate again; forward mode uses bilinearity. Real inputs only (complex inputs
that need a gradient are refused); no lazy Dask evaluation (SciPy computes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.signal as ss

import tapegrad as tg
from tapegrad import OpDef
from tapegrad.registry import lift

__all__ = ["convolve", "correlate", "fftconvolve"]

_convolve = lift("signal_convolve")
_correlate = lift("signal_correlate")
_fftconvolve = lift("fftconvolve")


def _axes(ndim, axes):
    """``fftconvolve``'s ``axes`` as a sorted tuple of non-negative axes (None: all)."""
    if axes is None:
        return tuple(range(ndim))
    axes = (axes,) if np.ndim(axes) == 0 else axes
    return tuple(sorted({int(a) % ndim for a in axes}))


def _in_place(g, s1, s2, axes):
    """The gradient ``g`` of a mode's output put back in place (SciPy's centred crop) in
    zeros of the full output's shape, ``s1 + s2 - 1`` along ``axes``."""
    widths = []
    for i, n in enumerate(g.shape):
        lo = (s1[i] + s2[i] - 1 - n) // 2 if i in axes else 0
        widths.append((lo, s1[i] + s2[i] - 1 - n - lo if i in axes else 0))
    if not any(lo or hi for lo, hi in widths):
        return g
    return np.pad(g, widths)


def _bilinear(op):
    """Forward mode of an op bilinear in its two inputs."""
    def rule(ts, out, in1, in2, **params):
        t1 = None if ts[0] is None else op(ts[0], in2, **params)
        t2 = None if ts[1] is None else op(in1, ts[1], **params)
        return t2 if t1 is None else (t1 if t2 is None else t1 + t2)
    return rule


# ----------------------------------------------------------------- convolve, correlate


def convolve_forward(in1, in2, mode="full", method="auto"):
    return ss.convolve(in1, in2, mode=mode, method=method)


def convolve_vjp(g, out, in1, in2, mode="full", method="auto"):
    gf = _in_place(g, in1.shape, in2.shape, range(in1.ndim))
    return (_correlate(gf, in2, mode="valid", method=method),
            _correlate(gf, in1, mode="valid", method=method))


def correlate_forward(in1, in2, mode="full", method="auto"):
    return ss.correlate(in1, in2, mode=mode, method=method)


def correlate_vjp(g, out, in1, in2, mode="full", method="auto"):
    gf = _in_place(g, in1.shape, in2.shape, range(in1.ndim))
    return (_convolve(gf, in2, mode="valid", method=method),
            _correlate(in1, gf, mode="valid", method=method))


def _convolve_samples(rng):
    r = rng.standard_normal
    return [
        ((r(5), r(3)), {}),
        ((r(5), r(3)), {"mode": "same", "method": "direct"}),
        ((r(6), r(3)), {"mode": "valid", "method": "fft"}),
        ((r(3), r(5)), {"mode": "valid"}),
        ((r(3), r(5)), {"mode": "same", "method": "fft"}),
        ((r((3, 4)), r((2, 3))), {"method": "direct"}),
        ((r((4, 4)), r((2, 3))), {"mode": "same", "method": "auto"}),
        ((r((2, 3)), r((3, 4))), {"mode": "valid", "method": "direct"}),
        ((r((2, 3, 3)), r((2, 2, 1))), {"mode": "valid", "method": "fft"}),
    ]


# ----------------------------------------------------------------- fftconvolve


def fftconvolve_forward(in1, in2, mode="full", axes=None):
    return ss.fftconvolve(in1, in2, mode=mode, axes=axes)


def fftconvolve_vjp(g, out, in1, in2, mode="full", axes=None):
    ax = _axes(in1.ndim, axes)
    gf = _in_place(g, in1.shape, in2.shape, ax)
    return (_fftconvolve(gf, np.flip(in2, axis=ax), mode="valid", axes=axes),
            _fftconvolve(gf, np.flip(in1, axis=ax), mode="valid", axes=axes))


def _fftconvolve_samples(rng):
    r = rng.standard_normal
    return [
        ((r(5), r(3)), {}),
        ((r((3, 4)), r((2, 3))), {"mode": "same"}),
        ((r((2, 3)), r((4, 4))), {"mode": "valid"}),
        ((r((2, 5)), r((1, 3))), {"mode": "same", "axes": 1}),
        ((r((3, 2)), r((2, 2))), {"axes": [0]}),
        ((r((2, 4)), r((2, 6))), {"mode": "valid", "axes": -1}),
    ]


# ----------------------------------------------------------------- the pack


def op_definitions() -> list[OpDef]:
    return [
        OpDef("signal_convolve", convolve_forward, convolve_vjp,
              jvp=_bilinear(_convolve), nargs=2,
              params={"mode": "full", "method": "auto"}, samples=_convolve_samples,
              lazy=False,
              doc="scipy.signal.convolve: n-d convolution, modes full/same/valid, methods "
                  "direct/fft/auto; gradients in both inputs"),
        OpDef("signal_correlate", correlate_forward, correlate_vjp,
              jvp=_bilinear(_correlate), nargs=2,
              params={"mode": "full", "method": "auto"}, samples=_convolve_samples,
              lazy=False,
              doc="scipy.signal.correlate: n-d cross-correlation, modes full/same/valid, "
                  "methods direct/fft/auto; gradients in both inputs"),
        OpDef("fftconvolve", fftconvolve_forward, fftconvolve_vjp,
              jvp=_bilinear(_fftconvolve), nargs=2,
              params={"mode": "full", "axes": None}, samples=_fftconvolve_samples,
              lazy=False,
              doc="scipy.signal.fftconvolve: n-d convolution by FFT over axes (the others "
                  "broadcast), modes full/same/valid; gradients in both inputs"),
    ]


# ----------------------------------------------------------------- SciPy's signatures


def convolve(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """``scipy.signal.convolve``: n-d convolution of two arrays of the same ndim."""
    return tg.ops.signal_convolve(in1, in2, mode=mode, method=method)


def correlate(in1: Any, in2: Any, mode: str = "full", method: str = "auto") -> Any:
    """``scipy.signal.correlate``: n-d cross-correlation of two arrays of the same ndim."""
    return tg.ops.signal_correlate(in1, in2, mode=mode, method=method)


def fftconvolve(in1: Any, in2: Any, mode: str = "full", axes: Any = None) -> Any:
    """``scipy.signal.fftconvolve``: convolution by FFT over ``axes`` (None: all)."""
    return tg.ops.fftconvolve(in1, in2, mode=mode, axes=axes)
