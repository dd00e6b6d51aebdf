"""Differential test against ``torch.autograd`` (optional: skipped without PyTorch).

The random programs of ``test_property.py`` are run twice, once on tapegrad and once on
PyTorch (float64, CPU), restricted to the ops with a known PyTorch counterpart; the
objective and every leaf gradient must agree to rounding. PyTorch is not a dependency.
"""

from __future__ import annotations

import importlib.util
import operator
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from hypothesis import given  # noqa: E402

import tapegrad as tg  # noqa: E402


def _load_programs():
    """``test_property.py`` as a module (the tests folder is not a package)."""
    name = "_tapegrad_property_programs"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).with_name("test_property.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tp = _load_programs()


def _t(x):
    """A constant for torch: ndarrays become tensors, numbers and slices stay."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.array(x))  # a contiguous copy; 0-d stays 0-d
    if isinstance(x, tuple):
        return tuple(_t(i) for i in x)
    return x


def _dims(x, axis):
    if axis is None:
        return tuple(range(x.ndim))
    return axis if isinstance(axis, tuple) else (axis,)


def _reduce(fn):
    def run(x, axis=None, keepdims=False):
        dims = _dims(x, axis)
        if not dims:  # 0-d input: nothing to reduce
            return x.clone()
        return fn(x, dim=dims, keepdim=keepdims)
    return run


def _sum(x, dim, keepdim):
    return torch.sum(x, dim=dim, keepdim=keepdim)


def _mean(x, dim, keepdim):
    return torch.mean(x, dim=dim, keepdim=keepdim)


def _reduction(x, how):
    """PyTorch's ``reduction=`` argument, for formulas written out by hand (PyTorch's
    fused BCE-with-logits does not broadcast its target)."""
    return {"mean": torch.mean, "sum": torch.sum, "none": lambda v: v}[how](x)


_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64}

#: op name -> function of (inputs..., **params) on torch tensors
TORCH = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul,
    "div": operator.truediv, "pow": operator.pow, "matmul": operator.matmul,
    "neg": operator.neg, "abs": torch.abs,
    "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "relu": torch.relu, "sin": torch.sin, "cos": torch.cos,
    "tan": torch.tan, "sinh": torch.sinh, "cosh": torch.cosh, "expm1": torch.expm1,
    "log1p": torch.log1p, "arcsin": torch.asin, "arctan": torch.atan,
    "square": torch.square, "reciprocal": torch.reciprocal,
    "silu": F.silu, "softplus": F.softplus,
    "gelu": lambda x: F.gelu(x, approximate="tanh"),
    "elu": lambda x, alpha=1.0: F.elu(x, alpha=alpha),
    "leaky_relu": lambda x, slope=0.01: F.leaky_relu(x, negative_slope=slope),
    "sum": _reduce(_sum), "mean": _reduce(_mean),
    "max": _reduce(torch.amax), "min": _reduce(torch.amin),
    "clip": lambda x, a_min=None, a_max=None: torch.clamp(x, min=a_min, max=a_max),
    "reshape": lambda x, shape: x.reshape(shape),
    "transpose": lambda x, axes=None: x.permute(
        tuple(reversed(range(x.ndim))) if axes is None else axes),
    "swapaxes": lambda x, axis1=0, axis2=1: torch.swapaxes(x, axis1, axis2),
    "broadcast_to": lambda x, shape: torch.broadcast_to(x, shape),
    "getitem": lambda x, index: x[_t(index)],
    "where": lambda c, x, y: torch.where(c, x, y if torch.is_tensor(y) else
                                         torch.tensor(y, dtype=x.dtype)),
    "concatenate": lambda *xs, axis=0: torch.cat(xs, dim=axis),
    "stack": lambda *xs, axis=0: torch.stack(xs, dim=axis),
    "softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
    "log_softmax": lambda x, axis=-1: torch.log_softmax(x, dim=axis),
    "logsumexp": lambda x, axis=None, keepdims=False: _reduce(torch.logsumexp)(x, axis,
                                                                              keepdims),
    "astype": lambda x, dtype: x.to(_DTYPES[np.dtype(dtype)]),
    # tapegrad puts the classes on the last axis, PyTorch on axis 1
    "cross_entropy": lambda z, y, reduction="mean": F.cross_entropy(
        z.movedim(-1, 1) if z.ndim > 2 else z, y.long(), reduction=reduction),
    "binary_cross_entropy_with_logits": lambda z, t, reduction="mean": _reduction(
        torch.clamp(z, min=0) - z * t + torch.log1p(torch.exp(-torch.abs(z))), reduction),
}


def _params_ok(case) -> bool:
    """Only cases whose params the mapping above understands."""
    if case.name == "getitem":
        idx = case.params.get("index")
        parts = idx if isinstance(idx, tuple) else (idx,)
        # torch has no negative steps; everything else in the samples is supported
        return not any(isinstance(p, slice) and (p.step or 1) < 0 for p in parts)
    if case.name in ("cross_entropy", "binary_cross_entropy_with_logits"):
        return all(a.kind != "const" or isinstance(a.values, np.ndarray) for a in case.args)
    return True


def torch_apply(case, xs):
    fn = TORCH[case.name]
    if case.info.variadic:
        return fn(*xs, **case.params)
    if case.name in ("add", "sub", "mul", "div", "pow", "matmul"):
        return fn(*xs)
    return fn(*xs, **case.params)


ELEM = [c.label for c in tp.ELEMENTWISE if c.name in TORCH and _params_ok(c)]
STRUCT = [c.label for c in tp.STRUCTURED if c.name in TORCH and _params_ok(c)]


def test_mapping_covers_the_builtin_ops():
    """The differential test is not silently empty: the core ops are all compared."""
    mapped = {tp.BY_LABEL[c].name for c in ELEM + STRUCT}
    for name in ("add", "mul", "div", "pow", "matmul", "exp", "tanh", "sum", "max",
                 "getitem", "transpose", "concatenate"):
        if name in {i.name for i in tg.list_ops()}:
            assert name in mapped, name


def torch_gradients(prog):
    leaves = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in prog.leaves]
    total, _ = prog.run(leaves, apply=torch_apply, convert=_t)
    total.backward()
    grads = [np.zeros(v.shape) if t.grad is None else t.grad.numpy() for t, v in
             zip(leaves, prog.leaves, strict=True)]
    return float(total.detach()), grads


@tp.budget(60)
@given(tp.programs(elem=ELEM, struct=STRUCT))
def test_gradients_match_torch_autograd(prog):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, _, grads = tp.reverse_gradients(prog, prog.leaves)
        t_total, t_grads = torch_gradients(prog)
    _, scale = tp.objective(prog, prog.leaves)
    assert abs(float(total.data) - t_total) <= 1e-10 * (1 + scale), (
        f"objective {float(total.data)!r} vs torch {t_total!r}\n{prog.describe()}")
    tp.assert_close(grads, t_grads, 1e-9, 1e-11 * (1 + scale), "tapegrad vs torch.autograd",
                    prog)
