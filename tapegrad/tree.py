"""Containers of arrays ("pytrees"): flatten a nest of lists, tuples and dicts into its
leaves, and build the same nest back around other leaves.

This is what lets the transforms take ``{"W": W, "b": b}`` and hand back gradients of
the same structure. The rules are JAX's and HIPS autograd's, with two choices of ours:

* **Nodes**: ``dict`` (and subclasses such as ``OrderedDict``), ``list``, ``tuple`` and
  named tuples (rebuilt as the same named-tuple type). ``None`` is a node without
  children: it stays ``None`` (a placeholder, e.g. for a parameter left out).
* **Dict order**: a dict's children are taken in the dict's own (insertion) order, and
  the rebuilt dict has the same keys in the same order, so results read the way the
  caller wrote them (JAX sorts the keys instead). Where a structure is *matched*
  against another one (:func:`flatten_like`: cotangents, tangents) keys are looked up
  by name, so any order is accepted.
* **Number lists are data**: a non-empty list or tuple whose elements are all numbers
  (or such lists) is one leaf, an array, as in ``tg.tensor([1.0, 2.0])``;
  ``grad(f)([1.0, 2.0])`` gives an array of two gradients. A list holding arrays,
  Tensors, dicts or ``None`` is a node (``[W, b]``).
* **Leaves**: everything else (Tensors, ndarrays, numbers, ...).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from numbers import Number
from typing import Any

import numpy as np

from .errors import TapegradValueError

__all__ = ["TreeDef", "flatten", "flatten_like", "is_container", "leaves", "tree_map",
           "unflatten"]

_LEAF, _NONE, _LIST, _TUPLE, _NAMED, _DICT = "leaf", "none", "list", "tuple", "named", "dict"


class TreeDef:
    """The shape of a nest without its leaves: what :func:`unflatten` rebuilds.

    ``num_leaves`` is the number of leaves; ``paths()`` names each leaf as an index
    expression (``"['W']"``, ``"[0][1]"``, ``".mean"``; ``""`` for a lone leaf).
    Two treedefs are equal when they describe the same node types, keys (in the same
    order) and lengths.
    """

    __slots__ = ("kind", "node_type", "keys", "children", "num_leaves", "extra")

    def __init__(self, kind: str, node_type: type | None = None, keys: tuple = (),
                 children: tuple[TreeDef, ...] = (), extra: Any = None) -> None:
        self.kind = kind
        self.node_type = node_type
        self.keys = keys
        self.children = children
        self.extra = extra  # a defaultdict's default_factory
        self.num_leaves = 1 if kind == _LEAF else sum(c.num_leaves for c in children)

    @property
    def is_leaf(self) -> bool:
        return self.kind == _LEAF

    def paths(self) -> list[str]:
        out: list[str] = []
        _paths(self, "", out)
        return out

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, TreeDef) and self.kind == other.kind
                and self.node_type is other.node_type and self.keys == other.keys
                and self.children == other.children)

    def __hash__(self) -> int:
        return hash((self.kind, self.node_type, self.keys, self.children))

    def __repr__(self) -> str:
        return f"TreeDef({_show(self)})"


def _show(d: TreeDef) -> str:
    if d.kind == _LEAF:
        return "*"
    if d.kind == _NONE:
        return "None"
    if d.kind == _DICT:
        return "{" + ", ".join(f"{k!r}: {_show(c)}" for k, c in zip(d.keys, d.children,
                                                                    strict=True)) + "}"
    inner = ", ".join(_show(c) for c in d.children)
    if d.kind == _LIST:
        return f"[{inner}]"
    if d.kind == _NAMED:
        return f"{d.node_type.__name__}({inner})"
    return f"({inner},)" if len(d.children) == 1 else f"({inner})"


def _paths(d: TreeDef, prefix: str, out: list[str]) -> None:
    if d.kind == _LEAF:
        out.append(prefix)
    elif d.kind == _DICT:
        for k, c in zip(d.keys, d.children, strict=True):
            _paths(c, f"{prefix}[{k!r}]", out)
    elif d.kind == _NAMED:
        for k, c in zip(d.keys, d.children, strict=True):
            _paths(c, f"{prefix}.{k}", out)
    else:
        for i, c in enumerate(d.children):
            _paths(c, f"{prefix}[{i}]", out)


# ----------------------------------------------------------------------- flatten


def _is_number(x: Any) -> bool:
    return isinstance(x, (Number, np.number, np.bool_)) and not isinstance(x, np.ndarray)


def _is_number_list(x: Any) -> bool:
    """A non-empty plain list/tuple of numbers (nested): array data, one leaf."""
    if type(x) not in (list, tuple) or not x:
        return False
    return all(_is_number(v) or _is_number_list(v) for v in x)


def is_container(x: Any) -> bool:
    """Whether ``x`` is a node (a dict, list, tuple or None), not a leaf."""
    if x is None or isinstance(x, dict):
        return True
    return isinstance(x, (list, tuple)) and not _is_number_list(x)


_LEAF_DEF = TreeDef(_LEAF)
_NONE_DEF = TreeDef(_NONE)


def flatten(obj: Any) -> tuple[list[Any], TreeDef]:
    """``(leaves, treedef)``: the leaves of ``obj`` in order, and its structure."""
    out: list[Any] = []
    return out, _flatten(obj, out)


def _flatten(obj: Any, out: list[Any]) -> TreeDef:
    if obj is None:
        return _NONE_DEF
    if isinstance(obj, dict):
        keys = tuple(obj)
        children = tuple(_flatten(obj[k], out) for k in keys)
        factory = obj.default_factory if isinstance(obj, defaultdict) else None
        return TreeDef(_DICT, type(obj), keys, children, factory)
    if isinstance(obj, (list, tuple)) and not _is_number_list(obj):  # (see is_container)
        children = tuple(_flatten(v, out) for v in obj)
        if isinstance(obj, tuple) and hasattr(type(obj), "_fields"):
            return TreeDef(_NAMED, type(obj), tuple(type(obj)._fields), children)
        return TreeDef(_LIST if isinstance(obj, list) else _TUPLE, type(obj), (), children)
    out.append(obj)
    return _LEAF_DEF


def leaves(obj: Any) -> list[Any]:
    """The leaves of ``obj``, in order."""
    return flatten(obj)[0]


def unflatten(treedef: TreeDef, leaves: Any) -> Any:
    """The nest described by ``treedef``, holding ``leaves`` (an iterable) in order."""
    items = list(leaves)
    if len(items) != treedef.num_leaves:
        raise TapegradValueError(f"unflatten: {treedef!r} holds {treedef.num_leaves} leaves, got "
                                 f"{len(items)}")
    return _build(treedef, iter(items))


def _build(d: TreeDef, it: Iterator[Any]) -> Any:
    kind = d.kind
    if kind == _LEAF:
        return next(it)
    if kind == _NONE:
        return None
    values = [_build(c, it) for c in d.children]
    if kind == _DICT:
        pairs = zip(d.keys, values, strict=True)
        if d.node_type is dict:
            return dict(pairs)
        if issubclass(d.node_type, defaultdict):
            return d.node_type(d.extra, pairs)
        return d.node_type(pairs)
    if kind == _NAMED:
        return d.node_type(*values)
    return d.node_type(values)  # list, tuple, or a subclass of one


def tree_map(fn: Callable[..., Any], obj: Any, *rest: Any) -> Any:
    """``fn`` applied leaf by leaf: ``tree_map(f, a, b)`` calls ``f(leaf_a, leaf_b)``;
    ``b`` (and further trees) must have ``a``'s structure (see :func:`flatten_like`)."""
    xs, d = flatten(obj)
    others = [flatten_like(d, r) for r in rest]
    return unflatten(d, [fn(*args) for args in zip(xs, *others, strict=True)])


# ----------------------------------------------------------------------- matching


def flatten_like(treedef: TreeDef, obj: Any, what: str = "value") -> list[Any]:
    """The leaves of ``obj`` taken along ``treedef``'s structure.

    Where ``treedef`` has a leaf, whatever ``obj`` holds there is the leaf (a number
    list too). ``None`` in ``obj`` where ``treedef`` has a subtree stands for ``None``
    at each of its leaves (a zero tangent or cotangent, to the transforms). Dict keys
    are matched by name, lists and tuples by length (either kind for either). Any other
    mismatch raises ``ValueError`` naming ``what`` and the place.
    """
    out: list[Any] = []
    _like(treedef, obj, what, "", out)
    return out


def _like(d: TreeDef, obj: Any, what: str, path: str, out: list[Any]) -> None:
    kind = d.kind
    if kind == _LEAF:
        if isinstance(obj, dict):
            raise TapegradValueError(f"{what}{path}: expected an array, got a dict with keys "
                                     f"{list(obj)}")
        out.append(obj)
        return
    if obj is None:
        out.extend([None] * d.num_leaves)
        return
    if kind == _NONE:
        raise TapegradValueError(f"{what}{path}: expected None (the structure has None there), got "
                                 f"{type(obj).__name__}")
    if kind == _DICT:
        if not isinstance(obj, dict):
            raise TapegradValueError(f"{what}{path}: expected a dict with keys {list(d.keys)}, got "
                                     f"{type(obj).__name__}")
        if obj.keys() != set(d.keys):
            missing = [k for k in d.keys if k not in obj]
            extra = [k for k in obj if k not in set(d.keys)]
            raise TapegradValueError(f"{what}{path}: dict keys do not match: missing {missing}, "
                                     f"unexpected {extra}")
        for k, c in zip(d.keys, d.children, strict=True):
            _like(c, obj[k], what, f"{path}[{k!r}]", out)
        return
    if not isinstance(obj, (list, tuple)) or len(obj) != len(d.children):
        got = (f"{type(obj).__name__} of length {len(obj)}" if isinstance(obj, (list, tuple))
               else type(obj).__name__)
        raise TapegradValueError(f"{what}{path}: expected a sequence of {len(d.children)} items "
                                 f"({_show(d)}), got {got}")
    for i, (c, v) in enumerate(zip(d.children, obj, strict=True)):
        _like(c, v, what, f"{path}[{i}]", out)
