"""tapegrad-conv: values against naive loops, gradients against finite differences,
registration and provenance, and a small CNN trained for a few steps."""

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from tapegrad_conv import conv2d
from tapegrad_conv.ops import distinct

import tapegrad as tg
from tapegrad.gradcheck import check_grads, check_op

PY_OPS = ["conv2d", "conv_transpose2d", "conv2d_weight_grad", "max_pool2d",
          "max_pool2d_scatter", "max_pool2d_gather", "avg_pool2d", "avg_pool2d_backward"]
YAML_OPS = ["relu6", "hard_tanh", "softsign"]


# ------------------------------------------------------------------ naive references


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def naive_conv2d(x, w, b, stride=1, padding=0):
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, ho, wo))
    for i in range(n):
        for k in range(o):
            for r in range(ho):
                for s in range(wo):
                    patch = xp[i, :, r * sh:r * sh + kh, s * sw:s * sw + kw]
                    out[i, k, r, s] = (patch * w[k]).sum() + (b[k] if b is not None else 0)
    return out


def naive_pool(x, k, s, reduce):
    (kh, kw), (sh, sw) = pair(k), pair(s)
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, ho, wo))
    for r in range(ho):
        for q in range(wo):
            out[:, :, r, q] = reduce(x[:, :, r * sh:r * sh + kh, q * sw:q * sw + kw],
                                     axis=(2, 3))
    return out


CONV_CASES = [
    ((2, 3, 5, 5), (4, 3, 3, 3), 1, 0),
    ((1, 2, 7, 6), (3, 2, 3, 2), 2, 1),
    ((2, 1, 6, 6), (2, 1, 2, 3), (1, 2), (2, 0)),
    ((1, 4, 4, 4), (5, 4, 1, 1), 1, 0),
]


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
def test_conv2d_matches_naive_loops(xs, ws, stride, padding):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out = tg.ops.conv2d(x, w, b, stride=stride, padding=padding)
    np.testing.assert_allclose(out.data, naive_conv2d(x, w, b, stride, padding),
                               rtol=1e-12, atol=1e-12)
    no_bias = conv2d(x, w, stride=stride, padding=padding)
    np.testing.assert_allclose(no_bias.data, naive_conv2d(x, w, None, stride, padding),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_known_values():
    # 1 channel, 3x3 input 0..8, 2x2 kernel of ones: each output is a window sum.
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    out = tg.ops.conv2d(x, w, 0.5)
    np.testing.assert_array_equal(out.data, [[[[8.5, 12.5], [20.5, 24.5]]]])


def test_conv2d_keeps_float32_and_checks_channels():
    x = np.ones((1, 2, 4, 4), np.float32)
    w = np.ones((3, 2, 3, 3), np.float32)
    assert tg.ops.conv2d(x, w, np.zeros(3, np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="3 channels"):
        tg.ops.conv2d(np.ones((1, 3, 4, 4)), w, 0.0)


@pytest.mark.parametrize("stride, padding", [(1, 0), (2, 1), ((2, 1), (0, 1))])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(stride, padding):
    # <conv2d(x, w), y> == <x, conv_transpose2d(y, w)> for every x, y.
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    y_shape = tg.ops.conv2d(x, w, 0.0, stride=stride, padding=padding).shape
    y = rng.standard_normal(y_shape)
    from tapegrad_conv.ops import _output_padding
    from tapegrad_conv.ops import pair as to_pair

    op = _output_padding(x.shape[2:], w.shape[2:], to_pair(stride), to_pair(padding))
    xt = tg.ops.conv_transpose2d(y, w, stride=stride, padding=padding, output_padding=op)
    assert xt.shape == x.shape
    lhs = (tg.ops.conv2d(x, w, 0.0, stride=stride, padding=padding).data * y).sum()
    np.testing.assert_allclose(lhs, (x * xt.data).sum(), rtol=1e-12)


@pytest.mark.parametrize("k, s", [(2, None), (3, 1), ((2, 3), (2, 1))])
def test_pooling_matches_naive_loops(k, s):
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 7))
    np.testing.assert_allclose(tg.ops.max_pool2d(x, kernel_size=k, stride=s).data,
                               naive_pool(x, k, k if s is None else s, np.max))
    np.testing.assert_allclose(tg.ops.avg_pool2d(x, kernel_size=k, stride=s).data,
                               naive_pool(x, k, k if s is None else s, np.mean))


def test_max_pool2d_gradient_goes_to_the_argmax():
    x = tg.tensor([[[[1.0, 5.0], [3.0, 2.0]]]], requires_grad=True)
    tg.ops.max_pool2d(x, kernel_size=2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[[[0.0, 1.0], [0.0, 0.0]]]])
    x.max_pool2d(kernel_size=2)  # bound as a method too


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("xs, ws, stride, padding", CONV_CASES)
def test_conv2d_gradients_input_weight_bias(xs, ws, stride, padding):
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    check_grads(lambda x, w, b: tg.ops.conv2d(x, w, b, stride=stride, padding=padding),
                x, w, b)


def test_conv2d_bias_gradient_is_sum_over_batch_and_pixels():
    rng = np.random.default_rng(4)
    x = tg.tensor(rng.standard_normal((2, 3, 5, 5)))
    w = tg.tensor(rng.standard_normal((4, 3, 3, 3)))
    b = tg.tensor(np.zeros(4), requires_grad=True)
    tg.ops.conv2d(x, w, b).sum().backward()
    np.testing.assert_array_equal(b.grad, np.full(4, 2 * 3 * 3.0))  # N * Ho * Wo


@pytest.mark.parametrize("name", PY_OPS + YAML_OPS)
def test_every_plugin_op_against_finite_differences(name):
    check_op(tg.get_op(name), rng=np.random.default_rng(5))


@pytest.mark.parametrize("name", YAML_OPS)
def test_yaml_ops_second_order(name):
    check_op(tg.get_op(name), order=2, rng=np.random.default_rng(9))


def test_conv2d_second_order():
    # Gradients of gradients: the vjps are made of registered ops.
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((1, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    check_grads(lambda x, w: tg.ops.conv2d(x, w, 0.0, stride=2, padding=1) ** 2, x, w,
                order=2)


def test_pooling_second_order():
    x = distinct(np.random.default_rng(7), (1, 2, 5, 5))
    check_grads(lambda x: tg.ops.max_pool2d(x, kernel_size=3, stride=1) ** 3, x, order=2)
    check_grads(lambda x: tg.ops.avg_pool2d(x * x, kernel_size=2, stride=1) ** 2, x,
                order=2)


# ------------------------------------------------------------------ registration


def test_ops_are_registered_with_their_provenance():
    for name in PY_OPS:
        info = tg.get_op(name)
        assert info.plugin == "conv"
        assert info.source == "conv"
        assert name in dir(tg.ops)
    assert tg.get_op("conv2d").nargs == 3
    assert tg.get_op("conv2d").params == {"stride": 1, "padding": 0}


def test_yaml_ops_come_from_the_shipped_spec_file():
    from tapegrad_conv.plugin import SPEC_FILE

    assert SPEC_FILE.name == "activations.yaml" and SPEC_FILE.is_file()
    for name in YAML_OPS:
        info = tg.get_op(name)
        assert info.plugin == "conv"
        assert Path(info.source).resolve() == SPEC_FILE
    assert tg.get_op("hard_tanh").params == {"min_val": -1.0, "max_val": 1.0}


def test_yaml_op_values_and_gradients():
    x = tg.tensor([-7.0, -0.5, 0.5, 3.0, 7.0], requires_grad=True)
    y = x.relu6() + x.hard_tanh() + x.softsign() + tg.ops.hard_tanh(x, min_val=0.0,
                                                                    max_val=5.0)
    np.testing.assert_allclose(
        y.data, [0 - 1 - 7 / 8 + 0, 0 - 0.5 - 1 / 3 + 0, 0.5 + 0.5 + 1 / 3 + 0.5,
                 3 + 1 + 0.75 + 3, 6 + 1 + 7 / 8 + 5])
    y.sum().backward()
    soft = 1 / (1 + np.abs(x.data)) ** 2
    np.testing.assert_allclose(x.grad, [0, 0, 1, 1, 0] + np.array([0, 1, 1, 0, 0])
                               + soft + np.array([0, 0, 1, 1, 0]))


def test_entry_point_is_declared_when_installed():
    try:
        dist = metadata.distribution("tapegrad-conv")
    except metadata.PackageNotFoundError:
        pytest.skip("tapegrad-conv is not installed (pip install ./plugins/tapegrad-conv)")
    eps = [ep for ep in dist.entry_points if ep.group == "tapegrad"]
    assert [(ep.name, ep.value) for ep in eps] == [("conv", "tapegrad_conv.plugin")]
    from tapegrad.registry import REGISTRY

    assert REGISTRY.distributions["conv"] == ("tapegrad-conv", dist.version)


# ------------------------------------------------------------------ a small CNN


def test_small_cnn_learns_a_toy_task():
    # Bright-left vs bright-right 6x6 images; conv -> relu -> max pool -> linear.
    rng = np.random.default_rng(8)
    n = 32
    x = rng.uniform(0, 0.2, (n, 1, 6, 6))
    y = rng.integers(0, 2, n)
    x[y == 0, :, :, :3] += 1.0
    x[y == 1, :, :, 3:] += 1.0
    w1 = tg.tensor(rng.standard_normal((4, 1, 3, 3)) * 0.3, requires_grad=True)
    b1 = tg.tensor(np.zeros(4), requires_grad=True)
    w2 = tg.tensor(rng.standard_normal((4 * 3 * 3, 2)) * 0.3, requires_grad=True)
    params = [w1, b1, w2]

    def loss_fn():
        h = tg.ops.conv2d(x, w1, b1, padding=1).relu()            # (n, 4, 6, 6)
        h = tg.ops.max_pool2d(h, kernel_size=2).reshape(n, -1)    # (n, 36)
        logits = h @ w2
        return tg.ops.cross_entropy(logits, y)

    first = loss_fn().item()
    for _ in range(30):
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        for p in params:
            assert p.grad is not None and p.grad.shape == p.shape
            p.data -= 0.5 * p.grad
    assert loss_fn().item() < 0.5 * first


def test_cnn_from_layers_trains_with_an_optimizer():
    from tapegrad_conv.layers import AvgPool2d, Conv2d, MaxPool2d

    rng = np.random.default_rng(10)
    n = 24
    x = rng.uniform(0, 0.2, (n, 1, 8, 8))
    y = rng.integers(0, 2, n)
    x[y == 0, :, :4, :] += 1.0                      # bright top vs bright bottom
    x[y == 1, :, 4:, :] += 1.0
    model = tg.nn.Sequential(
        Conv2d(1, 4, 3, padding=1, rng=0), tg.nn.ReLU(), MaxPool2d(2),   # (n, 4, 4, 4)
        Conv2d(4, 4, 3, stride=1, padding=0, rng=1), tg.nn.ReLU(),       # (n, 4, 2, 2)
        AvgPool2d(2, stride=1), tg.nn.Flatten(), tg.nn.Linear(4, 2, rng=2))
    params = model.parameters()
    assert len(params) == 6 and params[0].shape == (4, 1, 3, 3)
    opt = tg.optim.Adam(params, lr=0.05)
    first = tg.ops.cross_entropy(model(x), y).item()
    for _ in range(40):
        opt.zero_grad()
        loss = tg.ops.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    assert model(x).shape == (n, 2)
    assert loss.item() < 0.3 * first
