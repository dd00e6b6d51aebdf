"""Tape entries: the result of every recorded op call is itself the entry of the tape.

A *node* is what gradients are summed into: a leaf tensor (``_node`` is :data:`LEAF`
or :data:`WATCHED`) or an :class:`Entry`, the tensor an op returned while recording.
An entry holds its input nodes, so the graph lives exactly as long as something can
still reach its last result, and is freed by reference counting alone. One object per
recorded call, not a tensor plus a separate record, is what keeps recording cheap.
"""

from __future__ import annotations

import itertools

from .tensor import LEAF, RESULT, WATCHED, Tensor, _LeafMark

__all__ = ["LEAF", "RESULT", "WATCHED", "Entry", "_LeafMark", "_seq"]

_seq = itertools.count(1)


class Entry(Tensor):
    """The result of one recorded op call ``self = op(*inputs, **params)``.

    ``op`` is the :class:`~tapegrad.OpInfo`; ``nodes`` holds, per input, the node
    gradients flow to (``None`` for an input that needs none); ``inputs`` holds the
    arrays the vjp needs, ``None`` where it needs none (or ``None`` altogether).
    ``seq`` numbers entries in call order: backward replays from the highest down. The
    output the vjp receives is the entry's own data. ``residual`` is set only for ops
    with a ``residual_forward``. After a backward without ``retain_graph`` the entry is
    *released*: ``nodes`` becomes ``None`` and the saved arrays are dropped, while the
    tensor itself stays usable.
    """

    __slots__ = ("op", "nodes", "inputs", "params", "seq", "residual")
    site: str | None = None  # the user's source line, set in anomaly mode only

    @property
    def data(self):
        """The ndarray (never a copy), read-only: the graph may have saved it."""
        d = self._data
        if d.flags.writeable:
            d.flags.writeable = False
        return d

    @data.setter
    def data(self, value) -> None:
        raise RuntimeError(
            "cannot replace .data of a tensor produced by a recorded op; detach() it "
            "or build a new tensor"
        )

    @property
    def out(self):
        """The op's output (the entry's data)."""
        return self._data

    def release(self) -> None:
        self.nodes = self.inputs = None
        if self.op.residual:
            self.residual = None

    @property
    def released(self) -> bool:
        return self.nodes is None
