"""Tape entries and leaf marks: the nodes gradients are routed through.

A *node* is what gradients are summed into: the :class:`Entry` that produced a tensor,
or the leaf tensor itself (whose ``_node`` holds :data:`LEAF` or :data:`WATCHED`).
Entries hold their input nodes but never their output tensor, so a graph nobody can
reach any more is freed by reference counting alone.
"""

from __future__ import annotations

import itertools

_seq = itertools.count(1)


class Entry:
    """One recorded op call: ``out = op(*inputs, **params)``.

    ``nodes`` holds, per input, the node gradients flow to (``None`` for an input that
    needs none). ``inputs`` and ``out`` hold the arrays the vjp needs, ``None`` where it
    needs none. ``shape``/``dtype`` describe ``out``, so gradients flowing into this
    node can be checked. After a backward without ``retain_graph`` the entry is
    *released*: ``nodes`` becomes ``None`` and the saved arrays are dropped.
    """

    __slots__ = ("op", "nodes", "inputs", "out", "params", "seq", "shape", "dtype",
                 "hooks", "site", "__weakref__")
    _is_entry = True  # nodes are entries or leaf tensors; this tells them apart fast

    def __init__(self, op, nodes, inputs, out, params, shape, dtype):
        self.op = op
        self.nodes = nodes
        self.inputs = inputs
        self.out = out
        self.params = params
        self.shape = shape
        self.dtype = dtype
        self.seq = next(_seq)
        self.hooks = None
        self.site = None

    def release(self) -> None:
        self.nodes = self.inputs = self.out = None

    @property
    def released(self) -> bool:
        return self.nodes is None

    def __repr__(self) -> str:
        return f"<Entry #{self.seq} {self.op.name} -> {self.shape}>"


class _LeafMark:
    """Marks a leaf tensor as a node (``requires_grad`` or watched by a tape)."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


#: ``Tensor._node`` of a leaf with ``requires_grad=True``.
LEAF = _LeafMark("leaf")
#: ``Tensor._node`` of a leaf watched by an active ``tg.Tape`` only.
WATCHED = _LeafMark("watched")
