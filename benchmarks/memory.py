"""Memory: peak RSS of training, and RSS growth over forward passes never backwarded.

1. ``train``: 20 SGD steps of an MLP 784-1024-1024-10 (ReLU), batch 512, float32; peak
   resident memory above the baseline taken after imports, data and weights exist.
   Rows: ``numpy (hand)`` (hand-written forward and backward, ``mlp.numpy_step``),
   ``tapegrad`` (``mlp.TapegradMLP``), ``tapegrad compiled`` (``mlp.CompiledMLP``; its
   peak RSS includes its first calls: tracing holds every value of the trace at once),
   torch when installed (autograd records only inside ``grad``, so it has no "forward
   without backward").
3. ``step``: the peak NumPy and Python allocate during one warm step, counted by
   ``tracemalloc`` (independent of what the allocator keeps from earlier calls).
2. ``forwards``: 200 forward passes (loss included) whose graphs are dropped without a
   backward; RSS growth from after pass 20 to after pass 200 (a leak shows as roughly
   one graph's activations per pass).

Each measurement runs in a fresh interpreter. Targets: tapegrad's training peak above
baseline <= 1.25x numpy's; a warm compiled step's peak no higher than eager tapegrad's;
no growth (<= 2 MiB, one activation, over 180 passes).
"""

from __future__ import annotations

import gc
import sys

import _common as C
import numpy as np

SIZES = (784, 1024, 1024, 10)
BATCH = 512
STEPS = 20
FORWARDS = 200
PEAK_TARGET = 1.25
GROWTH_TARGET_MIB = 2.0


def make_model(impl, params):
    import mlp

    if impl == "numpy (hand)":
        class Numpy:
            def step(self, X, y):
                mlp.numpy_step(params, X, y)

            def forward(self, X, y):
                return _numpy_forward(params, X, y)
        return Numpy()
    if impl == "tapegrad":
        import tapegrad as tg

        m = mlp.TapegradMLP(tg, params)
        m.forward_loss = m.loss
        return m
    if impl == "tapegrad compiled":
        import tapegrad as tg
        m = mlp.CompiledMLP(tg, params)
        ce, _ = mlp.tapegrad_cross_entropy(tg)
        loss = tg.compile(lambda ps, X, y: ce(mlp.relu_mlp(ps, X), y))
        m.forward_loss = lambda X, y: loss(m.params, X, y)
        return m
    if impl == "torch":
        import torch

        torch.set_num_threads(1)
        m = mlp.TorchMLP(torch, params)
        m.forward_loss = lambda X, y: m.loss(torch.from_numpy(X), torch.from_numpy(y))
        step = m.step
        m.step = lambda X, y: step(torch.from_numpy(X), torch.from_numpy(y))
        return m
    raise SystemExit(f"unknown implementation {impl!r}")


def _numpy_forward(params, X, y):
    h = X
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        h = h @ W + b
        if i < last:
            h = np.maximum(h, 0)
    z = h - h.max(axis=1, keepdims=True)
    return (np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]).mean()


def child(mode: str, impl: str, n: int, batch: int) -> dict:
    import mlp

    params, X, y = mlp.make_problem(SIZES, batch, np.float32)
    model = make_model(impl, params)
    if impl != "numpy (hand)":
        del params                               # the model holds its own copy
    gc.collect()
    if mode == "step":
        return step_peak(model, X, y, n)
    base = C.rss_bytes()
    C.reset_peak()
    base_peak = C.peak_rss_bytes()
    if mode == "train":
        t0 = C.perf_counter()
        for _ in range(n):
            model.step(X, y)
        seconds = C.perf_counter() - t0
        return {"peak_bytes": C.peak_rss_bytes() - max(base, base_peak),
                "seconds": seconds}
    forward = model.forward_loss if hasattr(model, "forward_loss") else model.forward
    warm = max(1, n // 10)
    rss_warm = None
    for i in range(n):
        forward(X, y)
        if i + 1 == warm:
            gc.collect()
            rss_warm = C.rss_bytes()
    gc.collect()
    return {"growth_bytes": C.rss_bytes() - rss_warm, "warm": warm,
            "peak_bytes": C.peak_rss_bytes() - max(base, base_peak)}


def step_peak(model: object, X: np.ndarray, y: np.ndarray, n: int) -> dict:
    """Peak memory NumPy and Python allocate during one training step, once the model
    is warm (for ``tg.compile``: traced and compiled), counted by ``tracemalloc``: what a
    step itself needs, whatever the allocator keeps from earlier calls."""
    import tracemalloc

    for _ in range(4):  # past tg.compile's first calls (HOT)
        model.step(X, y)
    gc.collect()
    tracemalloc.start()
    peaks = []
    for _ in range(n):
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        model.step(X, y)
        peaks.append(tracemalloc.get_traced_memory()[1] - before)
    tracemalloc.stop()
    return {"step_peak_bytes": max(peaks)}


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--child":
        C.emit(child(argv[1], argv[2], int(argv[3]), int(argv[4])))
        return 0
    p = C.parser(__doc__.splitlines()[0])
    args = p.parse_args(argv)
    batch = 64 if args.quick else BATCH
    steps = 3 if args.quick else STEPS
    forwards = 20 if args.quick else FORWARDS
    impls = ["numpy (hand)", "tapegrad", "tapegrad compiled"]
    impls += [n for n in ("torch",) if C.optional(n, args) is not None]
    shape = "-".join(map(str, SIZES))
    C.header(f"memory: MLP {shape} float32, batch {batch}: peak RSS of {steps} training "
             f"steps; RSS growth over {forwards} forwards without backward")

    train = {i: C.run_child(__file__, ["train", i, str(steps), str(batch)]) for i in impls}
    fwd = {i: C.run_child(__file__, ["forwards", i, str(forwards), str(batch)])
           for i in impls}
    rep = C.Report("memory", args)
    rows = []
    floor = train["numpy (hand)"].get("peak_bytes")
    for i in impls:
        t, f = train[i], fwd[i]
        if "error" in t or "error" in f:
            rows.append([i, None, None, None, None, None,
                         "FAILED: " + (t.get("error") or f.get("error"))[:60]])
            continue
        rows.append([i, t["peak_bytes"] / C.MiB,
                     f"{t['peak_bytes'] / floor:.2f}x" if floor else None,
                     t["seconds"] / steps * 1e3, f["peak_bytes"] / C.MiB,
                     f["growth_bytes"] / C.MiB, "ok"])
    rep.table("peak RSS above baseline (MiB), one fresh process per cell",
              ["implementation", "train peak MiB", "vs numpy", "ms/step",
               "fwd-only peak MiB", f"growth MiB ({forwards} fwd)", "status"], rows,
              fmt="{:.1f}")
    steps_in = {i: C.run_child(__file__, ["step", i, "3", str(batch)]) for i in impls}
    rep.table("peak allocated during one warm training step (tracemalloc), MiB",
              ["implementation", "step peak MiB"],
              [[i, steps_in[i].get("step_peak_bytes", float("nan")) / C.MiB] for i in impls],
              fmt="{:.1f}")
    print()
    tg_t, tg_f = train["tapegrad"], fwd["tapegrad"]
    rep.check("ratio tapegrad/numpy training peak above baseline",
              C.ratio(tg_t.get("peak_bytes"), floor), PEAK_TARGET)
    rep.check("ratio tapegrad compiled/tapegrad peak of a warm step",
              C.ratio(steps_in["tapegrad compiled"].get("step_peak_bytes"),
                      steps_in["tapegrad"].get("step_peak_bytes")), 1.0)
    rep.check(f"tapegrad RSS growth over {forwards} un-backwarded forwards",
              None if "error" in tg_f else tg_f["growth_bytes"] / C.MiB,
              GROWTH_TARGET_MIB, "<=", " MiB")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
