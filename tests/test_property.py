"""Property-based gradient tests: random programs over every registered op.

A *program* is a small DAG built by hypothesis from the registry's ops (built-in,
plugin and YAML ops alike): free leaves of random shapes (0-d, size-0, broadcasting
pairs), and op calls whose inputs are kept inside each op's valid region so that
central finite differences are meaningful:

* an op with a declared ``domain`` and no samples gets ``lo + (hi - lo) * squash(v)``
  (a tanh rescaled into the domain, shrunk by 2%) of an upstream node ``v``;
* an op with ``samples`` gets ``base + 0.01 * tanh(v)``, where ``base`` is a leaf holding
  values taken from one of its samples (elementwise ops: values re-drawn from that
  sample in any shape; other ops: the sample array itself, shifted as a whole by
  ``0.01 * tanh(sum(v))`` so that its exact ties and its gaps are kept). Samples keep
  away from kinks by more than the 0.01 perturbation, so the point stays valid.

The scalar objective is ``sum_k sum(node_k * probe_k)`` over every op output. Checked:
reverse mode against central finite differences (float64, and float32 against the
float64 differences at the same point), forward mode (``tg.jvp``) against reverse mode
(``tg.vjp``) through ``<J t, u> == <t, J^T u>``, and second order (``create_graph``)
against finite differences of the first.

Profiles: ``ci`` (bounded, deterministic, the default) and ``long`` (select with
``HYPOTHESIS_PROFILE=long``, about 2000 examples a test, a few minutes) for runs by hand.
They are applied to these tests only (``settings.load_profile`` is not called, so other
modules' hypothesis settings are left alone).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tapegrad as tg
from tapegrad.gradcheck import op_samples

# ----------------------------------------------------------------------- profiles

settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_PROFILE_NAME = os.environ.get("HYPOTHESIS_PROFILE", "ci")
if _PROFILE_NAME not in ("ci", "long"):
    _PROFILE_NAME = "ci"
PROFILE = settings.get_profile(_PROFILE_NAME)
LONG = _PROFILE_NAME == "long"


def budget(ci_examples: int) -> settings:
    """The active profile, with ``ci_examples`` examples in CI."""
    if LONG:
        return settings(PROFILE)
    return settings(PROFILE, max_examples=ci_examples)


PERTURB = 0.01  # how far an anchored input may move from its sample values
SHRINK = 0.02  # fraction of a domain kept clear at each end

# ----------------------------------------------------------------------- op catalogue


@dataclass
class Arg:
    """How one input of an op case is fed.

    ``kind``: ``"interval"`` (squash into ``lo, hi``), ``"pool"`` (anchor at values
    from ``values``; elementwise), ``"sample"`` (anchor at exactly ``values``), or
    ``"const"`` (pass ``values`` as is: Python scalars, masks, integer arrays).
    """

    kind: str
    values: Any = None
    lo: float = 0.0
    hi: float = 0.0


@dataclass
class Case:
    info: Any
    params: dict
    args: list[Arg]
    elementwise: bool
    label: str
    twice: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.info.name

    def __repr__(self) -> str:
        return f"<case {self.label}>"

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis's printer
        p.text(repr(self))

    def call(self, *xs: Any) -> Any:
        if self.info.variadic:
            return self.info.call(list(xs), **self.params)
        return _joined(self.info.call(*xs, **self.params), tg.ops.concatenate)

    def forward(self, *xs: Any) -> Any:
        if self.info.variadic:
            return self.info.definition.forward(list(xs), **{**self.info.params, **self.params})
        return _joined(self.info.definition.forward(*xs, **{**self.info.params, **self.params}),
                       np.concatenate)


def _joined(out: Any, concatenate: Any) -> Any:
    """The outputs of an op with several (a tuple) as one vector: one node of a program."""
    if not isinstance(out, tuple):
        return out
    return concatenate([o.reshape(-1) for o in out])


def _is_float_array(x: Any) -> bool:
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _check_elementwise(case_forward, arrays: list[np.ndarray], nd: set[int]) -> bool:
    """Whether ``forward`` acts elementwise (with broadcasting) on these inputs."""
    try:
        shape = np.broadcast_shapes(*[np.shape(a) for a in arrays])
        with np.errstate(all="ignore"):
            out = np.asarray(case_forward(*arrays))
            if out.shape != shape or out.dtype != np.float64 or out.size == 0:
                return False
            full = [np.broadcast_to(a, shape).reshape(-1, 1) if i in nd else a
                    for i, a in enumerate(arrays)]
            col = np.asarray(case_forward(*full))
            if col.shape != (out.size, 1):
                return False
            if not np.allclose(col.ravel(), out.ravel(), equal_nan=True):
                return False
            firsts = [f[:1] if i in nd else a for i, (f, a) in enumerate(zip(full, arrays,
                                                                               strict=True))]
            one = np.asarray(case_forward(*firsts))
            return one.shape == (1, 1) and np.allclose(one.ravel(), out.ravel()[:1],
                                                       equal_nan=True)
    except Exception:  # noqa: BLE001 - not elementwise in the way we need
        return False


def _classify(info, inputs: tuple, params: dict, k: int) -> Case | None:
    d = info.definition
    seq = list(inputs[0]) if info.variadic else list(inputs)
    nondiff = set(d.nondiff)
    f64 = [np.asarray(a, dtype=np.float64) if _is_float_array(a) else a for a in seq]
    diff_pos = {i for i, a in enumerate(f64) if _is_float_array(a) and i not in nondiff}
    if not diff_pos:
        return None
    tmp = Case(info, dict(params), [], False, f"{info.name}[{k}]")
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(tmp.forward(*f64))
    except Exception:  # noqa: BLE001 - a sample its own forward refuses is not ours to use
        return None
    if out.dtype != np.float64 or not np.isfinite(out).all():
        return None  # lossy casts (astype float32) or samples outside the domain
    elementwise = (not info.variadic and info.nargs in (1, 2) and not nondiff
                   and all(_is_float_array(a) or isinstance(a, (int, float))
                           for a in f64)
                   and _check_elementwise(tmp.forward, f64, diff_pos))
    args = []
    for i, a in enumerate(f64):
        if i not in diff_pos:
            args.append(Arg("const", a))
        elif d.samples is None:
            lo, hi = d.domain
            pad = SHRINK * (hi - lo)
            args.append(Arg("interval", lo=lo + pad, hi=hi - pad))
        elif elementwise:
            args.append(Arg("pool", np.unique(a.ravel())))
        else:
            args.append(Arg("sample", a))
    tmp.args = args
    tmp.elementwise = elementwise
    return tmp


def _twice_differentiable(case: Case) -> bool:
    """Try ``create_graph`` once on the case's own sample values."""
    rng = np.random.default_rng(3)
    leaves = []
    xs = []
    for a in case.args:
        if a.kind == "const":
            xs.append(a.values)
            continue
        if a.kind == "interval":
            v = rng.uniform(a.lo, a.hi, (3,))
        elif a.kind == "pool":
            v = rng.choice(a.values, (3,))
        else:
            v = np.array(a.values, dtype=np.float64)
        t = tg.tensor(v, requires_grad=True)
        leaves.append(t)
        xs.append(t)
    try:
        out = case.call(*xs)
        (out * out).sum().backward(create_graph=True)
        total = None
        for t in leaves:
            if isinstance(t.grad, tg.Tensor):
                s = (t.grad * t.grad).sum()
                total = s if total is None else total + s
        if total is not None and total.requires_grad:
            for t in leaves:
                t.grad = None
            total.backward()
    except Exception as exc:  # noqa: BLE001 - reported by a test, not at collection
        case.notes.append(f"{type(exc).__name__}: {exc}")
        return False
    return True


def build_catalogue() -> list[Case]:
    cases: list[Case] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in tg.list_ops():
            if not info.differentiable:
                continue
            for k, (inputs, params) in enumerate(op_samples(info, np.random.default_rng(0))):
                case = _classify(info, inputs, params, k)
                if case is not None:
                    case.twice = _twice_differentiable(case)
                    cases.append(case)
    return cases


PLUGINS_DIR = Path(__file__).resolve().parents[1] / "plugins"
#: (plugin name, source folder, module) of the plugin distributions in this repository
SHIPPED_PLUGINS = [
    ("conv", PLUGINS_DIR / "tapegrad-conv" / "src", "tapegrad_conv.plugin"),
    ("scipy", PLUGINS_DIR / "tapegrad-scipy" / "src", "tapegrad_scipy.plugin"),
]


@contextlib.contextmanager
def shipped_plugins():
    """The repository's plugin distributions registered while inside, if not installed.

    Its ops (Python and YAML) then take part in the programs, as its own test suite
    registers it; whatever this adds is removed on the way out.
    """
    added = []
    for name, src, module in SHIPPED_PLUGINS:
        if tg.plugin_manager().has_plugin(name) or not src.is_dir():
            continue
        if str(src) not in sys.path:
            sys.path.insert(0, str(src))
        try:
            tg.register_plugin(importlib.import_module(module), name=name)
            added.append(name)
        except ImportError:
            pass
    try:
        yield
    finally:
        for name in added:
            if tg.plugin_manager().has_plugin(name):
                tg.unregister_plugin(name)


@pytest.fixture(autouse=True, scope="module")
def _registered_plugins():
    with shipped_plugins():
        yield


with shipped_plugins():
    CATALOGUE = build_catalogue()
BY_LABEL = {c.label: c for c in CATALOGUE}
ELEMENTWISE = [c for c in CATALOGUE if c.elementwise]
STRUCTURED = [c for c in CATALOGUE if not c.elementwise]


# ----------------------------------------------------------------------- programs


@dataclass
class Program:
    """Leaves and straight-line code; node ``i`` is the value of instruction ``i``.

    ``code`` holds ``("leaf", leaf_index)`` and ``("op", case, feeds)``; a feed is
    ``(arg, node, base_node, const)``: the upstream node driving the input, the anchor
    leaf it is perturbed around (``"pool"``/``"sample"`` args) or the constant.
    """

    leaves: list[np.ndarray] = field(default_factory=list)
    code: list[tuple] = field(default_factory=list)
    probes: list[np.ndarray] = field(default_factory=list)

    @property
    def cases(self) -> list[Case]:
        return [ins[1] for ins in self.code if ins[0] == "op"]

    def __repr__(self) -> str:
        return "Program(\n" + self.describe() + "\n)"

    def _repr_pretty_(self, p, cycle) -> None:  # hypothesis's printer
        p.text(repr(self))

    def describe(self) -> str:
        lines = []
        for i, ins in enumerate(self.code):
            if ins[0] == "leaf":
                lines.append(f"%{i} = leaf{self.leaves[ins[1]].shape}")
            else:
                _, case, feeds = ins
                parts = [repr(c) if a.kind == "const" else
                         f"{a.kind}(%{v}" + (f", at %{b})" if b is not None else ")")
                         for a, v, b, c in feeds]
                lines.append(f"%{i} = {case.label}({', '.join(parts)}, **{case.params})")
        return "\n".join(lines)

    def run(self, leaves: list[Any], apply=None, dtype=None,
            convert=None) -> tuple[Any, list[Any]]:
        """``(objective, op outputs)`` for leaf values ``leaves`` (Tensors, or another
        library's arrays when ``apply(case, inputs)`` runs the ops and ``convert`` turns
        constant ndarrays into that library's arrays)."""
        nodes: list[Any] = []
        outs = []
        for ins in self.code:
            if ins[0] == "leaf":
                nodes.append(leaves[ins[1]])
                continue
            _, case, feeds = ins
            xs = feed_values(feeds, nodes, dtype, convert)
            out = case.call(*xs) if apply is None else apply(case, xs)
            nodes.append(out)
            outs.append(out)
        total = None
        for out, probe in zip(outs, self.probes, strict=True):
            p = probe if dtype is None else probe.astype(dtype)
            if convert is not None:
                p = convert(p)
            term = (out * p).sum()
            total = term if total is None else total + term
        return total, outs


def feed_values(feeds, nodes, dtype=None, convert=None) -> list[Any]:
    xs = []
    for arg, v_node, base_node, const in feeds:
        if arg.kind == "const":
            if dtype is not None and _is_float_array(const):
                const = const.astype(dtype)
            xs.append(const if convert is None else convert(const))
            continue
        v = nodes[v_node]
        if arg.kind == "interval":
            xs.append(arg.lo + (arg.hi - arg.lo) * 0.5 * (v.tanh() + 1.0))
            continue
        base = nodes[base_node]
        if arg.kind == "sample" or \
                np.broadcast_shapes(tuple(v.shape), tuple(base.shape)) != tuple(base.shape):
            # a sample moves as a whole: its ties stay ties and its gaps stay gaps
            v = v.sum()
        xs.append(base + PERTURB * v.tanh())
    return xs


def random_shape(rng: np.random.Generator) -> tuple[int, ...]:
    """0-d (about 1 in 4), size-0 (about 1 in 8) and small shapes."""
    ndim = int(rng.choice([0, 1, 2, 3], p=[0.25, 0.3, 0.3, 0.15]))
    if ndim and rng.random() < 0.12:
        shape = list(rng.integers(1, 4, ndim))
        shape[int(rng.integers(ndim))] = 0
        return tuple(int(s) for s in shape)
    return tuple(int(s) for s in rng.integers(1, 4, ndim))


def partner_shape(rng: np.random.Generator, shape: tuple) -> tuple:
    """A shape that broadcasts with ``shape``: equal, some sides 1, a suffix, or longer."""
    mode = rng.choice(["same", "ones", "suffix", "prefix"])
    if mode == "same":
        return shape
    if mode == "ones":
        return tuple(1 if rng.random() < 0.5 else s for s in shape)
    if mode == "suffix":
        return shape[int(rng.integers(0, len(shape) + 1)):]
    return (int(rng.integers(1, 3)),) + shape


def _case(c: Case | str) -> Case:
    return BY_LABEL[c] if isinstance(c, str) else c


def _by_op(cases: list[Case]) -> dict[str, list[Case]]:
    grouped: dict[str, list[Case]] = {}
    for c in cases:
        grouped.setdefault(c.name, []).append(c)
    return grouped


@st.composite
def programs(draw, elem=None, struct=None, min_steps=2, max_steps=6):
    """A random program over the catalogue (``elem``/``struct``: case labels to use).

    Hypothesis draws the number of steps and a seed; the seed drives every other choice
    (ops picked uniformly by name, then one of their cases; inputs biased towards the
    newest node so that chains get deep), which spreads a small example budget over
    the whole registry instead of its first entries.
    """
    elem = _by_op(ELEMENTWISE if elem is None else [_case(c) for c in elem])
    struct = _by_op(STRUCTURED if struct is None else [_case(c) for c in struct])
    n_steps = draw(st.integers(min_steps, max_steps), label="steps")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))
    prog = Program()
    values: list[np.ndarray] = []  # every node's value, computed as the program grows

    def new_leaf(value: np.ndarray) -> int:
        prog.leaves.append(np.asarray(value, dtype=np.float64))
        prog.code.append(("leaf", len(prog.leaves) - 1))
        values.append(prog.leaves[-1])
        return len(values) - 1

    def some_node() -> int:
        return len(values) - 1 if rng.random() < 0.6 else int(rng.integers(len(values)))

    new_leaf(rng.uniform(-2, 2, random_shape(rng)))
    kinds = [k for k, pool in (("elem", elem), ("struct", struct)) if pool]
    for _ in range(n_steps):
        mark = (len(prog.leaves), len(prog.code), len(values))
        kind = kinds[0] if len(kinds) == 1 else ("struct" if rng.random() < 0.4 else "elem")
        pool = elem if kind == "elem" else struct
        by_name = pool[sorted(pool)[int(rng.integers(len(pool)))]]
        case = by_name[int(rng.integers(len(by_name)))]
        feeds = []
        first = some_node()
        used = False
        for arg in case.args:
            if arg.kind == "const":
                feeds.append((arg, None, None, arg.values))
                continue
            if kind == "struct":
                node = some_node()
            elif not used:
                node = first
            else:
                want = partner_shape(rng, values[first].shape)
                same = [j for j, v in enumerate(values) if v.shape == want]
                if same and rng.random() < 0.5:
                    node = same[int(rng.integers(len(same)))]
                else:
                    node = new_leaf(rng.uniform(-2, 2, want))
            used = True
            base = None
            if arg.kind == "pool":
                shape = values[node].shape
                base = new_leaf(rng.choice(arg.values, shape) if shape
                                else np.asarray(rng.choice(arg.values)))
            elif arg.kind == "sample":
                base = new_leaf(np.array(arg.values, copy=True))
            feeds.append((arg, node, base, None))
        try:
            with tg.no_grad(), np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = case.call(*feed_values(feeds, [tg.tensor(v) for v in values]))
            ok = np.isfinite(out.data).all() and out.data.dtype.kind == "f"
        except Exception:  # noqa: BLE001 - e.g. a domain-only op that needs other shapes
            ok = False
        if not ok:  # roll the step back
            del prog.leaves[mark[0]:], prog.code[mark[1]:], values[mark[2]:]
            continue
        prog.code.append(("op", case, feeds))
        values.append(out.data)
    assume(prog.cases)  # every step refused: rare (domain-only ops with fixed shapes)
    prog.probes = [rng.uniform(0.5, 1.5, values[i].shape)
                   for i, ins in enumerate(prog.code) if ins[0] == "op"]
    return prog


# ----------------------------------------------------------------------- checks


def objective(prog: Program, leaves: list[np.ndarray]) -> tuple[float, float]:
    """Objective value and the sum of its terms' absolute values (a rounding scale)."""
    with tg.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, outs = prog.run([tg.tensor(v) for v in leaves])
    scale = sum(float(np.abs(o.data * p).sum()) for o, p in zip(outs, prog.probes,
                                                                strict=True))
    return float(total.data), scale


def fd_gradients(prog: Program, leaves: list[np.ndarray], eps: float = 1e-6,
                 max_coords: int = 24):
    """Central finite differences of the objective w.r.t. the leaves' elements.

    A leaf with more than ``max_coords`` elements is checked on that many elements
    chosen at random (the others are NaN, and skipped by :func:`assert_close`): the
    cost stays bounded for the conv plugin's 4-d samples.
    """
    # C order: the element loop writes through reshape(-1), a view only of C arrays
    base = [np.array(v, dtype=np.float64, order="C") for v in leaves]
    rng = np.random.default_rng(len(base))
    grads = []
    for v in base:
        g = np.full(v.shape, np.nan)
        flat, gflat = v.reshape(-1), g.reshape(-1)
        coords = range(flat.size) if flat.size <= max_coords else \
            rng.choice(flat.size, max_coords, replace=False)
        for i in coords:
            old = flat[i]
            flat[i] = old + eps
            up, _ = objective(prog, base)
            flat[i] = old - eps
            down, _ = objective(prog, base)
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def reverse_gradients(prog: Program, leaves: list[np.ndarray], dtype=np.float64,
                      create_graph: bool = False):
    ts = [tg.tensor(np.asarray(v, dtype=dtype), requires_grad=True) for v in leaves]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, _ = prog.run(ts, dtype=dtype)
        total.backward(create_graph=create_graph)
    grads = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in ts]
    return total, ts, grads


def assert_close(analytic, numeric, rtol, atol, what, prog):
    for k, (a, n) in enumerate(zip(analytic, numeric, strict=True)):
        a = np.asarray(a.data if isinstance(a, tg.Tensor) else a, dtype=np.float64)
        assert a.shape == n.shape, f"{what}: leaf {k} gradient shape {a.shape} != {n.shape}"
        checked = ~np.isnan(n)  # finite differences may cover a subset of a big leaf
        err = np.where(checked, np.abs(a - np.where(checked, n, 0)), 0.0)
        bad = checked & ~(err <= atol + rtol * np.abs(np.where(checked, n, 0)))
        if bad.any():
            i = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), err.shape)
            raise AssertionError(
                f"{what}: leaf {k} (node of shape {a.shape}) disagrees at {i}: analytic "
                f"{a[i]!r}, reference {n[i]!r} (tolerance {atol + rtol * abs(n[i]):.3g})\n"
                f"program:\n{prog.describe()}"
            )


def check_reverse_float64(prog: Program) -> None:
    _, _, grads = reverse_gradients(prog, prog.leaves)
    numeric = fd_gradients(prog, prog.leaves)
    _, scale = objective(prog, prog.leaves)
    assert_close(grads, numeric, 1e-5, 1e-9 * (1 + scale), "float64 reverse vs FD", prog)


def check_reverse_float32(prog: Program) -> None:
    leaves32 = [v.astype(np.float32) for v in prog.leaves]
    total, ts, grads = reverse_gradients(prog, leaves32, dtype=np.float32)
    for t, g in zip(ts, grads, strict=True):
        assert g.dtype == np.float32, f"float32 leaf got a {g.dtype} gradient"
        assert g.shape == t.shape
    if not any(c.name == "astype" for c in prog.cases):
        assert total.dtype == np.float32, f"float32 program computed in {total.dtype}"
    at64 = [v.astype(np.float64) for v in leaves32]
    numeric = fd_gradients(prog, at64)
    biggest = max([float(np.nanmax(np.abs(n))) for n in numeric
                   if n.size and not np.isnan(n).all()] + [1.0])
    assert_close(grads, numeric, 2e-3, 2e-4 * biggest, "float32 reverse vs float64 FD", prog)


# ----------------------------------------------------------------------- the tests


def _complex_valued(info) -> bool:
    """Ops whose samples all give complex outputs (np.fft.fft of a real input): the
    programs here are real-valued, so these are checked by the gradient checker alone."""
    outs = []
    for inputs, params in op_samples(info, np.random.default_rng(0)):
        args = (list(inputs[0]),) if info.variadic else inputs
        outs.append(np.iscomplexobj(_joined(info.definition.forward(
            *args, **{**info.params, **params}), np.concatenate)))
    return bool(outs) and all(outs)


def test_catalogue_covers_every_differentiable_op():
    """Every differentiable op (built-in, plugin, YAML) takes part in random programs."""
    covered = {c.name for c in CATALOGUE}
    missing = [i.name for i in tg.list_ops() if i.differentiable and i.name not in covered
               and not _complex_valued(i)]
    assert not missing, f"ops whose samples/domain gave no usable case: {missing}"
    assert ELEMENTWISE and STRUCTURED


def test_only_differentiability_errors_stop_second_order():
    """Ops that cannot be differentiated twice say so with DifferentiabilityError."""
    broken = [(c.label, c.notes[0]) for c in CATALOGUE if not c.twice
              and not c.notes[0].startswith("DifferentiabilityError")]
    assert not broken, f"second order failed with an unexpected error: {broken}"


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.label for c in CATALOGUE])
def test_each_case_in_a_small_program(case):
    """Every case, deterministically: tanh(leaf) -> op -> objective, both dtypes."""
    prog = programs(elem=[case.label] if case.elementwise else [],
                    struct=[] if case.elementwise else [case.label], min_steps=1, max_steps=1)
    example = _example(prog)
    check_reverse_float64(example)
    check_reverse_float32(example)


def _example(strategy):
    """One deterministic draw from a strategy (outside @given)."""
    found = []

    @settings(max_examples=1, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def grab(p):
        found.append(p)

    grab()
    return found[0]


@budget(120)
@given(programs())
def test_reverse_mode_matches_finite_differences_float64(prog):
    check_reverse_float64(prog)


@budget(60)
@given(programs())
def test_reverse_mode_float32_matches_finite_differences(prog):
    check_reverse_float32(prog)


@budget(60)
@given(programs(), st.integers(0, 2**32 - 1))
def test_forward_mode_matches_reverse_mode(prog, seed):
    check_forward_vs_reverse(prog, seed)


def check_forward_vs_reverse(prog: Program, seed: int) -> None:
    """``<J t, u> == <t, J^T u>`` with ``tg.jvp`` and ``tg.vjp`` on the vector of
    weighted op outputs, for random ``t`` and ``u``."""
    rng = np.random.default_rng(seed)

    def f(*leaves):
        _, outs = prog.run(list(leaves))
        return tg.ops.concatenate([(o * p).reshape(-1) for o, p in
                                   zip(outs, prog.probes, strict=True)])

    tangents = [rng.standard_normal(v.shape) for v in prog.leaves]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, jv = tg.jvp(f, tuple(prog.leaves), tuple(tangents))
        u = rng.standard_normal(np.shape(out))
        out2, vjp_fn = tg.vjp(f, *prog.leaves)
        cot = vjp_fn(u)
    np.testing.assert_allclose(np.asarray(out2), np.asarray(out), rtol=1e-12, atol=1e-12)
    assert np.shape(jv) == np.shape(out)
    lhs = float(np.sum(np.asarray(jv) * u))
    rhs = float(sum(np.sum(t * np.asarray(c)) for t, c in zip(tangents, cot, strict=True)))
    scale = float(np.sum(np.abs(np.asarray(jv) * u))) + float(sum(
        np.sum(np.abs(t * np.asarray(c))) for t, c in zip(tangents, cot, strict=True)))
    assert abs(lhs - rhs) <= 1e-9 * (1 + scale), (
        f"<jvp, u> = {lhs!r} but <t, vjp(u)> = {rhs!r}\nprogram:\n{prog.describe()}")


def _has_ties(case: Case) -> bool:
    """A sample with repeated values (max/min ties): its gradient jumps when the
    values move apart, so finite differences of the gradient are meaningless there."""
    return any(a.kind == "sample" and np.unique(a.values).size < np.size(a.values)
               for a in case.args)


TWICE_ELEM = [c.label for c in ELEMENTWISE if c.twice and not _has_ties(c)]
TWICE_STRUCT = [c.label for c in STRUCTURED if c.twice and not _has_ties(c)]


@budget(60)
@given(programs(elem=TWICE_ELEM, struct=TWICE_STRUCT, max_steps=4), st.integers(0, 2**32 - 1))
def test_second_order_matches_finite_differences_of_the_first(prog, seed):
    check_second_order(prog, seed)


def check_second_order(prog: Program, seed: int) -> None:
    """Hessian-vector products by ``create_graph`` against central differences of the
    reverse-mode gradient along the same random direction."""
    rng = np.random.default_rng(seed)
    w = [rng.standard_normal(v.shape) for v in prog.leaves]
    _, ts, grads = reverse_gradients(prog, prog.leaves, create_graph=True)
    total = None
    for g, wi in zip(grads, w, strict=True):
        if isinstance(g, tg.Tensor):
            term = (g * wi).sum()
            total = term if total is None else total + term
    for t in ts:
        t.grad = None
    if total is not None and total.requires_grad:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            total.backward()
    hvp = [t.grad if t.grad is not None else np.zeros_like(t.data) for t in ts]
    eps = 1e-5
    up = reverse_gradients(prog, [v + eps * wi for v, wi in zip(prog.leaves, w, strict=True)])[2]
    down = reverse_gradients(prog, [v - eps * wi for v, wi in zip(prog.leaves, w,
                                                                   strict=True)])[2]
    numeric = [(a - b) / (2 * eps) for a, b in zip(up, down, strict=True)]
    _, scale = objective(prog, prog.leaves)
    assert_close(hvp, numeric, 1e-4, 1e-7 * (1 + scale), "Hessian-vector product vs FD", prog)


# ----------------------------------------------------------------------- the harness can fail


def _broken_ops():
    from tapegrad.registry import lift

    cos_wrong_grad = lift("prop_cos_wrong_grad")
    return [
        # reverse mode off by 0.1%
        tg.OpDef("prop_sin_wrong_vjp", np.sin, lambda g, out, x: g * np.cos(x) * 1.001),
        # forward mode off by 1%, reverse mode right
        tg.OpDef("prop_sin_wrong_jvp", np.sin, lambda g, out, x: g * np.cos(x),
                 jvp=lambda t, out, x: t[0] * np.cos(x) * 1.01),
        # first derivative right, second wrong: its vjp uses an op whose vjp is wrong
        tg.OpDef("prop_cos_wrong_grad", np.cos, lambda g, out, x: -g * np.sin(x) * 1.01),
        tg.OpDef("prop_sin_wrong_hessian", np.sin,
                 lambda g, out, x: g * cos_wrong_grad(x)),
    ]


@pytest.fixture
def broken_cases():
    class Broken:
        @staticmethod
        @tg.hookimpl
        def tapegrad_ops():
            return _broken_ops()

    name = tg.register_plugin(Broken(), name="prop-broken-ops")
    try:
        cases = {}
        for op in ("prop_sin_wrong_vjp", "prop_sin_wrong_jvp", "prop_sin_wrong_hessian"):
            info = tg.get_op(op)
            inputs, params = op_samples(info, np.random.default_rng(0))[0]
            cases[op] = _classify(info, inputs, params, 0)
        yield cases
    finally:
        tg.unregister_plugin(name)


def test_the_checks_catch_wrong_rules(broken_cases):
    """Each check fails on an op with a wrong rule of its kind, and passes the others."""
    progs = {op: _example(programs(elem=[case], struct=[], min_steps=3, max_steps=3))
             for op, case in broken_cases.items()}
    for op, prog in progs.items():
        assert op in {c.name for c in prog.cases}, prog.describe()
    with pytest.raises(AssertionError, match="float64 reverse vs FD"):
        check_reverse_float64(progs["prop_sin_wrong_vjp"])
    check_reverse_float64(progs["prop_sin_wrong_jvp"])
    check_reverse_float64(progs["prop_sin_wrong_hessian"])
    with pytest.raises(AssertionError, match="jvp"):
        check_forward_vs_reverse(progs["prop_sin_wrong_jvp"], 0)
    check_forward_vs_reverse(progs["prop_sin_wrong_hessian"], 0)
    with pytest.raises(AssertionError, match="Hessian-vector product"):
        check_second_order(progs["prop_sin_wrong_hessian"], 0)
    check_second_order(progs["prop_sin_wrong_jvp"], 0)
