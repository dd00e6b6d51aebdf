"""``tg.compile``: the tape as a program, replayed as plain NumPy.

1. micrograd's tanh neuron: the compiled gradient, printed as the Python it runs.
2. A 2-layer MLP training step (``tg.value_and_grad`` of a cross-entropy loss): its
   forward and backward as straight-line NumPy, as a backprop tutorial writes them.
3. The digits MLP (64 -> 128 -> 10, ReLU) trained with Adam, once with the eager step and
   once with the compiled one, from the same start: the time per step of each, and the
   same final weights. The optimizer runs outside the compiled function, on the
   gradients it returns. Without scikit-learn, a synthetic 10-class problem of the same
   shape stands in for the digits.

``--fast`` trains for fewer epochs.
"""

import time

import numpy as np
from _common import fast

import tapegrad as tg

# ------------------------------------------------------------------ 1. the tanh neuron


def neuron(x, w, b):
    """micrograd's neuron: tanh(x1 w1 + x2 w2 + b)."""
    return tg.ops.tanh((x * w).sum() + b)


grad_neuron = tg.compile(tg.value_and_grad(neuron, argnums=(1, 2)))
value, (dw, db) = grad_neuron(np.array([2.0, 0.0]), np.array([-3.0, 1.0]), 6.8813735870195432)
print(f"neuron: o = {float(value):.4f}, do/dw = {dw}, do/db = {float(db):.4f}")
print("the compiled gradient of the neuron:")
print(grad_neuron.source)

# ------------------------------------------------------------------ 2. a 2-layer MLP step


def mlp_loss(params, X, y):
    """Softmax cross-entropy of a 2-layer ReLU network."""
    h = tg.ops.relu(X @ params["W1"] + params["b1"])
    return tg.nn.cross_entropy(h @ params["W2"] + params["b2"], y)


def init(n_in, n_hidden, n_out, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {"W1": (rng.standard_normal((n_in, n_hidden)) * np.sqrt(2 / n_in)).astype(dtype),
            "b1": np.zeros(n_hidden, dtype),
            "W2": (rng.standard_normal((n_hidden, n_out)) * np.sqrt(2 / n_hidden)).astype(dtype),
            "b2": np.zeros(n_out, dtype)}


step = tg.compile(tg.value_and_grad(mlp_loss))
rng = np.random.default_rng(1)
step(init(4, 8, 3), rng.standard_normal((5, 4)).astype(np.float32), rng.integers(0, 3, 5))
print("one training step of a 2-layer MLP, forward and backward:")
print(step.source)

# ------------------------------------------------------------------ 3. training


def digits():
    """(X_train, y_train, X_test, y_test, name): the 8x8 digits, or a synthetic stand-in."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        rng = np.random.default_rng(0)
        centers = rng.standard_normal((10, 64))
        y = rng.integers(0, 10, 1797)
        X = centers[y] + 1.5 * rng.standard_normal((1797, 64))
        name = "a synthetic 10-class problem (scikit-learn is not installed)"
    else:
        d = load_digits()
        X, y = d.data / 16.0, d.target
        name = "the 8x8 digits"
    X = ((X - X.mean(0)) / (X.std(0) + 1e-6)).astype(np.float32)
    y = y.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[:360], order[360:]
    return X[train], y[train], X[test], y[test], name


def accuracy(params, X, y):
    h = np.maximum(X @ params["W1"] + params["b1"], 0)
    return float(((h @ params["W2"] + params["b2"]).argmax(1) == y).mean())


def train(value_and_grad, X, y, epochs, batch=64):
    """Adam (tg.optim) on the gradients ``value_and_grad`` returns; seconds per step."""
    params = {k: tg.tensor(v, requires_grad=True) for k, v in init(64, 128, 10).items()}
    opt = tg.optim.Adam(list(params.values()), lr=0.01)
    order = np.random.default_rng(2)
    times = []
    for _ in range(epochs):
        perm = order.permutation(len(y) - len(y) % batch)  # full batches: one signature
        for i in range(0, len(perm), batch):
            idx = perm[i:i + batch]
            t0 = time.perf_counter()
            loss, grads = value_and_grad({k: p.data for k, p in params.items()}, X[idx], y[idx])
            times.append(time.perf_counter() - t0)
            for k, p in params.items():
                p.grad = grads[k]
            opt.step()
    return {k: p.data for k, p in params.items()}, float(loss), float(np.median(times))


X, y, Xte, yte, name = digits()
epochs = 2 if fast() else 10
print(f"training the MLP 64 -> 128 -> 10 on {name}, {epochs} epochs, batches of 64:")
eager = tg.value_and_grad(mlp_loss)
compiled = tg.compile(eager)
w_eager, loss_e, t_eager = train(eager, X, y, epochs)
w_comp, loss_c, t_comp = train(compiled, X, y, epochs)
print(f"  eager    step {t_eager * 1e6:7.1f} us   final loss {loss_e:.4f}   held-out "
      f"accuracy {accuracy(w_eager, Xte, yte):.1%}")
print(f"  compiled step {t_comp * 1e6:7.1f} us   final loss {loss_c:.4f}   held-out "
      f"accuracy {accuracy(w_comp, Xte, yte):.1%}")
print(f"  compiled / eager time per step: {t_comp / t_eager:.2f}")
diff = max(float(np.max(np.abs(w_eager[k] - w_comp[k]))) for k in w_eager)
print(f"  largest difference between the final weights: {diff:.2g}")
info = compiled.cache_info()
print(f"  cache: {info.misses} trace, {info.hits} replays of the plan "
      f"({compiled.plans[0].n_steps} steps)")
