"""Explicit tapes: ``tg.Tape``, a Wengert list of the records made while it is open.

Ops on tracked tensors are recorded whether or not a ``Tape`` is open: that is what
makes ``loss.backward()`` work after a plain forward pass. A ``Tape`` additionally keeps
the list of records made while it is open, in call order, and ``tape.gradient`` replays
exactly that list backwards. Tapes nest: a gradient computed while another tape is
recording is itself recorded, so the outer tape can differentiate it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .backward import replay
from .entry import Record, Watched
from .errors import GraphError, TapegradTypeError
from .lazy import foreign
from .leaves import conj, make_seed
from .state import STATE
from .tensor import Tensor, wire


class Tape:
    """Records, in call order, every op on watched tensors while open.

    Watched tensors are those with ``requires_grad=True`` and any passed to
    :meth:`watch`. :meth:`gradient` replays the recorded list backwards. A tape made
    with ``persistent=False`` computes one gradient and frees what it recorded; a
    persistent one can be asked any number of times.
    """

    #: True for the tape ``tg.compile`` opens while it traces: gradients computed under
    #: it (by the transforms of the traced function) are then Tensors the tracer sees,
    #: but their backward is not recorded for this tape (nothing differentiates it).
    trace_only = False

    def __init__(self, persistent: bool = False) -> None:
        self.persistent = persistent
        self.records: list[Record] = []
        self._watched: dict[Tensor, Watched] = {}  # tensor -> its node (kept after exit)
        self._active = False
        self._used = False

    def __enter__(self) -> Tape:
        if self._active:
            raise GraphError("this Tape is already recording")
        STATE.enter()
        STATE.thread.tapes.append(self)
        self._active = True
        return self

    def __exit__(self, *exc: object) -> None:
        tapes = STATE.thread.tapes
        if self in tapes:
            del tapes[len(tapes) - 1 - tapes[::-1].index(self)]
        self._active = False
        STATE.leave()
        for t in self._watched:
            if t._node is self._watched[t] and not any(t in tp._watched for tp in tapes):
                t._node = None

    @property
    def entries(self) -> list[Record]:
        """The recorded entries, oldest first (the Wengert list)."""
        return list(self.records)

    def watch(self, *tensors: Tensor | Iterable[Tensor]) -> None:
        """Record ops on these tensors too, while this tape is open."""
        if not self._active:
            raise GraphError("Tape.watch() needs the tape to be open: call it inside "
                             "`with tg.Tape() as tape:`")
        for t in _flatten(tensors):
            if not isinstance(t, Tensor):
                raise TapegradTypeError(f"Tape.watch() takes Tensors, got {type(t).__name__}")
            if t.dtype.kind not in "fc":
                raise TapegradTypeError(f"Tape.watch(): cannot watch a tensor of dtype {t.dtype}")
            if t._node is None:
                t._node = Watched(t)
            self._watched.setdefault(t, t._node)

    def gradient(self, target: Tensor, sources: Tensor | Iterable[Tensor],
                 output_gradients: Any = None) -> Any:
        """Gradient of ``target`` with respect to each source.

        ``sources`` is a Tensor (returns one array) or a list of them (returns a list).
        A source the target does not depend on gets zeros. When another tape is
        recording, the gradient is recorded too and returned as Tensors, so that tape
        can differentiate it again.
        """
        if self._used and not self.persistent:
            raise GraphError(
                "a non-persistent Tape can compute gradient() only once; make it with "
                "tg.Tape(persistent=True) to ask for several gradients")
        self._used = True
        single = isinstance(sources, Tensor)
        srcs = [sources] if single else list(_flatten([sources]))
        for s in [target, *srcs]:
            if not isinstance(s, Tensor):
                raise TapegradTypeError(f"Tape.gradient() takes Tensors, got {type(s).__name__}")
        recording = STATE.thread.grad_enabled and any(
            t is not self and not t.trace_only for t in STATE.thread.tapes)
        # While tg.compile traces, the vjps run on Tensors even when nothing records
        # them: the tracer must see every op of the backward.
        on_tensors = recording or STATE.thread.trace is not None
        grads = self._replay(target, srcs, output_gradients, recording, on_tensors)
        results = [_result(grads.get(s._node or self._watched.get(s)), s, on_tensors)
                   for s in srcs]
        return results[0] if single else results

    def _replay(self, target: Tensor, srcs: list, seed: Any, recording: bool,
                on_tensors: bool) -> dict:
        node = target._node
        if node is None:
            return {}
        within = set(self.records)
        rec = getattr(node, "record", node)
        if isinstance(rec, Record) and rec not in within:
            raise GraphError(
                f"Tape.gradient: the target was not recorded by this tape (its last op, "
                f"{rec.op.name!r}, ran while the tape was closed). Compute the target "
                "inside the `with tg.Tape() as tape:` block")
        retain = self.persistent or recording
        keep = {s._node for s in srcs if isinstance(s._node, Record)}
        grads = replay({node: make_seed(target._data, seed, on_tensors, wire)}, retain,
                       wire if on_tensors else None, within, keep or None, recording)
        if not retain:
            self.records = []
        return grads

    def __len__(self) -> int:
        return len(self.records)

    def to_dot(self, title: str = "tape") -> str:
        """Graphviz DOT text of the recorded entries (see :func:`tapegrad.to_dot`)."""
        from .dot import tape_to_dot

        return tape_to_dot(self.records, title)

    def __str__(self) -> str:
        """The Wengert list: one ``v3 = mul(v1, v2)`` line per recorded op call."""
        from .dot import wengert

        kind = "persistent" if self.persistent else "non-persistent"
        head = f"Tape({kind}, {len(self.records)} entries)"
        body = wengert(self.records)
        return f"{head}\n{body}" if body else head


def _result(g: Any, source: Tensor, recording: bool) -> Any:
    """A source's gradient as the user sees it: zeros if none, conjugated if complex."""
    if g is None:
        g = np.zeros_like(source._data)
    g = conj(g)
    if isinstance(g, Tensor):
        return g if recording else g._data
    g = g if foreign(g) else np.asarray(g)
    return wire(g, None) if recording else g


def _flatten(items: Iterable[Any]) -> Iterable[Any]:
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        else:
            yield item
