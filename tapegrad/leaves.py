"""Where gradients enter and leave a backward pass, in the users' convention.

A backward starts from a *seed*, the gradient of the objective with respect to the
tensor it starts from (:func:`make_seed`), and ends by adding what reached each leaf
into its ``.grad`` (:func:`commit_leaves`); tensor hooks see gradients on the way
(:func:`run_hooks`). Complex gradients are conjugated here and only here: rules follow
HIPS autograd's convention, users see PyTorch's (``z.grad = dL/dRe z + 1j dL/dIm z``).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .entry import Leaf
from .errors import ShapeError
from .higher_order import Wire
from .lazy import foreign, same_shape

ndarray = np.ndarray

_leaf_lock = threading.Lock()


def conj(g: Any) -> Any:
    """The complex conjugate of a gradient (a no-op on real ones)."""
    return np.conj(g) if g.dtype.kind == "c" else g


def make_seed(data: Any, grad: Any, create_graph: bool, wire: Wire) -> Any:
    """The gradient that starts a reverse pass from a tensor holding ``data``."""
    if grad is None:
        if data.size != 1:
            raise ShapeError(
                f"backward() without a gradient needs a tensor with exactly one element; "
                f"this one has shape {data.shape}. Pass grad= of that shape "
                "(t.backward(np.ones(t.shape))) or reduce first (t.sum())")
        seed = (np.ones(data.shape, data.dtype) if type(data) is ndarray
                else np.ones_like(data))  # Dask, CuPy: a seed of the same library
    else:
        tensor_seed = hasattr(grad, "_node")
        seed = grad if tensor_seed and create_graph else (
            grad._data if tensor_seed else grad if foreign(grad) else
            np.array(grad, dtype=data.dtype))
        if seed.shape != data.shape and not same_shape(seed.shape, data.shape):
            raise ShapeError(f"backward(grad=...): grad has shape {seed.shape} but the "
                             f"tensor has shape {data.shape}")
        if seed.dtype != data.dtype and not tensor_seed:
            seed = seed.astype(data.dtype)
        seed = conj(seed)
    if create_graph and not hasattr(seed, "_node"):
        seed = wire(seed, None)
    return seed


def run_hooks(hooks: list, g: Any) -> Any:
    """Tensor hooks see (and return) gradients in the users' convention."""
    for fn in list(hooks):
        r = fn(conj(g))
        if r is not None:
            g = conj(np.array(r) if isinstance(r, ndarray) else r)
    return g


def commit_leaves(grads: dict, create_graph: bool) -> None:
    """Add the gradients that reached leaves with ``requires_grad`` into their ``.grad``.

    A gradient array the replay made fresh becomes ``.grad`` as is; one that may be
    shared (a view, a read-only array, one already given to another leaf) is copied,
    so a later ``+=`` into ``.grad`` can never reach another array.
    """
    given: set[int] = set()
    with _leaf_lock:
        for node, g in grads.items():
            if type(node) is not Leaf or (t := node.tensor) is None:
                continue
            if node.hooks:
                g = run_hooks(node.hooks, g)
            g = conj(g)
            if create_graph:
                t.grad = g if t.grad is None else t.grad + g
                continue
            if hasattr(g, "_node"):
                g = g._data
            old = t.grad
            if old is None or hasattr(old, "_node") or (
                    old.shape != g.shape and not same_shape(old.shape, g.shape)):
                fresh = (type(g) is ndarray and g.base is None and g.flags.writeable
                         and id(g) not in given)
                t.grad = g if fresh else np.array(g, copy=True) if isinstance(
                    g, ndarray) else g.copy()
                given.add(id(t.grad))
            elif type(old) is ndarray and old.flags.writeable and not foreign(g):
                old += g
            else:
                t.grad = old + g
