"""Reductions, scans, sorting and diagonals (tapegrad.builtins.scans, reductions, logsumexp):
closed-form gradients, second-order checks against finite differences, NumPy's forwards."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg


def grad_of(f, x, g=None):
    """d sum(f(x) * g) / dx by reverse mode."""
    t = tg.tensor(np.asarray(x, dtype=float), requires_grad=True)
    out = f(t)
    out.backward(np.ones(out.shape) if g is None else np.asarray(g, dtype=float))
    return t.grad


# ------------------------------------------------------------------ forwards = NumPy's

X = np.random.default_rng(0).standard_normal((3, 4, 5))
M = np.random.default_rng(1).standard_normal((4, 5))
W = np.random.default_rng(2).uniform(0.5, 2.0, (4, 5))
NANS = np.where(np.random.default_rng(3).uniform(size=(4, 5)) < 0.3, np.nan, M)

CASES = [
    (np.prod, X, {}), (np.prod, X, {"axis": (0, 2), "keepdims": True}),
    (np.cumsum, X, {}), (np.cumsum, X, {"axis": 1}),
    (np.cumprod, X, {}), (np.cumprod, X, {"axis": -1}),
    (np.var, X, {}), (np.var, X, {"axis": 1, "ddof": 1, "keepdims": True}),
    (np.std, X, {"axis": (0, 2), "ddof": 1}), (np.std, X, {}),
    (np.average, M, {}), (np.average, M, {"axis": 1, "weights": W[0]}),
    (np.average, M, {"weights": W}), (np.average, M, {"axis": 0, "keepdims": True}),
    (np.ptp, X, {}), (np.ptp, X, {"axis": 1, "keepdims": True}),
    (np.nansum, NANS, {}), (np.nansum, NANS, {"axis": 0}),
    (np.nanmean, NANS, {"axis": 1, "keepdims": True}),
    (np.median, X, {}), (np.median, X, {"axis": 1}), (np.median, M, {"axis": -1}),
    (np.median, X, {"axis": (0, 2), "keepdims": True}),
    (np.sort, X, {}), (np.sort, X, {"axis": 0}), (np.sort, X, {"axis": None}),
    (np.partition, M, {"kth": 2}), (np.partition, M, {"kth": (0, 3), "axis": 0}),
    (np.amax, X, {"axis": 1}), (np.amin, X, {}),
    (np.trace, M, {}), (np.trace, X, {"offset": 1, "axis1": 2, "axis2": 0}),
    (np.diagonal, M, {"offset": -1}), (np.diagonal, X, {"axis1": 1, "axis2": 2}),
    (np.diff, M, {}), (np.diff, M, {"n": 2, "axis": 0}),
    (np.diff, M, {"prepend": 0.0, "append": M[:, :2]}),
    (np.gradient, M[0], {}), (np.gradient, M, {"axis": 1, "edge_order": 2}),
    (np.copy, M, {}),
]


@pytest.mark.parametrize("fn, x, kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_forward_matches_numpy(fn, x, kw):
    out = fn(tg.tensor(x, requires_grad=True), **kw)
    assert isinstance(out, tg.Tensor) and out.requires_grad
    np.testing.assert_allclose(out.data, fn(x, **kw), rtol=1e-14, atol=1e-15)


def test_positional_params_follow_numpy():
    t = tg.tensor(M, requires_grad=True)
    np.testing.assert_allclose(np.gradient(t[0], 0.5).data, np.gradient(M[0], 0.5))
    np.testing.assert_allclose(np.partition(t, 3).data, np.partition(M, 3))
    np.testing.assert_allclose(np.trace(t, 1).data, np.trace(M, 1))
    np.testing.assert_allclose(np.diff(t, 2).data, np.diff(M, 2))
    np.testing.assert_allclose(np.average(t, 1, W).data, np.average(M, 1, W))


def test_methods_match_ndarray():
    t = tg.tensor(M, requires_grad=True)
    np.testing.assert_allclose(t.prod(axis=1).data, M.prod(axis=1))
    np.testing.assert_allclose(t.cumsum(0).data, M.cumsum(0))
    np.testing.assert_allclose(t.cumprod().data, M.cumprod())
    np.testing.assert_allclose(t.var(ddof=1).data, M.var(ddof=1))
    np.testing.assert_allclose(t.std(1, keepdims=True).data, M.std(1, keepdims=True))
    np.testing.assert_allclose(t.trace(offset=-1).data, M.trace(offset=-1))
    np.testing.assert_allclose(t.diagonal(1).data, M.diagonal(1))
    c = t.copy()
    assert c.requires_grad and c.data is not t.data and not np.shares_memory(c.data, t.data)
    np.testing.assert_array_equal(t.clone().data, M)


def test_index_methods_return_plain_integer_arrays():
    t = tg.tensor(M, requires_grad=True)
    for got, want in [(t.argmax(), M.argmax()), (t.argmin(axis=0), M.argmin(axis=0)),
                      (t.argmax(axis=1, keepdims=True), M.argmax(axis=1, keepdims=True)),
                      (t.argsort(), M.argsort()), (t.argsort(axis=0), M.argsort(axis=0))]:
        assert type(got) is np.ndarray and got.dtype.kind == "i"
        np.testing.assert_array_equal(got, want)
    assert type(np.argsort(t)) is np.ndarray


# ------------------------------------------------------------------ products with zeros


def test_prod_gradient_with_one_zero():
    np.testing.assert_array_equal(grad_of(lambda t: t.prod(), [0.0, 2.0, 3.0]), [6, 0, 0])


def test_prod_gradient_with_two_zeros_is_zero():
    np.testing.assert_array_equal(grad_of(lambda t: t.prod(), [0.0, 2.0, 0.0]), [0, 0, 0])


def test_prod_hessian_with_zeros_is_products_of_the_others():
    # d2/dxi dxj prod(x) = prod of the elements other than i and j
    h = tg.hessian(lambda t: np.prod(t))(np.array([0.0, 2.0, 3.0]))
    np.testing.assert_allclose(h, [[0, 3, 2], [3, 0, 0], [2, 0, 0]])
    h = tg.hessian(lambda t: np.prod(t))(np.array([0.0, 0.0, 3.0]))
    np.testing.assert_allclose(h, [[0, 3, 0], [3, 0, 0], [0, 0, 0]])


def test_prod_along_an_axis_with_zeros():
    x = np.array([[0.0, 2.0, 3.0], [4.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(grad_of(lambda t: t.prod(axis=1), x),
                                  [[6, 0, 0], [0, 0, 0], [6, 3, 2]])


def test_cumprod_gradient_with_zeros():
    # y = [x0, x0 x1, x0 x1 x2] at x = [2, 0, 3]:
    # d sum(y) = [1 + x1 + x1 x2, x0 + x0 x2, x0 x1] = [1, 8, 0]
    np.testing.assert_array_equal(grad_of(np.cumprod, [2.0, 0.0, 3.0]), [1, 8, 0])
    np.testing.assert_array_equal(grad_of(np.cumprod, [0.0, 2.0, 0.0]), [3, 0, 0])


@pytest.mark.parametrize("x", [np.array([0.5, 0.0, 2.0, 0.0, 1.5]),
                               np.array([[1.2, 0.0, -0.7], [0.0, 0.0, 2.0]])])
def test_cumprod_with_zeros_to_second_order(x):
    tg.check_grads(lambda t: np.cumprod(t, axis=-1), x, order=2)
    tg.check_grads(lambda t: np.prod(t, axis=-1), x, order=2)


# ------------------------------------------------------------------ moments


def test_var_and_std_against_hand_formulas():
    x = np.array([1.0, 2.0, 4.0, 7.0])
    d = x - 3.5
    for ddof in (0, 1):
        n = 4 - ddof
        var = (d ** 2).sum() / n
        t = tg.tensor(x, requires_grad=True)
        assert t.var(ddof=ddof).item() == pytest.approx(var)
        np.testing.assert_allclose(grad_of(lambda t, k=ddof: t.var(ddof=k), x), 2 * d / n)
        np.testing.assert_allclose(grad_of(lambda t, k=ddof: np.std(t, ddof=k), x),
                                   d / (n * np.sqrt(var)))


def test_var_over_axis_keepdims():
    x = np.array([[1.0, 3.0], [2.0, 8.0]])
    g = grad_of(lambda t: t.var(axis=0, keepdims=True), x, g=[[1.0, 10.0]])
    np.testing.assert_allclose(g, [[-0.5, -25.0], [0.5, 25.0]])  # 2 (x - mean) / 2 * g


def test_average_gradient_is_the_normalised_weights():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    w = np.array([1.0, 2.0, 5.0])
    np.testing.assert_allclose(grad_of(lambda t: np.average(t, axis=1, weights=w), x),
                               [w / 8, w / 8])
    np.testing.assert_allclose(grad_of(lambda t: np.average(t), x), np.full((2, 3), 1 / 6))


def test_average_refuses_weights_that_require_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="weights"):
        np.average(tg.tensor([1.0, 2.0]), weights=w)


def test_nan_reductions_give_nans_no_gradient():
    x = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(grad_of(lambda t: np.nansum(t), x), [[1, 0, 1], [0, 0, 0]])
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        g = grad_of(lambda t: np.nanmean(t, axis=1), x)
    np.testing.assert_array_equal(g, [[0.5, 0, 0.5], [0, 0, 0]])  # all-NaN row: zeros


# ------------------------------------------------------------------ order statistics


def test_median_odd_count_takes_the_middle_element():
    np.testing.assert_array_equal(grad_of(np.median, [3.0, 1.0, 2.0]), [0, 0, 1])


def test_median_even_count_splits_between_the_two_middle_elements():
    np.testing.assert_array_equal(grad_of(np.median, [4.0, 1.0, 3.0, 2.0]), [0, 0, 0.5, 0.5])
    x = np.array([[4.0, 1.0], [0.0, 5.0], [2.0, 3.0]])
    np.testing.assert_array_equal(grad_of(lambda t: np.median(t, axis=0), x),
                                  [[0, 0], [0, 0], [1, 1]])
    np.testing.assert_array_equal(grad_of(lambda t: np.median(t, axis=1), x),
                                  [[0.5, 0.5]] * 3)


def test_sort_with_ties_follows_stable_argsort_order():
    x = np.array([2.0, 1.0, 2.0, 0.0])   # stable argsort: [3, 1, 0, 2]
    g = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(grad_of(np.sort, x, g), [3, 2, 4, 1])
    _, tangent = tg.jvp(np.sort, (x,), (np.array([10.0, 20.0, 30.0, 40.0]),))
    np.testing.assert_array_equal(tangent, [40, 20, 10, 30])


def test_sort_along_axes_routes_gradients_to_the_sources():
    x = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]])
    g = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(grad_of(np.sort, x, g), [[3, 1, 2], [5, 6, 4]])
    np.testing.assert_array_equal(grad_of(lambda t: np.sort(t, axis=0), x, g),
                                  [[4, 2, 6], [1, 5, 3]])
    np.testing.assert_array_equal(grad_of(lambda t: np.sort(t, axis=None), x, g.ravel()),
                                  [[5, 3, 4], [2, 6, 1]])


def test_partition_gradient_follows_the_permutation():
    x = np.array([5.0, 1.0, 4.0, 2.0, 3.0])
    g = np.arange(1.0, 6.0)
    out = np.partition(x, 2)
    expected = np.zeros(5)
    for j, v in enumerate(out):
        expected[x == v] = g[j]
    np.testing.assert_array_equal(grad_of(lambda t: np.partition(t, 2), x, g), expected)


def test_max_and_min_split_ties_evenly():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0]])
    np.testing.assert_array_equal(grad_of(lambda t: t.max(axis=1), x), [[0, .5, .5], [.5, .5, 0]])
    np.testing.assert_array_equal(grad_of(lambda t: np.amin(t, axis=1), x),
                                  [[1, 0, 0], [0, 0, 1]])
    np.testing.assert_array_equal(grad_of(lambda t: np.amax(t), x), [[0, .5, .5], [0, 0, 0]])
    _, tangent = tg.jvp(lambda t: t.max(axis=1), (x,), (np.arange(6.0).reshape(2, 3),))
    np.testing.assert_array_equal(tangent, [1.5, 3.5])


def test_ptp_gradient_is_plus_one_at_max_minus_one_at_min():
    np.testing.assert_array_equal(grad_of(np.ptp, [2.0, -1.0, 5.0, 0.0]), [0, -1, 1, 0])


# ------------------------------------------------------------------ logsumexp


def test_logsumexp_at_minus_infinity():
    t = tg.tensor([-np.inf, 0.0], requires_grad=True)
    out = tg.ops.logsumexp(t)
    out.backward()
    assert out.item() == 0.0
    np.testing.assert_array_equal(t.grad, [0, 1])


def test_logsumexp_all_minus_infinity_is_minus_infinity_with_zero_gradient():
    x = np.array([[-np.inf, -np.inf], [0.0, np.log(3.0)]])
    t = tg.tensor(x, requires_grad=True)
    out = t.logsumexp(axis=1)
    out.backward(np.ones(2))
    np.testing.assert_allclose(out.data, [-np.inf, np.log(4.0)])
    np.testing.assert_allclose(t.grad, [[0, 0], [0.25, 0.75]])
    h = tg.hessian(lambda t: tg.ops.logsumexp(t))(np.array([-np.inf, -np.inf]))
    np.testing.assert_array_equal(h, np.zeros((2, 2)))


def test_logsumexp_at_plus_infinity_splits_between_the_infinite_entries():
    x = np.array([np.inf, 1.0, np.inf])
    assert tg.ops.logsumexp(x).item() == np.inf
    np.testing.assert_array_equal(grad_of(tg.ops.logsumexp, x), [0.5, 0, 0.5])


def test_logsumexp_reduces_every_axis_by_default_and_matches_scipy():
    from scipy.special import logsumexp

    x = np.random.default_rng(4).standard_normal((3, 4)) * 300
    np.testing.assert_allclose(tg.ops.logsumexp(x).data, logsumexp(x))
    np.testing.assert_allclose(tg.ops.logsumexp(x, axis=0, keepdims=True).data,
                               logsumexp(x, axis=0, keepdims=True))


# ------------------------------------------------------------------ diagonals, differences


def test_trace_and_diagonal_gradients_sit_on_the_diagonal():
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(grad_of(lambda t: t.trace(offset=1), x),
                                  np.eye(3, 4, k=1))
    np.testing.assert_array_equal(grad_of(lambda t: t.diagonal(-1), x, [5.0, 7.0]),
                                  [[0, 0, 0, 0], [5, 0, 0, 0], [0, 7, 0, 0]])


def test_diff_with_prepend_and_append():
    # diff([p, x0, x1, x2, a]) summed telescopes to a - p: no gradient for x
    g = grad_of(lambda t: np.diff(t, prepend=1.0, append=[5.0]), [1.0, 4.0, 9.0])
    np.testing.assert_array_equal(g, [0, 0, 0])
    g = grad_of(lambda t: np.diff(t, prepend=1.0), [1.0, 4.0, 9.0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(g, [-1, -1, 3])


def test_gradient_op_takes_one_axis_and_a_scalar_spacing():
    # np.gradient over several axes gives a tuple (tests/test_decomp_ops.py)
    with pytest.raises(ValueError, match="one axis"):
        tg.ops.gradient(tg.tensor(M, requires_grad=True))
    with pytest.raises(NotImplementedError, match="scalar spacing"):
        np.gradient(tg.tensor(M[0], requires_grad=True), np.arange(5.0))


# ------------------------------------------------------------------ second order


RNG = np.random.default_rng(5)
SECOND = [
    ("prod", lambda t: np.prod(t, axis=1), RNG.uniform(0.5, 1.5, (3, 4))),
    ("cumprod", lambda t: np.cumprod(t, axis=0), RNG.uniform(0.5, 1.5, (3, 4))),
    ("cumsum", lambda t: np.cumsum(t) ** 2, RNG.standard_normal((2, 3))),
    ("var", lambda t: t.var(axis=0, ddof=1), RNG.standard_normal((4, 3))),
    ("std", lambda t: np.std(t, axis=(0, 1), keepdims=True), RNG.standard_normal((4, 3))),
    ("average", lambda t: np.average(t * t, axis=0, weights=[1.0, 2.0, 3.0]),
     RNG.standard_normal((3, 2))),
    ("median", lambda t: np.median(t * t, axis=1), RNG.standard_normal((3, 4))),
    ("sort", lambda t: np.sort(t * t, axis=0), RNG.standard_normal((3, 4))),
    ("partition", lambda t: np.partition(t ** 3, 2), RNG.standard_normal(6)),
    ("trace", lambda t: np.trace(t * t, offset=-1), RNG.standard_normal((3, 3))),
    ("diagonal", lambda t: np.diagonal(t ** 3, axis1=1, axis2=0),
     RNG.standard_normal((3, 3))),
    ("diff", lambda t: np.diff(t ** 2, n=2, append=0.5), RNG.standard_normal(6)),
    ("gradient", lambda t: np.gradient(t ** 2, 0.5, edge_order=2), RNG.standard_normal(6)),
    ("logsumexp", lambda t: tg.ops.logsumexp(t, axis=1), RNG.standard_normal((3, 4))),
    ("nanmean", lambda t: np.nanmean(t ** 2, axis=0), RNG.standard_normal((3, 2))),
    ("copy", lambda t: np.copy(t) ** 2, RNG.standard_normal(3)),
]


@pytest.mark.parametrize("name, f, x", SECOND, ids=[s[0] for s in SECOND])
def test_second_order_matches_finite_differences(name, f, x):
    tg.check_grads(f, x, order=2)


def test_constant_params_do_not_promote_float32():
    x = tg.tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    assert np.average(x, axis=1, weights=np.array([1.0, 2.0, 3.0])).dtype == np.float32
    assert np.diff(x, prepend=0.5, append=np.zeros((2, 1))).dtype == np.float32
