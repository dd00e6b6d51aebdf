"""``tg.compile`` and :class:`Compiled`, the function it returns: one plan per input
signature in an LRU cache, traces and retraces, the eager fallbacks, ``cache_info``."""

from __future__ import annotations

import functools
import gc
import threading
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import tree
from ..errors import CompileError, CompileWarning
from ..state import STATE, enable_grad
from ..tape import Tape
from ..tensor import Tensor
from .plan import Plan
from .signature import _STATIC, _arg_names, _classify, _Eager, _leaf_name, _Slow, _walk
from .steps import _Guard, _Stale
from .trace import HOOKED, Tracer, tracer

ndarray = np.ndarray

#: Plans kept per compiled function by default.
CACHE_SIZE = 8
#: A CompileWarning after this many retraces by default.
WARN_AFTER = 8
#: A plan runs as a flat loop for its first calls; at this call it becomes generated
#: straight-line code (compiling the source costs about 10 us per step: paid only by
#: plans that are reused).
HOT = 3

CacheInfo = namedtuple("CacheInfo", "hits misses retraces eager size maxsize")


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
        if plan is None:  # trace: the traced call's own results are this call's
            plan = self._last = self._trace(key, args, kwargs)
            plan.calls += 1
            return plan.take_first()
        self._hits += 1
        if len(self._cache) > 1:
            self._cache.move_to_end(key)
        plan.calls += 1
        if plan.calls == HOT:
            plan = self._hot(key, plan, args, kwargs)
        self._last = plan
        try:
            return plan.run(*leaves)
        except _Stale:  # a tensor f reads changed shape: trace again
            self._cache.pop(key, None)
            return self._trace(key, args, kwargs).run(*leaves)
        except _Guard:  # a rule's branch went the other way: this call runs eagerly
            return self._run_eager(args, kwargs)

    def _hot(self, key: Any, plan: Plan, args: tuple, kwargs: dict) -> Plan:
        """A plan reused ``HOT`` times, as generated code. The first trace is quick (vjps
        taken whole, see :mod:`.rules`; no aliases or repeats looked for): ``f`` is
        traced again in full (every rule expanded into its ops, the plan optimized),
        unless that trace cannot be compiled (a rule whose values reach Python): then
        the quick plan stays."""
        if not plan.full:
            plan = self._expanded(key, plan, args, kwargs)
        plan.generate()
        return plan

    def _expanded(self, key: Any, plan: Plan, args: tuple, kwargs: dict) -> Plan:
        try:
            full = self._build(getattr(self.fn, "__name__", "f"), args, kwargs, expand=True)
        except CompileError:
            plan.full = True  # (tried once)
            plan.example = None
            return plan
        full.calls = plan.calls
        with self._lock:
            if key in self._cache:
                self._cache[key] = full
        return full

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
        # The collector paused while tracing and building the plan: everything they
        # allocate stays alive until the plan is built (the tracer keeps every array
        # and node), so a collection then only scans it in vain, and a full one (when
        # it comes) scans the whole process too: it cost 20-55 ms of a 2000-op trace.
        # (Resumed once _build has returned: its tracer is gone by then.)
        plan = self._build(name, args, kwargs)
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

    def _build(self, name: str, args: tuple, kwargs: dict, expand: bool = False) -> Plan:
        """Trace ``f`` on copies of the arguments' arrays, and build its plan (vjps taken
        whole unless ``expand``: see :mod:`.rules`)."""
        # The collector paused while tracing and building the plan: everything they
        # allocate stays alive until the plan is built (the tracer keeps every array
        # and node), so a collection then only scans it in vain, and a full one (when
        # it comes) scans the whole process too: it cost 20-55 ms of a 2000-op trace.
        # (Resumed once _traced has returned: its tracer is gone by then.)
        collecting = gc.isenabled()
        gc.disable()
        try:
            plan = self._traced(name, args, kwargs, expand)
        finally:
            if collecting:
                gc.enable()
        if not plan.full:
            plan.example = (args, kwargs)  # to trace it in full when its source is read
        return plan

    def _traced(self, name: str, args: tuple, kwargs: dict, expand: bool) -> Plan:
        tr = Tracer(name)
        tr.expand = expand
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
        tape = Tape(persistent=True)
        tape.trace_only = True
        with enable_grad(), tape:
            STATE.thread.trace = tr
            try:
                out = self.fn(*targs, **tkwargs)
            finally:
                STATE.thread.trace = prev
        outs, out_def = tree.flatten(out)
        refs = [tr.ref(o) if isinstance(o, (Tensor, ndarray)) else o for o in outs]
        plan = Plan(tr, out_def, refs, names, name)
        plan.first = tree.unflatten(out_def, [_result(o) for o in outs])
        return plan

    # ------------------------------------------------------------------ inspection
    @property
    def source(self) -> str | None:
        """The source of the plan last run (``None`` before the first call), its rules
        expanded into their ops."""
        plan = self._last
        if plan is None:
            return None
        if not plan.full and plan.example is not None:
            key = next((k for k, p in self._cache.items() if p is plan), None)
            args, kwargs = plan.example
            plan = self._last = self._expanded(key, plan, args, kwargs)
        return plan.source

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


def _result(x: Any) -> Any:
    """An output of the traced call as the compiled function returns it: arrays are
    the caller's own (a copy: the trace's may be read-only or shared)."""
    if isinstance(x, Tensor):
        x = x._data
    return np.array(x, copy=True) if type(x) is ndarray else x
