"""What a plugin declares about an op (:class:`OpDef`) and what the registry keeps
(:class:`OpInfo`: the definition stamped with where it came from)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import PluginError

#: A sample for automatic gradient checks: positional inputs and keyword params.
Sample = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True, eq=False)
class OpDef:
    """The definition of one differentiable op.

    ``forward(*inputs, **params)`` takes ndarrays (or Python scalars) and returns an
    ndarray. ``vjp(g, out, *inputs, **params)`` takes the upstream gradient ``g`` (shape
    of ``out``) and returns one gradient per input, ``None`` for an input that gets none;
    a gradient may have the broadcast shape, the engine sums it back to its input's
    shape. For a one-input op the vjp may return the gradient itself instead of a
    1-tuple. Write vjps with operators, NumPy functions and array methods: on ndarrays
    they run as plain NumPy; under ``create_graph=True`` they receive Tensors and are
    recorded, so they can be differentiated again.

    Fields:
        name: the op's name, unique across plugins; ``tg.ops.<name>``.
        forward: ndarrays in, ndarray out.
        vjp: reverse-mode rule, or ``None`` for an op that is not differentiable
            (its outputs are never recorded).
        plain_vjp: optional faster form of ``vjp`` for plain ndarrays, in the same
            shape (one function, or one per input with ``None`` in the same places).
            The backward pass uses it when nothing is recorded; ``vjp`` still runs
            under ``create_graph=True``. Both must compute the same gradients (the
            checks run both). YAML ops get one compiled from their formulas.
        residual_forward: optional form of ``forward`` for recorded calls, returning
            ``(out, residual)``: values the forward computes anyway that the backward
            would otherwise compute again (a softmax, a factorization). ``residual``
            reaches ``plain_vjp`` (required, one function) as the keyword argument
            ``residual``. ``vjp`` never gets it: under ``create_graph=True`` a saved
            value would be a constant, so it recomputes what it needs from the inputs.
        jvp: optional forward-mode rule ``jvp(tangents, out, *inputs, **params)`` where
            ``tangents`` holds one tangent per input (``None`` for a zero tangent);
            returns the tangent of ``out``. Ops without one get forward mode from their
            vjp.
        nargs: number of array inputs; inferred from ``forward`` when left out.
        variadic: the op takes a single sequence of inputs (``concatenate([a, b])``).
        params: keyword parameters and their defaults (``{"axis": None}``); inferred
            from a Python ``forward``'s keyword arguments with defaults when left out.
        nondiff: indices of inputs that never receive a gradient (a mask, an index).
        method: ``True`` binds the op as ``Tensor.<name>``; a string binds it under that
            name; a callable ``(op, self, *args, **kwargs)`` is bound instead, for
            method forms that differ from the op's (``x.reshape(2, 3)``).
        operators: Python dunder names bound to the op on ``Tensor`` (``"__add__"``);
            reflected names (``"__radd__"``) are bound with the operands swapped.
        properties: names bound as read-only properties on ``Tensor`` (``"T"``).
        implements: NumPy functions this op stands in for when called on Tensors
            (``np.sum(t)``); a ufunc ``forward`` is implied.
        save_inputs / save_out: whether the vjp (and jvp) needs the inputs / the
            output. Inputs that are not needed are not kept alive by the tape. The
            output always reaches the vjp: the result tensor is itself the tape
            entry, so ``save_out`` only documents the rule.
        domain: interval from which automatic checks draw inputs.
        samples: ``samples(rng) -> iterable of (inputs, params)`` for automatic checks
            of ops whose inputs need structure (shapes, indices); elementwise ops can
            rely on ``domain`` alone.
        complex: the rules are right for complex inputs too. tapegrad's rules follow
            HIPS autograd's convention internally (the vjp of a holomorphic ``f`` is
            ``g * f'(z)``, no conjugate); the engine conjugates at the boundary, so users
            see PyTorch's convention (``z.grad = dL/dRe(z) + 1j * dL/dIm(z)``). An op
            left at ``False`` refuses complex inputs that need a gradient.
        doc: one line saying what the op computes.
    """

    name: str
    forward: Callable[..., Any]
    vjp: Callable[..., Any] | None = None
    plain_vjp: Callable[..., Any] | None = None
    residual_forward: Callable[..., Any] | None = None
    jvp: Callable[..., Any] | None = None
    nargs: int | None = None
    variadic: bool = False
    params: Mapping[str, Any] | None = None
    nondiff: tuple[int, ...] = ()
    method: bool | str | Callable[..., Any] = False
    operators: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()
    implements: tuple[Callable[..., Any], ...] = ()
    save_inputs: bool = True
    save_out: bool = True
    domain: tuple[float, float] = (-2.0, 2.0)
    samples: Callable[[np.random.Generator], Iterable[Sample]] | None = None
    doc: str = ""
    complex: bool = False


@dataclass(eq=False)
class OpInfo:
    """A registered op: its definition, where it came from and how to call it.

    ``source`` is the plugin name, or the YAML file the op was declared in.
    ``call`` is the function behind ``tg.ops.<name>``.
    """

    name: str
    source: str
    nargs: int
    params: dict[str, Any]
    definition: OpDef
    call: Callable[..., Any] = field(repr=False, default=None)  # type: ignore[assignment]
    plugin: str = ""

    def __post_init__(self) -> None:
        # Read on every replayed entry: plain attributes, not properties.
        d = self.definition
        self.vjp_rule = d.vjp if d.plain_vjp is None else d.plain_vjp
        self.per_input = type(self.vjp_rule) is tuple
        self.residual = d.residual_forward is not None
        self.save_inputs = d.save_inputs
        self.save_out = d.save_out
        # What a vjp that saved no inputs receives in their place.
        self.blank_inputs = (None,) * self.nargs if d.save_inputs is False and not d.variadic \
            else None

    # Shortcuts to the definition, read by the engine on every recorded op.
    @property
    def forward(self) -> Callable[..., Any]:
        return self.definition.forward

    @property
    def vjp(self) -> Callable[..., Any] | None:
        return self.definition.vjp

    @property
    def jvp(self) -> Callable[..., Any] | None:
        return self.definition.jvp

    @property
    def variadic(self) -> bool:
        return self.definition.variadic

    @property
    def method(self) -> bool | str | Callable[..., Any]:
        return self.definition.method

    @property
    def differentiable(self) -> bool:
        return self.definition.vjp is not None

    @property
    def doc(self) -> str:
        return self.definition.doc

    def describe(self) -> str:
        """``name(a, b, *, axis=None)  [source]``: a one-line signature."""
        args = "inputs" if self.variadic else ", ".join(f"x{i}" for i in range(self.nargs))
        kw = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        sig = args + (", *, " + kw if kw else "")
        return f"{self.name}({sig})  [{self.source}]"

    def __repr__(self) -> str:
        return f"<OpInfo {self.describe()}>"


def resolve_arity(op: OpDef, source: str) -> tuple[int, dict[str, Any]]:
    """Number of array inputs and keyword params of ``op``, inferring what it leaves out."""
    params = dict(op.params) if op.params is not None else None
    nargs = op.nargs
    if op.variadic:
        return 1, params or {}
    if nargs is None or params is None:
        inferred_n, inferred_p = _infer_signature(op.forward, params or {})
        if nargs is None:
            nargs = inferred_n
        if params is None:
            params = inferred_p
    if nargs is None or nargs < 0:
        raise PluginError(
            f"op {op.name!r} from {source}: cannot tell how many inputs its forward "
            "takes; pass nargs= to OpDef"
        )
    return nargs, params or {}


def check_plain_vjp(op: OpDef, source: str) -> None:
    """``plain_vjp`` must have the shape of ``vjp``: a function, or one per input."""
    plain, vjp = op.plain_vjp, op.vjp
    if op.residual_forward is not None and (plain is None or type(plain) is tuple
                                            or op.variadic):
        raise PluginError(f"op {op.name!r} from {source}: a residual_forward needs a "
                          "plain_vjp that is one function (it receives residual=...), and "
                          "an op with a fixed number of inputs")
    if plain is None:
        return
    if vjp is None:
        problem = "a plain_vjp needs a vjp (used under create_graph)"
    elif (type(plain) is tuple) != (type(vjp) is tuple):
        problem = "plain_vjp and vjp must both be one function or both one per input"
    elif type(plain) is tuple and [f is None for f in plain] != [f is None for f in vjp]:
        problem = "plain_vjp must have a rule for exactly the inputs vjp has one for"
    else:
        return
    raise PluginError(f"op {op.name!r} from {source}: {problem}")


def _infer_signature(fn: Callable[..., Any],
                     declared: Mapping[str, Any]) -> tuple[int | None, dict[str, Any]]:
    """Inputs = positional arguments without default that are not declared params."""
    if isinstance(fn, np.ufunc):
        return fn.nin, {}
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, {}
    n = 0
    params: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.name in declared:
            continue
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            n += 1
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            params[p.name] = None if p.default is p.empty else p.default
        elif p.kind is p.VAR_POSITIONAL:
            return None, params
    return n, params
