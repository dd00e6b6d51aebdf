"""NumPy's numerical routines on Tensors (tapegrad.builtins.numerics): NumPy's own values,
gradients against closed forms and finite differences, and the refused cases."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.errors import DifferentiabilityError

RNG = np.random.default_rng(7)


def T(a):
    return tg.tensor(a, requires_grad=True)


def grads(f, *xs):
    """The gradients of ``f(*tensors)`` (a scalar) in each argument."""
    ts = [T(x) for x in xs]
    f(*ts).backward()
    return [t.grad for t in ts]


# ----------------------------------------------------------------- interp

XP = np.array([0.0, 1.0, 2.5, 3.0])
FP = np.array([1.0, -1.0, 2.0, 0.5])
X = np.array([-0.5, 0.3, 0.7, 1.2, 2.9, 3.4])   # left of, inside (twice in one segment), right


def test_interp_values_are_numpys():
    for kw in ({}, {"left": -7.0}, {"right": 9.0}, {"left": 0.5, "right": -0.5}):
        got = np.interp(T(X), XP, T(FP), **kw)
        assert isinstance(got, tg.Tensor)
        np.testing.assert_allclose(got.data, np.interp(X, XP, FP, **kw))
    assert np.interp(T(np.array(1.5)), XP, FP).data == pytest.approx(np.interp(1.5, XP, FP))


def test_interp_gradient_in_x_is_the_segment_slope():
    (gx,) = grads(lambda x: np.interp(x, XP, FP).sum(), X)
    np.testing.assert_allclose(gx, [0.0, -2.0, -2.0, 2.0, -3.0, 0.0])


def test_interp_gradient_in_fp_is_the_two_weights_accumulated():
    (gf,) = grads(lambda fp: np.interp(X, XP, fp).sum(), FP)
    # -0.5 reads fp[0] and 3.4 reads fp[3] (no left / right given); 0.3 and 0.7 share
    # [0, 1]; 1.2 is 0.2 / 1.5 into [1, 2.5]; 2.9 is 0.4 / 0.5 into [2.5, 3]
    w12, w29 = 0.2 / 1.5, 0.8
    inside = [0.7 + 0.3, 0.3 + 0.7 + (1 - w12), w12 + (1 - w29), w29]
    np.testing.assert_allclose(gf, np.add(inside, [1, 0, 0, 1]), rtol=1e-12)
    (gf,) = grads(lambda fp: np.interp(X, XP, fp, left=0.0, right=0.0).sum(), FP)
    np.testing.assert_allclose(gf, inside, rtol=1e-12)


def test_interp_second_order_and_one_knot():
    tg.check_grads(lambda x, fp: np.interp(x, XP, fp) ** 2, X, FP, order=2)
    # one knot at 0: X has one point left of it and five right of it
    (gf,) = grads(lambda fp: np.interp(X, XP[:1], fp, right=3.0).sum(), FP[:1])
    np.testing.assert_allclose(gf, [1.0])
    (gf,) = grads(lambda fp: np.interp(X, XP[:1], fp).sum(), FP[:1])
    np.testing.assert_allclose(gf, [6.0])


def test_interp_refuses_period():
    with pytest.raises(NotImplementedError, match="period= is not supported"):
        np.interp(T(X), XP, FP, period=2.0)


# ----------------------------------------------------------------- polyval


def test_polyval_values_and_closed_form_gradients():
    p = np.array([2.0, -1.0, 0.5, 3.0])
    x = np.array([[0.5, -1.2], [2.0, 0.1]])
    got = np.polyval(T(p), T(x))
    np.testing.assert_allclose(got.data, np.polyval(p, x))
    gp, gx = grads(lambda p, x: np.polyval(p, x).sum(), p, x)
    np.testing.assert_allclose(gx, np.polyval(np.polyder(p), x))
    np.testing.assert_allclose(gp, [np.sum(x ** k) for k in (3, 2, 1, 0)])
    tg.check_grads(lambda p, x: np.polyval(p, x), p, x, order=2)
    with pytest.raises(ValueError, match="p must be 1-D"):
        np.polyval(T(np.ones((2, 2))), x)


# ----------------------------------------------------------------- trapezoid


def test_trapezoid_values_and_gradients():
    y = RNG.standard_normal((3, 5))
    x = np.cumsum(RNG.uniform(0.2, 1.0, 5))
    np.testing.assert_allclose(np.trapezoid(T(y), x).data, np.trapezoid(y, x))
    np.testing.assert_allclose(np.trapezoid(T(y), dx=0.5, axis=0).data,
                               np.trapezoid(y, dx=0.5, axis=0))
    (gy,) = grads(lambda y: np.trapezoid(y, dx=0.5).sum(), y)
    np.testing.assert_allclose(gy, np.broadcast_to([0.25, 0.5, 0.5, 0.5, 0.25], y.shape))
    d = np.diff(x)
    (gy,) = grads(lambda y: np.trapezoid(y, x).sum(), y)
    np.testing.assert_allclose(gy[0], np.r_[d, 0] / 2 + np.r_[0, d] / 2)
    tg.check_grads(lambda y, x: np.trapezoid(y, x), y, x, order=2)
    tg.check_grads(lambda y, x: np.trapezoid(y, x, axis=0), y.T, x, order=2)
    tg.check_grads(lambda y, x: np.trapezoid(y, x), y, np.cumsum(RNG.uniform(0.2, 1, (3, 5)), 1))


# ----------------------------------------------------------------- convolve, correlate


@pytest.mark.parametrize("fn", [np.convolve, np.correlate])
def test_convolve_and_correlate_every_length_and_mode(fn):
    for n in range(1, 6):
        for m in range(1, 6):
            a, v = RNG.standard_normal(n), RNG.standard_normal(m)
            for mode in ("full", "same", "valid"):
                np.testing.assert_allclose(fn(T(a), T(v), mode).data, fn(a, v, mode))
                tg.check_grads(lambda a, v, mode=mode: fn(a, v, mode), a, v, modes=("rev",))
    a, v = RNG.standard_normal(5), RNG.standard_normal(3)
    tg.check_grads(lambda a, v: fn(a, v, "same") ** 2, a, v, order=2)


def test_convolution_gradient_closed_form():
    # d/da sum(convolve(a, v)) = sum(v) for every a_i (full mode)
    a, v = RNG.standard_normal(4), np.array([1.0, 2.0, -0.5])
    ga, gv = grads(lambda a, v: np.convolve(a, v).sum(), a, v)
    np.testing.assert_allclose(ga, np.full(4, 2.5))
    np.testing.assert_allclose(gv, np.full(3, a.sum()))


# ----------------------------------------------------------------- cov, corrcoef


def test_cov_values_are_numpys():
    m, y = RNG.standard_normal((3, 6)), RNG.standard_normal((2, 6))
    for args, kw in [((m,), {}), ((m.T,), {"rowvar": False}), ((m, y), {"bias": True}),
                     ((m[0], y[0]), {"ddof": 2}), ((m[0],), {}), ((m.T, y.T), {"rowvar": False})]:
        got = np.cov(*(T(a) for a in args), **kw)
        np.testing.assert_allclose(got.data, np.cov(*args, **kw))
        assert got.shape == np.shape(np.cov(*args, **kw))


def test_cov_gradients():
    x = RNG.standard_normal(6)
    (g,) = grads(lambda x: np.cov(x), x)          # the sample variance
    np.testing.assert_allclose(g, 2 * (x - x.mean()) / 5)
    m, y = RNG.standard_normal((3, 6)), RNG.standard_normal((6, 2))
    tg.check_grads(lambda m, y: np.cov(m, y, rowvar=False), m.T, y, order=2)
    tg.check_grads(lambda m: np.cov(m, bias=True), m, order=2)


def test_corrcoef_values_and_gradients():
    m, y = RNG.standard_normal((3, 6)), RNG.standard_normal(6)
    np.testing.assert_allclose(np.corrcoef(T(m), T(y)).data, np.corrcoef(m, y))
    np.testing.assert_allclose(np.corrcoef(T(m.T), rowvar=False).data,
                               np.corrcoef(m.T, rowvar=False))
    tg.check_grads(lambda m, y: np.corrcoef(m, y), m, y, order=2)
    (g,) = grads(lambda m: np.trace(np.corrcoef(m)), m)   # the diagonal is constant 1
    np.testing.assert_allclose(g, 0.0, atol=1e-14)


def test_cov_refuses_weights():
    with pytest.raises(NotImplementedError, match="fweights, aweights"):
        np.cov(T(np.ones((2, 3))), fweights=np.ones(3, dtype=int))


# ----------------------------------------------------------------- take_along_axis


def test_take_along_axis_accumulates_repeated_indices():
    a = RNG.standard_normal((2, 4))
    idx = np.array([[3, 3, 0], [1, 1, 1]])
    np.testing.assert_allclose(np.take_along_axis(T(a), idx, axis=1).data,
                               np.take_along_axis(a, idx, axis=1))
    (g,) = grads(lambda a: np.take_along_axis(a, idx, axis=1).sum(), a)
    np.testing.assert_allclose(g, [[1, 0, 0, 2], [0, 3, 0, 0]])
    flat = np.array([7, 7, 0])
    (g,) = grads(lambda a: np.take_along_axis(a, flat, axis=None).sum(), a)
    np.testing.assert_allclose(g.reshape(-1), np.bincount(flat, minlength=8))
    order = np.argsort(a, axis=0)
    tg.check_grads(lambda a: np.take_along_axis(a, order, axis=0) ** 2, a, order=2)


# ----------------------------------------------------------------- meshgrid


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("kw", [{}, {"indexing": "ij"}, {"sparse": True}])
def test_meshgrid_values_and_gradient_sums(k, kw):
    xs = [RNG.standard_normal(n) for n in (3, 2, 4, 2, 3)[:k]]
    grids = np.meshgrid(*(T(x) for x in xs), **kw)
    want = np.meshgrid(*xs, **kw)
    assert isinstance(grids, tuple) and len(grids) == k
    for g, w in zip(grids, want, strict=True):
        np.testing.assert_allclose(g.data, w)
    # d/dx_j of (j + 1) * sum(dense grid_j): x_j is repeated over the others' lengths
    dense = np.broadcast_shapes(*(w.shape for w in want))
    gs = grads(lambda *ts: sum(np.broadcast_to(g, dense).sum() * (j + 1)
                               for j, g in enumerate(np.meshgrid(*ts, **kw))), *xs)
    total = np.prod([x.size for x in xs])
    for j, (g, x) in enumerate(zip(gs, xs, strict=True)):
        np.testing.assert_allclose(g, np.full(x.shape, (j + 1) * total / x.size))


def test_meshgrid_second_order():
    x, y = RNG.standard_normal(3), RNG.standard_normal(2)
    tg.check_grads(lambda x, y: np.stack(np.meshgrid(x, y)) ** 3, x, y, order=2)


# ----------------------------------------------------------------- percentile, quantile


def test_quantile_values_are_numpys():
    a = RNG.standard_normal((4, 5))
    for q, kw in [(0.3, {}), ([0.1, 0.9], {"axis": 1}), (np.array([[0.2], [0.75]]),
                                                        {"axis": 0, "keepdims": True})]:
        np.testing.assert_allclose(np.quantile(T(a), q, **kw).data, np.quantile(a, q, **kw))
        pct = np.percentile(T(a), np.asarray(q) * 100, **kw)
        np.testing.assert_allclose(pct.data, np.percentile(a, np.asarray(q) * 100, **kw))


def test_quantile_gradient_is_the_two_order_statistics_weights():
    a = np.array([4.0, -1.0, 2.5, 0.0, 7.0])   # sorted: -1, 0, 2.5, 4, 7
    (g,) = grads(lambda a: np.quantile(a, 0.3), a)     # index 1.2: 0.8 * 0 + 0.2 * 2.5
    np.testing.assert_allclose(g, [0.0, 0.0, 0.2, 0.8, 0.0])
    (g,) = grads(lambda a: np.percentile(a, 50), a)
    (gm,) = grads(lambda a: np.median(a), a)
    np.testing.assert_allclose(g, gm)
    b = RNG.standard_normal((3, 4))
    tg.check_grads(lambda b: np.percentile(b, [20, 65], axis=0) ** 2, b, order=2)


def test_quantile_refuses_other_methods():
    with pytest.raises(NotImplementedError, match="only 'linear'"):
        np.percentile(T(np.arange(4.0)), 50, method="nearest")


# ----------------------------------------------------------------- lstsq, polyfit


def test_lstsq_returns_numpys_four_results():
    a, b = RNG.standard_normal((6, 3)), RNG.standard_normal((6, 2))
    x, res, rank, s = np.linalg.lstsq(T(a), T(b))
    want = np.linalg.lstsq(a, b)
    for got, w in zip((x, res, s), (want[0], want[1], want[3]), strict=True):
        assert isinstance(got, tg.Tensor)
        np.testing.assert_allclose(got.data, w)
    assert rank == want[2] == 3


def test_lstsq_gradients():
    a, b = RNG.standard_normal((6, 3)), RNG.standard_normal(6)
    tg.check_grads(lambda a, b: np.linalg.lstsq(a, b)[0], a, b, order=2)
    tg.check_grads(lambda a, b: np.linalg.lstsq(a, b)[1], a, b, order=2)
    tg.check_grads(lambda a, b: np.linalg.lstsq(a, b)[3], a, b)
    sq, rhs = RNG.standard_normal((3, 3)) + 3 * np.eye(3), RNG.standard_normal((3, 2))
    ga, gb = grads(lambda a, b: np.linalg.lstsq(a, b)[0].sum(), sq, rhs)
    wa, wb = grads(lambda a, b: np.linalg.solve(a, b).sum(), sq, rhs)
    np.testing.assert_allclose(ga, wa)
    np.testing.assert_allclose(gb, wb)


def test_lstsq_refuses_rank_deficient_a():
    a = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]])
    x = np.linalg.lstsq(T(a), np.ones(3))[0]
    np.testing.assert_allclose(x.data, np.linalg.lstsq(a, np.ones(3))[0])
    with pytest.raises(DifferentiabilityError, match="has rank 1 < 2 columns"):
        x.sum().backward()


def test_polyfit_gradient_in_y():
    x = np.linspace(-1.0, 1.0, 7)
    y = RNG.standard_normal(7)
    np.testing.assert_allclose(np.polyfit(x, T(y), 2).data, np.polyfit(x, y, 2))
    w = RNG.uniform(0.5, 2.0, 7)
    np.testing.assert_allclose(np.polyfit(x, T(y), 3, w=w).data, np.polyfit(x, y, 3, w=w))
    # the fit is linear in y: its Jacobian is the pseudo-inverse of the Vandermonde matrix
    jac = tg.jacobian(lambda y: np.polyfit(x, y, 2))(y)
    np.testing.assert_allclose(jac, np.linalg.pinv(np.vander(x, 3)), atol=1e-12)
    with pytest.raises(TypeError, match="x takes no gradient"):
        np.polyfit(T(x), y, 2)
    with pytest.raises(NotImplementedError, match="full=True"):
        np.polyfit(x, T(y), 2, full=True)
