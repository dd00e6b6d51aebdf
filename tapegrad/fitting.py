"""Fitting a vjp's gradient to its input: the shape and dtype of the node it goes to.

A gradient may come back in the input's shape or in the shape the input was broadcast
to in the call; :func:`unbroadcast` sums the broadcast axes, and refuses (naming the op)
a shape the call never broadcast to. A floating gradient is cast to the input's dtype
(the real part, for a real input). Called by the replay only when a gradient does not
fit as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .entry import Node, Record
from .errors import OpRuleError
from .lazy import same_shape, unknown, unknown_shape_error

ndarray = np.ndarray


def fit(g: Any, node: Node, rec: Record, i: int) -> Any:
    """Input ``i``'s gradient in its input's shape and dtype (the node's)."""
    meta = node.meta()
    if meta is None:  # a leaf nobody holds any more: its gradient has nowhere to go
        return g
    shape, dtype = meta
    if not hasattr(g, "shape"):
        if not isinstance(g, (int, float, complex)) or isinstance(g, bool):
            raise OpRuleError(f"op {rec.op.name!r} (from {rec.op.source}): vjp returned a "
                              f"{type(g).__name__} for input {i}, expected an array")
        g = np.asarray(g)
    if g.shape != shape and not same_shape(g.shape, shape):
        g = unbroadcast(g, shape, rec, i)
    if g.dtype != dtype:
        if g.dtype.kind not in "fc":
            raise OpRuleError(f"op {rec.op.name!r} (from {rec.op.source}): vjp returned "
                              f"dtype {g.dtype} for input {i}, expected numbers")
        g = (g.real if dtype.kind != "c" and g.dtype.kind == "c" else g).astype(dtype)
    return g


def unbroadcast(g: Any, shape: tuple[int, ...], rec: Record, i: int) -> Any:
    """Sum ``g`` over the axes along which input ``i`` was broadcast in this call.

    A gradient may have the input's shape or the shape the input was broadcast to in
    the call: every extra or expanded axis must have, at the same place counted from
    the right, the same size in the output or in another input of the call.
    """
    gshape = g.shape
    if unknown(gshape, shape):
        raise unknown_shape_error(rec.op, i, gshape, shape)
    lead = len(gshape) - len(shape)
    others = call_shapes(rec)
    axes = []
    for k, size in enumerate(gshape):
        own = shape[k - lead] if k >= lead else None
        if own == size:
            continue
        back = len(gshape) - k
        if own not in (None, 1) or not any(len(s) >= back and s[-back] == size
                                           for s in others):
            raise OpRuleError(
                f"op {rec.op.name!r} (from {rec.op.source}): vjp gave input {i} a "
                f"gradient of shape {tuple(gshape)}; the input has shape {tuple(shape)} "
                f"and the call broadcast nothing to that shape (output shape "
                f"{tuple(rec.output_meta(0)[0])}). Return the input's shape (or the "
                "shape it was broadcast to in the call)")
        axes.append(k)
    total = np.add.reduce if type(g) is ndarray else type(g).sum
    if len(axes) == lead:  # leading axes only (a bias): no reshape, so no view
        return total(g, axis=tuple(axes))
    g = total(g, axis=tuple(axes), keepdims=True)
    return g.reshape(shape) if lead or g.shape != shape else g


def call_shapes(rec: Record) -> list[tuple[int, ...]]:
    """The shapes of a call's output(s) and inputs."""
    n_out = len(rec.out) if type(rec.out) is tuple else 1
    shapes = [rec.output_meta(k)[0] for k in range(n_out)]
    for k, node in enumerate(rec.parents):
        x = rec.saved[k] if rec.saved is not None else None
        if hasattr(x, "shape"):
            shapes.append(tuple(x.shape))
        elif node is not None and node.meta() is not None:
            shapes.append(node.meta()[0])
    return shapes
