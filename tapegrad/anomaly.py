"""``tg.detect_anomaly()``: stop at the first NaN or inf, naming the op and the call site.

While anomaly mode is on, every op checks its forward result and its vjp (and jvp)
results; the first non-finite value raises ``FloatingPointError`` naming the op, the
plugin (or YAML file) it came from, and the user's ``file:line`` where that op was
called. The call site is captured when the op is recorded, and only while anomaly mode
is on, so normal runs pay one list read per op and nothing else.

The switch is a process-wide counter (``STATE.anomaly``, see ``state.py``) so that op
callers can test it without touching thread-local state; nested and concurrent
``detect_anomaly()`` blocks compose: checking stays on until the last one exits.
(Threads that did not ask for it are checked too while any block is open: that costs
time, never correctness.)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from .state import STATE

F = TypeVar("F", bound=Callable[..., Any])


class detect_anomaly:  # noqa: N801  (a context manager used like a function)
    """Context manager (and decorator): raise at the first NaN/inf an op produces.

    >>> import tapegrad as tg
    >>> with tg.detect_anomaly():
    ...     y = tg.ops.log(tg.tensor([-1.0], requires_grad=True))
    Traceback (most recent call last):
    FloatingPointError: detect_anomaly: the forward of op 'log' ...

    ``detect_anomaly(False)`` is a no-op block, to switch checking by a flag.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._entered = 0

    def __enter__(self) -> detect_anomaly:
        if self.enabled:
            STATE.enter(anomaly=True)
            self._entered += 1
        return self

    def __exit__(self, *exc: object) -> None:
        if self._entered:
            self._entered -= 1
            STATE.leave(anomaly=True)

    def __call__(self, fn: F) -> F:
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with detect_anomaly(enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def is_anomaly_enabled() -> bool:
    """Whether any ``detect_anomaly()`` block is open (in any thread)."""
    return STATE.anomaly > 0


def check_finite(op: Any, stage: str, value: Any, site: Any) -> None:
    """Raise FloatingPointError if ``value`` holds NaN or inf (anomaly mode only).

    ``site`` is the user's source line, or a function finding it (called on failure)."""
    arr = getattr(value, "_data", value)
    if arr is None or not hasattr(arr, "dtype") or arr.dtype.kind not in "fc":
        return
    if hasattr(arr, "__dask_graph__"):
        return  # lazy: checking would compute it (documented: not checked)
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "inf"
        site = site() if callable(site) else site
        raise FloatingPointError(
            f"detect_anomaly: the {stage} of op {op.name!r} (from {op.source}) produced "
            f"{bad}; the op was called at {site or '<unknown>'}")


_PKG_DIR = __file__.rsplit("/", 1)[0]  # the tapegrad package


def user_site() -> str:
    """``file:line`` of the innermost frame outside the tapegrad package."""
    f = sys._getframe(1)
    while f is not None and f.f_code.co_filename.startswith(_PKG_DIR):
        f = f.f_back
    if f is None:
        return "<unknown>"
    return f"{f.f_code.co_filename}:{f.f_lineno} in {f.f_code.co_name}"
