"""The recording state: every mode switch of the engine lives in :data:`STATE`.

Per thread: whether grad mode is on, the open ``tg.Tape`` objects, how deep a
``create_graph`` vjp is running (inside one, converting a tracked Tensor to NumPy is an
error: it would drop a gradient), and ``trace``: the tracer of ``tg.compile`` while it
runs a function to build a plan (it sees every op call, tracked or not, and every place
a value could leave for Python; it is consulted only while a mode block is open). Per
process: how many anomaly blocks are open, and how many mode blocks of any kind
(``no_grad``, ``enable_grad``, ``Tape``, ``detect_anomaly``) are open in any thread.
While that count is zero, every thread records plainly and the op callers skip the
thread-local reads.

Owner: this module. Its grad-mode context managers (``no_grad``, ``enable_grad``),
``tg.Tape`` and ``detect_anomaly`` change it through :meth:`RecordingState.enter` and
:meth:`RecordingState.leave` only.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar


class _PerThread(threading.local):
    def __init__(self) -> None:
        self.grad_enabled = True
        self.tapes: list[Any] = []
        self.strict = 0
        self.trace: Any = None  # tg.compile's tracer while it traces (see the compiler package)


class RecordingState:
    """Grad mode, open tapes, anomaly mode and create_graph strictness, in one place."""

    __slots__ = ("quiet", "anomaly", "thread", "_lock", "_open")

    def __init__(self) -> None:
        self.quiet = True  # no mode block open in any thread: record plainly
        self.anomaly = 0  # open detect_anomaly() blocks, all threads
        self.thread = _PerThread()
        self._lock = threading.Lock()
        self._open = 0

    def enter(self, anomaly: bool = False) -> None:
        """A mode block opens (in any thread)."""
        with self._lock:
            self._open += 1
            self.anomaly += anomaly
            self.quiet = False

    def leave(self, anomaly: bool = False) -> None:
        with self._lock:
            self._open -= 1
            self.anomaly -= anomaly
            self.quiet = self._open == 0

    @property
    def grad_enabled(self) -> bool:
        return self.thread.grad_enabled

    @property
    def tapes(self) -> list[Any]:
        """This thread's open tapes, innermost last."""
        return self.thread.tapes


STATE = RecordingState()


# ----------------------------------------------------------------------- grad mode

F = TypeVar("F", bound=Callable[..., Any])


class _GradMode:
    """Context manager (and decorator) that sets whether ops are recorded."""

    enabled = True

    def __enter__(self) -> None:
        STATE.enter()
        self._prev = STATE.thread.grad_enabled
        STATE.thread.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        STATE.thread.grad_enabled = self._prev
        STATE.leave()

    def __call__(self, fn: F) -> F:
        mode = type(self)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with mode():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):  # noqa: N801
    """Nothing computed inside is recorded (in this thread): for inference and updates."""

    enabled = False


class enable_grad(_GradMode):  # noqa: N801
    """Record again inside a ``no_grad`` block."""

    enabled = True


def is_grad_enabled() -> bool:
    return STATE.thread.grad_enabled
