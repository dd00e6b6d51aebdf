"""Protection of saved arrays: nothing the user can still change may corrupt a gradient.

When an op saves, for its backward, an array the user can reach (a leaf's data, a
constant, a plain ndarray), a small one is copied and a large one is made read-only
until every entry that saved it is released (by a backward) or dropped. Locks are
counted per array, and views are unlocked after their bases.
"""

from __future__ import annotations

import threading

import numpy as np

from .entry import RESULT, Entry

ndarray = np.ndarray


class LockingEntry(Entry):
    """An entry that saved large arrays the user can reach (leaf data, plain ndarrays).

    Those arrays are made read-only while the entry may still need them, so an in-place
    change between forward and backward fails loudly instead of silently corrupting the
    gradient. They become writable again when the entry is released by a backward, or
    when the graph is dropped. (Small ones are copied instead: see :func:`protect`.)
    """

    __slots__ = ("locked",)

    def release(self) -> None:
        Entry.release(self)
        locked = self.locked
        self.locked = None
        if locked:
            unlock(locked)

    def __del__(self) -> None:
        if self.locked:
            unlock(self.locked)


_locks: dict[int, list] = {}  # id(array) -> [array, number of live entries saving it]
_locks_mutex = threading.Lock()


def lock(arrays: list[ndarray]) -> tuple[ndarray, ...] | None:
    """Make ``arrays`` read-only (counting); return those this call locked or counted."""
    taken = []
    with _locks_mutex:
        for a in arrays:
            rec = _locks.get(id(a))
            if rec is not None and rec[0] is a:
                rec[1] += 1
            elif a.flags.writeable:
                a.flags.writeable = False
                _locks[id(a)] = [a, 1]
            else:
                continue  # read-only already, by someone else: nothing to undo later
            taken.append(a)
    return tuple(taken) if taken else None


_pending: list[ndarray] = []  # unlocked views whose base was still read-only


def unlock(arrays: tuple[ndarray, ...]) -> None:
    with _locks_mutex:
        for a in arrays:
            rec = _locks.get(id(a))
            if rec is None or rec[0] is not a:
                continue
            rec[1] -= 1
            if rec[1] == 0:
                del _locks[id(a)]
                if a.base is None:  # owns its memory: no locked base above it
                    a.flags.writeable = True
                else:
                    _pending.append(a)
        while _pending:  # views after their bases: repeat while something unlocks
            left = [a for a in _pending if not _make_writeable(a)]
            if len(left) == len(_pending):
                break
            _pending[:] = left


def _make_writeable(a: ndarray) -> bool:
    try:
        a.flags.writeable = True
    except ValueError:  # a view of an array that is itself still locked: retry later
        return False
    return True


#: Saved user-reachable arrays up to this many elements are copied rather than locked:
#: for small arrays a copy costs less than the lock bookkeeping and needs none.
COPY_LIMIT = 1024


def protect(nodes: tuple, inputs: tuple) -> tuple[tuple, tuple[ndarray, ...] | None]:
    """Make the saved inputs the user can reach safe from later in-place changes.

    Arrays that are not results of recorded ops (leaf data, constants, plain ndarrays)
    are copied when small and locked read-only otherwise. Returns the inputs to save
    and the arrays locked (``None`` if none).
    """
    saved = list(inputs)
    to_lock = None
    for i, x in enumerate(inputs):
        n = nodes[i]
        if type(x) is ndarray and (n is None or n._node is not RESULT):
            if x.size <= COPY_LIMIT:
                saved[i] = x.copy()
            elif to_lock is None:
                to_lock = [x]
            else:
                to_lock.append(x)
    return tuple(saved), (lock(to_lock) if to_lock else None)
