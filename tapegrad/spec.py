"""YAML op specs: ops declared as formulas over registered ops, compiled, never eval'ed.

A spec file (a regular file of at most :data:`MAX_SPEC_BYTES`, 1 MB) is read with a safe
YAML loader (``yaml.CSafeLoader`` when libyaml is there, else ``yaml.SafeLoader``;
duplicate keys are refused, merge keys resolved in linear time, the expansion of aliases
bounded), checked field by field (names are ASCII identifiers), and each
formula is compiled by :mod:`tapegrad.formula` into a tree of closures that call
registered ops: on plain
ndarrays a call runs the op's raw NumPy forward (the fast path); when any value is a
:class:`~tapegrad.Tensor` (a vjp run under ``create_graph=True``) it runs the op's
recorded caller, so YAML ops can be differentiated to any order. Nothing is ever handed
to ``eval``, ``exec`` or ``compile``; every problem raises :class:`~tapegrad.SpecError`
naming the file, the op, the field and the offending text (``ast.parse`` only builds a
syntax tree; no code object is ever made). The format is documented at
the top of every shipped spec file (``specs/*.yaml``) and in the README.

Entry point: :func:`compile_spec_file`, called by the registry for every file a
``tapegrad_spec_files`` hook hands over (compiled once per registry build). Registering
one file at run time (``tg.load_spec``) is in :mod:`tapegrad.spec_files`.
"""

from __future__ import annotations

import importlib
import keyword
import math
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .formula import (
    MAX_DEPTH,
    MAX_FORMULA_LENGTH,
    RESERVED,
    ZERO,
    Callee,
    Compiler,
    Where,
    close_matches,
    fail,
)
from .lazy import foreign
from .opdef import OpDef, OpInfo
from .tensor import Tensor

__all__ = ["compile_spec_file", "compile_spec_source", "compile_spec_data",
           "OP_FIELDS", "UFUNC_MODULES", "MAX_FORMULA_LENGTH", "MAX_DEPTH"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The keys an op entry may have.
OP_FIELDS = ("args", "params", "forward", "numpy", "ufunc", "vjp", "jvp", "nondiff",
             "method", "domain", "samples", "doc", "complex")
#: The only modules a ``ufunc:`` field may name (``ufunc: scipy.special.gammaln``). Spec
#: files never import anything else: a name outside these is refused before any import.
UFUNC_MODULES = ("numpy", "scipy.special")
_MAX_YAML_DEPTH = 32
_MAX_SAMPLE_SIZE = 10_000  # elements of one sample, and of all the samples of an op
_MAX_SAMPLES = 100  # samples of an op, the default ones included
#: Largest spec file read, in bytes (1 MB; the shipped ones are a few KB).
MAX_SPEC_BYTES = 1_000_000
# ----------------------------------------------------------------------------- YAML


_yaml_cache: dict[str, tuple[tuple[int, int], Any]] = {}


def file_problem(path: Path, st: os.stat_result | None = None) -> str | None:
    """Why ``path`` cannot be a spec file (missing, a directory, not a regular file such
    as a FIFO or a device, over :data:`MAX_SPEC_BYTES`), or ``None``. Never opens it."""
    if st is None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return "cannot read the spec file (no such file)"
        except OSError as exc:
            return f"cannot read the spec file ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_SPEC_BYTES:
        return f"spec file too large ({st.st_size} bytes; the limit is {MAX_SPEC_BYTES})"
    return None


def _read_yaml(path: Path) -> Any:
    """The parsed content of a spec file (cached by modification time and size).

    Only a regular file of at most :data:`MAX_SPEC_BYTES` is read: ``/dev/zero`` or a
    FIFO is refused without blocking (it is opened non-blocking and checked on the open
    descriptor)."""
    key = str(path)
    problem = file_problem(path)
    if problem is not None:
        raise fail(Where(key), problem)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(fd)
            problem = file_problem(path, st)  # it may have been swapped since
            if problem is not None:
                raise fail(Where(key), problem)
            stamp = (st.st_mtime_ns, st.st_size)
            hit = _yaml_cache.get(key)
            if hit is not None and hit[0] == stamp:
                return hit[1]
            raw = f.read(MAX_SPEC_BYTES + 1)  # it may have grown since
        if len(raw) > MAX_SPEC_BYTES:
            raise fail(Where(key), f"spec file too large (the limit is {MAX_SPEC_BYTES} "
                                   "bytes)")
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(Where(key), f"cannot read the spec file ({exc})") from None
    data = _parse_yaml(text, key)
    _yaml_cache[key] = (stamp, data)
    return data


def _parse_yaml(text: str, path: str) -> Any:
    """``safe_load`` semantics (plain data only), refusing duplicate keys and deep nesting."""
    where = Where(path)
    try:
        loader = _Loader(text)
    except Exception as exc:  # libyaml refuses some inputs at construction
        raise fail(where, f"malformed YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _construct(loader, node, (), _Build(where), where)
    except yaml.YAMLError as exc:
        raise fail(where, f"malformed YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise fail(where, "malformed YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


_BUILDING = object()
_PLAIN_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Most mapping entries and list items built from one file, aliases and merges expanded.
_MAX_YAML_ENTRIES = 200_000


class _Build:
    """What one document's construction shares: built collections by node, mappings
    already flattened, and how many entries have been visited (aliases and merge keys
    can make a small file expand exponentially: each visit counts)."""

    __slots__ = ("memo", "flattened", "visits", "where")

    def __init__(self, where: Where) -> None:
        self.memo: dict[int, Any] = {}
        self.flattened: set[int] = set()
        self.visits = 0
        self.where = where

    def visit(self, n: int, trail: tuple) -> None:
        self.visits += n
        if self.visits > _MAX_YAML_ENTRIES:
            raise fail(_context(self.where, trail), "malformed YAML: more than "
                       f"{_MAX_YAML_ENTRIES} entries once aliases and merge keys (<<) are "
                       "expanded")


def _flatten(build: _Build, node: Any, trail: tuple) -> None:
    """Resolve the merge keys (``<<``) of a mapping node, as ``SafeLoader`` does, but in
    time linear in the document: each node is flattened once, and a pair merged twice
    (``<<: [*a, *a]``) is kept once. (PyYAML up to 6.0.3 is exponential here.)"""
    if id(node) in build.flattened:
        return
    build.flattened.add(id(node))
    merged: list[Any] = []
    own: list[Any] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            if key_node.tag == "tag:yaml.org,2002:value":
                key_node.tag = "tag:yaml.org,2002:str"
            own.append((key_node, value_node))
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) \
            else [value_node]
        for sub in sources:
            if not isinstance(sub, yaml.MappingNode):
                raise fail(_context(build.where, trail), "malformed YAML: a merge key (<<) "
                           "takes a mapping or a list of mappings")
            _flatten(build, sub, trail)
            merged.extend(sub.value)
    if merged:
        seen: set[int] = set()
        unique = []
        for pair in merged:
            if id(pair) not in seen:
                seen.add(id(pair))
                unique.append(pair)
        build.visit(len(unique), trail)
        node.value = unique + own


def _construct(loader: Any, node: Any, trail: tuple, build: _Build, where: Where) -> Any:
    if len(trail) > _MAX_YAML_DEPTH:
        raise fail(_context(where, trail), "YAML nested too deeply (or recursive anchors)")
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)  # refuses unknown tags
    if node.tag not in _PLAIN_TAGS:
        raise fail(_context(where, trail), "malformed YAML: unsupported tag", node.tag,
                    "spec files hold plain mappings, lists and scalars")
    memo = build.memo
    if id(node) in memo:
        done = memo[id(node)]
        if done is _BUILDING:
            raise fail(_context(where, trail), "malformed YAML: recursive anchor")
        return done
    memo[id(node)] = _BUILDING
    if isinstance(node, yaml.SequenceNode):
        build.visit(len(node.value), trail)
        out_list = [_construct(loader, v, trail + (i,), build, where)
                    for i, v in enumerate(node.value)]
        memo[id(node)] = out_list
        return out_list
    if isinstance(node, yaml.MappingNode):
        _flatten(build, node, trail)
        build.visit(len(node.value), trail)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, trail, build, where)
            try:
                hash(key)
            except TypeError:
                raise fail(_context(where, trail), "a mapping key must be a plain value",
                            key) from None
            if key in out:
                line = key_node.start_mark.line + 1
                raise fail(_context(where, trail), f"name defined twice (line {line})", key,
                            "each key of a mapping may appear once")
            out[key] = _construct(loader, value_node, trail + (key,), build, where)
        memo[id(node)] = out
        return out
    raise fail(where, f"malformed YAML: unexpected node {type(node).__name__}")


def _context(where: Where, trail: tuple) -> Where:
    """Name the op and field a YAML position belongs to (``ops.NAME.FIELD...``)."""
    if len(trail) >= 2 and trail[0] == "ops":
        field = ".".join(str(t) for t in trail[2:]) or None
        return Where(where.path, str(trail[1]), field)
    return Where(where.path, None, ".".join(str(t) for t in trail) or None)


# ----------------------------------------------------------------------------- op specs


def _identifier(where: Where, value: Any, what: str) -> str:
    # ASCII only: Python compares identifiers after NFKC normalisation, so a fullwidth
    # 'ｅｘｐ' would silently be the op exp in a formula (and escape the duplicate check).
    if isinstance(value, str) and value.isidentifier() and not value.isascii():
        raise fail(where, f"{what} must be an ASCII identifier", value,
                   f"non-ASCII character {_first_non_ascii(value)}")
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise fail(where, f"{what} must be a Python identifier", value)
    if value.startswith("__"):
        raise fail(where, f"{what} may not be a dunder name", value)
    return value


def _first_non_ascii(text: str) -> str:
    c = next(c for c in text if not c.isascii())
    return f"{c!r} (U+{ord(c):04X})"


def _number(where: Where, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise fail(where, "expected a finite number", v)
    return float(v)


def _interval(where: Where, v: Any) -> list[tuple[float, float]]:
    """``[lo, hi]`` or a list of them (a union, e.g. to stay away from a kink)."""
    pairs = v if isinstance(v, list) and v and all(isinstance(x, list) for x in v) else [v]
    out: list[tuple[float, float]] = []
    for p in pairs:
        if not (isinstance(p, list) and len(p) == 2):
            raise fail(where, "expected an interval [lo, hi] or a list of intervals", v,
                        "e.g. domain: [0.1, 3] or domain: [[-2, -0.2], [0.2, 2]]")
        lo, hi = _number(where, p[0]), _number(where, p[1])
        if not lo < hi:
            raise fail(where, "an interval [lo, hi] needs lo < hi", p)
        out.append((lo, hi))
    return out


def _ufunc_path(where: Where, value: Any) -> tuple[str, str]:
    """``MODULE.NAME`` split, each part checked; the module must be in UFUNC_MODULES."""
    allowed = ", ".join(UFUNC_MODULES)
    if not isinstance(value, str) or "." not in value:
        raise fail(where, "expected MODULE.NAME of a ufunc", value,
                    f"e.g. ufunc: scipy.special.gammaln (modules: {allowed})")
    module, _, name = value.rpartition(".")
    if module not in UFUNC_MODULES:
        raise fail(where, "module not allowed", module,
                    close_matches(module, UFUNC_MODULES) or f"allowed modules: {allowed}")
    if not name.isidentifier() or name.startswith("_"):
        raise fail(where, "expected the name of a ufunc", name)
    return module, name


def _allowed_module(where: Where, module: str) -> Any:
    """Import ``module``, which the caller checked is one of UFUNC_MODULES."""
    if module not in UFUNC_MODULES:  # never import a name that is not on the list
        raise fail(where, "module not allowed", module)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise fail(where, f"cannot import {module} ({exc})", module,
                    f"install {module.partition('.')[0]}") from None


class _Spec:
    """One op entry, validated; forward compiled in pass 1, rules in pass 2."""

    def __init__(self, name: str, raw: Any, where: Where) -> None:
        self.where = where
        self.name = name
        if not isinstance(raw, dict):
            raise fail(where, "an op entry must be a mapping of fields", raw,
                        f"fields: {', '.join(OP_FIELDS)}")
        for key in raw:
            if key not in OP_FIELDS:
                raise fail(where.at(str(key)), "unknown field", key,
                            close_matches(key, OP_FIELDS) or f"fields: {', '.join(OP_FIELDS)}")
        self.raw = raw
        self.args = self._args()
        self.params = self._params()
        self.nondiff = self._nondiff()
        self.diff = [a for a in self.args if a not in self.nondiff]
        self.method = self._method()
        self.doc = self._doc()
        self.ufunc = self._ufunc()
        if "forward" not in raw and self.ufunc is None:
            raise fail(where.at("forward"), "missing field", "forward",
                        "give a forward formula (or numpy: NAME of a NumPy ufunc, or "
                        "ufunc: scipy.special.NAME)")
        self.forward: Callable[..., Any] | None = None

    # -- fields
    def _args(self) -> list[str]:
        w = self.where.at("args")
        args = self.raw.get("args")
        if args is None:
            raise fail(w, "missing field", "args", "list the op's array inputs: args: [x]")
        if not isinstance(args, list) or not args:
            raise fail(w, "expected a non-empty list of names", args)
        seen: list[str] = []
        for a in args:
            _identifier(w, a, "an arg name")
            if a in RESERVED:
                raise fail(w, f"{a!r} is reserved (upstream gradient / output)", a)
            if a in seen:
                raise fail(w, "name defined twice", a)
            seen.append(a)
        return seen

    def _params(self) -> dict[str, Any]:
        w = self.where.at("params")
        params = self.raw.get("params", {})
        if params is None:
            return {}
        if not isinstance(params, dict):
            raise fail(w, "expected a mapping of param names to defaults", params)
        out: dict[str, Any] = {}
        for k, v in params.items():
            _identifier(w, k, "a param name")
            if k in RESERVED:
                raise fail(w, f"{k!r} is reserved (upstream gradient / output)", k)
            if k in self.args:
                raise fail(w, "name defined twice (an arg and a param)", k)
            if isinstance(v, list):
                if not all(isinstance(x, (int, float)) for x in v):
                    raise fail(w.at(f"params.{k}"), "a list default must hold numbers", v)
                v = tuple(v)
            elif v is not None and not isinstance(v, (int, float, str)):
                raise fail(w.at(f"params.{k}"), "a default must be a number, a bool, a "
                            "string, null or a list of numbers", v)
            out[k] = v
        return out

    def _nondiff(self) -> list[str]:
        w = self.where.at("nondiff")
        nd = self.raw.get("nondiff", [])
        if nd is None:
            return []
        if isinstance(nd, str):
            nd = [nd]
        if not isinstance(nd, list):
            raise fail(w, "expected a list of arg names", nd)
        seen: list[str] = []
        for a in nd:
            if a not in self.args:
                raise fail(w, "not an arg of this op", a,
                            close_matches(a, self.args) or f"args: {self.args}")
            if a in seen:
                raise fail(w, "name defined twice", a)
            seen.append(a)
        return seen

    def _method(self) -> bool | str:
        m = self.raw.get("method", False)
        if isinstance(m, bool):
            return m
        if isinstance(m, str):
            return _identifier(self.where.at("method"), m, "a method name")
        raise fail(self.where.at("method"), "expected true, false or a method name", m)

    def _complex(self) -> bool:
        flag = self.raw.get("complex", False)
        if not isinstance(flag, bool):
            raise fail(self.where.at("complex"), "expected true or false", flag)
        return flag

    def _doc(self) -> str:
        doc = self.raw.get("doc", "")
        if not isinstance(doc, str):
            raise fail(self.where.at("doc"), "expected a string", doc)
        return doc.strip()

    def _ufunc(self) -> np.ufunc | None:
        """The ufunc named by ``numpy: NAME`` or ``ufunc: MODULE.NAME`` (either, not both)."""
        if "numpy" in self.raw and "ufunc" in self.raw:
            raise fail(self.where.at("ufunc"), "give numpy or ufunc, not both",
                        self.raw["ufunc"], "numpy: exp is short for ufunc: numpy.exp")
        if "numpy" in self.raw:
            field, module, name = "numpy", "numpy", self.raw["numpy"]
            w = self.where.at(field)
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise fail(w, "expected the name of a NumPy ufunc", name)
        elif "ufunc" in self.raw:
            field = "ufunc"
            w = self.where.at(field)
            module, name = _ufunc_path(w, self.raw["ufunc"])
        else:
            return None
        mod = _allowed_module(w, module)
        qualified = "np." + name if module == "numpy" else f"{module}.{name}"
        # vars(), not getattr(): a module's __getattr__ may import submodules lazily.
        fn = vars(mod).get(name)
        if not isinstance(fn, np.ufunc):
            ufuncs = [n for n, v in vars(mod).items() if isinstance(v, np.ufunc)]
            what = "a NumPy ufunc" if module == "numpy" else f"a ufunc of {module}"
            raise fail(w, f"not {what}", name, close_matches(name, ufuncs))
        if fn.nin != len(self.args) or fn.nout != 1:
            raise fail(w, f"{qualified} takes {fn.nin} input(s) and gives {fn.nout} "
                        f"output(s); this op has {len(self.args)} arg(s)", name)
        if "forward" not in self.raw and self.params:
            raise fail(self.where.at("params"), "an op whose forward is a ufunc "
                        "takes no params", list(self.params))
        return fn

    def formula_text(self, field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise fail(self.where.at(field), "expected a formula string", value,
                        "quote it: \"g * out\"")
        return value

    # -- pass 1: forward
    def compile_forward(self, callees: Mapping[str, Callee], later: Iterable[str]) -> None:
        if "forward" not in self.raw:
            self.forward = self.ufunc
            return
        text = self.formula_text("forward", self.raw["forward"])
        names = {a: "arg" for a in self.args} | {p: "param" for p in self.params}
        slots = {n: i for i, n in enumerate([*self.args, *self.params])}
        f = Compiler(self.where.at("forward", text), names, callees, later,
                     slots=slots).build()
        self.forward = _plain_function(f.fn, self.params)

    # -- pass 2: vjp and jvp
    def build(self, callees: Mapping[str, Callee]) -> OpDef:
        base = {a: "arg" for a in self.args} | {p: "param" for p in self.params}
        used: set[str] = set()
        vjp = self._vjp(base, callees, used)
        jvp = self._jvp(base, callees, used)
        domain, samples = self._checks()
        return OpDef(
            name=self.name, forward=self.forward, vjp=vjp,
            jvp=jvp, nargs=len(self.args),
            params=dict(self.params),
            nondiff=tuple(self.args.index(a) for a in self.nondiff), method=self.method,
            implements=(self.ufunc,) if self.ufunc is not None else (),
            save_inputs=any(a in used for a in self.args),
            domain=domain, samples=samples, doc=self.doc, complex=self._complex(),
            traits=("composite",) if "forward" in self.raw else (),
        )

    def _vjp(self, base: dict, callees: Mapping[str, Callee], used: set[str]) -> tuple:
        """The vjp rules, one per arg, compiled once: the same closures run on arrays (a
        backward pass) and on Tensors (recorded, under create_graph and forward mode).
        Measured on a chain of 2000 tanh ops, a second, array-only compile of the rule
        made the backward no faster (3.3 against 3.2 us per op)."""
        raw = self.raw.get("vjp")
        w = self.where.at("vjp")
        if raw is None:
            if self.diff:
                raise fail(w, "missing field", "vjp", f"give one formula per "
                            f"differentiable arg ({', '.join(self.diff)}), or list args "
                            "that get no gradient under nondiff")
            return None
        if not isinstance(raw, dict):
            raise fail(w, "expected a mapping arg -> formula", raw,
                        f"e.g. vjp: {{{self.args[0]}: \"g * ...\"}}")
        for key in raw:
            if key not in self.args:
                raise fail(w.at(f"vjp.{key}"), "vjp for an unknown arg", key,
                            close_matches(key, self.args) or f"args: {self.args}")
            if key in self.nondiff:
                raise fail(w.at(f"vjp.{key}"), "arg is listed under nondiff but has a "
                            "vjp", key, "drop one of the two")
        if not self.diff:
            return None
        names = base | {"g": "grad", "out": "out"}
        rules: list[Callable[..., Any] | None] = []
        for a in self.args:
            if a in self.nondiff:
                rules.append(None)
                continue
            if a not in raw:
                raise fail(w, "missing vjp for a differentiable arg", a,
                            f"add vjp.{a}: \"g * ...\", or list {a} under nondiff")
            field = f"vjp.{a}"
            text = self.formula_text(field, raw[a])
            f = Compiler(w.at(field, text), names, callees, float_literals=True).build()
            if "g" not in f.names:
                raise fail(w.at(field, text), "a vjp formula must use g (it is linear in "
                            "the upstream gradient)", text,
                            "an arg that gets no gradient goes under nondiff")
            used |= f.names
            rules.append(_rule(f.fn, self.args, self.params))
        return tuple(rules)

    def _jvp(self, base: dict, callees: Mapping[str, Callee], used: set[str]) -> Any:
        if "jvp" not in self.raw:
            return None
        field = "jvp"
        text = self.formula_text(field, self.raw["jvp"])
        tangents = {f"d{a}": i for i, a in enumerate(self.args) if a not in self.nondiff}
        for t in tangents:
            if t in base:
                raise fail(self.where.at(field, text), f"name defined twice: {t!r} is both "
                            "a tangent and an arg or param", t, "rename the arg or param")
        names = base | {"out": "out"} | dict.fromkeys(tangents, "tangent")
        f = Compiler(self.where.at(field, text), names, callees, zero_aware=True,
                     float_literals=True).build()
        if not f.names & tangents.keys():
            raise fail(self.where.at(field, text), "a jvp formula must use a tangent "
                        f"({', '.join(tangents) or 'none: every arg is nondiff'})", text)
        used |= f.names - tangents.keys()
        return _tangent_rule(f.fn, self.args, self.params, tangents)

    # -- automatic checks
    def _checks(self) -> tuple[tuple[float, float], Any]:
        w = self.where.at("domain")
        raw = self.raw.get("domain")
        per_arg: dict[str, list[tuple[float, float]]] = {}
        default = [(-2.0, 2.0)]
        if raw is None:
            pass
        elif isinstance(raw, dict):
            for k, v in raw.items():
                if k not in self.args:
                    raise fail(w, "domain for an unknown arg", k,
                                close_matches(k, self.args) or f"args: {self.args}")
                per_arg[k] = _interval(w.at(f"domain.{k}"), v)
        else:
            default = _interval(w, raw)
        domains = [per_arg.get(a, default) for a in self.args]
        cases = self._sample_cases()
        self._check_sample_total(cases or [])
        lo = min(i[0] for d in domains for i in d)
        hi = max(i[1] for d in domains for i in d)
        simple = not per_arg and len(default) == 1 and cases is None
        if simple:
            return default[0], None
        return (lo, hi), _sampler(domains, cases or [], len(self.args))

    def _check_sample_total(self, cases: list) -> None:
        """Bound the work of checking the op: the number of samples and their elements
        (each costs two evaluations of the op per element in a finite-difference check)."""
        plan = _plan(cases, len(self.args))
        total = sum(max(1, math.prod(s)) for shapes, _ in plan for s in shapes)
        w = self.where.at("samples")
        if len(plan) > _MAX_SAMPLES:
            raise fail(w, f"too many samples: {len(plan)} with the default ones (the limit "
                       f"is {_MAX_SAMPLES})")
        if total > _MAX_SAMPLE_SIZE:
            raise fail(w, f"samples too large: {total} elements in all, the default samples "
                       f"included (the limit is {_MAX_SAMPLE_SIZE})")

    def _sample_cases(self) -> list[tuple[list[tuple[int, ...]] | None, dict]] | None:
        raw = self.raw.get("samples")
        w = self.where.at("samples")
        if raw is None:
            return None
        if not isinstance(raw, list):
            raise fail(w, "expected a list of {shapes: ..., params: ...}", raw)
        out = []
        for i, case in enumerate(raw):
            wi = w.at(f"samples[{i}]")
            if not isinstance(case, dict) or not set(case) <= {"shapes", "params"}:
                bad = [k for k in case if k not in ("shapes", "params")] \
                    if isinstance(case, dict) else case
                raise fail(wi, "a sample is a mapping with keys shapes and params", bad)
            shapes = case.get("shapes")
            if shapes is not None:
                if not isinstance(shapes, list) or len(shapes) != len(self.args):
                    raise fail(wi, f"shapes must list one shape per arg "
                                f"({len(self.args)})", shapes)
                fixed = []
                for s in shapes:
                    if not isinstance(s, list) or not all(type(n) is int and 0 <= n
                                                          for n in s):
                        raise fail(wi, "a shape is a list of sizes, e.g. [3, 4] or []", s)
                    if math.prod(s) > _MAX_SAMPLE_SIZE:
                        raise fail(wi, "sample too large", s)
                    fixed.append(tuple(s))
                shapes = fixed
            params = case.get("params") or {}
            if not isinstance(params, dict):
                raise fail(wi, "params must be a mapping", params)
            for k in params:
                if k not in self.params:
                    raise fail(wi, "not a param of this op", k,
                                close_matches(k, self.params) or f"params: {list(self.params)}")
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
            out.append((shapes, params))
        return out


def _plain_function(fn: Callable[..., Any], params: dict[str, Any]):
    """A formula compiled plain, as a function of its values in slot order: the leading
    ones positional (a forward's inputs; a vjp's ``g, out, *inputs``), then the params
    by keyword, defaulted. ``fn`` reads them from one tuple, or takes them as arguments
    when it says so (``takes_values``). Forwards and plain vjps only see ndarrays."""
    star = getattr(fn, "takes_values", False)
    if not params:
        if star:
            return fn

        def plain(*values: Any) -> Any:
            return fn(values)

        return plain
    defaults = tuple(params.items())
    if star:

        def plain_kw(*values: Any, **kw: Any) -> Any:
            return fn(*values, *[kw.get(k, d) for k, d in defaults])

        return plain_kw

    def plain_kw_tuple(*values: Any, **kw: Any) -> Any:
        return fn((*values, *[kw.get(k, d) for k, d in defaults]))

    return plain_kw_tuple


def _rule(fn: Callable[[dict], Any], args: list[str], params: dict[str, Any]):
    """One input's ``vjp(g, out, *inputs, **params)``."""
    defaults = dict(params)
    names = tuple(args)
    if len(names) == 1 and not defaults:  # the common elementwise case, kept lean
        (a,) = names

        def vjp1(g: Any, out: Any, x: Any) -> Any:
            return fn({a: x, "g": g, "out": out})

        return vjp1

    def vjp(g: Any, out: Any, *inputs: Any, **kw: Any) -> Any:
        env = {**defaults, **kw} if kw else dict(defaults)
        env.update(zip(names, inputs, strict=True))
        env["g"] = g
        env["out"] = out
        return fn(env)

    return vjp


def _tangent_rule(fn: Callable[[dict], Any], args: list[str], params: dict[str, Any],
                  tangents: dict[str, int]):
    """``jvp(tangents, out, *inputs, **params)``; a ``None`` tangent counts as zero, and
    ``None`` is returned when every tangent the formula uses is zero."""
    defaults = dict(params)
    names = tuple(args)
    slots = tuple(tangents.items())

    def jvp(ts: Any, out: Any, *inputs: Any, **kw: Any) -> Any:
        env = {**defaults, **kw} if kw else dict(defaults)
        env.update(zip(names, inputs, strict=True))
        env["out"] = out
        for t, i in slots:
            v = ts[i]
            env[t] = ZERO if v is None else v
        r = fn(env)
        if r is ZERO:
            return None  # a zero tangent, as the engine's jvp contract has it
        data = out._data if isinstance(out, Tensor) else out if foreign(out) else np.asarray(out)
        if getattr(r, "shape", None) != data.shape:
            r = r + (np.zeros(data.shape, dtype=data.dtype) if isinstance(data, np.ndarray)
                     else np.zeros_like(data))  # Dask: lazy zeros, not a full array
        return r

    return jvp


def _draw(rng: np.random.Generator, intervals: list[tuple[float, float]],
          shape: tuple[int, ...]) -> np.ndarray:
    if len(intervals) == 1:
        lo, hi = intervals[0]
        return np.asarray(rng.uniform(lo, hi, shape), dtype=np.float64)
    los = np.array([i[0] for i in intervals])
    his = np.array([i[1] for i in intervals])
    width = his - los
    k = rng.choice(len(intervals), size=shape, p=width / width.sum())
    return np.asarray(rng.uniform(los[k], his[k]), dtype=np.float64)


def _plan(cases: list[tuple[list[tuple[int, ...]] | None, dict]], n: int) \
        -> list[tuple[list[tuple[int, ...]], dict]]:
    """The shapes and params of every sample: the default shapes with default params,
    then each listed case (with the default shapes when it gives none)."""
    default_shapes = [[(3, 4)] * n, [(3, 4)] + [(4,)] * (n - 1), [()] * n]
    plan: list[tuple[list[tuple[int, ...]], dict]] = [(s, {}) for s in default_shapes]
    for shapes, params in cases:
        plan += [(s, params) for s in ([shapes] if shapes is not None else default_shapes)]
    return plan


def _sampler(domains: list[list[tuple[float, float]]],
             cases: list[tuple[list[tuple[int, ...]] | None, dict]], n: int):
    """``samples(rng)``: the default shapes with default params, then each listed case."""
    plan = _plan(cases, n)

    def samples(rng: np.random.Generator) -> list[tuple[tuple, dict]]:
        return [(tuple(_draw(rng, domains[i], s) for i, s in enumerate(shapes)), dict(p))
                for shapes, p in plan]

    return samples


# ----------------------------------------------------------------------------- files


def compile_spec_data(data: Any, table: Mapping[str, OpInfo], path: str = "<spec>",
                      guard: Callable[[Callable, str], Callable] | None = None) -> list[OpDef]:
    """Compile parsed YAML ``data`` (``{"ops": {...}}``) against the registered ``table``.

    Ops of the file may call every op of ``table``; a forward may also call ops defined
    earlier in the file, a vjp or jvp any op of the file. An op whose name is already in
    ``table`` is returned all the same: the registry reports the clash.
    """
    where = Where(path)
    if not isinstance(data, dict):
        raise fail(where, "a spec file is a mapping with one key, ops", data,
                    "start the file with 'ops:'")
    for key in data:
        if key != "ops":
            raise fail(where.at(str(key)), "unknown top-level key", key,
                        close_matches(key, ["ops"]) or "the only top-level key is ops")
    ops = data.get("ops")
    if not isinstance(ops, dict) or not ops:
        raise fail(where.at("ops"), "missing field" if ops is None else
                    "expected a mapping of op names to op entries", ops)
    specs: list[_Spec] = []
    for name, raw in ops.items():
        _identifier(where.at("ops"), name, "an op name")
        specs.append(_Spec(name, raw, Where(path, name)))
    callees: dict[str, Callee] = {n: Callee.of(i, table, guard) for n, i in table.items()}
    pending = [s.name for s in specs]
    for s in specs:  # pass 1: forwards, in file order
        pending.remove(s.name)
        s.compile_forward(callees, pending)
        if s.name not in callees:
            callees[s.name] = Callee(s.name, len(s.args), s.params, s.forward, False,
                                      table, guard)
    return [s.build(callees) for s in specs]  # pass 2: rules, seeing the whole file


def compile_spec_source(text: str, table: Mapping[str, OpInfo], path: str = "<string>") \
        -> list[OpDef]:
    """Compile the YAML ``text`` of a spec (what :func:`compile_spec_file` does to a file)."""
    if not isinstance(text, str):
        raise fail(Where(path), "expected YAML text", type(text).__name__)
    return compile_spec_data(_parse_yaml(text, path), table, path)


def compile_spec_file(path: str | os.PathLike[str], table: Mapping[str, OpInfo],
                      guard: Callable[[Callable, str], Callable] | None = None) -> list[OpDef]:
    """Read and compile one spec file; ``SpecError`` naming file, op, field and text."""
    p = Path(path)
    return compile_spec_data(_read_yaml(p), table, str(p), guard)
