"""One 2-layer MLP (tanh hidden layer, softmax cross-entropy) differentiated three ways:

1. by hand: backpropagation written out in NumPy,
2. with tapegrad tensors and ``loss.backward()``,
3. with tapegrad's functional ``tg.grad(loss_fn, argnums=(0, 1, 2, 3))``.

The three sets of gradients agree to rounding error.
"""

import numpy as np

import tapegrad as tg

rng = np.random.default_rng(0)
N, D, H, C = 16, 5, 8, 3
X = rng.standard_normal((N, D))
labels = rng.integers(0, C, N)
W1 = rng.standard_normal((D, H)) * 0.5
b1 = rng.standard_normal(H) * 0.1
W2 = rng.standard_normal((H, C)) * 0.5
b2 = rng.standard_normal(C) * 0.1
names = ("W1", "b1", "W2", "b2")

# --- 1. by hand ------------------------------------------------------------------
h = np.tanh(X @ W1 + b1)
logits = h @ W2 + b2
shifted = logits - logits.max(axis=1, keepdims=True)
probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
loss_np = -np.log(probs[np.arange(N), labels]).mean()
onehot = np.eye(C)[labels]
d_logits = (probs - onehot) / N            # d loss / d logits
dW2 = h.T @ d_logits
db2 = d_logits.sum(axis=0)
d_h = d_logits @ W2.T
d_pre = d_h * (1 - h ** 2)                 # tanh' = 1 - tanh^2
dW1 = X.T @ d_pre
db1 = d_pre.sum(axis=0)
manual = (dW1, db1, dW2, db2)

# --- 2. tensors --------------------------------------------------------------------
params = [tg.tensor(p, requires_grad=True) for p in (W1, b1, W2, b2)]
tW1, tb1, tW2, tb2 = params
loss_t = tg.nn.cross_entropy((X @ tW1 + tb1).tanh() @ tW2 + tb2, labels)
loss_t.backward()
tensors = tuple(p.grad for p in params)


# --- 3. functional -------------------------------------------------------------------
def loss_fn(W1, b1, W2, b2):
    return tg.nn.cross_entropy((X @ W1 + b1).tanh() @ W2 + b2, labels)


functional = tg.grad(loss_fn, argnums=(0, 1, 2, 3))(W1, b1, W2, b2)

print(f"loss: by hand {loss_np:.10f}, tensors {loss_t.item():.10f}")
print(f"{'param':6s} {'shape':8s} {'|manual - tensors|':>20s} {'|manual - functional|':>22s}")
worst = 0.0
for name, m, t, f in zip(names, manual, tensors, functional, strict=True):
    e1, e2 = np.abs(m - t).max(), np.abs(m - np.asarray(f)).max()
    worst = max(worst, e1, e2)
    print(f"{name:6s} {str(m.shape):8s} {e1:20.2e} {e2:22.2e}")
print(f"largest difference: {worst:.2e} -> {'equal' if worst < 1e-12 else 'DIFFERENT'}")
print(f"dW2[0] by hand:     {np.round(dW2[0], 6)}")
print(f"dW2[0] tensors:     {np.round(tensors[2][0], 6)}")
print(f"dW2[0] functional:  {np.round(functional[2][0], 6)}")
