"""Two micrograd-style classifiers: XOR, and the two-moons data set.

An MLP with tanh hidden layers is trained full-batch with Adam on the logistic loss
(``binary_cross_entropy_with_logits``) plus a little L2 on the weights. Both reach 100%
training accuracy. With matplotlib installed the moons decision boundary is written as
a PNG to ``--out DIR``.
"""

import time

import numpy as np
from _common import fast, have, out_dir

import tapegrad as tg


def make_moons(n, noise, rng):
    """Two interleaving half circles (as sklearn.datasets.make_moons), labels 0 / 1."""
    n_top = n // 2
    t_top = np.linspace(0, np.pi, n_top)
    t_bot = np.linspace(0, np.pi, n - n_top)
    top = np.stack([np.cos(t_top), np.sin(t_top)], axis=1)
    bot = np.stack([1 - np.cos(t_bot), 0.5 - np.sin(t_bot)], axis=1)
    X = np.concatenate([top, bot]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n_top), np.ones(n - n_top)])
    return X, y


def train(model, X, y, steps, lr, l2=1e-4, report=100):
    opt = tg.optim.Adam(model.parameters(), lr=lr)
    weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
    for step in range(steps + 1):
        opt.zero_grad()
        logits = model(X).reshape(-1)
        loss = tg.nn.binary_cross_entropy_with_logits(logits, y)
        reg = sum((w * w).sum() for w in weights) * l2
        total = loss + reg
        total.backward()
        opt.step()
        acc = np.mean((logits.data > 0) == (y > 0.5))
        if step % report == 0 or acc == 1.0 and step == steps:
            print(f"  step {step:4d}  loss {loss.item():.4f}  accuracy {acc:6.1%}")
    logits = model(X).reshape(-1)
    return np.mean((logits.data > 0) == (y > 0.5))


rng = np.random.default_rng(0)
tg.nn.manual_seed(0)

# --- XOR ------------------------------------------------------------------------
X_xor = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
y_xor = np.array([0.0, 1.0, 1.0, 0.0])
print("XOR with MLP(2, [8, 1], tanh):")
xor = tg.nn.MLP(2, [8, 1], activation="tanh")
acc = train(xor, X_xor, y_xor, steps=300, lr=0.05)
probs = tg.ops.sigmoid(xor(X_xor)).data.reshape(-1)
for xi, pi in zip(X_xor, probs, strict=True):
    print(f"  {xi.astype(int)} -> p(1) = {pi:.3f}")
print(f"XOR training accuracy: {acc:.1%}")

# --- two moons -------------------------------------------------------------------
X, y = make_moons(100, noise=0.1, rng=rng)
print("\nTwo moons (100 points, noise 0.1) with MLP(2, [16, 16, 1], tanh):")
moons = tg.nn.MLP(2, [16, 16, 1], activation="tanh")
start = time.perf_counter()
acc = train(moons, X, y, steps=300 if fast() else 600, lr=0.02)
print(f"moons training accuracy: {acc:.1%} ({time.perf_counter() - start:.2f} s)")

if have("matplotlib"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xx, yy = np.meshgrid(np.linspace(-1.6, 2.6, 200), np.linspace(-1.1, 1.6, 200))
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1)
    with tg.no_grad():
        zz = moons(grid).data.reshape(xx.shape)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.contourf(xx, yy, zz > 0, cmap="coolwarm", alpha=0.35)
    ax.contour(xx, yy, zz, levels=[0.0], colors="k", linewidths=1)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="coolwarm", edgecolors="k", s=25)
    ax.set_title(f"two moons: MLP decision boundary ({acc:.0%} training accuracy)")
    path = out_dir() / "moons_decision_boundary.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"decision boundary written to {path}")
else:
    print("matplotlib is not installed: no decision-boundary plot "
          "(pip install 'tapegrad[examples]')")
