"""Vanishing and exploding gradients, and gradient clipping.

1. Ten sigmoid layers vs ten ReLU layers (same widths, Xavier vs He init): the
   gradient reaching the first layer's weights is orders of magnitude smaller through
   the sigmoids (each sigmoid' <= 1/4), while ReLU keeps it of the same order.
2. A ten-layer ReLU net initialised too large: gradients explode and plain SGD blows
   up. ``tg.nn.clip_grad_norm(params, max_norm)`` returns the total norm and rescales
   the gradients to at most ``max_norm``; with it the same training run is stable.
"""

import numpy as np
from _common import fast

import tapegrad as tg

rng = np.random.default_rng(0)
X = rng.standard_normal((64, 16))
y = np.sin(X[:, :1])                       # some smooth regression target
depth, width = 10, 32


def layer_grad_norms(model):
    model.zero_grad()
    tg.nn.mse_loss(model(X), y).backward()
    return [float(np.linalg.norm(l.weight.grad))
            for l in model.layers if isinstance(l, tg.nn.Linear)]


# --- 1. vanishing -------------------------------------------------------------------
sizes = [width] * (depth - 1) + [1]
sig = tg.nn.MLP(16, sizes, activation="sigmoid", init="xavier", rng=1)
relu = tg.nn.MLP(16, sizes, activation="relu", init="he", rng=1)
g_sig, g_relu = layer_grad_norms(sig), layer_grad_norms(relu)
print(f"|dL/dW| per layer, {depth} layers of width {width}:")
print(f"{'layer':>5s} {'sigmoid':>12s} {'relu':>12s}")
for i, (a, b) in enumerate(zip(g_sig, g_relu, strict=True), 1):
    print(f"{i:5d} {a:12.3e} {b:12.3e}")
print(f"first/last layer gradient ratio: sigmoid {g_sig[0] / g_sig[-1]:.2e}, "
      f"relu {g_relu[0] / g_relu[-1]:.2e}")


# --- 2. exploding ------------------------------------------------------------------------
def big_init(rng, shape):
    return rng.normal(0.0, 3.0 * np.sqrt(2.0 / shape[0]), shape)   # 3x the He scale


def run(clip, steps):
    model = tg.nn.MLP(16, sizes, activation="relu", init=big_init, rng=2)
    opt = tg.optim.SGD(model.parameters(), lr=0.01)
    losses, norms = [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(steps):
            opt.zero_grad()
            loss = tg.nn.mse_loss(model(X), y)
            loss.backward()
            if clip is not None:
                norms.append(tg.nn.clip_grad_norm(model.parameters(), clip))
            else:
                norms.append(float(np.sqrt(sum(np.sum(p.grad ** 2)
                                               for p in model.parameters()))))
            opt.step()
            losses.append(loss.item())
    return losses, norms


steps = 10 if fast() else 30
plain, plain_norms = run(None, steps)
clipped, clipped_norms = run(1.0, steps)
print(f"\nReLU net initialised at 3x the He scale, SGD lr 0.01, {steps} steps:")
print(f"  initial gradient norm: {plain_norms[0]:.3e}")
print(f"  without clipping: loss {plain[0]:.3e} -> {plain[-1]:.3e}")
print(f"  with clip_grad_norm(params, 1.0): loss {clipped[0]:.3e} -> {clipped[-1]:.3e}")

model = tg.nn.MLP(16, sizes, activation="relu", init=big_init, rng=2)
tg.nn.mse_loss(model(X), y).backward()
before = tg.nn.clip_grad_norm(model.parameters(), 1.0)
after = float(np.sqrt(sum(np.sum(p.grad ** 2) for p in model.parameters())))
print(f"clip_grad_norm returned the norm before clipping {before:.3e}; "
      f"norm after clipping {after:.4f}")
