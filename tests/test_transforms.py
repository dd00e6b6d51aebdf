"""Tapes and function transforms: grad, value_and_grad, vjp, jacobian, hessian.

Every assertion compares with an analytic value.
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(7)


# ----------------------------------------------------------------------- Tape


def test_tape_gradient_of_watched_tensor():
    x = tg.tensor([1.0, 2.0, 3.0])
    with tg.Tape() as tape:
        tape.watch(x)
        y = (x * x * x).sum()
    g = tape.gradient(y, x)
    assert isinstance(g, np.ndarray)
    np.testing.assert_allclose(g, 3 * np.array([1.0, 4.0, 9.0]))


def test_tape_gradient_list_gives_zeros_for_unused_source():
    a = tg.tensor(2.0, requires_grad=True)
    b = tg.tensor([1.0, 1.0], requires_grad=True)
    with tg.Tape() as tape:
        y = a * a
    ga, gb = tape.gradient(y, [a, b])
    assert ga == pytest.approx(4.0)
    np.testing.assert_array_equal(gb, np.zeros(2))


def test_non_persistent_tape_used_twice_raises():
    x = tg.tensor(3.0, requires_grad=True)
    with tg.Tape() as tape:
        y = x * x
    assert tape.gradient(y, x) == pytest.approx(6.0)
    with pytest.raises(RuntimeError, match="persistent"):
        tape.gradient(y, x)


def test_persistent_tape_answers_several_gradients():
    x = tg.tensor(3.0, requires_grad=True)
    with tg.Tape(persistent=True) as tape:
        y = x * x
        z = y * x
    assert tape.gradient(y, x) == pytest.approx(6.0)
    assert tape.gradient(z, x) == pytest.approx(27.0)
    assert tape.gradient(z, y) == pytest.approx(3.0)


def test_nested_tapes_give_second_derivative():
    x = tg.tensor(0.7, requires_grad=True)
    with tg.Tape() as outer:
        with tg.Tape() as inner:
            y = tg.ops.sin(x) * x
        dy = inner.gradient(y, x)          # recorded: the outer tape is open
        assert isinstance(dy, tg.Tensor)
    d2y = outer.gradient(dy, x)
    # y = x sin x: y' = sin x + x cos x, y'' = 2 cos x - x sin x
    assert dy.item() == pytest.approx(np.sin(0.7) + 0.7 * np.cos(0.7))
    assert d2y == pytest.approx(2 * np.cos(0.7) - 0.7 * np.sin(0.7))


# ----------------------------------------------------------------------- grad


def test_grad_of_sin_is_cos_and_returns_ndarray():
    g = tg.grad(tg.ops.sin)(0.3)
    assert isinstance(g, np.ndarray)
    assert g == pytest.approx(np.cos(0.3))


def test_grad_accepts_ints_lists_and_tensors():
    f = lambda x: (x * x).sum()
    assert tg.grad(f)(3) == pytest.approx(6.0)
    np.testing.assert_allclose(tg.grad(f)([1.0, 2.0]), [2.0, 4.0])
    out = tg.grad(f)(tg.tensor([1.0, -1.0]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [2.0, -2.0])


def test_grad_does_not_touch_the_callers_array():
    x = np.array([1.0, 2.0])
    tg.grad(lambda t: (t * t).sum())(x)
    assert x.flags.writeable
    x[0] = 5.0  # still the caller's, still writable


def test_grad_argnums_tuple_and_int():
    f = lambda x, y: (x * y * y).sum()
    x = np.array([1.0, 2.0])
    y = np.array([3.0, -1.0])
    np.testing.assert_allclose(tg.grad(f, argnums=1)(x, y), 2 * x * y)
    gx, gy = tg.grad(f, argnums=(0, 1))(x, y)
    np.testing.assert_allclose(gx, y * y)
    np.testing.assert_allclose(gy, 2 * x * y)


def test_grad_zero_for_argument_not_used():
    g = tg.grad(lambda x, y: x * 2.0, argnums=1)(1.0, np.ones(3))
    np.testing.assert_array_equal(g, np.zeros(3))


def test_grad_of_constant_function_is_zero():
    np.testing.assert_array_equal(tg.grad(lambda x: 4.0)(np.ones(2)), np.zeros(2))


def test_grad_passes_keyword_arguments_through():
    f = lambda x, scale=1.0: (x * scale).sum()
    np.testing.assert_allclose(tg.grad(f)(np.ones(2), scale=3.0), [3.0, 3.0])


def test_grad_needs_scalar_output():
    with pytest.raises(ValueError, match="scalar"):
        tg.grad(lambda x: x * 2)(np.ones(3))


def test_grad_same_tensor_twice_separates_arguments():
    x = np.array(2.0)
    ga, gb = tg.grad(lambda a, b: a * b * b, argnums=(0, 1))(x, x)
    assert ga == pytest.approx(4.0)
    assert gb == pytest.approx(8.0)


def test_value_and_grad():
    v, g = tg.value_and_grad(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    assert isinstance(v, np.ndarray)
    assert v == pytest.approx(9.0)
    np.testing.assert_allclose(g, [3.0, 12.0])


def test_grad_inside_user_tape_returns_recorded_tensor():
    x = tg.tensor(1.5, requires_grad=True)
    with tg.Tape() as tape:
        g = tg.grad(lambda t: t * t * t)(x)    # 3 x^2, recorded
        assert isinstance(g, tg.Tensor)
    assert g.item() == pytest.approx(3 * 1.5 ** 2)
    assert tape.gradient(g, x) == pytest.approx(6 * 1.5)


def test_grad_with_tracked_input_and_backward():
    x = tg.tensor(2.0, requires_grad=True)
    g = tg.grad(lambda t: t * t * t)(x)
    assert isinstance(g, tg.Tensor)
    g.backward()
    assert x.grad == pytest.approx(12.0)


def test_grad_under_no_grad_still_differentiates():
    with tg.no_grad():
        g = tg.grad(lambda t: t * t)(3.0)
    assert isinstance(g, np.ndarray)
    assert g == pytest.approx(6.0)


# ----------------------------------------------------------------------- vjp


def test_vjp_returns_value_and_reusable_function():
    A = RNG.standard_normal((3, 4))
    x = RNG.standard_normal(4)
    out, vjp_fn = tg.vjp(lambda t: A @ t, x)
    np.testing.assert_allclose(out, A @ x)
    for g in (np.array([1.0, 0.0, 0.0]), np.array([0.5, -2.0, 1.0])):
        (gx,) = vjp_fn(g)
        np.testing.assert_allclose(gx, A.T @ g)


def test_vjp_two_primals():
    out, vjp_fn = tg.vjp(lambda a, b: a * b, np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    ga, gb = vjp_fn(np.array([1.0, 10.0]))
    np.testing.assert_allclose(ga, [3.0, 40.0])
    np.testing.assert_allclose(gb, [1.0, 20.0])


def test_vjp_checks_cotangent_shape():
    _, vjp_fn = tg.vjp(lambda a: a * 2, np.ones(3))
    with pytest.raises(ValueError, match="shape"):
        vjp_fn(np.ones(4))


# ----------------------------------------------------------------------- jacobian


def test_jacobian_of_elementwise_op_is_diagonal():
    x = np.array([0.1, 0.5, -1.2, 2.0])
    J = tg.jacobian(tg.ops.tanh)(x)
    np.testing.assert_allclose(J, np.diag(1 - np.tanh(x) ** 2), atol=1e-15)


def test_jacobian_of_linear_map_is_the_matrix():
    A = RNG.standard_normal((3, 4))
    J = tg.jacobian(lambda t: A @ t)(RNG.standard_normal(4))
    np.testing.assert_allclose(J, A)


def test_jacobian_shape_is_out_shape_plus_arg_shape():
    x = RNG.standard_normal((2, 3))
    J = tg.jacobian(lambda t: t.sum(axis=1))(x)
    assert J.shape == (2, 2, 3)
    expected = np.zeros((2, 2, 3))
    expected[0, 0, :] = 1
    expected[1, 1, :] = 1
    np.testing.assert_array_equal(J, expected)


def test_jacobian_argnums_tuple():
    a = np.array([1.0, 2.0])
    b = np.array([3.0, 5.0])
    Ja, Jb = tg.jacobian(lambda x, y: x * y, argnums=(0, 1))(a, b)
    np.testing.assert_allclose(Ja, np.diag(b))
    np.testing.assert_allclose(Jb, np.diag(a))


# ----------------------------------------------------------------------- hessian


def test_hessian_of_quadratic_form_is_a_plus_a_transpose():
    A = RNG.standard_normal((4, 4))
    H = tg.hessian(lambda x: x @ (A @ x))(RNG.standard_normal(4))
    np.testing.assert_allclose(H, A + A.T, atol=1e-12)


def test_hessian_argnums_tuple_blocks():
    # f = sum(x^2 y): d2/dx2 = diag(2y), d2/dxdy = diag(2x), d2/dy2 = 0
    x = np.array([1.0, -2.0])
    y = np.array([0.5, 3.0])
    (hxx, hxy), (hyx, hyy) = tg.hessian(lambda a, b: (a * a * b).sum(), (0, 1))(x, y)
    np.testing.assert_allclose(hxx, np.diag(2 * y))
    np.testing.assert_allclose(hxy, np.diag(2 * x))
    np.testing.assert_allclose(hyx, np.diag(2 * x))
    np.testing.assert_allclose(hyy, np.zeros((2, 2)))


def test_transforms_in_threads_do_not_see_each_other():
    import threading

    results = {}

    def work(k):
        x = np.full(3, float(k))
        for _ in range(20):
            g = tg.grad(lambda t: (t ** 3).sum())(x)
            h = tg.hessian(lambda t: (t ** 3).sum())(x)
        results[k] = (g, h)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, (g, h) in results.items():
        np.testing.assert_allclose(g, np.full(3, 3.0 * k * k))
        np.testing.assert_allclose(h, np.diag(np.full(3, 6.0 * k)))
