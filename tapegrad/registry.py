"""The op registry: plugins in, a plain dict of ops out.

pluggy runs here, when plugins are registered, and never when an op is called. Which
plugins are registered and what each contributes is ``plugins.py``'s job (built-in op
packs, installed distributions, ``TAPEGRAD_DISABLE_PLUGINS``); this module adds what
``tg.register_plugin`` brings at run time, and on each change rebuilds the table and
publishes it (``install.py``): ``tg.ops``, ``Tensor`` methods and operators, and the
NumPy dispatch tables.

A plugin that misbehaves (a hook that raises, returns something other than a list of
``OpDef`` / paths, an op with an invalid name) is skipped with a warning naming it and
what is wrong, at import; at run time ``tg.register_plugin`` refuses it with
:class:`PluginError` and leaves the table as it was. Registration is serialised by one
lock, and a new table is built aside and then published so that a thread computing
meanwhile always sees every op of either the old table or the new one.
"""

from __future__ import annotations

import difflib
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

from . import hookspecs, install, plugins
from .arguments import resolve_arity
from .errors import PluginError, UnknownOpError
from .formula import short
from .graph import make_caller
from .opdef import OpDef, OpInfo
from .tensor import Tensor


class OpNamespace:
    """``tg.ops``: every registered op as an attribute."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise _unknown(name, REGISTRY.ops)

    def __dir__(self) -> list[str]:
        return sorted(REGISTRY.ops)

    def __repr__(self) -> str:
        return f"<tapegrad ops: {len(REGISTRY.ops)} registered>"


def _unknown(name: str, ops: dict[str, OpInfo]) -> UnknownOpError:
    close = difflib.get_close_matches(name, list(ops), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UnknownOpError(f"no op named {name!r} is registered{hint} (see tg.list_ops())")


class Registry:
    """Holds the plugin manager and the table of ops built from its plugins."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.ops: dict[str, OpInfo] = {}
        self.namespace = OpNamespace()
        self.distributions: dict[str, tuple[str, str]] = {}  # plugin -> (dist, version)
        self.problems: list[str] = []  # clashes found while loading installed plugins
        self._bound: set[str] = set()  # Tensor attributes the current table bound
        # Serialises registration and rebuilds (reentrant: load_spec holds it around a
        # reload, which registers and rebuilds).
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ loading
    def load_defaults(self) -> None:
        """Register the built-in and installed plugins (``plugins.py``), then build."""
        with self.lock:
            plugins.load_defaults(self.pm, self.distributions)
            self.rebuild(strict=False)

    def contributions(self) -> list[tuple[str, list[OpDef], list[Path], str | None]]:
        return plugins.contributions(self.pm)

    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register ``plugin`` and rebuild; on any problem leave the registry as it was."""
        with self.lock:
            return self._register(plugin, name)

    def _register(self, plugin: Any, name: str | None) -> str:
        before = set(self.pm.get_plugins())
        try:
            name = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            if plugin not in before and self.pm.is_registered(plugin):
                self.pm.unregister(plugin)  # pluggy leaves it half-registered
            raise PluginError(plugins.describe(exc)) from exc
        except ValueError as exc:
            raise PluginError(f"cannot register plugin: {exc}") from exc
        if name is None:
            raise PluginError(f"plugin {plugin!r} is blocked (see {plugins.DISABLE_ENV})")
        table = self.ops
        try:
            self.pm.check_pending()
            self.rebuild(strict=True)
        except BaseException as exc:
            self.pm.unregister(name=name)
            if self.ops is not table:  # published already (it raised after): undo
                self.rebuild(strict=False)
            if isinstance(exc, pluggy.PluginValidationError):
                raise PluginError(plugins.describe(exc)) from exc
            raise
        return name

    def unregister(self, name: str) -> None:
        with self.lock:
            self.pm.unregister(name=name)
            self.rebuild(strict=False)

    def replace(self, name: str, plugin: Any) -> str:
        """Register ``plugin`` under ``name`` in place of the plugin registered under that
        name (if any), with one rebuild; on any problem the old plugin stays."""
        with self.lock:
            old = self.pm.get_plugin(name)
            if old is None:
                return self._register(plugin, name)
            self.pm.unregister(name=name)
            table = self.ops
            try:
                return self._register(plugin, name)
            except BaseException:
                self.pm.register(old, name=name)
                if self.ops is not table:
                    self.rebuild(strict=False)
                raise

    # ------------------------------------------------------------------ building
    def rebuild(self, strict: bool) -> None:
        """Rebuild the op table from the registered plugins, and publish it.

        Plugins are taken in registration order, each with its Python ops first, then
        its spec files (whose formulas may call the ops of earlier plugins and the
        plugin's own). A spec file that fails is tried again once the other plugins are
        in, so a file calling ops of a plugin registered after it (a reloaded file, a
        re-registered plugin) still loads. On a clash (two ops of one name, two ops
        binding one Tensor attribute) the first one stays. A plugin whose hooks
        misbehave is skipped whole. A problem that was not there before raises
        :class:`PluginError` when ``strict`` (a run-time registration), leaving the
        table as it was, or is warned about once (loading installed plugins). An invalid
        spec file raises when ``strict``; otherwise it is skipped with a warning, so one
        broken installed plugin cannot break ``import tapegrad``.
        """
        from .errors import SpecError
        from .spec import compile_spec_file

        with self.lock:
            table: dict[str, OpInfo] = {}
            problems: list[str] = []
            deferred: list[tuple[str, Path, SpecError | None]] = []
            for plugin, ops, spec_files, wrong in self.contributions():
                if wrong is None:
                    try:
                        infos = [self._info(op, plugin, plugin) for op in ops]
                    except Exception as exc:
                        wrong = plugins.describe(exc) if not isinstance(exc, PluginError) \
                            else str(exc)
                if wrong is not None:
                    if plugin not in wrong:
                        wrong = f"plugin {plugin!r}: {wrong}"
                    problems.append(f"{wrong}; the plugin is skipped")
                    continue
                for info in infos:
                    self._add(table, info, problems)
                deferred += [(plugin, path, None) for path in spec_files]
                deferred = self._compile_specs(table, deferred, problems, SpecError,
                                               compile_spec_file)
            while True:  # files whose formulas call ops of later plugins
                left = self._compile_specs(table, deferred, problems, SpecError,
                                           compile_spec_file)
                if len(left) == len(deferred):
                    break
                deferred = left
            for plugin, path, exc in deferred:
                if strict and not any(str(path) in p for p in self.problems):
                    raise exc
                problems.append(f"spec file {path} (plugin {plugin!r}) is skipped: {exc}")
            bound = install.attributes(table, problems)
            new = [p for p in problems if p not in self.problems]
            if strict and new:
                raise PluginError("; ".join(p.removesuffix("; the plugin is skipped")
                                            for p in new))
            install.publish(table, bound, self.namespace, self._bound)
            self.ops, self._bound = table, set(bound)
            self.problems = problems
        for p in new:
            warnings.warn(f"tapegrad: {p}", stacklevel=3)

    def _compile_specs(self, table: dict[str, OpInfo], files: list, problems: list[str],
                       spec_error: type, compile_spec_file: Callable) -> list:
        """Compile and add each spec file that compiles; return the others."""
        left = []
        for plugin, path, _ in files:
            try:
                compiled = compile_spec_file(path, table)
                infos = [self._info(op, str(path), plugin) for op in compiled]
            except spec_error as exc:
                left.append((plugin, path, exc))
                continue
            for info in infos:
                self._add(table, info, problems)
        return left

    @staticmethod
    def _info(op: OpDef, source: str, plugin: str) -> OpInfo:
        """Check ``op`` and make its ``OpInfo`` and caller; ``PluginError`` if invalid."""
        if not isinstance(op.name, str) or not (op.name.isascii() and op.name.isidentifier()):
            raise PluginError(f"plugin {plugin!r}: op name {short(op.name)} is not an "
                              "ASCII identifier")
        nargs, params = resolve_arity(op, source)
        info = OpInfo(name=op.name, source=source, nargs=nargs, params=params,
                      definition=op, plugin=plugin)
        info.call = make_caller(info)
        return info

    @staticmethod
    def _add(table: dict[str, OpInfo], info: OpInfo, problems: list[str]) -> None:
        if info.name in table:
            first = table[info.name]
            problems.append(
                f"op {info.name!r} is defined twice: by {first.source} and by "
                f"{info.source}; keeping the one from {first.source}. Rename one of them, "
                f"or block a plugin with {plugins.DISABLE_ENV}"
            )
            return
        table[info.name] = info


# --------------------------------------------------------------------- public API

REGISTRY = Registry()
ops = REGISTRY.namespace


def plugin_manager() -> pluggy.PluginManager:
    """The ``pluggy.PluginManager`` holding every registered plugin."""
    return REGISTRY.pm


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin (a module or object with ``@hookimpl`` functions) at run time.

    Its ops are available as soon as this returns. A clash with an existing op name
    raises :class:`PluginError` naming both sources, and the plugin is not registered.
    Returns the name the plugin was registered under.
    """
    return REGISTRY.register(plugin, name)


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered under ``name`` and the ops it provided."""
    REGISTRY.unregister(name)


def list_ops() -> list[OpInfo]:
    """Every registered op, sorted by name."""
    return [REGISTRY.ops[k] for k in sorted(REGISTRY.ops)]


def get_op(name: str) -> OpInfo:
    """The registered op called ``name``; ``KeyError`` listing close matches if none."""
    try:
        return REGISTRY.ops[name]
    except KeyError:
        raise _unknown(name, REGISTRY.ops) from None


def lift(name: str) -> Callable[..., Any]:
    """A function running op ``name``: its plain forward on ndarrays, recorded on Tensors.

    For vjp rules that need an op NumPy has no function for: on the plain backward path
    it costs a dict lookup, under ``create_graph=True`` it records.
    """

    def run(*args: Any, **params: Any) -> Any:
        info = REGISTRY.ops.get(name)
        if info is None:
            raise _unknown(name, REGISTRY.ops)
        values = args[0] if info.variadic and args else args
        for a in values:
            if isinstance(a, Tensor):
                return info.call(*args, **params)
        n = info.nargs
        if len(args) > n:
            params = {**dict(zip(info.params, args[n:], strict=False)), **params}
            args = args[:n]
        return info.definition.forward(*args, **{**info.params, **params})

    run.__name__ = name
    return run
