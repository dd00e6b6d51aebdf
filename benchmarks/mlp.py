"""Array-math cost: one SGD training step of an MLP 784-256-256-10 (ReLU), batch 256.

A step is forward, softmax cross-entropy, backward and an SGD update of every weight.
Rows:

- ``numpy (hand)``: the floor: a hand-written forward and backward with the fused
  softmax-cross-entropy gradient ``(softmax(z) - onehot(y)) / n``;
- ``tapegrad``: public API only (``tg.tensor``, ``@``, ``+``, ``.relu()``, and
  ``tg.nn.cross_entropy`` when it exists, else a log-softmax built from ``tg.ops``), SGD
  written on ``.data``;
- ``tapegrad compiled``: ``tg.compile(tg.value_and_grad(loss))`` on the parameter arrays
  (the same network and loss), SGD written on the arrays;
- autograd and torch eager when installed (torch has its own BLAS: context only).

Before timing, every implementation's gradients are compared with the hand-written
ones at the same weights. Targets: tapegrad <= 1.05x numpy, tapegrad compiled <= 1.0x
numpy, in float32 and in float64.
The network builders here are shared with ``memory.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import _common as C
import numpy as np

TARGET = 1.05
COMPILED_TARGET = 1.0
SIZES = (784, 256, 256, 10)
BATCH = 256
LR = 0.01


# ----------------------------------------------------------------------------- data


def make_problem(sizes, batch, dtype, seed=0):
    """``(params, X, y)``: He-initialised ``[(W, b), ...]``, inputs and int labels."""
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype)
        b = (rng.standard_normal(n_out) * 0.01).astype(dtype)
        params.append((W, b))
    X = rng.standard_normal((batch, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], batch)
    return params, X, y


def copy_params(params):
    return [(W.copy(), b.copy()) for W, b in params]


# ----------------------------------------------------------------------------- numpy


def numpy_loss_grads(params, X, y):
    """Hand-written forward and backward: ``(loss, [(dW, db), ...])``."""
    n = X.shape[0]
    hs = [X]
    h = X
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        z = h @ W + b
        h = np.maximum(z, 0) if i < last else z
        hs.append(h)
    z = h - h.max(axis=1, keepdims=True)
    ez = np.exp(z)
    s = ez.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = np.log(s[:, 0]).mean() - z[rows, y].mean()
    d = ez / s                        # softmax
    d[rows, y] -= 1                   # - onehot
    d /= n                            # mean over the batch
    grads = [None] * len(params)
    for i in range(last, -1, -1):
        W, _ = params[i]
        h_in = hs[i]
        grads[i] = (h_in.T @ d, d.sum(axis=0))
        if i:
            d = (d @ W.T) * (h_in > 0)   # through the ReLU that produced h_in
    return loss, grads


def numpy_step(params, X, y, lr=LR):
    loss, grads = numpy_loss_grads(params, X, y)
    for (W, b), (gW, gb) in zip(params, grads, strict=True):
        W -= lr * gW
        b -= lr * gb
    return loss


# ----------------------------------------------------------------------------- tapegrad


def tapegrad_cross_entropy(tg, prefer_ops: bool = False) -> tuple[Callable[..., Any], str]:
    """``(loss_fn, label)``: tg.nn.cross_entropy, or a log-softmax from tg.ops."""
    nn = getattr(tg, "nn", None)
    if not prefer_ops and nn is not None and hasattr(nn, "cross_entropy"):
        return nn.cross_entropy, "nn.cross_entropy"

    def cross_entropy(logits, labels):
        n = logits.shape[0]
        z = logits - logits.data.max(axis=1, keepdims=True)   # constant shift
        logp = z - z.exp().sum(axis=1, keepdims=True).log()
        return -logp[np.arange(n), labels].mean()

    return cross_entropy, "ops log-softmax"


def relu_mlp(params, X):
    """Logits of the network, for tensors with ``@``, ``+`` and ``.relu()``."""
    h = X
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < last:
            h = h.relu()
    return h


def sgd_step(value_and_grad, params, X, y, lr):
    """One SGD step in place on ``params`` (pairs of arrays) from ``value_and_grad``."""
    loss, g = value_and_grad(params, X, y)
    for (W, b), (gW, gb) in zip(params, g, strict=True):
        W -= lr * gW
        b -= lr * gb
    return loss


class TapegradMLP:
    """The network on tapegrad tensors; ``step`` is one SGD step on ``.data``."""

    def __init__(self, tg, params, loss_from_ops=False):
        self.tg = tg
        self.params = [(tg.tensor(W, requires_grad=True), tg.tensor(b, requires_grad=True))
                       for W, b in params]
        self.ce, self.ce_label = tapegrad_cross_entropy(tg, loss_from_ops)

    def forward(self, X):
        return relu_mlp(self.params, X)

    def loss(self, X, y):
        return self.ce(self.forward(X), y)

    def grads(self, X, y):
        for W, b in self.params:
            W.grad = b.grad = None
        loss = self.loss(X, y)
        loss.backward()
        return float(loss.item()), [(W.grad, b.grad) for W, b in self.params]

    def step(self, X, y, lr=LR):
        loss = self.loss(X, y)
        loss.backward()
        for W, b in self.params:
            W.data -= lr * W.grad
            b.data -= lr * b.grad
            W.grad = b.grad = None
        return loss


class CompiledMLP:
    """``tg.compile(tg.value_and_grad(loss))`` on arrays; ``step`` updates them in place."""

    def __init__(self, tg, params):
        self.params = copy_params(params)
        ce, self.ce_label = tapegrad_cross_entropy(tg)

        def loss(ps, X, y):
            return ce(relu_mlp(ps, X), y)

        self.value_and_grad = tg.compile(tg.value_and_grad(loss))

    def grads(self, X, y):
        loss, g = self.value_and_grad(self.params, X, y)
        return float(loss), [tuple(p) for p in g]

    def step(self, X, y, lr=LR):
        return sgd_step(self.value_and_grad, self.params, X, y, lr)


# ----------------------------------------------------------------------------- optional


class AutogradMLP:
    def __init__(self, ag, params):
        anp = ag.numpy
        self.params = copy_params(params)
        last = len(params) - 1

        def loss(ps, X, y):
            h = X
            for i, (W, b) in enumerate(ps):
                h = anp.dot(h, W) + b
                if i < last:
                    h = anp.maximum(h, 0.0)
            z = h - anp.max(h, axis=1, keepdims=True)
            logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
            return -anp.mean(logp[np.arange(X.shape[0]), y])

        self.value_and_grad = ag.value_and_grad(loss)

    def grads(self, X, y):
        loss, g = self.value_and_grad(self.params, X, y)
        return float(loss), [tuple(p) for p in g]

    def step(self, X, y, lr=LR):
        return sgd_step(self.value_and_grad, self.params, X, y, lr)


class TorchMLP:
    def __init__(self, torch, params):
        self.torch = torch
        self.params = [(torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True))
                       for W, b in params]
        self.F = torch.nn.functional

    def loss(self, X, y):
        return self.F.cross_entropy(relu_mlp(self.params, X), y)

    def grads(self, X, y):
        loss = self.loss(self.torch.from_numpy(X), self.torch.from_numpy(y))
        loss.backward()
        out = [(W.grad.numpy().copy(), b.grad.numpy().copy()) for W, b in self.params]
        for W, b in self.params:
            W.grad = b.grad = None
        return float(loss.item()), out

    def step(self, X, y, lr=LR):
        loss = self.loss(X, y)
        loss.backward()
        with self.torch.no_grad():
            for W, b in self.params:
                W -= lr * W.grad
                b -= lr * b.grad
                W.grad = b.grad = None
        return loss


# ----------------------------------------------------------------------------- main


def max_rel_err(grads, ref) -> float:
    worst = 0.0
    for pair, rpair in zip(grads, ref, strict=True):
        for g, r in zip(pair, rpair, strict=True):
            g = np.asarray(g, dtype=np.float64)
            r = np.asarray(r, dtype=np.float64)
            if g.shape != r.shape:
                return float("inf")
            worst = max(worst, float(np.max(np.abs(g - r)) / (np.max(np.abs(r)) + 1e-30)))
    return worst


def build(args, tg, dtype, sizes, batch):
    """Implementations for one dtype: ``{name: model}`` plus data; grads checked."""
    params, X, y = make_problem(sizes, batch, dtype)
    models: dict[str, Any] = {
        "tapegrad": TapegradMLP(tg, copy_params(params), args.loss == "ops"),
        "tapegrad compiled": CompiledMLP(tg, params)}
    ag = C.optional("autograd", args)
    if ag is not None:
        models["autograd"] = AutogradMLP(ag, params)
    torch = C.optional("torch", args)
    if torch is not None:
        models["torch " + torch.__version__.split("+")[0]] = TorchMLP(torch, params)
    ref_loss, ref = numpy_loss_grads(params, X, y)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for name, m in models.items():
        loss, g = m.grads(X, y)
        err = max_rel_err(g, ref)
        if not (err <= tol and abs(loss - ref_loss) <= tol * max(1.0, abs(ref_loss))):
            raise SystemExit(f"gradient mismatch ({np.dtype(dtype).name}): {name} vs "
                             f"hand-written numpy: max relative error {err:.3g}, loss "
                             f"{loss!r} vs {ref_loss!r}")
    return params, X, y, models


def time_dtype(args, tg, dtype, batch, repeats, warmup):
    """Check gradients, then time one step of every implementation in ``dtype``."""
    params, X, y, models = build(args, tg, dtype, SIZES, batch)
    np_params = copy_params(params)
    torch = C.optional("torch", args)
    tX = ty = None
    if torch is not None:
        tX, ty = torch.from_numpy(X), torch.from_numpy(y)

    def timer(fn):
        def run():
            t0 = C.perf_counter()
            fn()
            return C.perf_counter() - t0
        return run

    impls = {"numpy (hand)": timer(lambda: numpy_step(np_params, X, y))}
    for name, m in models.items():
        if name.startswith("torch"):
            impls[name] = timer(lambda m=m: m.step(tX, ty))
        else:
            impls[name] = timer(lambda m=m: m.step(X, y))
    return C.interleave(impls, repeats, warmup, gc_off=args.no_gc), models


def main(argv: list[str] | None = None) -> int:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=None, help=f"batch size (default {BATCH})")
    p.add_argument("--loss", choices=("auto", "ops"), default="auto",
                   help="tapegrad loss: tg.nn.cross_entropy when it exists (auto), or the "
                        "log-softmax composed from tg.ops (ops)")
    p.add_argument("--default-malloc", action="store_true",
                   help="keep glibc's default large-block mapping (page faults vary by row)")
    args = p.parse_args(argv)
    allocator = "glibc's default allocator" if args.default_malloc else C.heap_allocator()
    batch = args.batch or (32 if args.quick else BATCH)
    repeats = args.repeats or (3 if args.quick else 100)  # short steps: many, steady median
    warmup = 1 if args.quick else 3

    import tapegrad as tg

    shape = "-".join(map(str, SIZES))
    C.header(f"mlp: one SGD step of MLP {shape}, ReLU, batch {batch}")
    print(f"   allocator: {allocator}")
    if args.profile:
        for dtype in (np.float32, np.float64):
            print(f"-- {np.dtype(dtype).name}")
            _, X, y, models = build(args, tg, dtype, SIZES, batch)
            C.profile(lambda m=models["tapegrad"], X=X, y=y: m.step(X, y), args.profile,
                      runs=10)
        return 0
    results: dict[str, dict[str, float]] = {}
    for dtype in (np.float32, np.float64):
        res, models = time_dtype(args, tg, dtype, batch, repeats, warmup)
        for name, r in res.items():
            results.setdefault(name, {})[np.dtype(dtype).name] = r["total"]
    print(f"   gradients of {', '.join(models)} agree with the hand-written numpy backward "
          f"(tapegrad loss: {models['tapegrad'].ce_label})")

    rep = C.Report("mlp", args)
    floor = results["numpy (hand)"]
    rows = []
    for name, r in results.items():
        rows.append([name, r["float32"] * 1e3, r["float64"] * 1e3,
                     f"{r['float32'] / floor['float32']:.3f}x",
                     f"{r['float64'] / floor['float64']:.3f}x"])
    rep.table(f"median of {repeats} steps, milliseconds per step",
              ["implementation", "f32 ms", "f64 ms", "f32 vs numpy", "f64 vs numpy"], rows)
    print()
    for dt in ("float32", "float64"):
        rep.check(f"ratio tapegrad/numpy ({dt})",
                  C.ratio(results["tapegrad"][dt], floor[dt]), TARGET)
    for dt in ("float32", "float64"):
        rep.check(f"ratio tapegrad compiled/numpy ({dt})",
                  C.ratio(results["tapegrad compiled"][dt], floor[dt]), COMPILED_TARGET)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
