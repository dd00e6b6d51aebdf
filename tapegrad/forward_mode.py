"""Forward mode: ``tg.jvp(f, primals, tangents) -> (f(*primals), J @ tangents)``.

``f`` runs once on fresh sources under a private tape; then the recorded entries are
walked in call order (oldest first) and each entry's output tangent is computed from
its inputs' tangents:

* **native**: the op declares ``OpDef(jvp=...)``, called as
  ``jvp(tangents, out, *inputs, **params)`` with ``tangents`` a tuple holding one
  tangent per input (``None`` for a zero tangent), and the same saved ``inputs`` /
  ``out`` its vjp gets (``None`` / shape stand-ins for what the op does not save).
  It returns the output's tangent (the broadcast shape is fine; ``None`` for zero).
* **from the vjp** (every other op): the double-vjp trick. The vjp is linear in its
  cotangent ``u``, ``vjp(u) = J^T u``, so ``d/du <vjp(u), v> = J v``: the vjp is
  called on a tracked ``u`` and differentiated once more. This works for every op
  whose vjp is differentiable (written with operators / NumPy functions / array
  methods); an op whose vjp converts a tracked Tensor to raw NumPy raises
  :class:`~tapegrad.DifferentiabilityError` naming the op.

Ops with native jvps (:func:`native_jvp_ops` lists them at run time): the built-in
Python ops ``add sub mul div neg pow matmul abs`` (arithmetic), ``sum mean max min``
(reductions), ``reshape transpose swapaxes broadcast_to astype getitem scatter_add
concatenate stack where clip`` (shaping; rules in ``tapegrad/builtins/_jvp.py``), and
every YAML op whose spec has a ``jvp`` field. Every other op (e.g. the ``nn_ops`` pack's
softmax / log_softmax / logsumexp / cross-entropies, YAML ops without ``jvp``) uses the
vjp.

Nesting: inside another transform or a recording tape (or with tracked primals or
tangents), the rules run on Tensors wired to the saved values' nodes, so the result
is a Tensor recorded on the outer computation: ``grad`` of ``jvp`` and ``jvp`` of
``grad`` (forward-over-reverse Hessian-vector products) work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import tree
from .anomaly import check_finite
from .compiler import tracer
from .entry import Part, Record
from .errors import DifferentiabilityError, GraphError, OpRuleError, ShapeError, TapegradValueError
from .higher_order import strict_vjp
from .lazy import foreign
from .leaves import conj
from .state import STATE, enable_grad, no_grad
from .tape import Tape
from .tensor import Tensor, wire
from .transforms import finish, float_array, gradient_scope, is_nested, new_leaf, trace

__all__ = ["jvp", "native_jvp_ops"]


def native_jvp_ops() -> list[str]:
    """Names of the registered ops that declare their own forward-mode rule."""
    from .registry import list_ops

    return [info.name for info in list_ops() if info.definition.jvp is not None]


def _as_tuple_arg(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _key(node: Any) -> Any:
    """Where a node's tangent is kept: the node, or (record, k) for output k."""
    return (node.record, node.index) if isinstance(node, Part) else node


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]
        ) -> tuple[Any, Any]:
    """``(f(*primals), tangent_out)``: the Jacobian of ``f`` applied to ``tangents``.

    ``primals`` and ``tangents`` are tuples of the same length (a single non-tuple value
    is taken as a 1-tuple). A primal may be a container (see :mod:`tapegrad.tree`); its
    tangent has the same structure, each leaf its primal leaf's shape (``None``, for a
    leaf or a whole subtree, means zeros). ``f`` may return a Tensor or a structure of
    them; ``tangent_out`` has the output's structure.
    """
    primals = _as_tuple_arg(primals)
    tangents = _as_tuple_arg(tangents)
    if len(primals) != len(tangents):
        raise TapegradValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    nested = is_nested(primals + tangents)
    tr = trace(f, primals, {}, range(len(primals)), nested, True, "jvp")
    nested = tr.nested
    flat: list[Any] = []
    for i, (d, t) in enumerate(zip(tr.trees, tangents, strict=True)):
        flat += tree.flatten_like(d, t, f"jvp: tangent {i}")
    tmap: dict[Any, Any] = {}
    for s, t, label in zip(tr.sources, flat, tr.labels, strict=True):
        if t is None:
            continue
        if isinstance(t, Tensor) and nested:
            tv = t
        else:
            tv = float_array(t, f"jvp: tangent {label}")
            tv = tv.astype(s.dtype, copy=False)
        if tuple(tv.shape) != s.shape:
            raise ShapeError(f"jvp: tangent {label} has shape {tuple(tv.shape)}, its primal "
                             f"has shape {s.shape}")
        tmap[_key(s._node)] = tv
    with gradient_scope(nested):
        for e in tr.tape.entries:
            _push(e, tmap, nested)
    outs, out_def = tree.flatten(tr.out)
    touts = []
    for o in outs:
        t = tmap.get(_key(o._node)) if isinstance(o, Tensor) else None
        if t is None:
            t = np.zeros_like(o._data if isinstance(o, Tensor) else o, dtype=float)
        touts.append(finish(t, nested))
    values = [finish(o, nested) for o in outs]
    return tree.unflatten(out_def, values), tree.unflatten(out_def, touts)


def _saved(e: Record, nested: bool) -> tuple[tuple, Any]:
    """The saved inputs and output of ``e``; wired to their nodes when nested."""
    inputs = e.saved if e.saved is not None else [None] * len(e.parents)
    if not nested:
        return inputs, e.out
    traced = tracer() is not None  # tg.compile: constants are wired too
    inputs = tuple(wire(x, n) if (n is not None or traced and type(x) is np.ndarray)
                   and hasattr(x, "dtype") else x
                   for x, n in zip(inputs, e.parents, strict=True))
    if type(e.out) is tuple:
        return inputs, tuple(wire(o, Part(e, k)) for k, o in enumerate(e.out))
    return inputs, wire(e.out, e)


def _outputs(e: Record) -> list[tuple[Any, Any]]:
    """(key, output array) for each output of ``e``."""
    if type(e.out) is tuple:
        return [((e, k), o) for k, o in enumerate(e.out)]
    return [(e, e.out)]


def _push(e: Record, tmap: dict[Any, Any], nested: bool) -> None:
    """Compute the tangent(s) of ``e``'s output(s) from its inputs' tangents."""
    if e.released:
        raise GraphError(f"jvp: record #{e.seq} ({e.op.name}) was already released by a "
                         "backward pass inside f")
    tans = tuple(None if n is None else tmap.get(_key(n)) for n in e.parents)
    if all(t is None for t in tans):
        return
    op = e.op
    inputs, out = _saved(e, nested)
    rule = op.definition.jvp
    if rule is not None:
        try:
            t = rule(tans, out, *inputs, **e.params)
        except (DifferentiabilityError, OpRuleError):
            raise
        except Exception as exc:
            raise OpRuleError(f"op {op.name!r} (from {op.source}): jvp raised "
                              f"{type(exc).__name__}: {exc}") from exc
    else:
        t = _jvp_from_vjp(e, tans, inputs, out, nested)
    outs = _outputs(e)
    ts = t if len(outs) > 1 else (t,)
    for (key, o), tk in zip(outs, ts, strict=True):
        if tk is None:
            continue
        tk = _fit(tk, o, op)
        if STATE.anomaly:
            check_finite(op, "jvp", tk, e.site)
        tmap[key] = tk


def _fit(t: Any, o: Any, op: Any) -> Any:
    """The tangent in the output's shape and dtype."""
    if not isinstance(t, Tensor) and not foreign(t):
        t = np.asarray(t)
    shape = tuple(o.shape)
    if tuple(t.shape) != shape:
        try:
            ok = np.broadcast_shapes(tuple(t.shape), shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise OpRuleError(f"op {op.name!r} (from {op.source}): jvp returned a "
                              f"tangent of shape {tuple(t.shape)} for an output of shape "
                              f"{shape}")
        t = np.broadcast_to(t, shape)
    if t.dtype != o.dtype:
        t = t.astype(o.dtype)
    return t


def _jvp_from_vjp(e: Record, tans: tuple, inputs: tuple, out: Any, nested: bool) -> Any:
    """``J v`` as the derivative of ``<vjp(u), v>`` with respect to the cotangent ``u``."""
    op = e.op
    mask = tuple(None if t is None else True for t in tans)
    with enable_grad(), Tape() as tape:
        us = [new_leaf(np.zeros(o.shape, o.dtype) if isinstance(o, np.ndarray)
                       else np.zeros_like(o)) for _, o in _outputs(e)]
        res = strict_vjp(e, mask, tuple(us) if len(us) > 1 else us[0], out, inputs,
                         "has no jvp, and forward mode through its vjp needs that vjp "
                         "to be differentiable")
        total = None
        for gi, vi in zip(res, tans, strict=True):
            if gi is None or vi is None:
                continue
            if not (isinstance(gi, Tensor) and gi._node is not None):
                if np.any(gi._data if isinstance(gi, Tensor) else gi):
                    raise DifferentiabilityError(
                        f"op {op.name!r} (from {op.source}) has no jvp, and its vjp "
                        "returned a plain array, so forward mode cannot be derived from "
                        "it. Declare OpDef(jvp=...) or write the vjp with operators and "
                        "NumPy functions (they record on Tensors)")
                continue
            term = (gi * vi).sum()
            total = term if total is None else total + term
    if total is None:
        return None
    if nested:
        ts = tape.gradient(total, us)
    else:
        with no_grad():
            ts = tape.gradient(total, us)
    ts = [conj(t) for t in ts]  # J v itself, not the users' (conjugated) gradient
    return tuple(ts) if len(us) > 1 else ts[0]
