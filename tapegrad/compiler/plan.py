"""Plans: a trace pruned (unused steps dropped, each value's last use noted; the tracer
already aliased identity views, products by one and repeated calls) and run by a flat
loop at first, then by the straight-line code generated from it."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import tree
from .codegen import _generate
from .emit import _exec
from .flat import _flat
from .floats import _generate_floats
from .steps import Program, Step, Var, _vars_in
from .trace import Tracer

ndarray = np.ndarray


class Plan(Program):
    """One traced signature: its steps, run by a flat loop at first and, once the plan
    has been reused (``HOT`` calls), by straight-line code generated from it.

    ``source`` is that code (generated on first read); ``n_steps`` the number of steps.
    """

    def __init__(self, tracer: Tracer, out_def: tree.TreeDef, out_refs: list,
                 arg_names: list[str], name: str) -> None:
        super().__init__(name, _prune(tracer.steps, out_refs), tracer.args,
                         list(tracer.lives.values()), out_def, out_refs, arg_names)
        self.calls = 0
        self.generated = False
        self._source: str | None = None
        self._namespace: dict[str, Any] = {}
        self._fname = ""
        self._floats: tuple[str, dict, str] | None = None
        self._numpy_source = ""
        self.full = tracer.expand  # (else a quick trace: traced in full when hot, api.py)
        self.example: tuple | None = None  # arguments to expand it with (api.py)
        self.first: Any = None  # the traced call's results (see take_first)
        self._flat: Any = None  # the flat loop, assembled when first run

    def run(self, *leaves: Any) -> Any:
        """Run the plan on the arguments' arrays (the flat loop; :meth:`generate`
        replaces this method by the generated function)."""
        if self._flat is None:  # (the traced call returned its own results: no run)
            self._flat = _flat(self)
        return self._flat(*leaves)

    def take_first(self) -> Any:
        """The results of the call that was traced (its values are this call's)."""
        first, self.first = self.first, None
        return first

    @property
    def source(self) -> str:
        """The plan as the source of one Python function (two when every value is a
        float64 scalar: the one on Python floats first, then its NumPy fallback)."""
        if self._source is None:
            self._source, self._namespace, self._fname = _generate(self)
            self._numpy_source = self._source
            self._floats = _generate_floats(self)
            if self._floats is not None:
                self._source = self._floats[0] + "\n\n" + self._source
        return self._source

    def generate(self) -> None:
        """Replace the flat loop by the compiled straight-line code."""
        self.source  # noqa: B018 - generates the sources
        run = _exec(self._numpy_source, self._namespace, self._fname, self.name)
        if self._floats is not None:
            fsource, fns, fname = self._floats
            fns["_numpy_plan"] = run
            run = _exec(fsource, fns, fname, self.name)
        self.run = run
        self.generated = True


def _prune(steps: list[Step], out_refs: list) -> list[Step]:
    """The steps the outputs need (guards too), in order, each value's last use noted.

    (The tracer already made identity views, products by one and repeated calls the
    values they repeat: see ``Tracer.call``.)"""
    needed: set[Var] = set(_vars_in(out_refs, []))
    kept = []
    for s in reversed(steps):  # (plain loops: this runs once per step)
        if s.guard is None:
            for v in s.outs:
                if v in needed:
                    break
            else:
                continue
        kept.append(s)
        needed.update(s.vars)
    kept.reverse()
    for i in range(len(kept)):
        for v in kept[i].vars:
            v.last = i
    return kept
