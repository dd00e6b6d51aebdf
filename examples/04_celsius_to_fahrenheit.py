"""Linear regression: learn F = 1.8 C + 32 from seven (Celsius, Fahrenheit) pairs.

The inputs are standardized (zero mean, unit variance) so that plain gradient descent
converges fast; the learned weight and bias are mapped back to degrees at the end.
"""

import numpy as np

import tapegrad as tg

celsius = np.array([-40.0, -10.0, 0.0, 8.0, 15.0, 22.0, 38.0])
fahrenheit = celsius * 1.8 + 32.0

mean, std = celsius.mean(), celsius.std()
x = ((celsius - mean) / std)[:, None]     # (7, 1), standardized
y = fahrenheit[:, None]

model = tg.nn.Linear(1, 1, init="zeros")
opt = tg.optim.SGD(model.parameters(), lr=0.1)
for step in range(201):
    opt.zero_grad()
    loss = tg.nn.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    if step % 25 == 0:
        print(f"step {step:3d}  loss {loss.item():12.6f}")

w_s, b_s = model.weight.data.item(), model.bias.data.item()
w = w_s / std                              # undo the standardization
b = b_s - w_s * mean / std
print(f"learned: F = {w:.4f} * C + {b:.4f}   (true: F = 1.8 * C + 32)")
print(f"100 C -> {model(np.array([[(100.0 - mean) / std]])).item():.2f} F")
