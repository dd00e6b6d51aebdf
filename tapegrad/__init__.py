"""tapegrad: automatic differentiation on NumPy, where every op is a plugin.

>>> import tapegrad as tg
>>> x = tg.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4.])
"""

from __future__ import annotations

from .errors import (
    DifferentiabilityError,
    GradcheckError,
    OpRuleError,
    PluginError,
    SpecError,
    TapegradError,
    UnknownOpError,
)
from .hookspecs import hookimpl, hookspec
from .opdef import OpDef, OpInfo
from .registry import REGISTRY as _REGISTRY
from .registry import (
    get_op,
    lift,
    list_ops,
    ops,
    plugin_manager,
    register_plugin,
    unregister_plugin,
)
from .tape import Tape, enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor, tensor

_REGISTRY.load_defaults()

__version__ = "0.1.0"

__all__ = [
    "DifferentiabilityError", "GradcheckError", "OpDef", "OpInfo", "OpRuleError",
    "PluginError", "SpecError", "Tape", "TapegradError", "Tensor", "UnknownOpError",
    "enable_grad", "get_op", "hookimpl", "hookspec", "is_grad_enabled", "lift",
    "list_ops", "no_grad", "ops", "plugin_manager", "register_plugin", "tensor",
    "unregister_plugin",
]
