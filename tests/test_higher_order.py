"""Higher-order derivatives: nested transforms, create_graph, every op to second order.

Test plugins use op names starting with ``tho_`` and are always unregistered.
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.testing import check_op_all_modes

OPS = [info for info in tg.list_ops() if info.differentiable]


# ----------------------------------------------------------------------- nesting


@pytest.mark.parametrize("x", [0.0, 0.4, -1.3])
def test_third_and_fourth_derivatives_of_sin(x):
    d1 = tg.grad(tg.ops.sin)
    d2 = tg.grad(d1)
    d3 = tg.grad(d2)
    d4 = tg.grad(d3)
    assert d1(x) == pytest.approx(np.cos(x), abs=1e-15)
    assert d2(x) == pytest.approx(-np.sin(x), abs=1e-15)
    assert d3(x) == pytest.approx(-np.cos(x), abs=1e-15)
    assert d4(x) == pytest.approx(np.sin(x), abs=1e-15)


def test_derivatives_of_a_polynomial_vanish_after_its_degree():
    f = lambda x: x * x * x - 2.0 * x * x      # 6x - 4, then 6, then 0
    x = 1.7
    assert tg.grad(tg.grad(f))(x) == pytest.approx(6 * x - 4)
    assert tg.grad(tg.grad(tg.grad(f)))(x) == pytest.approx(6.0)
    assert tg.grad(tg.grad(tg.grad(tg.grad(f))))(x) == pytest.approx(0.0)


def test_jacobian_of_grad_equals_hessian():
    A = np.array([[2.0, 1.0], [0.5, 3.0]])
    f = lambda x: tg.ops.tanh(A @ x).sum()
    x = np.array([0.3, -0.2])
    np.testing.assert_allclose(tg.jacobian(tg.grad(f))(x), tg.hessian(f)(x))
    # analytic: H = A^T diag(-2 tanh(u)(1 - tanh(u)^2)) A with u = A x
    t = np.tanh(A @ x)
    expected = A.T @ np.diag(-2 * t * (1 - t * t)) @ A
    np.testing.assert_allclose(tg.hessian(f)(x), expected, atol=1e-12)


def test_mixed_partials_through_closure():
    # d/dy [ d/dx (x^2 y^3) ] = 6 x y^2
    def dfdx(y):
        return tg.grad(lambda x: x * x * y * y * y)(2.0)

    assert tg.grad(dfdx)(1.5) == pytest.approx(6 * 2.0 * 1.5 ** 2)


def test_grad_of_grad_with_argnums_tuple():
    f = lambda x, y: x * x * y
    gxy = tg.grad(lambda x, y: tg.grad(f, argnums=0)(x, y), argnums=(0, 1))
    dxx, dxy = gxy(3.0, 5.0)
    assert dxx == pytest.approx(2 * 5.0)
    assert dxy == pytest.approx(2 * 3.0)


def _mlp_loss(w, x, y, sizes):
    """Flat parameter vector -> mean squared error of a 2-layer tanh MLP."""
    (n_in, n_hidden, n_out) = sizes
    k = 0
    W1 = w[k:k + n_in * n_hidden].reshape(n_in, n_hidden)
    k += n_in * n_hidden
    b1 = w[k:k + n_hidden]
    k += n_hidden
    W2 = w[k:k + n_hidden * n_out].reshape(n_hidden, n_out)
    k += n_hidden * n_out
    b2 = w[k:k + n_out]
    h = tg.ops.tanh(x @ W1 + b1)
    pred = h @ W2 + b2
    return ((pred - y) ** 2).mean()


def test_hessian_of_mlp_loss_matches_finite_differences_of_gradient():
    rng = np.random.default_rng(3)
    sizes = (3, 4, 2)
    n = 3 * 4 + 4 + 4 * 2 + 2
    w = rng.standard_normal(n) * 0.7
    x = rng.standard_normal((5, 3))
    y = rng.standard_normal((5, 2))
    loss = lambda w: _mlp_loss(w, x, y, sizes)
    H = tg.hessian(loss)(w)
    assert H.shape == (n, n)
    gradient = tg.grad(loss)
    eps = 1e-6
    fd = np.empty((n, n))
    for i in range(n):
        e = np.zeros(n)
        e[i] = eps
        fd[:, i] = (gradient(w + e) - gradient(w - e)) / (2 * eps)
    np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_backward_create_graph_gives_differentiable_grad():
    x = tg.tensor(3.0, requires_grad=True)
    y = x * x * x
    y.backward(create_graph=True)
    g = x.grad
    assert isinstance(g, tg.Tensor)
    assert g.item() == pytest.approx(27.0)
    x.grad = None
    g.backward()
    assert x.grad == pytest.approx(18.0)


def test_check_grads_order_two_catches_a_wrong_second_derivative(register):
    # First derivative right (3 x^2), but written so that it is a constant to the tape.
    def frozen(x):
        return x.detach() if isinstance(x, tg.Tensor) else x

    register(tg.OpDef("tho_cube", lambda x: x ** 3,
                      lambda g, out, x: g * 3 * frozen(x) ** 2))
    x = np.array([0.5, -1.0, 2.0])
    tg.check_grads(tg.ops.tho_cube, x, order=1)
    with pytest.raises(tg.GradcheckError, match="order 2") as info:
        tg.check_grads(tg.ops.tho_cube, x, order=2, modes=("rev",))
    assert info.value.argument == 0


# ----------------------------------------------------------------------- raw NumPy vjps


def test_raw_numpy_vjp_says_so_when_differentiated_twice(register):
    register(tg.OpDef("tho_raw_sin", np.sin,
                      lambda g, out, x: g * np.asarray(np.cos(np.asarray(x)))))
    # once is fine
    assert tg.grad(tg.ops.tho_raw_sin)(0.5) == pytest.approx(np.cos(0.5))
    with pytest.raises(tg.DifferentiabilityError, match="tho_raw_sin"):
        tg.grad(tg.grad(tg.ops.tho_raw_sin))(0.5)
    x = tg.tensor(0.5, requires_grad=True)
    with pytest.raises(tg.DifferentiabilityError, match="differentiated twice"):
        tg.ops.tho_raw_sin(x).backward(create_graph=True)


# ----------------------------------------------------------------------- every op


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_every_op_second_order_reverse(info):
    check_op_all_modes(info, order=2, modes=("rev",), rng=np.random.default_rng(11))
