"""The reverse replay: the one place where gradients are computed and routed.

Records are replayed from the most recent to the oldest (a heap keyed by call order),
each once, when every gradient that can reach it has arrived::

    for each record, newest first:
        g      = the gradient summed at the record (one per output)
        grads  = the op's vjp(g, out, *saved, **params)      # call_vjp
        for each input node:                                 # route
            fit the gradient to the input (sum broadcast axes, cast dtype)
            add it to the node's gradient
        release the record (unless retain_graph)

Everything every op would otherwise repeat happens here, once: skipping inputs that
need no gradient, unbroadcasting, casting, adding up fan-out, tensor hooks, checking
what a vjp returns (naming the op and its plugin when it breaks the contract), and
freeing what was consumed. With ``create_graph=True`` the vjps get Tensors instead of
arrays, so what they compute is itself recorded (``higher_order.py``). Seeds, leaf
gradients and the complex convention users see are ``leaves.py``'s.
"""

from __future__ import annotations

import weakref
from heapq import heappop, heappush
from typing import Any

import numpy as np

from .anomaly import check_finite
from .entry import Node, Part, Record
from .errors import DifferentiabilityError, GraphError, OpRuleError
from .fitting import call_shapes, fit
from .higher_order import Wire, as_gradients, recorded_vjp
from .lazy import unknown_call_error
from .leaves import run_hooks
from .state import STATE

ndarray = np.ndarray

_interrupted: weakref.WeakSet = weakref.WeakSet()


# ----------------------------------------------------------------------- the replay


def replay(grads: dict, retain: bool, wire: Wire | None = None, within: set | None = None,
           keep: set | None = None, record: bool = True) -> dict:
    """Run the vjps of every record reachable from the nodes in ``grads``, newest first.

    ``grads`` maps nodes to their gradient (the seeds); the nodes left in it when the
    replay ends (leaves, and records outside ``within``) are returned with their
    gradients. ``wire`` is given for ``create_graph``: it makes Tensors of saved values,
    and the vjps' work on them is recorded (unless ``record`` is false: ``tg.compile``
    tracing a backward nothing differentiates again).
    ``within`` restricts the replay to the records of an explicit ``tg.Tape``; the
    gradients that reach records in ``keep`` are returned too (tape sources that are
    not leaves).
    """
    heap = [(-n.seq, n) for n in grads if type(n) is Record and _inside(n, within)]
    for p in [n for n in grads if type(n) is Part]:
        _route(grads, heap, p, grads.pop(p), within)
    roots = [n for _, n in heap]
    kept: dict = {}
    prev_enabled = STATE.thread.grad_enabled
    if wire is not None:
        STATE.thread.grad_enabled = record  # create_graph: the vjps' work is recorded
    try:
        _run(grads, heap, retain, wire, within, keep, kept)
    except BaseException:
        _interrupted.update(roots)
        raise
    finally:
        STATE.thread.grad_enabled = prev_enabled
    grads.update(kept)
    return grads


def _run(grads: dict, heap: list, retain: bool, wire: Wire | None, within: set | None,
         keep: set | None, kept: dict) -> None:
    """The replay loop: per record, call the vjp, route each gradient, release."""
    # Along a chain the heap and the gradient dict are skipped: a record whose first
    # gradient arrives while nothing else is pending is the next to run, and nothing can
    # add to it any more, so it and its gradient are handed over directly.
    nxt = g_nxt = None
    while nxt is not None or heap:
        if nxt is not None:
            rec, g, nxt = nxt, g_nxt, None
        else:
            rec = heappop(heap)[1]
            g = grads.pop(rec)
        if keep is not None and rec in keep:
            kept[rec] = g
        if rec.hooks:
            g = run_hooks(rec.hooks, g)
        results = call_vjp(rec, g, wire)
        for i, node in enumerate(rec.parents):
            gi = results[i]
            if node is None or gi is None:
                continue
            if type(node) is not Record:
                if nxt is not None and type(node) is Part:  # it may push a record
                    grads[nxt] = g_nxt
                    heappush(heap, (-nxt.seq, nxt))
                    nxt = None
                _route(grads, heap, node, fit(gi, node, rec, i), within)
                continue
            target = node.out  # the common case: a gradient that fits as it is
            if (type(gi) is not ndarray or gi.shape != target.shape
                    or gi.dtype is not target.dtype):
                gi = fit(gi, node, rec, i)
            if node is nxt:  # a second input from the same record (x * x)
                g_nxt = g_nxt + gi
                continue
            old = grads.get(node)
            if old is not None:
                grads[node] = old + gi
            elif within is not None and node not in within:
                grads[node] = gi  # a record outside the tape: its gradient is kept
            elif nxt is None and not heap:
                nxt, g_nxt = node, gi
            else:
                if nxt is not None:
                    grads[nxt] = g_nxt
                    heappush(heap, (-nxt.seq, nxt))
                    nxt = None
                grads[node] = gi
                heappush(heap, (-node.seq, node))
        if not retain:
            rec.release()


def _inside(rec: Record, within: set | None) -> bool:
    return within is None or rec in within


def _route(grads: dict, heap: list, node: Node, g: Any, within: set | None) -> None:
    """Add ``g`` to ``node``'s gradient; a record's first gradient puts it on the heap."""
    if type(node) is Part:
        rec = node.record
        slots = grads.get(rec)
        if slots is None:
            slots = grads[rec] = [None] * len(rec.out)
            if _inside(rec, within):
                heappush(heap, (-rec.seq, rec))
        old = slots[node.index]
        slots[node.index] = g if old is None else old + g
        return
    old = grads.get(node)
    if old is not None:
        grads[node] = old + g
        return
    grads[node] = g
    if type(node) is Record and _inside(node, within):
        heappush(heap, (-node.seq, node))


# ----------------------------------------------------------------------- vjp calls


def call_vjp(rec: Record, g: Any, wire: Wire | None) -> Any:
    """The op's vjp for one record: one gradient (or ``None``) per input."""
    out = rec.out
    if out is None:
        raise _freed_error(rec)
    op = rec.op
    parents = rec.parents
    saved = rec.saved if rec.saved is not None else (None,) * len(parents)
    if type(out) is tuple:
        g = _zero_fill(g, out)
    if wire is not None:
        return recorded_vjp(rec, g, saved, wire)
    vjp = op.definition.vjp
    params = rec.params
    try:
        if type(vjp) is tuple:  # one rule per input, only those needed (apply_vjp, inline)
            res = []
            for i in range(len(parents)):
                f = vjp[i]
                res.append(None if parents[i] is None or f is None else
                           f(g, out, *saved, **params) if params else f(g, out, *saved))
        else:
            res = vjp(g, out, *saved, **params) if params else vjp(g, out, *saved)
            if type(res) is not tuple or len(res) != len(parents):
                res = ((res,) if type(res) is ndarray and len(parents) == 1
                       else as_gradients(res, rec))  # (a one-input vjp may return g itself)
    except (OpRuleError, DifferentiabilityError, FloatingPointError):
        raise
    except Exception as exc:
        raise unknown_call_error(op, call_shapes(rec)) or OpRuleError(
            f"op {op.name!r} (from {op.source}): vjp raised {type(exc).__name__}: "
            f"{exc}") from exc
    if STATE.anomaly:
        for r in res:
            check_finite(op, "vjp", r, rec.site)
    return res


def _zero_fill(g: tuple, out: tuple) -> tuple:
    """One gradient per output of a several-output record: zeros for unused outputs."""
    return tuple(gk if gk is not None else np.zeros(o.shape, o.dtype)
                 if type(o) is ndarray else np.zeros_like(o)
                 for gk, o in zip(g, out, strict=True))


def _freed_error(rec: Record) -> GraphError:
    if any(r is rec for r in _interrupted):
        return GraphError(
            f"this graph's backward was interrupted (at or after op {rec.op.name!r}) and "
            "its records are partly consumed: run the forward again")
    return GraphError(
        f"backward through the graph a second time: op {rec.op.name!r} (record "
        f"#{rec.seq}) already freed its saved values in an earlier backward. Pass "
        "retain_graph=True to the first backward (or use a persistent tape) to "
        "backpropagate more than once")
