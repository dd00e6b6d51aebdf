"""tapegrad-conv: 2-D convolution and pooling ops for tapegrad, as a plugin.

Installing the distribution is all it takes: its entry point (group ``tapegrad``, name
``conv``) registers ``conv2d``, ``conv_transpose2d``, ``max_pool2d``, ``avg_pool2d``
(and the ops their gradients are made of) plus the YAML-declared activations in
``activations.yaml``, as ``tg.ops.<name>``. Without installing, register it at run time::

    import tapegrad as tg, tapegrad_conv.plugin
    tg.register_plugin(tapegrad_conv.plugin, name="conv")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0) -> Any:
    """``tg.ops.conv2d`` with an optional bias (``None``: no bias)."""
    import tapegrad as tg

    return tg.ops.conv2d(x, weight, 0.0 if bias is None else bias,
                         stride=stride, padding=padding)
