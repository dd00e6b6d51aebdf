"""tapegrad in one minute: a gradient, then a tiny training loop."""

import numpy as np

import tapegrad as tg

# 1. A gradient: f(x, y, z) = (x + y) * z at (-2, 5, -4).
x = tg.tensor(-2.0, requires_grad=True, name="x")
y = tg.tensor(5.0, requires_grad=True, name="y")
z = tg.tensor(-4.0, requires_grad=True, name="z")
f = (x + y) * z
f.backward()
print(f"f = {f.item()}, df/dx = {x.grad}, df/dy = {y.grad}, df/dz = {z.grad}")

# 2. A tiny training loop: fit y = 3x - 1 with one weight and one bias.
rng = np.random.default_rng(0)
xs = rng.uniform(-1, 1, (64, 1))
ys = 3 * xs - 1
w = tg.tensor(np.zeros((1, 1)), requires_grad=True)
b = tg.tensor(np.zeros(1), requires_grad=True)
for step in range(201):
    loss = ((xs @ w + b - ys) ** 2).mean()
    w.grad = b.grad = None
    loss.backward()
    w.data -= 0.5 * w.grad
    b.data -= 0.5 * b.grad
    if step % 50 == 0:
        print(f"step {step:3d}  loss {loss.item():.6f}")
print(f"learned w = {w.data.item():.4f}, b = {b.data.item():.4f} (true 3, -1)")
