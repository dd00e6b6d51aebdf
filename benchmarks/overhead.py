"""Per-op Python overhead: a chain of 2000 mixed elementwise ops on shape (8,) float64.

The chain repeats an 8-op cycle (mul by a constant, add, tanh, square, sub, sin, mul by
the input, exp) that keeps values in a small range, then sums to a scalar and runs the
backward pass. Reported: microseconds per chain op for the forward (recording) and the
backward (replay) separately, and their sum, against

- ``numpy fwd only``: the bare NumPy forward, nothing saved (context, not a target);
- ``numpy fwd+bwd (hand)``: the floor: the same forward saving what the hand-written
  backward needs, and the backward written out by hand, op by op, freeing the saved
  arrays as it consumes them (tapegrad's timed backward frees its graph as it goes too);
- ``tapegrad compiled``: ``tg.compile(tg.value_and_grad(f))``, the same function
  traced once and replayed as a plan of plain NumPy calls (forward and backward in one
  call: only the total is reported);
- ``minimal engine (reference)``: ``_minimal_engine.py``, the least an eager engine of
  tapegrad's shape does (two objects per op, a heap replay, no checks): context for the
  eager target;
- autograd (``make_vjp``) and torch eager, when installed.

Targets: tapegrad forward + backward per op <= 2.8x the hand-written floor; compiled
<= 1.25x the floor; tracing (the first call of the compiled function: trace, plan)
<= 3x one eager call of ``tg.value_and_grad(f)``.
Run: ``python benchmarks/overhead.py [--quick] [--ops N] [--repeats R]``.
"""

from __future__ import annotations

import sys

import _common as C
import numpy as np

TARGET = 2.8          # tapegrad / numpy floor, forward + backward per op
COMPILED_TARGET = 1.25  # tapegrad compiled / numpy floor
TRACE_TARGET = 3.0    # first call of the compiled function / one eager call
TORCH_TARGET = 0.5    # "about half of PyTorch eager's time" (informational check)
CYCLE = 8             # ops per cycle of the chain


def make_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, 8)
    a = rng.uniform(0.9, 1.1, 8)
    b = rng.uniform(-0.1, 0.1, 8)
    return x, a, b


# ----------------------------------------------------------------------------- numpy


def numpy_forward(x, a, b, cycles):
    """Bare forward: what the chain costs with nothing saved."""
    return chain(x, a, b, cycles, np.tanh, np.sin, np.exp).sum()


def numpy_fwd_bwd(x, a, b, cycles):
    """Forward saving what the backward needs, then the backward by hand. ``(t_f, t_b, gx)``."""
    tanh, sin, cos, exp = np.tanh, np.sin, np.cos, np.exp
    t0 = C.perf_counter()
    saved = []
    push = saved.append
    y = x
    for _ in range(cycles):
        y = y * a
        y = y + b
        t = tanh(y)
        y = t * t
        y = y - b
        v = y
        y = sin(v)
        s = y
        y = s * x
        e = exp(y)
        y = e
        push((t, v, s, e))
    y.sum()
    t1 = C.perf_counter()
    g = np.ones_like(y)
    gx = np.zeros_like(x)
    while saved:                 # freeing what it consumed, as tapegrad's backward does
        t, v, s, e = saved.pop()
        g = g * e                # exp
        gx = gx + g * s          # y * x: the x side
        g = g * x                # y * x: the y side
        g = g * cos(v)           # sin
        g = g * (2.0 * t)        # square (sub and add pass g through)
        g = g * (1.0 - t * t)    # tanh
        g = g * a                # mul by constant
    gx = gx + g                  # the chain started at x
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, gx


# ----------------------------------------------------------------------------- tapegrad


def chain(x, a, b, cycles, tanh, sin, exp):
    """The benchmarked chain (8 ops a cycle), for any array library."""
    y = x
    for _ in range(cycles):
        y = y * a
        y = y + b
        y = tanh(y)
        y = y * y
        y = y - b
        y = sin(y)
        y = y * x
        y = exp(y)
    return y


def tapegrad_fwd_bwd(tg, x0, a, b, cycles):
    t0 = C.perf_counter()
    x = tg.tensor(x0, requires_grad=True)
    y = chain(x, a, b, cycles, tg.ops.tanh, tg.ops.sin, tg.ops.exp)
    loss = y.sum()
    t1 = C.perf_counter()
    loss.backward()
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, x.grad


def minimal_fwd_bwd(x0, a, b, cycles):
    """The reference engine of ``_minimal_engine.py`` (the backward seeds the chain's
    output with ones: its sum's gradient)."""
    import _minimal_engine as M

    t0 = C.perf_counter()
    x = M.leaf(x0)
    y = chain(x, a, b, cycles, M.tanh, M.sin, M.exp)
    t1 = C.perf_counter()
    grads = M.backward(y)
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, grads[x.node]


def chain_value_and_grad(tg, a, b, cycles):
    """``tg.value_and_grad`` of the chain's sum, for the compiled row and its tracing."""
    def f(x):
        return chain(x, a, b, cycles, tg.ops.tanh, tg.ops.sin, tg.ops.exp).sum()

    return tg.value_and_grad(f)


def compiled_fwd_bwd(step, x0):
    t0 = C.perf_counter()
    _, gx = step(x0)
    return C.perf_counter() - t0, gx


def tracing_cost(tg, x0, a, b, cycles, repeats):
    """Median seconds of the first calls of a fresh ``tg.compile`` (each of the first
    ``HOT``, in order) and of one eager call.

    The first call traces and builds the plan (and returns the traced values); the
    second assembles and runs the plan's flat loop; the ``HOT``-th traces again with
    every vjp expanded into its ops and generates the straight-line code. All three are
    reported: the target is on the first. The cyclic collector is off while any of
    them runs (and collects in between): tg.compile pauses it while tracing, and the
    collection it then owes would otherwise land in whatever call comes next.
    """
    import gc

    from tapegrad.compiler import HOT

    vg = chain_value_and_grad(tg, a, b, cycles)
    calls, eager = [[] for _ in range(HOT)], []
    was_on = gc.isenabled()
    try:
        for _ in range(repeats):
            fresh = tg.compile(vg)
            for times in [*calls, eager]:
                gc.collect()
                gc.disable()
                t0 = C.perf_counter()
                (vg if times is eager else fresh)(x0)
                times.append(C.perf_counter() - t0)
                gc.enable()
    finally:
        if not was_on:
            gc.disable()
    return [C.median(t) for t in calls], C.median(eager)


# ----------------------------------------------------------------------------- optional


def autograd_fwd_bwd(ag, x0, a, b, cycles):
    anp = ag.numpy

    def f(x):
        return anp.sum(chain(x, a, b, cycles, anp.tanh, anp.sin, anp.exp))

    t0 = C.perf_counter()
    vjp, _ = ag.make_vjp(f)(x0)
    t1 = C.perf_counter()
    gx = vjp(1.0)
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, gx


def torch_fwd_bwd(torch, x0, a, b, cycles):
    t0 = C.perf_counter()
    x = torch.tensor(x0, requires_grad=True)
    y = chain(x, a, b, cycles, torch.tanh, torch.sin, torch.exp)
    loss = y.sum()
    t1 = C.perf_counter()
    loss.backward()
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, x.grad.numpy()


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--ops", type=int, default=None, help="chain length (default 2000)")
    args = p.parse_args(argv)
    n_ops = args.ops or (200 if args.quick else 2000)
    cycles = max(1, n_ops // CYCLE)
    n_ops = cycles * CYCLE
    repeats = args.repeats or (3 if args.quick else 40)
    warmup = 1 if args.quick else 5

    import tapegrad as tg

    ag = C.optional("autograd", args)
    torch = C.optional("torch", args)
    x, a, b = make_inputs()
    C.header(f"overhead: chain of {n_ops} elementwise ops on (8,) float64 + sum + backward")

    # Gradients must agree before anything is timed.
    _, _, g_ref = numpy_fwd_bwd(x, a, b, cycles)
    impls = {"tapegrad": lambda: tapegrad_fwd_bwd(tg, x, a, b, cycles),
             "minimal engine (reference)": lambda: minimal_fwd_bwd(x, a, b, cycles)}
    step = tg.compile(chain_value_and_grad(tg, a, b, cycles))
    compiled = lambda: (0.0, 0.0, compiled_fwd_bwd(step, x)[1])  # noqa: E731
    if ag is not None:
        impls["autograd"] = lambda: autograd_fwd_bwd(ag, x, a, b, cycles)
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        impls["torch " + torch.__version__.split("+")[0]] = (
            lambda: torch_fwd_bwd(torch, x, ta, tb, cycles))
    for name, fn in {**impls, "tapegrad compiled": compiled}.items():
        g = fn()[2]
        if not np.allclose(g, g_ref, rtol=1e-9, atol=1e-12):
            print(f"gradient mismatch: {name} vs hand-written numpy: max abs diff "
                  f"{np.max(np.abs(np.asarray(g) - g_ref)):.3g}", file=sys.stderr)
            return 2
    print(f"   gradients of {', '.join(impls)} and tapegrad compiled agree with the "
          "hand-written numpy backward")
    for _ in range(3):  # past its first calls (a flat loop): the generated plan is timed
        step(x)
    if args.profile:
        C.profile(impls["tapegrad"], args.profile)
        return 0

    def phases(fn):
        def run():
            tf, tb, _ = fn()
            return {"fwd": tf, "bwd": tb, "total": tf + tb}
        return run

    def bare():
        t0 = C.perf_counter()
        numpy_forward(x, a, b, cycles)
        return {"fwd": C.perf_counter() - t0}

    timed = {"numpy fwd only": bare,
             "numpy fwd+bwd (hand)": phases(lambda: numpy_fwd_bwd(x, a, b, cycles))}
    timed.update({name: phases(fn) for name, fn in impls.items()})
    timed["tapegrad compiled"] = lambda: {"total": compiled_fwd_bwd(step, x)[0]}
    res = C.interleave(timed, repeats, warmup, gc_off=args.no_gc)
    firsts, eager_call = tracing_cost(tg, x, a, b, cycles, 2 if args.quick else 5)
    first = firsts[0]

    us = 1e6 / n_ops
    floor = res["numpy fwd+bwd (hand)"]["total"]
    rows = []
    for name, r in res.items():
        total = r.get("total")
        rows.append([name, r["fwd"] * us if "fwd" in r else None,
                     r["bwd"] * us if "bwd" in r else None,
                     total * us if total is not None else None,
                     f"{total / floor:.2f}x" if total is not None else None])
    rep = C.Report("overhead", args)
    rep.table(f"median of {repeats} runs, microseconds per op",
              ["implementation", "fwd us/op", "bwd us/op", "total us/op", "vs floor"], rows)
    print()
    tgr = res["tapegrad"]
    rep.check("ratio tapegrad/numpy (fwd+bwd per op)", C.ratio(tgr["total"], floor), TARGET)
    rep.info(f"ratio tapegrad/numpy forward only = "
             f"{tgr['fwd'] / res['numpy fwd+bwd (hand)']['fwd']:.2f}, backward only = "
             f"{tgr['bwd'] / res['numpy fwd+bwd (hand)']['bwd']:.2f}")
    rep.info(f"ratio minimal engine (reference)/numpy = "
             f"{res['minimal engine (reference)']['total'] / floor:.2f}: recording with two "
             "objects per op and no checks (benchmarks/_minimal_engine.py)")
    rep.check("ratio tapegrad compiled/numpy (fwd+bwd per op)",
              C.ratio(res["tapegrad compiled"]["total"], floor), COMPILED_TARGET)
    rep.check("ratio tapegrad compiled first call (trace + plan)/one eager call",
              C.ratio(first, eager_call), TRACE_TARGET)
    rep.info(f"   (first call {first * 1e3:.1f} ms: trace and plan of {step.plans[0].n_steps} "
             f"steps; eager value_and_grad call {eager_call * 1e3:.1f} ms)")
    rep.info(f"   (then: second call {firsts[1] * 1e3:.1f} ms, assembling and running the "
             f"flat loop; call {len(firsts)} {firsts[-1] * 1e3:.1f} ms, tracing again with "
             "every vjp expanded and generating the code)")
    for name in res:
        if name.startswith("torch"):
            rep.check(f"ratio tapegrad/{name} (fwd+bwd per op)",
                      C.ratio(tgr["total"], res[name]["total"]), TORCH_TARGET)
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
