"""Recording: per-thread recording state and the op callers.

Every call of an op on a tensor that is being tracked appends one :class:`Entry` to the
Wengert tape: the op, the nodes its inputs came from, and what its vjp needs. An entry
is numbered in call order (``seq``); backward replays entries from the highest number
down, so no topological sort and no recursion is needed.

Entries and nodes live in :mod:`tapegrad.entry`; the protection of saved arrays in
:mod:`tapegrad.protect`.

The op callers built here are the functions behind ``tg.ops.NAME``. They are made once
per op when the registry is built; calling one is a few attribute reads, the op's
NumPy forward, and (only when an input is tracked) one entry.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .entry import RESULT, Entry, _LeafMark, _seq
from .errors import OpRuleError, TapegradError
from .protect import COPY_LIMIT, LockingEntry, protect
from .tensor import Tensor, _make

if TYPE_CHECKING:
    from .opdef import OpInfo

ndarray = np.ndarray
_asarray = np.asarray
_new = object.__new__



class _State(threading.local):
    """Per-thread recording state: threads never see each other's tapes."""

    def __init__(self) -> None:
        self.grad_enabled = True
        self.tapes: list[Any] = []
        self.strict_depth = 0  # > 0 while a create_graph vjp runs: no silent np.asarray


state = _State()

# How many no_grad/enable_grad blocks and open Tapes exist, in all threads. While it is 0
# every thread records with no tape open, and the op callers skip the thread-local reads.
special_modes = [0]
_modes_mutex = threading.Lock()


def enter_special_mode() -> None:
    with _modes_mutex:
        special_modes[0] += 1


def leave_special_mode() -> None:
    with _modes_mutex:
        special_modes[0] -= 1

# Anomaly mode is checked on every op call, so it lives in a module-level list that the
# callers read without touching thread-local state; detect_anomaly() maintains it.
anomaly_flag = [0]

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


_op_error_classes: dict[type, type] = {}


def forward_failed(info: OpInfo, exc: Exception, inputs: tuple, params: dict) -> Exception:
    """``exc`` from an op's forward, re-raised naming the op, its source and the inputs.

    The new exception is still an instance of the original type (a ValueError stays a
    ValueError) and of TapegradError.
    """
    if isinstance(exc, TapegradError):
        return exc
    shapes = ", ".join(str(getattr(x, "shape", type(x).__name__)) for x in inputs)
    shown = {k: v for k, v in params.items() if info.params.get(k, _NO) is not v}
    extra = f" and params {shown}" if shown else ""
    msg = (f"op {info.name!r} (from {info.source}) failed on inputs of shape {shapes}"
           f"{extra}: {type(exc).__name__}: {exc}")
    cls = _op_error_classes.get(type(exc))
    if cls is None:
        try:
            cls = type(f"Op{type(exc).__name__}", (TapegradError, type(exc)), {
                "__init__": lambda self, m: BaseException.__init__(self, m),
                "__str__": lambda self: str(self.args[0]),
            })
        except TypeError:  # an exception type that cannot be subclassed this way
            cls = OpRuleError
        _op_error_classes[type(exc)] = cls
    return cls(msg)


_NO = object()


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


def record(info: OpInfo, nodes: tuple, inputs: tuple, out: ndarray, params: dict,
           mutable: bool = True, residual: Any = None) -> Tensor:
    """Append one entry for a call whose inputs are tracked; return the output tensor.

    The general path: no_grad and open tapes, anomaly checks, locking large saved
    arrays. (The one- and two-input callers record the common case themselves.)
    ``mutable`` is False when the caller knows no input is a user-reachable array
    (all are results of recorded ops, or scalars): nothing to protect then.
    ``residual`` is what an op's ``residual_forward`` handed over for its plain vjp.
    """
    if special_modes[0]:
        if anomaly_flag[0]:
            check_finite(info, "forward", out)
        st = state
        if not st.grad_enabled:
            return _make(out, None)
        tapes = st.tapes
    else:
        tapes = None
    keep = info.save_inputs
    if keep is not True and not (keep == "shape" and _has_untracked(nodes)):
        inputs = None  # (untracked inputs keep their arrays: no node to read shapes from)
    locked = None
    if mutable and inputs is not None:
        inputs, locked = protect(nodes, inputs)
    if locked is None:
        e = _new(Entry)
    else:
        e = _new(LockingEntry)
        e.locked = locked
    e._data = out
    e._node = RESULT
    e.op = info
    e.nodes = nodes
    e.inputs = inputs
    e.params = params
    e.seq = next(_seq)
    if info.residual:
        e.residual = residual
    if anomaly_flag[0]:
        e.site = user_site()
    if tapes:
        for tape in tapes:
            tape._entries.append(e)
    return e


def _has_untracked(nodes: tuple) -> bool:
    for n in nodes:
        if n is None:
            return True
    return False


def _untracked(info: OpInfo, out: ndarray) -> Tensor:
    """The result of a call nothing records (general path: anomaly mode checks it)."""
    if anomaly_flag[0]:
        check_finite(info, "forward", out)
    return _make(out, None)


def make_caller(info: OpInfo) -> Callable[..., Tensor]:
    """Build the function behind ``tg.ops.<info.name>``.

    Differentiable ops of one and two inputs (nearly all calls) get callers that record
    the common case inline: no mode active (no_grad, tape, anomaly), nothing to lock;
    they take no ``*args``/``**kwargs`` (ops with params get a wrapper resolving them).
    Everything else goes through :func:`record`. Variadic ops, ops with ``nondiff``
    inputs or a ``residual_forward``, and ops without a vjp use the general callers.
    """
    d = info.definition
    forward = d.forward
    residual_forward = d.residual_forward
    differentiable = d.vjp is not None
    nondiff = frozenset(d.nondiff)
    defaults = info.params
    nparams = len(defaults)
    save_inputs = info.save_inputs
    T = Tensor
    make = _make
    new = _new
    next_seq = _seq.__next__

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
        if nodes is None:
            return _untracked(info, out) if special_modes[0] else make(out, None)
        return record(info, nodes, inputs, out, params)

    if info.variadic:

        def call(xs, *extra, **params):
            params = resolve(extra, params) if extra or params else defaults
            arrays = []
            nodes = []
            tracked = False
            for i, x in enumerate(xs):
                if isinstance(x, T):
                    arrays.append(x._data)
                    n = x._node
                    if n is not None and differentiable:
                        tracked = True
                        if type(n) is _LeafMark:
                            n = x
                    nodes.append(n)
                else:
                    arrays.append(x if type(x) is ndarray else as_input(x, info, i))
                    nodes.append(None)
            inputs = tuple(arrays)
            try:
                out = forward(inputs, **params)
            except Exception as exc:
                raise forward_failed(info, exc, inputs, params) from exc
            return finish(out, tuple(nodes) if tracked else None, inputs, params)

    elif info.nargs == 1 and differentiable and not nondiff and residual_forward is None:
        keep_x = save_inputs is True

        def call(x, *, _params=defaults):
            params = _params
            if isinstance(x, T):
                xd = x._data
                n = x._node
            elif type(x) is ndarray:
                xd = x
                n = None
            else:
                xd = as_input(x, info, 0)
                n = None
            try:
                out = forward(xd, **params) if params else forward(xd)
            except Exception as exc:
                raise forward_failed(info, exc, (xd,), params) from exc
            if type(out) is not ndarray:
                out = _asarray(out) if isinstance(out, np.generic) else _to_array(out, info)
            if n is RESULT and not special_modes[0]:
                # The common case, x a recorded result: the result is the new entry (see
                # record()), written out in both the one- and two-input callers because
                # a helper call costs 0.1 us.
                e = new(Entry)
                e._data = out
                e._node = RESULT
                e.op = info
                e.nodes = (x,)
                e.inputs = (xd,) if keep_x else None
                e.params = params
                e.seq = next_seq()
                return e
            if n is None:
                return _untracked(info, out) if special_modes[0] else make(out, None)
            if n is RESULT:
                return record(info, (x,), (xd,), out, params, False)
            # A leaf (or an internal alias of one): its data is the user's to protect.
            return record(info, (x if type(n) is _LeafMark else n,), (xd,), out, params)

    elif info.nargs == 2 and differentiable and not nondiff and residual_forward is None:
        keep_ab = save_inputs is True
        shapes_only = save_inputs == "shape"

        def call(a, b, *, _params=defaults):
            params = _params
            if isinstance(a, T):
                ad = a._data
                an = a._node
                if type(an) is _LeafMark:
                    an = a
            else:
                ta = type(a)
                ad = a if ta is float or ta is int or ta is ndarray else as_input(a, info, 0)
                an = None
            if isinstance(b, T):
                bd = b._data
                bn = b._node
                if type(bn) is _LeafMark:
                    bn = b
            else:
                tb = type(b)
                bd = b if tb is float or tb is int or tb is ndarray else as_input(b, info, 1)
                bn = None
            try:
                out = forward(ad, bd, **params) if params else forward(ad, bd)
            except Exception as exc:
                raise forward_failed(info, exc, (ad, bd), params) from exc
            if type(out) is not ndarray:
                out = _asarray(out) if isinstance(out, np.generic) else _to_array(out, info)
            if an is None and bn is None:
                return _untracked(info, out) if special_modes[0] else make(out, None)
            if keep_ab:
                # Saved arrays the user can reach (not results of recorded ops) get a
                # private copy; large ones are locked instead, on the general path.
                ua = type(ad) is ndarray and (an is None or an._node is not RESULT)
                ub = type(bd) is ndarray and (bn is None or bn._node is not RESULT)
                if ua or ub:
                    if (special_modes[0] or (ua and ad.size > COPY_LIMIT)
                            or (ub and bd.size > COPY_LIMIT)):
                        return record(info, (an, bn), (ad, bd), out, params)
                    if ua:
                        ad = ad.copy()
                    if ub:
                        bd = bd.copy()
                inputs = (ad, bd)
            elif shapes_only and (an is None or bn is None):
                return record(info, (an, bn), (ad, bd), out, params)
            else:
                inputs = None
            if special_modes[0]:
                return record(info, (an, bn), inputs or (ad, bd), out, params, False)
            # The common case: the result is the new entry, as in the one-input caller.
            e = new(Entry)
            e._data = out
            e._node = RESULT
            e.op = info
            e.nodes = (an, bn)
            e.inputs = inputs
            e.params = params
            e.seq = next_seq()
            return e

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
                    arrays.append(x._data)
                    n = x._node
                    if n is not None and differentiable and i not in nondiff:
                        tracked = True
                        if type(n) is _LeafMark:
                            n = x
                    else:
                        n = None
                    nodes.append(n)
                else:
                    arrays.append(x if type(x) is ndarray else as_input(x, info, i))
                    nodes.append(None)
            inputs = tuple(arrays)
            res = None
            try:
                if tracked and residual_forward is not None:
                    out = residual_forward(*inputs, **params)
                    if type(out) is not tuple or len(out) != 2:
                        raise OpRuleError(
                            f"op {info.name!r} ({info.source}): residual_forward returned "
                            f"{type(out).__name__}; it must return (out, residual)")
                    out, res = out
                else:
                    out = forward(*inputs, **params)
            except Exception as exc:
                raise forward_failed(info, exc, inputs, params) from exc
            if type(out) is not ndarray:
                out = _to_array(out, info)
            if not tracked:
                return _untracked(info, out) if special_modes[0] else make(out, None)
            return record(info, tuple(nodes), inputs, out, params, residual=res)

    if (info.nargs in (1, 2) and not info.variadic and differentiable and not nondiff
            and residual_forward is None and nparams):
        # The one- and two-input callers take their params resolved, as a keyword: a
        # signature with *args and **kwargs costs 0.05 us a call, which ops without
        # params (nearly every call: operators and elementwise functions) do not pay.
        core = call

        def call(*args, **params):
            if len(args) != info.nargs:
                extra = args[info.nargs:]
                if len(args) < info.nargs:
                    raise TypeError(f"op {info.name!r} ({info.source}) takes "
                                    f"{info.nargs} input(s), got {len(args)}")
                args = args[:info.nargs]
            else:
                extra = ()
            return core(*args, _params=resolve(extra, params) if extra or params
                        else defaults)

    call.__name__ = call.__qualname__ = info.name
    call.__doc__ = f"{info.describe()}\n\n{info.doc}".rstrip()
    call.op = info  # type: ignore[attr-defined]
    return call


# --------------------------------------------------------------------------- anomaly


def check_finite(info: OpInfo, stage: str, value: Any, site: str | None = None) -> None:
    """Raise FloatingPointError if ``value`` holds NaN or inf (anomaly mode only)."""
    arr = value._data if isinstance(value, Tensor) else value
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
