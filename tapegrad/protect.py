"""Protection of saved arrays: nothing the user can still change may corrupt a gradient.

An array a record saves for its backward is either private to the graph (the output of
a recorded op that owns its memory: it leaves the engine only read-only) or it is
protected here: copied when small, and, when large, made read-only together with the
array that owns its memory until every record that saved it is released or dropped.
In-place writes through the array or its owner then raise NumPy's ``ValueError``. Views
the user made *before* the lock (``v = big[:10]``) keep their own write flag: NumPy
cannot take it back, so writes through them are not caught (documented in the README).
"""

from __future__ import annotations

import threading

import numpy as np

ndarray = np.ndarray

#: Saved user arrays up to this many elements are copied rather than locked.
COPY_LIMIT = 1024

_counts: dict[int, list] = {}  # id(array) -> [array, number of live records locking it]
_mutex = threading.Lock()
_pending: list[ndarray] = []  # unlocked views whose owner was still locked


class Locks(list):
    """The arrays one record made read-only; dropping this object unlocks them."""

    __slots__ = ()

    def __del__(self) -> None:
        with _mutex:
            for a in self:  # owners first, then their views
                rec = _counts.get(id(a))
                if rec is None or rec[0] is not a:
                    continue
                rec[1] -= 1
                if rec[1] == 0:
                    del _counts[id(a)]
                    _pending.append(a)
            while True:  # views after their owners: repeat while something unlocks
                left = [a for a in _pending if not _unlock(a)]
                done = len(left) == len(_pending)
                _pending[:] = left
                if done:
                    break


class LockedInputs(tuple):
    """Saved inputs that hold the locks protecting them: freeing them unlocks."""

    def __new__(cls, arrays: list, locks: Locks) -> LockedInputs:
        self = super().__new__(cls, arrays)
        self.locks = locks
        return self


def _unlock(a: ndarray) -> bool:
    try:
        a.setflags(write=True)
    except ValueError:  # its owner is still locked by another record: retried later
        return False
    return True


def _owner(a: ndarray) -> ndarray:
    while isinstance(a.base, ndarray):
        a = a.base
    return a


def _lock(a: ndarray, locks: Locks) -> None:
    rec = _counts.get(id(a))
    if rec is not None and rec[0] is a:
        rec[1] += 1
    elif a.flags.writeable:
        a.setflags(write=False)
        _counts[id(a)] = [a, 1]
    else:
        return  # read-only already, by someone else: nothing to undo later
    locks.append(a)


def protect(arrays: tuple, private: tuple) -> tuple:
    """The saved arrays made safe from later in-place changes (holding the locks taken).

    ``private[i]`` is true when ``arrays[i]`` needs no protection (a recorded op's own
    output). Arrays that are not ndarrays (numbers, other libraries' arrays) are saved
    as they are.
    """
    saved = list(arrays)
    locks = None
    for i, a in enumerate(arrays):
        if private[i] or type(a) is not ndarray:
            continue
        if a.size <= COPY_LIMIT:
            saved[i] = a.copy()
            continue
        owner = _owner(a)
        if not owner.flags.writeable and not a.flags.writeable and id(owner) not in _counts:
            continue  # read-only for good (a constant, a view of one)
        if locks is None:
            locks = Locks()
        with _mutex:
            _lock(owner, locks)
            if a is not owner:
                _lock(a, locks)
    return tuple(saved) if locks is None else LockedInputs(saved, locks)
