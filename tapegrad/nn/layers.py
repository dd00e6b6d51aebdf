"""Layers: ``Linear``, ``MLP``, activations as modules, ``Flatten``, ``Dropout``.

Weights are drawn from a module-level generator (``tg.nn.manual_seed(seed)`` makes
runs repeatable) or from ``rng=`` (a seed or a ``np.random.Generator``). ``dtype=``
(float64 by default) sets the dtype of the parameters, as PyTorch's ``dtype=`` does:
a float32 model gives float32 outputs for float32 (or plain float64 array) inputs and
float32 gradients, with no conversion by hand. ``Module.astype`` converts an existing
model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tapegrad.errors import TapegradTypeError, TapegradValueError
from tapegrad.registry import ops
from tapegrad.tensor import Tensor

from .module import Module

_default_rng = [np.random.default_rng()]


def manual_seed(seed: int) -> None:
    """Seed the generator that layers draw their initial weights from."""
    _default_rng[0] = np.random.default_rng(seed)


def _rng(rng: Any) -> np.random.Generator:
    if rng is None:
        return _default_rng[0]
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def param_dtype(dtype: Any, owner: str) -> np.dtype:
    """The dtype of a layer's parameters: float64 unless given; floating only."""
    dt = np.dtype(np.float64 if dtype is None else dtype)
    if dt.kind != "f":
        raise TapegradTypeError(f"{owner}: dtype= must be a real floating dtype "
                                f"(np.float32, np.float64), got {dt}")
    return dt


def layer_size(n: Any, what: str, owner: str) -> int:
    """A layer width: a positive int (a float or a bool is a mistake, not a width)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TapegradTypeError(f"{owner}: {what} must be an int, got {n!r}")
    if n < 1:
        raise TapegradValueError(f"{owner}: {what} must be >= 1, got {n}")
    return int(n)


def init_weight(kind: str | Callable[..., np.ndarray], shape: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
    """Initial weights of shape ``(fan_in, fan_out)``.

    ``"he"`` (Kaiming): normal with std ``sqrt(2 / fan_in)``, for ReLU networks.
    ``"xavier"`` (Glorot): uniform on ``+-sqrt(6 / (fan_in + fan_out))``, for tanh and
    sigmoid. ``"lecun"``: normal with std ``sqrt(1 / fan_in)``. ``"zeros"``. A callable
    is called as ``kind(rng, shape)``.
    """
    fan_in, fan_out = shape[0], shape[-1]
    if callable(kind):
        return np.asarray(kind(rng, shape))
    if kind in ("he", "kaiming"):
        return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
    if kind in ("xavier", "glorot"):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    if kind == "lecun":
        return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
    if kind == "zeros":
        return np.zeros(shape)
    raise TapegradValueError(f"unknown init {kind!r}: use 'he', 'xavier', 'lecun', 'zeros' "
                             "or a callable (rng, shape) -> array")


class Linear(Module):
    """``y = x @ weight + bias`` with ``weight`` of shape ``(n_in, n_out)``.

    Plain arrays given as input are cast to the weights' dtype (a float32 layer fed
    float64 data computes in float32); Tensors are used as they are.

    ``init`` is ``"he"`` (default), ``"xavier"``, ``"lecun"``, ``"zeros"`` or a callable
    ``(rng, shape) -> array``; the bias starts at zero (``bias=False`` leaves it out).
    """

    def __init__(self, n_in: int, n_out: int, bias: bool = True,
                 init: str | Callable[..., np.ndarray] = "he", dtype: Any = None,
                 rng: Any = None) -> None:
        owner = type(self).__name__
        self.n_in = layer_size(n_in, "n_in", owner)
        self.n_out = layer_size(n_out, "n_out", owner)
        dtype = param_dtype(dtype, owner)
        w = init_weight(init, (self.n_in, self.n_out), _rng(rng))
        self.weight = Tensor(w.astype(dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(self.n_out, dtype=dtype), requires_grad=True) if bias \
            else None

    def forward(self, x: Any) -> Tensor:
        if not isinstance(x, Tensor):  # constant inputs take the weights' dtype: no upcast
            x = np.asarray(x)
            if x.dtype != self.weight.dtype and x.dtype.kind in "biuf":
                x = x.astype(self.weight.dtype)
        y = ops.matmul(x, self.weight)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_out}, bias={self.bias is not None}"


# ------------------------------------------------------------------ activations


class Identity(Module):
    def forward(self, x: Any) -> Any:
        return x


class ReLU(Module):
    def forward(self, x: Any) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    def forward(self, x: Any) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Any) -> Tensor:
        return ops.sigmoid(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        mask = (x if isinstance(x, Tensor) else np.asarray(x)) > 0  # (a step in tg.compile)
        return ops.where(mask, x, x * self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Softmax(Module):
    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        return ops.softmax(x, axis=self.axis)


class LogSoftmax(Module):
    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Tensor:
        return ops.log_softmax(x, axis=self.axis)


class Flatten(Module):
    """``(N, ...) -> (N, prod(...))``."""

    def forward(self, x: Any) -> Tensor:
        return ops.reshape(x, (x.shape[0], -1))


class Dropout(Module):
    """Zero each element with probability ``p`` in training mode, scaling the rest by
    ``1 / (1 - p)``; the identity in eval mode."""

    def __init__(self, p: float = 0.5, rng: Any = None) -> None:
        if not 0.0 <= p < 1.0:
            raise TapegradValueError(f"Dropout: p must lie in [0, 1), got {p}")
        self.p = float(p)
        self._gen = _rng(rng)

    def forward(self, x: Any) -> Any:
        if not self.training or self.p == 0.0:
            return x
        keep = self._gen.random(x.shape) >= self.p
        return x * (keep.astype(x.dtype) / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


ACTIVATIONS: dict[str, type[Module]] = {
    "relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "leaky_relu": LeakyReLU,
    "identity": Identity, "linear": Identity, "none": Identity,
}


def activation_module(activation: Any) -> Any:
    """A module for ``activation``: a name in ``ACTIVATIONS``, a Module class or
    instance, or any callable (``tg.ops.tanh``)."""
    if activation is None:
        return Identity()
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation.lower()]()
        except KeyError:
            raise TapegradValueError(f"unknown activation {activation!r}; known: "
                                     f"{sorted(ACTIVATIONS)}, or pass a callable") from None
    if isinstance(activation, type) and issubclass(activation, Module):
        return activation()
    if callable(activation):
        return activation
    raise TapegradTypeError(f"activation must be a name, a Module or a callable, got "
                            f"{activation!r}")


class MLP(Module):
    """A multi-layer perceptron: ``Linear(n_in, sizes[0])``, activation, ...,
    ``Linear(sizes[-2], sizes[-1])``; the last layer stays linear.

    ``init`` defaults to ``"he"`` for ReLU-like activations and ``"xavier"`` otherwise.
    """

    def __init__(self, n_in: int, sizes: list[int] | tuple[int, ...],
                 activation: Any = "relu", bias: bool = True,
                 init: str | Callable[..., np.ndarray] | None = None, dtype: Any = None,
                 rng: Any = None) -> None:
        owner = type(self).__name__
        dtype = param_dtype(dtype, owner)
        if isinstance(sizes, (int, np.integer)):
            raise TapegradTypeError(f"{owner}: sizes must be a list of layer widths, got "
                                    f"{sizes!r}; write [{sizes}]")
        if not sizes:
            raise TapegradValueError(f"{owner} needs at least one layer size")
        if init is None:
            name = activation.lower() if isinstance(activation, str) else \
                getattr(activation, "__name__", type(activation).__name__).lower()
            init = "he" if "relu" in name else "xavier"
        gen = _rng(rng)
        dims = [layer_size(n_in, "n_in", owner),
                *[layer_size(s, f"sizes[{i}]", owner) for i, s in enumerate(sizes)]]
        self.layers: list[Any] = []
        for i in range(len(sizes)):
            self.layers.append(Linear(dims[i], dims[i + 1], bias=bias, init=init,
                                      dtype=dtype, rng=gen))
            if i < len(sizes) - 1:
                self.layers.append(activation_module(activation))

    def forward(self, x: Any) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for i, layer in enumerate(self.layers):
            lines.append(f"  ({i}): " + repr(layer).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"
