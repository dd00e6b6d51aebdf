"""Deep graphs: the chain y = tanh(1.0001 * y + 0.001) on a scalar, depth 10^3 ... 10^6.

Each step records three ops (mul, add, tanh), then one backward pass from the last
``y``. Every (implementation, depth) runs in a fresh interpreter, which reports:

- time per op of the forward (recording) and of the backward, median over repeats;
- ``graph B/op``: resident memory added while the whole graph is alive (after the
  forward, before the backward), divided by the number of recorded ops;
- ``traced B/op``: the same from tracemalloc (exact allocations, no page or arena
  rounding; depths up to 10^4 only, as tracing is slow);
- ``peak MiB``: peak RSS above the baseline taken after imports and a warm-up.

Rows: ``numpy (hand)`` (the floor: the same chain on float64 scalars, saving each tanh
output, and a hand-written backward loop), ``tapegrad``, ``tapegrad compiled``
(``tg.compile(tg.value_and_grad(chain))``, traced before the measurement; one call runs
forward and backward, reported as its forward, with the memory its values take while
the call runs; up to ``--compiled-max-depth``, 10^4 by default: a plan holds one step
per op, tracing 10^6 of them takes minutes), and autograd / torch when installed (up to
``--compare-max-depth``, 10^5 by default: they are slow at 10^6).
Targets: depth 10^6 succeeds; tapegrad's time per op at 10^6 within 1.5x of 10^4; under
500 bytes per recorded op.
"""

from __future__ import annotations

import gc
import sys

import _common as C

OPS_PER_STEP = 3
TIME_TARGET = 1.5      # per-op time at the largest depth / at 10^4
BYTES_TARGET = 500     # graph bytes per recorded op
Y0 = 0.5
DEPTHS = (10**3, 10**4, 10**5, 10**6)
REPEATS = {10**3: 15, 10**4: 7, 10**5: 3, 10**6: 1}
TRACE_MAX_DEPTH = 10**4   # tracemalloc is slow: exact bytes per op only up to this depth


# ----------------------------------------------------------------------------- chains
# Each ``forward(depth)`` returns an object whose ``backward()`` runs the reverse pass
# and returns the gradient d y_depth / d y_0.


def numpy_impl():
    import numpy as np

    tanh = np.tanh

    class Graph:
        def __init__(self, depth):
            y = np.float64(Y0)
            saved = []
            push = saved.append
            for _ in range(depth):
                y = tanh(y * 1.0001 + 0.001)
                push(y)
            self.saved = saved

        def backward(self):
            g = 1.0
            for t in reversed(self.saved):
                g = g * (1.0 - t * t) * 1.0001
            self.saved = None
            return float(g)

    return Graph


def tanh_chain(y, depth):
    """The benchmarked graph, for tensors with a .tanh() method (tapegrad, torch)."""
    for _ in range(depth):
        y = (y * 1.0001 + 0.001).tanh()
    return y


def tapegrad_impl():
    import tapegrad as tg

    class Graph:
        def __init__(self, depth):
            self.x = x = tg.tensor(Y0, requires_grad=True)
            self.y = tanh_chain(x, depth)

        def backward(self):
            self.y.backward()
            self.y = None
            return float(self.x.grad)

    return Graph


def compiled_impl():
    import numpy as np

    import tapegrad as tg

    steps = {}

    class Graph:
        """One call of the compiled value_and_grad: forward and backward together."""

        @staticmethod
        def prepare(depth):
            step = steps[depth] = tg.compile(tg.value_and_grad(lambda y: tanh_chain(y, depth)))
            for _ in range(4):  # trace, flat loop, generated code
                step(np.array(Y0))

        def __init__(self, depth):
            if depth not in steps:
                Graph.prepare(depth)
            self.grad = steps[depth](np.array(Y0))[1]

        def backward(self):
            return float(self.grad)

    return Graph


def autograd_impl():
    import autograd
    import autograd.numpy as anp

    class Graph:
        def __init__(self, depth):
            def f(y):
                for _ in range(depth):
                    y = anp.tanh(y * 1.0001 + 0.001)
                return y

            self.vjp, _ = autograd.make_vjp(f)(Y0)

        def backward(self):
            g = self.vjp(1.0)
            self.vjp = None
            return float(g)

    return Graph


def torch_impl():
    import torch

    torch.set_num_threads(1)

    class Graph:
        def __init__(self, depth):
            self.x = x = torch.tensor(Y0, dtype=torch.float64, requires_grad=True)
            self.y = tanh_chain(x, depth)

        def backward(self):
            self.y.backward()
            self.y = None
            return float(self.x.grad)

    return Graph


IMPLS = {"numpy (hand)": numpy_impl, "tapegrad": tapegrad_impl,
         "tapegrad compiled": compiled_impl, "autograd": autograd_impl, "torch": torch_impl}
OPTIONAL = {"autograd": "autograd", "torch": "torch"}


# ----------------------------------------------------------------------------- child


def child(impl: str, depth: int, repeats: int) -> dict:
    """One implementation at one depth, in this fresh process."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    Graph = IMPLS[impl]()
    Graph(1000).backward()                     # warm-up: imports, caches, first allocations
    if hasattr(Graph, "prepare"):              # compiled: trace and plan outside the timing
        Graph.prepare(depth)
    gc.collect()
    base = C.rss_bytes()
    C.reset_peak()
    base_peak = C.peak_rss_bytes()
    fwd, bwd = [], []
    graph_bytes = None
    grad = None
    for r in range(repeats):
        gc.collect()
        t0 = C.perf_counter()
        g = Graph(depth)
        t1 = C.perf_counter()
        if r == 0:
            graph_bytes = C.rss_bytes() - base
        t2 = C.perf_counter()
        grad = g.backward()
        t3 = C.perf_counter()
        fwd.append(t1 - t0)
        bwd.append(t3 - t2)
        del g
    peak = C.peak_rss_bytes() - max(base, base_peak)
    n_ops = depth * OPS_PER_STEP
    traced = None
    if depth <= TRACE_MAX_DEPTH:               # exact Python + NumPy allocations, not pages
        import tracemalloc

        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        g = Graph(depth)
        traced = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        del g
    return {"fwd": C.median(fwd), "bwd": C.median(bwd), "total": C.median(fwd) + C.median(bwd),
            "ops": n_ops, "graph_bytes": graph_bytes, "traced_bytes": traced,
            "peak_bytes": peak, "grad": grad}


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv and argv[0] == "--child":
        C.emit(child(argv[1], int(argv[2]), int(argv[3])))
        return 0
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--depths", default=None,
                   help="comma-separated depths (default 1000,10000,100000,1000000)")
    p.add_argument("--compiled-max-depth", type=int, default=10**4,
                   help="largest depth for the tapegrad compiled row (default 10000)")
    p.add_argument("--compare-max-depth", type=int, default=None,
                   help="largest depth for the autograd / torch rows (default 100000; "
                        "1000 with --quick)")
    args = p.parse_args(argv)
    if args.compare_max_depth is None:
        args.compare_max_depth = 10**3 if args.quick else 10**5
    if args.depths:
        depths = tuple(int(float(d)) for d in args.depths.split(","))
    else:
        depths = (10**3, 10**4) if args.quick else DEPTHS
    impls = ["numpy (hand)", "tapegrad", "tapegrad compiled"]
    impls += [n for n, mod in OPTIONAL.items() if C.optional(mod, args) is not None]

    C.header(f"deep: y = tanh(1.0001 y + 0.001), {OPS_PER_STEP} ops per step, depths "
             f"{', '.join(f'{d:g}' for d in depths)}; one fresh process per row")
    results: dict[tuple[str, int], dict] = {}
    for depth in depths:
        for impl in impls:
            if impl in OPTIONAL and depth > args.compare_max_depth:
                continue
            if impl == "tapegrad compiled" and depth > args.compiled_max_depth:
                continue
            reps = args.repeats or (1 if args.quick else REPEATS.get(depth, 1))
            results[impl, depth] = C.run_child(__file__, [impl, str(depth), str(reps)],
                                               timeout=900)

    rep = C.Report("deep", args)
    rows = []
    for (impl, depth), r in results.items():
        if "error" in r:
            rows.append([impl, f"{depth:.0e}", None, None, None, None, None, None,
                         "FAILED: " + r["error"][:60]])
            continue
        us = 1e6 / r["ops"]
        rows.append([impl, f"{depth:.0e}", r["fwd"] * us, r["bwd"] * us, r["total"] * us,
                     r["graph_bytes"] / r["ops"],
                     None if r["traced_bytes"] is None else r["traced_bytes"] / r["ops"],
                     r["peak_bytes"] / C.MiB, "ok"])
    rep.table("median per (implementation, depth); us per op; memory from RSS",
              ["implementation", "depth", "fwd us/op", "bwd us/op", "total us/op",
               "graph B/op", "traced B/op", "peak MiB", "status"], rows, fmt="{:.2f}")
    print()

    # The gradients must agree with the hand-written chain rule.
    for (impl, depth), r in results.items():
        ref = results.get(("numpy (hand)", depth), {}).get("grad")
        if "grad" in r and ref is not None and abs(r["grad"] - ref) > 1e-9 * max(1, abs(ref)):
            print(f"gradient mismatch at depth {depth}: {impl} {r['grad']!r} vs numpy "
                  f"{ref!r}", file=sys.stderr)
            return 2

    deepest = max(depths)
    top = results.get(("tapegrad", deepest), {"error": "not run"})
    rep.check(f"tapegrad depth {deepest:.0e} succeeds (1 = yes)",
              0.0 if "error" in top else 1.0, 1.0, ">=")
    mid = results.get(("tapegrad", 10**4))
    if mid and "error" not in mid and "error" not in top and deepest > 10**4:
        rep.check(f"ratio tapegrad time/op at {deepest:.0e} vs 1e+04",
                  (top["total"] / top["ops"]) / (mid["total"] / mid["ops"]), TIME_TARGET)
    else:
        rep.info(f"ratio tapegrad time/op at largest depth vs 1e+04: needs both depths "
                 f"(have {deepest:.0e})")
    rep.check(f"tapegrad graph bytes per recorded op at {deepest:.0e}",
              None if "error" in top else top["graph_bytes"] / top["ops"], BYTES_TARGET,
              "<", " B")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
