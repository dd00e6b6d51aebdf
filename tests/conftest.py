import itertools
import sys
from pathlib import Path

import pytest

# Import the checkout's tapegrad even when run without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tapegrad as tg  # noqa: E402

_plugin_ids = itertools.count()


def plugin_of(*opdefs):
    """A plugin object whose tapegrad_ops hook returns ``opdefs``."""

    class Plugin:
        @staticmethod
        @tg.hookimpl
        def tapegrad_ops():
            return list(opdefs)

    return Plugin()


@pytest.fixture
def register():
    """``register(*opdefs, name=None)`` registers a run-time plugin for one test."""
    names = []

    def add(*opdefs, name=None):
        name = name or f"test_plugin_{next(_plugin_ids)}"
        tg.register_plugin(plugin_of(*opdefs), name=name)
        names.append(name)
        return name

    yield add
    for n in names:
        tg.unregister_plugin(n)
