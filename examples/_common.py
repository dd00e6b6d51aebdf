"""Shared by the numbered examples: fast mode and where to write files.

Every example accepts ``--fast`` (or the environment variable ``TAPEGRAD_FAST=1``),
which the test suite uses to run it in seconds, and ``--out DIR`` for the files it
writes (default: ``tapegrad-examples`` in the system's temporary directory).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def fast() -> bool:
    """True when asked to run quickly (``--fast`` or ``TAPEGRAD_FAST=1``)."""
    return "--fast" in sys.argv[1:] or os.environ.get("TAPEGRAD_FAST", "") not in ("", "0")


def out_dir() -> Path:
    """The folder for files an example writes (created if missing)."""
    args = sys.argv[1:]
    if "--out" in args and args.index("--out") + 1 < len(args):
        path = Path(args[args.index("--out") + 1])
    else:
        path = Path(os.environ.get("TAPEGRAD_EXAMPLES_OUT",
                                   Path(tempfile.gettempdir()) / "tapegrad-examples"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def have(module: str) -> bool:
    """Whether an optional dependency can be imported."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True
