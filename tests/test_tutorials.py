"""Worked examples of classic backprop tutorials, with their exact numbers."""

import numpy as np

import tapegrad as tg


def test_cs231n_sum_times_product():
    x, y, z = (tg.tensor(v, requires_grad=True) for v in (-2.0, 5.0, -4.0))
    f = (x + y) * z
    f.backward()
    assert f.item() == -12.0
    assert (x.grad, y.grad, z.grad) == (-4.0, -4.0, 3.0)


def test_micrograd_tanh_neuron():
    x1, x2 = tg.tensor(2.0, requires_grad=True), tg.tensor(0.0, requires_grad=True)
    w1, w2 = tg.tensor(-3.0, requires_grad=True), tg.tensor(1.0, requires_grad=True)
    b = tg.tensor(6.8813735870195432, requires_grad=True)
    o = (x1 * w1 + x2 * w2 + b).tanh()
    o.backward()
    assert np.isclose(o.item(), 0.7071, atol=1e-4)
    assert np.isclose(x1.grad, -1.5)
    assert np.isclose(w1.grad, 1.0)
    assert np.isclose(x2.grad, 0.5)
    assert np.isclose(w2.grad, 0.0)


def test_chain_rule_square():
    x = tg.tensor(2.0, requires_grad=True)
    z = 3 * x ** 2
    z.backward()
    assert x.grad == 12.0


def test_affine_layer_bias_gradient_sums_over_batch():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    W = tg.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    b = tg.tensor(np.zeros(2), requires_grad=True)
    G = rng.standard_normal((5, 2))
    out = X @ W + b
    out.backward(G)
    np.testing.assert_allclose(b.grad, G.sum(axis=0))
    np.testing.assert_allclose(W.grad, X.T @ G)
    assert b.grad.shape == (2,)


def test_fan_out_adds_up():
    x = tg.tensor(3.0, requires_grad=True)
    y = x * x + x  # x used three times
    y.backward()
    assert x.grad == 7.0


def test_gradients_accumulate_across_backward_calls():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [5.0, 5.0])
