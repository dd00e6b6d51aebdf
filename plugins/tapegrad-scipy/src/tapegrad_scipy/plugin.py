"""The tapegrad plugin: found through the entry point ``scipy`` in the group ``tapegrad``.

Hands over the Python ops of :mod:`tapegrad_scipy.ops`, :mod:`tapegrad_scipy.linalg` and
:mod:`tapegrad_scipy.signal`, and the YAML spec shipped beside this module
(``special.yaml``: the scipy.special ufuncs whose rules are formulas).
"""

from __future__ import annotations

from pathlib import Path

from tapegrad import hookimpl

from . import linalg, signal
from .ops import op_definitions

#: The YAML spec shipped as package data.
SPEC_FILE = Path(__file__).resolve().with_name("special.yaml")


@hookimpl
def tapegrad_ops():
    return [*op_definitions(), *linalg.op_definitions(), *signal.op_definitions()]


@hookimpl
def tapegrad_spec_files():
    return [SPEC_FILE]
