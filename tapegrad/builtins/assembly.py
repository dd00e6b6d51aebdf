"""Shaping and assembly beyond the basics: squeeze, pad, roll, flip, stacking helpers, ..."""

from __future__ import annotations

from tapegrad.hookspecs import hookimpl


@hookimpl
def tapegrad_ops():
    return []
