"""Reductions: sum, mean, max, min over an axis, a tuple of axes, or everything.

The vjps put the reduced axes back (``keepdims``) and broadcast the upstream gradient
to the input's shape. max and min split the gradient evenly between tied elements, as
HIPS autograd and PyTorch's full reductions do.
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef

from . import _jvp

REDUCE_PARAMS = {"axis": None, "keepdims": False}


def _axes(ndim, axis):
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim if ndim else a for a in axes)


def _kept(g, ndim, axis, keepdims):
    """``g`` with the reduced axes put back as length-1 axes."""
    if keepdims:
        return g
    shape = list(g.shape)
    for a in sorted(_axes(ndim, axis)):
        shape.insert(a, 1)
    return g.reshape(tuple(shape))


def _known(shape):
    """``shape``, refusing unknown (NaN) sizes: Dask's broadcast_to takes them and fails
    only when computed (the engine turns this error into one naming the op)."""
    for s in shape:
        if s != s:
            raise ValueError(f"the input's shape {shape} has unknown (NaN) sizes")
    return shape


def sum_grad(g, out, x, axis=None, keepdims=False):
    return np.broadcast_to(_kept(g, x.ndim, axis, keepdims), _known(x.shape))


def mean_grad(g, out, x, axis=None, keepdims=False):
    count = 1
    for a in _axes(x.ndim, axis):
        count *= x.shape[a]
    return np.broadcast_to(_kept(g, x.ndim, axis, keepdims) / count, _known(x.shape))


def _extremum_share(out, x, axis, keepdims):
    """Each element's share of the max (min): ties split evenly. A plain bool mask over
    a count: not differentiated."""
    hit = x == _kept(out, x.ndim, axis, keepdims)
    return hit / hit.sum(axis=axis, keepdims=True)


def extremum_grad(g, out, x, axis=None, keepdims=False):
    return _kept(g, x.ndim, axis, keepdims) * _extremum_share(out, x, axis, keepdims)


def extremum_jvp(ts, out, x, axis=None, keepdims=False):
    return np.sum(ts[0] * _extremum_share(out, x, axis, keepdims), axis=axis,
                  keepdims=keepdims)


def _reduce_samples(rng):
    # No ties: at a tie max/min have a kink (their even split is tested on its own).
    x = rng.standard_normal((3, 4, 2))
    return [((x,), {}), ((x,), {"axis": 1}), ((x,), {"axis": (0, 2)}),
            ((x,), {"axis": -1, "keepdims": True}), ((x,), {"keepdims": True}),
            ((rng.standard_normal(()),), {})]


@hookimpl
def tapegrad_ops():
    return [
        OpDef("sum", np.sum, sum_grad, jvp=_jvp.linear(np.sum), params=REDUCE_PARAMS,
              save_inputs="shape",
             method=True, implements=(np.sum,),
              samples=_reduce_samples, complex=True, doc="sum over axis (all axes by default)"),
        OpDef("mean", np.mean, mean_grad, jvp=_jvp.linear(np.mean), params=REDUCE_PARAMS,
              save_inputs="shape",
             method=True, implements=(np.mean,),
              samples=_reduce_samples, complex=True, doc="mean over axis (all axes by default)"),
        OpDef("max", np.max, extremum_grad, jvp=extremum_jvp, params=REDUCE_PARAMS, method=True,
              implements=(np.max, np.amax), samples=_reduce_samples,
              doc="maximum over axis; ties share the gradient evenly"),
        OpDef("min", np.min, extremum_grad, jvp=extremum_jvp, params=REDUCE_PARAMS, method=True,
              implements=(np.min, np.amin), samples=_reduce_samples,
              doc="minimum over axis; ties share the gradient evenly"),
    ]
