"""The reverse replay: the one place where gradients are computed and routed.

Entries are replayed from the most recent to the oldest. Everything that every op
would otherwise repeat happens here, once: skipping inputs that need no gradient,
summing broadcast gradients back to each input's shape, casting to the input's dtype,
adding up fan-out, running tensor hooks, checking what a vjp returns (naming the op
and its plugin when it breaks the contract), and freeing what was consumed.

With ``create_graph=True`` the same replay hands the vjps Tensors instead of ndarrays,
so everything they compute is itself recorded and can be differentiated again.
"""

from __future__ import annotations

import threading
from heapq import heappop, heappush
from sys import getrefcount
from typing import Any

import numpy as np

from . import graph
from . import tensor as _tensor_module
from .entry import LEAF, RESULT, Entry
from .errors import DifferentiabilityError, OpRuleError
from .graph import state
from .protect import LockingEntry
from .tensor import ENTRY_HOOKS, Tensor, _make

ndarray = np.ndarray

_leaf_lock = threading.Lock()


class ShapeOf:
    """Stands in for an input whose vjp needs only its shape and dtype."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


def node_meta(node: Any) -> tuple[tuple[int, ...], np.dtype]:
    d = node._data
    return d.shape, d.dtype


# ----------------------------------------------------------------------- entry points


def backward(t: Tensor, grad: Any = None, *, retain_graph: bool = False,
             create_graph: bool = False) -> None:
    """``t.backward(...)``: replay ``t``'s graph and accumulate into leaf ``.grad``."""
    node = t._node
    if node is None:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: no input of the "
            "computation had requires_grad=True (or it ran under tg.no_grad())"
        )
    if grad is None and not create_graph and t._data.size == 1:
        seed = np.empty(t._data.shape, t._data.dtype)  # (C calls; np.ones_like is Python)
        seed.fill(1)
    else:
        seed = make_seed(t, grad, create_graph)
    if node is LEAF:
        commit_leaves({t: seed}, create_graph)
    elif node is RESULT:
        grads: dict[Any, Any] = {t: seed}
        replay([(-t.seq, t)], grads, retain_graph or create_graph, create_graph)
        commit_leaves(grads, create_graph)
    # else: a tensor only watched by a tape (or an internal alias): nothing to do


def make_seed(t: Tensor, grad: Any, create_graph: bool) -> Any:
    """The gradient that starts a reverse pass from ``t``."""
    if grad is None:
        if t._data.size != 1:
            raise ValueError(
                f"backward() without a gradient needs a tensor with exactly one element; "
                f"this one has shape {t._data.shape}. Pass grad= of that shape (e.g. "
                "np.ones_like(t._data)) or reduce first (t.sum())"
            )
        seed = np.ones_like(t._data)
    else:
        if isinstance(grad, Tensor):
            if create_graph:
                seed = grad
            else:
                seed = grad._data
        else:
            seed = np.asarray(grad, dtype=t._data.dtype)
        if seed.shape != t._data.shape:
            raise ValueError(
                f"backward(grad=...): grad has shape {seed.shape} but the tensor has "
                f"shape {t._data.shape}"
            )
        if not isinstance(seed, Tensor) and seed.dtype != t._data.dtype:
            seed = seed.astype(t._data.dtype)
    if create_graph and not isinstance(seed, Tensor):
        seed = _make(seed, None)
    return seed


def replay(heap: list, grads: dict[Any, Any], retain: bool, create_graph: bool,
           tape: set | None = None, keep: set | None = None,
           kept: dict | None = None) -> None:
    """Run the vjps of the entries reachable from ``heap``, newest first.

    ``heap`` holds ``(-seq, entry)`` pairs: popping it reads the tape backwards from
    the most recent entry, and entries are pushed as gradients reach them, so entries
    the output does not depend on are never visited. ``grads`` maps nodes to their
    gradient so far and starts with the seeds. ``tape`` restricts the replay to the
    entries of an explicit ``tg.Tape``. Gradients of entries in ``keep`` are copied to
    ``kept`` (tape sources that are not leaves).
    """
    if create_graph:
        prev_enabled = state.grad_enabled
        state.grad_enabled = True
    checking = graph.anomaly_flag[0]
    # Rarely needed per-entry work, looked for only when some of it can be needed.
    extras = keep is not None or ENTRY_HOOKS[0]
    # Along a chain the heap is bypassed: an entry reached while nothing else is pending
    # is necessarily the newest pending one, and no other entry can add to its gradient
    # any more, so it is handed over in `nxt`/`g_nxt` without touching `grads`.
    nxt = heappop(heap)[1] if heap else None
    g_nxt = grads.pop(nxt) if nxt is not None else None
    try:
        while nxt is not None:
            e = nxt
            g = g_nxt
            nxt = None
            nodes = e.nodes
            if nodes is None:
                raise _freed_error(e)
            if extras:
                if keep is not None and e in keep:
                    kept[e] = g
                if e._hooks:
                    g = run_hooks(e._hooks, g)
            op = e.op
            inputs = e.inputs
            out = e._data
            params = e.params
            rule = op.vjp_rule
            per_input = op.per_input and not create_graph
            try:
                if inputs is None and not create_graph:
                    inputs = op.blank_inputs or _stand_ins(e)
                if not per_input:
                    if create_graph:
                        results = _vjp_recorded(e, g)
                    else:
                        if op.residual:
                            results = rule(g, out, *inputs, residual=e.residual, **params)
                            if not retain:
                                e.residual = None
                        else:
                            results = (rule(g, out, *inputs, **params) if params
                                       else rule(g, out, *inputs))
                        if type(results) is not tuple:
                            if len(nodes) == 1 and type(results) is ndarray:
                                results = (results,)  # one input: a bare gradient
                            else:
                                results = _as_tuple(results, e)
                        elif len(results) != len(nodes):
                            results = _as_tuple(results, e)
                i = -1
                for n in nodes:
                    i += 1
                    if n is None:
                        continue
                    if per_input:
                        f = rule[i]
                        if f is None:
                            continue
                        gi = f(g, out, *inputs, **params) if params else f(g, out, *inputs)
                    else:
                        gi = results[i]
                    if gi is None:
                        continue
                    if checking:
                        graph.check_finite(op, "vjp", gi, e.site)
                    d = n._data
                    if type(gi) is not ndarray and not isinstance(gi, Tensor):
                        gi = np.asarray(gi)
                    if gi.shape != d.shape:
                        gi = unbroadcast(gi, d.shape, e, i)
                    if gi.dtype is not d.dtype and gi.dtype != d.dtype:
                        gi = gi.astype(d.dtype)
                    if n is nxt:  # a second input fed by the same chain entry (x * x)
                        g_nxt = g_nxt + gi
                    elif (nxt is None and not heap and n._node is RESULT
                          and (tape is None or n in tape)):
                        # Nothing pending: n is the next entry to run. (Every entry in
                        # `grads` is on the heap, so n has no gradient there yet.)
                        nxt = n
                        g_nxt = gi
                    else:
                        prev = grads.get(n)
                        if prev is not None:
                            grads[n] = prev + gi
                        elif n._node is not RESULT or (tape is not None and n not in tape):
                            grads[n] = gi  # a leaf (or an entry outside the tape): kept
                        else:
                            grads[n] = gi
                            if nxt is not None:
                                grads[nxt] = g_nxt
                                heappush(heap, (-nxt.seq, nxt))
                                nxt = None
                            heappush(heap, (-n.seq, n))
            except (OpRuleError, DifferentiabilityError, FloatingPointError):
                raise
            except Exception as exc:
                raise _rule_failed(e, exc) from exc
            if not retain:
                e.nodes = e.inputs = None
                if type(e) is not Entry:
                    if type(e) is LockingEntry:
                        e.locked = None  # its Locks go, and unlock (see protect.py)
                    else:
                        e.release()
            if nxt is None and heap:
                nxt = heappop(heap)[1]
                g_nxt = grads.pop(nxt)
    finally:
        if create_graph:
            state.grad_enabled = prev_enabled


# ----------------------------------------------------------------------- vjp calls


def _vjp_recorded(e: Entry, g: Any) -> tuple:
    """Call the vjp on Tensors so that what it computes is recorded."""
    op = e.op
    nodes = e.nodes
    if e.inputs is not None:
        inputs = tuple(wire(x, n) for x, n in zip(e.inputs, nodes, strict=True))
    else:
        inputs = _stand_ins(e)
    out = e  # the entry is the output tensor: what the vjp does with it is recorded
    if not isinstance(g, Tensor):
        g = _make(np.asarray(g), None)
    res = strict_vjp(e, nodes, g, out, inputs, "cannot be differentiated twice")
    fixed = []
    for r, n in zip(res, nodes, strict=True):
        if r is not None and n is not None and not isinstance(r, Tensor):
            arr = np.asarray(r)
            if arr.any():
                raise DifferentiabilityError(
                    f"op {op.name!r} (from {op.source}) cannot be differentiated twice: "
                    "its vjp returned a plain ndarray under create_graph=True. Write the "
                    "vjp with operators, NumPy functions and array methods (they record "
                    "on Tensors) instead of converting to NumPy"
                )
            r = _make(arr, None)
        fixed.append(r)
    if graph.anomaly_flag[0]:
        for r in fixed:
            graph.check_finite(op, "vjp", r, e.site)
    return tuple(fixed)


def wire(x: Any, node: Any) -> Any:
    """A saved input as a Tensor routing gradients to its node (under create_graph).

    An entry's saved input is the entry's own data, so the entry itself is used. A
    leaf's saved input may be a private copy of the leaf's data from the time of the
    call: it gets an alias tensor of that copy whose node is the leaf.
    """
    if node is None or not isinstance(x, np.ndarray):
        return x
    if node._node is RESULT:
        return node
    return _make(x, node)


def strict_vjp(e: Entry, mask: tuple, g: Any, out: Any, inputs: tuple, why: str) -> tuple:
    """Call ``e``'s vjp on Tensors, refusing conversions to NumPy (they would silently
    drop a gradient); ``why`` completes the error that names the op."""
    op = e.op
    state.strict_depth += 1
    try:
        res = call_vjp(op.definition.vjp, mask, g, out, inputs, e.params)
    except DifferentiabilityError as exc:
        raise DifferentiabilityError(f"op {op.name!r} (from {op.source}) {why}: {exc}") \
            from exc
    except Exception as exc:
        raise _rule_failed(e, exc) from exc
    finally:
        state.strict_depth -= 1
    return _as_tuple(res, e)


def call_vjp(vjp: Any, nodes: tuple, g: Any, out: Any, inputs: tuple, params: dict) -> Any:
    """Call a vjp: one function for all inputs, or one per input (only those needed)."""
    if type(vjp) is tuple:
        return tuple(
            None if n is None or f is None else f(g, out, *inputs, **params)
            for f, n in zip(vjp, nodes, strict=True)
        )
    return vjp(g, out, *inputs, **params)


def _stand_ins(e: Entry) -> tuple:
    """Inputs for a vjp that saved none: shapes where it asked for them, else None."""
    if e.op.definition.save_inputs == "shape":
        return tuple(None if n is None else ShapeOf(*node_meta(n)) for n in e.nodes)
    return (None,) * len(e.nodes)


def _as_tuple(res: Any, e: Entry) -> tuple:
    if type(res) is tuple:
        pass
    elif isinstance(res, list):
        res = tuple(res)
    elif len(e.nodes) == 1:
        res = (res,)
    else:
        raise OpRuleError(
            f"op {e.op.name!r} (from {e.op.source}): vjp returned a "
            f"{type(res).__name__}, expected a tuple of {len(e.nodes)} gradients "
            "(one per input, None for an input without one)"
        )
    if len(res) != len(e.nodes):
        raise OpRuleError(
            f"op {e.op.name!r} (from {e.op.source}): vjp returned {len(res)} gradients "
            f"for {len(e.nodes)} inputs; return one per input (None where there is none)"
        )
    return res


def _rule_failed(e: Entry, exc: Exception) -> Exception:
    if isinstance(exc, OpRuleError):
        return exc
    return OpRuleError(
        f"op {e.op.name!r} (from {e.op.source}): vjp raised "
        f"{type(exc).__name__}: {exc}"
    )


def _freed_error(e: Entry) -> RuntimeError:
    return RuntimeError(
        f"backward through the graph a second time: op {e.op.name!r} (entry "
        f"#{e.seq}) already freed its saved values in an earlier backward. Pass "
        "retain_graph=True to the first backward (or use a persistent tape) to "
        "backpropagate more than once"
    )


# ----------------------------------------------------------------------- helpers


def unbroadcast(g: Any, shape: tuple[int, ...], e: Entry, i: int) -> Any:
    """Sum ``g`` over the axes along which input ``i`` of ``e`` was broadcast."""
    gshape = g.shape
    lead = len(gshape) - len(shape)
    ok = lead >= 0
    axes = list(range(lead)) if ok else []
    if ok:
        for k, s in enumerate(shape):
            gs = gshape[lead + k]
            if s == gs:
                continue
            if s == 1:
                axes.append(lead + k)
            else:
                ok = False
                break
    if not ok:
        raise OpRuleError(
            f"op {e.op.name!r} (from {e.op.source}): vjp gave input {i} a gradient of "
            f"shape {tuple(gshape)}, which cannot be summed to the input's shape "
            f"{tuple(shape)}"
        )
    # ndarray.sum is a Python wrapper around np.add.reduce: call the ufunc directly
    total = np.add.reduce if type(g) is ndarray else type(g).sum
    if len(axes) == lead:  # only leading axes: no reshape (and no view) needed
        return total(g, axis=tuple(axes))
    g = total(g, axis=tuple(axes), keepdims=True)
    if lead:
        g = g.reshape(shape)
    return g


def run_hooks(hooks: list, g: Any) -> Any:
    for fn in list(hooks):
        r = fn(g)
        if r is not None:
            g = r
    return g


def commit_leaves(grads: dict[Any, Any], create_graph: bool) -> None:
    """Add the gradients that reached leaves with requires_grad into their ``.grad``.

    A gradient array nobody else holds (a fresh vjp result) becomes ``.grad`` as is;
    one that may be shared (an upstream gradient passed through, a view) is copied, so
    a later ``+=`` into ``.grad`` can never reach another array.
    """
    with _leaf_lock:
        for n in list(grads):
            if n._node is not LEAF:
                continue
            g = grads.pop(n)
            if n._hooks:
                g = run_hooks(n._hooks, g)
            if create_graph:
                n.grad = g if n.grad is None else n.grad + g
                continue
            if isinstance(g, Tensor):
                g = g._data
            data = n._data
            old = n.grad
            if old is None or isinstance(old, Tensor) or old.shape != data.shape:
                if (type(g) is ndarray and g.base is None and g.flags.writeable
                        and g.dtype == data.dtype and getrefcount(g) <= _SOLE_OWNER):
                    n.grad = g
                else:
                    n.grad = np.array(g, dtype=data.dtype, copy=True)
            elif old.flags.writeable:
                old += g
            else:
                n.grad = old + g


def _sole_owner_refcount() -> int:
    """What getrefcount reports, in commit_leaves, for an array only it holds."""
    probe = {0: np.ones(1)}
    for k in list(probe):
        g = probe.pop(k)
        return getrefcount(g)
    raise AssertionError


_SOLE_OWNER = _sole_owner_refcount()

_tensor_module._engine["backward"] = backward  # Tensor.backward calls it
