"""The ``tapegrad`` command: list ops and plugins, gradient-check ops and YAML specs.

    tapegrad ops [NAME ...] [--plugin P] [--long]
    tapegrad ops --numpy
    tapegrad plugins [--json]
    tapegrad check [OP ...] [--order N] [--seed S]
    tapegrad spec FILE.yaml [--no-check]

``main(argv)`` returns the exit status: 0 success, 1 a failed check or an invalid spec
file, 2 a usage error (unknown op, bad option). Expected errors are printed as one or
two lines on stderr, never as a traceback (``--traceback`` shows it, for debugging).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import tapegrad as tg
from tapegrad import gradcheck
from tapegrad.errors import TapegradError
from tapegrad.opdef import OpInfo
from tapegrad.registry import REGISTRY

PROG = "tapegrad"


class UsageError(Exception):
    """A mistake on the command line: exit status 2."""


# ----------------------------------------------------------------------- formatting


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          width: int | None = None) -> str:
    """Aligned columns separated by two spaces; the last column is not padded. With
    ``width``, a last cell that would run past it is wrapped at spaces onto lines of
    its own, indented to the column (unless that would leave it under 20 characters)."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    indent = sum(widths[:-1]) + 2 * (len(widths) - 1)
    wrap_at = None
    if width is not None and indent + widths[-1] > width and width - indent >= 20:
        wrap_at = width - indent
        widths[-1] = max(len(headers[-1]), min(widths[-1], wrap_at))

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
        last = [cells[-1]]
        if wrap_at is not None and len(cells[-1]) > wrap_at:
            last = textwrap.wrap(cells[-1], wrap_at, break_long_words=False,
                                 break_on_hyphens=False) or [""]
        first = "  ".join([*padded, last[0]]).rstrip()
        return "\n".join([first, *(" " * indent + more for more in last[1:])])

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def terminal_width() -> int | None:
    """The width to wrap tables at: ``COLUMNS``, or the terminal's when stdout is one;
    ``None`` (no wrapping) when the output goes to a pipe or a file."""
    if os.environ.get("COLUMNS", "").isdigit() or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def _is_spec_source(info: OpInfo) -> bool:
    """Python ops have their plugin as source; spec ops the file they came from."""
    return bool(info.plugin) and info.source != info.plugin


def source_label(info: OpInfo, long: bool = False) -> str:
    """The plugin name, or ``file.yaml (plugin)`` for an op declared in a spec file."""
    if not _is_spec_source(info):
        return info.source
    if long:
        return info.source
    where = Path(info.source).name
    if info.plugin.startswith("spec:"):  # loaded by tg.load_spec: the file says it all
        return where
    return f"{where} ({info.plugin})"


def params_label(info: OpInfo) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in info.params.items()) or "-"


def method_label(info: OpInfo) -> str:
    d = info.definition
    names = []
    if d.method is not False and d.method is not None:
        names.append("." + (d.method if isinstance(d.method, str) else info.name))
    names += [_OPERATORS.get(o, o) for o in d.operators]
    names += ["." + p for p in d.properties]
    return " ".join(names) or "-"


_OPERATORS = {
    "__add__": "+", "__radd__": "r+", "__sub__": "-", "__rsub__": "r-", "__mul__": "*",
    "__rmul__": "r*", "__truediv__": "/", "__rtruediv__": "r/", "__pow__": "**",
    "__rpow__": "r**", "__matmul__": "@", "__rmatmul__": "r@", "__neg__": "neg",
    "__abs__": "abs()", "__getitem__": "[]",
}


def jvp_label(info: OpInfo) -> str:
    if info.jvp is not None:
        return "rule"
    return "via vjp" if info.differentiable else "no"


def arity_label(info: OpInfo) -> str:
    return "*" if info.variadic else str(info.nargs)


def _fmt_err(x: float) -> str:
    return f"{x:.1e}"


# ----------------------------------------------------------------------- op lookup


def resolve_ops(names: Sequence[str]) -> list[OpInfo]:
    """The ops named, in order; :class:`UsageError` with close matches for unknown ones."""
    found = []
    for name in names:
        info = REGISTRY.ops.get(name)
        if info is None:
            close = difflib.get_close_matches(name, list(REGISTRY.ops), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UsageError(f"no op named {name!r} is registered{hint}\n"
                             f"(`{PROG} ops` lists the {len(REGISTRY.ops)} registered ops)")
        found.append(info)
    return found


def check_plugin(name: str) -> None:
    """:class:`UsageError` with close matches unless ``name`` is a registered plugin (or
    the source of an op: a spec file's path)."""
    known = [n for n, _ in tg.plugin_manager().list_name_plugin() if n is not None]
    if name in known or any(name == i.source for i in REGISTRY.ops.values()):
        return
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise UsageError(f"no plugin named {name!r} is registered{hint}\n"
                     f"(`{PROG} plugins` lists the {len(known)} registered plugins)")


def plugin_version(plugin: str) -> str:
    """``dist version`` of the distribution behind ``plugin``."""
    if plugin in REGISTRY.distributions:
        dist, version = REGISTRY.distributions[plugin]
        return f"{dist} {version}"
    if plugin.startswith("tapegrad.") or plugin == "tapegrad":
        return f"tapegrad {tg.__version__}"
    return "(registered at run time)"


# ----------------------------------------------------------------------- commands


def cmd_ops(args: argparse.Namespace) -> int:
    if args.numpy:
        if args.names or args.plugin or args.json or args.long:
            raise UsageError("--numpy takes no op names and no other option")
        from tapegrad.numpy_doc import render

        sys.stdout.write(render())
        return 0
    infos = resolve_ops(args.names) if args.names else tg.list_ops()
    if args.plugin:
        check_plugin(args.plugin)
        infos = [i for i in infos if args.plugin in (i.plugin, i.source)]
    if args.json:
        print(json.dumps([_op_json(i) for i in infos], indent=2))
        return 0
    rows = [(i.name, arity_label(i), params_label(i), source_label(i, args.long),
             method_label(i), jvp_label(i)) for i in infos]
    print(table(("NAME", "ARITY", "PARAMS", "SOURCE", "METHOD", "JVP"), rows))
    print(f"\n{_plural(len(infos), 'op')}")
    return 0


def _op_json(i: OpInfo) -> dict[str, Any]:
    return {"name": i.name, "nargs": i.nargs, "variadic": i.variadic,
            "params": {k: repr(v) for k, v in i.params.items()}, "source": i.source,
            "plugin": i.plugin, "method": method_label(i), "jvp": jvp_label(i),
            "differentiable": i.differentiable, "doc": i.doc}


def cmd_plugins(args: argparse.Namespace) -> int:
    by_plugin: dict[str, list[OpInfo]] = {}
    for info in tg.list_ops():
        by_plugin.setdefault(info.plugin or info.source, []).append(info)
    pm = tg.plugin_manager()
    records = []
    for name, _plugin in pm.list_name_plugin():
        if name is None:
            continue
        ops = by_plugin.get(name, [])
        py_ops = [i.name for i in ops if not _is_spec_source(i)]
        specs: dict[str, list[str]] = {}
        for i in ops:
            if _is_spec_source(i):
                specs.setdefault(i.source, []).append(i.name)
        records.append({"name": name, "version": plugin_version(name), "ops": py_ops,
                        "spec_files": specs})
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    rows = []
    for r in records:
        provides = []
        if r["ops"]:
            provides.append(f"{len(r['ops'])} ops: {_short_list(r['ops'])}")
        for path, names in r["spec_files"].items():
            provides.append(f"{Path(path).name}: {_short_list(names)}")
        rows.append((r["name"], r["version"], "; ".join(provides) or "-"))
    print(table(("PLUGIN", "DISTRIBUTION", "PROVIDES"), rows, width=terminal_width()))
    for p in REGISTRY.problems:
        print(f"warning: {p}", file=sys.stderr)
    return 0


def _short_list(names: list[str], limit: int = 6) -> str:
    head = ", ".join(names[:limit])
    return head + (f", ... (+{len(names) - limit})" if len(names) > limit else "")


def check_table(infos: Sequence[OpInfo], order: int, seed: int,
                long: bool = False) -> tuple[str, list[str], int]:
    """Check each op; the table, the failure messages, and the number of failed ops."""
    from tapegrad.spec_files import checkable

    rows = []
    failures: list[str] = []
    failed = 0
    for info in checkable(infos):  # spec ops under a bound on the work of their checks
        if not info.differentiable:
            rows.append((info.name, source_label(info, long), "-", "-", "-", "skip (no vjp)"))
            continue
        with np.errstate(all="ignore"):  # a non-finite value is reported as a failure
            res = gradcheck.op_errors(info, rng=np.random.default_rng(seed))
            problems = list(res.failures)
            if not problems and order >= 2:
                try:
                    gradcheck.check_op(info, order=order, rng=np.random.default_rng(seed))
                except Exception as exc:
                    problems.append(f"order {order}: {type(exc).__name__}: {exc}")
        status = "ok" if not problems else "FAIL"
        failed += bool(problems)
        failures += [f"{info.name}: {_one_line(p)}" for p in problems[:2]]
        rows.append((info.name, source_label(info, long), res.samples,
                     _fmt_err(res.max_abs), _fmt_err(res.max_rel), status))
    text = table(("OP", "SOURCE", "SAMPLES", "MAX ABS ERR", "MAX REL ERR", "RESULT"), rows)
    return text, failures, failed


def _one_line(msg: str) -> str:
    return " ".join(msg.split())


def _report_check(text: str, failures: list[str], failed: int, total: int) -> int:
    print(text)
    if failures:
        print()
        for f in failures:
            print(f"FAIL {f}")
    print(f"\n{_plural(total, 'op')} checked: {total - failed} passed, {failed} failed")
    return 1 if failed else 0


def cmd_check(args: argparse.Namespace) -> int:
    infos = resolve_ops(args.ops) if args.ops else tg.list_ops()
    text, failures, failed = check_table(infos, args.order, args.seed, args.long)
    return _report_check(text, failures, failed, len(infos))


def cmd_spec(args: argparse.Namespace) -> int:
    from tapegrad.spec import compile_spec_file, file_problem
    from tapegrad.spec_files import load_spec

    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"{path}: no such file")
    problem = file_problem(path)  # a directory, a FIFO or device, a file over 1 MB
    if problem is not None:
        raise UsageError(f"{path}: {problem}")
    target = os.path.realpath(path)
    loaded = [i for i in REGISTRY.ops.values()
              if _is_spec_source(i) and os.path.realpath(i.source) == target]
    owner = loaded[0].plugin if loaded else None
    added = None
    if owner is not None and not owner.startswith("spec:"):
        # Handed over by a plugin and registered already: validate the file's current
        # content against the other ops, and check the ops as registered.
        others = {k: v for k, v in REGISTRY.ops.items() if v not in loaded}
        defs = compile_spec_file(path, others)
        infos = [REGISTRY.ops[d.name] for d in defs if REGISTRY.ops.get(d.name) in loaded]
        note = f" (loaded by plugin {owner})"
    else:
        infos = load_spec(path)
        added = None if owner else f"spec:{Path(path).resolve()}"
        note = ""
    try:
        names = ", ".join(i.name for i in infos) or "-"
        print(f"{path}: valid spec{note}, {_plural(len(infos), 'op')}: {names}")
        if args.no_check or not infos:
            return 0
        print()
        text, failures, failed = check_table(infos, args.order, args.seed, long=False)
        return _report_check(text, failures, failed, len(infos))
    finally:
        if added is not None and tg.plugin_manager().has_plugin(added):
            tg.unregister_plugin(added)  # leave the registry as it was


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


# ----------------------------------------------------------------------- parser


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="tapegrad: list, inspect and gradient-check registered ops.")
    parser.add_argument("--version", action="version", version=f"{PROG} {tg.__version__}")
    parser.add_argument("--traceback", action="store_true",
                        help="show the full traceback of an error (for debugging)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ops", help="table of registered ops",
                       description="List registered ops: name, number of inputs, params, "
                                   "source (plugin or YAML file), Tensor method/operators, "
                                   "forward mode (own jvp rule, or derived from the vjp).")
    p.add_argument("names", nargs="*", metavar="NAME", help="only these ops")
    p.add_argument("--plugin", help="only ops from this plugin (name as in `tapegrad plugins`)")
    p.add_argument("--long", action="store_true", help="full paths of spec files")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.add_argument("--numpy", action="store_true",
                   help="the NumPy/SciPy functions that run an op on Tensors, as Markdown "
                        "(docs/NUMPY.md)")
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("plugins", help="loaded plugins and what they provide",
                       description="List loaded plugins: built-in packs, installed "
                                   "distributions (entry-point group 'tapegrad') and run-time "
                                   "plugins, with their version and the ops they provide.")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(func=cmd_plugins)

    def check_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--order", type=int, default=1, choices=(1, 2),
                       help="also check gradients of gradients (2); default 1")
        p.add_argument("--seed", type=_seed, default=0,
                       help="seed for the sample inputs (a non-negative integer)")

    p = sub.add_parser("check", help="gradient-check ops against finite differences",
                       description="Gradient-check every registered op (or those named) on "
                                   "its sample inputs against central finite differences. "
                                   "Exit status 1 if any op fails, 2 for an unknown op name.")
    p.add_argument("ops", nargs="*", metavar="OP", help="ops to check (default: all)")
    p.add_argument("--long", action="store_true", help="full paths of spec files")
    check_opts(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("spec", help="validate and gradient-check a YAML spec file",
                       description="Load a YAML op spec file, list the ops it defines and "
                                   "gradient-check each. Exit status 1 for an invalid file "
                                   "or a wrong rule.")
    p.add_argument("file", metavar="FILE.yaml", help="the spec file")
    p.add_argument("--no-check", action="store_true", help="validate only")
    check_opts(p)
    p.set_defaults(func=cmd_spec)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (the console script exits with it)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except BrokenPipeError:  # `tapegrad ops | head`: the reader went away, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:
        if args.traceback:
            raise
        _error(_describe(exc))
        return 1


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TapegradError):
        return str(exc).strip()
    name = type(exc).__name__
    if isinstance(exc, OSError):
        return f"{exc.strerror or name}: {exc.filename or exc}"
    if type(exc).__module__.startswith("yaml"):
        return f"invalid YAML: {_one_line(str(exc))}"
    return f"{name}: {_one_line(str(exc))} (rerun with --traceback for details)"


def _error(msg: str) -> None:
    lines = msg.splitlines() or [""]
    print(f"{PROG}: error: {lines[0]}", file=sys.stderr)
    for line in lines[1:3]:
        print(f"  {line}", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
