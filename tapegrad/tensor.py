"""The Tensor: an ndarray plus what the tape needs to route gradients to it.

This module knows no op by name. Arithmetic operators, ``.sum()``, ``.T`` and the other
methods are bound onto :class:`Tensor` by the registry, from the ops that plugins
declare (``OpDef(method=..., operators=..., properties=...)``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

_new = object.__new__


class _LeafMark:
    """What ``Tensor._node`` holds for a tensor that is its own graph node."""

    __slots__ = ("kind",)

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind}>"


#: ``Tensor._node`` of a leaf with ``requires_grad=True``.
LEAF = _LeafMark("leaf")
#: ``Tensor._node`` of a leaf watched by an active ``tg.Tape`` only.
WATCHED = _LeafMark("watched")
#: Set once any recorded result has a hook: until then the replay does not look for
#: hooks on every entry (a class-attribute read is slow on Python 3.11).
ENTRY_HOOKS = [False]

#: ``Tensor._node`` of the result of a recorded op: the tensor is a tape entry
#: (:class:`tapegrad.entry.Entry`).
RESULT = _LeafMark("result")


class Tensor:
    """An n-dimensional array that can record the ops applied to it.

    Build one with :func:`tensor`. ``data`` is the ndarray (returned as is, never
    copied on read); ``grad`` is ``None`` until a backward pass reaches the tensor, then
    an ndarray of the same shape and dtype that later passes add to.
    """

    __slots__ = ("_data", "_node", "__dict__", "__weakref__")

    # Defaults kept on the class so that creating a tensor sets two slots only.
    grad: np.ndarray | Any | None = None
    name: str | None = None
    _hooks: list[Callable[[Any], Any]] | None = None

    # ``_node`` says how gradients reach this tensor: ``None`` (they do not), LEAF or
    # WATCHED (a leaf: they are summed on the tensor itself), RESULT (the tensor is the
    # tape entry of the op that made it), or another tensor (an internal alias of that
    # leaf, made by the replay for create_graph).

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        self._data = _to_data(data, dtype)
        self._node = None
        if requires_grad:
            self.requires_grad = True
        if name is not None:
            self.name = name

    def _set_data(self, value: Any) -> None:
        if value is self._data:
            return  # an in-place update (x.data -= ...) that NumPy already allowed
        arr = np.asarray(value)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"Tensor.data must be a numeric ndarray, got dtype {arr.dtype}")
        if self.requires_grad and arr.dtype.kind not in "fc":
            raise TypeError(f"Tensor.data of a tensor that requires grad must be floating, "
                            f"got dtype {arr.dtype}")
        self._data = arr

    # The getter is a C call (training loops read it on every step); results of recorded
    # ops override it (entry.Entry.data) to hand their data out read-only.
    data = property(operator.attrgetter("_data"), _set_data,
                    doc="The ndarray (never a copy). Results of recorded ops are "
                        "read-only: the graph may have saved them for backward.")

    # ------------------------------------------------------------ gradient tracking
    @property
    def requires_grad(self) -> bool:
        """Whether ops on this tensor are recorded so gradients can flow back to it."""
        node = self._node
        return node is not None and node is not WATCHED

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self._node is RESULT:
            if not flag:
                raise RuntimeError(
                    "requires_grad can only be turned off on a leaf tensor; use .detach() "
                    "to get a tensor cut from the graph"
                )
            return
        if flag:
            kind = self._data.dtype.kind
            if kind not in "fc":
                raise TypeError(
                    f"requires_grad=True needs a floating-point tensor, got dtype "
                    f"{self._data.dtype}; convert first, e.g. tg.tensor(x, dtype=float)"
                )
            self._node = LEAF
        else:
            self._node = None

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op."""
        return self._node is not RESULT

    def backward(self, grad: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Reverse pass from this tensor, accumulating into ``.grad`` of the leaves.

        ``grad`` is the gradient of the final objective with respect to this tensor;
        it may be left out only when the tensor holds exactly one element. Saved values
        are freed as they are consumed unless ``retain_graph`` (implied by
        ``create_graph``, which records the backward pass itself so that the
        resulting ``.grad`` can be differentiated again).
        """
        _engine["backward"](self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def register_hook(self, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``fn(grad)`` with the gradient flowing into this tensor during backward.

        If ``fn`` returns something other than ``None`` it replaces the gradient.
        Returns a function that removes the hook.
        """
        node = self._node
        if node is None:
            raise RuntimeError(
                "cannot register a hook on a tensor that does not require grad"
            )
        owner = self if type(node) is _LeafMark else node
        hooks = owner._hooks
        if hooks is None:
            hooks = owner._hooks = []
        if node is RESULT:
            ENTRY_HOOKS[0] = True
        hooks.append(fn)

        def remove() -> None:
            if fn in hooks:
                hooks.remove(fn)

        return remove

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph."""
        return _make(self._data, None)

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    # ------------------------------------------------------------ array protocol
    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    def item(self) -> Any:
        """The single element as a Python number."""
        return self._data.item()

    def numpy(self) -> np.ndarray:
        """The underlying ndarray (not a copy)."""
        return self.data

    def tolist(self) -> Any:
        return self._data.tolist()

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def __float__(self) -> float:
        return float(self._data)

    def __int__(self) -> int:
        return int(self._data)

    def __index__(self) -> int:
        return operator.index(self._data)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "Tensors are immutable: build a new tensor with ops (tg.ops.where, "
            "concatenate, ...), or write into .data of a leaf when no graph uses it"
        )

    # NumPy calling tapegrad (np.exp(t), ndarray @ t): see dispatch.py.
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return _dispatch.array_of(self, dtype, copy)

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any):
        if method == "__call__" and not kwargs:  # the common case, without a further call
            op = _dispatch.UFUNC_OPS.get(ufunc)
            if op is not None:
                return op(*inputs)
        return _dispatch.array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func: Callable, types: Any, args: Any, kwargs: Any):
        return _dispatch.array_function(func, args, kwargs)

    # Comparisons are not differentiable: they return plain bool ndarrays.
    def __lt__(self, other: Any) -> np.ndarray:
        return self._data < _plain(other)

    def __le__(self, other: Any) -> np.ndarray:
        return self._data <= _plain(other)

    def __gt__(self, other: Any) -> np.ndarray:
        return self._data > _plain(other)

    def __ge__(self, other: Any) -> np.ndarray:
        return self._data >= _plain(other)

    def __eq__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self._data == _plain(other)

    def __ne__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self._data != _plain(other)

    __hash__ = object.__hash__  # tensors are graph nodes: identity, not value

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(")
        extra = []
        if self._data.dtype != np.float64:
            extra.append(f"dtype={self._data.dtype}")
        if self._node is RESULT:
            extra.append(f"op={self.op.name}")  # type: ignore[attr-defined]
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name is not None:
            extra.append(f"name={self.name!r}")
        if self.grad is not None:
            g = np.asarray(self.grad)
            extra.append("grad=" + np.array2string(g, separator=", ", prefix="grad="))
        return "tensor(" + ", ".join([body, *extra]) + ")"


#: The reverse pass, filled in by backward.py when it is imported (it imports this module).
_engine: dict[str, Callable[..., Any]] = {}

# Names defined by Tensor itself (and by entry.Entry, the tensors ops record); ops may
# not bind over them.
CORE_ATTRIBUTES = frozenset(vars(Tensor)) | {"grad", "name", "requires_grad", "op", "nodes",
                                             "inputs", "params", "seq", "site", "locked",
                                             "release", "released", "residual"}


def _make(data: np.ndarray, node: Any) -> Tensor:
    """Wrap an ndarray produced by an op (no validation, no copy)."""
    t = _new(Tensor)
    t._data = data
    t._node = node
    return t



def _plain(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _to_data(data: Any, dtype: Any) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data._data
    try:
        arr = np.array(data, dtype=dtype, copy=True)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"tg.tensor: cannot make a numeric array from {_short(data)}: {e}"
        ) from None
    if arr.dtype.kind not in "biufc":
        raise TypeError(
            f"tg.tensor: data must be numeric, got dtype {arr.dtype} from {_short(data)}"
        )
    return arr


def _short(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None,
           name: str | None = None) -> Tensor:
    """Make a tensor from a number, a nested list, an ndarray or another tensor.

    The data is copied (as ``np.array`` does), so later changes to the argument do not
    reach the tensor. Python floats become float64; a float32 array stays float32.
    ``requires_grad=True`` needs a floating-point dtype (``TypeError`` otherwise).
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def is_tracked(x: Any) -> bool:
    """Whether ``x`` is a tensor whose ops are being recorded."""
    return isinstance(x, Tensor) and x._node is not None


# Last: dispatch.py imports this module (and graph.py, which imports it too).
from . import dispatch as _dispatch  # noqa: E402
