"""The tapegrad plugin: found through the entry point ``conv`` in the group ``tapegrad``.

Hands over the Python ops of :mod:`tapegrad_conv.ops` and the YAML spec file shipped
beside this module (activations composed of registered ops).
"""

from __future__ import annotations

from pathlib import Path

from tapegrad import hookimpl

from .ops import op_definitions

#: The YAML spec shipped as package data.
SPEC_FILE = Path(__file__).resolve().with_name("activations.yaml")


@hookimpl
def tapegrad_ops():
    return op_definitions()


@hookimpl
def tapegrad_spec_files():
    return [SPEC_FILE] if SPEC_FILE.is_file() else []
