"""Pictures of the recorded graph: Graphviz DOT (``tg.to_dot``) and the Wengert list.

``to_dot(tensor)`` walks the entries ``tensor`` depends on (iteratively: deep graphs
do not hit the recursion limit) and draws, in the spirit of micrograd's ``draw_dot``,
one record per value (name, shape, dtype; data and grad for one-element values) and
one ellipse per op call, ``value -> op -> value``. Render it with
``dot -Tsvg graph.dot -o graph.svg`` or any Graphviz viewer.

``wengert(entries)`` lists a tape as assignments in call order::

    v1 = input x  # (3,) float64
    v2 = mul(v1, v1)  # (3,)
    v3 = sum(v2)  # ()
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from .entry import Leaf, Part, Record
from .errors import TapegradTypeError
from .lazy import is_lazy
from .tensor import Tensor

__all__ = ["to_dot", "tape_to_dot", "wengert"]


def _base(n: Any) -> Any:
    """The node a gradient edge starts from: a record for a part of one."""
    return n.record if isinstance(n, Part) else n


def _collect(roots: Iterable[Any]) -> list[Any]:
    """Every node reachable from ``roots`` (records and leaves), leaves then records."""
    seen: dict[int, Any] = {}
    stack = [_base(r) for r in roots if r is not None]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        if isinstance(n, Record):
            stack.extend(_base(m) for m in n.parents if m is not None)
    records = sorted((n for n in seen.values() if isinstance(n, Record)),
                     key=lambda e: e.seq)
    leaves = [n for n in seen.values() if isinstance(n, Leaf)]
    return leaves + records


def _fmt(x: Any) -> str:
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.size == 1:
        return f"{arr.reshape(()).item():.4g}"
    return f"shape {arr.shape}"


def _params(e: Record) -> str:
    defaults = e.op.params
    shown = []
    for k, v in (e.params or {}).items():
        if k in defaults and _same(defaults[k], v):
            continue
        text = repr(v)
        shown.append(f"{k}={text if len(text) <= 30 else text[:27] + '...'}")
    return ", ".join(shown)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or (type(a) is type(b) and a == b))
    except Exception:
        return False


def _esc(text: str) -> str:
    for ch in '\\{}|<>"':
        text = text.replace(ch, "\\" + ch)
    return text


class _Namer:
    """``v1, v2, ...`` in order of appearance, or a tensor's own ``name``."""

    def __init__(self) -> None:
        self.ids: dict[int, str] = {}

    def __call__(self, node: Any, name: str | None = None) -> str:
        key = id(node)
        if key not in self.ids:
            self.ids[key] = name or f"v{len(self.ids) + 1}"
        return self.ids[key]


def _one_value(data: Any) -> bool:
    """Whether ``data`` holds one element whose value can be shown without computing
    anything (a Dask array's value is never computed for a drawing)."""
    data = getattr(data, "_data", data)
    return not is_lazy(data) and math.prod(np.shape(data)) == 1


def _leaf_label(n: Leaf) -> list[str]:
    t = n.tensor
    if t is None:
        return ["(freed)"]
    data = t._data
    parts = [t.name or "", f"{tuple(data.shape)} {data.dtype}"]
    if _one_value(data):
        parts.append(f"data {_fmt(data)}")
        if t.grad is not None and _one_value(t.grad):
            parts.append(f"grad {_fmt(t.grad)}")
    return parts


def _record_label(e: Record, root: Tensor | None) -> list[str]:
    shape, dtype = e.output_meta(0)
    parts = [root.name if root is not None and root.name else "", f"{tuple(shape)} {dtype}"]
    data = e.out if e.out is not None else (root._data if root is not None else None)
    if data is not None and type(data) is not tuple and _one_value(data):
        parts.append(f"data {_fmt(data)}")
    if root is not None and root.grad is not None and _one_value(root.grad):
        parts.append(f"grad {_fmt(root.grad)}")
    return parts


def _dot(nodes: list[Any], root: Tensor | None, title: str) -> str:
    namer = _Namer()
    root_node = _base(root._node) if root is not None else None
    lines = [f"digraph {title} {{", "  rankdir=LR;",
             '  node [fontname="Helvetica", fontsize=10];']
    for n in nodes:
        if isinstance(n, Record):
            parts = _record_label(n, root if n is root_node else None)
            style = ""
        else:
            parts = _leaf_label(n)
            style = 'style=filled, fillcolor="#dbeafe", '
        parts[0] = namer(n, parts[0] or None)
        label = " | ".join(_esc(p) for p in parts)
        lines.append(f'  "n{id(n)}" [shape=record, {style}label="{{ {label} }}"];')
        if isinstance(n, Record):
            lines.extend(_op_lines(n))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _op_lines(e: Record) -> list[str]:
    op_label = e.op.name
    extra = _params(e)
    if extra:
        op_label += f"\\n{extra}"
    lines = [f'  "op{id(e)}" [shape=ellipse, label="{_esc_plain(op_label)}", '
             f'tooltip="{_esc_plain(e.op.source)}"];', f'  "op{id(e)}" -> "n{id(e)}";']
    for i, m in enumerate(e.parents):
        if m is not None:
            lines.append(f'  "n{id(_base(m))}" -> "op{id(e)}" [label="{i}"];')
    return lines


def _esc_plain(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")


def to_dot(tensor: Tensor, title: str = "tapegrad") -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    Values are records (name, shape and dtype; data and grad for one-element values),
    op calls are ellipses labelled with the op name and any non-default params.
    A tensor that was not recorded gives a graph with that single value.
    """
    if not isinstance(tensor, Tensor):
        raise TapegradTypeError(f"to_dot() takes a Tensor, got {type(tensor).__name__}")
    if tensor._node is None:
        return _dot([], tensor, title).replace("}\n", _plain_value(tensor) + "}\n")
    return _dot(_collect([tensor._node]), tensor, title)


def _plain_value(t: Tensor) -> str:
    parts = [t.name or "v1", f"{tuple(t.shape)} {t.dtype}"]
    if t.size == 1:
        parts.append(f"data {_fmt(t._data)}")
    label = " | ".join(_esc(p) for p in parts)
    return f'  "n{id(t)}" [shape=record, label="{{ {label} }}"];\n'


def tape_to_dot(entries: list[Record], title: str = "tape") -> str:
    """Graphviz DOT text of the entries of a tape and the leaves they read."""
    return _dot(_collect(entries), None, title)


def wengert(entries: list[Record]) -> str:
    """The Wengert list of ``entries``: one ``vK = op(vI, vJ)`` line per call."""
    namer = _Namer()
    lines = []
    listed = {id(e) for e in entries}
    for e in entries:
        for n in map(_base, filter(None, e.parents)):
            if id(n) in namer.ids or id(n) in listed:
                continue
            nm = namer(n)
            if isinstance(n, Record):
                lines.append(f"{nm} = <{n.op.name} recorded before this tape>  "
                             f"# {tuple(n.output_meta(0)[0])}")
            else:
                t = n.tensor
                label = f"input {t.name}" if t is not None and t.name else "input"
                meta = f"{tuple(t.shape)} {t.dtype}" if t is not None else "(freed)"
                lines.append(f"{nm} = {label}  # {meta}")
        args = ", ".join("const" if n is None else namer(_base(n)) for n in e.parents)
        extra = _params(e)
        if extra:
            args = f"{args}, {extra}"
        lines.append(f"{namer(e)} = {e.op.name}({args})  # {tuple(e.output_meta(0)[0])}")
    return "\n".join(lines)
