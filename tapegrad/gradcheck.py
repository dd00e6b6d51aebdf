"""Finite-difference checks of the engine's gradients, and sample inputs for every op."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from . import tree
from .errors import GradcheckError, TapegradIndexError, TapegradValueError
from .opdef import OpInfo, Sample
from .state import no_grad
from .tensor import Tensor, tensor


def _as_float(x: Any) -> np.ndarray:
    arr = np.asarray(x.data if isinstance(x, Tensor) else x)
    return arr.astype(np.float64) if arr.dtype.kind not in "fc" else arr


def _scalar(out: Any) -> float:
    """The value of a one-element output; its real part if complex (see :func:`_probe`)."""
    data = out.data if isinstance(out, Tensor) else np.asarray(out)
    if data.size != 1:
        raise TapegradValueError(f"numerical_grad: f must return one element, got shape "
                                 f"{data.shape}")
    return float(np.real(data.reshape(())))


def _probe(out0: Any) -> np.ndarray:
    """Fixed random weights for ``sum(f(x) * probe)``. A complex output gets complex
    weights: the real part of that sum, the scalar checked, then sees both parts of every
    element, and its cotangent (seed 1) is the same in either complex convention."""
    data = _as_float(out0)
    rng = np.random.default_rng(0)
    probe = rng.uniform(0.5, 1.5, data.shape)
    if data.dtype.kind == "c":
        probe = probe + 1j * rng.uniform(-1.5, 1.5, data.shape)
    return probe


def numerical_grad(f: Callable[..., Any], x: Any, *args: Any, argnum: int = 0,
                   eps: float | None = None) -> np.ndarray:
    """Central finite-difference gradient of scalar ``f`` with respect to ``x``.

    ``f`` is called as ``f(x, *args)`` (or with ``x`` at position ``argnum``) on Tensors
    holding perturbed copies of ``x``; nothing is recorded. For a complex ``x`` the real
    and imaginary parts are perturbed separately and the result follows PyTorch's
    convention: ``dL/dRe(x) + 1j * dL/dIm(x)``.
    """
    base = _as_float(x).copy()
    if eps is None:
        eps = 1e-6 if base.dtype in (np.float64, np.complex128) else 1e-2
    grad = np.zeros_like(base)
    flat = base.reshape(-1)
    gflat = grad.reshape(-1)

    def value(arr: np.ndarray) -> float:
        call = list(args)
        call.insert(argnum, tensor(arr))
        with no_grad():
            return _scalar(f(*call))

    steps = (eps, 1j * eps) if base.dtype.kind == "c" else (eps,)
    for i in range(flat.size):
        old = flat[i]
        for step in steps:
            flat[i] = old + step
            up = value(base)
            flat[i] = old - step
            down = value(base)
            flat[i] = old
            gflat[i] += (up - down) / (2 * eps) * (step / eps)
    return grad


def _require_finite(out: Any, name: str) -> None:
    """A gradient check needs ``f`` finite at the inputs: NaN or inf there would make
    every comparison meaningless (``err > tol`` is False for NaN)."""
    data = np.asarray(out.data if isinstance(out, Tensor) else out)
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        bad = ~np.isfinite(data)
        idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), data.shape))
        what = "NaN" if np.isnan(data).any() else "inf"
        raise GradcheckError(
            f"{name}: f is not finite at the inputs ({what} at output index {idx}, "
            f"{int(bad.sum())} of {data.size} elements), so its gradient cannot be checked "
            "there; check it at inputs where it is finite (for an op: give it a domain "
            "or samples inside the domain of its function)")


def _tolerances(dtype: np.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    if dtype == np.float32:
        return rtol if rtol is not None else 2e-2, atol if atol is not None else 2e-2
    return rtol if rtol is not None else 1e-5, atol if atol is not None else 1e-6


def compare(analytic: np.ndarray, numeric: np.ndarray, what: str, rtol: float,
            atol: float, argnum: int | None = None) -> None:
    """Raise GradcheckError if the two disagree beyond ``atol + rtol * |numeric|``.

    The message (and the error's attributes ``argument``, ``index``, ``abs_error``,
    ``abs_index``, ``rel_error``, ``rel_index``) gives the largest absolute error, the
    largest relative error (``|a - n| / max(|a|, |n|)`` over elements above ``atol``),
    where each occurs, and the worst failing element.
    """
    kind = "c" if "c" in (np.asarray(analytic).dtype.kind, np.asarray(numeric).dtype.kind) \
        else "f"
    dtype = np.complex128 if kind == "c" else np.float64
    analytic = np.asarray(analytic, dtype=dtype)
    numeric = np.asarray(numeric, dtype=dtype)
    if analytic.shape != numeric.shape:
        exc = GradcheckError(f"{what}: gradient has shape {analytic.shape}, expected "
                             f"{numeric.shape}")
        exc.argument, exc.index = argnum, None
        raise exc
    finite = np.isfinite(analytic) & np.isfinite(numeric)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(analytic - numeric), np.inf)
        bad = err > atol + rtol * np.abs(numeric)
    # Where either side is NaN or inf nothing is verified: a failure, unless both are
    # the same infinity.
    bad |= ~finite & ~(analytic == numeric)
    err = np.where(~finite & (analytic == numeric), 0.0, err)
    if not bad.any():
        return

    def where(flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, err.shape))

    idx = where(int(np.argmax(np.where(bad, err, -1))))
    abs_idx = where(int(np.argmax(err)))
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(scale > atol, err / np.where(scale > 0, scale, 1.0), 0.0)
    rel = np.where(np.isnan(rel) | (bad & ~finite), np.inf, rel)
    rel_idx = where(int(np.argmax(rel)))
    arg = "" if argnum is None else f"argument {argnum}, "
    nonfinite = int((bad & ~finite).sum())
    note = (f"; {nonfinite} element(s) NaN or inf on one side only (the gradient is not "
            "finite there)" if nonfinite else "")
    exc = GradcheckError(
        f"{what}: gradients disagree ({int(bad.sum())} of {bad.size} elements off{note}). "
        "Worst "
        f"at {arg}index {idx}: analytic {analytic[idx]:.6g}, numerical "
        f"{numeric[idx]:.6g}. Largest abs error {err[abs_idx]:.3g} at index {abs_idx}; "
        f"largest rel error {rel[rel_idx]:.3g} at index {rel_idx} "
        f"(rtol={rtol:g}, atol={atol:g})"
    )
    exc.argument, exc.index = argnum, idx
    exc.abs_error, exc.abs_index = float(err[abs_idx]), abs_idx
    exc.rel_error, exc.rel_index = float(rel[rel_idx]), rel_idx
    raise exc


def reverse_grads(f: Callable[..., Any], args: list[Any], argnums: Iterable[int],
                  probe: np.ndarray | None = None) -> tuple[Any, list[np.ndarray]]:
    """Reverse-mode gradients of ``sum(f(*args) * probe)`` with respect to ``argnums``."""
    ts = [tensor(_as_float(a), requires_grad=True) if i in argnums else a
          for i, a in enumerate(args)]
    out = f(*ts)
    if isinstance(out, Tensor) and out._node is not None:  # else: a constant of the args
        out.backward(probe if probe is not None else np.ones_like(out.data))
    grads = []
    for i in argnums:
        g = ts[i].grad
        grads.append(np.zeros_like(ts[i].data) if g is None else np.asarray(g))
    return out, grads


def forward_grads(f: Callable[..., Any], args: list[Any], i: int,
                  nums: list[int]) -> np.ndarray:
    """Forward-mode gradient of scalar ``f`` with respect to argument ``i``.

    One ``tg.jvp`` per element of the argument, each with a basis tangent: the result
    is comparable element by element with :func:`numerical_grad`.
    """
    from .forward_mode import jvp

    def partial(*xs: Any) -> Any:
        call = list(args)
        for j, x in zip(nums, xs, strict=True):
            call[j] = x
        return f(*call)

    primals = [_as_float(args[j]) for j in nums]
    base = primals[nums.index(i)]
    out = np.zeros(base.shape, dtype=np.float64)
    flat = out.reshape(-1)
    for k in range(base.size):
        e = np.zeros(base.shape, dtype=base.dtype)
        e.reshape(-1)[k] = 1
        tangents = [e if j == i else None for j in nums]
        _, t = jvp(partial, primals, tangents)
        if t is not None:  # None: a zero tangent (an output that does not depend on it)
            flat[k] = float(np.real(np.asarray(t.data if isinstance(t, Tensor) else t)).reshape(()))
    return out


def check_grads(f: Callable[..., Any], *args: Any, order: int = 1, eps: float | None = None,
                rtol: float | None = None, atol: float | None = None,
                argnums: Iterable[int] | None = None, name: str = "f",
                modes: Iterable[str] = ("rev", "fwd")) -> None:
    """Compare the engine's gradients of ``f`` with central finite differences.

    ``f`` takes Tensors and returns a Tensor of any shape; it is checked through the
    scalar ``sum(f(*args) * probe)`` with a fixed random ``probe``, so every output
    element counts. ``modes``: ``"rev"`` checks reverse mode (backward), ``"fwd"``
    forward mode (``tg.jvp``, one basis tangent per element). ``order=2`` also checks
    the gradient of that gradient (reverse-over-reverse and forward-over-reverse), and
    so on. Raises :class:`GradcheckError` with the largest absolute and relative
    errors, the argument and the index.

    Arguments may be containers (dicts, lists, tuples of arrays; see
    :mod:`tapegrad.tree`): each numeric leaf is checked as an argument of its own (the
    error then names the leaf, e.g. ``0['W']``, also as its ``leaf`` attribute), and
    ``argnums`` selects whole arguments. ``f`` may return a container too: its leaves
    are checked together.
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise TapegradValueError(f"check_grads: order must be an int >= 1, got {order!r}")
    modes = tuple(modes)
    unknown = set(modes) - {"rev", "fwd"}
    if unknown:
        raise TapegradValueError(f"check_grads: unknown mode(s) {sorted(unknown)}; use "
                                 "'rev', 'fwd'")
    if any(tree.is_container(a) for a in args):
        _check_containers(f, args, order=order, eps=eps, rtol=rtol, atol=atol,
                          argnums=argnums, name=name, modes=modes)
        return
    f = _flat_output(f)
    args = list(args)
    nums = list(range(len(args)) if argnums is None else argnums)
    bad = [i for i in nums if not -len(args) <= i < len(args)]
    if bad:
        raise TapegradIndexError(f"check_grads: argnums has {bad[0]}, but {len(args)} "
                                 "argument(s) were given")
    nums = [i for i in nums if np.asarray(_as_float(args[i])).dtype.kind in "fc"
            and not isinstance(args[i], (bool, int))]
    if not nums:
        return
    with no_grad():
        out0 = f(*[tensor(_as_float(a)) if i in nums else a for i, a in enumerate(args)])
    _require_finite(out0, name)
    dtypes = [_as_float(args[i]).dtype for i in nums] + [_as_float(out0).dtype]
    low = min(dtypes, key=lambda d: np.finfo(d).precision)
    rt, at = _tolerances(low, rtol, atol)
    if eps is None and low not in (np.float64, np.complex128):
        eps = 1e-3
    probe = _probe(out0)

    def objective(*xs: Any) -> Any:
        return (f(*xs) * probe).sum()

    numeric = {i: numerical_grad(objective, args[i], *[a for j, a in enumerate(args)
                                                       if j != i], argnum=i, eps=eps)
               for i in nums}
    if "rev" in modes:
        _, analytic = reverse_grads(objective, args, nums)
        for i, g in zip(nums, analytic, strict=True):
            compare(g, numeric[i], f"{name}: reverse-mode gradient w.r.t. argument {i}",
                    rt, at, argnum=i)
    if "fwd" in modes:
        for i in [i for i in nums if numeric[i].dtype.kind != "c"]:  # real directions
            g = forward_grads(objective, args, i, nums)
            compare(g, numeric[i], f"{name}: forward-mode gradient w.r.t. argument {i}",
                    rt, at, argnum=i)
    if order >= 2:
        for i in nums:
            def first(*xs: Any, i: int = i) -> Any:
                from .transforms import grad as grad_transform

                return grad_transform(objective, argnums=i, _as_tensor=True)(*xs)
            check_grads(first, *args, order=order - 1, eps=eps, rtol=rtol, atol=atol,
                        argnums=nums, name=f"{name} (order {order}, d/d arg {i})",
                        modes=modes)


def _flat_output(f: Callable[..., Any]) -> Callable[..., Any]:
    """``f`` returning one Tensor: the leaves of a container output, raveled and joined."""

    @functools.wraps(f)
    def flat(*xs: Any) -> Any:
        out = f(*xs)
        if not tree.is_container(out):
            return out
        leaves = tree.leaves(out)
        if len(leaves) == 1:
            return leaves[0]
        return np.concatenate([x.reshape(-1) if isinstance(x, Tensor) else np.ravel(x)
                               for x in leaves])

    return flat


def _check_containers(f: Callable[..., Any], args: tuple, argnums: Iterable[int] | None,
                      name: str, **options: Any) -> None:
    """check_grads for arguments that are containers (see :mod:`tapegrad.tree`): every
    numeric leaf becomes an argument of its own, ``f`` sees the structures rebuilt."""
    defs, flat, labels, owner = [], [], [], []
    for i, a in enumerate(args):
        leaves, d = tree.flatten(a)
        defs.append(d)
        flat += leaves
        labels += [f"{i}{p}" for p in d.paths()]
        owner += [i] * len(leaves)
    wanted = set(range(len(args)) if argnums is None else argnums)
    nums = [k for k, x in enumerate(flat) if owner[k] in wanted
            and np.asarray(x.data if isinstance(x, Tensor) else x).dtype.kind in "biufc"]

    def flat_f(*xs: Any) -> Any:
        rebuilt, k = [], 0
        for d in defs:
            rebuilt.append(tree.unflatten(d, xs[k:k + d.num_leaves]))
            k += d.num_leaves
        return f(*rebuilt)

    try:
        check_grads(flat_f, *flat, argnums=nums, name=name, **options)
    except GradcheckError as exc:
        k = getattr(exc, "argument", None)
        if k is None:
            raise
        new = GradcheckError(f"{exc} [argument {k} is the leaf {labels[k]}]")
        new.__dict__.update(exc.__dict__)
        new.leaf = labels[k]
        raise new from None


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
             rtol: float | None = None, atol: float | None = None,
             modes: Iterable[str] = ("rev",)) -> None:
    """Gradient-check one registered op on each of its samples (``modes``: see
    :func:`check_grads`; reverse mode only by default)."""
    for k, (inputs, params) in enumerate(op_samples(info, rng)):
        if info.variadic:
            seq = list(inputs[0])

            def f(*xs: Any, params: dict = params) -> Any:
                return info.call(list(xs), **params)

            check_grads(f, *seq, order=order, rtol=rtol, atol=atol, modes=modes,
                        name=f"op {info.name!r} ({info.source}) sample {k}")
            continue
        diff = [i for i in range(len(inputs)) if i not in info.definition.nondiff
                and isinstance(inputs[i], np.ndarray) and inputs[i].dtype.kind == "f"]

        def g(*xs: Any, params: dict = params) -> Any:
            return info.call(*xs, **params)

        check_grads(g, *inputs, order=order, rtol=rtol, atol=atol, argnums=diff, modes=modes,
                    name=f"op {info.name!r} ({info.source}) sample {k}")


# ------------------------------------------------------------------ error report


class OpCheckResult:
    """What :func:`op_errors` measured for one op: the largest errors and any failures.

    ``max_abs``: largest ``|analytic - numerical|`` over every sample and input.
    ``max_rel``: largest ``|analytic - numerical| / max(|analytic|, |numerical|)`` over
    the elements larger than the absolute tolerance. ``failures``: one message per
    sample/input that is off (the :class:`GradcheckError` text) or whose rules raised.
    """

    def __init__(self, info: OpInfo) -> None:
        self.info = info
        self.samples = 0
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.failures: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.failures


def op_errors(info: OpInfo, rng: np.random.Generator | None = None,
              rtol: float | None = None, atol: float | None = None) -> OpCheckResult:
    """Like :func:`check_op` (first order), but measure instead of raising on the first error.

    Every sample and input is checked against central finite differences with the same
    probe and tolerances as :func:`check_grads`; an exception from the op's rules is
    recorded as a failure, not raised.
    """
    res = OpCheckResult(info)
    try:
        samples = op_samples(info, rng)
    except Exception as exc:  # a broken samples= callable is the op's failure
        res.failures.append(f"op {info.name!r}: samples raised {type(exc).__name__}: {exc}")
        return res
    for k, (inputs, params) in enumerate(samples):
        res.samples += 1
        name = f"op {info.name!r} sample {k}"
        if info.variadic:
            args = list(inputs[0])
            nums = list(range(len(args)))

            def f(*xs: Any, params: dict = params) -> Any:
                return info.call(list(xs), **params)
        else:
            args = list(inputs)
            nums = [i for i in range(len(args)) if i not in info.definition.nondiff]

            def f(*xs: Any, params: dict = params) -> Any:
                return info.call(*xs, **params)
        nums = [i for i in nums if isinstance(args[i], np.ndarray) and args[i].dtype.kind == "f"]
        if not nums:
            continue
        try:
            _measure(f, args, nums, res, name, rtol, atol)
        except GradcheckError as exc:
            res.failures.append(str(exc))
        except Exception as exc:
            res.failures.append(f"{name}: {type(exc).__name__}: {exc}")
    return res


def _measure(f: Callable[..., Any], args: list[Any], nums: list[int], res: OpCheckResult,
             name: str, rtol: float | None, atol: float | None) -> None:
    f = _flat_output(f)  # several outputs: checked together
    with no_grad():
        out0 = f(*[tensor(_as_float(a)) if i in nums else a for i, a in enumerate(args)])
    _require_finite(out0, name)
    low = min([_as_float(args[i]).dtype for i in nums] + [_as_float(out0).dtype],
              key=lambda d: np.finfo(d).precision)
    rt, at = _tolerances(low, rtol, atol)
    probe = _probe(out0)

    def objective(*xs: Any) -> Any:
        return (f(*xs) * probe).sum()

    _, analytic = reverse_grads(objective, args, nums)
    for i, g in zip(nums, analytic, strict=True):
        numeric = numerical_grad(objective, args[i], *[a for j, a in enumerate(args) if j != i],
                                 argnum=i, eps=None if low == np.float64 else 1e-3)
        a = np.asarray(g, dtype=np.float64)
        n = np.asarray(numeric, dtype=np.float64)
        if a.shape == n.shape and a.size:
            err = np.abs(a - n)
            res.max_abs = max(res.max_abs, float(np.nanmax(err)) if np.isfinite(err).any()
                              else float("inf"))
            scale = np.maximum(np.abs(a), np.abs(n))
            big = scale > at
            if big.any():
                res.max_rel = max(res.max_rel, float(np.max(err[big] / scale[big])))
        try:
            compare(g, numeric, f"{name}: gradient w.r.t. argument {i}", rt, at)
        except GradcheckError as exc:
            res.failures.append(str(exc))
