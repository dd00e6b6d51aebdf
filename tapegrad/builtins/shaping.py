"""Shape and selection: reshape, transpose, broadcast_to, indexing, joining, where, clip.

``getitem`` covers basic and integer-array indexing; its vjp scatters the gradient back
with ``scatter_add``, so repeated indices accumulate, and is itself differentiable.

NumPy functions returning a number of arrays that depends on their arguments are
adapters over these ops, not ops of their own: ``np.split``, ``np.array_split`` and
``np.hsplit``/``vsplit``/``dsplit`` give a list of ``getitem`` slices (NumPy decides
where to cut), ``np.broadcast_arrays`` a tuple of ``broadcast_to`` calls.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift

from . import _jvp

scatter_add = lift("scatter_add")
_getitem = lift("getitem")


def _shape_arg(args):
    """``x.reshape(2, 3)`` and ``x.reshape((2, 3))`` alike."""
    if len(args) == 1 and not isinstance(args[0], (int, np.integer)):
        return tuple(args[0]) if args[0] is not None else None
    return tuple(args)


def _inverse(axes):
    return None if axes is None else tuple(np.argsort(axes))


def _plain_index(index):
    """Indices may hold Tensors (labels); forward rules see arrays only."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    data = getattr(index, "_data", None)  # a Tensor's array (read by the op, not the user)
    return data if isinstance(data, np.ndarray) and not isinstance(index, np.ndarray) else index


def getitem(x, index):
    return x[_plain_index(index)]


def scatter_add_forward(g, shape, index):
    index = _plain_index(index)
    if not isinstance(g, np.ndarray) and hasattr(g, "__dask_graph__"):
        return _scatter_lazy(g, shape, index)
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return out


def _scatter_lazy(g, shape, index):
    """scatter_add of a Dask array: zeros with ``g`` assigned at ``index`` (Dask's lazy
    ``__setitem__``), which adds only where no position is named twice."""
    parts = index if isinstance(index, tuple) else (index,)
    axis = 0
    for k in parts:
        if k is Ellipsis:
            axis = len(shape) - sum(p is not Ellipsis and p is not None for p in parts) + axis
            continue
        if isinstance(k, np.ndarray) and k.dtype.kind in "iu" and k.ndim == 1 \
                and np.unique(k % shape[axis]).size < k.size:
            raise ValueError("a repeated index on a Dask array: its gradient would add at "
                             "the same position twice, which Dask's lazy assignment cannot "
                             "do; index with unique positions (or compute the array first)")
        axis += k.ndim if isinstance(k, np.ndarray) and k.dtype == bool else k is not None
    out = np.zeros_like(g, shape=shape)
    out[index] = g
    return out


def _slice_along(axis, ndim, key):
    return (slice(None),) * (axis % ndim) + (key,)


# ------------------------------------------------------------------ split, broadcast_arrays


def _cuts(n, indices_or_sections, equal):
    """The slices np.split (``equal``) or np.array_split cuts a length-``n`` axis into.

    NumPy itself splits ``arange(n)``, so its rules and errors hold as they are."""
    split = np.split if equal else np.array_split
    return [slice(int(p[0]), int(p[-1]) + 1) if p.size else slice(0, 0)
            for p in split(np.arange(n), indices_or_sections)]


def _pieces(op, ary, indices_or_sections, axis, equal):
    ndim = np.ndim(ary)
    axis = np.lib.array_utils.normalize_axis_index(axis, ndim)
    return [op(ary, index=_slice_along(axis, ndim, cut))
            for cut in _cuts(np.shape(ary)[axis], indices_or_sections, equal)]


def split(op, ary, indices_or_sections, axis=0):
    """``np.split``: a list of ``getitem`` slices (equal sections, or cut at indices)."""
    return _pieces(op, ary, indices_or_sections, axis, True)


def array_split(op, ary, indices_or_sections, axis=0):
    """``np.array_split``: as ``split``, sections may differ in length by one."""
    return _pieces(op, ary, indices_or_sections, axis, False)


def _split_at_least(name, ndim, axis):
    def adapter(op, ary, indices_or_sections):
        if np.ndim(ary) < ndim:
            raise ValueError(f"{name} only works on arrays of {ndim} or more dimensions")
        return split(op, ary, indices_or_sections, axis if np.ndim(ary) > 1 else 0)

    adapter.__name__ = name
    adapter.__doc__ = f"``np.{name}``: ``np.split`` along axis {axis}."
    return adapter


def broadcast_arrays(op, *args, subok=False):
    """``np.broadcast_arrays``: each argument broadcast to the common shape (a tuple)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    return tuple(op(a, shape=shape) for a in args)


def concatenate_grad(g, out, *xs, axis=0):
    bounds = np.cumsum([x.shape[axis] for x in xs])
    starts = [0, *bounds[:-1]]
    return tuple(g[_slice_along(axis, xs[0].ndim, slice(s, e))]
                 for s, e in zip(starts, bounds, strict=True))


def stack_grad(g, out, *xs, axis=0):
    return tuple(g[_slice_along(axis, xs[0].ndim + 1, i)] for i in range(len(xs)))


def where_grad_x(g, out, cond, x, y):
    return np.where(cond, g, 0.0)


def where_grad_y(g, out, cond, x, y):
    return np.where(cond, 0.0, g)


def clip(x, a_min=None, a_max=None):
    # One-sided clips as a single ufunc: np.clip goes through Python wrappers first.
    if a_max is None:
        if a_min is not None:
            return np.maximum(x, a_min)
        return x.copy() if hasattr(x, "copy") else np.array(x, copy=True)
    if a_min is None:
        return np.minimum(x, a_max)
    return np.clip(x, a_min, a_max)


def clip_grad(g, out, x, a_min=None, a_max=None):
    if a_min is not None and a_max is not None:
        return g * ((x >= a_min) & (x <= a_max))
    if a_min is not None:
        return g * (x >= a_min)
    return g * (x <= a_max) if a_max is not None else g


def _reshape_samples(rng):
    x = rng.standard_normal((2, 3, 4))
    return [((x,), {"shape": (6, 4)}), ((x,), {"shape": (-1,)}), ((x[0, 0],), {"shape": (2, 2)})]


def _transpose_samples(rng):
    x = rng.standard_normal((2, 3, 4))
    return [((x,), {}), ((x,), {"axes": (1, 2, 0)}), ((x[0],), {})]


def _getitem_samples(rng):
    x = rng.standard_normal((4, 5))
    return [
        ((x,), {"index": 2}),
        ((x,), {"index": (slice(1, 3), slice(None, None, 2))}),
        ((x,), {"index": (Ellipsis, None, 1)}),
        ((x,), {"index": np.array([0, 2, 2, 3])}),          # repeated rows accumulate
        ((x,), {"index": (np.array([0, 1, 1]), np.array([4, 0, 0]))}),
        ((x,), {"index": x > 0}),
    ]


def _scatter_samples(rng):
    return [((rng.standard_normal(4),), {"shape": (5,), "index": np.array([0, 2, 2, 4])}),
            ((rng.standard_normal((2, 3)),), {"shape": (4, 3), "index": slice(1, 3)})]


def _join_samples(rng):
    r = rng.standard_normal
    return [(([r((2, 3)), r((4, 3))],), {"axis": 0}), (([r((2, 3)), r((2, 1))],), {"axis": -1})]


def _stack_samples(rng):
    r = rng.standard_normal
    return [(([r((2, 3)), r((2, 3)), r((2, 3))],), {"axis": 0}),
            (([r((2, 3)), r((2, 3))],), {"axis": -1})]


def _where_samples(rng):
    r = rng.standard_normal
    return [((r((3, 4)) > 0, r((3, 4)), r((3, 4))), {}),
            ((r((3, 4)) > 0, r((4,)), 0.5), {})]


def _clip_samples(rng):
    x = rng.uniform(-2, 2, (3, 4))
    x[np.abs(np.abs(x) - 1.0) < 0.05] = 0.5  # keep away from the kinks at +-1
    x[np.abs(x) < 0.05] = 0.5  # and at 0
    return [((x,), {"a_min": -1.0, "a_max": 1.0}), ((x,), {"a_min": 0.0, "a_max": None})]


def _broadcast_samples(rng):
    r = rng.standard_normal
    return [((r((3, 1)),), {"shape": (2, 3, 4)}), ((r(()),), {"shape": (3,)})]


def _astype_samples(rng):
    return [((rng.standard_normal((3,)),), {"dtype": np.float32}),
            ((rng.standard_normal((3,)).astype(np.float32),), {"dtype": np.float64})]


def _swap_samples(rng):
    return [((rng.standard_normal((2, 3, 4)),), {"axis1": 0, "axis2": 2})]


@hookimpl
def tapegrad_ops():
    return [
        OpDef("reshape", np.reshape, lambda g, out, x, shape: g.reshape(x.shape),
              jvp=_jvp.linear(np.reshape),
              params={"shape": None}, save_inputs="shape",
              method=lambda op, self, *shape: op(self, _shape_arg(shape)),
              implements=(np.reshape,), samples=_reshape_samples,
              complex=True, traits=("view",), doc="the same elements in a new shape"),
        OpDef("transpose", np.transpose,
              lambda g, out, x, axes=None: np.transpose(g, _inverse(axes)),
              jvp=_jvp.linear(np.transpose),
              params={"axes": None}, save_inputs=False,
              method=lambda op, self, *axes: op(self, _shape_arg(axes) if axes else None),
              properties=("T",), implements=(np.transpose,), samples=_transpose_samples,
              complex=True, traits=("view",), doc="permute axes (reverse them by default)"),
        OpDef("swapaxes", np.swapaxes,
              lambda g, out, x, axis1, axis2: np.swapaxes(g, axis1, axis2),
              jvp=_jvp.linear(np.swapaxes),
              params={"axis1": 0, "axis2": 1}, save_inputs=False,
              method=True, implements=(np.swapaxes,), samples=_swap_samples,
              complex=True, traits=("view",), doc="exchange two axes"),
        OpDef("broadcast_to", np.broadcast_to, lambda g, out, x, shape: g,
              jvp=_jvp.linear(np.broadcast_to),
              params={"shape": None}, save_inputs=False,
              implements=(np.broadcast_to, (np.broadcast_arrays, broadcast_arrays)),
              samples=_broadcast_samples,
              complex=True, traits=("view",),
              doc="broadcast to a shape (the engine sums the gradient back)"),
        OpDef("astype", lambda x, dtype: x.astype(dtype, copy=False),
              lambda g, out, x, dtype: g.astype(x.dtype),
              jvp=_jvp.linear(lambda t, dtype: t.astype(dtype)),
              params={"dtype": None}, save_inputs="shape", method=True,
              samples=_astype_samples, traits=("view",), doc="cast to another floating dtype"),
        OpDef("getitem", getitem,
              lambda g, out, x, index: scatter_add(g, x.shape, index),
              jvp=_jvp.linear(lambda t, index: _getitem(t, index=index)),
              params={"index": None}, save_inputs="shape",
              operators=("__getitem__",), samples=_getitem_samples,
              implements=((np.split, split), (np.array_split, array_split),
                          (np.hsplit, _split_at_least("hsplit", 1, 1)),
                          (np.vsplit, _split_at_least("vsplit", 2, 0)),
                          (np.dsplit, _split_at_least("dsplit", 3, 2))),
              complex=True, traits=("view", "index"),
              doc="x[index]: basic and integer-array indexing"),
        OpDef("scatter_add", scatter_add_forward,
              lambda g, out, x, shape, index: g[_plain_index(index)],
              jvp=_jvp.linear(lambda t, shape, index: scatter_add(t, shape=shape, index=index)),
              params={"shape": None, "index": None}, save_inputs=False,
              samples=_scatter_samples,
              complex=True, doc="zeros(shape) with x added at index (repeated indices accumulate)"),
        OpDef("concatenate", lambda xs, axis=0: np.concatenate(xs, axis=axis),
              concatenate_grad, jvp=_jvp.joined(np.concatenate), variadic=True, params={"axis": 0},
              save_inputs="shape", implements=(np.concatenate,),
              samples=_join_samples, complex=True, doc="join tensors along an existing axis"),
        OpDef("stack", lambda xs, axis=0: np.stack(xs, axis=axis), stack_grad,
              jvp=_jvp.joined(np.stack),
              variadic=True, params={"axis": 0}, save_inputs="shape",
              implements=(np.stack,), samples=_stack_samples,
              complex=True, doc="join tensors along a new axis"),
        OpDef("where", np.where, (None, where_grad_x, where_grad_y), nargs=3, nondiff=(0,),
              jvp=_jvp.where,
             implements=(np.where,), samples=_where_samples,
              complex=True, doc="x where cond else y (cond gets no gradient)"),
        OpDef("clip", clip, clip_grad, jvp=lambda ts, out, x, **p: clip_grad(ts[0], out, x, **p),
              params={"a_min": None, "a_max": None},
             method=True, implements=(np.clip,), samples=_clip_samples,
              doc="limit values to [a_min, a_max]"),
    ]
