"""The op registry: plugins in, a plain dict of ops out.

pluggy runs here, when plugins are registered, and never when an op is called. The
built-in op packs are registered first as default plugins through the same hooks a
third party uses; then installed distributions with an entry point in the group
``tapegrad``; then whatever ``tg.register_plugin`` adds at run time. Each change
rebuilds the table: ``tg.ops``, ``Tensor`` methods and operators, and the NumPy
dispatch tables.

Setting ``TAPEGRAD_DISABLE_PLUGINS=name1,name2`` blocks plugins by name.
"""

from __future__ import annotations

import difflib
import functools
import os
import warnings
from collections.abc import Callable, Iterable
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import pluggy

from . import dispatch, entrypoints, hookspecs
from .errors import PluginError, UnknownOpError
from .graph import make_caller
from .opdef import OpDef, OpInfo, resolve_arity
from .tensor import CORE_ATTRIBUTES, Tensor

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
    "tapegrad.builtins.nn_ops",
    "tapegrad.builtins.specs",
)

# Python's reflected binary operators: bound with their operands swapped.
_REFLECTED = {
    f"__r{n}__" for n in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow",
                          "matmul", "and", "or", "xor", "lshift", "rshift", "divmod")
}


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

    # ------------------------------------------------------------------ loading
    def load_defaults(self) -> None:
        for name in os.environ.get(DISABLE_ENV, "").replace(" ", "").split(","):
            if name:
                self.pm.set_blocked(name)
        for modname in DEFAULT_PLUGINS:
            if not self.pm.is_blocked(modname):
                self.pm.register(import_module(modname), name=modname)
        self._load_entry_points()
        self.rebuild(strict=False)

    def _load_entry_points(self) -> None:
        for ep in entrypoints.entry_points(ENTRY_POINT_GROUP):
            if self.pm.is_blocked(ep.name) or self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
                self.pm.check_pending()
            except Exception as exc:  # a broken plugin must not break `import tapegrad`
                if self.pm.has_plugin(ep.name):
                    self.pm.unregister(name=ep.name)
                warnings.warn(
                    f"tapegrad: plugin {ep.name!r} ({ep.value}) could not be loaded and "
                    f"is skipped: {_describe(exc)}", stacklevel=2,
                )
                continue
            if ep.dist:
                self.distributions[ep.name] = (ep.dist, ep.version)

    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register ``plugin`` and rebuild; on any problem leave the registry as it was."""
        before = set(self.pm.get_plugins())
        try:
            name = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            if plugin not in before and self.pm.is_registered(plugin):
                self.pm.unregister(plugin)  # pluggy leaves it half-registered
            raise PluginError(_describe(exc)) from exc
        except ValueError as exc:
            raise PluginError(f"cannot register plugin: {exc}") from exc
        if name is None:
            raise PluginError(f"plugin {plugin!r} is blocked (see {DISABLE_ENV})")
        try:
            self.pm.check_pending()
            self.rebuild(strict=True)
        except BaseException as exc:
            self.pm.unregister(name=name)
            self.rebuild(strict=False)
            if isinstance(exc, pluggy.PluginValidationError):
                raise PluginError(_describe(exc)) from exc
            raise
        return name

    def unregister(self, name: str) -> None:
        self.pm.unregister(name=name)
        self.rebuild(strict=False)

    # ------------------------------------------------------------------ building
    def contributions(self) -> list[tuple[str, list[OpDef], list[Path]]]:
        """Per plugin, in registration order: its Python ops and its spec files."""
        op_impls = {i.plugin_name: i for i in self.pm.hook.tapegrad_ops.get_hookimpls()}
        spec_impls = {i.plugin_name: i for i in self.pm.hook.tapegrad_spec_files.get_hookimpls()}
        found = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:  # blocked
                continue
            ops: list[OpDef] = []
            if name in op_impls:
                for op in _call_hook(op_impls[name], name):
                    if not isinstance(op, OpDef):
                        raise PluginError(
                            f"plugin {name!r}: tapegrad_ops returned {op!r} "
                            f"({type(op).__name__}), expected tapegrad.OpDef instances"
                        )
                    ops.append(op)
            specs = []
            if name in spec_impls:
                specs = [Path(p) for p in _call_hook(spec_impls[name], name)]
            found.append((name, ops, specs))
        return found

    def rebuild(self, strict: bool) -> None:
        """Rebuild the op table from the registered plugins.

        Plugins are taken in registration order, each with its Python ops first, then
        its spec files (whose formulas may call the ops of earlier plugins and the
        plugin's own). On a clash (two ops of one name, two ops binding one Tensor
        attribute) the first one stays. A problem that was not there before raises
        :class:`PluginError` when ``strict`` (a run-time registration), leaving the
        table as it was, or is warned about once (loading installed plugins). An invalid
        spec file raises when ``strict``; otherwise it is skipped with a warning, so one
        broken installed plugin cannot break ``import tapegrad``.
        """
        from .errors import SpecError

        table: dict[str, OpInfo] = {}
        problems: list[str] = []
        for plugin, ops, spec_files in self.contributions():
            for op in ops:
                self._add(table, op, plugin, plugin, problems)
            for path in spec_files:
                from .spec import compile_spec_file

                try:
                    compiled = compile_spec_file(path, table)
                except SpecError as exc:
                    if strict and not any(str(path) in p for p in self.problems):
                        raise
                    problems.append(f"spec file {path} (plugin {plugin!r}) is skipped: {exc}")
                    continue
                for op in compiled:
                    self._add(table, op, str(path), plugin, problems)
        bound = self._bind(table, problems)
        new = [p for p in problems if p not in self.problems]
        if strict and new:
            raise PluginError("; ".join(new))
        self._install(table, bound)
        self.problems = problems
        for p in new:
            warnings.warn(f"tapegrad: {p}", stacklevel=3)

    def _add(self, table: dict[str, OpInfo], op: OpDef, source: str, plugin: str,
             problems: list[str]) -> None:
        if op.name in table:
            first = table[op.name]
            problems.append(
                f"op {op.name!r} is defined twice: by {first.source} and by {source}; "
                f"keeping the one from {first.source}. Rename one of them, or block a "
                f"plugin with {DISABLE_ENV}"
            )
            return
        if not op.name.isidentifier():
            raise PluginError(f"plugin {plugin!r}: op name {op.name!r} is not an identifier")
        nargs, params = resolve_arity(op, source)
        info = OpInfo(name=op.name, source=source, nargs=nargs, params=params,
                      definition=op, plugin=plugin)
        info.call = make_caller(info)
        table[op.name] = info

    def _bind(self, table: dict[str, OpInfo], problems: list[str]) -> dict[str, Any]:
        """The Tensor attributes the ops ask for: name -> function or property."""
        bound: dict[str, Any] = {}
        owner: dict[str, str] = {}

        def claim(attr: str, info: OpInfo, value: Any) -> None:
            if attr in CORE_ATTRIBUTES:
                problems.append(
                    f"op {info.name!r} ({info.source}) cannot bind Tensor.{attr}: it is "
                    "a core Tensor attribute"
                )
            elif attr in bound:
                problems.append(
                    f"op {info.name!r} ({info.source}) wants Tensor.{attr}, already bound "
                    f"to op {owner[attr]!r}; keeping the first"
                )
            else:
                bound[attr] = value
                owner[attr] = info.name

        for info in table.values():
            d = info.definition
            call = info.call
            if d.method:
                if callable(d.method) and not isinstance(d.method, bool):
                    claim(info.name, info, _method_adapter(d.method, call))
                else:
                    attr = d.method if isinstance(d.method, str) else info.name
                    claim(attr, info, call)
            for attr in d.operators:
                claim(attr, info, _reflected(call) if attr in _REFLECTED else call)
            for attr in d.properties:
                claim(attr, info, property(call, doc=info.doc or info.name))
        return bound

    def _install(self, table: dict[str, OpInfo], bound: dict[str, Any]) -> None:
        for attr in self._bound:
            if attr not in bound:
                delattr(Tensor, attr)
        for attr, value in bound.items():
            setattr(Tensor, attr, value)
        self._bound = set(bound)
        self.ops = table
        ns = self.namespace.__dict__
        ns.clear()
        ns.update({name: info.call for name, info in table.items()})
        ufuncs: dict = {}
        functions: dict = {}
        for info in table.values():
            d = info.definition
            targets = list(d.implements)
            if isinstance(d.forward, np.ufunc) and d.forward.nin == info.nargs:
                targets.append(d.forward)
            for fn in targets:
                call = info.call
                if isinstance(fn, tuple):  # (NumPy function, adapter of its signature)
                    fn, call = fn[0], functools.partial(fn[1], info.call)
                (ufuncs if isinstance(fn, np.ufunc) else functions).setdefault(fn, call)
        dispatch.TABLES = (ufuncs, functions)  # one store: readers see old or new, whole


def _call_hook(impl: Any, plugin: str) -> Iterable[Any]:
    try:
        result = impl.function()
    except Exception as exc:
        raise PluginError(
            f"plugin {plugin!r}: hook {impl.function.__name__} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if result is None:
        return ()
    if isinstance(result, (str, bytes, OpDef, os.PathLike)):
        return (result,)
    try:
        return list(result)
    except TypeError:
        raise PluginError(
            f"plugin {plugin!r}: hook {impl.function.__name__} returned {result!r}, "
            "expected a list"
        ) from None


def _describe(exc: BaseException) -> str:
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


def _reflected(call: Callable[..., Any]) -> Callable[..., Any]:
    def reflected(self: Any, other: Any) -> Any:
        return call(other, self)

    reflected.__name__ = f"r{call.__name__}"
    return reflected


def _method_adapter(fn: Callable[..., Any], call: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(call, self, *args, **kwargs)

    method.__name__ = call.__name__
    method.__doc__ = call.__doc__
    return method


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
