"""Linear algebra (np.linalg): inv, solve, det, norm, decompositions, ..."""

from __future__ import annotations

from tapegrad.hookspecs import hookimpl


@hookimpl
def tapegrad_ops():
    return []
