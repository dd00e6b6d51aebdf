"""Reverse-mode function transforms: ``grad``, ``value_and_grad``, ``vjp``,
``jacobian``, ``hessian`` (forward mode, ``jvp``, is built on them in
:mod:`tapegrad.forward_mode`).

Each transform takes ``f`` (Tensors in, a Tensor out) and returns a function that
accepts ndarrays, Python numbers or Tensors. How it answers depends on where it runs:

* **Outermost** (no tape recording, no tracked input): the inputs become fresh leaves,
  ``f`` runs on a private :class:`~tapegrad.Tape`, the gradient is replayed plainly and
  the results are ndarrays (as in HIPS autograd).
* **Nested** (grad mode on, and another tape is recording or an input is a tracked
  Tensor, e.g. inside an outer transform): every tracked input is passed through a
  recorded identity op, so the inner function gets fresh nodes that stay connected to
  the outer computation; the gradient is replayed with ``create_graph`` and the results
  are Tensors recorded on the outer computation, which can differentiate them again.
  That is all nesting needs: ``grad(grad(grad(f)))``, ``jacobian(grad(f))``,
  ``grad`` of ``jvp`` and ``jvp`` of ``grad`` all compose.
* **Closing over tracked tensors**: when ``f`` reads a tracked tensor that is not one
  of its arguments (``x`` in ``lambda y: x * y`` with ``x`` requiring grad), the
  result depends on it too. After running ``f`` the transform looks for such reads
  (entries of its tape whose inputs are tracked leaves made outside the transform, or
  entries recorded before it) and, finding one, answers as a nested transform: the
  results are Tensors connected to ``x``, so ``x * tg.grad(lambda y: x * y)(2.0)``
  backpropagates ``2 x`` into ``x``. Under ``tg.no_grad()`` nothing is connected and
  the results stay ndarrays.

Arguments may be containers: (nested) lists, tuples, named tuples and dicts of arrays,
Tensors and numbers (see :mod:`tapegrad.tree` for the rules; a list of plain numbers is
array data). ``f`` receives the same structure with Tensors at the leaves, and
gradients come back in that structure: ``grad(loss)({"W": W, "b": b}, x)`` returns
``{"W": dW, "b": db}``. ``vjp`` and ``jvp`` take and return structures for the
outputs too, and ``jacobian`` of a container returns the output's structure holding,
at each output leaf, the argument's structure of arrays of shape
``out_leaf.shape + arg_leaf.shape`` (as JAX's ``jacrev``).

``argnums`` is an int (one result) or a tuple of ints (a tuple of results). Extra
keyword arguments are passed to ``f`` and never differentiated.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import tree
from .compiler import tracer
from .entry import Leaf, Part
from .errors import ShapeError, TapegradIndexError, TapegradTypeError, TapegradValueError
from .lazy import foreign
from .state import STATE, enable_grad, no_grad
from .tape import Tape
from .tensor import Tensor, _make

__all__ = ["grad", "value_and_grad", "vjp", "jacobian", "hessian"]


# ----------------------------------------------------------------------- plumbing


def _is_tracked(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x._node is not None
    if isinstance(x, dict):
        return any(_is_tracked(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return any(_is_tracked(v) for v in x)
    return False


def is_nested(values: Sequence[Any]) -> bool:
    """Whether a transform called with ``values`` must record what it computes.

    True when grad mode is on and either a tape is recording (we are inside another
    transform or a user's ``tg.Tape``) or one of the values holds a tracked Tensor.
    """
    if not STATE.thread.grad_enabled:
        return False
    return bool(STATE.thread.tapes) or any(_is_tracked(v) for v in values)


def float_array(x: Any, what: str = "argument") -> np.ndarray:
    """``x`` (Tensor, ndarray, number, nested list) as a floating-point ndarray; another
    library's array (Dask, CuPy) stays one."""
    data = x.data if isinstance(x, Tensor) else x if foreign(x) else np.asarray(x)
    if data.dtype.kind not in "fc":
        if data.dtype.kind not in "biu":
            raise TapegradTypeError(f"{what}: expected numbers, got dtype {data.dtype}")
        data = data.astype(np.float64)
    return data


class _Scopes(threading.local):
    def __init__(self) -> None:
        self.stack: list[set[Tensor]] = []


_scopes = _Scopes()


def new_leaf(data: np.ndarray) -> Tensor:
    """A fresh leaf private to the transforms running now (a source, a cotangent).

    Leaves made while an outermost transform traces ``f`` are known to it, so that
    reading them does not count as closing over a tracked tensor of the caller's.
    """
    t = _make(data, None)
    t._node = Leaf(t)
    for made in _scopes.stack:
        made.add(t._node)
    trace = tracer()
    if trace is not None:  # tg.compile: a leaf of ours, not the user's
        trace.made(t, None)
    return t


def _identity(x: Tensor) -> Tensor:
    # A recorded no-op through the array protocol (whichever op implements reshape).
    return x.reshape(x.shape)


def make_source(x: Any, nested: bool, what: str = "argument") -> Tensor:
    """A tensor to differentiate with respect to, standing for the value ``x``.

    Nested and ``x`` tracked: a recorded identity of ``x`` (a fresh node, connected to
    the outer computation). Otherwise a fresh leaf holding a copy of ``x``'s data (the
    engine locks saved user arrays read-only while a graph needs them).
    """
    if nested and _is_tracked(x):
        return _identity(x)
    trace = tracer()
    if trace is not None and isinstance(x, Tensor):
        # tg.compile is tracing: the copy must be a step of its plan, not a constant
        src = _identity(x if x.dtype.kind in "fc" else x.astype(np.float64))
        trace.made(src, None)
        src._node = Leaf(src)
        return src
    data = float_array(x, what)
    return new_leaf(data.copy() if foreign(data) else np.array(data, copy=True))


@contextmanager
def gradient_scope(nested: bool) -> Iterator[None]:
    """The mode in which a transform replays its tape.

    Nested: grad mode on, and at least one tape recording (a throwaway one when the
    caller only passed tracked Tensors), so ``Tape.gradient`` records its work.
    Outermost: ``no_grad``, so the replay is the plain ndarray one.
    """
    if not nested:
        with no_grad():
            yield
        return
    with enable_grad():
        if STATE.thread.tapes:
            yield
        else:
            with Tape(persistent=True):
                yield


class Traced:
    """What running ``f`` on fresh sources gave.

    ``sources``: the Tensors standing for the leaves of the differentiated arguments,
    all arguments' leaves in one flat list; ``trees``: each such argument's structure;
    ``labels``: each source's name (``"0"``, ``"0['W']"``); ``nested``: whether to
    answer with recorded Tensors (nested, or ``f`` closes over tracked tensors).
    """

    __slots__ = ("tape", "out", "sources", "trees", "labels", "nested")

    def __init__(self, tape: Tape, out: Any, sources: list[Tensor],
                 trees: list[tree.TreeDef], labels: list[str], nested: bool) -> None:
        self.tape, self.out, self.sources = tape, out, sources
        self.trees, self.labels, self.nested = trees, labels, nested

    def regroup(self, flat: Sequence[Any]) -> list[Any]:
        """Per-source values (``flat``) regrouped into one structure per argument."""
        out, k = [], 0
        for d in self.trees:
            out.append(tree.unflatten(d, flat[k:k + d.num_leaves]))
            k += d.num_leaves
        return out


def trace(f: Callable[..., Any], args: Sequence[Any], kwargs: dict, argnums: Sequence[int],
          nested: bool, persistent: bool, name: str) -> Traced:
    """Run ``f`` on a fresh tape, with sources for the leaves of the ``argnums`` args."""
    args = list(args)
    for i in argnums:
        if not -len(args) <= i < len(args):
            raise TapegradIndexError(f"{name}: argnums has {i}, but f got {len(args)} "
                                     "positional argument(s)")
    # Outermost: collect the leaves made while f runs, to tell them from the caller's.
    made: set | None = None if nested or not STATE.thread.grad_enabled else set()
    with enable_grad():
        sources: list[Tensor] = []
        trees, labels = [], []
        for i in argnums:
            leaves, d = tree.flatten(args[i])
            srcs = []
            for x, path in zip(leaves, d.paths() if not d.is_leaf else ("",), strict=True):
                srcs.append(make_source(x, nested, f"{name}: argument {i}{path}"))
                labels.append(f"{i}{path}")
            args[i] = srcs[0] if d.is_leaf else tree.unflatten(d, srcs)
            sources += srcs
            trees.append(d)
        tape = Tape(persistent=persistent)
        if made is not None:
            made.update(s._node for s in sources)
            _scopes.stack.append(made)
        try:
            with tape:
                out = f(*args, **kwargs)
        finally:
            if made is not None:
                _scopes.stack.pop()
    if made is not None and _reads_outside(tape, out, made):
        nested = True
    return Traced(tape, out, sources, trees, labels, nested)


def _reads_outside(tape: Tape, out: Any, made: set) -> bool:
    """Whether what ``f`` recorded reads tracked tensors from outside the transform:
    leaves with ``requires_grad`` not made while it ran, or results of ops recorded
    before its tape opened (or ``f`` returns one of those itself)."""
    own = set(tape.records)

    def outside(n: Any) -> bool:
        if isinstance(n, Leaf):
            return n not in made
        return (n.record if isinstance(n, Part) else n) not in own

    nodes = [n for e in tape.records for n in e.parents if n is not None]
    nodes += [o._node for o in tree.leaves(out) if isinstance(o, Tensor) and o._node is not None]
    return any(outside(n) for n in nodes)


def finish(value: Any, nested: bool, as_tensor: bool = False) -> Any:
    """Tensors when nested (or asked for), ndarrays at the outermost level."""
    if isinstance(value, Tensor):
        return value if nested or as_tensor else value.data
    value = value if foreign(value) else np.asarray(value)  # a Dask array stays lazy
    return _make(value, None) if nested or as_tensor else value


def finish_tree(value: Any, nested: bool) -> Any:
    """:func:`finish` at every leaf of a structure."""
    leaves, d = tree.flatten(value)
    return tree.unflatten(d, [finish(v, nested) for v in leaves])


def _argnums(argnums: int | Sequence[int]) -> tuple[bool, tuple[int, ...]]:
    if isinstance(argnums, (int, np.integer)):
        return True, (int(argnums),)
    if not isinstance(argnums, (tuple, list)) or \
            not all(isinstance(i, (int, np.integer)) for i in argnums):
        raise TapegradTypeError(f"argnums must be an int or a tuple of ints, got {argnums!r}")
    nums = tuple(int(i) for i in argnums)
    if not nums:
        raise TapegradValueError("argnums is an empty tuple: name at least one argument")
    return False, nums


def _zeros_for(src: Tensor, nested: bool) -> Any:
    z = np.zeros_like(src._data)
    return _make(z, None) if nested else z


def _gradients(tape: Tape, out: Any, sources: list[Tensor], nested: bool,
               seed: Any = None) -> list[Any]:
    """Gradient of ``out`` (seeded by ``seed``) with respect to each source."""
    if not isinstance(out, Tensor) or out._node is None:
        return [_zeros_for(s, nested) for s in sources]
    if any(out is s for s in sources):
        # f returned an argument itself (the identity), which the tape never saw: its
        # gradient is the seed, a constant (so tg.grad(tg.grad(lambda x: x)) is 0).
        if seed is None:
            seed = np.ones_like(out._data)
        own = seed if isinstance(seed, Tensor) else finish(np.array(seed, copy=True),
                                                             nested)
        return [own if s is out else _zeros_for(s, nested) for s in sources]
    with gradient_scope(nested):
        gs = tape.gradient(out, sources, output_gradients=seed)
    return [finish(g, nested) for g in gs]


def _check_scalar(out: Any, name: str) -> None:
    if not isinstance(out, Tensor) and not isinstance(out, (np.ndarray, np.generic,
                                                            int, float)):
        raise TapegradTypeError(f"{name}: f must return a Tensor (or a number), got "
                                f"{type(out).__name__}")
    size = math.prod(np.shape(out._data if isinstance(out, Tensor) else out))  # never computes
    if size != 1:
        shape = np.shape(out._data if isinstance(out, Tensor) else out)
        raise ShapeError(
            f"{name}: f must return a single element (a scalar), got shape {shape}; "
            "use tg.jacobian or tg.vjp for functions with several outputs"
        )


def _out_meta(o: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and cotangent dtype of an output leaf."""
    data = o._data if isinstance(o, Tensor) else o if foreign(o) else np.asarray(o)
    return data.shape, data.dtype if data.dtype.kind in "fc" else np.dtype(np.float64)


def _cotangent(g: Any, shape: tuple[int, ...], dtype: np.dtype, rec: bool,
               where: str) -> Any:
    """A cotangent for an output of ``shape``: a Tensor when recording, else an ndarray
    (a scalar broadcasts); ``None`` stays ``None`` (zero)."""
    if g is None:
        return None
    if isinstance(g, Tensor):
        if g.shape != shape:
            raise ShapeError(f"{where} has shape {g.shape}, the output has shape {shape}")
        return g if rec else g.data
    seed = g.astype(dtype) if foreign(g) else np.asarray(g, dtype=dtype)
    if seed.shape != shape and seed.ndim == 0:
        seed = np.broadcast_to(seed, shape)
    if seed.shape != shape:
        raise ShapeError(f"{where} has shape {seed.shape}, the output has shape {shape}")
    return seed


# ----------------------------------------------------------------------- transforms


def value_and_grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0, *,
                   _as_tensor: bool = False) -> Callable[..., tuple[Any, Any]]:
    """``f -> (lambda *args: (f(*args), grad(f)(*args)))``, computed in one pass.

    ``f`` must return a single element. The gradient has the argument's structure and
    shapes (a tuple of them when ``argnums`` is a tuple); zeros for an argument the
    result does not depend on.
    """
    single, nums = _argnums(argnums)

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        nested = is_nested(args) or is_nested(tuple(kwargs.values()))
        tr = trace(f, args, kwargs, nums, nested, False, "grad")
        _check_scalar(tr.out, "grad")
        gs = _gradients(tr.tape, tr.out, tr.sources, tr.nested)
        if _as_tensor:
            gs = [finish(g, tr.nested, True) for g in gs]
        value = finish(tr.out, tr.nested, _as_tensor)
        grads = tr.regroup(gs)
        return value, (grads[0] if single else tuple(grads))

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0, *,
         _as_tensor: bool = False) -> Callable[..., Any]:
    """The gradient of scalar-valued ``f`` with respect to argument(s) ``argnums``.

    >>> import tapegrad as tg
    >>> tg.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0]))
    array([2., 4.])
    >>> tg.grad(lambda p: (p["w"] * 3.0 + p["b"]).sum())({"w": 1.0, "b": 2.0})
    {'w': array(3.), 'b': array(1.)}
    """
    vg = value_and_grad(f, argnums, _as_tensor=_as_tensor)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return grad_f


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple]]:
    """``(f(*primals), vjp_fn)``; ``vjp_fn(g)`` returns one cotangent per primal (a tuple),
    each with its primal's structure.

    ``g`` has the output's structure and shapes (``None`` anywhere stands for zeros; a
    number broadcasts to its output's shape). ``vjp_fn`` may be called any number of
    times.
    """
    nested = is_nested(primals)
    tr = trace(f, primals, {}, range(len(primals)), nested, True, "vjp")
    outs, out_def = tree.flatten(tr.out)
    metas = [_out_meta(o) for o in outs]
    paths = out_def.paths()

    def vjp_fn(g: Any) -> tuple:
        cots = tree.flatten_like(out_def, g, "vjp_fn: cotangent")
        rec = tr.nested or is_nested((g,))
        total = None
        for o, c, (shape, dtype), path in zip(outs, cots, metas, paths, strict=True):
            seed = _cotangent(c, shape, dtype, rec, f"vjp_fn: cotangent{path}")
            if seed is None or not (isinstance(o, Tensor) and o._node is not None):
                continue
            gs = _gradients(tr.tape, o, tr.sources, rec, seed)
            total = gs if total is None else [a + b for a, b in zip(total, gs, strict=True)]
        if total is None:
            total = [_zeros_for(s, rec) for s in tr.sources]
        return tuple(tr.regroup(total))

    return finish_tree(tr.out, tr.nested), vjp_fn


def _stack(rows: list[Any], shape: tuple[int, ...], nested: bool) -> Any:
    if nested:  # np.stack on Tensors runs the op that implements it: recorded
        rows = [r if isinstance(r, Tensor) else _make(r, None) for r in rows]
    return np.stack(rows).reshape(shape)


def jacobian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f``: shape ``out.shape + arg.shape``.

    Built row by row with reverse mode (one replay per output element). With a tuple
    ``argnums`` the result is a tuple over the arguments. Containers: when ``f`` returns
    a structure, the result has that structure, holding at each output leaf the
    Jacobian of that leaf; an argument that is a structure gives, in each place, that
    structure of arrays of shape ``out_leaf.shape + arg_leaf.shape``.
    """
    single, nums = _argnums(argnums)

    @functools.wraps(f)
    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        nested = is_nested(args) or is_nested(tuple(kwargs.values()))
        tr = trace(f, args, kwargs, nums, nested, True, "jacobian")
        outs, out_def = tree.flatten(tr.out)
        results = []
        for o in outs:
            per_arg = tr.regroup(_jacobian_rows(tr, o))
            results.append(per_arg[0] if single else tuple(per_arg))
        return tree.unflatten(out_def, results)

    return jacobian_f


def _jacobian_rows(tr: Traced, o: Any) -> list[Any]:
    """The Jacobian of output ``o`` with respect to each source, one replay per element."""
    o_data = o._data if isinstance(o, Tensor) else np.asarray(o)
    dtype = o_data.dtype if o_data.dtype.kind in "fc" else np.float64
    rows: list[list[Any]] = [[] for _ in tr.sources]
    for k in range(o_data.size):
        seed = np.zeros(o_data.shape, dtype=dtype)
        seed.reshape(-1)[k] = 1
        for r, g in zip(rows, _gradients(tr.tape, o, tr.sources, tr.nested, seed),
                        strict=True):
            r.append(g)
    out = []
    for r, s in zip(rows, tr.sources, strict=True):
        shape = o_data.shape + s.shape
        if not r:
            out.append(finish(np.zeros(shape, s.dtype), tr.nested))
        else:
            out.append(_stack(r, shape, tr.nested))
    return out


def hessian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Hessian of scalar ``f``: ``jacobian(grad(f))``, shape ``arg.shape * 2``.

    With a tuple ``argnums`` the result is a tuple of tuples: ``H[i][j]`` holds the
    second derivatives with respect to arguments ``argnums[i]`` and ``argnums[j]``.
    For a container argument the blocks nest the same way: ``H["W"]["b"]`` has shape
    ``W.shape + b.shape``.
    """
    return jacobian(grad(f, argnums), argnums)
