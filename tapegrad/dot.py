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

from collections.abc import Iterable
from typing import Any

import numpy as np

from .entry import Entry
from .tensor import Tensor

__all__ = ["to_dot", "tape_to_dot", "wengert"]


def _nodes_of(e: Entry) -> tuple:
    return e.nodes or ()


def _collect(roots: Iterable[Any]) -> list[Any]:
    """Every node reachable from ``roots`` (entries and leaf tensors), oldest first."""
    seen: dict[int, Any] = {}
    stack = [r for r in roots if r is not None]
    while stack:
        n = stack.pop()
        if id(n) in seen:
            continue
        seen[id(n)] = n
        if isinstance(n, Entry):
            stack.extend(m for m in _nodes_of(n) if m is not None and id(m) not in seen)
    entries = sorted((n for n in seen.values() if isinstance(n, Entry)), key=lambda e: e.seq)
    leaves = [n for n in seen.values() if not isinstance(n, Entry)]
    return leaves + entries


def _fmt(x: Any) -> str:
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    if arr.size == 1:
        return f"{arr.reshape(()).item():.4g}"
    return f"shape {arr.shape}"


def _params(e: Entry) -> str:
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


def _leaf_name(t: Tensor) -> str | None:
    return getattr(t, "name", None)


def _dot(nodes: list[Any], root: Tensor | None, title: str) -> str:
    namer = _Namer()
    root_node = root if root is not None and isinstance(root, Entry) else None
    lines = [f"digraph {title} {{", "  rankdir=LR;",
             '  node [fontname="Helvetica", fontsize=10];']
    for n in nodes:
        if isinstance(n, Entry):
            continue
        name = namer(n, _leaf_name(n))
        parts = [name, f"{tuple(n.data.shape)} {n.data.dtype}"]
        if n.data.size == 1:
            parts.append(f"data {_fmt(n.data)}")
            if n.grad is not None:
                parts.append(f"grad {_fmt(n.grad)}")
        label = " | ".join(_esc(p) for p in parts)
        lines.append(f'  "n{id(n)}" [shape=record, style=filled, fillcolor="#dbeafe", '
                     f'label="{{ {label} }}"];')
    for e in nodes:
        if not isinstance(e, Entry):
            continue
        own = root.name if root is not None and e is root_node else None
        name = namer(e, own)
        parts = [name, f"{tuple(e.shape)} {e.dtype}"]
        data = root.data if root is not None and e is root_node else e.out
        if data is not None and np.size(data) == 1:
            parts.append(f"data {_fmt(data)}")
        if root is not None and e is root_node and root.grad is not None \
                and np.size(root.data) == 1:
            parts.append(f"grad {_fmt(root.grad)}")
        label = " | ".join(_esc(p) for p in parts)
        lines.append(f'  "n{id(e)}" [shape=record, label="{{ {label} }}"];')
        op_label = e.op.name
        extra = _params(e)
        if extra:
            op_label += f"\\n{extra}"
        lines.append(f'  "op{id(e)}" [shape=ellipse, label="{_esc_plain(op_label)}", '
                     f'tooltip="{_esc_plain(e.op.source)}"];')
        lines.append(f'  "op{id(e)}" -> "n{id(e)}";')
        if e.nodes is None:
            lines.append(f'  "op{id(e)}" [style=dashed, xlabel="released"];')
            continue
        for i, m in enumerate(e.nodes):
            if m is None:
                continue
            lines.append(f'  "n{id(m)}" -> "op{id(e)}" [label="{i}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _esc_plain(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\\\\n", "\\n")


def to_dot(tensor: Tensor, title: str = "tapegrad") -> str:
    """Graphviz DOT text of the graph that produced ``tensor``.

    Values are records (name, shape and dtype; data and grad for one-element values),
    op calls are ellipses labelled with the op name and any non-default params.
    A tensor that was not recorded gives a graph with that single value.
    """
    if not isinstance(tensor, Tensor):
        raise TypeError(f"to_dot() takes a Tensor, got {type(tensor).__name__}")
    if isinstance(tensor, Entry):
        nodes = _collect([tensor])
    else:
        nodes = [tensor]
    return _dot(nodes, tensor, title)


def tape_to_dot(entries: list[Entry], title: str = "tape") -> str:
    """Graphviz DOT text of the entries of a tape and the leaves they read."""
    return _dot(_collect(entries), None, title)


def wengert(entries: list[Entry]) -> str:
    """The Wengert list of ``entries``: one ``vK = op(vI, vJ)`` line per call."""
    namer = _Namer()
    lines = []
    listed = {id(e) for e in entries}
    for e in entries:
        for n in _nodes_of(e):
            if n is None or id(n) in namer.ids or id(n) in listed:
                continue
            if isinstance(n, Entry):
                nm = namer(n)
                lines.append(f"{nm} = <{n.op.name} recorded before this tape>  "
                             f"# {tuple(n.shape)}")
            else:
                nm = namer(n)
                label = f"input {n.name}" if _leaf_name(n) else "input"
                lines.append(f"{nm} = {label}  # {tuple(n.data.shape)} {n.data.dtype}")
        if e.nodes is None:
            args = "<released>"
        else:
            args = ", ".join("const" if n is None else namer(n) for n in e.nodes)
        extra = _params(e)
        if extra:
            args = f"{args}, {extra}"
        lines.append(f"{namer(e)} = {e.op.name}({args})  # {tuple(e.shape)}")
    return "\n".join(lines)
