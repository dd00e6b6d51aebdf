"""Protection of saved arrays: nothing the user can still change may corrupt a gradient.

When an op saves, for its backward, an array the user can reach (a leaf's data, a
constant, a plain ndarray), a small one is copied and a large one is made read-only
until every entry that saved it is released (by a backward) or dropped. Locks are
counted per array, and views are unlocked after their bases.

The locks an entry holds live in a :class:`Locks` object of its own, which undoes them
when it goes: when the entry is released (it drops the object) or freed with its
graph. The entry itself needs no finalizer, and releasing it is one store.
"""

from __future__ import annotations

import threading

import numpy as np

from .entry import RESULT, Entry

ndarray = np.ndarray


class LockingEntry(Entry):
    """An entry that saved large arrays the user can reach (leaf data, plain ndarrays).

    Those arrays are read-only while the entry may still need them, so an in-place
    change between forward and backward fails loudly instead of silently corrupting the
    gradient. ``locked`` holds their :class:`Locks`; they become writable again when
    the entry is released by a backward, or when the graph is dropped. (Small arrays
    are copied instead: see :func:`protect`.)
    """

    __slots__ = ("locked",)

    def release(self) -> None:
        Entry.release(self)
        self.locked = None  # the Locks object goes, and unlocks


class Locks(list):
    """The arrays one entry made (or kept) read-only; dropping this unlocks them."""

    __slots__ = ()

    def __del__(self) -> None:
        with _locks_mutex:
            for a in self:
                rec = _locks.get(id(a))
                if rec is None or rec[0] is not a:
                    continue
                rec[1] -= 1
                if rec[1] == 0:
                    del _locks[id(a)]
                    if a.base is None:  # owns its memory: no locked base above it
                        a.setflags(write=True)
                    else:
                        _pending.append(a)
            while _pending:  # views after their bases: repeat while something unlocks
                left = [a for a in _pending if not _make_writeable(a)]
                if len(left) == len(_pending):
                    break
                _pending[:] = left


_locks: dict[int, list] = {}  # id(array) -> [array, number of live entries saving it]
_locks_mutex = threading.Lock()
_pending: list[ndarray] = []  # unlocked views whose base was still read-only


def _make_writeable(a: ndarray) -> bool:
    try:
        a.setflags(write=True)
    except ValueError:  # a view of an array that is itself still locked: retry later
        return False
    return True


#: Saved user-reachable arrays up to this many elements are copied rather than locked:
#: for small arrays a copy costs less than the lock bookkeeping and needs none.
COPY_LIMIT = 1024


def protect(nodes: tuple, inputs: tuple) -> tuple[tuple, Locks | None]:
    """Make the saved inputs the user can reach safe from later in-place changes.

    Arrays that are not results of recorded ops (leaf data, constants, plain ndarrays)
    are copied when small and made read-only otherwise (counting: an array saved by
    two live entries stays locked until both are done). Returns the inputs to save and
    the :class:`Locks` taken (``None`` if none).
    """
    saved = None
    taken = None
    for i, x in enumerate(inputs):
        n = nodes[i]
        if type(x) is not ndarray or (n is not None and n._node is RESULT):
            continue
        if x.size <= COPY_LIMIT:
            if saved is None:
                saved = list(inputs)
            saved[i] = x.copy()
            continue
        with _locks_mutex:
            rec = _locks.get(id(x))
            if rec is not None and rec[0] is x:
                rec[1] += 1
            elif x.flags.writeable:
                x.setflags(write=False)  # (cheaper than assigning flags.writeable)
                _locks[id(x)] = [x, 1]
            else:
                continue  # read-only already, by someone else: nothing to undo later
        if taken is None:
            taken = Locks()
        taken.append(x)
    return (inputs if saved is None else tuple(saved)), taken
