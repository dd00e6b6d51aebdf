"""Recording: the op callers behind ``tg.ops.NAME``, and the one function that records.

One op call::

    tg.ops.mul(a, b)                        the caller make_caller built for "mul"
      -> unwrap: arrays and parent nodes    (Tensors give their data and node)
      -> out = forward(*arrays, **params)   plain NumPy
      -> record(...)                        what to save, protection, the tape entry

:func:`record` is the only place that decides what a record saves, protects arrays the
user can still change (``protect.py``), and builds the :class:`~tapegrad.entry.Record`
that backward replays. A call without a tracked input, or whose output is not floating
(integer casts, argmax), is not recorded: it cannot carry a gradient. While a mode block
is open (``no_grad``, a ``Tape``, anomaly mode, ``tg.compile`` tracing) the call goes
through :func:`record_in_mode` first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .anomaly import check_finite, user_site
from .arguments import NUMBERS, as_input, bind, bind_variadic
from .entry import Part, Record, ShapeOf, next_seq
from .errors import OpRuleError, complex_error, forward_failed
from .lazy import guarded
from .protect import protect
from .state import STATE
from .tensor import Tensor, _make, _new

if TYPE_CHECKING:
    from .opdef import OpInfo

ndarray = np.ndarray


# --------------------------------------------------------------------------- callers


def make_caller(info: OpInfo) -> Callable[..., Any]:
    """Build the function behind ``tg.ops.<info.name>``: unwrap, forward, record."""
    forward = guarded(info)  # the op's forward, taking the inputs as positional arguments
    nargs = -1 if info.variadic else info.nargs  # a variadic op always binds
    defaults = info.params
    bind_args = bind_variadic if info.variadic else bind

    def call(*args: Any, **params: Any) -> Any:
        if len(args) != nargs or params:
            args, params = bind_args(info, args, params)
        else:
            params = defaults
        arrays = []
        parents = []
        for x in args:
            if type(x) is Tensor or isinstance(x, Tensor):
                arrays.append(x._data)
                parents.append(x._node)
            else:
                arrays.append(x if type(x) is ndarray else as_input(x, info, len(arrays)))
                parents.append(None)
        try:
            out = forward(*arrays, **params) if params else forward(*arrays)
        except Exception as exc:
            raise forward_failed(info, exc, arrays, params) from exc
        if STATE.quiet:
            return record(info, parents, arrays, out, params)
        return record_in_mode(info, parents, arrays, out, params)

    call.__name__ = call.__qualname__ = info.name
    call.__doc__ = f"{info.describe()}\n\n{info.doc}".rstrip()
    call.op = info  # type: ignore[attr-defined]
    return call


def freeze(parents: list, frozen: frozenset) -> None:
    """Drop the parents of inputs that never carry a gradient."""
    for i in frozen:
        if i < len(parents):
            parents[i] = None


# --------------------------------------------------------------------------- recording


def record(info: OpInfo, parents: list, arrays: list, out: Any, params: dict) -> Any:
    """Record one op call; return the output tensor(s).

    The one place that checks outputs, decides what the record saves (protecting what
    the user can still change) and builds the record and its result tensor. A call
    with no tracked input, or whose output cannot carry a gradient, records nothing.
    """
    if info.frozen:
        freeze(parents, info.frozen)
    if not any(parents):  # (nodes are always true, None is not)
        return untracked(info, out)
    if type(out) is ndarray and out.dtype.kind == "f" and info.plain:
        outs = out  # the common case: one fresh floating array
    else:
        outs = checked_outputs(info, out, arrays)
        if outs is None:
            return untracked(info, out)
    if not info.complex and _complex(arrays, parents):
        raise complex_error(info)
    keep = info.save_inputs
    saved = arrays if keep is True else info.blank
    if keep is True:
        for i in range(len(arrays)):  # an input the user can still change? (see what_to_save)
            a = arrays[i]
            if type(a) is ndarray and (type(parents[i]) is not Record or a.base is not None):
                saved = what_to_save(info, parents, arrays)
                break
    elif keep is not False:
        saved = what_to_save(info, parents, arrays)
    rec = _new(Record)
    rec.op = info
    rec.parents = parents
    rec.saved = saved
    rec.out = outs
    rec.params = params
    rec.seq = next_seq()
    rec.hooks = rec.site = None
    if type(outs) is not tuple:
        t = _new(Tensor)
        t._data = outs
        t._node = rec
        return t
    tensors = [_make(o, Part(rec, k)) for k, o in enumerate(outs)]
    return tuple(tensors) if type(out) is tuple else type(out)(*tensors)


def record_in_mode(info: OpInfo, parents: list, arrays: list, out: Any,
                   params: dict) -> Any:
    """:func:`record` while a mode block is open somewhere: anomaly checks, grad mode
    off, open tapes, and ``tg.compile``'s tracer, which sees every call."""
    thread = STATE.thread
    if STATE.anomaly:
        check_finite(info, "forward", out, user_site)
    if not thread.grad_enabled:
        result = untracked(info, out)
    else:
        result = record(info, parents, arrays, out, params)
        first = result[0] if isinstance(result, tuple) else result
        rec = first._node
        if rec is not None:
            rec = rec.record if type(rec) is Part else rec
            if STATE.anomaly:
                rec.site = user_site()
            for tape in thread.tapes:
                tape.records.append(rec)
    if thread.trace is not None:
        return thread.trace.call(info, arrays, parents, params, out, result)
    return result


def what_to_save(info: OpInfo, parents: list, arrays: list) -> Any:
    """The inputs the vjp will get, protected from later in-place changes.

    An input is private (needs no protection) when it is the output of a recorded op
    that owns its memory: that array leaves the engine only read-only. Leaf data,
    constants and views of anything are protected (``protect.protect``).
    """
    keep = info.save_inputs
    if keep == "shape":
        return [ShapeOf(a.shape, a.dtype) if hasattr(a, "shape") else a for a in arrays]
    if keep is not True:
        return info.blank
    private = []
    for i in range(len(arrays)):
        private.append(type(parents[i]) is Record and getattr(arrays[i], "base", 0) is None)
    return protect(arrays, private)


def checked_outputs(info: OpInfo, out: Any, arrays: list) -> Any:
    """The output array (or the tuple of a several-output op's); ``None`` if it cannot
    carry a gradient."""
    if info.nout == 1 and not isinstance(out, tuple):
        return _checked(info, out, arrays)
    if not isinstance(out, tuple) or len(out) != info.nout:
        n = len(out) if isinstance(out, tuple) else 1
        raise OpRuleError(f"op {info.name!r} ({info.source}): forward returned {n} "
                          f"output(s), declared nout={info.nout}")
    outs = tuple(_checked(info, o, arrays) for o in out)
    return None if any(o is None for o in outs) else outs


def _checked(info: OpInfo, out: Any, arrays: list) -> Any:
    """One output as an array; ``None`` for an integer or bool one (no gradient)."""
    kind = out.dtype.kind if type(out) is ndarray else None
    if kind != "f" and kind != "c":
        out = _as_array(info, out)
        if out.dtype.kind not in "fc":
            return None
    for a in arrays:
        if a is out:  # never hand out an input's own array (x.astype(x.dtype))
            return out.view()
    return out


def untracked(info: OpInfo, out: Any) -> Any:
    """The result of a call nothing records."""
    if isinstance(out, tuple):
        ts = [_make(_as_array(info, o), None) for o in out]
        return tuple(ts) if type(out) is tuple else type(out)(*ts)
    return _make(out if type(out) is ndarray and out.dtype.kind in "biufc"
                 else _as_array(info, out), None)


def _as_array(info: OpInfo, out: Any) -> Any:
    if type(out) is not ndarray:
        if isinstance(out, Tensor):
            raise OpRuleError(f"op {info.name!r} ({info.source}): forward returned a "
                              "Tensor; forward rules take and return plain arrays")
        if isinstance(out, NUMBERS) or not hasattr(out, "dtype"):
            out = np.asarray(out)
    if out.dtype.kind not in "biufc":
        raise OpRuleError(f"op {info.name!r} ({info.source}): forward returned an array of "
                          f"dtype {out.dtype}, not numbers")
    return out


def _complex(arrays: list, parents: list) -> bool:
    """Whether a complex value that needs a gradient is an input of the call."""
    for i in range(len(arrays)):
        dtype = getattr(arrays[i], "dtype", None)
        if parents[i] is not None and dtype is not None and dtype.kind == "c":
            return True
    return False
