"""The elementwise ops of HIPS autograd's numpy: forwards against NumPy, gradients against
closed forms and finite differences, zero-gradient ops, ties, NaN handling, operators."""

import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(7)

# name -> values in the op's domain
UNARY = {
    "log2": RNG.uniform(0.2, 3, 5), "log10": RNG.uniform(0.2, 3, 5),
    "exp2": RNG.uniform(-2, 2, 5), "cbrt": RNG.uniform(-2, 2, 5),
    "fabs": RNG.uniform(-2, 2, 5), "arccos": RNG.uniform(-0.9, 0.9, 5),
    "arcsinh": RNG.uniform(-2, 2, 5), "arccosh": RNG.uniform(1.1, 3, 5),
    "arctanh": RNG.uniform(-0.9, 0.9, 5), "deg2rad": RNG.uniform(-200, 200, 5),
    "radians": RNG.uniform(-200, 200, 5), "rad2deg": RNG.uniform(-2, 2, 5),
    "degrees": RNG.uniform(-2, 2, 5), "sinc": np.array([0.0, 1e-4, -0.3, 1.0, 1.7]),
    "sign": np.array([-1.5, 0.0, 2.0]), "floor": RNG.uniform(-3, 3, 5),
    "ceil": RNG.uniform(-3, 3, 5), "trunc": RNG.uniform(-3, 3, 5), "fix": RNG.uniform(-3, 3, 5),
    "rint": RNG.uniform(-3, 3, 5), "round": RNG.uniform(-3, 3, 5),
    "real": RNG.uniform(-2, 2, 5), "imag": RNG.uniform(-2, 2, 5),
    "conj": RNG.uniform(-2, 2, 5), "conjugate": RNG.uniform(-2, 2, 5),
    "angle": np.array([-1.5, 0.5, 2.0]), "absolute": np.array([-1.5, 0.0, 2.0]),
    "nan_to_num": np.array([1.0, np.nan, np.inf, -np.inf]),
}
BINARY = ["maximum", "minimum", "fmax", "fmin", "arctan2", "hypot", "logaddexp", "logaddexp2",
          "remainder", "mod", "floor_divide", "true_divide", "divide", "copysign"]
PIECEWISE_CONSTANT = ["sign", "floor", "ceil", "trunc", "fix", "rint", "round"]


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_forwards_match_numpy(name):
    x = UNARY[name]
    t = tg.tensor(x, requires_grad=True)
    fn = getattr(np, name)
    with np.errstate(all="ignore"):
        out = fn(t)
        np.testing.assert_allclose(out.data, fn(x), rtol=1e-14, atol=0)
        assert isinstance(out, tg.Tensor) and out.requires_grad
        if name != "absolute":
            np.testing.assert_allclose(getattr(tg.ops, name)(x).data, fn(x), rtol=1e-14)


@pytest.mark.parametrize("name", BINARY)
def test_binary_forwards_match_numpy_with_broadcasting(name):
    a = RNG.uniform(-3, 3, (3, 4))
    b = RNG.uniform(0.5, 2, (4,)) * np.array([1, -1, 1, -1])
    fn = getattr(np, name)
    ta = tg.tensor(a, requires_grad=True)
    for args, plain in (((ta, b), (a, b)), ((b, ta), (b, a)), ((ta, 1.5), (a, 1.5))):
        np.testing.assert_allclose(fn(*args).data, fn(*plain), rtol=1e-14)


@pytest.mark.parametrize("name, x", [
    ("log2", UNARY["log2"]), ("log10", UNARY["log10"]), ("exp2", UNARY["exp2"]),
    ("arccos", UNARY["arccos"]), ("arcsinh", UNARY["arcsinh"]),
    ("arccosh", UNARY["arccosh"]), ("arctanh", UNARY["arctanh"]),
    ("cbrt", np.array([-1.3, 0.4, 2.0])), ("fabs", np.array([-1.3, 0.4, 2.0])),
    ("deg2rad", UNARY["deg2rad"]), ("rad2deg", UNARY["rad2deg"]),
    ("sinc", np.array([0.0, 2e-4, -0.3, 1.0, 1.7])),
])
def test_unary_second_order_matches_finite_differences(name, x):
    tg.check_grads(getattr(np, name), x, order=2)


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin", "arctan2", "hypot",
                                  "logaddexp", "logaddexp2", "copysign"])
def test_binary_second_order_matches_finite_differences(name):
    a = RNG.uniform(0.3, 2, (3, 4)) * RNG.choice([-1, 1], (3, 4))
    b = RNG.uniform(0.3, 2, (4,)) * np.array([1, -1, 1, -1])
    tg.check_grads(getattr(np, name), a, b, order=2)


def test_closed_form_derivatives():
    x = np.array([0.3, 1.2, 2.5])
    for f, d in ((np.log2, 1 / (x * np.log(2))), (np.exp2, np.log(2) * 2 ** x),
                 (np.arccos, -1 / np.sqrt(1 - (x / 3) ** 2) / 3),
                 (np.sinc, (np.cos(np.pi * x) - np.sinc(x)) / x)):
        scale = 1 / 3 if f is np.arccos else 1
        np.testing.assert_allclose(tg.grad(lambda t, f=f, s=scale: f(t * s).sum())(x), d,
                                   rtol=1e-12)
    # sinc at 0: slope 0, curvature -pi^2 / 3
    assert tg.grad(lambda t: np.sinc(t))(0.0) == 0.0
    np.testing.assert_allclose(tg.grad(tg.grad(lambda t: np.sinc(t)))(0.0), -np.pi ** 2 / 3)
    y, b = np.array([1.0, -2.0]), np.array([-3.0, -0.5])
    ga, gb = tg.grad(lambda p, q: np.arctan2(p, q).sum(), argnums=(0, 1))(y, b)
    np.testing.assert_allclose(ga, b / (y ** 2 + b ** 2))
    np.testing.assert_allclose(gb, -y / (y ** 2 + b ** 2))


# ------------------------------------------------------------------ zero gradients


@pytest.mark.parametrize("name", PIECEWISE_CONSTANT)
def test_piecewise_constant_ops_are_recorded_with_exact_zero_gradients(name):
    x = tg.tensor([-2.7, -0.4, 0.0, 0.5, 1.5, 2.2], requires_grad=True)
    y = getattr(np, name)(x)
    assert y.requires_grad  # on the tape, like autograd: not a constant
    (x + 3 * y * y).sum().backward()
    np.testing.assert_array_equal(x.grad, np.ones(6))
    g = tg.grad(lambda t: (getattr(np, name)(t) * t).sum())(x.data)
    np.testing.assert_array_equal(g, getattr(np, name)(x.data))  # d(f(x) x) = f(x) + 0
    _, tangent = tg.jvp(lambda t: getattr(np, name)(t), (x.data,), (np.ones(6),))
    np.testing.assert_array_equal(tangent, np.zeros(6))
    assert tg.hessian(lambda t: getattr(np, name)(t).sum())(x.data[:2]).tolist() == \
        [[0.0, 0.0], [0.0, 0.0]]


def test_round_takes_decimals_like_numpy():
    x = np.array([1.234, -5.678, 15.0])
    t = tg.tensor(x, requires_grad=True)
    np.testing.assert_array_equal(t.round(1).data, x.round(1))
    np.testing.assert_array_equal(t.round(decimals=-1).data, x.round(decimals=-1))
    np.testing.assert_array_equal(np.round(t, 2).data, np.round(x, 2))
    np.testing.assert_array_equal(np.around(t).data, np.around(x))
    t.round(1).sum().backward()
    np.testing.assert_array_equal(t.grad, np.zeros(3))


def test_nan_to_num_passes_the_gradient_where_finite_only():
    x = np.array([1.5, np.nan, np.inf, -np.inf, -2.0])
    t = tg.tensor(x, requires_grad=True)
    out = np.nan_to_num(t, nan=7.0, posinf=8.0, neginf=-8.0)
    np.testing.assert_array_equal(out.data, [1.5, 7.0, 8.0, -8.0, -2.0])
    np.testing.assert_array_equal(np.nan_to_num(t, True, 1.0).data, np.nan_to_num(x, True, 1.0))
    (out * np.arange(1.0, 6.0)).sum().backward()
    np.testing.assert_array_equal(t.grad, [1.0, 0.0, 0.0, 0.0, 5.0])
    assert np.isnan(t.data[1]) and np.isinf(t.data[2])  # the input is left alone
    tg.check_grads(np.nan_to_num, np.array([0.5, -1.2, 2.0]), order=2)


# ------------------------------------------------------------------ maximum and friends


@pytest.mark.parametrize("name", ["maximum", "minimum", "fmax", "fmin"])
def test_ties_split_the_gradient_half_and_half(name):
    a = tg.tensor([1.0, 2.0, -1.0, 3.0], requires_grad=True)
    b = tg.tensor([1.0, 0.0, 5.0, 3.0], requires_grad=True)
    getattr(np, name)(a, b).sum().backward()
    first = name in ("maximum", "fmax")
    wins_a = np.array([0.5, 1.0 if first else 0.0, 0.0 if first else 1.0, 0.5])
    np.testing.assert_array_equal(a.grad, wins_a)
    np.testing.assert_array_equal(b.grad, 1.0 - wins_a)
    # forward mode agrees: the tangent is the average of the tied tangents
    _, t = tg.jvp(lambda p, q: getattr(np, name)(p, q), (a.data, b.data),
                  (np.ones(4), 3 * np.ones(4)))
    np.testing.assert_array_equal(t, wins_a + 3 * (1 - wins_a))


def test_nan_handling_of_maximum_and_fmax():
    a = tg.tensor([np.nan, 1.0], requires_grad=True)
    b = tg.tensor([2.0, np.nan], requires_grad=True)
    np.fmax(a, b).sum().backward()  # the non-NaN side is the result and gets g
    np.testing.assert_array_equal(a.grad, [0.0, 1.0])
    np.testing.assert_array_equal(b.grad, [1.0, 0.0])
    a.grad = b.grad = None
    np.maximum(a, b).sum().backward()  # NaN results: no gradient to either side
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 0.0])


def test_maximum_with_a_constant_is_relu_like():
    x = tg.tensor([-1.0, 0.5, 2.0], requires_grad=True)
    np.maximum(x, 0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0])


# ------------------------------------------------------------------ %, //, division


def test_mod_operators_and_gradients():
    a = np.array([5.3, -2.2, 7.9])
    b = np.array([2.0, 1.5, -3.0])
    ta, tb = tg.tensor(a, requires_grad=True), tg.tensor(b, requires_grad=True)
    out = ta % tb
    np.testing.assert_array_equal(out.data, a % b)
    out.sum().backward()
    np.testing.assert_array_equal(ta.grad, np.ones(3))
    np.testing.assert_array_equal(tb.grad, -np.floor(a / b))
    np.testing.assert_array_equal((7.5 % tb).data, 7.5 % b)
    np.testing.assert_array_equal((ta % 2).data, a % 2)
    np.testing.assert_array_equal((a % tb).data, a % b)  # ndarray on the left: ufunc
    for fn in (np.mod, np.remainder, tg.ops.mod, tg.ops.remainder):
        np.testing.assert_array_equal(fn(ta, tb).data, a % b)
    tg.check_grads(lambda p, q: p % q, a, b, order=2)
    tg.check_grads(lambda p, q: tg.ops.mod(p, q), a, b, order=2)


def test_floor_divide_operators_give_untracked_results():
    a = np.array([5.3, -2.2, 7.9])
    ta = tg.tensor(a, requires_grad=True)
    for got, want in ((ta // 2, a // 2), (7 // ta, 7 // a), (np.floor_divide(ta, 1.5), a // 1.5),
                      (a // ta, a // a)):
        np.testing.assert_array_equal(got.data, want)
        assert not got.requires_grad


def test_true_divide_and_divide_run_the_div_op():
    a = np.array([1.0, -3.0, 4.5])
    t = tg.tensor(a, requires_grad=True)
    for out in (np.true_divide(t, 2), np.divide(t, 2)):
        np.testing.assert_array_equal(out.data, a / 2)
    np.divide(3.0, t).sum().backward()
    np.testing.assert_allclose(t.grad, -3.0 / a ** 2)


def test_copysign_gradients():
    a = tg.tensor([1.5, -2.0, 0.7], requires_grad=True)
    b = tg.tensor([-1.0, -3.0, 2.0], requires_grad=True)
    out = np.copysign(a, b)
    np.testing.assert_array_equal(out.data, [-1.5, -2.0, 0.7])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(b.grad, [0.0, 0.0, 0.0])


# ------------------------------------------------------------------ complex parts, abs


def test_complex_part_methods_and_properties_on_real_tensors():
    x = np.array([-1.5, 0.5, 2.0])
    t = tg.tensor(x, requires_grad=True)
    for got, want in ((t.real, x), (t.imag, np.zeros(3)), (t.conj(), x), (t.conjugate(), x),
                      (np.real(t), x), (np.imag(t), np.zeros(3)), (np.conj(t), x),
                      (np.angle(t), np.angle(x)), (np.angle(t, deg=True), np.angle(x, True))):
        np.testing.assert_array_equal(got.data, want)
    assert t.real.data is not t.data  # a result of its own, not the input array
    (2 * t.real + 3 * t.imag + 5 * t.conj() + 7 * np.angle(t)).sum().backward()
    np.testing.assert_array_equal(t.grad, np.full(3, 7.0))
    tg.check_grads(lambda v: v.real * v.conj() + v.imag, x, order=2)


def test_abs_gradient_is_sign_with_zero_at_zero():
    x = tg.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [-1.0, 0.0, 1.0])
    assert tg.hessian(lambda t: np.abs(t).sum())(np.array([-2.0, 3.0])).tolist() == \
        [[0.0, 0.0], [0.0, 0.0]]


def test_complex_flags():
    holomorphic = ["exp", "log", "sqrt", "square", "reciprocal", "log1p", "expm1", "sin", "cos",
                   "tan", "arcsin", "arctan", "sinh", "cosh", "tanh", "log2", "log10", "exp2",
                   "arccos", "arcsinh", "arccosh", "arctanh", "sinc", "add", "sub", "mul",
                   "div", "neg", "pow", "matmul"]
    nonholomorphic = ["abs", "real", "imag", "conj", "conjugate", "angle"]
    for name in holomorphic + nonholomorphic:
        assert tg.get_op(name).definition.complex, name
    for name in ["fabs", "cbrt", "floor", "maximum", "arctan2", "remainder", "nan_to_num"]:
        assert not tg.get_op(name).definition.complex, name


# ------------------------------------------------------------------ pow at zero


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_pow_first_and_second_derivatives_at_zero(k):
    first = [0.0, 1.0, 0.0, 0.0][k]   # d x^k / dx at 0
    second = [0.0, 0.0, 2.0, 0.0][k]  # d2 x^k / dx2 at 0
    for exponent in (k, float(k), np.array(float(k))):
        assert tg.grad(lambda x, e=exponent: x ** e)(0.0) == first
        assert tg.grad(tg.grad(lambda x, e=exponent: x ** e))(0.0) == second
        _, t = tg.jvp(lambda x, e=exponent: x ** e, (0.0,), (1.0,))
        assert t == first
    assert tg.hessian(lambda x: x ** k)(0.0) == second


def test_pow_with_an_exponent_array_at_zero():
    powers = lambda x: (x.reshape(-1, 1) ** np.arange(4)).sum()  # noqa: E731
    np.testing.assert_array_equal(tg.grad(powers)(np.zeros(2)), [1.0, 1.0])
    np.testing.assert_array_equal(tg.hessian(powers)(np.zeros(2)), [[2.0, 0.0], [0.0, 2.0]])
    x = np.array([0.0, 0.5, -1.5])
    np.testing.assert_allclose(tg.grad(powers)(x), 1 + 2 * x + 3 * x ** 2)
    tg.check_grads(lambda t: t.reshape(-1, 1) ** np.arange(4), np.array([0.5, -1.5]), order=2)


def test_pow_exponent_gradient_at_zero_base():
    a = tg.tensor([0.0, 2.0], requires_grad=True)
    b = tg.tensor([2.0, 3.0], requires_grad=True)
    (a ** b).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 12.0])
    np.testing.assert_allclose(b.grad, [0.0, 8 * np.log(2.0)])
