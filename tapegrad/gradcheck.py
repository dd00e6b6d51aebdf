"""Finite-difference checks of the engine's gradients, and sample inputs for every op."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import GradcheckError
from .opdef import OpInfo, Sample
from .tape import no_grad
from .tensor import Tensor, tensor


def _as_float(x: Any) -> np.ndarray:
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    return arr.astype(np.float64) if arr.dtype.kind not in "fc" else arr


def _scalar(out: Any) -> float:
    data = out.data if isinstance(out, Tensor) else np.asarray(out)
    if data.size != 1:
        raise ValueError(f"numerical_grad: f must return one element, got shape {data.shape}")
    return float(data.reshape(()))


def numerical_grad(f: Callable[..., Any], x: Any, *args: Any, argnum: int = 0,
                   eps: float | None = None) -> np.ndarray:
    """Central finite-difference gradient of scalar ``f`` with respect to ``x``.

    ``f`` is called as ``f(x, *args)`` (or with ``x`` at position ``argnum``) on Tensors
    holding perturbed copies of ``x``; nothing is recorded.
    """
    base = _as_float(x).copy()
    if eps is None:
        eps = 1e-6 if base.dtype == np.float64 else 1e-2
    grad = np.zeros_like(base)
    flat = base.reshape(-1)
    gflat = grad.reshape(-1)

    def value(arr: np.ndarray) -> float:
        call = list(args)
        call.insert(argnum, tensor(arr))
        with no_grad():
            return _scalar(f(*call))

    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = value(base)
        flat[i] = old - eps
        down = value(base)
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


def _tolerances(dtype: np.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    if dtype == np.float32:
        return rtol if rtol is not None else 2e-2, atol if atol is not None else 2e-2
    return rtol if rtol is not None else 1e-5, atol if atol is not None else 1e-6


def compare(analytic: np.ndarray, numeric: np.ndarray, what: str, rtol: float,
            atol: float) -> None:
    """Raise GradcheckError naming the worst element if the two disagree."""
    analytic = np.asarray(analytic, dtype=np.float64)
    numeric = np.asarray(numeric, dtype=np.float64)
    if analytic.shape != numeric.shape:
        raise GradcheckError(f"{what}: gradient has shape {analytic.shape}, expected "
                             f"{numeric.shape}")
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.abs(numeric)
    if not np.isfinite(analytic).all() and np.isfinite(numeric).all():
        bad |= ~np.isfinite(analytic)
    if bad.any():
        idx = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), err.shape)
        rel = err[idx] / max(abs(numeric[idx]), 1e-300)
        raise GradcheckError(
            f"{what}: gradients disagree at index {tuple(int(i) for i in idx)}: analytic "
            f"{analytic[idx]:.6g}, numerical {numeric[idx]:.6g} (abs error "
            f"{err[idx]:.3g}, rel error {rel:.3g}; {int(bad.sum())} of {bad.size} "
            "elements off)"
        )


def reverse_grads(f: Callable[..., Any], args: list[Any], argnums: Iterable[int],
                  probe: np.ndarray | None = None) -> tuple[Any, list[np.ndarray]]:
    """Reverse-mode gradients of ``sum(f(*args) * probe)`` with respect to ``argnums``."""
    ts = [tensor(_as_float(a), requires_grad=True) if i in argnums else a
          for i, a in enumerate(args)]
    out = f(*ts)
    weight = probe if probe is not None else np.ones_like(out.data)
    if out._node is not None:
        out.backward(weight)
    grads = []
    for i in argnums:
        g = ts[i].grad
        grads.append(np.zeros_like(ts[i].data) if g is None else np.asarray(g))
    return out, grads


def check_grads(f: Callable[..., Any], *args: Any, order: int = 1, eps: float | None = None,
                rtol: float | None = None, atol: float | None = None,
                argnums: Iterable[int] | None = None, name: str = "f") -> None:
    """Compare reverse-mode gradients of ``f`` with central finite differences.

    ``f`` takes Tensors and returns a Tensor of any shape; it is checked through the
    scalar ``sum(f(*args) * probe)`` with a fixed random ``probe``, so every output
    element counts. ``order=2`` also checks the gradient of that gradient. Raises
    :class:`GradcheckError` with the largest error, the argument and the index.
    """
    args = list(args)
    nums = list(range(len(args)) if argnums is None else argnums)
    nums = [i for i in nums if np.asarray(_as_float(args[i])).dtype.kind in "fc"
            and not isinstance(args[i], (bool, int))]
    if not nums:
        return
    with no_grad():
        out0 = f(*[tensor(_as_float(a)) if i in nums else a for i, a in enumerate(args)])
    dtypes = [_as_float(args[i]).dtype for i in nums] + [_as_float(out0).dtype]
    low = min(dtypes, key=lambda d: np.finfo(d).precision)
    rt, at = _tolerances(low, rtol, atol)
    if eps is None and low != np.float64:
        eps = 1e-3
    out_shape = np.shape(out0.data if isinstance(out0, Tensor) else out0)
    probe = np.random.default_rng(0).uniform(0.5, 1.5, out_shape)

    def objective(*xs: Any) -> Any:
        return (f(*xs) * probe).sum()

    _, analytic = reverse_grads(objective, args, nums)
    for i, g in zip(nums, analytic, strict=True):
        numeric = numerical_grad(objective, args[i], *[a for j, a in enumerate(args) if j != i],
                                 argnum=i, eps=eps)
        compare(g, numeric, f"{name}: gradient w.r.t. argument {i}", rt, at)
    if order >= 2:
        for i in nums:
            def first(*xs: Any, i: int = i) -> Any:
                from .transforms import grad as grad_transform

                return grad_transform(objective, argnums=i, _as_tensor=True)(*xs)
            check_grads(first, *args, order=order - 1, eps=eps, rtol=rtol, atol=atol,
                        argnums=nums, name=f"{name} (order {order}, d/d arg {i})")


# ------------------------------------------------------------------ op samples


def op_samples(info: OpInfo, rng: np.random.Generator | None = None) -> list[Sample]:
    """Inputs for checking ``info``: its own samples, or draws from its domain."""
    rng = rng or np.random.default_rng(0)
    d = info.definition
    if d.samples is not None:
        return [(tuple(a), dict(p)) for a, p in d.samples(rng)]
    lo, hi = d.domain
    n = info.nargs
    same = tuple(rng.uniform(lo, hi, (3, 4)) for _ in range(n))
    cases: list[Sample] = [(same, {})]
    if n >= 1:
        cases.append((tuple(rng.uniform(lo, hi, (4,) if i else (3, 4)) for i in range(n)), {}))
        cases.append((tuple(rng.uniform(lo, hi, ()) for _ in range(n)), {}))
    return cases


def check_op(info: OpInfo, order: int = 1, rng: np.random.Generator | None = None,
             rtol: float | None = None, atol: float | None = None) -> None:
    """Gradient-check one registered op on each of its samples."""
    for k, (inputs, params) in enumerate(op_samples(info, rng)):
        if info.variadic:
            seq = list(inputs[0])

            def f(*xs: Any, params: dict = params) -> Any:
                return info.call(list(xs), **params)

            check_grads(f, *seq, order=order, rtol=rtol, atol=atol,
                        name=f"op {info.name!r} ({info.source}) sample {k}")
            continue
        diff = [i for i in range(len(inputs)) if i not in info.definition.nondiff
                and isinstance(inputs[i], np.ndarray) and inputs[i].dtype.kind == "f"]

        def g(*xs: Any, params: dict = params) -> Any:
            return info.call(*xs, **params)

        check_grads(g, *inputs, order=order, rtol=rtol, atol=atol, argnums=diff,
                    name=f"op {info.name!r} ({info.source}) sample {k}")
