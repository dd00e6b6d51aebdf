"""What a plugin declares about an op (:class:`OpDef`) and what the registry keeps
(:class:`OpInfo`: the definition stamped with where it came from)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .arguments import input_names
from .errors import PluginError

#: A sample for automatic gradient checks: positional inputs and keyword params.
Sample = tuple[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True, eq=False)
class OpDef:
    """The definition of one differentiable op.

    ``forward(*inputs, **params)`` takes arrays (or Python scalars) and returns an
    array, or a tuple of ``nout`` arrays. ``vjp(g, out, *inputs, **params)`` takes the
    upstream gradient ``g`` (shape of ``out``) and returns one gradient per input,
    ``None`` for an input that gets none; a gradient may have the shape its input was
    broadcast to in the call, the engine sums it back. For a one-input op the vjp may
    return the gradient itself instead of a 1-tuple. Write vjps with operators, NumPy
    functions and array methods: on arrays they run as plain NumPy; under
    ``create_graph=True`` they receive Tensors and are recorded, so they can be
    differentiated again.

    Fields:
        name: the op's name, unique across plugins; ``tg.ops.<name>``.
        forward: arrays in, array (or tuple of ``nout`` arrays) out.
        vjp: reverse-mode rule (or a tuple of one rule per input, ``None`` where an
            input gets no gradient), or ``None`` for an op that is not differentiable:
            its outputs are never recorded.
        jvp: optional forward-mode rule ``jvp(tangents, out, *inputs, **params)``:
            ``tangents`` holds one tangent per input (``None`` for zero); returns the
            tangent of ``out`` (a tuple for several outputs). Ops without one get
            forward mode from their vjp.
        nargs: number of array inputs; inferred from ``forward`` when left out.
        optional: how many trailing inputs may be left out (``conv2d(x, w)`` without
            its bias); the forward and the vjp get ``None`` for them.
        nout: number of outputs. With ``nout > 1`` the forward returns a tuple (a
            named tuple is kept: ``np.linalg.eigh`` returns ``EighResult``), calling
            the op returns one Tensor per output, and ``g`` and ``out`` in the vjp
            are tuples (zeros for an output nothing used).
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
            (``np.sum(t)``); a ufunc ``forward`` is implied. An entry may be a pair
            ``(np.FUNC, adapter)`` when the op's signature differs from NumPy's:
            ``adapter(op, *args, **kwargs)`` calls the op (``np.einsum("ij,jk", a, b)``
            -> ``op([a, b], subscripts="ij,jk")``).
        complex: the rules are right for complex inputs too. Rules follow HIPS
            autograd's convention (the vjp of a holomorphic ``f`` is ``g * f'(z)``, no
            conjugate); the engine conjugates at the boundary, so users see PyTorch's
            (``z.grad = dL/dRe(z) + 1j * dL/dIm(z)``). An op left at ``False`` refuses
            complex values that need a gradient.
        lazy: ``False`` when the forward or the rules need concrete values (they call a
            NumPy function Dask has no lazy version of): such an op refuses Dask arrays
            with an error naming it, instead of letting Dask compute them.
        domain: interval from which automatic checks draw inputs.
        samples: ``samples(rng) -> iterable of (inputs, params)`` for automatic checks
            of ops whose inputs need structure (shapes, indices); elementwise ops can
            rely on ``domain`` alone.
        doc: one line saying what the op computes.
        save_inputs: the one memory hint: ``False`` when the vjp reads no input,
            ``"shape"`` when it reads only their shapes and dtypes. Inputs not needed are
            neither kept alive nor protected.
        compilable: ``False`` for an op ``tg.compile`` must not replay (it draws random
            numbers, reads a clock, has side effects): compiling a function calling it
            raises ``tg.CompileError`` naming the op.
        traits: what else ``tg.compile`` must know of the op, any of:
            ``"view"``: the forward may return its first input, or a view of it with the
            same layout, for some shapes and params (never depending on the values): a
            plan takes such a result as that input (``reshape``, ``transpose``...);
            ``"value_dtype"``: the result's dtype depends on the values (``eig``: real
            or complex eigenvalues): a plan checks it at every call;
            ``"index"``: the op is ``x[index]`` with its param ``index``: an index that is
            a boolean mask computed from traced values is refused (the result's shape
            would depend on the values), and plans on floats write it as a subscript;
            ``"composite"``: the forward is written with ops, operators and NumPy
            functions only, so it also runs on Tensors: a full plan has its ops in its
            place (every YAML forward formula).
    """

    name: str
    forward: Callable[..., Any]
    vjp: Callable[..., Any] | tuple | None = None
    jvp: Callable[..., Any] | None = None
    nargs: int | None = None
    optional: int = 0
    nout: int = 1
    variadic: bool = False
    params: Mapping[str, Any] | None = None
    nondiff: tuple[int, ...] = ()
    method: bool | str | Callable[..., Any] = False
    operators: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()
    implements: tuple[Callable[..., Any], ...] = ()
    complex: bool = False
    lazy: bool = True
    domain: tuple[float, float] = (-2.0, 2.0)
    samples: Callable[[np.random.Generator], Iterable[Sample]] | None = None
    doc: str = ""
    save_inputs: bool | str = True
    compilable: bool = True
    traits: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.traits) - TRAITS
        if unknown:
            raise PluginError(f"op {self.name!r}: unknown traits {sorted(unknown)}; "
                              f"the traits are {sorted(TRAITS)}")


#: The values of ``OpDef.traits``.
TRAITS = frozenset({"view", "value_dtype", "index", "composite"})


@dataclass(eq=False, slots=True)
class OpInfo:
    """A registered op: its definition, where it came from and how to call it.

    ``source`` is the plugin name, or the YAML file the op was declared in.
    ``call`` is the function behind ``tg.ops.<name>``. Slotted: the engine reads its
    fields on every call.
    """

    name: str
    source: str
    nargs: int
    params: dict[str, Any]
    definition: OpDef
    call: Callable[..., Any] = field(repr=False, default=None)  # type: ignore[assignment]
    plugin: str = ""
    # Derived from the definition in __post_init__:
    frozen: frozenset = field(init=False, repr=False)
    save_inputs: Any = field(init=False, repr=False)
    complex: bool = field(init=False, repr=False)
    nout: int = field(init=False, repr=False)
    plain: bool = field(init=False, repr=False)
    blank: tuple | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Derived once, read by the engine on every call.
        d = self.definition
        #: inputs that never carry a gradient: nondiff ones, or all of a constant op
        self.frozen = frozenset(range(self.nargs)) if d.vjp is None else frozenset(d.nondiff)
        self.save_inputs = d.save_inputs
        self.complex = d.complex
        self.nout = d.nout
        #: one output that is never an input's own array (a ufunc's): no output checks
        self.plain = d.nout == 1 and isinstance(d.forward, np.ufunc)
        #: what a vjp that saved no inputs gets in their place
        self.blank = None if d.variadic else (None,) * self.nargs

    @property
    def forward(self) -> Callable[..., Any]:
        return self.definition.forward

    @property
    def vjp(self) -> Any:
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
        """``name(x, *, eps=0.001)  [source]``: a one-line signature."""
        names = input_names(self.definition.forward, self.nargs, self.params)
        if self.variadic:
            names = ["inputs"]
        k = self.definition.optional
        if k:
            names = names[:-k] + [f"{n}=None" for n in names[-k:]]
        kw = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        sig = ", ".join(names) + (", *, " + kw if kw else "")
        return f"{self.name}({sig})  [{self.source}]"

    def __repr__(self) -> str:
        return f"<OpInfo {self.describe()}>"
