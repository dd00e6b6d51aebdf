"""The hooks through which plugins hand ops to tapegrad.

A plugin is any module or object with functions marked ``@tapegrad.hookimpl`` whose
names match the specs below. Hooks run when a plugin is registered (at import time for
the built-in and installed plugins, at ``tg.register_plugin`` for run-time ones), never
while ops are called: the registry they fill is a plain dict.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import pluggy

PROJECT = "tapegrad"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def tapegrad_ops() -> Iterable[object]:
    """Hand over op definitions written in Python.

    Takes no arguments. Returns an iterable of :class:`tapegrad.OpDef` (an empty one is
    fine). Each op's name must be unique across all plugins: a second definition of a
    name is refused with an error naming both sources, and the first one stays.
    The ops become ``tg.ops.NAME`` and, where they ask for it, ``Tensor`` methods and
    operators.
    """


@hookspec
def tapegrad_spec_files() -> Iterable[str | os.PathLike[str]]:
    """Hand over YAML op spec files.

    Takes no arguments. Returns an iterable of paths to YAML files in the format that
    ``tg.load_spec`` reads. A plugin's spec files are compiled after its own Python ops,
    so their formulas may call those, and every op of plugins registered before it.
    An invalid file raises :class:`tapegrad.SpecError` naming the file (for an installed
    plugin, the file is skipped with a warning instead).
    """
