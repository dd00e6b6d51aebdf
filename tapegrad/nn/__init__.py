"""Neural-network helpers: modules, layers, activations, losses, gradient clipping.

>>> import tapegrad as tg
>>> model = tg.nn.MLP(2, [8, 1], activation="tanh", rng=0)
>>> len(model.parameters())
4
"""

from __future__ import annotations

from .layers import (
    ACTIVATIONS,
    MLP,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    activation_module,
    init_weight,
    manual_seed,
)
from .losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    MSELoss,
    binary_cross_entropy_with_logits,
    cross_entropy,
    log_softmax,
    logsumexp,
    mse_loss,
    softmax,
)
from .module import Module, Sequential, StateDictError
from .utils import clip_grad_norm, clip_grad_norm_

__all__ = [
    "ACTIVATIONS", "BCEWithLogitsLoss", "CrossEntropyLoss", "Dropout", "Flatten",
    "Identity", "LeakyReLU", "Linear", "LogSoftmax", "MLP", "MSELoss", "Module", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "StateDictError", "Tanh", "activation_module",
    "binary_cross_entropy_with_logits", "clip_grad_norm", "clip_grad_norm_",
    "cross_entropy", "init_weight", "log_softmax", "logsumexp", "manual_seed", "mse_loss",
    "softmax",
]
