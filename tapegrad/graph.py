"""Recording: tape entries, per-thread recording state, and the op callers.

Every call of an op on a tensor that is being tracked appends one :class:`Entry` to the
Wengert tape: the op, the nodes its inputs came from, and what its vjp needs. An entry
is numbered in call order (``seq``); backward replays entries from the highest number
down, so no topological sort and no recursion is needed.

A *node* is what gradients are summed into: the :class:`Entry` that produced a tensor,
or the leaf tensor itself. Entries hold their input nodes but never their output
tensor, so a graph nobody can reach any more is freed by reference counting alone.

The op callers built here are the functions behind ``tg.ops.NAME``. They are made once
per op when the registry is built; calling one is a few attribute reads, the op's
NumPy forward, and (only when an input is tracked) one entry.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import OpRuleError

if TYPE_CHECKING:
    from .opdef import OpInfo
    from .tensor import Tensor

ndarray = np.ndarray
_asarray = np.asarray
_seq = itertools.count(1)


class Entry:
    """One recorded op call: ``out = op(*inputs, **params)``.

    ``nodes`` holds, per input, the node gradients flow to (``None`` for an input that
    needs none). ``inputs`` and ``out`` hold the arrays the vjp needs, ``None`` where it
    needs none. ``shape``/``dtype`` describe ``out``, so gradients flowing into this
    node can be checked. After a backward without ``retain_graph`` the entry is
    *released*: ``nodes`` becomes ``None`` and the saved arrays are dropped.
    """

    __slots__ = ("op", "nodes", "inputs", "out", "params", "seq", "shape", "dtype",
                 "hooks", "site", "__weakref__")

    def __init__(self, op, nodes, inputs, out, params, shape, dtype):
        self.op = op
        self.nodes = nodes
        self.inputs = inputs
        self.out = out
        self.params = params
        self.shape = shape
        self.dtype = dtype
        self.seq = next(_seq)
        self.hooks = None
        self.site = None

    def release(self) -> None:
        self.nodes = self.inputs = self.out = None

    @property
    def released(self) -> bool:
        return self.nodes is None

    def __repr__(self) -> str:
        return f"<Entry #{self.seq} {self.op.name} -> {self.shape}>"


class _LeafMark:
    """Marks a leaf tensor as a node (``requires_grad`` or watched by a tape)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


#: ``Tensor._node`` of a leaf with ``requires_grad=True``.
LEAF = _LeafMark("leaf")
#: ``Tensor._node`` of a leaf watched by an active ``tg.Tape`` only.
WATCHED = _LeafMark("watched")


class _State(threading.local):
    """Per-thread recording state: threads never see each other's tapes."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.tapes: list[Any] = []
        self.strict_depth = 0  # > 0 while a create_graph vjp runs: no silent np.asarray


state = _State()

# Anomaly mode is checked on every op call, so it lives in a module-level list that the
# callers read without touching thread-local state; detect_anomaly() maintains it.
anomaly_flag = [0]

# Set by tensor.py at import (graph.py cannot import it: tensor.py imports us).
Tensor: type[Tensor]
_make: Callable[[ndarray, Any], Tensor]


def bind_tensor_class(cls, make) -> None:
    global Tensor, _make
    Tensor = cls
    _make = make


# --------------------------------------------------------------------------- callers


def as_input(x: Any, info: OpInfo, pos: int) -> Any:
    """An op input that is not a Tensor: ndarrays and scalars pass, sequences convert."""
    if isinstance(x, (ndarray, np.generic, int, float, complex, bool)):
        return x
    if isinstance(x, (list, tuple)):
        arr = _asarray(x)
        if arr.dtype.kind in "biufc":
            return arr
    raise TypeError(
        f"op {info.name!r} ({info.source}): input {pos} is a {type(x).__name__}, "
        "expected a Tensor, an ndarray or a number"
    )


def _bind_positional(info: OpInfo, extra: tuple, params: dict) -> dict:
    names = list(info.params)
    if len(extra) > len(names):
        raise TypeError(
            f"op {info.name!r} ({info.source}) takes {info.nargs} input(s) and params "
            f"{names}, got {info.nargs + len(extra)} positional arguments"
        )
    bound = dict(zip(names, extra, strict=False))
    dup = bound.keys() & params.keys()
    if dup:
        raise TypeError(f"op {info.name!r}: got multiple values for {sorted(dup)}")
    bound.update(params)
    return bound


def _check_params(info: OpInfo, params: dict) -> None:
    unknown = params.keys() - info.params.keys()
    if unknown:
        raise TypeError(
            f"op {info.name!r} ({info.source}) got unexpected parameter(s) "
            f"{sorted(unknown)}; it takes {list(info.params) or 'none'}"
        )


def _to_array(out: Any, info: OpInfo) -> ndarray:
    if isinstance(out, Tensor):
        raise OpRuleError(
            f"op {info.name!r} ({info.source}): forward returned a Tensor; forward rules "
            "take and return plain ndarrays"
        )
    arr = _asarray(out)
    if arr.dtype == object:
        raise OpRuleError(
            f"op {info.name!r} ({info.source}): forward returned {type(out).__name__}, "
            "not a numeric ndarray"
        )
    return arr


def record(info: OpInfo, nodes: tuple, inputs: tuple, out: ndarray, params: dict) -> Tensor:
    """Append one entry for a call whose inputs are tracked; return the output tensor."""
    st = state
    if not st.grad_enabled:
        return _make(out, None)
    d = info.definition
    keep = d.save_inputs
    if keep is True or (keep == "shape" and any(n is None for n in nodes)):
        saved_in = inputs  # untracked inputs keep their arrays: no node to read shapes from
    else:
        saved_in = None
    entry = Entry(info, nodes, saved_in, out if d.save_out else None, params,
                  out.shape, out.dtype)
    if anomaly_flag[0]:
        entry.site = user_site()
    if st.tapes:
        for tape in st.tapes:
            tape._entries.append(entry)
    return _make(out, entry)


def make_caller(info: OpInfo) -> Callable[..., Tensor]:
    """Build the function behind ``tg.ops.<info.name>``."""
    d = info.definition
    forward = d.forward
    differentiable = d.vjp is not None
    nondiff = frozenset(d.nondiff)
    defaults = info.params
    nparams = len(defaults)
    T = Tensor
    make = _make

    def resolve(extra, params):
        if extra:
            params = _bind_positional(info, extra, params)
        merged = {**defaults, **params}
        if len(merged) != nparams:
            _check_params(info, params)
        return merged

    def finish(out, nodes, inputs, params):
        if type(out) is not ndarray:
            out = _to_array(out, info)
        if anomaly_flag[0]:
            check_finite(info, "forward", out)
        if nodes is None:
            return make(out, None)
        return record(info, nodes, inputs, out, params)

    if info.variadic:

        def call(xs, *extra, **params):
            params = resolve(extra, params) if extra or params else defaults
            arrays = []
            nodes = []
            tracked = False
            for i, x in enumerate(xs):
                if isinstance(x, T):
                    arrays.append(x.data)
                    n = x._node
                    if n is not None and differentiable:
                        tracked = True
                        if type(n) is not Entry:
                            n = x
                    nodes.append(n)
                else:
                    arrays.append(as_input(x, info, i))
                    nodes.append(None)
            inputs = tuple(arrays)
            out = forward(inputs, **params)
            return finish(out, tuple(nodes) if tracked else None, inputs, params)

    elif info.nargs == 1 and not nondiff:

        def call(x, *extra, **params):
            params = resolve(extra, params) if extra or params else defaults
            if isinstance(x, T):
                xd = x.data
                n = x._node
            else:
                xd = as_input(x, info, 0)
                n = None
            out = forward(xd, **params)
            if n is None or not differentiable:
                return finish(out, None, None, params)
            if type(n) is not Entry:
                n = x
            return finish(out, (n,), (xd,), params)

    elif info.nargs == 2 and not nondiff:

        def call(a, b, *extra, **params):
            params = resolve(extra, params) if extra or params else defaults
            if isinstance(a, T):
                ad = a.data
                an = a._node
                if an is not None and type(an) is not Entry:
                    an = a
            else:
                ad = as_input(a, info, 0)
                an = None
            if isinstance(b, T):
                bd = b.data
                bn = b._node
                if bn is not None and type(bn) is not Entry:
                    bn = b
            else:
                bd = as_input(b, info, 1)
                bn = None
            out = forward(ad, bd, **params)
            if (an is None and bn is None) or not differentiable:
                return finish(out, None, None, params)
            return finish(out, (an, bn), (ad, bd), params)

    else:
        nargs = info.nargs

        def call(*args, **params):
            if len(args) < nargs:
                raise TypeError(
                    f"op {info.name!r} ({info.source}) takes {nargs} inputs, got {len(args)}"
                )
            if len(args) > nargs or params:
                params = resolve(args[nargs:], params)
                args = args[:nargs]
            else:
                params = defaults
            arrays = []
            nodes = []
            tracked = False
            for i, x in enumerate(args):
                if isinstance(x, T):
                    arrays.append(x.data)
                    n = x._node
                    if n is not None and differentiable and i not in nondiff:
                        tracked = True
                        if type(n) is not Entry:
                            n = x
                    else:
                        n = None
                    nodes.append(n)
                else:
                    arrays.append(as_input(x, info, i))
                    nodes.append(None)
            inputs = tuple(arrays)
            out = forward(*inputs, **params)
            return finish(out, tuple(nodes) if tracked else None, inputs, params)

    call.__name__ = call.__qualname__ = info.name
    call.__doc__ = f"{info.describe()}\n\n{info.doc}".rstrip()
    call.op = info  # type: ignore[attr-defined]
    return call


# --------------------------------------------------------------------------- anomaly


def check_finite(info: OpInfo, stage: str, value: Any, site: str | None = None) -> None:
    """Raise FloatingPointError if ``value`` holds NaN or inf (anomaly mode only)."""
    arr = value.data if isinstance(value, Tensor) else value
    if arr is None:
        return
    arr = _asarray(arr)
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        where = site or user_site()
        raise FloatingPointError(
            f"detect_anomaly: the {stage} of op {info.name!r} (from {info.source}) "
            f"produced {bad}; the op was called at {where}"
        )


_PKG_DIR = __file__.rsplit("/", 1)[0]


def user_site() -> str:
    """``file:line`` of the innermost frame outside the tapegrad package."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"
