"""A reference for ``overhead.py``: the least an eager engine shaped like tapegrad's does.

Per op call it unwraps the inputs, runs the forward, copies the small user arrays it
saves (as tapegrad does), and makes two objects: a record (the tape entry, which
outlives the backward for drawing) and the result tensor. The backward replays
records newest first through a heap, calls one rule per input that needs a gradient,
adds up fan-out and releases each record. Nothing else: no binding of params, no
checks of what forwards and rules return, no unbroadcasting or casts, no modes, no
protection of large arrays, no multi-output ops, no errors naming anything.

Its ratio to the NumPy floor is what the recording design costs in CPython before any
of tapegrad's guarantees: the row ``minimal engine (reference)`` of ``overhead.py``.
It knows only the chain's six ops.
"""

from __future__ import annotations

import itertools
from heapq import heappop, heappush

import numpy as np

ndarray = np.ndarray
_new = object.__new__
_seq = itertools.count().__next__


class Tensor:
    __slots__ = ("data", "node")


class Leaf:
    __slots__ = ()


class Record:
    __slots__ = ("rules", "parents", "saved", "out", "seq", "shape")


def op(forward, *rules):
    """The caller of an op: ``rules[i](g, out, *inputs)`` is input ``i``'s gradient."""
    def call(*args):
        arrays, parents = [], []
        for x in args:
            if type(x) is Tensor:
                arrays.append(x.data)
                parents.append(x.node)
            else:
                arrays.append(x)
                parents.append(None)
        out = forward(*arrays)
        saved = [a.copy() if type(parents[i]) is not Record and type(a) is ndarray else a
                 for i, a in enumerate(arrays)]
        rec = _new(Record)
        rec.rules, rec.parents, rec.saved, rec.out, rec.seq = rules, parents, saved, out, _seq()
        t = _new(Tensor)
        t.data, t.node = out, rec
        return t
    return call


def leaf(data):
    t = _new(Tensor)
    t.data, t.node = data, Leaf()
    return t


def backward(t):
    """Gradients of ``t``'s single element, by node."""
    grads = {t.node: np.ones_like(t.data)}
    heap = [(-t.node.seq, t.node)]
    while heap:
        rec = heappop(heap)[1]
        g = grads.pop(rec)
        for i, node in enumerate(rec.parents):
            if node is None:
                continue
            gi = rec.rules[i](g, rec.out, *rec.saved)
            old = grads.get(node)
            if old is not None:
                grads[node] = old + gi
            else:
                grads[node] = gi
                if type(node) is Record:
                    heappush(heap, (-node.seq, node))
        rec.shape = rec.out.shape
        rec.saved = rec.out = None
    return grads


mul = op(np.multiply, lambda g, out, x, y: g * y, lambda g, out, x, y: g * x)
add = op(np.add, lambda g, out, x, y: g, lambda g, out, x, y: g)
sub = op(np.subtract, lambda g, out, x, y: g, lambda g, out, x, y: -g)
tanh = op(np.tanh, lambda g, out, x: g * (1.0 - out * out))
sin = op(np.sin, lambda g, out, x: g * np.cos(x))
exp = op(np.exp, lambda g, out, x: g * out)
Tensor.__mul__, Tensor.__add__, Tensor.__sub__ = mul, add, sub
