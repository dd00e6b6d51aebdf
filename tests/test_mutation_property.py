"""Property test of the mutation rule (README, "Data, copies and mutation"; issue 12).

Random programs over every registered differentiable op (the op cases of
``test_property.py``: every op's samples or domain) feed each op input from a leaf
through a view (``x.T``, ``reshape``, ``x[:]``, ``astype`` to the same dtype,
``np.broadcast_to``), a ``detach()``, a cast (``astype(float32)``, ``astype(float64)``
of a float32 leaf), a plain ndarray handed over as is, or an earlier node
(``base + 0.01 * tanh(node)``, as in ``test_property``), and cast leaves to ``int``
(untracked; the cast then multiplies its leaf). Small (<= ``protect.COPY_LIMIT``
elements: copied when saved) and large (locked when saved) arrays both occur.

Between the forward and the backward the program writes in place into leaf data
(``x.data[...] = v``, ``x.data -= d``, through views of ``x.data`` made after the
forward, through ``x.detach().data`` and ``x.numpy()``), into the plain ndarrays it
handed to ops, and into op results; it may also replace leaf data (``x.data = v``), do
a second batch of writes between two backwards (``retain_graph=True``), or record on a
``tg.Tape``. The property: each write either raises NumPy's read-only ``ValueError``
(and writes nothing), or succeeds; the gradients then equal those of the same program
run with private copies of every array and no writes. After the last backward every
leaf's data and every array handed over is writable again.

``test_the_property_detects_broken_protection`` runs the same checks with protection
switched off (for small arrays, for large ones, for results) and asserts that they fail.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from test_property import (
    CATALOGUE,
    PERTURB,
    Case,
    _by_op,
    budget,
    partner_shape,
    random_shape,
    shipped_plugins,
)

import tapegrad as tg
from tapegrad.protect import COPY_LIMIT

# the modules themselves (``tapegrad.tensor`` is also the name of a function)
graph_module = importlib.import_module("tapegrad.graph")
tensor_module = importlib.import_module("tapegrad.tensor")

ndarray = np.ndarray
LIMIT = COPY_LIMIT
#: shapes above the copy limit (locked when saved); a partner of one may be small
LARGE_SHAPES = [(LIMIT + 1,), (33, 32), (2, 23, 24)]
#: how a fresh input is made from its value, and how often
SOURCES = {"leaf": 5, "T": 3, "reshape": 3, "slice": 3, "same": 3, "bcast": 2, "detach": 2,
           "ndarray": 3, "f32": 2, "f64": 2}
LEAF_WRITES = ["assign", "isub", "part", "T", "slice", "detach", "numpy", "replace"]
ARRAY_WRITES = ["assign", "isub", "part", "T", "slice"]
RESULT_WRITES = ["assign", "detach", "numpy"]


@pytest.fixture(autouse=True, scope="module")
def _registered_plugins():
    with shipped_plugins():
        yield


# ----------------------------------------------------------------------- programs


@dataclass
class MutationProgram:
    """Straight-line code; node ``i`` is the value of ``code[i]``.

    Instructions: ``("leaf", i)`` (a tensor of ``leaves[i]`` with ``requires_grad``),
    ``("view", how, node, shape)``, ``("op", case, refs)``, ``("int", node)`` (an int
    cast) and ``("mul", a, b)``. A ref is ``("node", k)``, ``("array", j)`` (a plain
    ndarray, ``arrays[j]``), ``("const", value)``, ``("chain", base_ref, k)``
    (``base + PERTURB * tanh(node k)``) or ``("squash", k, lo, hi)``. ``writes`` holds
    one batch of ``(target, index, how)`` per backward.
    """

    leaves: list[ndarray] = field(default_factory=list)
    arrays: list[ndarray] = field(default_factory=list)
    code: list[tuple] = field(default_factory=list)
    probes: dict[int, ndarray] = field(default_factory=dict)
    writes: list[list[tuple]] = field(default_factory=list)
    taped: bool = False

    @property
    def cases(self) -> list[Case]:
        return [ins[1] for ins in self.code if ins[0] == "op"]

    def __repr__(self) -> str:
        return "MutationProgram(\n" + self.describe() + "\n)"

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis's printer
        p.text(repr(self))

    def describe(self) -> str:
        def ref(r):
            if r[0] == "node":
                return f"%{r[1]}"
            if r[0] == "array":
                return f"array{r[1]}{self.arrays[r[1]].shape}"
            if r[0] == "const":
                return repr(r[1])
            if r[0] == "chain":
                return f"{ref(r[1])} + {PERTURB} * tanh(%{r[2]})"
            return f"squash(%{r[1]}, {r[2]:.3g}, {r[3]:.3g})"

        lines = ["taped" if self.taped else "backward"]
        for i, ins in enumerate(self.code):
            if ins[0] == "leaf":
                v = self.leaves[ins[1]]
                rhs = f"leaf{ins[1]}{v.shape} {v.dtype}"
            elif ins[0] == "view":
                rhs = f"{ins[1]}(%{ins[2]})"
            elif ins[0] == "op":
                rhs = f"{ins[1].label}({', '.join(ref(r) for r in ins[2])}, **{ins[1].params})"
            elif ins[0] == "int":
                rhs = f"%{ins[1]}.astype(int64)"
            else:
                rhs = f"%{ins[1]} * %{ins[2]}"
            lines.append(f"%{i} = {rhs}")
        for b, batch in enumerate(self.writes):
            lines.append(f"writes {b}: {batch}; backward")
        return "\n".join(lines)


def _view(how: str, t: tg.Tensor, shape: tuple) -> tg.Tensor:
    if how == "T":
        return t.T
    if how == "reshape":
        return t.reshape(shape)
    if how == "slice":
        return t[:] if t.ndim else t[...]
    if how == "same":
        return t.astype(t.dtype)
    if how == "bcast":
        return np.broadcast_to(t, shape)
    if how == "detach":
        return t.detach()
    if how == "f32":
        return t.astype(np.float32)
    if how == "f64":
        return t.astype(np.float64)
    raise AssertionError(how)


def _resolve(r: tuple, nodes: list, arrays: list) -> Any:
    kind = r[0]
    if kind == "node":
        return nodes[r[1]]
    if kind == "array":
        return arrays[r[1]]
    if kind == "const":
        return r[1]
    v = nodes[r[-1] if kind == "chain" else r[1]]
    if kind == "squash":
        return r[2] + (r[3] - r[2]) * 0.5 * (np.tanh(v) + 1.0)
    base = _resolve(r[1], nodes, arrays)
    if np.broadcast_shapes(np.shape(v), np.shape(base)) != np.shape(base):
        v = v.sum()  # as in test_property: a sample moves as a whole
    return base + PERTURB * np.tanh(v)


def forward(prog: MutationProgram, leaves: list, arrays: list) -> list:
    """Every node's value; leaves are Tensors, arrays the plain ndarrays handed over."""
    nodes: list = []
    for ins in prog.code:
        op = ins[0]
        if op == "leaf":
            nodes.append(leaves[ins[1]])
        elif op == "view":
            nodes.append(_view(ins[1], nodes[ins[2]], ins[3]))
        elif op == "op":
            nodes.append(ins[1].call(*[_resolve(r, nodes, arrays) for r in ins[2]]))
        elif op == "int":
            c = nodes[ins[1]].astype(np.int64)
            assert not c.requires_grad and c.dtype == np.int64, "astype(int) is tracked"
            nodes.append(c)
        else:
            nodes.append(nodes[ins[1]] * nodes[ins[2]])
    return nodes


def objective(prog: MutationProgram, nodes: list) -> Any:
    total = None
    for k, probe in prog.probes.items():
        if isinstance(nodes[k], tg.Tensor) and nodes[k].requires_grad:
            term = (nodes[k] * probe).sum()
            total = term if total is None else total + term
    return total


@contextlib.contextmanager
def quiet():
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def _float_nodes(values: list) -> list[int]:
    return [k for k, v in enumerate(values) if isinstance(v, tg.Tensor) and v.dtype.kind == "f"]


def build_program(rng: np.random.Generator, cases: list[Case] | None = None,
                  n_steps: int = 3) -> MutationProgram:
    """A random program over ``cases`` (default: the whole catalogue), with writes."""
    by_name = _by_op(CATALOGUE if cases is None else cases)
    names = sorted(by_name)
    prog = MutationProgram(taped=bool(rng.random() < 0.2))
    values: list = []  # node values of the program so far (a run without writes)
    sources = list(SOURCES)
    weights = np.array(list(SOURCES.values()), dtype=float)

    def new_leaf(v: ndarray) -> int:
        prog.leaves.append(v)
        prog.code.append(("leaf", len(prog.leaves) - 1))
        values.append(None)
        return len(prog.code) - 1

    def fresh(arg, val: ndarray) -> tuple:
        """A ref feeding ``val`` (float64) through a random source."""
        ok = np.array([s != "bcast" or (arg.kind in ("pool", "interval") and val.size > 0
                                        and val.ndim > 0) for s in sources])
        how = sources[rng.choice(len(sources), p=weights * ok / (weights * ok).sum())]
        if how == "ndarray":
            prog.arrays.append(val.copy())
            return ("array", len(prog.arrays) - 1)
        if how == "T":
            leaf = np.ascontiguousarray(val.T)
        elif how == "reshape":
            leaf = val.reshape(-1).copy()
        elif how == "bcast":
            axes = [a for a in range(val.ndim) if rng.random() < 0.6] or [0]
            leaf = val[tuple(slice(0, 1) if a in axes else slice(None)
                             for a in range(val.ndim))].copy()
        elif how == "f64":
            leaf = val.astype(np.float32)
        else:
            leaf = val.copy()
        k = new_leaf(leaf)
        if how == "leaf":
            return ("node", k)
        prog.code.append(("view", how, k, val.shape))
        values.append(None)
        return ("node", len(prog.code) - 1)

    def reusable(arg, shape: tuple) -> list[int]:
        found = []
        for k, ins in enumerate(prog.code):
            if ins[0] != "leaf":
                continue
            v = prog.leaves[ins[1]]
            if v.shape != shape or v.dtype != np.float64:
                continue
            if arg.kind == "pool" and np.isin(v, arg.values).all() or \
                    arg.kind == "interval" and ((v >= arg.lo) & (v <= arg.hi)).all():
                found.append(k)
        return found

    def evaluate() -> bool:
        """Run the program so far; whether every node is finite (and tracked if an op)."""
        try:
            with quiet():
                nodes = forward(prog, [tg.tensor(v, requires_grad=True) for v in prog.leaves],
                                [a.copy() for a in prog.arrays])
        except Exception:  # noqa: BLE001 - an op refusing these shapes or values
            return False
        last = nodes[-1]
        if prog.code[-1][0] in ("op", "mul") and not (
                last.requires_grad and last.dtype.kind == "f" and np.isfinite(last.data).all()):
            return False
        values[:] = nodes
        return True

    for _ in range(n_steps):
        mark = (len(prog.leaves), len(prog.arrays), len(prog.code))
        floats = _float_nodes(values)
        if floats and rng.random() < 0.15:  # an int cast, multiplied by what it was cast from
            k = floats[int(rng.integers(len(floats)))]
            prog.code += [("int", k), ("mul", k, len(prog.code))]
            values += [None, None]
        else:
            group = by_name[names[int(rng.integers(len(names)))]]
            case = group[int(rng.integers(len(group)))]
            main = None
            if case.elementwise:
                main = LARGE_SHAPES[int(rng.integers(len(LARGE_SHAPES)))] \
                    if rng.random() < 0.35 else random_shape(rng)
            refs = []
            for arg in case.args:
                if arg.kind == "const":
                    if isinstance(arg.values, ndarray):
                        prog.arrays.append(arg.values.copy())
                        refs.append(("array", len(prog.arrays) - 1))
                    else:
                        refs.append(("const", arg.values))
                    continue
                shape = None
                if case.elementwise:
                    shape = main if not any(r[0] != "const" for r in refs) \
                        else partner_shape(rng, main)
                if arg.kind == "interval":
                    val = rng.uniform(arg.lo, arg.hi, shape)
                elif arg.kind == "pool":
                    val = rng.choice(arg.values, shape)
                else:
                    val = np.array(arg.values, dtype=np.float64)
                val = np.asarray(val, dtype=np.float64)
                floats = _float_nodes(values)
                again = reusable(arg, val.shape) if arg.kind in ("pool", "interval") else []
                r = rng.random()
                if r < 0.25 and floats:
                    k = floats[-1] if rng.random() < 0.5 else floats[int(rng.integers(len(floats)))]
                    refs.append(("squash", k, arg.lo, arg.hi) if arg.kind == "interval"
                                else ("chain", fresh(arg, val), k))
                elif r < 0.4 and again:
                    refs.append(("node", again[int(rng.integers(len(again)))]))
                else:
                    refs.append(fresh(arg, val))
            prog.code.append(("op", case, refs))
            values.append(None)
        if not evaluate():
            del prog.leaves[mark[0]:], prog.arrays[mark[1]:], prog.code[mark[2]:]
            del values[mark[2]:]
    prog.probes = {k: rng.uniform(0.5, 1.5, values[k].shape)
                   for k, ins in enumerate(prog.code) if ins[0] in ("op", "mul")}
    # writes: one batch per backward
    results = [k for k, ins in enumerate(prog.code) if ins[0] != "leaf"]
    n_batches = 1 if prog.taped or rng.random() < 0.7 else 2
    for _ in range(n_batches):
        batch = []
        for _ in range(int(rng.integers(1, 6))):
            r = rng.random()
            if r < 0.4 and prog.leaves:
                batch.append(("leaf", int(rng.integers(len(prog.leaves))),
                              LEAF_WRITES[int(rng.integers(len(LEAF_WRITES)))]))
            elif r < 0.7 and prog.arrays:
                batch.append(("array", int(rng.integers(len(prog.arrays))),
                              ARRAY_WRITES[int(rng.integers(len(ARRAY_WRITES)))]))
            elif results:
                batch.append(("node", results[int(rng.integers(len(results)))],
                              RESULT_WRITES[int(rng.integers(len(RESULT_WRITES)))]))
        prog.writes.append(batch)
    return prog


@st.composite
def mutation_programs(draw, min_steps: int = 1, max_steps: int = 5):
    """Hypothesis draws the number of steps and a seed; the seed drives the rest."""
    n_steps = draw(st.integers(min_steps, max_steps), label="steps")
    prog = build_program(np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed")),
                         n_steps=n_steps)
    assume(prog.cases)
    return prog


# ----------------------------------------------------------------------- the check


def _changed(a: ndarray) -> ndarray:
    """Values that differ from ``a``'s everywhere (or nearly: -1.5 a + 0.75 == a at 0.3)."""
    if a.dtype.kind == "b":
        return ~a
    if a.dtype.kind in "iu":
        return a + 1
    return a * -1.5 + 0.75


def _write_into(a: ndarray, how: str) -> None:
    """An in-place write into ``a`` (or into a view of it made now)."""
    if how == "assign":
        a[...] = _changed(a)
    elif how == "isub":
        if a.dtype.kind == "b":
            a ^= True
        else:
            a -= np.abs(a) + 1 if a.dtype.kind == "f" else np.ones_like(a)
    elif how == "part":
        flat = a.reshape(-1)  # a view for contiguous data
        flat[: max(1, flat.size // 2)] = _changed(flat[: max(1, flat.size // 2)])
    elif how == "T":
        v = a.T
        v[...] = _changed(v)
    elif how == "slice":
        v = a[:] if a.ndim else a[...]
        v[...] = _changed(v)
    else:
        raise AssertionError(how)


def write(w: tuple, leaves: list, arrays: list, nodes: list) -> None:
    target, i, how = w
    if target == "array":
        _write_into(arrays[i], how)
        return
    t = leaves[i] if target == "leaf" else nodes[i]
    if how == "isub":
        d = t.data
        t.data -= np.abs(d) + 1 if d.dtype.kind == "f" else np.ones_like(d)
    elif how == "replace":
        t.data = _changed(t.data).astype(t.dtype)
    elif how == "detach":
        _write_into(t.detach().data, "assign")
    elif how == "numpy":
        _write_into(t.numpy(), "assign")
    else:
        _write_into(t.data, how)


def _read_only_error(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "read-only" in str(exc)


def run(prog: MutationProgram, writes: bool) -> tuple[list, list[str]]:
    """The leaves' gradients, and what happened to each write (``"raised"``/``"done"``).

    Every array is a private copy of the program's. Writes that raise NumPy's read-only
    ``ValueError`` are noted; any other error propagates (as an ``AssertionError`` when
    it comes from a backward after writes).
    """
    leaves = [tg.tensor(v, requires_grad=True) for v in prog.leaves]
    arrays = [a.copy() for a in prog.arrays]
    outcome = []
    with quiet():
        with tg.Tape() if prog.taped else contextlib.nullcontext() as tape:
            nodes = forward(prog, leaves, arrays)
            total = objective(prog, nodes)
        assert total is not None and total.requires_grad, prog.describe()
        grads = [np.zeros_like(t.data) for t in leaves]
        for b, batch in enumerate(prog.writes):
            for w in batch if writes else []:
                try:
                    write(w, leaves, arrays, nodes)
                except ValueError as exc:
                    if not _read_only_error(exc):
                        raise
                    outcome.append("raised")
                else:
                    outcome.append("done")
            last = b == len(prog.writes) - 1
            try:
                if tape is not None:
                    gs = tape.gradient(total, leaves)
                else:
                    for t in leaves:
                        t.grad = None
                    total.backward(retain_graph=not last)
                    gs = [t.grad for t in leaves]
            except Exception as exc:
                if not writes:
                    raise
                raise AssertionError(f"backward after the writes {prog.writes[:b + 1]} "
                                     f"raised {exc!r}\nprogram:\n{prog.describe()}") from exc
            for k, g in enumerate(gs):
                if g is not None:
                    grads[k] = grads[k] + g
    del nodes, total, tape
    locked = [f"leaf{k}" for k, t in enumerate(leaves) if not t.data.flags.writeable] + \
        [f"array{j}" for j, a in enumerate(arrays) if not a.flags.writeable]
    assert not locked, (f"still read-only after the last backward: {locked}\n"
                        f"program:\n{prog.describe()}")
    return grads, outcome


def check(prog: MutationProgram) -> list[str]:
    """The property for one program; returns the writes' outcomes."""
    expected, _ = run(prog, writes=False)
    got, outcome = run(prog, writes=True)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        assert g.shape == e.shape and g.dtype == e.dtype, (k, g.shape, g.dtype, e.dtype)
        if not np.allclose(g, e, rtol=1e-9, atol=1e-12, equal_nan=True):
            i = np.unravel_index(int(np.argmax(np.abs(g - e))), g.shape) if g.ndim else ()
            raise AssertionError(
                f"writes {outcome} changed leaf {k}'s gradient: at {i} {g[i]!r}, without "
                f"writes {e[i]!r}\nprogram:\n{prog.describe()}")
    return outcome


# ----------------------------------------------------------------------- the tests


@budget(100)
@given(mutation_programs())
def test_writes_between_forward_and_backward_raise_or_leave_gradients_exact(prog):
    check(prog)


OP_NAMES = sorted({c.name for c in CATALOGUE})


@pytest.mark.parametrize("name", OP_NAMES)
def test_each_op_under_writes(name):
    """Every differentiable op, deterministically, in a program of its own cases."""
    cases = [c for c in CATALOGUE if c.name == name]
    for attempt in range(8):
        rng = np.random.default_rng([zlib.crc32(name.encode()), attempt])
        prog = build_program(rng, cases, n_steps=2)
        if prog.cases:
            check(prog)
            return
    pytest.fail(f"no valid program built from {name}'s cases")


def _sample_programs(n: int) -> list[MutationProgram]:
    return [p for p in (build_program(np.random.default_rng([7, s]), n_steps=4)
                        for s in range(n)) if p.cases]


def test_programs_cover_small_and_large_arrays_every_source_and_write():
    """The generator makes what the property is about, not only easy programs."""
    progs = _sample_programs(40)
    sizes = [a.size for p in progs for a in p.leaves + p.arrays]
    assert any(s <= LIMIT for s in sizes) and any(s > LIMIT for s in sizes)
    views = {ins[1] for p in progs for ins in p.code if ins[0] == "view"}
    arrays = any(r[0] == "array" for p in progs for ins in p.code if ins[0] == "op"
                 for r in ins[2])
    assert views | ({"ndarray"} if arrays else set()) | {"leaf"} == set(SOURCES)
    assert any(ins[0] == "int" for p in progs for ins in p.code)
    writes = {(w[0], w[2]) for p in progs for batch in p.writes for w in batch}
    assert {("leaf", h) for h in LEAF_WRITES} | {("array", h) for h in ARRAY_WRITES} | \
        {("node", h) for h in RESULT_WRITES} <= writes
    assert any(p.taped for p in progs) and any(len(p.writes) == 2 for p in progs)
    # both outcomes of a write happen: copies (done) and locks (raised)
    outcomes = [o for p in progs[:15] for o in check(p)]
    assert "raised" in outcomes and "done" in outcomes


def _unprotected_when(cond):
    """``graph.protect`` that leaves the arrays for which ``cond(a)`` holds unprotected."""
    real = graph_module.protect

    def protect(arrays, private):
        skip = [p or (type(a) is ndarray and cond(a)) for a, p in zip(arrays, private,
                                                                        strict=True)]
        return real(arrays, skip)

    return protect


@pytest.mark.parametrize("broken", ["small copies", "large locks", "read-only results"])
def test_the_property_detects_broken_protection(broken, monkeypatch):
    """With one protection switched off, the same checks fail on some programs."""
    progs = _sample_programs(40)
    for p in progs:
        check(p)  # all pass with protection on
    if broken == "small copies":
        monkeypatch.setattr(graph_module, "protect", _unprotected_when(lambda a: a.size <= LIMIT))
    elif broken == "large locks":
        monkeypatch.setattr(graph_module, "protect", _unprotected_when(lambda a: a.size > LIMIT))
    else:
        monkeypatch.setattr(tensor_module, "_exit", lambda t: t._data)
    caught = 0
    for p in progs:
        try:
            check(p)
        except AssertionError as exc:
            assert "changed leaf" in str(exc) or "raised" in str(exc), str(exc)
            caught += 1
    assert caught, f"no program noticed the {broken} being off"
