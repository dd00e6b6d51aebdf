"""Optimizers: ``SGD`` (momentum, Nesterov, weight decay), ``Adam`` and ``AdamW``.

``step()`` updates each parameter's ``.data`` from its ``.grad`` (parameters without a
gradient are skipped); ``zero_grad()`` forgets the gradients. Updates happen in place
when ``.data`` is writable and replace it otherwise, and keep its dtype: a float32
model stays float32 (hyperparameters are held as Python floats, which NumPy never lets
upcast an array). ``lr`` may be changed between steps (``opt.lr = 0.01``).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .errors import TapegradTypeError, TapegradValueError
from .nn.utils import as_param_list, compute_lazy_grads
from .tensor import Tensor


def _update(p: Tensor, delta: np.ndarray) -> None:
    """``p.data -= delta``, in place where the array allows it."""
    if p.data.flags.writeable:
        p.data -= delta
    else:
        p.data = p.data - delta


def _scale(p: Tensor, factor: float) -> None:
    if p.data.flags.writeable:
        p.data *= factor
    else:
        p.data = p.data * factor


def _grad(p: Tensor) -> np.ndarray | None:
    g = p.grad
    if g is None:
        return None
    if isinstance(g, Tensor):
        g = g.data
    g = np.asarray(g)
    return g if g.dtype == p.data.dtype else g.astype(p.data.dtype)


def _check_number(opt: Any, name: str, value: Any) -> None:
    """A hyperparameter must be a real number >= 0 (NaN is refused too)."""
    if not isinstance(value, numbers.Real):
        raise TapegradTypeError(f"{type(opt).__name__}: {name} must be a number, got "
                                f"{type(value).__name__}")
    if not value >= 0:
        raise TapegradValueError(f"{type(opt).__name__}: {name} must be >= 0, got {value}")


class Optimizer:
    """Holds the parameters and per-parameter state; subclasses define ``step``."""

    def __init__(self, params: Any, lr: float) -> None:
        unique: dict[int, Tensor] = {}
        for p in as_param_list(params):
            unique.setdefault(id(p), p)  # a parameter listed twice is updated once
        self.params = list(unique.values())
        if not self.params:
            raise TapegradValueError(f"{type(self).__name__}: got an empty list of parameters")
        for p in self.params:
            if not isinstance(p, Tensor):
                raise TapegradTypeError(f"{type(self).__name__}: parameters must be Tensors, "
                                        f"got {type(p).__name__}")
            if p.data.dtype.kind not in "fc":
                raise TapegradTypeError(f"{type(self).__name__}: parameter of dtype {p.dtype} "
                                        "cannot be optimized")
        _check_number(self, "lr", lr)
        self.lr = float(lr)
        self.state: dict[int, dict[str, Any]] = {}
        self.steps = 0

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        raise NotImplementedError

    def _state(self, p: Tensor) -> dict[str, Any]:
        return self.state.setdefault(id(p), {})


class SGD(Optimizer):
    """Stochastic gradient descent, with PyTorch's conventions:

    ``g = grad + weight_decay * p``; with momentum, ``buf = momentum * buf + g``
    (``buf = g`` on the first step) and ``g = buf`` (or ``g + momentum * buf`` with
    ``nesterov``); then ``p -= lr * g``.
    """

    def __init__(self, params: Any, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        _check_number(self, "momentum", momentum)
        _check_number(self, "weight_decay", weight_decay)
        if nesterov and momentum == 0:
            raise TapegradValueError("SGD: nesterov needs momentum > 0")
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)

    def step(self) -> None:
        compute_lazy_grads(self.params)
        self.steps += 1
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        for p in self.params:
            g = _grad(p)
            if g is None:
                continue
            if wd:
                g = g + wd * p.data
            if mu:
                st = self._state(p)
                buf = st.get("momentum")
                if buf is None:
                    buf = st["momentum"] = g.copy()
                else:
                    buf *= mu
                    buf += g
                g = g + mu * buf if self.nesterov else buf
            _update(p, lr * g)


class Adam(Optimizer):
    """Adam (Kingma & Ba): bias-corrected first and second moment estimates,
    ``p -= lr * m_hat / (sqrt(v_hat) + eps)``.

    ``weight_decay`` is added to the gradient (L2 regularisation, as in PyTorch's
    ``Adam``), or with ``decoupled=True`` applied directly to the weights
    (``p *= 1 - lr * weight_decay``, AdamW by Loshchilov & Hutter).
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False) -> None:
        super().__init__(params, lr)
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2
                and all(isinstance(b, numbers.Real) and 0.0 <= b < 1.0 for b in betas)):
            raise TapegradValueError(f"{type(self).__name__}: betas must be two numbers in "
                                     f"[0, 1), got {betas!r}")
        b1, b2 = (float(b) for b in betas)
        _check_number(self, "eps", eps)
        _check_number(self, "weight_decay", weight_decay)
        self.betas = (b1, b2)
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.decoupled = bool(decoupled)

    def step(self) -> None:
        compute_lazy_grads(self.params)
        self.steps += 1
        lr, eps, wd = self.lr, self.eps, self.weight_decay
        b1, b2 = self.betas
        for p in self.params:
            g = _grad(p)
            if g is None:
                continue
            st = self._state(p)
            if not st:
                st["t"] = 0
                st["m"] = np.zeros_like(p.data)
                st["v"] = np.zeros_like(p.data)
            st["t"] += 1
            t = st["t"]
            if wd and self.decoupled:
                _scale(p, 1.0 - lr * wd)
            elif wd:
                g = g + wd * p.data
            m, v = st["m"], st["v"]
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * (g * g)
            m_hat = m / (1.0 - b1 ** t)
            v_hat = v / (1.0 - b2 ** t)
            _update(p, lr * m_hat / (np.sqrt(v_hat) + eps))


class AdamW(Adam):
    """Adam with decoupled weight decay (default ``weight_decay=0.01``)."""

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)


__all__ = ["SGD", "Adam", "AdamW", "Optimizer"]
