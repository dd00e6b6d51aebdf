"""Function transforms: ``grad``, ``value_and_grad``, ``vjp``, ``jvp``, ``jacobian``,
``hessian``.

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

``argnums`` is an int (one result) or a tuple of ints (a tuple of results). Extra
keyword arguments are passed to ``f`` and never differentiated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .entry import LEAF
from .graph import state
from .tape import Tape, enable_grad, no_grad
from .tensor import Tensor, _make

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian", "hessian"]


# ----------------------------------------------------------------------- plumbing


def _is_tracked(x: Any) -> bool:
    if isinstance(x, Tensor):
        return x._node is not None
    if type(x) in (list, tuple):
        return any(_is_tracked(v) for v in x)
    return False


def is_nested(values: Sequence[Any]) -> bool:
    """Whether a transform called with ``values`` must record what it computes.

    True when grad mode is on and either a tape is recording (we are inside another
    transform or a user's ``tg.Tape``) or one of the values is a tracked Tensor.
    """
    if not state.grad_enabled:
        return False
    return bool(state.tapes) or any(_is_tracked(v) for v in values)


def float_array(x: Any, what: str = "argument") -> np.ndarray:
    """``x`` (Tensor, ndarray, number, nested list) as a floating-point ndarray."""
    data = x.data if isinstance(x, Tensor) else np.asarray(x)
    if data.dtype.kind not in "fc":
        if data.dtype.kind not in "biu":
            raise TypeError(f"{what}: expected numbers, got dtype {data.dtype}")
        data = data.astype(np.float64)
    return data


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
    return _make(np.array(float_array(x, what), copy=True), LEAF)


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
        if state.tapes:
            yield
        else:
            with Tape(persistent=True):
                yield


def trace(f: Callable[..., Any], args: Sequence[Any], kwargs: dict, argnums: Sequence[int],
          nested: bool, persistent: bool, name: str) -> tuple[Tape, Any, list[Tensor]]:
    """Run ``f`` on a fresh tape with sources at ``argnums``; return (tape, out, sources)."""
    args = list(args)
    for i in argnums:
        if not -len(args) <= i < len(args):
            raise IndexError(f"{name}: argnums has {i}, but f got {len(args)} positional "
                             "argument(s)")
    with enable_grad():
        sources = []
        for i in argnums:
            src = make_source(args[i], nested, f"{name}: argument {i}")
            args[i] = src
            sources.append(src)
        tape = Tape(persistent=persistent)
        with tape:
            out = f(*args, **kwargs)
    return tape, out, sources


def finish(value: Any, nested: bool, as_tensor: bool = False) -> Any:
    """Tensors when nested (or asked for), ndarrays at the outermost level."""
    if nested or as_tensor:
        return value if isinstance(value, Tensor) else _make(np.asarray(value), None)
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _argnums(argnums: int | Sequence[int]) -> tuple[bool, tuple[int, ...]]:
    if isinstance(argnums, (int, np.integer)):
        return True, (int(argnums),)
    nums = tuple(int(i) for i in argnums)
    if not nums:
        raise ValueError("argnums is an empty tuple: name at least one argument")
    return False, nums


def _zeros_for(src: Tensor, nested: bool) -> Any:
    z = np.zeros_like(src.data)
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
            seed = np.ones_like(out.data)
        own = seed if isinstance(seed, Tensor) else finish(np.array(seed, copy=True),
                                                             nested)
        return [own if s is out else _zeros_for(s, nested) for s in sources]
    with gradient_scope(nested):
        gs = tape.gradient(out, sources, output_gradients=seed)
    return [finish(g, nested) for g in gs]


def _check_scalar(out: Any, name: str) -> None:
    if not isinstance(out, Tensor) and not isinstance(out, (np.ndarray, np.generic,
                                                            int, float)):
        raise TypeError(f"{name}: f must return a Tensor (or a number), got "
                        f"{type(out).__name__}")
    size = np.size(out.data if isinstance(out, Tensor) else out)
    if size != 1:
        shape = np.shape(out.data if isinstance(out, Tensor) else out)
        raise ValueError(
            f"{name}: f must return a single element (a scalar), got shape {shape}; "
            "use tg.jacobian or tg.vjp for functions with several outputs"
        )


# ----------------------------------------------------------------------- transforms


def value_and_grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0, *,
                   _as_tensor: bool = False) -> Callable[..., tuple[Any, Any]]:
    """``f -> (lambda *args: (f(*args), grad(f)(*args)))``, computed in one pass.

    ``f`` must return a single element. The gradient is an array shaped like the
    argument (a tuple of them when ``argnums`` is a tuple); zeros for an argument the
    result does not depend on.
    """
    single, nums = _argnums(argnums)

    @functools.wraps(f)
    def value_and_grad_f(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        nested = is_nested(args) or is_nested(tuple(kwargs.values()))
        tape, out, sources = trace(f, args, kwargs, nums, nested, False, "grad")
        _check_scalar(out, "grad")
        gs = _gradients(tape, out, sources, nested)
        if _as_tensor:
            gs = [finish(g, nested, True) for g in gs]
        value = finish(out, nested, _as_tensor)
        return value, (gs[0] if single else tuple(gs))

    return value_and_grad_f


def grad(f: Callable[..., Any], argnums: int | Sequence[int] = 0, *,
         _as_tensor: bool = False) -> Callable[..., Any]:
    """The gradient of scalar-valued ``f`` with respect to argument(s) ``argnums``.

    >>> import tapegrad as tg
    >>> tg.grad(lambda x: (x * x).sum())(np.array([1.0, 2.0]))
    array([2., 4.])
    """
    vg = value_and_grad(f, argnums, _as_tensor=_as_tensor)

    @functools.wraps(f)
    def grad_f(*args: Any, **kwargs: Any) -> Any:
        return vg(*args, **kwargs)[1]

    return grad_f


def vjp(f: Callable[..., Any], *primals: Any) -> tuple[Any, Callable[[Any], tuple]]:
    """``(f(*primals), vjp_fn)``; ``vjp_fn(g)`` returns one cotangent per primal (a tuple).

    ``g`` has the shape of the output. ``vjp_fn`` may be called any number of times.
    """
    nested = is_nested(primals)
    tape, out, sources = trace(f, primals, {}, range(len(primals)), nested, True, "vjp")
    out_shape = np.shape(out.data if isinstance(out, Tensor) else out)
    dtype = out.dtype if isinstance(out, Tensor) else np.float64

    def vjp_fn(g: Any) -> tuple:
        rec = nested or is_nested((g,))
        if isinstance(g, Tensor):
            if g.shape != out_shape:
                raise ValueError(f"vjp_fn: cotangent has shape {g.shape}, the output has "
                                 f"shape {out_shape}")
            seed = g if rec else g.data
        else:
            seed = np.asarray(g, dtype=dtype)
            if seed.shape != out_shape:
                seed = np.broadcast_to(seed, out_shape) if seed.ndim == 0 else seed
            if seed.shape != out_shape:
                raise ValueError(f"vjp_fn: cotangent has shape {seed.shape}, the output "
                                 f"has shape {out_shape}")
        return tuple(_gradients(tape, out, sources, rec, seed))

    return finish(out, nested), vjp_fn


def jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any]
        ) -> tuple[Any, Any]:
    """``(f(*primals), J @ tangents)`` by forward mode; see :mod:`tapegrad.forward_mode`."""
    from .forward_mode import jvp as forward_jvp

    return forward_jvp(f, primals, tangents)


def _stack(rows: list[Any], shape: tuple[int, ...], nested: bool) -> Any:
    if nested:  # np.stack on Tensors runs the op that implements it: recorded
        rows = [r if isinstance(r, Tensor) else _make(r, None) for r in rows]
    return np.stack(rows).reshape(shape)


def jacobian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f``: shape ``out.shape + arg.shape``.

    Built row by row with reverse mode (one replay per output element). With a tuple
    ``argnums`` the result is a tuple over the arguments; when ``f`` returns a tuple of
    Tensors, a tuple over the outputs (each as above).
    """
    single, nums = _argnums(argnums)

    @functools.wraps(f)
    def jacobian_f(*args: Any, **kwargs: Any) -> Any:
        nested = is_nested(args) or is_nested(tuple(kwargs.values()))
        tape, out, sources = trace(f, args, kwargs, nums, nested, True, "jacobian")
        outs = out if isinstance(out, (tuple, list)) else (out,)
        results = []
        for o in outs:
            o_data = o.data if isinstance(o, Tensor) else np.asarray(o)
            rows: list[list[Any]] = [[] for _ in sources]
            for k in range(o_data.size):
                seed = np.zeros(o_data.shape, dtype=o_data.dtype
                                if o_data.dtype.kind in "fc" else np.float64)
                seed.reshape(-1)[k] = 1
                for r, g in zip(rows, _gradients(tape, o, sources, nested, seed),
                                strict=True):
                    r.append(g)
            per_arg = []
            for r, s in zip(rows, sources, strict=True):
                shape = o_data.shape + s.shape
                if not r:
                    per_arg.append(finish(np.zeros(shape, s.dtype), nested))
                else:
                    per_arg.append(_stack(r, shape, nested))
            results.append(per_arg[0] if single else tuple(per_arg))
        return tuple(results) if isinstance(out, (tuple, list)) else results[0]

    return jacobian_f


def hessian(f: Callable[..., Any], argnums: int | Sequence[int] = 0) -> Callable[..., Any]:
    """The Hessian of scalar ``f``: ``jacobian(grad(f))``, shape ``arg.shape * 2``.

    With a tuple ``argnums`` the result is a tuple of tuples: ``H[i][j]`` holds the
    second derivatives with respect to arguments ``argnums[i]`` and ``argnums[j]``.
    """
    return jacobian(grad(f, argnums), argnums)
