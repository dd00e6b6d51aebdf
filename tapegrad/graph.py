"""Recording: the op callers behind ``tg.ops.NAME``, and the one function that records.

One op call::

    tg.ops.mul(a, b)                        the caller make_caller built for "mul"
      -> unwrap: arrays and parent nodes    (Tensors give their data and node)
      -> out = forward(*arrays, **params)   plain NumPy
      -> no input tracked?  Tensor(out)     nothing recorded
      -> record(...)                        what to save, protection, the tape entry

:func:`record` is the only place that decides what a record saves, protects arrays the
user can still change (``protect.py``), and builds the :class:`~tapegrad.entry.Record`
that backward replays. Results of ops whose output is not floating (integer casts,
argmax) are never recorded: they cannot carry a gradient.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .backward import ShapeOf, check_finite
from .entry import Leaf, Part, Record
from .errors import OpRuleError, TapegradError
from .protect import protect
from .state import STATE
from .tensor import Tensor, _make

if TYPE_CHECKING:
    from .opdef import OpInfo

ndarray = np.ndarray
_NUMBERS = (int, float, complex, bool, np.generic)


# --------------------------------------------------------------------------- callers


def make_caller(info: OpInfo) -> Callable[..., Any]:
    """Build the function behind ``tg.ops.<info.name>``."""
    forward = info.definition.forward
    nargs = info.nargs
    defaults = info.params

    if info.variadic:

        def call(xs: Any, *extra: Any, **params: Any) -> Any:
            params = bind_params(info, extra, params) if extra or params else defaults
            arrays, parents = unwrap(info, list(xs))
            return run(info, forward, arrays, parents, params, variadic=True)

    else:

        def call(*args: Any, **params: Any) -> Any:
            if len(args) != nargs or params:
                args, params = bind(info, args, params)
            else:
                params = defaults
            arrays, parents = unwrap(info, args)
            return run(info, forward, arrays, parents, params)

    call.__name__ = call.__qualname__ = info.name
    call.__doc__ = f"{info.describe()}\n\n{info.doc}".rstrip()
    call.op = info  # type: ignore[attr-defined]
    return call


def run(info: OpInfo, forward: Callable[..., Any], arrays: tuple, parents: tuple | None,
        params: dict, variadic: bool = False) -> Any:
    """Run the forward; record the call if an input is tracked."""
    try:
        out = forward(arrays, **params) if variadic else forward(*arrays, **params)
    except Exception as exc:
        raise forward_failed(info, exc, arrays, params) from exc
    if parents is None:
        return untracked(info, out, arrays)
    return record(info, parents, arrays, out, params)


def unwrap(info: OpInfo, args: Any) -> tuple[tuple, tuple | None]:
    """The inputs' arrays, and their parent nodes (``None`` when none is tracked)."""
    arrays = []
    parents = []
    tracked = False
    nondiff = info.definition.nondiff
    for i, x in enumerate(args):
        if isinstance(x, Tensor):
            arrays.append(x._data)
            node = x._node
            if node is not None and info.differentiable and i not in nondiff:
                tracked = True
                parents.append(node)
                continue
        else:
            arrays.append(as_input(x, info, i))
        parents.append(None)
    return tuple(arrays), tuple(parents) if tracked else None


def as_input(x: Any, info: OpInfo, pos: int) -> Any:
    """An op input that is not a Tensor: arrays and numbers pass, sequences convert."""
    if x is None or isinstance(x, (ndarray, *_NUMBERS)) or hasattr(x, "__array_function__"):
        return x
    if isinstance(x, (list, tuple)):
        arr = np.asarray(x)  # a sequence holding a tracked Tensor refuses (conversion rule)
        if arr.dtype.kind in "biufc":
            return arr
    raise TypeError(f"op {info.name!r} ({info.source}): input {pos} is a "
                    f"{type(x).__name__}, expected a Tensor, an array or a number")


def bind(info: OpInfo, args: tuple, params: dict) -> tuple[tuple, dict]:
    """Split a call's arguments into inputs and params (positional params allowed)."""
    need = info.nargs - info.definition.optional
    if len(args) < need:
        raise TypeError(f"op {info.name!r} ({info.source}) takes {need} input(s), got "
                        f"{len(args)}")
    ninputs = min(len(args), info.nargs)
    inputs = args[:ninputs] + (None,) * (info.nargs - ninputs)
    return inputs, bind_params(info, args[ninputs:], params)


def bind_params(info: OpInfo, extra: tuple, params: dict) -> dict:
    names = list(info.params)
    if len(extra) > len(names):
        raise TypeError(f"op {info.name!r} ({info.source}) takes {info.nargs} input(s) and "
                        f"params {names}, but {info.nargs + len(extra)} were given")
    unknown = params.keys() - info.params.keys()
    if unknown:
        raise TypeError(f"op {info.name!r} ({info.source}) got unexpected parameter(s) "
                        f"{sorted(unknown)}; it takes {names or 'none'}")
    bound = dict(zip(names, extra, strict=False))
    dup = bound.keys() & params.keys()
    if dup:
        raise TypeError(f"op {info.name!r}: got multiple values for {sorted(dup)}")
    return {**info.params, **bound, **params}


# --------------------------------------------------------------------------- recording


def record(info: OpInfo, parents: tuple, arrays: tuple, out: Any, params: dict) -> Any:
    """Append one record for a call with tracked inputs; return the output tensor(s)."""
    if not STATE.quiet:
        if STATE.anomaly:
            check_finite(info, "forward", out, user_site)
        if not STATE.thread.grad_enabled:
            return untracked(info, out, arrays)
    outs = checked_outputs(info, out, arrays)
    if outs is None:
        return untracked(info, out, arrays)
    if not info.definition.complex and _complex(outs, arrays, parents):
        raise complex_error(info)
    saved, locks = what_to_save(info, parents, arrays)
    multi = isinstance(out, tuple)
    rec = Record(info, parents, saved, outs if multi else outs[0], params)
    rec.locks = locks
    if not STATE.quiet:
        if STATE.anomaly:
            rec.site = user_site()
        for tape in STATE.thread.tapes:
            tape.records.append(rec)
    if not multi:
        return _make(rec.out, rec)
    tensors = [_make(o, Part(rec, k)) for k, o in enumerate(outs)]
    return tuple(tensors) if type(out) is tuple else type(out)(*tensors)


def what_to_save(info: OpInfo, parents: tuple, arrays: tuple) -> tuple[tuple | None, Any]:
    """The inputs the vjp will get, protected from later in-place changes, and locks.

    An input is private (needs no protection) when it is the output of a recorded op
    that owns its memory: that array leaves the engine only read-only. Leaf data,
    constants and views of anything are protected (``protect.protect``).
    """
    keep = info.definition.save_inputs
    if keep is not True:
        if keep == "shape":
            return tuple(ShapeOf(a.shape, a.dtype) if hasattr(a, "shape") else a
                         for a in arrays), None
        return None, None
    private = tuple(n is not None and type(n) is not Leaf and getattr(a, "base", 0) is None
                    for a, n in zip(arrays, parents, strict=True))
    if all(private):
        return arrays, None
    return protect(arrays, private)


def checked_outputs(info: OpInfo, out: Any, arrays: tuple) -> tuple | None:
    """The forward's output(s) as a tuple of arrays; ``None`` if not differentiable."""
    outs = tuple(out) if isinstance(out, tuple) else (out,)
    if len(outs) != info.definition.nout:
        raise OpRuleError(f"op {info.name!r} ({info.source}): forward returned "
                          f"{len(outs)} output(s), declared nout={info.definition.nout}")
    fixed = []
    for o in outs:
        o = _as_array(info, o)
        if o.dtype.kind not in "fc":
            return None  # integer or bool results carry no gradient
        if any(o is a for a in arrays):
            o = o.view()  # never hand out an input's own array (x.astype(x.dtype))
        fixed.append(o)
    return tuple(fixed)


def untracked(info: OpInfo, out: Any, arrays: tuple) -> Any:
    """The result of a call nothing records."""
    if not STATE.quiet and STATE.anomaly:
        check_finite(info, "forward", out, user_site)
    if isinstance(out, tuple):
        ts = [_make(_as_array(info, o), None) for o in out]
        return tuple(ts) if type(out) is tuple else type(out)(*ts)
    return _make(_as_array(info, out), None)


def _as_array(info: OpInfo, out: Any) -> Any:
    if type(out) is not ndarray:
        if isinstance(out, Tensor):
            raise OpRuleError(f"op {info.name!r} ({info.source}): forward returned a "
                              "Tensor; forward rules take and return plain arrays")
        if isinstance(out, _NUMBERS) or not hasattr(out, "dtype"):
            out = np.asarray(out)
    if out.dtype.kind not in "biufc":
        raise OpRuleError(f"op {info.name!r} ({info.source}): forward returned an array of "
                          f"dtype {out.dtype}, not numbers")
    return out


def _complex(outs: tuple, arrays: tuple, parents: tuple) -> bool:
    """Whether a complex value that needs a gradient is an input of the call."""
    return any(n is not None and getattr(a, "dtype", None) is not None and a.dtype.kind == "c"
               for a, n in zip(arrays, parents, strict=True))


def complex_error(info: OpInfo) -> TypeError:
    return type("OpComplexError", (TapegradError, TypeError), {})(
        f"op {info.name!r} (from {info.source}) has no rule for complex numbers, and a "
        "complex value needing a gradient reached it. Use real inputs, or declare the op "
        "OpDef(complex=True) once its vjp is right for complex inputs (docs/TRANSFORMS.md)")


# --------------------------------------------------------------------------- errors


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
_PKG_DIR = __file__.rsplit("/", 1)[0]


def user_site() -> str:
    """``file:line`` of the innermost frame outside the tapegrad package."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"
