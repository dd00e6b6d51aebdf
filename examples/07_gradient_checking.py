"""Gradient checking: compare the tape's gradients with central finite differences.

``tg.check_grads(f, *args, order=...)`` checks first (and, with ``order=2``, second)
derivatives. Then a custom op with a deliberately wrong vjp (it says d sin = sin
instead of cos) is registered as a plugin, and ``check_grads`` catches it.
"""

import numpy as np

import tapegrad as tg

rng = np.random.default_rng(0)


def mlp_loss(W, x):
    """A little network: softmax cross-entropy of tanh(x @ W) against fixed labels."""
    return tg.nn.cross_entropy((x @ W).tanh() * 3.0, np.array([0, 2, 1, 1]))


W = rng.standard_normal((5, 3))
x = rng.standard_normal((4, 5))
tg.check_grads(mlp_loss, W, x, order=1)
print("check_grads(mlp_loss, W, x): first derivatives match finite differences")
tg.check_grads(lambda a: (a.sigmoid() * a.exp()).sum(), rng.standard_normal(6), order=2)
print("check_grads(sum(sigmoid(a) * exp(a)), order=2): second derivatives match too")
num = tg.numerical_grad(lambda w: mlp_loss(w, x), W)
W_t = tg.tensor(W, requires_grad=True)
mlp_loss(W_t, x).backward()
print(f"largest |tape - finite differences| over dL/dW: {np.abs(W_t.grad - num).max():.2e}")


class WrongSin:
    """A plugin whose op ``wrong_sin`` has a wrong derivative rule."""

    @tg.hookimpl
    def tapegrad_ops(self):
        return [tg.OpDef("wrong_sin", np.sin,
                         vjp=lambda g, out, x: g * np.sin(x),   # wrong: should be cos(x)
                         doc="sin with a deliberately wrong vjp")]


name = tg.register_plugin(WrongSin(), name="example-wrong-sin")
try:
    a = rng.uniform(-2, 2, 5)
    tg.check_grads(lambda t: tg.ops.sin(t).sum(), a)
    print("\nthe built-in sin passes")
    try:
        tg.check_grads(lambda t: tg.ops.wrong_sin(t).sum(), a)
        print("wrong_sin passed: THE CHECK MISSED THE BUG")
    except tg.GradcheckError as err:
        print(f"wrong_sin is caught: GradcheckError: {err}")
finally:
    tg.unregister_plugin(name)
