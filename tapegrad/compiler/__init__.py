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
floating) and ``f`` runs inside a tape opened for the tracer (installed as
``STATE.thread.trace``). Transforms inside ``f`` (``tg.grad``, ``tg.value_and_grad``,
``tg.hessian``, ``tg.jvp``...) therefore answer with Tensors the tracer sees; a backward
that another transform differentiates is recorded op by op (``create_graph``), the
outermost one is not recorded at all. The engine hands the tracer every op call
(tracked or not: comparisons, masks, integer results, calls under ``no_grad``), every
NumPy function without an op applied to a traced value, and every place a value would
leave for Python (``bool``, ``float``, ``.item()``, ``.data``, ``np.asarray``, an
in-place update, ``backward()``). A step of the plan is one such call: an op's forward
``forward(*inputs, **params)`` or the NumPy function itself, on earlier values.

**Two traces.** The first call of a signature traces *quickly*: the outermost backward
runs its vjps on plain arrays, as an eager backward does, and each becomes one step
calling the rule (:mod:`.rules`); no aliases or repeats are looked for; that call
returns the traced values themselves. Measured on the 2000-op chain of
``benchmarks/overhead.py``, that first call costs 2.6-3.0 eager calls. When the plan is
reused (its ``HOT``-th call) or its ``source`` is read, ``f`` is traced again in full:
every rule expanded into its ops, and the forward of every composite op (a YAML
formula) too (straight-line code, repeats shared, buffers reused), and that plan is
generated. So ``f`` runs twice per signature: keep side effects out of it. Until then
the plan keeps a reference to the first call's arguments (to trace with them when its
source is read). A rule whose values reach Python when expanded keeps its quick plan
(rules whole).
Memory: the tracer holds each array of 64 KiB or more only as long as ``f`` does, so
tracing needs about what an eager call does, plus the small values of the trace.

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
(:mod:`.buffers`), so a compiled step holds no more memory than the eager one. A plan
runs as a flat loop over its steps (:mod:`.flat`: cheap to build, assembled when first
run) until its ``HOT``-th call, then as straight-line Python generated from the full
trace (never from user text: functions and constants are referenced through the plan's
namespace) and compiled with the built-in ``compile`` (about 10 us a step, so only plans
that are reused pay it). Measured on the 2000-op chain of ``benchmarks/overhead.py`` (4750
steps of forward and backward on (8,) arrays): the flat loop runs 0.79 us a step, the
generated code 0.34 us, and the hand-written NumPy floor takes as long for the same work
(1.67 ms vs 1.60 ms). A plan whose every value is a float64 scalar also gets a version
on Python floats (:mod:`.floats`), with the NumPy plan as its fallback.

**Cache.** Up to ``cache_size`` plans (default 8) per compiled function, least recently
used evicted; ``cache_info()`` reports hits, misses (traces), retraces and eager calls.
After ``warn_after`` retraces (default 8) a :class:`CompileWarning` says that the
signature keeps changing. Calls that must record (a tracked Tensor among the arguments,
or inside another transform, a recording tape or another trace) run ``f`` eagerly: the
result then is what ``f`` returns, connected to the graph.

**Modules.** :mod:`.trace` (the tracer the engine hands calls to), :mod:`.steps` (what
a plan is made of), :mod:`.plan` (pruning, the plan), :mod:`.flat` (its flat loop),
:mod:`.emit`, :mod:`.codegen`, :mod:`.buffers` and :mod:`.floats` (its generated
source), :mod:`.signature` (arguments: cache keys, inputs, names), :mod:`.api`
(``tg.compile``, :class:`Compiled`: the cache). Imports run one way: ``steps`` first;
``trace``, ``flat``, ``emit`` and ``buffers`` on it; ``codegen`` and ``floats`` on those;
``plan`` on them all; ``api`` (with ``signature``) last.
"""

from __future__ import annotations

# tg.compile's public names; the others stay importable from here as they were when this
# was one module (tapegrad.compiler.HOT, .HOOKED, .Compiled...).
from ..errors import CompileError, CompileWarning
from .api import CACHE_SIZE, HOT, WARN_AFTER, CacheInfo, Compiled, compile  # noqa: A004, F401
from .buffers import REUSE_BYTES  # noqa: F401
from .flat import FREE_BYTES  # noqa: F401
from .plan import Plan  # noqa: F401
from .steps import Step, Var  # noqa: F401
from .trace import HOOKED, Tracer, is_tracing, not_compilable, tracer  # noqa: F401

__all__ = ["compile", "CompileError", "CompileWarning", "not_compilable", "is_tracing",
           "tracer"]
