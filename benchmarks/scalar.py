"""Scalar graphs: micrograd's workload, one op per scalar.

An MLP(2, [16, 16, 1]) (ReLU on the hidden layers) is evaluated point by point on 100
two-moons points, exactly as micrograd's demo does it: a neuron is
``b + w0*x0 + w1*x1 + ...`` built one scalar op at a time, the loss is the mean SVM
hinge loss ``sum((1 + -y*score).relu()) * (1/n)``; then one backward pass. Rows:

- ``python floats (hand)``: the floor for this workload: the same per-scalar forward and a
  hand-written backward on Python floats (no graph);
- ``numpy batched (hand)``: the same network on (100, 2) arrays, hand-written backward
  (context: what vectorising buys);
- ``tapegrad``: parameters are 0-d tensors, every op is one recorded tapegrad op;
- ``tapegrad compiled``: ``tg.compile(tg.value_and_grad(loss))`` of the same loss over a
  chunk of ``CHUNK`` points (parameters: 0-d arrays), called chunk by chunk, the
  gradients added up: each call replays a plan of plain NumPy calls on 0-d arrays;
- ``micrograd`` (its own ``micrograd.nn.MLP``) and torch eager on 0-d tensors, when
  installed.

Times are microseconds per scalar op of the graph (counted, about 64k for 100 points),
forward and backward separately, with the garbage collector on (as in real use) and
then off (as ``timeit`` does). Targets: tapegrad no slower per op than micrograd;
tapegrad compiled at least 10x faster per op than micrograd (when micrograd is not
installed, the compiled row is compared with the python floats floor instead).
"""

from __future__ import annotations

import math
import sys

import _common as C
import numpy as np

SIZES = (2, 16, 16, 1)
N_POINTS = 100
TARGET = 1.0   # tapegrad / micrograd per op
COMPILED_TARGET = 0.1  # tapegrad compiled / micrograd per op
CHUNK = 10     # points per call of the compiled function


def two_moons(n, noise=0.1, seed=0):
    """``(X, y)``: sklearn-style two moons, labels -1/+1 as micrograd's demo uses."""
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], 1),
                        np.stack([1 - np.cos(t_in), 1 - np.sin(t_in) - 0.5], 1)])
    X += rng.normal(scale=noise, size=X.shape)
    y = np.concatenate([-np.ones(n_out), np.ones(n_in)])
    return X.tolist(), y.tolist()


def init_weights(seed=0):
    """``[(W, b), ...]`` as nested Python lists; ``W[j][i]``: input i -> neuron j."""
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers.append((rng.uniform(-1, 1, (n_out, n_in)).tolist(),
                       rng.uniform(-0.1, 0.1, n_out).tolist()))
    return layers


# ----------------------------------------------------------------------------- generic model


def forward_loss(layers, X, Y, relu):
    """micrograd's forward and hinge loss on any scalar type with ``+``, ``*`` and ``relu``.

    ``layers``: ``[(W, b)]`` of scalars (W[j][i]); ``X``: points as lists of floats.
    """
    last = len(layers) - 1
    losses = []
    for x, yv in zip(X, Y, strict=True):
        h = x
        for li, (W, b) in enumerate(layers):
            out = []
            for wj, bj in zip(W, b, strict=True):
                act = bj
                for wi, xi in zip(wj, h, strict=True):
                    act = act + wi * xi
                out.append(relu(act) if li < last else act)
            h = out
        losses.append(relu(1 + -yv * h[0]))
    return sum(losses) * (1.0 / len(losses))


class Count:
    """A scalar that counts the ops applied to it (to report time per op)."""

    n = 0

    def __add__(self, other):
        Count.n += 1
        return self

    __radd__ = __add__
    __mul__ = __add__
    __rmul__ = __add__


def count_ops(n_points):
    Count.n = 0
    c = Count()
    layers = [([[c] * len(W[0]) for _ in W], [c] * len(b)) for W, b in init_weights()]
    X = [[0.0, 0.0]] * n_points

    def relu(v):
        Count.n += 1
        return v

    forward_loss(layers, X, [1.0] * n_points, relu)
    return Count.n


# ----------------------------------------------------------------------------- floors


def floats_fwd_bwd(layers, X, Y):
    """Hand-written per-scalar forward and backward on floats: ``(t_f, t_b, loss, grads)``."""
    t0 = C.perf_counter()
    L = len(layers)
    inv = 1.0 / len(X)
    tape = []
    loss = 0.0
    for x, yv in zip(X, Y, strict=True):
        acts = [x]
        h = x
        for li, (W, b) in enumerate(layers):
            out = []
            for wj, bj in zip(W, b, strict=True):
                a = bj
                for wi, xi in zip(wj, h, strict=True):
                    a = a + wi * xi
                out.append((a if a > 0 else 0.0) if li < L - 1 else a)
            h = out
            acts.append(h)
        m = 1 + -yv * h[0]
        if m > 0:
            loss += m
            tape.append((acts, -yv * inv))
    loss *= inv
    t1 = C.perf_counter()
    grads = [([[0.0] * len(W[0]) for _ in W], [0.0] * len(b)) for W, b in layers]
    for acts, d0 in tape:
        d = [d0]
        for li in range(L - 1, -1, -1):
            W, _ = layers[li]
            gW, gb = grads[li]
            h_in = acts[li]
            if li < L - 1:
                d = [dj if hj > 0 else 0.0 for dj, hj in zip(d, acts[li + 1], strict=True)]
            d_in = [0.0] * len(h_in)
            for j, dj in enumerate(d):
                gb[j] += dj
                wj = W[j]
                gwj = gW[j]
                for i, hi in enumerate(h_in):
                    gwj[i] += dj * hi
                    d_in[i] += dj * wj[i]
            d = d_in
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, loss, grads


def numpy_fwd_bwd(layers, X, Y):
    """The same network batched over the points, hand-written backward."""
    t0 = C.perf_counter()
    n = X.shape[0]
    hs = [X]
    h = X
    last = len(layers) - 1
    for li, (W, b) in enumerate(layers):
        z = h @ W.T + b
        h = np.maximum(z, 0.0) if li < last else z
        hs.append(h)
    margin = 1 - Y * h[:, 0]
    loss = np.maximum(margin, 0.0).sum() / n
    t1 = C.perf_counter()
    d = ((margin > 0) * (-Y / n))[:, None]
    grads = [None] * len(layers)
    for li in range(last, -1, -1):
        W, _ = layers[li]
        if li < last:
            d = d * (hs[li + 1] > 0)
        grads[li] = (d.T @ hs[li], d.sum(axis=0))
        d = d @ W
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, loss, grads


# ----------------------------------------------------------------------------- libraries


def autodiff_fwd_bwd(params, X, Y):
    """One pass for tapegrad or torch tensors (same API here): ``(t_f, t_b, loss)``."""
    t0 = C.perf_counter()
    loss = forward_loss(params, X, Y, lambda v: v.relu())
    t1 = C.perf_counter()
    loss.backward()
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, loss.item()


def compiled_step(tg):
    """The compiled loss and gradient over one chunk of points."""
    def loss(params, X, Y):
        return forward_loss(params, X, Y, lambda v: v.relu())

    return tg.compile(tg.value_and_grad(loss))


def compiled_fwd_bwd(tg, step, params, X, Y):
    """The mean loss over all points and its gradient, chunk by chunk: ``(t, loss, g)``."""
    t0 = C.perf_counter()
    n = len(X)
    loss, total, treedef = 0.0, None, None
    for k in range(0, n, CHUNK):
        lc, gc = step(params, X[k:k + CHUNK], Y[k:k + CHUNK])
        w = len(X[k:k + CHUNK]) / n
        loss += float(lc) * w
        leaves, treedef = tg.tree.flatten(gc)
        if total is None:
            total = [float(g) * w for g in leaves]
        else:
            total = [a + float(g) * w for a, g in zip(total, leaves, strict=True)]
    return C.perf_counter() - t0, loss, tg.tree.unflatten(treedef, total)


def micrograd_model(weights):
    from micrograd.nn import MLP

    model = MLP(SIZES[0], list(SIZES[1:]))
    for layer, (W, b) in zip(model.layers, weights, strict=True):
        for neuron, wj, bj in zip(layer.neurons, W, b, strict=True):
            for v, w in zip(neuron.w, wj, strict=True):
                v.data = w
            neuron.b.data = bj
    return model


def micrograd_fwd_bwd(model, X, Y):
    t0 = C.perf_counter()
    scores = [model(x) for x in X]
    losses = [(1 + -yv * s).relu() for yv, s in zip(Y, scores, strict=True)]
    loss = sum(losses) * (1.0 / len(losses))
    t1 = C.perf_counter()
    loss.backward()
    t2 = C.perf_counter()
    return t1 - t0, t2 - t1, loss.data


# ----------------------------------------------------------------------------- main


def flat(grads):
    out = []
    for gW, gb in grads:
        for row in gW:
            out.extend(float(v) for v in row)
        out.extend(float(v) for v in gb)
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    p = C.parser(__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=None, help=f"points (default {N_POINTS})")
    args = p.parse_args(argv)
    n_points = args.points or (10 if args.quick else N_POINTS)
    repeats = args.repeats or (2 if args.quick else 7)
    warmup = 1

    import tapegrad as tg

    micrograd = C.optional("micrograd.nn", args)
    torch = C.optional("torch", args)
    X, Y = two_moons(n_points)
    weights = init_weights()
    n_ops = count_ops(n_points)
    C.header(f"scalar: MLP{SIZES[0], list(SIZES[1:])} point by point on {n_points} two-moons "
             f"points, {n_ops} scalar ops, forward + backward")

    tg_params = [([[tg.tensor(w, requires_grad=True) for w in row] for row in W],
                  [tg.tensor(v, requires_grad=True) for v in b]) for W, b in weights]
    np_layers = [(np.array(W), np.array(b)) for W, b in weights]
    Xa, Ya = np.array(X), np.array(Y)

    def tg_grads():
        return [([[w.grad if w.grad is not None else 0.0 for w in row] for row in W],
                 [v.grad if v.grad is not None else 0.0 for v in b]) for W, b in tg_params]

    def tg_zero():
        for W, b in tg_params:
            for row in W:
                for w in row:
                    w.grad = None
            for v in b:
                v.grad = None

    # Reference gradients; every implementation must agree before timing.
    _, _, ref_loss, ref = floats_fwd_bwd(weights, X, Y)
    ref = flat(ref)
    got = {}
    _, _, loss, g = numpy_fwd_bwd(np_layers, Xa, Ya)
    got["numpy batched (hand)"] = (loss, flat(g))
    tg_zero()
    loss = autodiff_fwd_bwd(tg_params, X, Y)[2]
    got["tapegrad"] = (loss, flat(tg_grads()))
    impls = {"tapegrad": lambda: autodiff_fwd_bwd(tg_params, X, Y)}
    step = compiled_step(tg)
    c_params = [([[np.array(w) for w in row] for row in W], [np.array(v) for v in b])
                for W, b in weights]
    Xc, Yc = np.array(X), np.array(Y)
    for _ in range(3):  # trace, then past the plans' first calls (flat loops)
        _, loss, g = compiled_fwd_bwd(tg, step, c_params, Xc, Yc)
    got["tapegrad compiled"] = (loss, flat(g))
    resets = {"tapegrad": tg_zero}
    if micrograd is not None:
        model = micrograd_model(weights)
        loss = micrograd_fwd_bwd(model, X, Y)[2]
        got["micrograd"] = (loss, flat([([[w.grad for w in n.w] for n in layer.neurons],
                                          [n.b.grad for n in layer.neurons])
                                         for layer in model.layers]))
        impls["micrograd"] = lambda: micrograd_fwd_bwd(model, X, Y)
        resets["micrograd"] = model.zero_grad
    if torch is not None:
        t_params = [([[torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in row]
                      for row in W],
                     [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in b])
                    for W, b in weights]
        t_all = [p for W, b in t_params for row in [*W, b] for p in row]

        def torch_zero():
            for p in t_all:
                p.grad = None

        loss = autodiff_fwd_bwd(t_params, X, Y)[2]
        got["torch"] = (loss, np.array([0.0 if p.grad is None else p.grad.item()
                                        for p in t_all]))
        name = "torch " + torch.__version__.split("+")[0]
        impls[name] = lambda: autodiff_fwd_bwd(t_params, X, Y)
        resets[name] = torch_zero
    for name, (loss, g) in got.items():
        if not (math.isclose(loss, ref_loss, rel_tol=1e-9, abs_tol=1e-12)
                and np.allclose(g, ref, rtol=1e-9, atol=1e-12)):
            print(f"gradient mismatch: {name} vs hand-written floats: loss {loss!r} vs "
                  f"{ref_loss!r}, max abs grad diff {np.max(np.abs(g - ref)):.3g}",
                  file=sys.stderr)
            return 2
    print(f"   losses and gradients of {', '.join(got)} agree with the hand-written floats")
    if args.profile:
        def run():
            tg_zero()
            impls["tapegrad"]()
        C.profile(run, args.profile)
        return 0

    def phases(fn, reset=None):
        def run():
            if reset is not None:
                reset()
            tf, tb = fn()[:2]
            return {"fwd": tf, "bwd": tb, "total": tf + tb}
        return run

    timed = {"python floats (hand)": phases(lambda: floats_fwd_bwd(weights, X, Y)),
             "numpy batched (hand)": phases(lambda: numpy_fwd_bwd(np_layers, Xa, Ya))}
    timed.update({n: phases(fn, resets[n]) for n, fn in impls.items()})
    timed["tapegrad compiled"] = lambda: {
        "total": compiled_fwd_bwd(tg, step, c_params, Xc, Yc)[0]}
    res = C.interleave(timed, repeats, warmup, gc_off=args.no_gc)

    us = 1e6 / n_ops
    rep = C.Report("scalar", args)
    rows = [[name, r["fwd"] * us if "fwd" in r else None,
             r["bwd"] * us if "bwd" in r else None, r["total"] * us, r["total"] * 1e3]
            for name, r in res.items()]
    rep.table(f"median of {repeats} runs, microseconds per scalar op ({n_ops} ops)",
              ["implementation", "fwd us/op", "bwd us/op", "total us/op", "total ms"], rows)
    # Both libraries allocate one GC-tracked object (or more) per op, and micrograd's
    # closures make reference cycles: the cyclic collector's share differs a lot between
    # them, so the comparison is also made with the collector off (as timeit does).
    other = {}
    if not args.no_gc:
        names = ["python floats (hand)", "tapegrad", "tapegrad compiled"] + (
            ["micrograd"] if "micrograd" in res else [])
        other = C.interleave({n: timed[n] for n in names}, repeats, warmup, gc_off=True)
        rep.table(f"the same with the garbage collector off in the timed region "
                  f"(median of {repeats})",
                  ["implementation", "fwd us/op", "bwd us/op", "total us/op", "total ms"],
                  [[n, r["fwd"] * us if "fwd" in r else None,
                    r["bwd"] * us if "bwd" in r else None, r["total"] * us, r["total"] * 1e3]
                   for n, r in other.items()])
    print()
    gc_label = "gc off" if args.no_gc else "gc on"
    for label, table in ((gc_label, res), ("gc off", other)):
        if not table:
            continue
        for name, target in (("tapegrad", TARGET), ("tapegrad compiled", COMPILED_TARGET)):
            if "micrograd" in table:
                rep.check(f"ratio {name}/micrograd (fwd+bwd per op, {label})",
                          C.ratio(table[name]["total"], table["micrograd"]["total"]), target)
            else:
                rep.check(f"ratio {name}/micrograd (fwd+bwd per op, {label}; micrograd not "
                          "installed)", None, target)
    tgr = res["tapegrad"]["total"]
    floor = res["python floats (hand)"]["total"]
    rep.info(f"ratio tapegrad/python floats (hand) = {tgr / floor:.1f}")
    rep.info(f"ratio tapegrad compiled/python floats (hand) = "
             f"{res['tapegrad compiled']['total'] / floor:.1f}; compiled/tapegrad = "
             f"{res['tapegrad compiled']['total'] / tgr:.2f}")
    return rep.finish()


if __name__ == "__main__":
    sys.exit(main())
