"""Spec files in the registry: loading one (``tg.load_spec``), and recompiling the
registered ones under a bound on the work of their gradient checks.

Apart from :mod:`tapegrad.spec` (which parses and compiles a file against a table of
ops, knowing no registry) so that imports run one way: registry -> spec, and this
module above both.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .errors import SpecError
from .formula import Where, fail
from .hookspecs import hookimpl
from .opdef import OpInfo
from .registry import REGISTRY, Registry
from .spec import compile_spec_file


class SpecFilePlugin:
    """A plugin handing one spec file to the registry (what :func:`load_spec` registers)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @hookimpl
    def tapegrad_spec_files(self) -> list[Path]:
        return [self.path]

    def __repr__(self) -> str:
        return f"<SpecFilePlugin {self.path}>"


def load_spec(path: str | os.PathLike[str]) -> list[OpInfo]:
    """Register the ops of the YAML spec file ``path``; return their :class:`OpInfo`.

    Their ``source`` is the file's absolute path. The file must be a regular file of at
    most :data:`MAX_SPEC_BYTES` (1 MB). Loading a file that is already loaded
    *reloads* it: its ops are replaced by the file's current content (if the new content
    is invalid, the old ops stay and ``SpecError`` is raised). An op name that another
    plugin or file already registered raises ``SpecError`` naming both.
    """
    p = Path(path).resolve()
    name = f"spec:{p}"
    with REGISTRY.lock:
        table = {k: v for k, v in REGISTRY.ops.items() if v.plugin != name}
        defs = compile_spec_file(p, table)
        for d in defs:
            if d.name in table:
                raise fail(Where(str(p), d.name), "name defined twice",
                            d.name, f"an op of that name is already registered by "
                            f"{table[d.name].source}; rename it")
        REGISTRY.replace(name, SpecFilePlugin(p))
        return [REGISTRY.ops[d.name] for d in defs]


# ----------------------------------------------------------------------------- checks

#: Most work that gradient-checking the ops of one spec file may do, in array elements:
#: every array an op call inside a formula receives or returns counts its size, and
#: each call :data:`CALL_COST` more (a call's Python overhead is worth about that many
#: elements). About a few seconds of work; the shipped files need under 1% of it, even
#: at ``--order 2``.
MAX_CHECK_WORK = 2_000_000_000
CALL_COST = 1000


class WorkLimit:
    """A budget of work shared by the ops of one spec file while they are checked.

    :meth:`wrap` is the ``guard`` of :class:`~tapegrad.formula.Callee`: each guarded
    call spends the sizes of its array arguments and result; the call that overspends
    raises :class:`SpecError` naming the file and the op, so a formula such as
    ``sum(broadcast_to(x, shape=(100000000000,)))`` fails its check at once (the
    broadcast view is cheap, summing it is not) instead of running for hours."""

    def __init__(self, path: str, limit: int = MAX_CHECK_WORK) -> None:
        self.path = path
        self.limit = limit
        self.spent = 0

    def spend(self, values: Iterable[Any], op: str) -> None:
        n = CALL_COST
        for v in values:
            n += getattr(v, "size", 1) if not isinstance(v, (list, tuple)) else len(v)
        self.spent += n
        if self.spent > self.limit:
            raise fail(Where(self.path), f"checking the ops of this file needs more "
                       f"than {self.limit} array elements of work (tapegrad.spec_files."
                       f"MAX_CHECK_WORK; the call of op {op!r} reached it)",
                       hint="use smaller samples, or formulas that make smaller arrays")

    def wrap(self, fn: Callable[..., Any], op: str) -> Callable[..., Any]:
        spend = self.spend

        def guarded(*args: Any, **kwargs: Any) -> Any:
            spend(args, op)
            out = fn(*args, **kwargs)
            spend((out,), op)
            return out

        guarded.__name__ = getattr(fn, "__name__", op)
        return guarded


def is_spec_op(info: OpInfo) -> bool:
    """Whether ``info`` was declared in a spec file (its source is the file's path)."""
    return bool(info.plugin) and info.source != info.plugin


def checkable(infos: Iterable[OpInfo]) -> list[OpInfo]:
    """``infos``, each op of a spec file replaced by a copy whose formulas run under a
    :class:`WorkLimit` of :data:`MAX_CHECK_WORK` per file: what ``tapegrad check`` and
    ``tapegrad spec`` gradient-check. Python ops, and ops whose file no longer compiles
    as registered, are returned as they are."""
    infos = list(infos)
    guarded: dict[str, OpInfo] = {}
    for path in dict.fromkeys(i.source for i in infos if is_spec_op(i)):
        guarded.update(_guarded_file(path))
    return [guarded.get(i.name, i) if is_spec_op(i) else i for i in infos]


def _guarded_file(path: str) -> dict[str, OpInfo]:
    """The ops of spec file ``path`` compiled again under a :class:`WorkLimit`; none if
    the file changed since it was registered (its ops are then checked as they are)."""
    with REGISTRY.lock:
        ops = dict(REGISTRY.ops)
    scratch = {k: v for k, v in ops.items() if v.source != path}
    try:
        defs = compile_spec_file(path, scratch, guard=WorkLimit(path).wrap)
    except SpecError:
        return {}
    olds = [ops.get(d.name) for d in defs]
    if any(old is None or old.source != path for old in olds):
        return {}
    for d, old in zip(defs, olds, strict=True):
        scratch[d.name] = Registry._info(d, path, old.plugin)
    return {d.name: scratch[d.name] for d in defs}
