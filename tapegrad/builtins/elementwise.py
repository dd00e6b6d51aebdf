"""Elementwise functions whose rules need Python statements (the formula ones live in specs/)."""

from __future__ import annotations

from tapegrad.hookspecs import hookimpl


@hookimpl
def tapegrad_ops():
    return []
