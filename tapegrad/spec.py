"""YAML op specs: ops declared as formulas over registered ops, compiled, never eval'ed.

A spec file is read with a safe YAML loader (``yaml.CSafeLoader`` when libyaml is there,
else ``yaml.SafeLoader``; duplicate keys are refused). Each formula is parsed with
:mod:`ast` and compiled into a tree of closures that call registered ops: on plain
ndarrays a call runs the op's raw NumPy forward (the fast path); when any value is a
:class:`~tapegrad.Tensor` (a vjp run under ``create_graph=True``) it runs the op's
recorded caller, so YAML ops can be differentiated to any order. Nothing is ever handed
to ``eval``, ``exec`` or ``compile``; every problem raises :class:`~tapegrad.SpecError`
naming the file, the op, the field and the offending text (``ast.parse`` only builds a
syntax tree; no code object is ever made). The format is documented at
the top of every shipped spec file (``specs/*.yaml``) and in the README.

Entry points: :func:`compile_spec_file` (called by the registry for every file a
``tapegrad_spec_files`` hook hands over; compiled once per registry build) and
:func:`load_spec` (``tg.load_spec``: register one file at run time).
"""

from __future__ import annotations

import ast
import difflib
import keyword
import math
import operator
import os
import reprlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import SpecError
from .hookspecs import hookimpl
from .opdef import OpDef, OpInfo
from .tensor import Tensor

__all__ = ["compile_spec_file", "compile_spec_source", "compile_spec_data", "load_spec",
           "OP_FIELDS", "MAX_FORMULA_LENGTH", "MAX_DEPTH"]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The keys an op entry may have.
OP_FIELDS = ("args", "params", "forward", "numpy", "vjp", "jvp", "nondiff", "method",
             "domain", "samples", "doc")
#: Longest formula accepted, in characters.
MAX_FORMULA_LENGTH = 2000
#: Deepest expression nesting accepted (also bounds the recursion of the evaluator).
MAX_DEPTH = 100
_MAX_YAML_DEPTH = 32
_MAX_SAMPLE_SIZE = 10_000
_RESERVED = ("g", "out")

_BINOPS: dict[type, tuple[Callable[[Any, Any], Any], str]] = {
    ast.Add: (operator.add, "+"), ast.Sub: (operator.sub, "-"),
    ast.Mult: (operator.mul, "*"), ast.Div: (operator.truediv, "/"),
    ast.Pow: (operator.pow, "**"), ast.MatMult: (operator.matmul, "@"),
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
    ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_REFUSED: dict[type, str] = {
    ast.Attribute: "attribute access is refused",
    ast.Subscript: "subscripts are refused",
    ast.Lambda: "lambdas are refused",
    ast.ListComp: "comprehensions are refused",
    ast.SetComp: "comprehensions are refused",
    ast.DictComp: "comprehensions are refused",
    ast.GeneratorExp: "comprehensions are refused",
    ast.NamedExpr: "assignment expressions (:=) are refused",
    ast.JoinedStr: "f-strings are refused",
    ast.FormattedValue: "f-strings are refused",
    ast.Starred: "starred arguments are refused",
    ast.IfExp: "conditional expressions are refused (use where(cond, a, b))",
    ast.BoolOp: "'and'/'or' are refused (use comparisons and where(...))",
    ast.List: "list literals are refused",
    ast.Tuple: "tuple literals are refused (outside keyword arguments)",
    ast.Set: "set literals are refused",
    ast.Dict: "dict literals are refused",
    ast.Await: "await is refused",
    ast.Yield: "yield is refused",
    ast.YieldFrom: "yield is refused",
    ast.Slice: "slices are refused",
}

_ALLOWED = ("only the op's args and params, g and out (vjp), d<arg> tangents (jvp), "
            "numbers, + - * / ** @, unary -, comparisons and calls of registered ops")


# ----------------------------------------------------------------------------- errors


class _Where:
    """Where a problem is: file, op, field and the formula text."""

    __slots__ = ("path", "op", "field", "text")

    def __init__(self, path: str, op: str | None = None, field: str | None = None,
                 text: str | None = None) -> None:
        self.path, self.op, self.field, self.text = path, op, field, text

    def at(self, field: str | None = None, text: str | None = None) -> _Where:
        return _Where(self.path, self.op, field, text)


def _fail(where: _Where, problem: str, offending: Any = None, hint: str = "") -> SpecError:
    parts = [where.path]
    if where.op is not None:
        parts.append(f"op {where.op!r}")
    if where.field is not None:
        parts.append(f"field {where.field!r}")
    msg = ", ".join(parts) + ": " + problem
    if offending is not None:
        msg += f": {_short(offending)}"
    if where.text is not None and where.text != offending:
        msg += f" (in {_short(where.text)})"
    if hint:
        msg += f"; {hint}"
    err = SpecError(msg)
    err.path, err.op, err.field, err.text = where.path, where.op, where.field, offending
    return err


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 120
_repr.maxlevel, _repr.maxlist, _repr.maxdict, _repr.maxtuple = 3, 8, 6, 8


def _short(value: Any) -> str:
    """A bounded ``repr``: user data may be huge or deeply shared (YAML aliases)."""
    return _repr.repr(value)


def _close(word: Any, options: Iterable[str]) -> str:
    """``did you mean 'a' or 'b'?``, or ``""`` when nothing is close."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


# ----------------------------------------------------------------------------- YAML


_yaml_cache: dict[str, tuple[tuple[int, int], Any]] = {}


def _read_yaml(path: Path) -> Any:
    key = str(path)
    try:
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        hit = _yaml_cache.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(_Where(key), f"cannot read the spec file ({exc})") from None
    data = _parse_yaml(text, key)
    _yaml_cache[key] = (stamp, data)
    return data


def _parse_yaml(text: str, path: str) -> Any:
    """``safe_load`` semantics (plain data only), refusing duplicate keys and deep nesting."""
    where = _Where(path)
    try:
        loader = _Loader(text)
    except Exception as exc:  # libyaml refuses some inputs at construction
        raise _fail(where, f"malformed YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _construct(loader, node, (), {}, where)
    except yaml.YAMLError as exc:
        raise _fail(where, f"malformed YAML: {_yaml_problem(exc)}") from None
    except RecursionError:
        raise _fail(where, "malformed YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    text = " ".join(str(exc).split())
    return text[:300]


_BUILDING = object()
_PLAIN_TAGS = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")


def _construct(loader: Any, node: Any, trail: tuple, memo: dict, where: _Where) -> Any:
    if len(trail) > _MAX_YAML_DEPTH:
        raise _fail(_context(where, trail), "YAML nested too deeply (or recursive anchors)")
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)  # refuses unknown tags
    if node.tag not in _PLAIN_TAGS:
        raise _fail(_context(where, trail), "malformed YAML: unsupported tag", node.tag,
                    "spec files hold plain mappings, lists and scalars")
    if id(node) in memo:
        done = memo[id(node)]
        if done is _BUILDING:
            raise _fail(_context(where, trail), "malformed YAML: recursive anchor")
        return done
    memo[id(node)] = _BUILDING
    if isinstance(node, yaml.SequenceNode):
        out_list = [_construct(loader, v, trail + (i,), memo, where)
                    for i, v in enumerate(node.value)]
        memo[id(node)] = out_list
        return out_list
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node, trail, memo, where)
            try:
                hash(key)
            except TypeError:
                raise _fail(_context(where, trail), "a mapping key must be a plain value",
                            key) from None
            if key in out:
                line = key_node.start_mark.line + 1
                raise _fail(_context(where, trail), f"name defined twice (line {line})", key,
                            "each key of a mapping may appear once")
            out[key] = _construct(loader, value_node, trail + (key,), memo, where)
        memo[id(node)] = out
        return out
    raise _fail(where, f"malformed YAML: unexpected node {type(node).__name__}")


def _context(where: _Where, trail: tuple) -> _Where:
    """Name the op and field a YAML position belongs to (``ops.NAME.FIELD...``)."""
    if len(trail) >= 2 and trail[0] == "ops":
        field = ".".join(str(t) for t in trail[2:]) or None
        return _Where(where.path, str(trail[1]), field)
    return _Where(where.path, None, ".".join(str(t) for t in trail) or None)


# ----------------------------------------------------------------------------- callees


class _Callee:
    """An op a formula may call: its raw forward, defaults, and (lazily) its caller."""

    __slots__ = ("name", "nargs", "params", "forward", "variadic", "_table", "_call")

    def __init__(self, name: str, nargs: int, params: Mapping[str, Any],
                 forward: Callable[..., Any], variadic: bool, table: Mapping[str, OpInfo]):
        self.name, self.nargs, self.params = name, nargs, dict(params)
        self.forward, self.variadic, self._table = forward, variadic, table
        self._call: Callable[..., Any] | None = None

    @classmethod
    def of(cls, info: OpInfo, table: Mapping[str, OpInfo]) -> _Callee:
        return cls(info.name, info.nargs, info.params, info.definition.forward,
                   info.variadic, table)

    def call(self) -> Callable[..., Any]:
        """The recorded caller; ops of the file being compiled are in the table by then."""
        c = self._call
        if c is None:
            c = self._call = self._table[self.name].call
        return c


# ----------------------------------------------------------------------------- formulas

_NOCONST = object()


class _Zero:
    """A zero tangent in a jvp formula: drops out of sums, zeroes products and calls."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ZERO"


ZERO = _Zero()


class _Formula:
    """A compiled formula: ``fn(env) -> value`` and the variable names it reads."""

    __slots__ = ("fn", "names", "text")

    def __init__(self, fn: Callable[[dict], Any], names: set[str], text: str) -> None:
        self.fn, self.names, self.text = fn, names, text


class _Compiler:
    """Compiles one formula. ``names``: allowed variables; ``callees``: callable ops."""

    def __init__(self, where: _Where, names: Mapping[str, str], callees: Mapping[str, _Callee],
                 later: Iterable[str] = (), zero_aware: bool = False) -> None:
        self.where = where
        self.names = names
        self.callees = callees
        self.later = set(later)
        self.zero_aware = zero_aware
        self.used: set[str] = set()
        self.text = where.text or ""

    # -- entry
    def build(self) -> _Formula:
        text = self.text
        where = self.where
        if len(text) > MAX_FORMULA_LENGTH:
            raise _fail(where, f"formula longer than {MAX_FORMULA_LENGTH} characters",
                        text[:60] + "...", "split it into ops of their own")
        if not text.strip():
            raise _fail(where, "empty formula", text)
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and the like:
                warnings.simplefilter("error", SyntaxWarning)  # refuse, don't print
                tree = ast.parse(text.strip(), mode="eval")
        except SyntaxWarning as exc:
            raise _fail(where, f"syntax error ({exc})", text) from None
        except SyntaxError as exc:
            raise _fail(where, f"syntax error ({exc.msg})", text) from None
        except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
            raise _fail(where, f"cannot parse the formula ({type(exc).__name__})",
                        text) from None
        fn, const = self.expr(tree.body, 0)
        if const is not _NOCONST:
            value = const
            fn = lambda env: value  # noqa: E731
        return _Formula(fn, self.used, text)

    def segment(self, node: ast.AST) -> str:
        try:
            seg = ast.get_source_segment(self.text.strip(), node)
        except Exception:  # noqa: BLE001 - positions of odd nodes: fall back to the dump
            seg = None
        return seg if seg else type(node).__name__

    def refuse(self, node: ast.AST, problem: str, hint: str = "") -> SpecError:
        return _fail(self.where, problem, self.segment(node), hint or f"formulas may use "
                     f"{_ALLOWED}")

    # -- expressions: return (fn, constant value or _NOCONST)
    def expr(self, node: ast.AST, depth: int) -> tuple[Callable[[dict], Any], Any]:
        if depth > MAX_DEPTH:
            raise _fail(self.where, f"formula nested deeper than {MAX_DEPTH} levels",
                        self.text[:60] + "...", "split it into ops of their own")
        t = type(node)
        if t is ast.Constant:
            return self.constant(node)
        if t is ast.Name:
            return self.name(node)
        if t is ast.BinOp:
            return self.binop(node, depth)
        if t is ast.UnaryOp:
            return self.unary(node, depth)
        if t is ast.Compare:
            return self.compare(node, depth)
        if t is ast.Call:
            return self.call(node, depth)
        problem = _REFUSED.get(t, f"unsupported syntax ({t.__name__})")
        raise self.refuse(node, problem)

    def constant(self, node: ast.Constant) -> tuple[Callable, Any]:
        v = node.value
        if isinstance(v, bool) or v is None:
            raise self.refuse(node, f"{v!r} is refused here (only as a keyword argument)")
        if not isinstance(v, (int, float)):
            raise self.refuse(node, f"{type(v).__name__} literals are refused; only numbers")
        return None, self.checked(node, v)  # type: ignore[return-value]

    def checked(self, node: ast.AST, v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            raise self.refuse(node, "constant is not finite")
        if isinstance(v, int) and abs(v) > 2 ** 1023:
            raise self.refuse(node, "constant too large")
        return v

    def name(self, node: ast.Name) -> tuple[Callable, Any]:
        n = node.id
        if n.startswith("__"):
            raise self.refuse(node, "dunder names are refused")
        if n not in self.names:
            if n in self.callees:
                hint = f"{n!r} is an op: call it, {n}(...)"
            elif n in _RESERVED:
                hint = f"{n!r} is only available in vjp formulas"
            else:
                hint = _close(n, self.names) or f"known names here: {sorted(self.names)}"
            raise self.refuse(node, "unknown name", hint)
        self.used.add(n)

        def var(env: dict) -> Any:
            return env[n]

        var.var_name = n  # type: ignore[attr-defined]  # lets binop read env[n] inline
        return var, _NOCONST

    def binop(self, node: ast.BinOp, depth: int) -> tuple[Callable, Any]:
        entry = _BINOPS.get(type(node.op))
        if entry is None:
            raise self.refuse(node, f"operator {type(node.op).__name__} is refused")
        op, sym = entry
        lf, lc = self.expr(node.left, depth + 1)
        rf, rc = self.expr(node.right, depth + 1)
        if lc is not _NOCONST and rc is not _NOCONST:
            return None, self.fold(node, op, sym, lc, rc)  # type: ignore[return-value]
        if self.zero_aware:
            return _zero_binop(sym, op, self.materialize(lf, lc),
                               self.materialize(rf, rc)), _NOCONST
        return _binop_closure(op, lf, lc, rf, rc), _NOCONST

    def fold(self, node: ast.AST, op: Callable, sym: str, a: Any, b: Any) -> Any:
        try:
            if sym == "**":
                f = float(a) ** float(b)
                if isinstance(f, complex) or not math.isfinite(f):
                    raise OverflowError
                if isinstance(a, int) and isinstance(b, int) and b >= 0:
                    return a ** b  # |a ** b| < 2 ** 1024: cheap and exact
                return f
            if sym == "@":
                raise self.refuse(node, "@ between two numbers")
            return self.checked(node, op(a, b))
        except (OverflowError, ZeroDivisionError, ValueError):
            raise self.refuse(node, "constant expression overflows or divides by zero") \
                from None

    @staticmethod
    def materialize(fn: Callable | None, const: Any) -> Callable:
        if const is _NOCONST:
            return fn  # type: ignore[return-value]
        return lambda env: const

    def unary(self, node: ast.UnaryOp, depth: int) -> tuple[Callable, Any]:
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise self.refuse(node, f"unary operator {type(node.op).__name__} is refused")
        fn, const = self.expr(node.operand, depth + 1)
        if isinstance(node.op, ast.UAdd):
            return fn, const
        if const is not _NOCONST:
            return None, -const  # type: ignore[return-value]
        if self.zero_aware:
            def zneg(env: dict) -> Any:
                v = fn(env)
                return v if v is ZERO else -v

            return zneg, _NOCONST

        def neg(env: dict) -> Any:
            return -fn(env)

        return neg, _NOCONST

    def compare(self, node: ast.Compare, depth: int) -> tuple[Callable, Any]:
        if len(node.ops) != 1:
            raise self.refuse(node, "chained comparisons are refused", "compare two values "
                              "at a time")
        op = _CMPOPS.get(type(node.ops[0]))
        if op is None:
            raise self.refuse(node, f"comparison {type(node.ops[0]).__name__} is refused")
        lf = self.materialize(*self.expr(node.left, depth + 1))
        rf = self.materialize(*self.expr(node.comparators[0], depth + 1))
        if self.zero_aware:
            lf, rf = _dezero(lf), _dezero(rf)

        def compare(env: dict) -> Any:
            return op(lf(env), rf(env))

        return compare, _NOCONST

    def call(self, node: ast.Call, depth: int) -> tuple[Callable, Any]:
        func = node.func
        if not isinstance(func, ast.Name):
            what = _REFUSED.get(type(func), "only registered ops can be called")
            raise self.refuse(func, what)
        fname = func.id
        if fname.startswith("__"):
            raise self.refuse(func, "dunder names are refused")
        callee = self.callees.get(fname)
        if callee is None:
            if fname in self.later:
                hint = ("an op of the same file can be called in a forward only by ops "
                        "defined after it")
            elif fname in self.names:
                hint = f"{fname!r} is a value, not an op"
            else:
                hint = _close(fname, self.callees) or "see tg.list_ops() for the registered ops"
            raise self.refuse(func, "unknown op", hint)
        if callee.variadic:
            raise self.refuse(func, "ops taking a list of inputs cannot be called from a "
                              "formula")
        pos = node.args
        for a in pos:
            if isinstance(a, ast.Starred):
                raise self.refuse(a, "starred arguments are refused")
        for kw in node.keywords:
            if kw.arg is None:
                raise self.refuse(kw.value, "**keyword unpacking is refused")
        pnames = list(callee.params)
        if not callee.nargs <= len(pos) <= callee.nargs + len(pnames):
            raise self.refuse(node, f"op {fname!r} takes {callee.nargs} input(s)"
                              + (f" and params {pnames}" if pnames else "")
                              + f", got {len(pos)} positional argument(s)")
        kwfns: list[tuple[str, Callable]] = []
        for pname, a in zip(pnames, pos[callee.nargs:], strict=False):
            kwfns.append((pname, self.kwvalue(a, depth + 1)))
        for kw in node.keywords:
            if kw.arg.startswith("__"):
                raise self.refuse(kw.value, "dunder names are refused")
            if kw.arg not in callee.params:
                raise self.refuse(node, f"op {fname!r} has no param {kw.arg!r}",
                                  _close(kw.arg, pnames) or f"its params: {pnames or 'none'}")
            if any(kw.arg == k for k, _ in kwfns):
                raise self.refuse(node, f"param {kw.arg!r} given twice")
            kwfns.append((kw.arg, self.kwvalue(kw.value, depth + 1)))
        argfns = [self.materialize(*self.expr(a, depth + 1)) for a in pos[:callee.nargs]]
        if not self.zero_aware:
            return _make_call(callee, argfns, kwfns), _NOCONST
        tangents = {n for n, kind in self.names.items() if kind == "tangent"}
        carries = [bool(tangents & {n.id for n in ast.walk(a) if isinstance(n, ast.Name)})
                   for a in pos[:callee.nargs]]
        return _zero_call(callee, argfns, kwfns, carries), _NOCONST

    def kwvalue(self, node: ast.AST, depth: int) -> Callable:
        """A param value: a formula, or a plain constant (True/False/None, tuples of them)."""
        const = _plain_constant(node)
        if const is not _NOCONST:
            return lambda env: const
        fn = self.materialize(*self.expr(node, depth))
        return _dezero(fn) if self.zero_aware else fn


def _binop_closure(op: Callable, lf: Callable, lc: Any, rf: Callable, rc: Any) -> Callable:
    """``op(left, right)`` as a closure; constants and plain names are read inline, which
    saves a closure call each (formulas are short: this halves the calls of most)."""
    lv = getattr(lf, "var_name", None)
    rv = getattr(rf, "var_name", None)
    if lc is not _NOCONST:
        if rv is not None:
            return lambda env: op(lc, env[rv])
        return lambda env: op(lc, rf(env))
    if rc is not _NOCONST:
        if lv is not None:
            return lambda env: op(env[lv], rc)
        return lambda env: op(lf(env), rc)
    if lv is not None and rv is not None:
        return lambda env: op(env[lv], env[rv])
    if lv is not None:
        return lambda env: op(env[lv], rf(env))
    if rv is not None:
        return lambda env: op(lf(env), env[rv])
    return lambda env: op(lf(env), rf(env))


def _plain_constant(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, bool)):
        return node.value
    if isinstance(node, ast.Tuple) and len(node.elts) <= 32:
        items = []
        for e in node.elts:
            if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) \
                    and isinstance(e.operand, ast.Constant) and type(e.operand.value) is int:
                items.append(-e.operand.value)
            elif isinstance(e, ast.Constant) and type(e.value) in (int, float, bool) \
                    and (type(e.value) is not int or abs(e.value) < 2 ** 63):
                items.append(e.value)
            else:
                return _NOCONST
        return tuple(items)
    return _NOCONST


def _zero_call(callee: _Callee, argfns: list[Callable], kwfns: list[tuple[str, Callable]],
               carries: list[bool]) -> Callable[[dict], Any]:
    """A call in a jvp formula, which is linear in the tangents: zero when every argument
    that carries a tangent is zero; otherwise the zero ones are passed as 0."""
    watched = [i for i, c in enumerate(carries) if c]
    fwd = callee.forward
    defaults = callee.params

    def zcall(env: dict) -> Any:
        vals = [f(env) for f in argfns]
        if watched and all(vals[i] is ZERO for i in watched):
            return ZERO
        vals = [0.0 if v is ZERO else v for v in vals]
        kw = {k: f(env) for k, f in kwfns}
        for v in vals:
            if isinstance(v, Tensor):
                return callee.call()(*vals, **kw)
        return fwd(*vals, **{**defaults, **kw})

    return zcall


def _make_call(callee: _Callee, argfns: list[Callable],
               kwfns: list[tuple[str, Callable]]) -> Callable[[dict], Any]:
    fwd = callee.forward
    defaults = callee.params
    T = Tensor
    if len(argfns) == 1 and not kwfns:
        a0 = argfns[0]
        if defaults:
            def call1p(env: dict) -> Any:
                v = a0(env)
                if isinstance(v, T):
                    return callee.call()(v)
                return fwd(v, **defaults)

            return call1p

        def call1(env: dict) -> Any:
            v = a0(env)
            if isinstance(v, T):
                return callee.call()(v)
            return fwd(v)

        return call1

    def call(env: dict) -> Any:
        vals = [a(env) for a in argfns]
        kw = {k: f(env) for k, f in kwfns}
        for v in vals:
            if isinstance(v, T):
                return callee.call()(*vals, **kw)
        return fwd(*vals, **{**defaults, **kw})

    return call


def _dezero(fn: Callable[[dict], Any]) -> Callable[[dict], Any]:
    def nonzero(env: dict) -> Any:
        v = fn(env)
        return 0.0 if v is ZERO else v

    return nonzero


def _zero_binop(sym: str, op: Callable, lf: Callable, rf: Callable) -> Callable[[dict], Any]:
    def zbin(env: dict) -> Any:
        a = lf(env)
        b = rf(env)
        if a is ZERO:
            if sym in ("*", "/", "@"):
                return ZERO
            if sym == "+":
                return b
            if sym == "-":
                return b if b is ZERO else -b
            if b is ZERO:  # 0 ** 0
                return 1.0
            a = 0.0
        if b is ZERO:
            if sym in ("*", "@"):
                return ZERO
            if sym in ("+", "-"):
                return a
            b = 0.0
        return op(a, b)

    return zbin


# ----------------------------------------------------------------------------- op specs


def _identifier(where: _Where, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value):
        raise _fail(where, f"{what} must be a Python identifier", value)
    if value.startswith("__"):
        raise _fail(where, f"{what} may not be a dunder name", value)
    return value


def _number(where: _Where, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise _fail(where, "expected a finite number", v)
    return float(v)


def _interval(where: _Where, v: Any) -> list[tuple[float, float]]:
    """``[lo, hi]`` or a list of them (a union, e.g. to stay away from a kink)."""
    pairs = v if isinstance(v, list) and v and all(isinstance(x, list) for x in v) else [v]
    out: list[tuple[float, float]] = []
    for p in pairs:
        if not (isinstance(p, list) and len(p) == 2):
            raise _fail(where, "expected an interval [lo, hi] or a list of intervals", v,
                        "e.g. domain: [0.1, 3] or domain: [[-2, -0.2], [0.2, 2]]")
        lo, hi = _number(where, p[0]), _number(where, p[1])
        if not lo < hi:
            raise _fail(where, "an interval [lo, hi] needs lo < hi", p)
        out.append((lo, hi))
    return out


class _Spec:
    """One op entry, validated; forward compiled in pass 1, rules in pass 2."""

    def __init__(self, name: str, raw: Any, where: _Where) -> None:
        self.where = where
        self.name = name
        if not isinstance(raw, dict):
            raise _fail(where, "an op entry must be a mapping of fields", raw,
                        f"fields: {', '.join(OP_FIELDS)}")
        for key in raw:
            if key not in OP_FIELDS:
                raise _fail(where.at(str(key)), "unknown field", key,
                            _close(key, OP_FIELDS) or f"fields: {', '.join(OP_FIELDS)}")
        self.raw = raw
        self.args = self._args()
        self.params = self._params()
        self.nondiff = self._nondiff()
        self.diff = [a for a in self.args if a not in self.nondiff]
        self.method = self._method()
        self.doc = self._doc()
        self.ufunc = self._ufunc()
        if "forward" not in raw and self.ufunc is None:
            raise _fail(where.at("forward"), "missing field", "forward",
                        "give a forward formula (or numpy: NAME of a NumPy ufunc)")
        self.forward: Callable[..., Any] | None = None

    # -- fields
    def _args(self) -> list[str]:
        w = self.where.at("args")
        args = self.raw.get("args")
        if args is None:
            raise _fail(w, "missing field", "args", "list the op's array inputs: args: [x]")
        if not isinstance(args, list) or not args:
            raise _fail(w, "expected a non-empty list of names", args)
        seen: list[str] = []
        for a in args:
            _identifier(w, a, "an arg name")
            if a in _RESERVED:
                raise _fail(w, f"{a!r} is reserved (upstream gradient / output)", a)
            if a in seen:
                raise _fail(w, "name defined twice", a)
            seen.append(a)
        return seen

    def _params(self) -> dict[str, Any]:
        w = self.where.at("params")
        params = self.raw.get("params", {})
        if params is None:
            return {}
        if not isinstance(params, dict):
            raise _fail(w, "expected a mapping of param names to defaults", params)
        out: dict[str, Any] = {}
        for k, v in params.items():
            _identifier(w, k, "a param name")
            if k in _RESERVED:
                raise _fail(w, f"{k!r} is reserved (upstream gradient / output)", k)
            if k in self.args:
                raise _fail(w, "name defined twice (an arg and a param)", k)
            if isinstance(v, list):
                if not all(isinstance(x, (int, float)) for x in v):
                    raise _fail(w.at(f"params.{k}"), "a list default must hold numbers", v)
                v = tuple(v)
            elif v is not None and not isinstance(v, (int, float, str)):
                raise _fail(w.at(f"params.{k}"), "a default must be a number, a bool, a "
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
            raise _fail(w, "expected a list of arg names", nd)
        seen: list[str] = []
        for a in nd:
            if a not in self.args:
                raise _fail(w, "not an arg of this op", a,
                            _close(a, self.args) or f"args: {self.args}")
            if a in seen:
                raise _fail(w, "name defined twice", a)
            seen.append(a)
        return seen

    def _method(self) -> bool | str:
        m = self.raw.get("method", False)
        if isinstance(m, bool):
            return m
        if isinstance(m, str):
            return _identifier(self.where.at("method"), m, "a method name")
        raise _fail(self.where.at("method"), "expected true, false or a method name", m)

    def _doc(self) -> str:
        doc = self.raw.get("doc", "")
        if not isinstance(doc, str):
            raise _fail(self.where.at("doc"), "expected a string", doc)
        return doc.strip()

    def _ufunc(self) -> np.ufunc | None:
        if "numpy" not in self.raw:
            return None
        w = self.where.at("numpy")
        name = self.raw["numpy"]
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            raise _fail(w, "expected the name of a NumPy ufunc", name)
        fn = getattr(np, name, None)
        if not isinstance(fn, np.ufunc):
            ufuncs = [n for n in dir(np) if isinstance(getattr(np, n, None), np.ufunc)]
            raise _fail(w, "not a NumPy ufunc", name, _close(name, ufuncs))
        if fn.nin != len(self.args) or fn.nout != 1:
            raise _fail(w, f"np.{name} takes {fn.nin} input(s) and gives {fn.nout} "
                        f"output(s); this op has {len(self.args)} arg(s)", name)
        if "forward" not in self.raw and self.params:
            raise _fail(self.where.at("params"), "an op whose forward is a NumPy ufunc "
                        "takes no params", list(self.params))
        return fn

    def formula_text(self, field: str, value: Any) -> str:
        if not isinstance(value, str):
            raise _fail(self.where.at(field), "expected a formula string", value,
                        "quote it: \"g * out\"")
        return value

    # -- pass 1: forward
    def compile_forward(self, callees: Mapping[str, _Callee], later: Iterable[str]) -> None:
        if "forward" not in self.raw:
            self.forward = self.ufunc
            return
        text = self.formula_text("forward", self.raw["forward"])
        names = {a: "arg" for a in self.args} | {p: "param" for p in self.params}
        f = _Compiler(self.where.at("forward", text), names, callees, later).build()
        self.forward = _entry(f.fn, self.args, self.params)

    # -- pass 2: vjp and jvp
    def build(self, callees: Mapping[str, _Callee]) -> OpDef:
        base = {a: "arg" for a in self.args} | {p: "param" for p in self.params}
        used: set[str] = set()
        vjp = self._vjp(base, callees, used)
        jvp = self._jvp(base, callees, used)
        domain, samples = self._checks()
        return OpDef(
            name=self.name, forward=self.forward, vjp=vjp, jvp=jvp, nargs=len(self.args),
            params=dict(self.params),
            nondiff=tuple(self.args.index(a) for a in self.nondiff), method=self.method,
            implements=(self.ufunc,) if self.ufunc is not None else (),
            save_inputs=any(a in used for a in self.args), save_out="out" in used,
            domain=domain, samples=samples, doc=self.doc,
        )

    def _vjp(self, base: dict, callees: Mapping[str, _Callee], used: set[str]) -> Any:
        raw = self.raw.get("vjp")
        w = self.where.at("vjp")
        if raw is None:
            if self.diff:
                raise _fail(w, "missing field", "vjp", f"give one formula per "
                            f"differentiable arg ({', '.join(self.diff)}), or list args "
                            "that get no gradient under nondiff")
            return None
        if not isinstance(raw, dict):
            raise _fail(w, "expected a mapping arg -> formula", raw,
                        f"e.g. vjp: {{{self.args[0]}: \"g * ...\"}}")
        for key in raw:
            if key not in self.args:
                raise _fail(w.at(f"vjp.{key}"), "vjp for an unknown arg", key,
                            _close(key, self.args) or f"args: {self.args}")
            if key in self.nondiff:
                raise _fail(w.at(f"vjp.{key}"), "arg is listed under nondiff but has a "
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
                raise _fail(w, "missing vjp for a differentiable arg", a,
                            f"add vjp.{a}: \"g * ...\", or list {a} under nondiff")
            field = f"vjp.{a}"
            text = self.formula_text(field, raw[a])
            f = _Compiler(w.at(field, text), names, callees).build()
            if "g" not in f.names:
                raise _fail(w.at(field, text), "a vjp formula must use g (it is linear in "
                            "the upstream gradient)", text,
                            "an arg that gets no gradient goes under nondiff")
            used |= f.names
            rules.append(_rule(f.fn, self.args, self.params))
        return tuple(rules)

    def _jvp(self, base: dict, callees: Mapping[str, _Callee], used: set[str]) -> Any:
        if "jvp" not in self.raw:
            return None
        field = "jvp"
        text = self.formula_text(field, self.raw["jvp"])
        tangents = {f"d{a}": i for i, a in enumerate(self.args) if a not in self.nondiff}
        for t in tangents:
            if t in base:
                raise _fail(self.where.at(field, text), f"name defined twice: {t!r} is both "
                            "a tangent and an arg or param", t, "rename the arg or param")
        names = base | {"out": "out"} | dict.fromkeys(tangents, "tangent")
        f = _Compiler(self.where.at(field, text), names, callees, zero_aware=True).build()
        if not f.names & tangents.keys():
            raise _fail(self.where.at(field, text), "a jvp formula must use a tangent "
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
                    raise _fail(w, "domain for an unknown arg", k,
                                _close(k, self.args) or f"args: {self.args}")
                per_arg[k] = _interval(w.at(f"domain.{k}"), v)
        else:
            default = _interval(w, raw)
        domains = [per_arg.get(a, default) for a in self.args]
        cases = self._sample_cases()
        lo = min(i[0] for d in domains for i in d)
        hi = max(i[1] for d in domains for i in d)
        simple = not per_arg and len(default) == 1 and cases is None
        if simple:
            return default[0], None
        return (lo, hi), _sampler(domains, cases or [], len(self.args))

    def _sample_cases(self) -> list[tuple[list[tuple[int, ...]] | None, dict]] | None:
        raw = self.raw.get("samples")
        w = self.where.at("samples")
        if raw is None:
            return None
        if not isinstance(raw, list):
            raise _fail(w, "expected a list of {shapes: ..., params: ...}", raw)
        out = []
        for i, case in enumerate(raw):
            wi = w.at(f"samples[{i}]")
            if not isinstance(case, dict) or not set(case) <= {"shapes", "params"}:
                bad = [k for k in case if k not in ("shapes", "params")] \
                    if isinstance(case, dict) else case
                raise _fail(wi, "a sample is a mapping with keys shapes and params", bad)
            shapes = case.get("shapes")
            if shapes is not None:
                if not isinstance(shapes, list) or len(shapes) != len(self.args):
                    raise _fail(wi, f"shapes must list one shape per arg "
                                f"({len(self.args)})", shapes)
                fixed = []
                for s in shapes:
                    if not isinstance(s, list) or not all(type(n) is int and 0 <= n
                                                          for n in s):
                        raise _fail(wi, "a shape is a list of sizes, e.g. [3, 4] or []", s)
                    if math.prod(s) > _MAX_SAMPLE_SIZE:
                        raise _fail(wi, "sample too large", s)
                    fixed.append(tuple(s))
                shapes = fixed
            params = case.get("params") or {}
            if not isinstance(params, dict):
                raise _fail(wi, "params must be a mapping", params)
            for k in params:
                if k not in self.params:
                    raise _fail(wi, "not a param of this op", k,
                                _close(k, self.params) or f"params: {list(self.params)}")
            params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
            out.append((shapes, params))
        return out


def _entry(fn: Callable[[dict], Any], args: list[str], params: dict[str, Any]):
    """``forward(*inputs, **params)`` running a compiled formula."""
    if len(args) == 1 and not params:
        (a,) = args

        def forward1(x: Any) -> Any:
            return fn({a: x})

        return forward1
    defaults = dict(params)
    names = tuple(args)

    def forward(*inputs: Any, **kw: Any) -> Any:
        env = {**defaults, **kw} if kw else dict(defaults)
        env.update(zip(names, inputs, strict=True))
        return fn(env)

    return forward


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
        data = out.data if isinstance(out, Tensor) else np.asarray(out)
        if getattr(r, "shape", None) != data.shape:
            r = r + np.zeros(data.shape, dtype=data.dtype)
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


def _sampler(domains: list[list[tuple[float, float]]],
             cases: list[tuple[list[tuple[int, ...]] | None, dict]], n: int):
    """``samples(rng)``: the default shapes with default params, then each listed case."""
    default_shapes = [[(3, 4)] * n, [(3, 4)] + [(4,)] * (n - 1), [()] * n]
    plan: list[tuple[list[tuple[int, ...]], dict]] = [(s, {}) for s in default_shapes]
    for shapes, params in cases:
        plan += [(s, params) for s in ([shapes] if shapes is not None else default_shapes)]

    def samples(rng: np.random.Generator) -> list[tuple[tuple, dict]]:
        return [(tuple(_draw(rng, domains[i], s) for i, s in enumerate(shapes)), dict(p))
                for shapes, p in plan]

    return samples


# ----------------------------------------------------------------------------- files


def compile_spec_data(data: Any, table: Mapping[str, OpInfo], path: str = "<spec>") \
        -> list[OpDef]:
    """Compile parsed YAML ``data`` (``{"ops": {...}}``) against the registered ``table``.

    Ops of the file may call every op of ``table``; a forward may also call ops defined
    earlier in the file, a vjp or jvp any op of the file. An op whose name is already in
    ``table`` is returned all the same: the registry reports the clash.
    """
    where = _Where(path)
    if not isinstance(data, dict):
        raise _fail(where, "a spec file is a mapping with one key, ops", data,
                    "start the file with 'ops:'")
    for key in data:
        if key != "ops":
            raise _fail(where.at(str(key)), "unknown top-level key", key,
                        _close(key, ["ops"]) or "the only top-level key is ops")
    ops = data.get("ops")
    if not isinstance(ops, dict) or not ops:
        raise _fail(where.at("ops"), "missing field" if ops is None else
                    "expected a mapping of op names to op entries", ops)
    specs: list[_Spec] = []
    for name, raw in ops.items():
        _identifier(where.at("ops"), name, "an op name")
        specs.append(_Spec(name, raw, _Where(path, name)))
    callees: dict[str, _Callee] = {n: _Callee.of(i, table) for n, i in table.items()}
    pending = [s.name for s in specs]
    for s in specs:  # pass 1: forwards, in file order
        pending.remove(s.name)
        s.compile_forward(callees, pending)
        if s.name not in callees:
            callees[s.name] = _Callee(s.name, len(s.args), s.params, s.forward, False,
                                      table)
    return [s.build(callees) for s in specs]  # pass 2: rules, seeing the whole file


def compile_spec_source(text: str, table: Mapping[str, OpInfo], path: str = "<string>") \
        -> list[OpDef]:
    """Compile the YAML ``text`` of a spec (what :func:`compile_spec_file` does to a file)."""
    if not isinstance(text, str):
        raise _fail(_Where(path), "expected YAML text", type(text).__name__)
    return compile_spec_data(_parse_yaml(text, path), table, path)


def compile_spec_file(path: str | os.PathLike[str], table: Mapping[str, OpInfo]) \
        -> list[OpDef]:
    """Read and compile one spec file; ``SpecError`` naming file, op, field and text."""
    p = Path(path)
    return compile_spec_data(_read_yaml(p), table, str(p))


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

    Their ``source`` is the file's absolute path. Loading a file that is already loaded
    *reloads* it: its ops are replaced by the file's current content (if the new content
    is invalid, the old ops stay and ``SpecError`` is raised). An op name that another
    plugin or file already registered raises ``SpecError`` naming both.
    """
    from .registry import REGISTRY

    p = Path(path).resolve()
    name = f"spec:{p}"
    old = REGISTRY.pm.get_plugin(name)
    table = {k: v for k, v in REGISTRY.ops.items() if v.plugin != name}
    defs = compile_spec_file(p, table)
    for d in defs:
        if d.name in table:
            raise _fail(_Where(str(p), d.name), "name defined twice",
                        d.name, f"an op of that name is already registered by "
                        f"{table[d.name].source}; rename it")
    if old is not None:
        REGISTRY.unregister(name)
    try:
        REGISTRY.register(SpecFilePlugin(p), name=name)
    except BaseException:
        if old is not None:
            REGISTRY.register(old, name=name)
        raise
    return [REGISTRY.ops[d.name] for d in defs]
