"""``tg.nn`` modules for the plugin's ops: ``Conv2d``, ``MaxPool2d``, ``AvgPool2d``.

Import this module yourself (``from tapegrad_conv.layers import Conv2d``): the plugin
entry point does not, since it runs while ``tapegrad`` itself is being imported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tapegrad as tg
from tapegrad.nn import Module

from .ops import pair


class Conv2d(Module):
    """``conv2d(x, weight, bias, stride, padding)`` with ``weight`` (out, in, kh, kw).

    Weights are He-initialised (normal, std ``sqrt(2 / (in * kh * kw))``); the bias starts
    at zero (``bias=False`` leaves it out).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any,
                 stride: Any = 1, padding: Any = 0, bias: bool = True,
                 dtype: Any = np.float64, rng: Any = None) -> None:
        kh, kw = pair(kernel_size)
        self.stride, self.padding = stride, padding
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        fan_in = in_channels * kh * kw
        w = gen.normal(0.0, np.sqrt(2.0 / fan_in), (out_channels, in_channels, kh, kw))
        self.weight = tg.tensor(w.astype(dtype), requires_grad=True)
        self.bias = tg.tensor(np.zeros(out_channels, dtype=dtype), requires_grad=True) \
            if bias else None

    def forward(self, x: Any) -> Any:
        b = 0.0 if self.bias is None else self.bias
        return tg.ops.conv2d(x, self.weight, b, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, kh, kw = self.weight.shape
        return f"{i}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding}"


class MaxPool2d(Module):
    """``max_pool2d(x, kernel_size, stride)`` as a module."""

    def __init__(self, kernel_size: Any = 2, stride: Any = None) -> None:
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Any) -> Any:
        return tg.ops.max_pool2d(x, kernel_size=self.kernel_size, stride=self.stride)


class AvgPool2d(MaxPool2d):
    """``avg_pool2d(x, kernel_size, stride)`` as a module."""

    def forward(self, x: Any) -> Any:
        return tg.ops.avg_pool2d(x, kernel_size=self.kernel_size, stride=self.stride)
