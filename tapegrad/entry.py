"""Graph nodes: where gradients are summed. Each kind of node is a type.

* :class:`Leaf`: a tensor created by the user with ``requires_grad=True``; its
  gradient ends up in the tensor's ``.grad``. :class:`Watched` is a leaf that only a
  ``tg.Tape`` watches: the tape reads its gradient, ``.grad`` is left alone.
* :class:`Record`: one recorded op call, the entry of the Wengert tape. It holds the
  nodes of its inputs, the arrays its vjp needs, and its output(s).
* :class:`Part`: output ``k`` of a record with several outputs.

A tensor points to its node (``Tensor._node``); nodes never point to tensors, except a
leaf's weak reference to its own tensor. A record holds its parents, so a graph lives
exactly as long as something reaches its newest record, and is freed by reference
counting alone. Backward releases what a record saved, but keeps its links and shapes,
so the graph can still be drawn after a backward.
"""

from __future__ import annotations

import itertools
import weakref
from typing import Any

import numpy as np

_seq = itertools.count(1)
next_seq = _seq.__next__


class Node:
    """Base of every node kind: what ``Tensor._node`` holds for a tracked tensor.

    ``hooks`` holds the tensor hooks of the node (see ``Tensor.register_hook``), or None.
    """

    __slots__ = ("hooks",)


class Leaf(Node):
    """A user's tensor with ``requires_grad=True``: gradients accumulate on it."""

    __slots__ = ("ref", "__weakref__")

    def __init__(self, tensor: Any) -> None:
        self.hooks = None
        self.ref = weakref.ref(tensor)

    @property
    def tensor(self) -> Any:
        """The leaf tensor, or ``None`` once nothing else holds it."""
        return self.ref()

    def meta(self) -> tuple[tuple[int, ...], Any] | None:
        t = self.ref()
        return None if t is None else (t._data.shape, t._data.dtype)


class Watched(Leaf):
    """A tensor watched by an open ``tg.Tape`` only (not ``requires_grad``)."""

    __slots__ = ()


class Record(Node):
    """One recorded call ``out = op(*inputs, **params)``: an entry of the tape.

    ``parents`` holds one node per input (``None`` for an input that needs no
    gradient); ``saved`` the inputs the vjp needs (``None`` if none); ``out`` the
    output, or the tuple of outputs of an op with several; ``seq`` numbers records in
    call order (backward replays the highest first). Saved large user arrays stay
    read-only while the record holds them (see ``protect.py``); ``site`` is the
    user's source line (anomaly mode only). After a backward without ``retain_graph``
    the record is *released*: saved arrays (and their locks) and output go; ``parents`` and
    ``shapes`` (shape and dtype of the output, or of each) stay, for drawing.
    Records are made by ``graph.record`` alone.
    """

    __slots__ = ("op", "parents", "saved", "out", "params", "seq", "site", "shapes",
                 "__weakref__")

    @property
    def released(self) -> bool:
        return self.out is None

    def release(self) -> None:
        """Free what the vjp needed (after its backward); keep the graph's shape."""
        out = self.out
        self.shapes = (tuple((o.shape, o.dtype) for o in out) if type(out) is tuple
                       else (out.shape, out.dtype))
        self.saved = self.out = None  # locks held by the saved inputs go (protect.py)

    def output_meta(self, k: int = 0) -> tuple[tuple[int, ...], Any]:
        """Shape and dtype of output ``k``."""
        out = self.out
        if out is None:
            return self.shapes[k] if self.op.nout > 1 else self.shapes
        out = out[k] if type(out) is tuple else out
        return out.shape, out.dtype

    def meta(self) -> tuple[tuple[int, ...], Any]:
        return self.output_meta(0)


class Part(Node):
    """Output ``index`` of a record with several outputs."""

    __slots__ = ("record", "index")

    def __init__(self, record: Record, index: int) -> None:
        self.hooks = None
        self.record = record
        self.index = index

    def meta(self) -> tuple[tuple[int, ...], Any]:
        return self.record.output_meta(self.index)


class ShapeOf:
    """Stands in for an input whose vjp needs only its shape and dtype."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape = shape
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))
