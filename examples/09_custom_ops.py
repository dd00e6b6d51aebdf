"""Custom ops, two ways, used together in one model.

1. In Python, through a pluggy plugin: ``swish_beta(x, beta) = x * sigmoid(beta x)``
   with its own vjp (a third-party package would expose the same object through the
   ``tapegrad`` entry-point group instead of calling ``tg.register_plugin``).
2. In YAML, loaded with ``tg.load_spec``: ``bent_identity(x) = (sqrt(x^2 + 1) - 1)/2 + x``,
   whose derivative rule is a formula over registered ops (parsed, never eval'ed).

Both are gradient-checked, then a small regression net uses them as activations.
"""

import numpy as np
from _common import fast, out_dir

import tapegrad as tg


def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


class SwishPlugin:
    """A plugin object: one hook returning the op definitions it contributes."""

    @tg.hookimpl
    def tapegrad_ops(self):
        def forward(x, beta=1.0):
            return x * _sig(beta * x)

        def vjp(g, out, x, beta=1.0):
            s = tg.lift("sigmoid")(beta * x)
            return g * (s + beta * x * s * (1 - s))

        return [tg.OpDef("swish_beta", forward, vjp, params={"beta": 1.0}, method=True,
                         doc="x * sigmoid(beta * x)")]


SPEC = """\
ops:
  bent_identity:
    args: [x]
    forward: "(sqrt(x * x + 1) - 1) / 2 + x"
    vjp:
      x: "g * (x / (2 * sqrt(x * x + 1)) + 1)"
    method: true
"""

plugin_name = tg.register_plugin(SwishPlugin(), name="example-swish")
spec_path = out_dir() / "bent_identity.yaml"
spec_path.write_text(SPEC)
tg.load_spec(spec_path)
for name in ("swish_beta", "bent_identity"):
    info = tg.get_op(name)
    print(f"registered {info.describe()}")

rng = np.random.default_rng(0)
a = rng.uniform(-3, 3, 7)
tg.check_grads(lambda x: tg.ops.swish_beta(x, beta=1.5), a)
tg.check_grads(lambda x: tg.ops.bent_identity(x), a, order=2)
print("both pass check_grads (bent_identity to second order)")
x = tg.tensor(0.5, requires_grad=True)
x.swish_beta(beta=2.0).backward()
s = _sig(1.0)
print(f"d/dx swish_beta(x, 2) at 0.5 = {float(x.grad):.6f} "
      f"(by hand: s + 2 x s (1 - s) with s = sigmoid(1) -> {s + 1.0 * s * (1 - s):.6f})")


class Net(tg.nn.Module):
    def __init__(self):
        self.l1 = tg.nn.Linear(1, 32, init="xavier", rng=1)
        self.l2 = tg.nn.Linear(32, 32, init="xavier", rng=2)
        self.l3 = tg.nn.Linear(32, 1, init="xavier", rng=3)

    def forward(self, x):
        h = tg.ops.swish_beta(self.l1(x), beta=1.5)
        h = self.l2(h).bent_identity()
        return self.l3(h)


X = np.linspace(-3, 3, 64)[:, None]
Y = np.sin(2 * X) + 0.3 * X
net = Net()
opt = tg.optim.Adam(net.parameters(), lr=0.01)
steps = 300 if fast() else 1500
for step in range(steps + 1):
    opt.zero_grad()
    loss = tg.nn.mse_loss(net(X), Y)
    loss.backward()
    opt.step()
    if step % (steps // 5) == 0:
        print(f"step {step:5d}  loss {loss.item():.5f}")
print(f"fit of sin(2x) + 0.3x with swish_beta and bent_identity activations: "
      f"final loss {loss.item():.5f}")
tg.unregister_plugin(plugin_name)
