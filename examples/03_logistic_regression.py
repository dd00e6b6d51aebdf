"""Logistic regression on one sample, by hand and by tape.

x = [2, -1], w = [0.3, -0.7], b = 0.1, y = 1:
z = w.x + b = 1.4, p = sigmoid(z) = 0.8022, L = -log p = 0.2204,
dL/dz = p - y = -0.1978, dL/dw = (p - y) x = [-0.3956, 0.1978], dL/db = -0.1978.
"""

import numpy as np

import tapegrad as tg

x = np.array([2.0, -1.0])
y = 1.0

# By hand.
z = 0.3 * 2.0 + (-0.7) * (-1.0) + 0.1
p = 1 / (1 + np.exp(-z))
print(f"by hand: z = {z:.4f}, p = sigmoid(z) = {p:.4f}, L = -log p = {-np.log(p):.4f}")
print(f"  dL/dz = p - y = {p - y:.4f}, dL/dw = {np.round((p - y) * x, 4)}, "
      f"dL/db = {p - y:.4f}")

# By tape, composing the loss from sigmoid and log.
w = tg.tensor([0.3, -0.7], requires_grad=True)
b = tg.tensor(0.1, requires_grad=True)
p_t = (w @ x + b).sigmoid()
loss = -(y * p_t.log() + (1 - y) * (1 - p_t).log())
loss.backward()
print(f"by tape (sigmoid + log): L = {loss.item():.4f}, dL/dw = {np.round(w.grad, 4)}, "
      f"dL/db = {float(b.grad):.4f}")

# By tape, with the fused and numerically stable loss from tg.nn.
w2 = tg.tensor([0.3, -0.7], requires_grad=True)
b2 = tg.tensor(0.1, requires_grad=True)
loss2 = tg.nn.binary_cross_entropy_with_logits(w2 @ x + b2, y)
loss2.backward()
print(f"by tape (binary_cross_entropy_with_logits): L = {loss2.item():.4f}, "
      f"dL/dw = {np.round(w2.grad, 4)}, dL/db = {float(b2.grad):.4f}")
assert np.allclose(w.grad, w2.grad) and np.allclose(w.grad, [-0.3956, 0.1978], atol=1e-4)
