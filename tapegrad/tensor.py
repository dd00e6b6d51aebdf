"""The Tensor: an array plus the graph node gradients reach it through.

This module knows no op by name. Arithmetic operators, ``.sum()``, ``.T`` and the other
methods are bound onto :class:`Tensor` by the registry, from the ops that plugins
declare (``OpDef(method=..., operators=..., properties=...)``).

``Tensor._node`` is ``None`` for a tensor nothing tracks, else its node
(:mod:`tapegrad.entry`): a :class:`Leaf` for a user's tensor with
``requires_grad=True``, a :class:`Record` (or :class:`Part`) for the result of a
recorded op. The data of a recorded result leaves the tensor read-only (``.data``,
``.numpy()``, ``.detach()``): the graph may have saved it for backward.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from . import leaves
from .backward import replay
from .dispatch import NumpyProtocol
from .entry import Leaf, Node, Watched
from .errors import GraphError, TapegradTypeError
from .lazy import foreign
from .state import STATE

_new = object.__new__
ndarray = np.ndarray


def _conversion(convert: Callable[[Any], Any], what: str) -> Callable[[Any], Any]:
    """A Python conversion (``float(t)``...): the value leaves the engine (see _leaving)."""
    def method(self: Tensor) -> Any:
        if not STATE.quiet:
            _leaving(self, what)
        return convert(self._data)

    method.__name__ = f"__{getattr(convert, '__name__', what)}__"
    return method


def _comparison(ufunc: np.ufunc, op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A comparison: not differentiable, a plain bool array (while tg.compile traces, a
    step of its plan: see _compare)."""
    def method(self: Tensor, other: Any) -> Any:
        if STATE.quiet:
            return op(self._data, _plain(other))
        return _compare(ufunc, op, self, other)

    method.__name__ = f"__{op.__name__}__"
    return method


class Tensor(NumpyProtocol):
    """An n-dimensional array that can record the ops applied to it.

    Build one with :func:`tensor`. ``data`` is the array (returned as is, never
    copied on read); ``grad`` is ``None`` until a backward pass reaches the tensor, then
    an array of the same shape and dtype that later passes add to.
    """

    __slots__ = ("_data", "_node", "__dict__", "__weakref__")

    # Defaults kept on the class so that creating a tensor sets two slots only.
    grad: Any = None
    name: str | None = None

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 name: str | None = None) -> None:
        self._data = _to_data(data, dtype)
        self._node = None
        if not STATE.quiet and STATE.thread.trace is not None:  # tg.compile is tracing
            STATE.thread.trace.made(self, data)
        if requires_grad:
            self.requires_grad = True
        if name is not None:
            self.name = name

    # ------------------------------------------------------------ data
    @property
    def data(self) -> Any:
        """The array (never a copy); read-only for the result of a recorded op."""
        if not STATE.quiet:
            _leaving(self, ".data")
        return _exit(self)

    @data.setter
    def data(self, value: Any) -> None:
        if not self.is_leaf:
            raise GraphError("cannot replace .data of a tensor produced by a recorded op; "
                             "detach() it or build a new tensor")
        if value is self._data:
            return  # an in-place update (x.data -= ...) that NumPy already allowed
        arr = value if isinstance(value, ndarray) or foreign(value) \
            else np.asarray(value)
        if arr.dtype.kind not in "biufc":
            raise TapegradTypeError(f"Tensor.data must be numeric, got dtype {arr.dtype}")
        if self.requires_grad and arr.dtype.kind not in "fc":
            raise TapegradTypeError("Tensor.data of a tensor that requires grad must be "
                                    f"floating, got dtype {arr.dtype}")
        self._data = arr

    def numpy(self) -> Any:
        """The underlying array (not a copy; read-only for a recorded result)."""
        if not STATE.quiet:
            _leaving(self, ".numpy()")
        return _exit(self)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data, cut from the graph."""
        return _make(_exit(self), None)

    def item(self) -> Any:
        """The single element as a Python number."""
        if not STATE.quiet:
            _leaving(self, ".item()")
        return _concrete(self._data).item()

    def tolist(self) -> Any:
        if not STATE.quiet:
            _leaving(self, ".tolist()")
        return _concrete(self._data).tolist()

    # ------------------------------------------------------------ gradient tracking
    @property
    def requires_grad(self) -> bool:
        """Whether ops on this tensor are recorded so gradients can flow back to it."""
        node = self._node
        return node is not None and type(node) is not Watched

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if not self.is_leaf:
            if not flag:
                raise GraphError("requires_grad can only be turned off on a leaf tensor; "
                                 "use .detach() to get a tensor cut from the graph")
            return
        if flag and self._data.dtype.kind not in "fc":
            raise TapegradTypeError(
                f"requires_grad=True needs a floating-point tensor, got dtype "
                f"{self._data.dtype}; convert first, e.g. tg.tensor(x, dtype=float)")
        if flag != self.requires_grad:
            self._node = Leaf(self) if flag else None

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op."""
        return self._node is None or isinstance(self._node, Leaf)

    def backward(self, grad: Any = None, retain_graph: bool = False,
                 create_graph: bool = False) -> None:
        """Reverse pass from this tensor, accumulating into ``.grad`` of the leaves.

        ``grad`` is the gradient of the final objective with respect to this tensor;
        it may be left out only when the tensor holds exactly one element. Saved values
        are freed as they are consumed unless ``retain_graph`` (implied by
        ``create_graph``, which records the backward pass itself so that the
        resulting ``.grad`` can be differentiated again).
        """
        if not STATE.quiet:
            _leaving(self, ".backward()")
        if self._node is None:
            raise GraphError(
                "backward() on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True (or it ran under tg.no_grad())")
        seed = leaves.make_seed(self._data, grad, create_graph, wire)
        grads = replay({self._node: seed}, retain_graph or create_graph,
                                 wire if create_graph else None)
        leaves.commit_leaves(grads, create_graph)

    def register_hook(self, fn: Callable[[Any], Any]) -> Callable[[], None]:
        """Call ``fn(grad)`` with the gradient flowing into this tensor during backward.

        If ``fn`` returns something other than ``None`` it replaces the gradient.
        Returns a function that removes the hook.
        """
        node = self._node
        if node is None:
            raise GraphError("cannot register a hook on a tensor that does not require grad")
        if node.hooks is None:
            node.hooks = []
        hooks = node.hooks
        hooks.append(fn)

        def remove() -> None:
            if fn in hooks:
                hooks.remove(fn)

        return remove

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad = None``)."""
        self.grad = None

    # ------------------------------------------------------------ in-place updates
    def _inplace(self, ufunc: np.ufunc, other: Any) -> Any:
        """``w -= lr * g`` on a leaf under ``no_grad`` updates it in place, as in PyTorch.

        A leaf that requires grad outside ``no_grad`` refuses (the update would not be
        recorded); any other tensor gets Python's fallback: a new tensor is bound.
        """
        node = self._node
        if not STATE.quiet:
            _leaving(self, f"an in-place {ufunc.__name__}")
        if type(node) is not Leaf:
            return NotImplemented
        if STATE.thread.grad_enabled:
            raise GraphError(
                f"in-place {ufunc.__name__} on a leaf tensor that requires grad: it would "
                "not be recorded. Update parameters inside `with tg.no_grad():`, or write "
                "y = y + ... to build a new tensor")
        ufunc(self._data, other._data if isinstance(other, Tensor) else other,
              out=self._data)
        return self

    def __iadd__(self, other: Any) -> Any:
        return self._inplace(np.add, other)

    def __isub__(self, other: Any) -> Any:
        return self._inplace(np.subtract, other)

    def __imul__(self, other: Any) -> Any:
        return self._inplace(np.multiply, other)

    def __itruediv__(self, other: Any) -> Any:
        return self._inplace(np.true_divide, other)

    # ------------------------------------------------------------ array attributes
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

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TapegradTypeError("len() of a 0-d tensor")
        return len(self._data)

    __bool__ = _conversion(bool, "bool()")
    __float__ = _conversion(float, "float()")
    __int__ = _conversion(int, "int()")
    __complex__ = _conversion(complex, "complex()")
    __index__ = _conversion(operator.index, "an index (__index__)")

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TapegradTypeError(
            "Tensors are immutable: build a new tensor with ops (tg.ops.where, "
            "concatenate, ...), or write into .data of a leaf when no graph uses it")

    __lt__ = _comparison(np.less, operator.lt)
    __le__ = _comparison(np.less_equal, operator.le)
    __gt__ = _comparison(np.greater, operator.gt)
    __ge__ = _comparison(np.greater_equal, operator.ge)
    __eq__ = _comparison(np.equal, operator.eq)  # type: ignore[assignment]
    __ne__ = _comparison(np.not_equal, operator.ne)  # type: ignore[assignment]

    __hash__ = object.__hash__  # tensors are graph nodes: identity, not value

    def __repr__(self) -> str:
        body = (repr(self._data) if foreign(self._data)  # Dask: its summary, never computed
                else np.array2string(np.asarray(self._data), separator=", ", prefix="tensor("))
        extra = []
        if self._data.dtype != np.float64:
            extra.append(f"dtype={self._data.dtype}")
        op = getattr(self._node, "op", None) or getattr(getattr(self._node, "record", None),
                                                        "op", None)
        if op is not None:
            extra.append(f"op={op.name}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name is not None:
            extra.append(f"name={self.name!r}")
        if self.grad is not None:
            g = self.grad._data if isinstance(self.grad, Tensor) else self.grad
            extra.append("grad=" + (repr(g) if foreign(g) else np.array2string(
                np.asarray(g), separator=", ", prefix="grad=")))
        return "tensor(" + ", ".join([body, *extra]) + ")"


# Names defined by Tensor itself; ops may not bind over them.
CORE_ATTRIBUTES = frozenset(vars(Tensor)) | frozenset(vars(NumpyProtocol)) | {
    "grad", "name", "requires_grad", "op"}


def _make(data: Any, node: Node | None) -> Tensor:
    """Wrap an array produced by an op (no validation, no copy)."""
    t = _new(Tensor)
    t._data = data
    t._node = node
    return t


def wire(data: Any, node: Node | None) -> Tensor:
    """A tensor whose gradients reach ``node``: the engine's view of a saved value."""
    return _make(data, node)


def _exit(t: Tensor) -> Any:
    """``t``'s data, leaving the engine: read-only if a record may have saved it."""
    d = t._data
    if t._node is not None and not isinstance(t._node, Leaf) and type(d) is ndarray \
            and d.flags.writeable:
        d.setflags(write=False)
    return d


def _concrete(d: Any) -> Any:
    """An array with ``.item()``: a Dask array is computed (a deliberate read)."""
    return d if hasattr(d, "item") else np.asarray(d)


def _plain(x: Any) -> Any:
    return x._data if isinstance(x, Tensor) else x


def _compare(ufunc: np.ufunc, op: Callable[[Any, Any], Any], t: Tensor, other: Any) -> Any:
    """``op(t, other)`` on the data; while tg.compile traces, the tracer's plan step."""
    if not STATE.quiet and STATE.thread.trace is not None:
        return STATE.thread.trace.numpy(ufunc, (t, other), {})
    return op(t._data, _plain(other))


def _leaving(t: Tensor, what: str) -> None:
    """``t``'s value is about to leave for Python: while tg.compile traces, the tracer
    refuses it when the value can change between calls (it raises CompileError)."""
    trace = STATE.thread.trace
    if trace is not None:
        trace.escape(t, what)


def _to_data(data: Any, dtype: Any) -> Any:
    if isinstance(data, Tensor):
        data = data._data
    elif not isinstance(data, (ndarray, np.generic, int, float, complex, bool, list,
                               tuple)) and hasattr(data, "__array_function__"):
        return data if dtype is None else data.astype(dtype)  # Dask, CuPy: kept as is
    try:
        arr = np.array(data, dtype=dtype, copy=True)
    except (TypeError, ValueError) as e:
        raise TapegradTypeError(
            f"tg.tensor: cannot make a numeric array from {_short(data)}: {e}") from None
    if arr.dtype.kind not in "biufc":
        raise TapegradTypeError(
            f"tg.tensor: data must be numeric, got dtype {arr.dtype} from {_short(data)}")
    return arr


def _short(data: Any) -> str:
    text = repr(data)
    return text if len(text) <= 60 else text[:57] + "..."


def tensor(data: Any, requires_grad: bool = False, dtype: Any = None,
           name: str | None = None) -> Tensor:
    """Make a tensor from a number, a nested list, an array or another tensor.

    The data is copied (as ``np.array`` does), so later changes to the argument do not
    reach the tensor. Python floats become float64; a float32 array stays float32.
    ``requires_grad=True`` needs a floating-point dtype (``TypeError`` otherwise).
    Arrays of other libraries implementing NumPy's protocols (Dask, CuPy) are kept as
    they are, not copied.
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype, name=name)


def is_tracked(x: Any) -> bool:
    """Whether ``x`` is a tensor whose ops are being recorded."""
    return isinstance(x, Tensor) and x._node is not None
