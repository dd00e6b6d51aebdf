"""Reductions beyond sum/mean/max/min, scans and sorting: prod, cumsum, var, sort, ..."""

from __future__ import annotations

from tapegrad.hookspecs import hookimpl


@hookimpl
def tapegrad_ops():
    return []
