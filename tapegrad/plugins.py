"""Plugins: what is registered, and what each plugin contributes.

The loader half of the registry (``registry.py`` builds the op table from what this
module reads). Built-in op packs are registered first, in :data:`DEFAULT_PLUGINS` order,
through the same hooks a third party uses; then installed distributions with an entry
point in the group ``tapegrad``. ``TAPEGRAD_DISABLE_PLUGINS=name1,name2`` blocks plugins
by name (a name that matches no plugin is warned about, with close matches). A plugin
that cannot be loaded, or whose hook raises or returns something other than a list of
``OpDef`` / paths, is reported naming it and what is wrong.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Iterable
from importlib import import_module
from pathlib import Path
from typing import Any

import pluggy

from . import entrypoints, hookspecs
from .errors import PluginError
from .formula import short
from .opdef import OpDef

ENTRY_POINT_GROUP = "tapegrad"
DISABLE_ENV = "TAPEGRAD_DISABLE_PLUGINS"

#: Built-in plugins, registered in this order before any installed one.
DEFAULT_PLUGINS = (
    "tapegrad.builtins.arithmetic",
    "tapegrad.builtins.reductions",
    "tapegrad.builtins.shaping",
    "tapegrad.builtins.elementwise",
    "tapegrad.builtins.scans",
    "tapegrad.builtins.assembly",
    "tapegrad.builtins.products",
    "tapegrad.builtins.linalg",
    "tapegrad.builtins.fft",
    "tapegrad.builtins.numerics",
    "tapegrad.builtins.nn_ops",
    "tapegrad.builtins.specs",
)


def load_defaults(pm: pluggy.PluginManager, distributions: dict) -> None:
    """Register the built-in op packs, then the installed plugins (skipping, with a
    warning, any that cannot be loaded); warn about unknown names to disable.
    ``distributions`` gets, per installed plugin, its distribution and version."""
    disabled = [n for n in os.environ.get(DISABLE_ENV, "").replace(" ", "").split(",") if n]
    for name in disabled:
        pm.set_blocked(name)
    for modname in DEFAULT_PLUGINS:
        if not pm.is_blocked(modname):
            pm.register(import_module(modname), name=modname)
    installed = _load_entry_points(pm, distributions)
    _check_disabled(disabled, [*DEFAULT_PLUGINS, *installed])


def _check_disabled(disabled: list[str], known: list[str]) -> None:
    for name in disabled:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            warnings.warn(
                f"tapegrad: {DISABLE_ENV} names {name!r}, which is no built-in or "
                f"installed plugin{hint} (`tapegrad plugins` lists them)", stacklevel=3)


def _load_entry_points(pm: pluggy.PluginManager, distributions: dict) -> list[str]:
    """Register the installed plugins; return the names of every entry point found."""
    eps = entrypoints.entry_points(ENTRY_POINT_GROUP)
    for ep in eps:
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            pm.check_pending()
        except Exception as exc:  # a broken plugin must not break `import tapegrad`
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            warnings.warn(
                f"tapegrad: plugin {ep.name!r} ({ep.value}) could not be loaded and "
                f"is skipped: {describe(exc)}", stacklevel=2,
            )
            continue
        if ep.dist:
            distributions[ep.name] = (ep.dist, ep.version)
    return [ep.name for ep in eps]


def contributions(pm: pluggy.PluginManager) -> list[tuple[str, list, list[Path], str | None]]:
    """Per plugin, in registration order: its Python ops, its spec files, and what is
    wrong with it (``None`` when its hooks behaved)."""
    op_impls = {i.plugin_name: i for i in pm.hook.tapegrad_ops.get_hookimpls()}
    spec_impls = {i.plugin_name: i for i in pm.hook.tapegrad_spec_files.get_hookimpls()}
    found = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        ops: list[OpDef] = []
        specs: list[Path] = []
        try:
            if name in op_impls:
                for op in call_hook(op_impls[name], name):
                    if not isinstance(op, OpDef):
                        raise PluginError(
                            f"plugin {name!r}: tapegrad_ops returned {short(op)} "
                            f"({type(op).__name__}), expected tapegrad.OpDef instances"
                        )
                    ops.append(op)
            if name in spec_impls:
                for p in call_hook(spec_impls[name], name):
                    if not isinstance(p, (str, os.PathLike)):
                        raise PluginError(
                            f"plugin {name!r}: tapegrad_spec_files returned {short(p)} "
                            f"({type(p).__name__}), expected paths of YAML files"
                        )
                    specs.append(Path(p))
        except PluginError as exc:
            found.append((name, [], [], str(exc)))
            continue
        found.append((name, ops, specs, None))
    return found


def call_hook(impl: Any, plugin: str) -> list[Any]:
    """The hook's result as a list; ``PluginError`` naming the plugin if it raises
    (also partway through a generator) or returns something that is not a list."""
    hook = impl.function.__name__

    def raised(exc: Exception) -> PluginError:
        return PluginError(f"plugin {plugin!r}: hook {hook} raised {type(exc).__name__}: "
                           f"{exc}")

    try:
        result = impl.function()
    except Exception as exc:
        raise raised(exc) from exc
    if result is None:
        return []
    if isinstance(result, (str, bytes, OpDef, os.PathLike)):
        return [result]
    if not isinstance(result, Iterable):
        raise PluginError(f"plugin {plugin!r}: hook {hook} returned {short(result)} "
                          f"({type(result).__name__}), expected a list")
    try:
        return list(result)
    except Exception as exc:  # a generator that raises partway
        raise raised(exc) from exc


def describe(exc: BaseException) -> str:
    if isinstance(exc, pluggy.PluginValidationError):
        text = str(exc)
        known = [n for n in dir(hookspecs) if n.startswith("tapegrad_")]
        for word in text.replace("'", " ").split():
            if word.startswith("tapegrad") and word not in known:
                close = difflib.get_close_matches(word, known, n=1)
                if close:
                    text += f" (did you mean {close[0]}?)"
                break
        return f"plugin {exc.plugin!r} has an invalid hook: {text}"
    return f"{type(exc).__name__}: {exc}"
