"""A record's vjp as one step of a plan: how a first trace takes the backward cheaply.

While ``tg.compile`` traces, the backward of the outermost transform (a gradient nothing
differentiates again) does not need its ops recorded. Its vjps could still run on
Tensors so that the tracer sees every op inside them, but that is what made tracing
cost several eager calls. On a first trace each record's vjp instead runs once on plain
arrays, as in an eager backward, and becomes one step calling the op's rule
(:class:`RuleCall`): the plan of the first calls. When the plan is reused (``HOT``
calls) or its source is read, the function is traced again with every rule expanded
into its ops: straight-line NumPy, repeats shared, buffers reused (``api.Compiled``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..higher_order import apply_vjp
from ..tensor import Tensor
from .steps import _Guard

ndarray = np.ndarray


class RuleCall:
    """``rule(*g, *out, *inputs, **params)`` of one op: the gradients of the inputs at
    ``positions`` (those the trace found needed and given), as a tuple (bare when one,
    as a step's one output is).

    ``mask`` says which inputs need a gradient (``None`` where the record's parent is
    ``None``, as the engine passes parents to ``higher_order.apply_vjp``); ``nout`` is the
    op's number of outputs (its ``g`` and ``out`` come first, one argument each).
    """

    __slots__ = ("vjp", "mask", "nout", "positions", "__name__")

    def __init__(self, info: Any, mask: tuple, positions: tuple) -> None:
        self.vjp = info.definition.vjp
        self.mask = mask
        self.nout = info.nout
        self.positions = positions
        self.__name__ = f"vjp_{info.name}"

    def __call__(self, *args: Any, **params: Any) -> tuple:
        k = self.nout
        if k == 1:
            g, out, inputs = args[0], args[1], args[2:]
        else:
            g, out, inputs = args[:k], args[k:2 * k], args[2 * k:]
        res = gradients(self.vjp, self.mask, g, out, inputs, params)
        picked = tuple(res[i] for i in self.positions)
        for r in picked:
            if r is None:  # the rule gave no gradient where the trace had one: eager
                raise _Guard
        return picked[0] if len(picked) == 1 else picked

    def __repr__(self) -> str:
        return f"<rule {self.__name__}>"


def gradients(vjp: Any, mask: tuple, g: Any, out: Any, inputs: tuple, params: dict) -> tuple:
    """A vjp's gradients, one per input (``None`` where it gives none)."""
    res = apply_vjp(vjp, mask, g, out, inputs, params)
    if type(res) is not tuple and type(res) is not list:
        res = (res,)  # a one-input vjp may return its gradient bare
    if len(res) != len(mask):  # not as traced: the eager run names the broken rule
        raise _Guard
    return tuple(None if r is None else as_array(r) for r in res)


def as_array(r: Any) -> Any:
    """A gradient as an array: a rule may return a Python or NumPy scalar, or (calling
    a lifted op) an untracked Tensor."""
    if type(r) is ndarray:
        return r
    if isinstance(r, Tensor):
        return r._data
    return r if hasattr(r, "__array_function__") else np.asarray(r)
