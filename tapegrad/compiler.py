"""``tg.compile``: trace a function once, then replay its tape as straight-line NumPy.

A Wengert tape is a program: the op calls a function made, in order. ``tg.compile(f)``
runs ``f`` once per input signature (the structure of the arguments, the shape and dtype
of each array in them, and the values of the other arguments) and keeps what it did as a
*plan*; later calls with the same signature run the plan: plain NumPy, no Tensor, no
record, no heap, no per-op lookups::

    step = tg.compile(tg.value_and_grad(loss))   # the idiomatic compiled training step
    value, grads = step(params, x, y)            # traces (first call of this signature)
    value, grads = step(params, x2, y2)          # replays the plan
    print(step.source)                           # the plan as Python source

**Tracing.** The arguments' arrays become fresh Tensors (leaves that require grad when
floating) and ``f`` runs inside a recording tape, with the tracer installed as
``STATE.thread.trace``. Transforms inside ``f`` (``tg.grad``, ``tg.value_and_grad``,
``tg.hessian``, ``tg.jvp``...) therefore run nested: their backward passes are recorded
op by op, with ``create_graph``. The engine hands the tracer every op call (tracked or
not: comparisons, masks, integer results, calls under ``no_grad``), every NumPy
function without an op applied to a traced value, and every place a value would leave
for Python (``bool``, ``float``, ``.item()``, ``.data``, ``np.asarray``, an in-place
update, ``backward()``). A step of the plan is one such call: an op's forward
``forward(*inputs, **params)`` or the NumPy function itself, on earlier values.

**Values.** An argument array is an input of the plan. A tensor ``f`` closes over that
requires grad (a model's parameter) is read at every call (``t._data``: updates, in place
or by rebinding ``.data``, are seen; a change of its shape or dtype retraces). Every
other value that does not depend on those (arrays and untracked tensors ``f`` closes
over or creates, results computed from them only) is a constant of the plan, held by
reference: computed once, at trace time.

**Never silently stale.** A traced value that reaches Python (``if x.sum() > 0:``,
``float(loss)``, ``x.data``, ``np.asarray(x)``) raises :class:`CompileError` naming the
user's line: the plan could not follow it. Comparisons and masks are steps of the plan
(``(x * (x > 0)).sum()`` compiles and stays right for any later ``x``); so are
``np.where``, ``argmax`` and the other NumPy functions without an op, unless their
result's shape depends on values (``np.nonzero``, boolean-mask indexing: refused).
Random numbers drawn at trace time would be constants: ``tg.randn`` without a seed is
refused, and ops that declare themselves not compilable (``OpDef(compilable=False)``,
or :func:`not_compilable`) are refused, naming the op and the line.

**The plan.** Steps whose inputs are all constants are folded at trace time; identity
views (``x.reshape(x.shape)``), products by one and repeated calls are aliases; steps
nothing uses are dropped; every value is deleted after its last use, and a ufunc writes
into a dead array of its shape and dtype (``out=``) when no view of it can still be read
(:class:`_Buffers`), so a compiled step holds no more memory than the eager one. A plan
runs as a flat loop over its steps (:func:`_flat`: cheap to build) on its first calls,
and from its ``HOT``-th call as straight-line Python generated from the trace (never
from user text: functions and constants are referenced through the plan's namespace)
and compiled with the built-in ``compile`` (about 10 us a step, so only plans that are
reused pay it). Measured on the 2000-op chain of ``benchmarks/overhead.py`` (4750
steps of forward and backward on (8,) arrays): the flat loop runs 0.79 us a step, the
generated code 0.34 us, and the hand-written NumPy floor takes as long for the same work
(1.67 ms vs 1.60 ms). A plan whose every value is a float64 scalar also gets a version
on Python floats (:func:`_generate_floats`), with the NumPy plan as its fallback.

**Cache.** Up to ``cache_size`` plans (default 8) per compiled function, least recently
used evicted; ``cache_info()`` reports hits, misses (traces), retraces and eager calls.
After ``warn_after`` retraces (default 8) a :class:`CompileWarning` says that the
signature keeps changing. Calls that must record (a tracked Tensor among the arguments,
or inside another transform, a recording tape or another trace) run ``f`` eagerly: the
result then is what ``f`` returns, connected to the graph.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import keyword
import linecache
import math
import re
import sys
import threading
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np

from . import tree
from .dispatch import _unwrap
from .entry import Leaf, Part, Record
from .errors import CompileError, CompileWarning
from .graph import record, untracked
from .state import STATE
from .tape import Tape, enable_grad
from .tensor import Tensor, _make

__all__ = ["compile", "CompileError", "CompileWarning", "not_compilable", "is_tracing",
           "tracer"]

ndarray = np.ndarray

#: The generated code deletes every value right after its last use (a plan holding all
#: its small arrays until it returns was measured 30% slower than one freeing them: the
#: allocator keeps reusing the same memory); the flat loop frees arrays of at least
#: ``FREE_BYTES`` (its first calls only: fewer statements), and results are written into
#: dead arrays of at least ``REUSE_BYTES`` (``out=``; below it a fresh array is cheaper
#: than the keyword).
FREE_BYTES = 4096
REUSE_BYTES = 4096
#: Plans kept per compiled function by default.
CACHE_SIZE = 8
#: A CompileWarning after this many retraces by default.
WARN_AFTER = 8
#: A plan runs as a flat loop for its first calls; at this call it becomes generated
#: straight-line code (compiling the source costs about 10 us per step: paid only by
#: plans that are reused).
HOT = 3

_NOT_COMPILABLE: dict[str, str] = {}

# NumPy functions without an op whose result depends on shapes only: evaluated at trace
# time (constants of the plan).
_SHAPE_ONLY = frozenset({
    np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like, np.result_type,
    np.may_share_memory, np.shares_memory, np.iscomplexobj, np.isrealobj,
    np.broadcast_shapes, np.can_cast, np.min_scalar_type, np.array2string, np.array_repr,
    np.array_str,
})
# ... and those whose result's shape depends on values: refused.
_VALUE_SHAPED = frozenset({
    np.nonzero, np.flatnonzero, np.argwhere, np.bincount, np.unique, np.extract,
    np.compress, np.trim_zeros,
})
# Ops that may return an identity view of their first input (an alias in the plan).
_VIEW_OPS = frozenset({
    "reshape", "ravel", "squeeze", "expand_dims", "transpose", "swapaxes", "moveaxis",
    "astype", "getitem", "broadcast_to", "atleast_1d", "atleast_2d", "atleast_3d", "real",
})


# Ops whose result's dtype depends on values (real or complex eigenvalues): the plan
# checks the dtype after the step, and runs f eagerly when it differs.
_VALUE_DTYPED = frozenset({"eig", "eigvals"})


def not_compilable(op_name: str, why: str = "") -> None:
    """Declare that op ``op_name`` cannot be part of a compiled plan (it draws random
    numbers, reads a clock, has side effects...): ``tg.compile`` then refuses a function
    calling it, naming the op, ``why`` and the user's line."""
    _NOT_COMPILABLE[op_name] = why


def tracer() -> Tracer | None:
    """The tracer of ``tg.compile`` while it traces a function in this thread, else None."""
    return getattr(STATE.thread, "trace", None)


def is_tracing() -> bool:
    """Whether ``tg.compile`` is tracing a function in this thread now."""
    return tracer() is not None


#: Whether the engine consults ``STATE.thread.trace`` (its op callers, Tensor exits and
#: NumPy protocols hand the tracer what it needs). Without it nothing can be traced.
HOOKED = hasattr(STATE.thread, "trace")


def _user_site() -> str:
    """``file:line in function`` of the innermost frame outside the tapegrad package."""
    pkg = __file__.rsplit("/", 1)[0]
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(pkg):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"


# ----------------------------------------------------------------------- the trace


class Var:
    """A value the plan computes: an argument leaf, a step's output, or a live tensor."""

    __slots__ = ("kind", "index", "step", "k", "shape", "dtype", "wrap", "tensor", "name",
                 "alias", "last", "nbytes")

    def __init__(self, kind: str, data: Any, step: Step | None = None, k: int = 0,
                 wrap: bool = False, tensor: Tensor | None = None) -> None:
        self.kind = kind  # "arg", "step" or "live"
        self.step = step
        self.k = k
        self.shape = getattr(data, "shape", ())
        self.dtype = getattr(data, "dtype", None)
        self.nbytes = getattr(data, "nbytes", 0)
        self.wrap = wrap  # the engine made an array of the forward's result (a scalar)
        self.tensor = tensor  # a live tensor (read at every call)
        self.name = ""
        self.alias: Var | None = None  # an identity view of this other value
        self.last = -1  # index of the last step that reads it
        self.index = 0


class Step:
    """One call of the plan: ``outs = fn(*args, **params)``."""

    __slots__ = ("fn", "name", "args", "params", "variadic", "outs", "op", "view", "guard",
                 "vars", "pvars")

    def __init__(self, fn: Callable[..., Any], name: str, args: list, params: dict,
                 variadic: bool, op: Any = None, pvars: list | None = None) -> None:
        self.fn = fn
        self.name = name
        self.args = args
        self.params = params
        self.variadic = variadic
        self.outs: list[Var] = []
        self.op = op
        self.view = False
        self.guard: bool | None = None  # a guard step: bool(args[0]) must be this
        self.pvars = pvars if pvars is not None else _vars_in(params, [])  # Vars in params
        self.vars = [a for a in args if type(a) is Var] + self.pvars  # every Var it reads


def _vars_in(x: Any, out: list) -> list:
    """The Vars in a (nested) argument or param value."""
    if type(x) is Var:
        out.append(x)
    elif type(x) in (tuple, list):
        for v in x:
            _vars_in(v, out)
    elif type(x) is dict:
        for v in x.values():
            _vars_in(v, out)
    elif type(x) is slice:
        _vars_in((x.start, x.stop, x.step), out)
    return out


class Tracer:
    """What ``tg.compile`` installs as ``STATE.thread.trace`` while ``f`` runs.

    The engine calls :meth:`call` for every op call, :meth:`numpy` for NumPy functions
    without an op (and comparisons) on Tensors, :meth:`escape` when a value is about to
    leave for Python, and :meth:`made` when a Tensor is constructed. Values are known
    by the identity of their arrays (``id``; every such array is kept alive here).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: dict[int, Var] = {}
        self.keep: list[Any] = []
        self.steps: list[Step] = []
        self.mine: set[int] = set()  # ids of Tensors made while tracing
        self.lives: dict[int, Var] = {}
        self.args: list[Var] = []

    # ------------------------------------------------------------------ values
    def error(self, what: str, hint: str = "") -> CompileError:
        hint = hint or ("Compute it with ops instead (tg.ops.where(cond, a, b) for a "
                        "branch on values, comparisons and masks as arrays), or keep this "
                        "function eager (don't tg.compile it)")
        return CompileError(f"tg.compile({self.name}): {what} at {_user_site()}. The "
                            f"compiled plan cannot follow it. {hint}")

    def _bind(self, arr: Any, var: Var) -> None:
        self.ids[id(arr)] = var
        self.keep.append(arr)

    def arg(self, data: ndarray) -> Tensor:
        """A fresh Tensor for an argument leaf (a leaf requiring grad when floating)."""
        t = _make(data, None)
        if data.dtype.kind in "fc":
            t._node = Leaf(t)
        v = Var("arg", data)
        self.args.append(v)
        self._bind(data, v)
        self.mine.add(id(t))
        self.keep.append(t)
        return t

    def _live(self, t: Tensor) -> Var:
        v = self.lives.get(id(t))
        if v is None:
            v = self.lives[id(t)] = Var("live", t._data, tensor=t)
            self._bind(t._data, v)
            self.keep.append(t)
        return v

    def ref(self, x: Any, node: Any = None) -> Any:
        """``x`` as the plan sees it: a Var, or ``x`` itself (a constant)."""
        v = self.ids.get(id(x))
        if v is not None:
            return v
        tx = type(x)
        if tx is Tensor or isinstance(x, Tensor):
            return self.ref(x._data, x._node)
        if isinstance(node, Leaf):  # a tensor f closes over that requires grad
            t = node.tensor
            if t is not None and id(t) not in self.mine:
                return self._live(t)
            return x
        if tx is tuple or tx is list:
            items = [self.ref(v) for v in x]
            return tx(items) if any(type(v) is Var or v is not o
                                    for v, o in zip(items, x, strict=True)) else x
        if tx is dict:
            items = {k: self.ref(v) for k, v in x.items()}
            return items if any(items[k] is not x[k] for k in x) else x
        if tx is slice:
            parts = (self.ref(x.start), self.ref(x.stop), self.ref(x.step))
            return slice(*parts) if _vars_in(parts, []) else x
        return x

    # ------------------------------------------------------------------ hooks
    def call(self, info: Any, arrays: list, parents: list, params: dict, out: Any,
             tracked: bool) -> Any:
        """An op call (from the op caller): record it as usual, and as a step."""
        if info.name in _NOT_COMPILABLE or info.definition.__dict__.get("compilable") \
                is False:
            why = _NOT_COMPILABLE.get(info.name) or "it declares itself not compilable"
            raise self.error(f"op {info.name!r} (from {info.source}) was called",
                             f"{why}; keep this function eager, or call the op outside "
                             "the compiled function and pass its result in")
        result = record(info, parents, arrays, out, params) if tracked else \
            untracked(info, out)
        ref = self.ref
        args = [ref(a, n) for a, n in zip(arrays, parents, strict=True)]
        if params is info.params or not params:  # the defaults: never traced values
            ps, pvars = params, []
        else:
            ps = ref(params)
            pvars = _vars_in(ps, [])
        if not pvars and not any(type(a) is Var for a in args):
            return result  # constants only: folded (the result is a constant)
        if info.name == "getitem" and any(v.dtype is not None and v.dtype.kind == "b"
                                          for v in pvars):
            raise self.error("indexing with a boolean mask computed from traced values",
                             "The result's shape depends on the values. Use "
                             "tg.ops.where(mask, x, 0) (or multiply by the mask) instead, "
                             "or keep this function eager")
        step = Step(info.definition.forward, info.name, args, ps, info.variadic, info, pvars)
        outs = result if isinstance(result, tuple) else (result,)
        raws = out if isinstance(out, tuple) else (out,)
        for k, (t, raw) in enumerate(zip(outs, raws, strict=True)):
            v = Var("step", t._data, step, k, wrap=type(raw) is not ndarray)
            step.outs.append(v)
            self._bind(t._data, v)
            if type(raw) is ndarray and raw is not t._data:
                self._bind(raw, v)
        if info.name in _VIEW_OPS and len(outs) == 1 and args and type(args[0]) is Var:
            step.view = _is_identity(arrays[0], outs[0]._data)
        self.steps.append(step)
        if tracked:
            self._saved(outs[0]._node, arrays, parents)
        return result

    def _saved(self, node: Any, arrays: list, parents: list) -> None:
        """Copies the engine saved of traced inputs (protect.py) stand for those inputs."""
        rec = node.record if type(node) is Part else node
        if type(rec) is not Record or rec.saved is None or rec.saved is arrays:
            return
        for a, s, n in zip(arrays, rec.saved, parents, strict=False):
            if type(s) is ndarray and s is not a:
                v = self.ref(a, n)
                if type(v) is Var:
                    self._bind(s, v)

    def numpy(self, func: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        """A NumPy function (or comparison) without an op, called on Tensors."""
        margs, mkw = self.ref(tuple(args)), self.ref(dict(kwargs))
        plain_args, plain_kw = _unwrap(tuple(args)), _unwrap(dict(kwargs))
        if not _vars_in((margs, mkw), []) or func in _SHAPE_ONLY:
            return func(*plain_args, **plain_kw)
        if getattr(func, "__name__", "") == "__call__" and isinstance(
                getattr(func, "__self__", None), np.ufunc):
            func = func.__self__  # np.greater itself, not its bound __call__
        name = _func_name(func)
        if "out" in kwargs or name.endswith("_at"):
            raise self.error(f"np.{name.replace('_', '.', 1) if '_' in name else name} "
                             "writes in place into an array", "Write the computation "
                             "functionally, or keep this function eager")
        if func in _VALUE_SHAPED:
            raise self.error(f"np.{name} on a traced value (its result's shape depends on "
                             "the values)", "Use masks (tg.ops.where) instead, or keep "
                             "this function eager")
        res = func(*plain_args, **plain_kw)
        multi = isinstance(res, tuple)
        raws = res if multi else (res,)
        if not all(isinstance(r, (ndarray, np.generic)) for r in raws):
            raise self.error(f"np.{name} on a traced value returned a Python "
                             f"{type(raws[0]).__name__}, a value leaving for Python")
        step = Step(func, name, list(margs), mkw, False, None)
        outs = []
        for k, raw in enumerate(raws):
            data = raw if type(raw) is ndarray else np.asarray(raw)
            v = Var("step", data, step, k, wrap=type(raw) is not ndarray)
            step.outs.append(v)
            self._bind(data, v)
            outs.append(_make(data, None))
        self.steps.append(step)
        return (tuple(outs) if type(res) is tuple else type(res)(*outs)) if multi else outs[0]

    def escape(self, t: Any, what: str) -> None:
        """``t``'s value is about to leave for Python: refuse it if it can change.

        Except a truth test inside an op's rule (a vjp choosing its fast path when no
        input is zero, say): that becomes a guard, a step checking that the test comes
        out the same; when it does not, the call runs ``f`` eagerly.
        """
        if t is None:
            raise self.error(what)
        if id(t._data) in self.ids or (isinstance(t._node, Leaf) and id(t) not in self.mine):
            if what == "bool()" and _in_rule():
                step = Step(bool, "guard", [self.ref(t)], {}, False)
                step.guard = bool(t._data)
                self.steps.append(step)
                return
            raise self.error(f"{what} of a traced tensor (its value reaches Python)")

    def made(self, t: Tensor, data: Any) -> None:
        """A Tensor was constructed (``tg.tensor(...)``) while tracing."""
        self.mine.add(id(t))
        self.keep.append(t)
        src = self.ref(data)
        if type(src) is Var:  # a copy of a traced value: a step of the plan
            step = Step(np.array, "array", [src], {"dtype": t._data.dtype, "copy": True},
                        False)
            v = Var("step", t._data, step)
            step.outs.append(v)
            self._bind(t._data, v)
            self.steps.append(step)


_PKG = __file__.rsplit("/", 1)[0]
_HOOKS = tuple(f"{_PKG}/{m}.py" for m in ("compiler", "tensor", "dispatch"))


def _in_rule() -> bool:
    """Whether the code asking for a value is an op's rule (or other tapegrad code),
    not the user's: a vjp under create_graph, or a frame inside the package."""
    if STATE.thread.strict:
        return True
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename in _HOOKS:
        f = f.f_back
    return f is not None and f.f_code.co_filename.startswith(_PKG)


def _is_identity(a: Any, b: Any) -> bool:
    """Whether array ``b`` is ``a`` itself or a view with the same layout (a no-op)."""
    if type(a) is not ndarray or type(b) is not ndarray:
        return False
    return (a.shape == b.shape and a.dtype == b.dtype and a.strides == b.strides
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _func_name(func: Any) -> str:
    owner = getattr(func, "__self__", None)
    if isinstance(owner, np.ufunc):
        return f"{owner.__name__}_{func.__name__}"
    return getattr(func, "__name__", type(func).__name__)


# ----------------------------------------------------------------------- the plan


class Plan:
    """One traced signature: its steps, run by a flat loop at first and, once the plan
    has been reused (``HOT`` calls), by straight-line code generated from it.

    ``source`` is that code (generated on first read); ``n_steps`` the number of steps.
    """

    def __init__(self, tracer: Tracer, out_def: tree.TreeDef, out_refs: list,
                 arg_names: list[str], name: str) -> None:
        self.name = name
        self.steps = _prune(tracer.steps, out_refs)
        self.n_steps = len(self.steps)
        self.args = tracer.args
        self.lives = list(tracer.lives.values())
        self.out_def = out_def
        self.out_refs = out_refs
        self.arg_names = arg_names
        self.calls = 0
        self.generated = False
        self._source: str | None = None
        self._namespace: dict[str, Any] = {}
        self._fname = ""
        self._floats: tuple[str, dict, str] | None = None
        self._numpy_source = ""
        self.run = _flat(self)

    @property
    def source(self) -> str:
        """The plan as the source of one Python function (two when every value is a
        float64 scalar: the one on Python floats first, then its NumPy fallback)."""
        if self._source is None:
            self._source, self._namespace, self._fname = _generate(self)
            self._numpy_source = self._source
            self._floats = _generate_floats(self)
            if self._floats is not None:
                self._source = self._floats[0] + "\n\n" + self._source
        return self._source

    def generate(self) -> None:
        """Replace the flat loop by the compiled straight-line code."""
        self.source  # noqa: B018 - generates the sources
        run = _exec(self._numpy_source, self._namespace, self._fname, self.name)
        if self._floats is not None:
            fsource, fns, fname = self._floats
            fns["_numpy_plan"] = run
            run = _exec(fsource, fns, fname, self.name)
        self.run = run
        self.generated = True


def _exec(source: str, namespace: dict, fname: str, name: str) -> Callable[..., Any]:
    """The function ``fname`` defined by generated ``source`` (shown in tracebacks)."""
    filename = f"<tg.compile {name} #{next(_plan_ids)}>"
    code = builtins.compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(code, namespace)  # noqa: S102 - generated from the trace, never from user text
    return namespace[fname]


_plan_ids = iter(range(1, 1 << 62))
_NO = object()


def _resolve(x: Any) -> Any:
    while type(x) is Var and x.alias is not None:
        x = x.alias
    return x


def _prune(steps: list[Step], out_refs: list) -> list[Step]:
    """Alias identity views and repeated calls (the same function on the same values:
    a vjp recomputing ``out * out``), drop the steps nothing needs, note each value's
    last use."""
    seen: dict[Any, Step] = {}
    pkeys: dict[int, Any] = {}  # params dicts are often shared (an op's defaults)
    for s in steps:
        s.args = [_resolve(a) if type(a) is Var else a for a in s.args]
        if s.pvars:
            s.params = _map_vars(s.params, _resolve)
            s.pvars = [_resolve(v) for v in s.pvars]
        s.vars = [_resolve(v) for v in s.vars]
        if s.view:
            s.outs[0].alias = s.args[0]
            continue
        if s.guard is not None:
            continue
        same = _times_one(s)
        if same is not None:  # x * 1 (a seed of ones, a 1.0 factor): x itself
            s.outs[0].alias = same
            s.view = True
            continue
        if s.pvars:
            pkey = _key(s.params)
        else:
            pkey = pkeys.get(id(s.params), _NO)
            if pkey is _NO:
                pkey = pkeys[id(s.params)] = _key(s.params)
        akey = tuple(("v", id(a)) if type(a) is Var else _key(a) for a in s.args)
        if pkey is None or None in akey:
            continue
        key = (id(s.fn), akey, pkey)
        first = seen.get(key)
        if first is None:
            seen[key] = s
            continue
        s.view = True  # a repeat: its outputs are the first call's
        for v, w in zip(s.outs, first.outs, strict=True):
            v.alias = w
    needed: set[int] = {id(_resolve(v)) for v in _vars_in(out_refs, [])}
    kept = []
    for s in reversed(steps):
        if s.view or (s.guard is None and not any(id(v) in needed for v in s.outs)):
            continue
        kept.append(s)
        for v in s.vars:
            needed.add(id(v))
    kept.reverse()
    for i, s in enumerate(kept):
        for v in s.vars:
            v.last = i
    return kept


def _flat(plan: Plan) -> Callable[..., Any]:
    """The plan as a loop over its steps, reading and writing a list of registers.

    Cheap to build (no source, no ``compile``): what runs the first calls of a plan.
    """
    slots: dict[int, int] = {}
    regs0: list[Any] = []

    def new(v: Var | None = None) -> int:
        regs0.append(None)
        if v is not None:
            slots[id(v)] = len(regs0) - 1
        return len(regs0) - 1

    def reg(x: Any) -> int:
        if type(x) is Var:
            return slots[id(_resolve(x))]
        regs0.append(x)
        return len(regs0) - 1

    for v in plan.args:
        new(v)
    lives = [(new(v), v.tensor, v.shape, v.dtype) for v in plan.lives]
    outputs = {id(_resolve(r)) for r in plan.out_refs if type(r) is Var}
    prog: list[tuple] = []
    for i, s in enumerate(plan.steps):
        if s.guard is not None:
            prog.append((2, bool, reg(s.args[0]), s.guard, None, None))
            continue
        ins = tuple(reg(a) for a in s.args)
        outs = tuple(new(v) for v in s.outs)
        frees = tuple(slots[id(v)] for v in dict.fromkeys(s.vars)
                      if v.last == i and v.kind == "step" and v.nbytes >= FREE_BYTES
                      and id(v) not in outputs) or None
        checks = tuple((o, v.dtype) for o, v in zip(outs, s.outs, strict=True)) \
            if s.name in _VALUE_DTYPED and s.op is not None else None
        if (len(outs) == 1 and not s.variadic and not s.pvars and not s.outs[0].wrap
                and frees is None and checks is None):
            prog.append((0, s.fn, ins, s.params or {}, outs[0], None))
        else:
            params = s.params or {}
            kw = (lambda r, p=params: _map_vars(p, lambda x: r[slots[id(x)]])) \
                if s.pvars else params
            wraps = tuple(v.wrap for v in s.outs)
            prog.append((1, s.fn, ins, kw, outs, (s.variadic, wraps, checks, frees)))
    n_args = len(plan.args)
    results = [(True, slots[id(_resolve(r))]) if type(r) is Var else (False, r)
               for r in plan.out_refs]
    out_def = plan.out_def
    asarray = np.asarray

    def run(*leaves: Any) -> Any:
        r = regs0.copy()
        r[:n_args] = leaves
        for k, t, shape, dtype in lives:
            d = t._data
            if d.shape != shape or d.dtype != dtype:
                raise _Stale
            r[k] = d
        for kind, fn, ins, kw, out, extra in prog:
            if kind == 0:
                r[out] = fn(*[r[i] for i in ins], **kw)
            elif kind == 1:
                variadic, wraps, checks, frees = extra
                args = [[r[i] for i in ins]] if variadic else [r[i] for i in ins]
                res = fn(*args, **(kw(r) if callable(kw) else kw))
                for o, v, w in zip(out, res if len(out) > 1 else (res,), wraps, strict=True):
                    r[o] = asarray(v) if w else v
                if checks is not None and any(r[o].dtype != d for o, d in checks):
                    raise _Guard
                if frees is not None:
                    for j in frees:
                        r[j] = None
            elif bool(r[ins]) is not kw:
                raise _Guard
        return tree.unflatten(out_def, [r[x] if is_reg else
                                        (x.copy() if type(x) is ndarray else x)
                                        for is_reg, x in results])

    return run


def _times_one(s: Step) -> Var | None:
    """``x`` for a step computing ``x * 1`` or ``x / 1`` that leaves ``x`` as it is (its
    shape and dtype), else None."""
    if (s.fn is not np.multiply and s.fn is not np.true_divide) or len(s.args) != 2 \
            or s.params:
        return None
    out = s.outs[0]
    pairs = ((s.args[0], s.args[1]), (s.args[1], s.args[0])) if s.fn is np.multiply \
        else ((s.args[0], s.args[1]),)
    for a, b in pairs:
        if type(a) is Var and type(b) is not Var and a.shape == out.shape \
                and a.dtype == out.dtype:
            if type(b) in (int, float) and b == 1:
                return a
            if type(b) is ndarray and b.ndim <= len(out.shape) and b.dtype.kind in "fc" \
                    and np.all(b == 1):
                return a
    return None


def _key(x: Any) -> Any:
    """A hashable key for a step's call (values by identity), or None."""
    tx = type(x)
    if tx is Var:
        return ("v", id(x))
    if tx is tuple or tx is list:
        items = tuple(_key(v) for v in x)
        return None if None in items else (tx.__name__, items)
    if tx is dict:
        items = tuple((k, _key(v)) for k, v in x.items())
        return None if any(v is None for _, v in items) else ("d", items)
    if tx is slice:
        return _key(("slice", x.start, x.stop, x.step))
    if x is None or tx in (bool, int, float, complex, str):
        return (tx.__name__, x)
    if isinstance(x, np.dtype):
        return ("dtype", x.str)
    return ("id", id(x))  # arrays and other constants: by identity


def _map_vars(x: Any, fn: Callable[[Var], Any]) -> Any:
    tx = type(x)
    if tx is Var:
        return fn(x)
    if tx is tuple or tx is list:
        return tx(_map_vars(v, fn) for v in x)
    if tx is dict:
        return {k: _map_vars(v, fn) for k, v in x.items()}
    if tx is slice:
        return slice(_map_vars(x.start, fn), _map_vars(x.stop, fn), _map_vars(x.step, fn))
    return x


class _Namer:
    """Identifiers for the generated code, unique within one plan."""

    def __init__(self) -> None:
        self.used = set(keyword.kwlist)  # builtins may be shadowed: the code calls none

    def __call__(self, want: str) -> str:
        base = re.sub(r"\W+", "_", want).strip("_") or "v"
        if base[0].isdigit():
            base = "_" + base
        name, i = base, 1
        while name in self.used:
            i += 1
            name = f"{base}_{i}"
        self.used.add(name)
        return name


_LITERAL_TYPES = (bool, int, str, type(None))
# ufuncs written as Python operators (the same call on arrays, and code that reads like
# the NumPy one writes by hand).
_BINARY = {np.add: "+", np.subtract: "-", np.multiply: "*", np.true_divide: "/",
           np.floor_divide: "//", np.remainder: "%", np.power: "**", np.matmul: "@",
           np.greater: ">", np.less: "<", np.greater_equal: ">=", np.less_equal: "<=",
           np.equal: "==", np.not_equal: "!=", np.bitwise_and: "&", np.bitwise_or: "|",
           np.bitwise_xor: "^"}
_UNARY = {np.negative: "-", np.invert: "~"}


class _Emitter:
    """Renders values as Python expressions; constants go to the namespace."""

    def __init__(self, namer: _Namer, ns: dict) -> None:
        self.namer = namer
        self.ns = ns
        self.consts: dict[int, str] = {}
        self.funcs: dict[int, str] = {}

    def const(self, x: Any, hint: str = "c") -> str:
        name = self.consts.get(id(x))
        if name is None:
            name = self.consts[id(x)] = self.namer(hint)
            self.ns[name] = x
        return name

    def func(self, fn: Any, want: str) -> str:
        name = self.funcs.get(id(fn))
        if name is None:
            name = self.funcs[id(fn)] = self.namer(want)
            self.ns[name] = fn
        return name

    def expr(self, x: Any) -> str:
        tx = type(x)
        if tx is Var:
            return _resolve(x).name
        if tx in _LITERAL_TYPES:
            return repr(x)
        if tx is float:
            return repr(x) if np.isfinite(x) else self.const(x)
        if x is Ellipsis:
            return "..."
        if tx is tuple:
            inner = ", ".join(self.expr(v) for v in x)
            return f"({inner},)" if len(x) == 1 else f"({inner})"
        if tx is list:
            return "[" + ", ".join(self.expr(v) for v in x) + "]"
        if tx is slice:
            return f"slice({self.expr(x.start)}, {self.expr(x.stop)}, {self.expr(x.step)})"
        if tx is dict and all(type(k) is str for k in x):
            return "{" + ", ".join(f"{k!r}: {self.expr(v)}" for k, v in x.items()) + "}"
        return self.const(x)


def _arg_names(f: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[list[str], list[str]]:
    """Names for the positional and keyword arguments of ``f`` (its parameters' names)."""
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    pos = []
    for i in range(len(args)):
        if i < len(params) and params[i].kind in (params[i].POSITIONAL_ONLY,
                                                  params[i].POSITIONAL_OR_KEYWORD):
            pos.append(params[i].name)
        elif params and params[-1].kind is params[-1].VAR_POSITIONAL:
            pos.append(f"{params[-1].name}{i}")
        else:
            pos.append(f"arg{i}")
    return pos, list(kwargs)


def _generate(plan: Plan) -> tuple[str, dict, str]:
    """The plan as the source of one function, and its namespace."""
    namer = _Namer()
    ns: dict[str, Any] = {"asarray": np.asarray, "_Stale": _Stale, "_Guard": _Guard}
    namer.used.update(ns)
    em = _Emitter(namer, ns)
    fname = namer("compiled_" + re.sub(r"\W+", "_", plan.name).strip("_"))
    for v, want in zip(plan.args, plan.arg_names, strict=True):
        v.name = namer(want)
    lines = [f"def {fname}({', '.join(v.name for v in plan.args)}):"]
    for i, v in enumerate(plan.lives):
        t = v.tensor
        v.name = namer(t.name or f"live{i}")
        tname = em.const(t, f"{v.name}_tensor")
        shape = em.const(v.shape, f"{v.name}_shape")
        dtype = em.const(v.dtype, f"{v.name}_dtype")
        lines.append(f"    {v.name} = {tname}._data  # a tensor f reads: its value now")
        lines.append(f"    if {v.name}.shape != {shape} or {v.name}.dtype != {dtype}:")
        lines.append("        raise _Stale")
    outputs = {id(_resolve(r)) for r in plan.out_refs if type(r) is Var}
    reuse = _Buffers(plan.steps, outputs)
    counter = 0
    for i, s in enumerate(plan.steps):
        if s.guard is not None:
            lines.append(f"    if {'not ' if s.guard else ''}{em.expr(s.args[0])}:")
            lines.append("        raise _Guard  # a rule's test came out differently: eager")
            continue
        buf = reuse.dead_buffer(i, s)
        call = None if buf is not None else _operator(s, em)
        if call is None:
            call = _call(s, em)
            if buf is not None:  # the result goes into an array nothing reads any more
                call = f"{call[:-1]}, out={buf.name})"
        outs = []
        for v in s.outs:
            counter += 1
            v.name = namer(f"v{counter}")
            outs.append(v.name if v.last >= 0 or id(v) in outputs else "_")
        _assign(lines, s, call, outs, em)
        dead = [v.name for v in dict.fromkeys(s.vars)
                if v.last == i and v.kind == "step" and id(v) not in outputs]
        if dead:
            lines.append(f"    del {', '.join(dead)}")
    leaves = [_out_expr(r, em) for r in plan.out_refs]
    lines.append(f"    return {_tree_expr(plan.out_def, iter(leaves), em)}")
    lines[1:1] = _legend(em)
    return "\n".join(lines) + "\n", ns, fname


def _legend(em: _Emitter) -> list[str]:
    """Comment lines saying what the constants of the plan are."""
    shown = []
    for name in em.consts.values():
        x = em.ns[name]
        if type(x) is ndarray:
            if x.size <= 3:
                what = np.array2string(x, separator=", ", precision=4).replace("\n", "")
                what = f"{what} ({x.dtype})" if x.ndim else f"{x.item()!r} (a {x.dtype} array)"
            elif x.size and np.all(x == x.flat[0]):
                what = f"full({x.shape}, {x.flat[0].item()!r}) ({x.dtype})"
            else:
                what = f"an array of shape {x.shape} ({x.dtype})"
        elif isinstance(x, Tensor):
            continue  # (a live tensor: named on its own line)
        else:
            what = repr(x)
            what = what if len(what) <= 60 else what[:57] + "..."
        shown.append(f"    # {name} = {what}")
    return shown


class _Buffers:
    """Which dead array a step may write its result into (NumPy's ``out=``).

    Only a ufunc's own results qualify (always fresh arrays of the traced shape and
    dtype), only for a ufunc step of the same shape and dtype, only at the step that
    reads the array last, and only when nothing else can still reach its memory:
    results of other steps may be views of their inputs (``x.T``), so an array and
    everything computed from it by non-ufunc steps share one lifetime here.
    """

    def __init__(self, steps: list[Step], outputs: set[int]) -> None:
        parent: dict[int, int] = {}

        def find(k: int) -> int:
            while parent.get(k, k) != k:
                k = parent[k]
            return k

        self.find = find
        for s in steps:
            if s.guard is None and not isinstance(s.fn, np.ufunc):
                for o in s.outs:
                    for v in s.vars:
                        parent[find(id(o))] = find(id(v))
        self.last: dict[int, int] = {}
        self.pinned: set[int] = set()
        for i, s in enumerate(steps):
            for v in [*s.vars, *s.outs]:
                g = find(id(v))
                self.last[g] = max(self.last.get(g, -1), v.last, i)
                if v.kind != "step" or id(v) in outputs:
                    self.pinned.add(g)
        for k in outputs:
            self.pinned.add(find(k))

    def dead_buffer(self, i: int, s: Step) -> Var | None:
        if not isinstance(s.fn, np.ufunc) or s.fn is np.matmul or len(s.outs) != 1 \
                or s.params or s.variadic:
            return None
        out = s.outs[0]
        for a in s.args:
            if (type(a) is Var and a.kind == "step" and isinstance(a.step.fn, np.ufunc)
                    and a.shape == out.shape and a.dtype == out.dtype
                    and a.nbytes >= REUSE_BYTES and not out.wrap):
                g = self.find(id(a))
                if self.last.get(g) == i and g not in self.pinned:
                    self.pinned.add(g)  # (once: the result now lives in it)
                    return a
        return None


# ----------------------------------------------------------------------- float plans
# A plan whose every value is a float64 scalar (micrograd's workload: one op per
# number) runs on Python floats: a NumPy call on a 0-d array costs about 0.5 us, a
# float operation 0.03 us. Each step has a float form (operators, the math module);
# a float operation that fails (division by zero, overflow, a math domain error: NumPy
# would give inf or NaN with a warning) makes the call run the NumPy plan instead, so
# results are NumPy's. Elementary functions may differ from NumPy's in the last bit.

_MATH = {np.tanh: "tanh", np.exp: "exp", np.log: "log", np.sin: "sin", np.cos: "cos",
         np.tan: "tan", np.sqrt: "sqrt", np.arctan: "atan", np.arcsin: "asin",
         np.arccos: "acos", np.sinh: "sinh", np.cosh: "cosh", np.expm1: "expm1",
         np.log1p: "log1p", np.log2: "log2", np.log10: "log10", np.arctan2: "atan2"}
_FLOAT_BINARY = {k: v for k, v in _BINARY.items() if k not in (np.matmul, np.power)}
_FLOAT_KINDS = (np.dtype(np.float64), np.dtype(np.bool_))
_SHAPE_OPS = frozenset({"reshape", "broadcast_to", "squeeze", "expand_dims", "ravel",
                        "copy", "clone", "sum", "transpose", "atleast_1d"})


def _generate_floats(plan: Plan) -> tuple[str, dict, str] | None:
    """The plan on Python floats, or None when some value or step has no float form."""
    def scalar(v: Any) -> bool:
        return type(v) is Var and v.shape == () and v.dtype in _FLOAT_KINDS

    if not plan.steps or any(not scalar(v) for v in plan.lives):
        return None
    arrays = {id(v) for v in plan.args if not scalar(v)}  # index sources only (X[i])
    exprs: list[tuple[Step, str]] = []
    namer = _Namer()
    ns: dict[str, Any] = {"asarray": np.asarray, "_Stale": _Stale, "_Guard": _Guard,
                          "math": math, "_numpy_plan": None, "_args": None}
    namer.used.update(ns)
    namer.used.update(v.name for v in plan.args)
    namer.used.update(v.name for v in plan.lives)
    namer.used.update(v.name for s in plan.steps for v in s.outs)
    em = _Emitter(namer, ns)

    def operand(x: Any) -> str | None:
        if type(x) is Var:
            x = _resolve(x)
            return x.name if scalar(x) else None
        if type(x) in (ndarray, np.float64) and np.shape(x) == () and x.dtype == np.float64:
            x = float(x)
        if type(x) in (float, int, bool):
            text = repr(x) if np.isfinite(x) else f"float({str(float(x))!r})"
            return f"({text})" if text.startswith("-") else text
        return None

    for s in plan.steps:
        out = s.outs[0]
        if s.guard is not None:
            exprs.append((s, ""))
            continue
        if len(s.outs) != 1 or s.variadic or s.name in _VALUE_DTYPED:
            return None
        if s.name == "getitem" and type(s.args[0]) is Var and id(s.args[0]) in arrays \
                and not s.pvars:
            index = em.expr(s.params["index"])
            if scalar(out):
                exprs.append((s, f"float({s.args[0].name}[{index}])"))
            else:
                arrays.add(id(out))
                exprs.append((s, f"{s.args[0].name}[{index}]"))
            continue
        if not scalar(out) or s.pvars:
            return None
        ins = [operand(a) for a in s.args]
        if None in ins:
            return None
        fn, params = s.fn, s.params or {}
        try:
            binary = _FLOAT_BINARY.get(fn) if len(ins) == 2 and not params else None
            unary = _MATH.get(fn) if not params else None
        except TypeError:
            binary = unary = None
        if binary is not None:
            expr = f"{ins[0]} {binary} {ins[1]}"
        elif unary is not None:
            expr = f"math.{unary}({', '.join(ins)})"
        elif fn is np.negative and len(ins) == 1:
            expr = f"-{ins[0]}"
        elif fn is np.power and len(ins) == 2 and not params:
            expr = f"math.pow({ins[0]}, {ins[1]})"
        elif fn is np.absolute and len(ins) == 1:
            expr = f"abs({ins[0]})"
        elif s.name == "relu" and len(ins) == 1:
            expr = f"max({ins[0]}, 0.0)"
        elif s.name == "astype" and len(ins) == 1 and out.dtype == np.float64:
            expr = f"float({ins[0]})"
        elif s.name in _SHAPE_OPS and len(ins) == 1:
            expr = ins[0]  # a reshape, a sum... of one number: the number
        else:
            return None
        exprs.append((s, expr))
    fname = namer("compiled_" + re.sub(r"\W+", "_", plan.name).strip("_") + "_floats")
    names = ", ".join(v.name for v in plan.args)
    lines = [f"def {fname}({names}):",
             "    # on Python floats; the NumPy plan below runs if a float operation fails",
             f"    _args = ({names}{',' if len(plan.args) == 1 else ''})",
             "    try:"]
    for v in plan.args:
        if scalar(v):
            lines.append(f"        {v.name} = {'float' if v.dtype == np.float64 else 'bool'}"
                         f"({v.name})")
    for v in plan.lives:
        tname = em.const(v.tensor, f"{v.name}_tensor")
        lines.append(f"        {v.name} = {tname}._data")
        lines.append(f"        if {v.name}.shape != () or {v.name}.dtype != "
                     f"{em.const(v.dtype, 'float64')}:")
        lines.append("            raise _Stale")
        lines.append(f"        {v.name} = float({v.name})")
    for s, expr in exprs:
        if s.guard is not None:
            lines.append(f"        if {'not ' if s.guard else ''}{s.args[0].name}:")
            lines.append("            raise _Guard")
        else:
            lines.append(f"        {s.outs[0].name} = {expr}")
    lines.append("    except (ArithmeticError, ValueError):")
    lines.append("        return _numpy_plan(*_args)")
    leaves = [f"asarray({_resolve(r).name})" if scalar(r) else
              (_resolve(r).name if type(r) is Var else _out_expr(r, em))
              for r in plan.out_refs]
    lines.append(f"    return {_tree_expr(plan.out_def, iter(leaves), em)}")
    return "\n".join(lines) + "\n", ns, fname


def _operator(s: Step, em: _Emitter) -> str | None:
    """``a * b`` for a step calling a ufunc that has a Python operator, else None."""
    if s.params or s.variadic or not any(type(a) is Var for a in s.args):
        return None
    try:
        op = _BINARY.get(s.fn) if len(s.args) == 2 else _UNARY.get(s.fn) \
            if len(s.args) == 1 else None
    except TypeError:  # an unhashable function
        return None
    if op is None:
        return None
    ops = [em.expr(a) for a in s.args]
    ops = [f"({o})" if o.startswith("-") else o for o in ops]
    return f"{ops[0]} {op} {ops[1]}" if len(ops) == 2 else f"{op}{ops[0]}"


def _call(s: Step, em: _Emitter) -> str:
    """``fn(args, params)`` for a step."""
    fn = em.func(s.fn, s.name)
    if s.variadic:
        parts = [em.expr(list(s.args))]
    else:
        parts = [em.expr(a) for a in s.args]
    defaults = _defaults(s.fn)
    for k, val in (s.params or {}).items():
        if k in defaults and _same(defaults[k], val):
            continue
        parts.append(f"{k}={em.expr(val)}")
    return f"{fn}({', '.join(parts)})"


def _assign(lines: list[str], s: Step, call: str, outs: list[str], em: _Emitter) -> None:
    """The statement(s) binding a step's outputs."""
    if len(s.outs) == 1:
        v = s.outs[0]
        lines.append(f"    {v.name} = {'asarray(' + call + ')' if v.wrap else call}")
    else:
        lines.append(f"    {', '.join(outs)} = {call}")
        for v, o in zip(s.outs, outs, strict=True):
            if v.wrap and o != "_":
                lines.append(f"    {v.name} = asarray({v.name})")
    if s.name in _VALUE_DTYPED and s.op is not None:
        for v, o in zip(s.outs, outs, strict=True):
            if o != "_":
                lines.append(f"    if {v.name}.dtype != {em.const(v.dtype, 'dtype')}:")
                lines.append("        raise _Guard  # the result's dtype depends on values")


@functools.lru_cache(maxsize=1024)
def _defaults(fn: Callable[..., Any]) -> dict:
    """The keyword defaults of a forward (params equal to them are left out)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in sig.parameters.values() if p.default is not p.empty}


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b) or not isinstance(a, (bool, int, float, str, tuple)):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - arrays inside tuples: not the same
        return False


def _out_expr(r: Any, em: _Emitter) -> str:
    if type(r) is Var:
        return _resolve(r).name
    if type(r) is ndarray:
        return f"{em.const(r)}.copy()"  # the caller may write into it; the plan keeps it
    return em.expr(r)


def _tree_expr(d: tree.TreeDef, leaves: Any, em: _Emitter) -> str:
    kind = d.kind
    if kind == "leaf":
        return next(leaves)
    if kind == "none":
        return "None"
    items = [_tree_expr(c, leaves, em) for c in d.children]
    if kind == "list":
        return "[" + ", ".join(items) + "]"
    if kind == "tuple":
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if kind == "named":
        return f"{em.const(d.node_type, d.node_type.__name__)}({', '.join(items)})"
    if kind == "dict" and d.node_type is dict:
        return "{" + ", ".join(f"{em.expr(k)}: {v}" for k, v in zip(d.keys, items,
                                                                   strict=True)) + "}"
    body = ", ".join(f"({em.expr(k)}, {v})" for k, v in zip(d.keys, items, strict=True))
    if d.extra is not None:
        return f"{em.const(d.node_type, d.node_type.__name__)}({em.const(d.extra)}, [{body}])"
    return f"{em.const(d.node_type, d.node_type.__name__)}([{body}])"


class _Stale(Exception):
    """A live tensor's shape or dtype changed since the trace: trace again."""


class _Guard(Exception):
    """A guard of the plan failed: this call runs ``f`` eagerly."""


# ----------------------------------------------------------------------- the wrapper


CacheInfo = namedtuple("CacheInfo", "hits misses retraces eager size maxsize")


class _Eager(Exception):
    """The call must run ``f`` eagerly (a tracked Tensor among the arguments)."""


def _classify(x: Any) -> Any:
    """An argument leaf: an array for the plan (``ndarray``), or a static value."""
    if type(x) is ndarray:
        return x
    if isinstance(x, Tensor):
        if x._node is not None:
            raise _Eager
        x = x._data
        if type(x) is not ndarray:
            raise _Eager  # Dask and other array libraries: not compiled
        return x
    if isinstance(x, (bool, int, str, bytes, type(None))):
        return _STATIC
    if isinstance(x, (float, complex, np.generic, ndarray)):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):  # a list of numbers: array data
        return np.asarray(x)
    if hasattr(x, "__array_function__"):
        raise _Eager
    return _STATIC


_STATIC = object()


class _Slow(Exception):
    """An argument :func:`_walk` leaves to the general signature (tapegrad.tree)."""


def _walk(x: Any, leaves: list, sig: list) -> None:
    """The plan's arrays in ``x`` (appended to ``leaves``) and its signature (to ``sig``):
    the common containers (list, tuple, dict) and leaves, in :mod:`tapegrad.tree`'s
    order and with its rules (a list of numbers is one array); anything else raises
    :class:`_Slow`."""
    t = type(x)
    if t is ndarray:
        leaves.append(x)
        sig.append((x.shape, x.dtype))
    elif t is list or t is tuple:
        if x and tree._is_number(x[0]) and tree._is_number_list(x):
            a = np.asarray(x)
            leaves.append(a)
            sig.append((a.shape, a.dtype))
            return
        sig.append((t, len(x)))
        for v in x:
            _walk(v, leaves, sig)
    elif t is dict:
        sig.append((dict, tuple(x)))
        for v in x.values():
            _walk(v, leaves, sig)
    elif t is float or t is complex or isinstance(x, np.generic):
        a = np.asarray(x)
        leaves.append(a)
        sig.append((a.shape, a.dtype))
    elif x is None or t is int or t is bool or t is str:
        sig.append(("s", t, x))
    elif t is Tensor:
        if x._node is not None or type(x._data) is not ndarray:
            raise _Eager
        leaves.append(x._data)
        sig.append((x._data.shape, x._data.dtype))
    else:
        raise _Slow


class Compiled:
    """The function ``tg.compile(f)`` returns. See :mod:`tapegrad.compiler`."""

    def __init__(self, f: Callable[..., Any], cache_size: int = CACHE_SIZE,
                 warn_after: int = WARN_AFTER) -> None:
        if not callable(f):
            raise CompileError(f"tg.compile: expected a function, got {type(f).__name__}")
        if cache_size < 1:
            raise CompileError(f"tg.compile: cache_size must be at least 1, got {cache_size}")
        functools.update_wrapper(self, f)
        self.fn = f
        self.cache_size = cache_size
        self.warn_after = warn_after
        self._cache: OrderedDict[Any, Plan] = OrderedDict()
        self._lock = threading.Lock()
        self._last: Plan | None = None
        self._hits = self._misses = self._eager = 0
        self._warned = False

    # ------------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not STATE.quiet and (tracer() is not None or STATE.anomaly
                                or (STATE.thread.grad_enabled and STATE.thread.tapes)):
            return self._run_eager(args, kwargs)  # must record (or name ops): eager
        leaves: list = []
        sig: list = []
        try:
            sig.append(len(args))  # the arguments themselves: never one array
            for a in args:
                _walk(a, leaves, sig)
            _walk(kwargs, leaves, sig)
            key = tuple(sig)
        except _Eager:
            return self._run_eager(args, kwargs)
        except _Slow:  # containers of other types: the general (slower) signature
            try:
                key, leaves = self._signature(args, kwargs)
            except _Eager:
                return self._run_eager(args, kwargs)
        plan = self._cache.get(key)
        if plan is None:
            plan = self._trace(key, args, kwargs)
        else:
            self._hits += 1
            if len(self._cache) > 1:
                self._cache.move_to_end(key)
        self._last = plan
        plan.calls += 1
        if plan.calls == HOT:
            plan.generate()
        try:
            return plan.run(*leaves)
        except _Stale:  # a tensor f reads changed shape: trace again
            self._cache.pop(key, None)
            return self._trace(key, args, kwargs).run(*leaves)
        except _Guard:  # a rule's branch went the other way: this call runs eagerly
            return self._run_eager(args, kwargs)

    def _run_eager(self, args: tuple, kwargs: dict) -> Any:
        self._eager += 1
        return self.fn(*args, **kwargs)

    def _signature(self, args: tuple, kwargs: dict) -> tuple[Any, list]:
        leaves, d = tree.flatten([*args, kwargs])
        keys: list[Any] = ["tree", d]
        arrays = []
        for x in leaves:
            a = _classify(x)
            if a is _STATIC:
                try:
                    hash(x)
                    keys.append(("s", type(x), x))
                except TypeError:
                    keys.append(("id", id(x)))
            else:
                keys.append((a.shape, a.dtype))
                arrays.append(a)
        return tuple(keys), arrays

    # ------------------------------------------------------------------ tracing
    def _trace(self, key: Any, args: tuple, kwargs: dict) -> Plan:
        name = getattr(self.fn, "__name__", "f")
        tr = Tracer(name)
        leaves, d = tree.flatten([*args, kwargs])  # (a list ending with a dict: a node)
        pos_names, _ = _arg_names(self.fn, args, kwargs)
        paths = d.paths()
        new_leaves, names = [], []
        for x, path in zip(leaves, paths, strict=True):
            a = _classify(x)
            if a is _STATIC:
                new_leaves.append(x)
                continue
            new_leaves.append(tr.arg(np.array(a, copy=True)))
            names.append(_leaf_name(path, pos_names))
        *targs, tkwargs = tree.unflatten(d, new_leaves)
        if not HOOKED:
            raise CompileError("tg.compile needs an engine that hands op calls to a tracer "
                               "(STATE.thread.trace): this tapegrad's core has none")
        prev = tracer()
        with enable_grad(), Tape(persistent=True):
            STATE.thread.trace = tr
            try:
                out = self.fn(*targs, **tkwargs)
            finally:
                STATE.thread.trace = prev
        outs, out_def = tree.flatten(out)
        refs = [tr.ref(o) if isinstance(o, (Tensor, ndarray)) else o for o in outs]
        plan = Plan(tr, out_def, refs, names, name)
        with self._lock:
            self._misses += 1
            self._cache[key] = plan
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            retraces = self._misses - 1
        if retraces >= self.warn_after and not self._warned:
            self._warned = True
            warnings.warn(CompileWarning(
                f"tg.compile({name}) traced {self._misses} times: the signature of its "
                "arguments (structure, shapes, dtypes, non-array values) keeps changing, "
                "and every new one traces again. Pass varying numbers as arrays, pad "
                "shapes to a few sizes, or keep the function eager"), stacklevel=3)
        return plan

    # ------------------------------------------------------------------ inspection
    @property
    def source(self) -> str | None:
        """The source of the plan last run (``None`` before the first call)."""
        return None if self._last is None else self._last.source

    @property
    def plans(self) -> list[Plan]:
        """The cached plans, least recently used first."""
        return list(self._cache.values())

    def cache_info(self) -> CacheInfo:
        """``CacheInfo(hits, misses, retraces, eager, size, maxsize)``: plan reuses,
        traces, traces after the first, calls run eagerly, plans kept, the limit."""
        return CacheInfo(self._hits, self._misses, max(0, self._misses - 1), self._eager,
                         len(self._cache), self.cache_size)

    def cache_clear(self) -> None:
        """Forget every plan (and the counts)."""
        with self._lock:
            self._cache.clear()
            self._last = None
            self._hits = self._misses = self._eager = 0
            self._warned = False

    def __repr__(self) -> str:
        return f"<tg.compile of {getattr(self.fn, '__qualname__', self.fn)!r}>"


def _leaf_name(path: str, pos_names: list[str]) -> str:
    """``params_W`` for the leaf at ``[0]['W']`` of ``[params, x, {}]`` (the positional
    arguments, then the keyword ones)."""
    m = re.match(r"\[(\d+)\](?:\[('[^']*'|\d+)\])?(.*)", path)
    if not m:
        return "x"
    i, first, rest = int(m.group(1)), m.group(2), m.group(3)
    if i < len(pos_names):
        base = pos_names[i]
        rest = f"[{first}]{rest}" if first is not None else rest
    else:  # a keyword argument
        base = (first or "kw").strip("'")
    rest = re.sub(r"[\[\]'\".]+", "_", rest).strip("_")
    return f"{base}_{rest}" if rest else base


def compile(f: Callable[..., Any] | None = None, *, cache_size: int = CACHE_SIZE,  # noqa: A001
            warn_after: int = WARN_AFTER) -> Any:
    """Trace ``f`` once per input signature and replay the plan as plain NumPy.

    ``tg.compile(f)`` or ``@tg.compile`` (``@tg.compile(cache_size=2)`` with options).
    The compiled function returns what ``f`` returns with arrays in place of Tensors
    (as the transforms do); ``.source`` shows the plan last run, ``.cache_info()`` the
    cache. See :mod:`tapegrad.compiler` for what is traced, what is refused and why.
    """
    if f is None:
        return functools.partial(compile, cache_size=cache_size, warn_after=warn_after)
    return Compiled(f, cache_size, warn_after)
