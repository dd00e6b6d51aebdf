"""``docs/NUMPY.md``: the NumPy and SciPy functions tapegrad differentiates, generated
from the registry (``tapegrad ops --numpy``); ``tests/test_numpy_docs.py`` checks that
the committed file is current.

A NumPy function runs an op on Tensors when the op names it in ``OpDef.implements``
(alone, or as a ``(function, adapter)`` pair), or when the op's forward is the ufunc
itself with as many inputs as the op; the first op registered wins, as in the registry's
dispatch tables. The document lists tapegrad's built-in ops, then the ops of the
``tapegrad-scipy`` plugin (registered from this checkout for the time it takes when it
is not installed), so the text is the same whatever else is installed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .arguments import input_names
from .opdef import OpInfo
from .registry import REGISTRY, plugin_manager, register_plugin, unregister_plugin

#: The command that writes the document (run from the repository root).
COMMAND = "python -m tapegrad ops --numpy > docs/NUMPY.md"

#: Modules whose public names identify a function, in order of preference.
MODULES = ("numpy", "numpy.linalg", "numpy.fft", "scipy.special")

SCIPY_PLUGIN = "scipy"
SCIPY_DIST = "tapegrad-scipy"
SCIPY_SRC = Path(__file__).resolve().parents[1] / "plugins" / SCIPY_DIST / "src"

_OPERATORS = {
    "__add__": "+", "__sub__": "-", "__mul__": "*", "__truediv__": "/", "__pow__": "**",
    "__matmul__": "@", "__mod__": "%", "__floordiv__": "//", "__neg__": "-x",
    "__abs__": "abs(x)", "__getitem__": "x[...]", "__divmod__": "divmod",
}


@dataclass(frozen=True)
class Entry:
    """One NumPy/SciPy function and the op it runs on Tensors."""

    module: str  #: where it is documented: ``numpy.linalg``
    names: tuple[str, ...]  #: its names there (its own first; aliases after)
    op: OpInfo

    @property
    def differentiable(self) -> bool:
        return self.op.differentiable


# ----------------------------------------------------------------------- collecting


def builtin_ops() -> list[OpInfo]:
    """tapegrad's own ops, in registration order."""
    return [i for i in REGISTRY.ops.values() if _is_builtin(i)]


def plugin_ops(plugin: str) -> list[OpInfo]:
    """The ops of one registered plugin (Python and YAML), in registration order."""
    return [i for i in REGISTRY.ops.values() if i.plugin == plugin]


def _is_builtin(info: OpInfo) -> bool:
    return info.plugin == "tapegrad" or info.plugin.startswith("tapegrad.")


def dispatch_targets(infos: Iterable[OpInfo]) -> dict[Any, OpInfo]:
    """NumPy function or ufunc -> the op it runs on Tensors (the first op claiming it)."""
    targets: dict[Any, OpInfo] = {}
    for info in infos:
        d = info.definition
        fns = [f[0] if isinstance(f, tuple) else f for f in d.implements]
        if isinstance(d.forward, np.ufunc) and d.forward.nin == info.nargs:
            fns.append(d.forward)
        for fn in fns:
            targets.setdefault(fn, info)
    return targets


def _public_names() -> dict[Any, list[tuple[str, str]]]:
    """Function or ufunc -> its ``(module, name)`` places in :data:`MODULES`."""
    places: dict[Any, list[tuple[str, str]]] = {}
    for module_name in MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in sorted(dir(module)):
            obj = getattr(module, name, None)
            if name.startswith("_") or isinstance(obj, type) or not callable(obj):
                continue
            try:
                places.setdefault(obj, []).append((module_name, name))
            except TypeError:  # unhashable
                continue
    return places


def entries(infos: Iterable[OpInfo]) -> list[Entry]:
    """The functions that ``infos`` make work on Tensors, by module and name."""
    places = _public_names()
    found = []
    for fn, info in dispatch_targets(infos).items():
        where = places.get(fn) or [(_module_of(fn), fn.__name__)]
        module = where[0][0]
        own = [n for m, n in where if m == module]
        own.sort(key=lambda n: (n != fn.__name__, n))
        others = [f"{_prefix(m)}.{n}" for m, n in where if m != module]
        found.append(Entry(module, (*own, *others), info))
    found.sort(key=lambda e: (_module_rank(e.module), e.module, e.names[0]))
    return found


def _module_of(fn: Any) -> str:
    module = getattr(fn, "__module__", None) or "other"
    for known in MODULES[::-1]:
        if module.startswith(known):
            return known
    return module


def _module_rank(module: str) -> int:
    return MODULES.index(module) if module in MODULES else len(MODULES)


def _prefix(module: str) -> str:
    return "np" + module[len("numpy"):] if module.split(".")[0] == "numpy" else module


def count(infos: Iterable[OpInfo] | None = None) -> tuple[int, int]:
    """``(functions, names)``: how many NumPy/SciPy functions ``infos`` (default: every
    registered op) differentiate, and how many public names they have with aliases."""
    infos = list(REGISTRY.ops.values()) if infos is None else list(infos)
    return _tally(entries(infos))


def _tally(found: Iterable[Entry]) -> tuple[int, int]:
    diff = [e for e in found if e.differentiable]
    return len(diff), sum(sum("." not in n for n in e.names) for e in diff)


@contextlib.contextmanager
def scipy_plugin() -> Iterator[list[OpInfo] | None]:
    """The ops of the ``tapegrad-scipy`` plugin: as registered, or registered from this
    checkout while inside (removed on the way out); ``None`` when neither is possible."""
    if plugin_manager().has_plugin(SCIPY_PLUGIN):
        yield plugin_ops(SCIPY_PLUGIN)
        return
    try:
        import scipy.special  # noqa: F401
    except ImportError:
        yield None
        return
    if not SCIPY_SRC.is_dir():
        yield None
        return
    added_path = str(SCIPY_SRC) not in sys.path
    if added_path:
        sys.path.insert(0, str(SCIPY_SRC))
    try:
        module = importlib.import_module("tapegrad_scipy.plugin")
        register_plugin(module, name=SCIPY_PLUGIN)
        try:
            yield plugin_ops(SCIPY_PLUGIN)
        finally:
            unregister_plugin(SCIPY_PLUGIN)
    finally:
        if added_path:
            sys.path.remove(str(SCIPY_SRC))


# ----------------------------------------------------------------------- rendering


def render() -> str:
    """The text of ``docs/NUMPY.md``."""
    builtins = builtin_ops()
    with scipy_plugin() as scipy_ops:
        builtin_entries = entries(builtins)
        scipy_entries = entries(scipy_ops) if scipy_ops is not None else []
        out = _header(builtin_entries, scipy_entries)
        out += _section("Built-in", builtin_entries, builtins)
        if scipy_ops is None:
            out += ["", f"## The `{SCIPY_DIST}` plugin", "",
                    "(not available here: SciPy or the plugin's source is missing)"]
        else:
            out += _section(f"Plugin `{SCIPY_PLUGIN}` (distribution `{SCIPY_DIST}`)",
                            scipy_entries, scipy_ops, plugin=SCIPY_PLUGIN)
            out += _scipy_python_functions(scipy_entries)
    return "\n".join(out).rstrip() + "\n"


def _header(builtin_entries: list[Entry], scipy_entries: list[Entry]) -> list[str]:
    n_builtin, names_builtin = _tally(builtin_entries)
    n_scipy, names_scipy = _tally(scipy_entries)
    untracked = sum(not e.differentiable for e in builtin_entries + scipy_entries)
    more = "runs" if untracked == 1 else "run"
    return [
        "# NumPy and SciPy functions on Tensors",
        "",
        f"<!-- Generated from the op registry by `{COMMAND}`; do not edit by hand. -->",
        "",
        f"tapegrad differentiates **{n_builtin + n_scipy}** NumPy/SciPy functions: "
        f"{n_builtin} built in, {n_scipy} more from `scipy.special` with the "
        f"`{SCIPY_DIST}` plugin installed (`pip install ./plugins/{SCIPY_DIST}`); "
        f"{names_builtin + names_scipy} names counting aliases such as `np.abs` and "
        "`np.absolute`. "
        f"{untracked} more {more} on Tensors without a gradient (their results are "
        "untracked). Called on a Tensor, each one runs the op named below, recorded "
        "like any other op.",
        "",
        "- **A function not in this list**, called on a Tensor that requires grad (or "
        "on the result of a recorded op), raises `TypeError` naming it "
        "(`np.unwrap was called on a tracked Tensor, but no registered op "
        "implements it`), never a silently wrong gradient. To use its result as a "
        "constant, call it on `t.detach()` (or `t.data`). Functions whose results carry "
        "no gradient (comparisons, `np.argmax`, `np.zeros_like`, `np.shape`, ...) work "
        "on Tensors as they are.",
        "- **To add one**, register an op that names it: "
        "`OpDef(name, forward, vjp, implements=(np.FUNC,))`, or "
        "`implements=((np.FUNC, adapter),)` when NumPy's signature differs from the op's "
        "(`adapter(op, *args, **kwargs)` calls the op); a ufunc `forward` is implied. "
        "See \"Writing an op plugin\" in the README.",
        "- Ufuncs dispatch when called without keyword arguments (`out=`, `where=`, "
        "`dtype=` on a tracked Tensor raise `TypeError`). Keyword parameters (`axis`, "
        "`ord`, `n`, ...) are constants; gradients flow to array inputs only.",
        "",
        "Columns: **Op**, the op that runs (`tg.ops.NAME`); **Tensor**, the same op as a "
        "Tensor method, property or operator; **Out**, its number of outputs; "
        "**Complex**, `yes` when its rules are right for complex inputs (otherwise "
        "complex inputs that need a gradient are refused); **No gradient for**, inputs "
        "that never get one (`all`: the result is untracked); **Notes**, the op's own "
        "line, which names its non-differentiable points.",
    ]


def _section(title: str, found: list[Entry], infos: list[OpInfo],
             plugin: str | None = None) -> list[str]:
    out = ["", f"## {title}"]
    forms = _tensor_forms(infos)
    for module in sorted({e.module for e in found}, key=lambda m: (_module_rank(m), m)):
        rows = [e for e in found if e.module == module]
        n = sum(e.differentiable for e in rows)
        out += ["", f"### `{module}` ({n} differentiable{_also(len(rows) - n)})", ""]
        out += ["| Function | Op | Tensor | Out | Complex | No gradient for | Notes |",
                "|---|---|---|---|---|---|---|"]
        for e in rows:
            names = ", ".join(f"`{_prefix(e.module)}.{n}`" if "." not in n else f"`{n}`"
                              for n in e.names)
            out.append(_row(names, e.op, forms.get(e.op.name, "")))
    claimed = {e.op.name for e in found}
    tensor_only = [i for i in sorted(infos, key=lambda i: i.name)
                   if i.name not in claimed and i.name in forms]
    if tensor_only:
        out += ["", "### Tensor methods and operators with no NumPy function", ""]
        out += ["| Tensor | Op | Out | Complex | No gradient for | Notes |",
                "|---|---|---|---|---|---|"]
        for i in tensor_only:
            out.append(_row(forms[i.name], i, None))
    rest = sorted(i.name for i in infos if i.name not in claimed and i.name not in forms)
    if rest:
        out += ["", "Ops with neither a NumPy function nor a Tensor form (call them as "
                "`tg.ops.NAME`): " + ", ".join(f"`{n}`" for n in rest) + "."]
    if plugin is not None and not found and not rest:
        out += ["", f"(plugin `{plugin}` provides no ops)"]
    return out


def _also(untracked: int) -> str:
    return f", {untracked} without a gradient" if untracked else ""


def _row(first: str, info: OpInfo, tensor: str | None) -> str:
    cells = [first, f"`{info.name}`"]
    if tensor is not None:
        cells.append(tensor)
    cells += [str(info.definition.nout), "yes" if info.definition.complex else "",
              _no_gradient(info), _escape(info.doc)]
    return "| " + " | ".join(cells) + " |"


def _escape(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _no_gradient(info: OpInfo) -> str:
    if not info.differentiable:
        return "all"
    d = info.definition
    frozen = set(d.nondiff)
    if isinstance(d.vjp, tuple):
        frozen |= {k for k, rule in enumerate(d.vjp) if rule is None}
    if not frozen:
        return ""
    names = ["inputs"] if d.variadic else _arg_names(info)
    return ", ".join(f"`{names[k]}`" if k < len(names) else f"input {k + 1}"
                     for k in sorted(frozen))


def _arg_names(info: OpInfo) -> list[str]:
    """The op's names for its inputs: the forward's, or the ``args`` of its YAML spec
    (a ufunc forward has none); ``[]`` when neither says."""
    if info.source != info.plugin and info.source.endswith((".yaml", ".yml")):
        spec = _spec_args(info.source).get(info.name)
        if spec is not None and len(spec) == info.nargs:
            return spec
    if isinstance(info.definition.forward, np.ufunc):
        return []
    return input_names(info.definition.forward, info.nargs, info.params)


@functools.cache
def _spec_args(path: str) -> dict[str, list[str]]:
    """op name -> its ``args`` in the spec file at ``path`` (read again: the registry
    keeps no names for a ufunc forward)."""
    import yaml

    try:
        ops = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["ops"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return {}
    return {name: [str(a) for a in op["args"]] for name, op in ops.items()
            if isinstance(op, dict) and isinstance(op.get("args"), list)}


def _tensor_forms(infos: Iterable[OpInfo]) -> dict[str, str]:
    """op name -> its Tensor method, property and operator forms (``.sum()``, ``+``),
    binding as the registry does: the first op claiming an attribute keeps it."""
    from .tensor import CORE_ATTRIBUTES

    owner: dict[str, str] = {}
    for info in infos:
        for attr, _label in _attributes(info):
            if attr not in CORE_ATTRIBUTES:
                owner.setdefault(attr, info.name)
    forms: dict[str, list[str]] = {}
    for info in infos:
        for attr, label in _attributes(info):
            if owner.get(attr) == info.name and label:
                forms.setdefault(info.name, []).append(f"`{label}`")
    return {name: " ".join(labels) for name, labels in forms.items()}


def _attributes(info: OpInfo) -> list[tuple[str, str]]:
    """``(Tensor attribute, label)`` pairs of an op; reflected operators get no label
    (they go with the forward one)."""
    d = info.definition
    attrs = []
    if d.method is not False and d.method is not None:
        name = d.method if isinstance(d.method, str) else info.name
        attrs.append((name, f".{name}()"))
    attrs += [(p, f".{p}") for p in d.properties]
    for dunder in d.operators:
        reflected = dunder.startswith("__r") and "__" + dunder[3:] in _OPERATORS
        attrs.append((dunder, "" if reflected else _OPERATORS.get(dunder, dunder)))
    return attrs


def _scipy_python_functions(found: list[Entry]) -> list[str]:
    """The plugin's ``tapegrad_scipy.special`` functions that ``scipy.special`` cannot
    dispatch (SciPy writes them in Python)."""
    try:
        special = importlib.import_module("tapegrad_scipy.special")
    except ImportError:
        return []
    dispatched = {n for e in found for n in e.names}
    names = sorted(n for n in getattr(special, "__all__", ()) if n not in dispatched)
    if not names:
        return []
    return ["", "SciPy writes these in Python, so `scipy.special.NAME(tensor)` cannot "
            "dispatch them; call `tapegrad_scipy.special.NAME` (SciPy's signature) "
            "instead: " + ", ".join(f"`{n}`" for n in names) + "."]

