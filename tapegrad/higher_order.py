"""Vjps on Tensors: the backward pass recorded, so that it can be differentiated again.

With ``create_graph=True`` the replay (``backward.py``) hands each record here: its
saved values, output and upstream gradient become Tensors wired to the graph
(``wire``), and the vjp runs on them, so what it computes is recorded. Forward mode
(``forward_mode.py``) calls vjps the same way, through :func:`strict_vjp`. While a vjp
runs on Tensors, converting a tracked Tensor to NumPy is an error: it would drop a
gradient. The helpers every vjp call shares live here too: :func:`apply_vjp` (one rule
for all inputs, or one per input) and :func:`as_gradients` (one gradient per input,
checked), which the plain replay and ``tg.compile``'s rule steps call as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .entry import Part, Record
from .errors import DifferentiabilityError, OpRuleError
from .lazy import foreign
from .state import STATE

ndarray = np.ndarray
Wire = Callable[[Any, Any], Any]


def apply_vjp(vjp: Any, parents: list, g: Any, out: Any, inputs: list, params: dict) -> Any:
    """Call a vjp: one function for all inputs, or one per input (only those needed)."""
    if type(vjp) is not tuple:
        return vjp(g, out, *inputs, **params)
    return [None if parents[i] is None or vjp[i] is None else
            vjp[i](g, out, *inputs, **params) for i in range(len(vjp))]


def recorded_vjp(rec: Record, g: Any, saved: tuple, wire: Wire) -> tuple:
    """The vjp on Tensors wired to the graph, so that what it computes is recorded."""
    trace = STATE.thread.trace
    if trace is not None and not STATE.thread.grad_enabled:
        # tg.compile tracing a backward nothing records: it may take the vjp as one step
        res = trace.vjp(rec, g, saved)
        if res is not None:
            return res
    # While tg.compile traces, untracked saved arrays are wired too (as constants): what
    # the vjp computes from them (a one-hot of labels) must be recorded, not plain NumPy.
    traced = trace is not None
    inputs = tuple(wire(x, n) if (n is not None or traced and type(x) is ndarray)
                   and hasattr(x, "dtype") else x
                   for x, n in zip(saved, rec.parents, strict=True))
    out = (tuple(wire(o, Part(rec, k)) for k, o in enumerate(rec.out))
           if type(rec.out) is tuple else wire(rec.out, rec))
    if type(g) is tuple:  # (a plain array: the zeros of an output nothing used, a constant)
        g = tuple(x if type(x) is ndarray else _as_tensor(x, wire) for x in g)
    else:
        g = _as_tensor(g, wire)
    res = strict_vjp(rec, rec.parents, g, out, inputs, "cannot be differentiated twice")
    return tuple(_recorded_result(r, n, rec, wire)
                 for r, n in zip(res, rec.parents, strict=True))


def strict_vjp(rec: Record, mask: tuple, g: Any, out: Any, inputs: tuple, why: str) -> tuple:
    """Call ``rec``'s vjp on Tensors, refusing conversions to NumPy (they would drop a
    gradient); ``why`` completes the error that names the op."""
    op = rec.op
    STATE.thread.strict += 1
    try:
        res = apply_vjp(op.definition.vjp, mask, g, out, inputs, rec.params)
    except DifferentiabilityError as exc:
        raise DifferentiabilityError(f"op {op.name!r} (from {op.source}) {why}: {exc}") \
            from exc
    except OpRuleError:
        raise
    except Exception as exc:
        raise OpRuleError(f"op {op.name!r} (from {op.source}): vjp raised "
                          f"{type(exc).__name__}: {exc}") from exc
    finally:
        STATE.thread.strict -= 1
    return as_gradients(res, rec)


def _as_tensor(x: Any, wire: Wire) -> Any:
    return x if hasattr(x, "_node") else wire(x if foreign(x) else np.asarray(x), None)


def _recorded_result(r: Any, node: Any, rec: Record, wire: Wire) -> Any:
    if r is None or node is None or hasattr(r, "_node"):
        return r
    if isinstance(r, (ndarray, np.generic, int, float)) and not np.any(r):
        return wire(np.asarray(r), None)  # a zero gradient: a constant is exact
    op = rec.op
    raise DifferentiabilityError(
        f"op {op.name!r} (from {op.source}) cannot be differentiated twice: its vjp "
        "returned a plain array under create_graph=True. Write the vjp with operators, "
        "NumPy functions and array methods (they record on Tensors) instead of "
        "converting to NumPy")


def as_gradients(res: Any, rec: Record) -> Any:
    """The vjp's result as a sequence of one gradient per input (checked)."""
    n = len(rec.parents)
    if type(res) is tuple and len(res) == n:
        return res
    if type(res) is not tuple and type(res) is not list:
        if n != 1:
            raise OpRuleError(
                f"op {rec.op.name!r} (from {rec.op.source}): vjp returned a "
                f"{type(res).__name__}, expected a tuple of {n} gradients (one per input, "
                "None for an input without one)")
        return (res,)
    if len(res) != n:
        raise OpRuleError(
            f"op {rec.op.name!r} (from {rec.op.source}): vjp returned {len(res)} gradients "
            f"for {n} inputs; return one per input (None where there is none)")
    return res
