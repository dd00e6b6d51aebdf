"""Shaping and assembly beyond the basics: squeeze, pad, roll, flip, stacking helpers, ...

Every op here is linear in its array inputs (``full`` and ``select`` for fixed shape and
conditions), so each vjp is the adjoint map: a reshape, the inverse permutation, a sum
over copies, or a scatter back with ``scatter_add`` where one input element feeds several
output elements (``take``, ``pad`` in its non-constant modes, ``repeat``), so repeated
reads accumulate. Rules use NumPy functions that these ops implement themselves, so they
are differentiable again under ``create_graph=True``.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift

from . import _jvp
from .shaping import _plain_index, _slice_along

scatter_add = lift("scatter_add")
_select = lift("select")
_full = lift("full")


def _zeros_for(ts, out, xs):
    """The tangents, zeros standing in for missing (``None``) ones."""
    dtype = out.dtype if out is not None else np.float64
    return [np.zeros(np.shape(x), dtype) if t is None else t for t, x in zip(ts, xs, strict=True)]


def _joined(fn):
    """jvp of a variadic op linear in all its inputs: the op applied to the tangents."""
    def rule(ts, out, *xs, **params):
        return fn(_zeros_for(ts, out, xs), **params)
    return rule


def _interleave(a, b):
    return tuple(n for pair in zip(a, b, strict=True) for n in pair)


def _padded_shapes(*shapes):
    """Shapes left-padded with 1s to a common length (``tile``, ``kron``)."""
    d = max(len(s) for s in shapes)
    return [(1,) * (d - len(s)) + tuple(s) for s in shapes]


def _unshape(g, out, x, **params):
    """vjp of an op that only changes the shape: reshape back."""
    return g.reshape(np.shape(x))


# ----------------------------------------------------------------- squeeze, ravel, ...


def _check_layout(x, order):
    """'A' and 'K' read ``x`` in memory order. The engine may hand the vjp a C-ordered
    copy of an input, so a layout other than C order would get a wrong gradient:
    refuse it rather than guess."""
    if order in ("A", "K") and not np.array_equal(np.ravel(x, order), np.ravel(x)):
        raise ValueError(f"order={order!r} on an array whose memory order is not C order "
                         "is not supported (tensors have no reliable layout); use 'C' or 'F'")


def ravel(x, order="C"):
    _check_layout(x, order)
    return np.ravel(x) if order == "C" else np.ravel(x, order)  # Dask: no order argument


def flatten(x, order="C"):
    _check_layout(x, order)
    return x.flatten() if order == "C" else x.flatten(order)


def ravel_grad(g, out, x, order="C"):
    # ravel(x, 'F') is the C-order ravel of x.T; 'A' and 'K' are C order (see above).
    shape = np.shape(x)
    return g.reshape(shape[::-1]).T if order == "F" else g.reshape(shape)


def ravel_jvp(ts, out, x, order="C"):
    t = ts[0]
    return None if t is None else (t.T if order == "F" else t).reshape(-1)


# ----------------------------------------------------------------- repeat, tile


def _axis_view(x, axis):
    """(working shape, axis): ``x`` itself, or its ravel when ``axis`` is None."""
    if axis is None:
        return (int(np.prod(np.shape(x))),), 0
    shape = np.shape(x)
    return shape, axis % len(shape)


def repeat_grad(g, out, x, repeats, axis=None):
    shape, ax = _axis_view(x, axis)
    n = shape[ax]
    if np.size(repeats) == 1:   # each element copied r times in a row: sum the copies
        r = int(np.reshape(repeats, -1)[0])
        gx = g.reshape(shape[:ax] + (n, r) + shape[ax + 1:]).sum(axis=ax + 1)
    else:
        index = _slice_along(ax, len(shape), np.repeat(np.arange(n), repeats))
        gx = scatter_add(g, shape, index)
    return gx.reshape(np.shape(x))


def tile_grad(g, out, x, reps):
    reps = (reps,) if np.ndim(reps) == 0 else tuple(reps)
    shape, reps = _padded_shapes(np.shape(x), reps)
    copies = tuple(range(0, 2 * len(shape), 2))
    return g.reshape(_interleave(reps, shape)).sum(axis=copies).reshape(np.shape(x))


# ----------------------------------------------------------------- pad

_PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")


def _pairs(pad_width, ndim):
    """``pad_width`` in any of NumPy's forms as ``ndim`` (before, after) pairs."""
    return np.broadcast_to(np.asarray(pad_width, dtype=np.intp), (ndim, 2))


def pad(x, pad_width, mode="constant", constant_values=0, reflect_type="even"):
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not supported; use one of {_PAD_MODES}")
    if reflect_type != "even":
        raise ValueError("pad: only reflect_type='even' is supported")
    if mode == "constant":
        return np.pad(x, pad_width, mode, constant_values=constant_values)
    if not np.all(np.equal(constant_values, 0)):
        raise ValueError(f"pad: constant_values does not apply to mode {mode!r}")
    return np.pad(x, pad_width, mode)


def pad_grad(g, out, x, pad_width, mode="constant", constant_values=0, reflect_type="even"):
    shape = np.shape(x)
    if mode == "constant":   # the padding is constant: cut the input's block back out
        return g[tuple(slice(b, b + n) for (b, _), n in zip(_pairs(pad_width, len(shape)),
                                                              shape, strict=True))]
    # Each output element reads one input element: pad the input's flat indices the same
    # way to learn which, and scatter the gradient back (edge elements collect many).
    source = np.pad(np.arange(int(np.prod(shape))).reshape(shape), pad_width, mode)
    return scatter_add(g, (int(np.prod(shape)),), source).reshape(shape)


def pad_jvp(ts, out, x, pad_width, mode="constant", constant_values=0, reflect_type="even"):
    t = ts[0]
    return None if t is None else np.pad(t, pad_width, mode)  # constant: zeros around


# ----------------------------------------------------------------- roll, flip, rot90, axes


def _negate(shift):
    return tuple(-s for s in shift) if isinstance(shift, (tuple, list)) else -shift


def _rollaxis_perm(ndim, axis, start=0):
    """The axes permutation ``np.rollaxis`` applies (its documented algorithm)."""
    axis %= ndim
    start = start + ndim if start < 0 else start
    if axis < start:
        start -= 1
    axes = [a for a in range(ndim) if a != axis]
    axes.insert(start, axis)
    return axes


def flip_grad(g, out, x, axis=None):
    return np.flip(g, axis)


def rollaxis_grad(g, out, x, axis, start=0):
    return np.transpose(g, tuple(np.argsort(_rollaxis_perm(np.ndim(x), axis, start))))


# ----------------------------------------------------------------- stacking helpers


# The shapes NumPy lifts inputs to before joining them (as atleast_Nd, column_stack do).
def _lift1(shape):
    return {0: (1,)}.get(len(shape), shape)


def _lift2(shape):
    return {0: (1, 1), 1: (1, *shape)}.get(len(shape), shape)


def _lift3(shape):
    return {0: (1, 1, 1), 1: (1, *shape, 1), 2: (*shape, 1)}.get(len(shape), shape)


def _column(shape):
    return {0: (1, 1), 1: (*shape, 1)}.get(len(shape), shape)


def _cut(g, xs, lifted, axis):
    """The pieces of ``g`` along ``axis`` from each lifted input, in the input's shape."""
    pieces = []
    start = 0
    for x in xs:
        n = lifted(np.shape(x))[axis]
        piece = g[_slice_along(axis, np.ndim(g), slice(start, start + n))]
        pieces.append(piece.reshape(np.shape(x)))
        start += n
    return tuple(pieces)


def hstack_grad(g, out, *xs, **params):
    return _cut(g, xs, _lift1, 0 if np.ndim(xs[0]) <= 1 else 1)


def vstack_grad(g, out, *xs, **params):
    return _cut(g, xs, _lift2, 0)


def _joining(fn, xs, dtype, casting):
    """``fn(xs)``, with NumPy's dtype/casting only when given (Dask's takes neither)."""
    if dtype is None and casting == "same_kind":
        return fn(xs)
    return fn(xs, dtype=dtype, casting=casting)


def dstack_grad(g, out, *xs):
    return _cut(g, xs, _lift3, 2)


def column_stack_grad(g, out, *xs):
    return _cut(g, xs, _column, 1)


def append_grad(g, out, arr, values, axis=None):
    if axis is None:
        n = int(np.prod(np.shape(arr)))
        return g[:n].reshape(np.shape(arr)), g[n:].reshape(np.shape(values))
    n = np.shape(arr)[axis]
    nd = np.ndim(g)
    return g[_slice_along(axis, nd, slice(None, n))], g[_slice_along(axis, nd, slice(n, None))]


def append_jvp(ts, out, arr, values, axis=None):
    if ts[0] is None and ts[1] is None:
        return None
    return np.append(*_zeros_for(ts, out, (arr, values)), axis=axis)


# ----------------------------------------------------------------- triangles, diag, kron


def diag_grad(g, out, v, k=0):
    if np.ndim(v) == 1:
        return np.diag(g, k)
    n = np.shape(g)[0]
    rows, cols = np.arange(n) + max(-k, 0), np.arange(n) + max(k, 0)
    return scatter_add(g, np.shape(v), (rows, cols))


def _kron_grad(g, x, other, x_first):
    """Gradient of ``kron`` for the factor ``x``: with ``out`` viewed as an outer product
    of interleaved axes, sum ``g * other`` over ``other``'s axes."""
    sx, so = _padded_shapes(np.shape(x), np.shape(other))
    ones = (1,) * len(sx)
    if x_first:
        blocks, spread, axes = _interleave(sx, so), _interleave(ones, so), 1
    else:
        blocks, spread, axes = _interleave(so, sx), _interleave(so, ones), 0
    summed = tuple(range(axes, 2 * len(sx), 2))
    return np.sum(g.reshape(blocks) * np.reshape(other, spread), axis=summed) \
        .reshape(np.shape(x))


def kron_jvp(ts, out, a, b):
    ta, tb = ts
    return _jvp.plus(None if ta is None else np.kron(ta, b), None if tb is None else np.kron(a, tb))


# ----------------------------------------------------------------- take, select, full


def take(a, indices, axis=None, mode="raise"):
    if mode == "raise" and hasattr(a, "__dask_graph__"):  # Dask's take: no mode, an axis
        return np.take(np.ravel(a) if axis is None else a, _plain_index(indices),
                       axis=0 if axis is None else axis)
    return np.take(a, _plain_index(indices), axis=axis, mode=mode)


def take_grad(g, out, a, indices, axis=None, mode="raise"):
    shape, ax = _axis_view(a, axis)
    n = shape[ax]
    idx = np.asarray(_plain_index(indices))
    idx = np.clip(idx, 0, n - 1) if mode == "clip" else idx % n
    return scatter_add(g, shape, _slice_along(ax, len(shape), idx)).reshape(np.shape(a))


def _conditions(condlist):
    return [np.asarray(_plain_index(c), dtype=bool) for c in condlist]


def select(xs, condlist):
    conds = _conditions(condlist)
    if len(xs) not in (len(conds), len(conds) + 1):
        raise ValueError(f"select: got {len(conds)} conditions and {len(xs)} choices; pass "
                         "one choice per condition, and optionally a default last")
    default = xs[len(conds)] if len(xs) > len(conds) else 0
    return np.select(conds, list(xs[:len(conds)]), default)


def select_grad(g, out, *xs, condlist):
    taken = np.zeros((), dtype=bool)
    grads = []
    for c in _conditions(condlist):
        grads.append(np.where(c & ~taken, g, 0.0))   # the first true condition wins
        taken = taken | c
    if len(xs) > len(grads):
        grads.append(np.where(taken, 0.0, g))
    return tuple(grads)


def _shape_of(shape):
    """``full``'s shape input, which reaches the forward as an int or an int array."""
    return shape.tolist() if isinstance(shape, np.ndarray) else shape


def full(shape, fill_value, dtype=None, order="C", device=None):
    return np.full(_shape_of(shape), fill_value, dtype=dtype, order=order, device=device)


def full_jvp(ts, out, shape, fill_value, dtype=None, order="C", device=None):
    t = ts[1]
    return None if t is None else _full(shape, t, dtype=dtype, order=order)


# ----------------------------------------------------------------- samples


def _r(rng, *shape):
    return rng.standard_normal(shape)


def _squeeze_samples(rng):
    x = _r(rng, 1, 3, 1, 2)
    return [((x,), {}), ((x,), {"axis": 0}), ((x,), {"axis": (0, -2)}), ((_r(rng, 1, 1),), {})]


def _expand_samples(rng):
    x = _r(rng, 2, 3)
    return [((x,), {"axis": 0}), ((x,), {"axis": -1}), ((x,), {"axis": (0, 3)}),
            ((_r(rng),), {"axis": 0})]


def _ravel_samples(rng):
    x = _r(rng, 2, 3, 2)
    return [((x,), {}), ((x,), {"order": "F"}), ((x,), {"order": "A"}), ((x,), {"order": "K"})]


def _repeat_samples(rng):
    x = _r(rng, 2, 3)
    return [((x,), {"repeats": 2}), ((x,), {"repeats": 3, "axis": 1}),
            ((x,), {"repeats": [1, 0, 2], "axis": -1}), ((x,), {"repeats": [2]}),
            ((x,), {"repeats": [2, 1, 1, 0, 1, 3]}), ((_r(rng),), {"repeats": 3})]


def _tile_samples(rng):
    x = _r(rng, 2, 3)
    return [((x,), {"reps": 2}), ((x,), {"reps": (2, 1)}), ((x,), {"reps": (2, 1, 2)}),
            ((_r(rng, 2, 1, 2),), {"reps": (3, 1)}), ((_r(rng),), {"reps": (2, 2)})]


def _pad_samples(rng):
    x = _r(rng, 3, 4)
    return [((x,), {"pad_width": 1}), ((x,), {"pad_width": (1, 2)}),
            ((x,), {"pad_width": ((0, 1), (2, 0)), "constant_values": 0.5}),
            ((x,), {"pad_width": [[1], [2]], "mode": "edge"}),
            ((x,), {"pad_width": ((2,),), "mode": "reflect"}),
            ((x,), {"pad_width": (3, 5), "mode": "reflect"}),      # wider than the array
            ((x,), {"pad_width": ((1, 4), (2, 0)), "mode": "symmetric"}),
            ((x,), {"pad_width": np.array([[4, 1], [5, 2]]), "mode": "wrap"}),
            ((_r(rng, 4),), {"pad_width": (2, 1), "mode": "edge"})]


def _roll_samples(rng):
    x = _r(rng, 3, 4)
    return [((x,), {"shift": 2}), ((x,), {"shift": -1, "axis": 1}),
            ((x,), {"shift": (1, 2), "axis": (0, 1)}), ((x,), {"shift": 5, "axis": (0, 1)})]


def _flip_samples(rng):
    x = _r(rng, 2, 3, 2)
    return [((x,), {}), ((x,), {"axis": 1}), ((x,), {"axis": (0, -1)})]


def _matrix_samples(rng):
    return [((_r(rng, 3, 4),), {}), ((_r(rng, 2, 3, 2),), {})]


def _vector_samples(rng):
    return [((_r(rng, 3),), {}), ((_r(rng, 3, 4),), {})]


def _rot90_samples(rng):
    x = _r(rng, 2, 3, 4)
    return [((x,), {}), ((x,), {"k": 2}), ((x,), {"k": -1, "axes": (1, 2)}),
            ((x,), {"k": 3, "axes": (2, 0)})]


def _moveaxis_samples(rng):
    x = _r(rng, 2, 3, 4)
    return [((x,), {"source": 0, "destination": -1}),
            ((x,), {"source": (0, 1), "destination": (2, 0)})]


def _rollaxis_samples(rng):
    x = _r(rng, 2, 3, 4)
    return [((x,), {"axis": 2}), ((x,), {"axis": 0, "start": 3}),
            ((x,), {"axis": -1, "start": 1}), ((x,), {"axis": 1, "start": -3})]


def _hstack_samples(rng):
    return [(([_r(rng, 3), _r(rng, 2), _r(rng)],), {}),
            (([_r(rng, 2, 1), _r(rng, 2, 3)],), {}),
            (([_r(rng, 2, 2, 1), _r(rng, 2, 1, 1)],), {})]


def _vstack_samples(rng):
    return [(([_r(rng, 3), _r(rng, 2, 3)],), {}), (([_r(rng), _r(rng)],), {}),
            (([_r(rng, 1, 2, 2), _r(rng, 2, 2, 2)],), {})]


def _dstack_samples(rng):
    return [(([_r(rng, 3), _r(rng, 3)],), {}), (([_r(rng, 2, 3), _r(rng, 2, 3, 2)],), {}),
            (([_r(rng), _r(rng)],), {})]


def _column_stack_samples(rng):
    return [(([_r(rng, 3), _r(rng, 3, 2)],), {}), (([_r(rng), _r(rng, 1, 2)],), {})]


def _append_samples(rng):
    return [((_r(rng, 2, 3), _r(rng, 4)), {}), ((_r(rng, 2, 3), _r(rng, 1, 3)), {"axis": 0}),
            ((_r(rng, 2, 3), _r(rng, 2, 2)), {"axis": -1}), ((_r(rng, 3), _r(rng)), {})]


def _atleast_samples(rng):
    return [((_r(rng),), {}), ((_r(rng, 3),), {}), ((_r(rng, 2, 3),), {}),
            ((_r(rng, 2, 1, 2, 1),), {})]


def _tri_samples(rng):
    x = _r(rng, 4, 3)
    return [((x,), {}), ((x,), {"k": 1}), ((x,), {"k": -2}), ((_r(rng, 2, 3, 3),), {"k": 0}),
            ((_r(rng, 3),), {})]


def _diag_samples(rng):
    return [((_r(rng, 3),), {}), ((_r(rng, 3),), {"k": 2}), ((_r(rng, 2),), {"k": -1}),
            ((_r(rng, 3, 4),), {}), ((_r(rng, 3, 4),), {"k": 2}), ((_r(rng, 4, 3),), {"k": -1})]


def _kron_samples(rng):
    return [((_r(rng, 2, 3), _r(rng, 2, 2)), {}), ((_r(rng, 3), _r(rng, 2, 2)), {}),
            ((_r(rng, 2, 1, 2), _r(rng, 3)), {}), ((_r(rng), _r(rng, 3)), {})]


def _take_samples(rng):
    x = _r(rng, 3, 4)
    return [((x,), {"indices": np.array([0, 5, 5, 11])}),                  # flat
            ((x,), {"indices": np.array([[3, 0], [3, 3]]), "axis": 1}),   # repeats accumulate
            ((x,), {"indices": 2, "axis": 0}),
            ((x,), {"indices": [-1, 0, -1], "axis": -2}),
            ((x,), {"indices": [5, -3], "axis": 1, "mode": "wrap"}),
            ((x,), {"indices": [7, -2, 1], "axis": 0, "mode": "clip"})]


def _select_samples(rng):
    c1, c2 = _r(rng, 3, 4) > 0, _r(rng, 4) > 0.3
    return [(([_r(rng, 3, 4), _r(rng, 3, 4)],), {"condlist": [c1, c2]}),
            (([_r(rng, 3, 4), _r(rng, 4), _r(rng, 1, 4)],), {"condlist": [c1, c2]}),
            (([_r(rng, 3, 4), _r(rng)],), {"condlist": [c2]})]


def _full_samples(rng):
    return [(((2, 3), _r(rng)), {}), ((4, _r(rng)), {}), (((2, 3), _r(rng, 3)), {}),
            (((3, 2), _r(rng, 3, 1)), {"order": "F"}), (((), _r(rng)), {})]


# ----------------------------------------------------------------- the ops


def _atleast(op, *arys):
    """``np.atleast_Nd``: one array, or a tuple for several (as NumPy)."""
    outs = tuple(op(a) for a in arys)
    return outs[0] if len(outs) == 1 else outs


def _shape_op(name, forward, params, samples, doc, vjp=_unshape, method=False,
              implements=None, view=False):
    """A one-input op linear in its input, its jvp the op applied to the tangent;
    ``view``: its forward may return a view of its input (``OpDef.traits``)."""
    return OpDef(name, forward, vjp, jvp=_jvp.linear(forward), params=params, nargs=1,
                 method=method, implements=(getattr(np, name),) if implements is None
                 else implements, samples=samples, doc=doc, complex=True,
                 traits=("view",) if view else ())


@hookimpl
def tapegrad_ops():
    return [
        # -- squeeze, expand, ravel
        _shape_op("squeeze", np.squeeze, {"axis": None}, _squeeze_samples,
                  "drop axes of length one", method=True, view=True),
        _shape_op("expand_dims", np.expand_dims, {"axis": None}, _expand_samples,
                  "insert axes of length one", view=True),
        OpDef("ravel", ravel, ravel_grad, jvp=ravel_jvp, params={"order": "C"}, nargs=1,
              method=True, implements=(np.ravel,), samples=_ravel_samples,
              complex=True, traits=("view",),
              doc="the elements as a 1-D array, in the given order"),
        OpDef("flatten", flatten, ravel_grad, jvp=ravel_jvp, params={"order": "C"}, nargs=1,
              method=True, samples=_ravel_samples,
              complex=True, doc="the elements as a 1-D array (ndarray.flatten)"),
        _shape_op("atleast_1d", np.atleast_1d, {}, _atleast_samples,
                  "view with at least one dimension (np.atleast_1d: each argument)",
                  implements=((np.atleast_1d, _atleast),), view=True),
        _shape_op("atleast_2d", np.atleast_2d, {}, _atleast_samples,
                  "view with at least two dimensions (np.atleast_2d: each argument)",
                  implements=((np.atleast_2d, _atleast),), view=True),
        _shape_op("atleast_3d", np.atleast_3d, {}, _atleast_samples,
                  "view with at least three dimensions (np.atleast_3d: each argument)",
                  implements=((np.atleast_3d, _atleast),), view=True),
        # -- copies
        _shape_op("repeat", np.repeat, {"repeats": None, "axis": None}, _repeat_samples,
                  "repeat each element (the gradient sums the copies)", vjp=repeat_grad,
                  method=True),
        _shape_op("tile", np.tile, {"reps": None}, _tile_samples,
                  "the array repeated reps times (the gradient sums the tiles)",
                  vjp=tile_grad),
        OpDef("pad", pad, pad_grad, jvp=pad_jvp, nargs=1,
              params={"pad_width": None, "mode": "constant", "constant_values": 0,
                      "reflect_type": "even"},
              implements=(np.pad,), samples=_pad_samples,
              complex=True, doc="pad with constants, edge values, reflections or wrapping"),
        # -- permutations
        _shape_op("roll", np.roll, {"shift": None, "axis": None}, _roll_samples,
                  "shift elements cyclically",
                  vjp=lambda g, out, x, shift, axis=None: np.roll(g, _negate(shift), axis)),
        _shape_op("flip", np.flip, {"axis": None}, _flip_samples,
                  "reverse the order of elements along axes", vjp=flip_grad),
        _shape_op("fliplr", np.fliplr, {}, _matrix_samples, "reverse axis 1",
                  vjp=lambda g, out, x: np.fliplr(g)),
        _shape_op("flipud", np.flipud, {}, _vector_samples, "reverse axis 0",
                  vjp=lambda g, out, x: np.flipud(g)),
        _shape_op("rot90", np.rot90, {"k": 1, "axes": (0, 1)}, _rot90_samples,
                  "rotate by 90 degrees k times in the plane of two axes",
                  vjp=lambda g, out, x, k=1, axes=(0, 1): np.rot90(g, -k, axes)),
        _shape_op("moveaxis", np.moveaxis, {"source": None, "destination": None},
                  _moveaxis_samples, "move axes to new positions", view=True,
                  vjp=lambda g, out, x, source, destination: np.moveaxis(g, destination,
                                                                         source)),
        _shape_op("rollaxis", np.rollaxis, {"axis": None, "start": 0}, _rollaxis_samples,
                  "roll an axis back to a position", vjp=rollaxis_grad),
        # -- triangles, diagonals, products
        _shape_op("triu", np.triu, {"k": 0}, _tri_samples,
                  "zero the elements below the k-th diagonal",
                  vjp=lambda g, out, x, k=0: np.triu(g, k)),
        _shape_op("tril", np.tril, {"k": 0}, _tri_samples,
                  "zero the elements above the k-th diagonal",
                  vjp=lambda g, out, x, k=0: np.tril(g, k)),
        _shape_op("diag", np.diag, {"k": 0}, _diag_samples,
                  "1-D: a matrix with it on the k-th diagonal; 2-D: its k-th diagonal",
                  vjp=diag_grad),
        OpDef("kron", np.kron,
              (lambda g, out, a, b: _kron_grad(g, a, b, True),
               lambda g, out, a, b: _kron_grad(g, b, a, False)),
              jvp=kron_jvp, nargs=2, params={}, implements=(np.kron,), samples=_kron_samples,
              complex=True, lazy=False, doc="Kronecker product"),
        # -- joining
        OpDef("hstack", lambda xs, dtype=None, casting="same_kind":
              _joining(np.hstack, xs, dtype, casting),
              hstack_grad, jvp=_joined(np.hstack), variadic=True,
              params={"dtype": None, "casting": "same_kind"}, implements=(np.hstack,),
              samples=_hstack_samples, complex=True,
              doc="join along axis 1 (axis 0 for 1-D inputs)"),
        OpDef("vstack", lambda xs, dtype=None, casting="same_kind":
              _joining(np.vstack, xs, dtype, casting),
              vstack_grad, jvp=_joined(np.vstack), variadic=True,
              params={"dtype": None, "casting": "same_kind"}, implements=(np.vstack,),
              samples=_vstack_samples, complex=True, doc="join along axis 0, 1-D inputs as rows"),
        OpDef("dstack", lambda xs: np.dstack(xs), dstack_grad, jvp=_joined(np.dstack),
              variadic=True, params={}, implements=(np.dstack,), samples=_dstack_samples,
              complex=True, doc="join along axis 2, inputs lifted to 3-D"),
        OpDef("column_stack", lambda xs: np.column_stack(xs), column_stack_grad,
              jvp=_joined(np.column_stack), variadic=True, params={},
              implements=(np.column_stack,), samples=_column_stack_samples,
              complex=True, lazy=False, doc="join as columns, 1-D inputs as columns"),
        OpDef("append", np.append, append_grad, jvp=append_jvp, nargs=2,
              params={"axis": None}, implements=(np.append,), samples=_append_samples,
              complex=True, doc="values appended to arr (both raveled when axis is None)"),
        # -- selection and filling
        OpDef("take", take, take_grad, jvp=_jvp.linear(np.take), nargs=1,
              params={"indices": None, "axis": None, "mode": "raise"},
              method=True, implements=(np.take,), samples=_take_samples,
              complex=True,
              doc="elements at indices along an axis (repeated indices accumulate)"),
        OpDef("select", select, select_grad, jvp=_joined(_select), variadic=True,
              params={"condlist": None}, samples=_select_samples,
              implements=((np.select, lambda op, condlist, choicelist, default=0:
                           op([*choicelist, default], condlist=condlist)),),
              complex=True,
              lazy=False, doc="select(choicelist [+ default], condlist=): the choice of the "
                                "first true condition (conditions get no gradient)"),
        OpDef("full", full, (None, lambda g, out, shape, fill_value, **p: g),
              jvp=full_jvp, nargs=2, nondiff=(0,),
              params={"dtype": None, "order": "C", "device": None},
              implements=(np.full,), samples=_full_samples,
              complex=True,
              lazy=False,
              doc="an array of a shape filled with fill_value (its gradient is the sum)"),
    ]
