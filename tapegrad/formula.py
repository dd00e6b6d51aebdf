"""The formula compiler of YAML op specs: ``ast`` in, closures over registered ops out.

A formula is parsed with :mod:`ast` (which only builds a syntax tree) and compiled into a
tree of closures ``fn(env) -> value``. Only names, numbers, ``+ - * / ** @``, unary
minus, comparisons and calls of registered ops are accepted; everything else is refused
with a :class:`~tapegrad.SpecError` naming file, op, field and text. Nothing is ever
handed to ``eval``, ``exec`` or ``compile``. On plain ndarrays a call runs the op's raw
NumPy forward; when a value is a :class:`~tapegrad.Tensor` it runs the op's recorded
caller, so compiled formulas are differentiable to any order.

A formula can also be compiled *plain*: for ndarrays only (the backward pass when
nothing is recorded), with calls going straight to the ops' NumPy forwards and the
variables read from a tuple by position, which is what a vjp costs on the hot path.
"""

from __future__ import annotations

import ast
import difflib
import math
import operator
import reprlib
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .errors import SpecError
from .opdef import OpInfo
from .tensor import Tensor

#: Longest formula accepted, in characters.
MAX_FORMULA_LENGTH = 2000
#: Deepest expression nesting accepted (also bounds the recursion of the evaluator).
MAX_DEPTH = 100
RESERVED = ("g", "out")

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


class Where:
    """Where a problem is: file, op, field and the formula text."""

    __slots__ = ("path", "op", "field", "text")

    def __init__(self, path: str, op: str | None = None, field: str | None = None,
                 text: str | None = None) -> None:
        self.path, self.op, self.field, self.text = path, op, field, text

    def at(self, field: str | None = None, text: str | None = None) -> Where:
        return Where(self.path, self.op, field, text)


def fail(where: Where, problem: str, offending: Any = None, hint: str = "") -> SpecError:
    parts = [where.path]
    if where.op is not None:
        parts.append(f"op {where.op!r}")
    if where.field is not None:
        parts.append(f"field {where.field!r}")
    msg = ", ".join(parts) + ": " + problem
    if offending is not None:
        msg += f": {short(offending)}"
    if where.text is not None and where.text != offending:
        msg += f" (in {short(where.text)})"
    if hint:
        msg += f"; {hint}"
    err = SpecError(msg)
    err.path, err.op, err.field, err.text = where.path, where.op, where.field, offending
    return err


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 120
_repr.maxlevel, _repr.maxlist, _repr.maxdict, _repr.maxtuple = 3, 8, 6, 8


def short(value: Any) -> str:
    """A bounded ``repr``: user data may be huge or deeply shared (YAML aliases)."""
    return _repr.repr(value)


def close_matches(word: Any, options: Iterable[str]) -> str:
    """``did you mean 'a' or 'b'?``, or ``""`` when nothing is close."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f"did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


# ----------------------------------------------------------------------------- callees


class Callee:
    """An op a formula may call: its raw forward, defaults, and (lazily) its caller.

    ``guard``, when given, wraps both (``guard(fn, name) -> fn``): checking a spec file
    compiles it again with a guard that bounds the work of the check (see
    :func:`tapegrad.spec_files.checkable`); registered ops are compiled without one."""

    __slots__ = ("name", "nargs", "params", "forward", "variadic", "_table", "_call",
                 "guard")

    def __init__(self, name: str, nargs: int, params: Mapping[str, Any],
                 forward: Callable[..., Any], variadic: bool, table: Mapping[str, OpInfo],
                 guard: Callable[[Callable, str], Callable] | None = None):
        self.name, self.nargs, self.params = name, nargs, dict(params)
        self.forward, self.variadic, self._table = forward, variadic, table
        self._call: Callable[..., Any] | None = None
        self.guard = guard
        if guard is not None:
            self.forward = guard(forward, name)

    @classmethod
    def of(cls, info: OpInfo, table: Mapping[str, OpInfo],
           guard: Callable[[Callable, str], Callable] | None = None) -> Callee:
        return cls(info.name, info.nargs, info.params, info.definition.forward,
                   info.variadic, table, guard)

    def call(self) -> Callable[..., Any]:
        """The recorded caller; ops of the file being compiled are in the table by then."""
        c = self._call
        if c is None:
            c = self._table[self.name].call
            if self.guard is not None:
                c = self.guard(c, self.name)
            self._call = c
        return c


# ----------------------------------------------------------------------------- formulas

NOCONST = object()


class _Zero:
    """A zero tangent in a jvp formula: drops out of sums, zeroes products and calls."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ZERO"


ZERO = _Zero()


class Formula:
    """A compiled formula: ``fn(env) -> value`` and the variable names it reads."""

    __slots__ = ("fn", "names", "text")

    def __init__(self, fn: Callable[[dict], Any], names: set[str], text: str) -> None:
        self.fn, self.names, self.text = fn, names, text


class Compiler:
    """Compiles one formula. ``names``: allowed variables; ``callees``: callable ops."""

    def __init__(self, where: Where, names: Mapping[str, str], callees: Mapping[str, Callee],
                 later: Iterable[str] = (), zero_aware: bool = False,
                 slots: Mapping[str, int] | None = None,
                 float_literals: bool = False) -> None:
        """``slots``: compile plain, the env being a tuple with each name at its slot.
        ``float_literals``: integer literals next to a value in arithmetic become
        floats (same result for float arrays, and NumPy handles them faster); for
        gradient formulas, whose values are floating."""
        self.where = where
        self.names = names
        self.callees = callees
        self.later = set(later)
        self.zero_aware = zero_aware
        self.slots = slots
        self.float_literals = float_literals
        self.used: set[str] = set()
        self.text = where.text or ""

    # -- entry
    def build(self) -> Formula:
        text = self.text
        where = self.where
        if len(text) > MAX_FORMULA_LENGTH:
            raise fail(where, f"formula longer than {MAX_FORMULA_LENGTH} characters",
                        text[:60] + "...", "split it into ops of their own")
        if not text.strip():
            raise fail(where, "empty formula", text)
        if not text.isascii():  # ast would NFKC-normalise names: 'ｅｘｐ(x)' calls exp
            c = next(c for c in text if not c.isascii())
            raise fail(where, f"non-ASCII character {c!r} (U+{ord(c):04X})", text,
                       "formulas are ASCII: names of ops, args and params are ASCII "
                       "identifiers")
        try:
            with warnings.catch_warnings():  # "invalid decimal literal" and the like:
                warnings.simplefilter("error", SyntaxWarning)  # refuse, don't print
                tree = ast.parse(text.strip(), mode="eval")
        except SyntaxWarning as exc:
            raise fail(where, f"syntax error ({exc})", text) from None
        except SyntaxError as exc:
            raise fail(where, f"syntax error ({exc.msg})", text) from None
        except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
            raise fail(where, f"cannot parse the formula ({type(exc).__name__})",
                        text) from None
        if self.slots is not None and type(tree.body) is ast.BinOp:
            fn, const = self.binop(tree.body, 0, top=True)
        elif self.slots is not None and type(tree.body) is ast.Call:
            fn, const = self.call(tree.body, 0, top=True)
        else:
            fn, const = self.expr(tree.body, 0)
        if const is not NOCONST:
            value = const
            fn = lambda env: value  # noqa: E731
        return Formula(fn, self.used, text)

    def segment(self, node: ast.AST) -> str:
        try:
            seg = ast.get_source_segment(self.text.strip(), node)
        except Exception:  # noqa: BLE001 - positions of odd nodes: fall back to the dump
            seg = None
        return seg if seg else type(node).__name__

    def refuse(self, node: ast.AST, problem: str, hint: str = "") -> SpecError:
        return fail(self.where, problem, self.segment(node), hint or f"formulas may use "
                     f"{_ALLOWED}")

    # -- expressions: return (fn, constant value or NOCONST)
    def expr(self, node: ast.AST, depth: int) -> tuple[Callable[[dict], Any], Any]:
        if depth > MAX_DEPTH:
            raise fail(self.where, f"formula nested deeper than {MAX_DEPTH} levels",
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
            elif n in RESERVED:
                hint = f"{n!r} is only available in vjp formulas"
            else:
                hint = close_matches(n, self.names) or f"known names here: {sorted(self.names)}"
            raise self.refuse(node, "unknown name", hint)
        self.used.add(n)
        key = n if self.slots is None else self.slots[n]

        def var(env: Any) -> Any:
            return env[key]

        var.var_name = key  # type: ignore[attr-defined]  # lets binop read env[key] inline
        return var, NOCONST

    def binop(self, node: ast.BinOp, depth: int, top: bool = False) -> tuple[Callable, Any]:
        entry = _BINOPS.get(type(node.op))
        if entry is None:
            raise self.refuse(node, f"operator {type(node.op).__name__} is refused")
        op, sym = entry
        lf, lc = self.expr(node.left, depth + 1)
        rf, rc = self.expr(node.right, depth + 1)
        if lc is not NOCONST and rc is not NOCONST:
            return None, self.fold(node, op, sym, lc, rc)  # type: ignore[return-value]
        if self.float_literals:
            lc, rc = _as_float(lc), _as_float(rc)
        if top and not self.zero_aware:
            star = _values_binop(op, lf, rf, rc)
            if star is not None:
                return star, NOCONST
        if self.zero_aware:
            return _zero_binop(sym, op, self.materialize(lf, lc),
                               self.materialize(rf, rc)), NOCONST
        return _binop_closure(op, lf, lc, rf, rc), NOCONST

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
        if const is NOCONST:
            return fn  # type: ignore[return-value]
        return _constant(const)

    def unary(self, node: ast.UnaryOp, depth: int) -> tuple[Callable, Any]:
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise self.refuse(node, f"unary operator {type(node.op).__name__} is refused")
        fn, const = self.expr(node.operand, depth + 1)
        if isinstance(node.op, ast.UAdd):
            return fn, const
        if const is not NOCONST:
            return None, -const  # type: ignore[return-value]
        if self.zero_aware:
            def zneg(env: dict) -> Any:
                v = fn(env)
                return v if v is ZERO else -v

            return zneg, NOCONST

        def neg(env: dict) -> Any:
            return -fn(env)

        return neg, NOCONST

    def compare(self, node: ast.Compare, depth: int) -> tuple[Callable, Any]:
        if len(node.ops) != 1:
            raise self.refuse(node, "chained comparisons are refused", "compare two values "
                              "at a time")
        op = _CMPOPS.get(type(node.ops[0]))
        if op is None:
            raise self.refuse(node, f"comparison {type(node.ops[0]).__name__} is refused")
        lf, lc = self.expr(node.left, depth + 1)
        rf, rc = self.expr(node.comparators[0], depth + 1)
        if self.zero_aware or (lc is not NOCONST and rc is not NOCONST):
            lf, rf = self.materialize(lf, lc), self.materialize(rf, rc)
            if self.zero_aware:
                lf, rf = _dezero(lf), _dezero(rf)

            def compare(env: Any) -> Any:
                return op(lf(env), rf(env))

            return compare, NOCONST
        if self.float_literals:
            lc, rc = _as_float(lc), _as_float(rc)
        return _binop_closure(op, lf, lc, rf, rc), NOCONST  # names, constants inline

    def call(self, node: ast.Call, depth: int, top: bool = False) -> tuple[Callable, Any]:
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
                hint = (close_matches(fname, self.callees)
                        or "see tg.list_ops() for the registered ops")
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
                                  close_matches(kw.arg, pnames)
                                  or f"its params: {pnames or 'none'}")
            if any(kw.arg == k for k, _ in kwfns):
                raise self.refuse(node, f"param {kw.arg!r} given twice")
            kwfns.append((kw.arg, self.kwvalue(kw.value, depth + 1)))
        argfns = [self.materialize(*self.expr(a, depth + 1)) for a in pos[:callee.nargs]]
        if self.slots is not None:
            return _plain_call(callee, argfns, kwfns, top), NOCONST
        if not self.zero_aware:
            return _make_call(callee, argfns, kwfns), NOCONST
        tangents = {n for n, kind in self.names.items() if kind == "tangent"}
        carries = [bool(tangents & {n.id for n in ast.walk(a) if isinstance(n, ast.Name)})
                   for a in pos[:callee.nargs]]
        return _zero_call(callee, argfns, kwfns, carries), NOCONST

    def kwvalue(self, node: ast.AST, depth: int) -> Callable:
        """A param value: a formula, or a plain constant (True/False/None, tuples of them)."""
        const = _plain_constant(node)
        if const is not NOCONST:
            return _constant(const)
        fn = self.materialize(*self.expr(node, depth))
        return _dezero(fn) if self.zero_aware else fn


def _binop_closure(op: Callable, lf: Callable, lc: Any, rf: Callable, rc: Any) -> Callable:
    """``op(left, right)`` as a closure; constants and plain names are read inline, which
    saves a closure call each (formulas are short: this halves the calls of most)."""
    lv = getattr(lf, "var_name", None)
    rv = getattr(rf, "var_name", None)
    if lc is not NOCONST:
        if rv is not None:
            return lambda env: op(lc, env[rv])
        return lambda env: op(lc, rf(env))
    if rc is not NOCONST:
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


def _values_binop(op: Callable, lf: Callable, rf: Callable, rc: Any) -> Callable | None:
    """The top of a plain formula ``name * right`` (a vjp formula is linear in ``g``:
    nearly all of them have this shape) as a function of the values themselves,
    ``fn(*env)``, multiplying inline. A plain rule can then be called with the
    arguments the engine passes, ``rule(g, out, x)``, without a wrapper packing them
    first. ``None`` for other formulas: they keep the wrapper."""
    lv = getattr(lf, "var_name", None)
    if op is not operator.mul or lv is None:
        return None
    rv = getattr(rf, "var_name", None)
    if rc is not NOCONST:
        fn = lambda *env: env[lv] * rc  # noqa: E731
    elif rv is not None:
        fn = lambda *env: env[lv] * env[rv]  # noqa: E731
    else:
        fn = lambda *env: env[lv] * rf(env)  # noqa: E731
    fn.takes_values = True  # type: ignore[attr-defined]
    return fn


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
                return NOCONST
        return tuple(items)
    return NOCONST


def _zero_call(callee: Callee, argfns: list[Callable], kwfns: list[tuple[str, Callable]],
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


def _plain_call(callee: Callee, argfns: list[Callable],
                kwfns: list[tuple[str, Callable]], top: bool = False) -> Callable[[Any], Any]:
    """A call in a plain formula: the op's NumPy forward, nothing recorded. Constant
    params are merged with the op's defaults once, here; a name argument is read inline.
    At the top of a formula whose one argument is a name and whose params are
    constants (``clip(x, a_min=0)``), the call takes the values themselves, ``fn(*env)``
    (see :func:`_values_binop`)."""
    fwd = callee.forward
    kw = {**callee.params, **{k: f.const for k, f in kwfns if hasattr(f, "const")}}
    dynamic = [(k, f) for k, f in kwfns if not hasattr(f, "const")]
    if dynamic:
        fixed = {k: v for k, v in kw.items() if all(k != d for d, _ in dynamic)}

        def call(env: Any) -> Any:
            return fwd(*[a(env) for a in argfns], **fixed, **{k: f(env) for k, f in dynamic})

        return call
    key = getattr(argfns[0], "var_name", None) if len(argfns) == 1 else None
    if key is None:
        if kw:
            return lambda env: fwd(*[a(env) for a in argfns], **kw)
        return lambda env: fwd(*[a(env) for a in argfns])
    if top:
        fn = (lambda *env: fwd(env[key], **kw)) if kw else (lambda *env: fwd(env[key]))
        fn.takes_values = True  # type: ignore[attr-defined]
        return fn
    if kw:
        return lambda env: fwd(env[key], **kw)
    return lambda env: fwd(env[key])


def _constant(value: Any) -> Callable[[Any], Any]:
    """A constant as a formula closure; ``.const`` lets a caller read it directly."""
    fn = lambda env: value  # noqa: E731
    fn.const = value  # type: ignore[attr-defined]
    return fn


def _as_float(c: Any) -> Any:
    return float(c) if type(c) is int and abs(c) < 2 ** 53 else c


def _make_call(callee: Callee, argfns: list[Callable],
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


