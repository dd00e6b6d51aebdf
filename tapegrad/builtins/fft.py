"""Discrete Fourier transforms (np.fft)."""

from __future__ import annotations

from tapegrad.hookspecs import hookimpl


@hookimpl
def tapegrad_ops():
    return []
