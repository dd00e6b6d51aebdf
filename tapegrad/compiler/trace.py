"""The tracer: what the engine hands every op call, NumPy call and escaping value to
while ``tg.compile`` traces a function (``STATE.thread.trace``); it records them as the
steps of a plan, and refuses what a plan could not follow."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from ..anomaly import user_site
from ..backward import call_vjp
from ..dispatch import _unwrap
from ..entry import Leaf, Part, Record
from ..errors import CompileError
from ..state import STATE
from ..tensor import Tensor, _make, _plain
from .rules import RuleCall, as_array
from .steps import Step, Var, _vars_in

ndarray = np.ndarray
_MUL, _DIV = np.multiply, np.true_divide
_NONE: tuple = ()  # a step's params without traced values

#: Arrays the tracer knows through a weak reference (smaller ones it keeps alive).
WEAK_BYTES = 1 << 16

#: The tapegrad package's directory, and this one's (``tapegrad/compiler/``).
_PKG = __file__.rsplit("/", 2)[0]
_HERE = __file__.rsplit("/", 1)[0] + "/"

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


class Tracer:
    """What ``tg.compile`` installs as ``STATE.thread.trace`` while ``f`` runs.

    The engine calls :meth:`call` for every op call, :meth:`numpy` for NumPy functions
    without an op (and comparisons) on Tensors, :meth:`escape` when a value is about to
    leave for Python, and :meth:`made` when a Tensor is constructed. Values are known
    by the identity of their arrays (``id``), so each is kept alive while it is known:
    small ones for the whole trace, those of ``WEAK_BYTES`` or more only as long as the
    function holds them (a weak reference's callback forgets the entry when the array
    dies, before its id can be reused): tracing needs about the memory ``f`` does.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: dict[int, Var] = {}
        self.refs: list[weakref.ref] = []  # what forgets an entry of ids (see _bind)
        self.keep: list[Any] = []  # what has no weak reference (and Tensors made here)
        self.steps: list[Step] = []
        self.mine: set[int] = set()  # ids of Tensors made while tracing
        self.lives: dict[int, Var] = {}
        self.args: list[Var] = []
        self.ops: dict[int, tuple] = {}  # id(OpInfo) -> what call needs of it (see _op)
        self.uses: dict[Var, list[Step]] = {}  # a value -> the steps reading it first
        # A full trace: vjps run on Tensors (their ops traced, not one rule step each),
        # and the plan's aliases and repeats are looked for. Else a quick one.
        self.expand = False
        self.rules: dict[tuple, RuleCall] = {}

    # ------------------------------------------------------------------ values
    def error(self, what: str, hint: str = "") -> CompileError:
        hint = hint or ("Compute it with ops instead (tg.ops.where(cond, a, b) for a "
                        "branch on values, comparisons and masks as arrays), or keep this "
                        "function eager (don't tg.compile it)")
        return CompileError(f"tg.compile({self.name}): {what} at {user_site()}. The "
                            f"compiled plan cannot follow it. {hint}")

    def _bind(self, arr: Any, var: Var) -> None:
        """Know ``arr`` as ``var`` for as long as ``arr`` lives (small arrays: for as
        long as the trace, which is cheaper than a weak reference)."""
        ids = self.ids
        key = id(arr)
        ids[key] = var
        if type(arr) is ndarray and arr.nbytes < WEAK_BYTES:
            self.keep.append(arr)
            return
        try:
            self.refs.append(weakref.ref(arr, lambda _, key=key, ids=ids: ids.pop(key, None)))
        except TypeError:  # (a NumPy scalar, say): kept alive instead
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
             result: Any) -> Any:
        """An op call (from the op caller), recorded as usual (``result``): a step too.

        Runs for every op call of the trace (the backward's too): plain loops, and what
        depends on the op alone decided once per op (:meth:`_op`).
        """
        op = self.ops.get(id(info))
        if op is None:
            op = self._op(info)
        ids = self.ids
        args = []
        n_vars = 0
        for a, n in zip(arrays, parents, strict=False):  # (same lengths)
            v = ids.get(id(a))
            if v is not None:
                n_vars += 1
            elif n is None and (type(a) is ndarray or type(a) is float):
                v = a  # a constant (the common ones, without a call)
            else:
                v = self.ref(a, n)  # a live tensor f closes over, or a constant
                n_vars += type(v) is Var
            args.append(v)
        if params is info.params or not params:  # the defaults: never traced values
            ps, pvars = params, _NONE
        else:
            ps = self.ref(params)
            pvars = _vars_in(ps, [])
            if op[3] and _has_mask(pvars):
                raise self.error("indexing with a boolean mask computed from traced "
                                 "values", "The result's shape depends on the values. "
                                 "Use tg.ops.where(mask, x, 0) (or multiply by the mask) "
                                 "instead, or keep this function eager")
        if not n_vars and not pvars:
            return result  # constants only: folded (the result is a constant)
        # What the step reads: its arguments themselves when they are all traced (the
        # lists a plan keeps alive are all scanned by the cyclic GC: one fewer a step).
        reads = args if n_vars == len(args) and not pvars else _reads(args, pvars)
        fn = op[0]
        if type(result) is not Tensor:
            node = self._several(fn, info, op[1], args, ps, pvars, reads, result, out)
        else:  # one output (the common case, inline)
            d = result._data
            # A first trace (rules whole) makes the plan of a few calls only: as it comes.
            v = self._alias(op, fn, args, arrays, ps, n_vars, d, reads) if self.expand \
                else None
            if v is None and op[4]:  # a composite op: its own ops, as steps of the plan
                v = self._inline(info, arrays, params)
            if v is None:
                step = Step(fn, info.name, args, ps, op[1], info, pvars, reads)
                v = Var("step", d, fn, type(out) is not ndarray)
                step.outs.append(v)
                if self.expand:
                    self._add(step, reads[0])
                else:
                    self.steps.append(step)
            if type(d) is ndarray and d.nbytes < WEAK_BYTES:  # (_bind, inline)
                ids[id(d)] = v
                self.keep.append(d)
            else:
                self._bind(d, v)
            if type(out) is ndarray and out is not d:
                self._bind(out, v)
            node = result._node
        if node is not None:
            rec = node.record if type(node) is Part else node
            if type(rec) is Record and rec.saved is not None and rec.saved is not arrays:
                self._saved(rec.saved, arrays, parents)
        return result

    def vjp(self, rec: Record, g: Any, saved: Any) -> tuple | None:
        """A record's vjp in a backward nothing records (the outermost transform's): run
        on plain arrays as in an eager backward, and one step calling the rule (see
        :mod:`.rules`). Returns one untracked Tensor (or None) per input; None when the
        trace expands rules into their ops instead (then the vjp runs on Tensors)."""
        if self.expand:
            return None
        gs = [_plain(x) for x in g] if type(g) is tuple else [_plain(g)]
        plain_g = tuple(gs) if type(g) is tuple else gs[0]
        res = call_vjp(rec, plain_g, None)  # (the engine's checks of the rule's result)
        parents = rec.parents
        mask = []
        positions = []
        grads = []
        for i in range(len(parents)):
            if parents[i] is None:
                mask.append(None)
                grads.append(None)
                continue
            mask.append(True)  # (as the engine passes parents to a per-input vjp)
            r = res[i]
            if r is not None:
                positions.append(i)
                r = as_array(r)
            grads.append(r)
        out = rec.out
        args, reads = self._refs([*gs, *out] if type(out) is tuple else [*gs, out], saved)
        params = rec.params
        ps, pvars = params, _NONE
        if params is not rec.op.params and params:
            ps = self.ref(params)
            pvars = _vars_in(ps, [])
        if pvars:
            reads += pvars
        if positions and reads:
            self._rule_step(rec.op, tuple(mask), tuple(positions), args, ps, pvars, reads,
                            grads)
        for i in positions:
            grads[i] = _make(grads[i], None)
        return tuple(grads)

    def _refs(self, values: list, saved: Any) -> tuple[list, list]:
        """``values`` and then ``saved`` as the plan sees them (Vars or constants), and
        the Vars among them."""
        ids = self.ids
        args = []
        reads = []
        for x in (*values, *saved):
            v = ids.get(id(x))
            if v is None and x is not None:
                v = self.ref(x)
                if type(v) is not Var:
                    args.append(v)
                    continue
            elif v is None:
                args.append(None)
                continue
            args.append(v)
            reads.append(v)
        return args, reads

    def _rule_step(self, info: Any, mask: tuple, positions: tuple, args: list, ps: Any,
                   pvars: Any, reads: list, grads: list) -> None:
        """The step calling ``info``'s vjp (as :class:`RuleCall`, which returns arrays)
        for :meth:`vjp`."""
        key = (id(info), mask, positions)
        fn = self.rules.get(key)
        if fn is None:
            fn = self.rules[key] = RuleCall(info, mask, positions)
        step = Step(fn, fn.__name__, args, ps, False, None, pvars, reads)
        for i in positions:
            v = Var("step", grads[i], fn)
            step.outs.append(v)
            self._bind(grads[i], v)
        self.steps.append(step)  # (no op call repeats a rule's call: not under _add)

    def _alias(self, op: tuple, fn: Any, args: list, arrays: list, ps: Any, n_vars: int,
               d: Any, reads: list) -> Var | None:
        """The value a one-output call repeats (its result ``d`` is that value), if any:
        an identity view, a product by one, the same call again."""
        if op[2] and args and type(args[0]) is Var and _is_identity(arrays[0], d):
            return args[0]  # an identity view (x.reshape(x.shape)): x itself
        if (fn is _MUL or fn is _DIV) and n_vars == 1 and not ps:
            v = _times_one(fn, args, d)  # x * 1 (a seed of ones, a 1.0 factor): x
            if v is not None:
                return v
        first = self._repeat(fn, args, ps, reads[0])
        return None if first is None else first.outs[0]  # (a vjp recomputing out * out)

    def _inline(self, info: Any, arrays: list, params: dict) -> Var | None:
        """The value of a composite op's call with its forward run again on Tensors,
        nothing recorded, so that each op inside is a step; None (and no step left
        behind) if that forward does not run on Tensors."""
        mark = len(self.steps)
        thread = STATE.thread
        enabled, thread.grad_enabled = thread.grad_enabled, False
        try:
            res = info.definition.forward(
                *[_make(a, None) if type(a) is ndarray else a for a in arrays], **params)
        except Exception:  # noqa: BLE001 - a forward for arrays only: called whole
            res = None
        finally:
            thread.grad_enabled = enabled
        v = self.ids.get(id(res._data)) if type(res) is Tensor else None
        if v is None and len(self.steps) > mark:  # forget what the attempt traced
            gone = {id(s) for s in self.steps[mark:]}
            del self.steps[mark:]
            for steps in self.uses.values():
                steps[:] = [s for s in steps if id(s) not in gone]
        return v

    def _several(self, fn: Any, info: Any, variadic: bool, args: list, ps: Any,
                 pvars: list, reads: list, result: Any, out: Any) -> Any:
        """:meth:`call`'s outputs when the result is not one Tensor (a tuple of them);
        the first output's node."""
        outs = result if isinstance(result, tuple) else (result,)
        raws = out if isinstance(out, tuple) else (out,)
        first = self._repeat(fn, args, ps, reads[0])
        if first is not None:
            vs = first.outs
        else:
            step = Step(fn, info.name, args, ps, variadic, info, pvars, reads)
            for k in range(len(outs)):
                step.outs.append(Var("step", outs[k]._data, fn,
                                     wrap=type(raws[k]) is not ndarray))
            vs = step.outs
            self._add(step, reads[0])
        for t, raw, v in zip(outs, raws, vs, strict=True):
            self._bind(t._data, v)
            if type(raw) is ndarray and raw is not t._data:
                self._bind(raw, v)
        return outs[0]._node

    def _repeat(self, fn: Any, args: list, params: Any, anchor: Var) -> Step | None:
        """The step that made this call before (the same function on the same values,
        constants and params: its outputs are this call's), or None.

        ``anchor`` is the first traced value the call reads: the candidates are the
        steps registered under it (:meth:`_add`), a few at most.
        """
        steps = self.uses.get(anchor)
        if steps is not None:
            for s in steps:
                if s.fn is fn and _same_call(s, args, params):
                    return s
        return None

    def _add(self, step: Step, anchor: Var) -> None:
        """Append a step, known under ``anchor`` (its first value) to :meth:`_repeat`."""
        steps = self.uses.get(anchor)
        if steps is None:
            self.uses[anchor] = [step]
        else:
            steps.append(step)
        self.steps.append(step)

    def _op(self, info: Any) -> tuple:
        """What the tracer needs of an op, decided once per trace: ``(forward,
        variadic, may return an identity view, indexes by its param, to inline)``
        (``OpDef.traits``); refuses an op that cannot be part of a plan."""
        if info.name in _NOT_COMPILABLE or info.definition.__dict__.get("compilable") \
                is False:
            why = _NOT_COMPILABLE.get(info.name) or "it declares itself not compilable"
            raise self.error(f"op {info.name!r} (from {info.source}) was called",
                             f"{why}; keep this function eager, or call the op outside "
                             "the compiled function and pass its result in")
        traits = info.definition.traits
        op = self.ops[id(info)] = (info.definition.forward, info.variadic,
                                   "view" in traits, "index" in traits,
                                   "composite" in traits and self.expand)
        return op

    def _saved(self, saved: Any, arrays: list, parents: list) -> None:
        """Copies the engine saved of traced inputs (protect.py) stand for those inputs."""
        for a, s, n in zip(arrays, saved, parents, strict=False):
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
        datas = [raw if type(raw) is ndarray else np.asarray(raw) for raw in raws]
        anchor = _vars_in((step.args, mkw), [])[0]
        first = self._repeat(func, step.args, mkw, anchor)
        if first is None:
            for k, raw in enumerate(raws):
                step.outs.append(Var("step", datas[k], func,
                                     wrap=type(raw) is not ndarray))
            self._add(step, anchor)
        vs = step.outs if first is None else first.outs
        outs = []
        for data, v in zip(datas, vs, strict=True):
            self._bind(data, v)
            outs.append(_make(data, None))
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
            first = self._repeat(np.array, step.args, step.params, src)
            if first is None:
                step.outs.append(Var("step", t._data, np.array))
                self._add(step, src)
            self._bind(t._data, step.outs[0] if first is None else first.outs[0])


# The engine's files that call the tracer's hooks; with this package's, skipped when
# looking for the code asking for a value.
_HOOKS = (f"{_PKG}/tensor.py", f"{_PKG}/dispatch.py")


def _in_rule() -> bool:
    """Whether the code asking for a value is an op's rule (or other tapegrad code),
    not the user's: a vjp under create_graph, or a frame inside the package."""
    if STATE.thread.strict:
        return True
    f = sys._getframe(2)
    while f is not None and (f.f_code.co_filename in _HOOKS
                             or f.f_code.co_filename.startswith(_HERE)):
        f = f.f_back
    return f is not None and f.f_code.co_filename.startswith(_PKG)


def _times_one(fn: Any, args: list, out: Any) -> Var | None:
    """``x`` for a call ``fn(*args)`` computing ``x * 1`` or ``x / 1`` (``fn`` is
    ``np.multiply`` or ``np.true_divide``) that leaves ``x`` as it is (its shape and
    dtype; ``out`` the result), else None."""
    if len(args) != 2 or type(out) is not ndarray:
        return None
    pairs = ((args[0], args[1]), (args[1], args[0])) if fn is _MUL else ((args[0], args[1]),)
    for a, b in pairs:
        if type(a) is Var and type(b) is not Var and a.shape == out.shape \
                and a.dtype == out.dtype:
            if type(b) in (int, float) and b == 1:
                return a
            if type(b) is ndarray and b.ndim <= out.ndim and b.dtype.kind in "fc" \
                    and (b.size == 0 or b.item(0) == 1) and np.all(b == 1):
                return a  # (its first element tells most arrays apart: cheaper)
    return None


def _same_call(s: Step, args: list, params: Any) -> bool:
    """Whether ``s`` was called with these arguments and params: the same values, and
    equal constants (arrays and other objects by identity: both are alive)."""
    if len(s.args) != len(args):
        return False
    for a, b in zip(s.args, args, strict=True):
        if a is not b and (type(a) is Var or type(b) is Var or _key(a) != _key(b)):
            return False
    return s.params is params or _key(s.params) == _key(params)


def _key(x: Any) -> Any:
    """A key comparing a call's constant argument or params (values and arrays by
    identity, numbers by type and value)."""
    tx = type(x)
    if tx is Var:
        return ("v", id(x))
    if tx is tuple or tx is list:
        return (tx.__name__, tuple(_key(v) for v in x))
    if tx is dict:
        return ("d", tuple((k, _key(v)) for k, v in x.items()))
    if tx is slice:
        return _key(("slice", x.start, x.stop, x.step))
    if x is None or tx in (bool, int, float, complex, str):
        return (tx.__name__, x)
    if isinstance(x, np.dtype):
        return ("dtype", x.str)
    return ("id", id(x))  # arrays and other constants: by identity


def _reads(args: list, pvars: Any) -> list:
    """The traced values a step reads: in its arguments, then in its params."""
    reads = []
    for a in args:
        if type(a) is Var:
            reads.append(a)
    reads += pvars
    return reads


def _has_mask(pvars: list) -> bool:
    """Whether a traced value among an index's is a boolean mask."""
    for v in pvars:
        if v.dtype is not None and v.dtype.kind == "b":
            return True
    return False


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
