"""tapegrad: automatic differentiation on NumPy, where every op is a plugin.

>>> import tapegrad as tg
>>> x = tg.tensor([1.0, 2.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4.])
"""

from __future__ import annotations

from .anomaly import detect_anomaly
from .compiler import compile  # noqa: A004 - tg.compile, as torch.compile
from .creation import (
    arange,
    eye,
    full,
    linspace,
    ones,
    ones_like,
    rand,
    randn,
    zeros,
    zeros_like,
)
from .dot import to_dot
from .errors import (
    CompileError,
    CompileWarning,
    DifferentiabilityError,
    GradcheckError,
    OpRuleError,
    PluginError,
    SpecError,
    TapegradError,
    UnknownOpError,
)
from .forward_mode import jvp
from .gradcheck import check_grads, numerical_grad
from .hookspecs import hookimpl, hookspec
from .lazy import compute
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
from .spec_files import load_spec
from .state import enable_grad, is_grad_enabled, no_grad
from .tape import Tape
from .tensor import Tensor, tensor
from .transforms import grad, hessian, jacobian, value_and_grad, vjp

_REGISTRY.load_defaults()


def stack(arrays, axis=0):
    """Join tensors along a new axis: ``tg.ops.stack`` (``np.stack`` on Tensors)."""
    return ops.stack(arrays, axis=axis)


def concatenate(arrays, axis=0):
    """Join tensors along an existing axis: ``tg.ops.concatenate``."""
    return ops.concatenate(arrays, axis=axis)


def __getattr__(name: str) -> object:
    # tg.nn and tg.optim are imported on first use: most programs never pay for them.
    if name in ("nn", "optim"):
        from importlib import import_module

        return import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'tapegrad' has no attribute {name!r}")


__version__ = "0.1.0"

__all__ = [
    "CompileError", "CompileWarning", "DifferentiabilityError", "GradcheckError", "OpDef",
    "OpInfo", "OpRuleError",
    "PluginError", "SpecError", "Tape", "TapegradError", "Tensor", "UnknownOpError",
    "enable_grad", "get_op", "hookimpl", "hookspec", "is_grad_enabled", "lift",
    "list_ops", "load_spec", "no_grad", "ops", "plugin_manager", "register_plugin", "tensor",
    "unregister_plugin",
    "check_grads", "compile", "compute", "detect_anomaly", "grad", "hessian", "jacobian",
    "jvp", "numerical_grad", "to_dot", "value_and_grad", "vjp", "stack", "concatenate",
    "arange", "eye", "full", "linspace", "ones", "ones_like", "rand", "randn", "zeros",
    "zeros_like",
]
