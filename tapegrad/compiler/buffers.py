"""Buffer reuse for generated code: which dead array a ufunc step may write its result
into (``out=``), so that a compiled step holds no more memory than the eager one."""

from __future__ import annotations

import numpy as np

from .steps import Step, Var

#: Results are written into dead arrays of at least ``REUSE_BYTES`` (``out=``; below it a
#: fresh array is cheaper than the keyword).
REUSE_BYTES = 4096


class _Buffers:
    """Which dead array a step may write its result into (NumPy's ``out=``).

    Only a ufunc's own results qualify (always fresh arrays of the traced shape and
    dtype), only for a ufunc step of the same shape and dtype, only at the step that
    reads the array last, and only when nothing else can still reach its memory:
    results of other steps may be views of their inputs (``x.T``), so an array and
    everything computed from it by non-ufunc steps share one lifetime here.
    """

    def __init__(self, steps: list[Step], outputs: set[int]) -> None:
        parent: dict[int, int] = {}

        def find(k: int) -> int:
            while parent.get(k, k) != k:
                k = parent[k]
            return k

        self.find = find
        for s in steps:
            if s.guard is None and not isinstance(s.fn, np.ufunc):
                for o in s.outs:
                    for v in s.vars:
                        parent[find(id(o))] = find(id(v))
        self.last: dict[int, int] = {}
        self.pinned: set[int] = set()
        for i, s in enumerate(steps):
            for v in [*s.vars, *s.outs]:
                g = find(id(v))
                self.last[g] = max(self.last.get(g, -1), v.last, i)
                if v.kind != "step" or id(v) in outputs:
                    self.pinned.add(g)
        for k in outputs:
            self.pinned.add(find(k))

    def dead_buffer(self, i: int, s: Step) -> Var | None:
        if not isinstance(s.fn, np.ufunc) or s.fn is np.matmul or len(s.outs) != 1 \
                or s.params or s.variadic:
            return None
        out = s.outs[0]
        for a in s.args:
            if (type(a) is Var and a.kind == "step" and isinstance(a.fn, np.ufunc)
                    and a.shape == out.shape and a.dtype == out.dtype
                    and a.nbytes >= REUSE_BYTES and not out.wrap):
                g = self.find(id(a))
                if self.last.get(g) == i and g not in self.pinned:
                    self.pinned.add(g)  # (once: the result now lives in it)
                    return a
        return None
