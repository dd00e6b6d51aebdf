"""Dask: value and gradient of the logistic loss over N rows x 100 features, chunked.

The workload of a GLM fit on a cluster (dask-glm's): ``mean(log(1 + exp(z)) - y z)``
with ``z = X @ w`` and its gradient, on a ``dask.distributed`` cluster of two worker
processes on the loopback interface. Rows:

- ``dask (hand)``: the hand-written Dask gradient ``X.T @ (sigmoid(X @ w) - y) / N``
  and the loss, computed together (``dask.compute``);
- ``tapegrad``: ``tg.value_and_grad`` of the loss written with tapegrad ops on the Dask
  arrays, then ``tg.compute(value, grad)``: one Dask pass on the same scheduler.

Two data sets: ``persisted`` (N rows held on the workers, chunk by chunk: the time is
the math and the scheduling) and ``streamed`` (every evaluation generates its chunks
inside the graph from per-chunk seeds, never persisted; in the full run N x 100 float64
is about 3.2 GB, more than the 2 GB each worker is allowed, so the run only completes if
chunks stream). Both results are checked against each other before timing. Reported:
the median wall time of each row, peak RSS of the driver and of each worker per data set.
Target: tapegrad <= 1.2x the hand-written Dask time, on each data set; every worker's
peak RSS under its 2 GB limit.
"""

from __future__ import annotations

import logging
import sys
import time

import _common as C
import numpy as np

TARGET = 1.2
FEATURES = 100
MEMORY_LIMIT = 2 * 1024**3


# ----------------------------------------------------------------------------- data


def _chunk(block_info=None, *, seed):
    """Rows ``[y, x_1 .. x_100]`` of one chunk, drawn from the chunk's own seed."""
    rows = block_info[None]["chunk-shape"][0]
    rng = np.random.default_rng([seed, block_info[None]["chunk-location"][0]])
    X = rng.standard_normal((rows, FEATURES))
    w = np.linspace(-1, 1, FEATURES) / np.sqrt(FEATURES)
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-(X @ w)))).astype(float)
    return np.column_stack([y, X])


def make_data(n, chunk, seed=0):
    import dask.array as da

    rows = (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())
    data = da.map_blocks(_chunk, seed=seed, chunks=(rows, (FEATURES + 1,)), dtype=float)
    return data[:, 1:], data[:, 0]


# ----------------------------------------------------------------------------- rows


def hand_value_and_grad(X, y, w):
    """The hand-written Dask loss and gradient, computed in one pass."""
    import dask
    import dask.array as da

    z = X @ w
    loss = (da.logaddexp(0, z) - y * z).mean()
    grad = X.T @ (1 / (1 + da.exp(-z)) - y) / X.shape[0]
    return dask.compute(loss, grad)


def tapegrad_value_and_grad(tg):
    def loss(w, X, y):
        return tg.nn.binary_cross_entropy_with_logits(tg.tensor(X) @ w, y)

    vg = tg.value_and_grad(loss)

    def run(X, y, w):
        return tg.compute(*vg(w, X, y))

    return run


# ----------------------------------------------------------------------------- memory


def _worker_peak():
    """VmHWM of this process (bytes); run on each worker by ``client.run``."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def _worker_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def measure(client, tg, name, X, y, repeats, warmup):
    w = np.linspace(0.5, -0.5, FEATURES) / np.sqrt(FEATURES)
    tape_run = tapegrad_value_and_grad(tg)
    v_hand, g_hand = hand_value_and_grad(X, y, w)
    v_tg, g_tg = tape_run(X, y, w)
    if not (np.allclose(v_tg, v_hand, rtol=1e-10) and np.allclose(g_tg, g_hand, rtol=1e-8,
                                                                  atol=1e-12)):
        raise SystemExit(f"{name}: tapegrad's value/gradient differ from the hand-written "
                         f"Dask ones: {float(v_tg)} vs {float(v_hand)}, max gradient "
                         f"difference {np.max(np.abs(g_tg - g_hand)):.3g}")
    client.run(_worker_reset)
    C.reset_peak()

    def timer(fn):
        def run():
            t0 = time.perf_counter()  # wall time: the work happens on the workers
            fn(X, y, w)
            return time.perf_counter() - t0
        return run

    res = C.interleave({"dask (hand)": timer(hand_value_and_grad),
                        "tapegrad": timer(tape_run)}, repeats, warmup)
    workers = client.run(_worker_peak)
    return res, C.peak_rss_bytes(), sorted(v for v in workers.values() if v)


def main(argv: list[str] | None = None) -> int:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=None,
                   help="rows of the persisted data set (default 1e6; --quick 20000)")
    p.add_argument("--stream-rows", type=int, default=None,
                   help="rows of the streamed data set (default 4e6: 3.2 GB; --quick 40000)")
    p.add_argument("--chunk", type=int, default=None,
                   help="rows per chunk (default 100000; --quick 5000)")
    args = p.parse_args(argv)
    if not (C.module_available("dask") and C.module_available("distributed")):
        print('dask_glm: dask is not installed: skipped (pip install "tapegrad[dask]")')
        return 0
    quick = args.quick
    rows = args.rows or (20_000 if quick else 1_000_000)
    stream_rows = args.stream_rows or (40_000 if quick else 4_000_000)
    chunk = args.chunk or (5_000 if quick else 100_000)
    repeats = args.repeats or (2 if quick else 5)
    warmup = 1

    from dask.distributed import Client, LocalCluster

    import tapegrad as tg

    C.header(f"dask_glm: logistic loss value+gradient, {FEATURES} features, chunks of "
             f"{chunk} rows, 2 worker processes (1 thread each, {MEMORY_LIMIT >> 30} GB "
             "limit)")
    print("   wall time: the work runs on the workers (--clock does not apply)")
    rep = C.Report("dask_glm", args)
    results = {}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, memory_limit=MEMORY_LIMIT,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        X, y = make_data(rows, chunk)
        X, y = client.persist(X), client.persist(y)
        results["persisted"] = (rows, *measure(client, tg, "persisted", X, y, repeats,
                                               warmup))
        del X, y
        X, y = make_data(stream_rows, chunk, seed=1)  # generated inside every pass
        results["streamed"] = (stream_rows, *measure(client, tg, "streamed", X, y,
                                                     repeats, warmup))
    table = [[name] + [r[1][name]["total"] for r in results.values()]
             for name in ("dask (hand)", "tapegrad")]
    rep.table(f"median of {repeats} value+gradient evaluations, seconds (wall)",
              ["implementation"] + [f"{k} ({r[0]:,} rows, {r[0] * FEATURES * 8 / 2**30:.2f} GiB)"
                                    for k, r in results.items()], table)
    print()
    for key, (_, _, driver, workers) in results.items():
        shown = ", ".join(f"{v / C.MiB:.0f}" for v in workers)
        rep.info(f"{key}: peak RSS driver {driver / C.MiB:.0f} MiB, workers [{shown}] MiB")
    print()
    for key, (_, res, _, _) in results.items():
        rep.check("ratio tapegrad/dask (value+grad)" + ("" if key == "persisted" else " " + key),
                  C.ratio(res["tapegrad"]["total"], res["dask (hand)"]["total"]), TARGET)
    worst = max(v for _, (_, _, _, ws) in results.items() for v in ws) / C.MiB
    rep.check("peak RSS of a worker (MiB)", worst, MEMORY_LIMIT / C.MiB)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
