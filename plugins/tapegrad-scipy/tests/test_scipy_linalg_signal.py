"""tapegrad_scipy.linalg and tapegrad_scipy.signal: forwards equal SciPy's, gradients
against closed forms and finite differences (first and second order), refused cases."""

import numpy as np
import pytest

sl = pytest.importorskip("scipy.linalg")
ss = pytest.importorskip("scipy.signal")
pytest.importorskip("tapegrad_scipy")

from tapegrad_scipy import linalg, signal  # noqa: E402

import tapegrad as tg  # noqa: E402
from tapegrad.errors import ConversionError  # noqa: E402
from tapegrad.gradcheck import check_grads, check_op, op_samples  # noqa: E402

#: op name -> SciPy's function, called as SciPy's signature wants the op's sample.
SCIPY = {
    "solve_triangular": lambda a, b, **p: sl.solve_triangular(a, b, **p),
    "cho_solve": lambda c, b, lower=False: sl.cho_solve((c, lower), b),
    "solve_sylvester": sl.solve_sylvester,
    "sqrtm": sl.sqrtm,
    "expm": sl.expm,
    "signal_convolve": ss.convolve,
    "signal_correlate": ss.correlate,
    "fftconvolve": ss.fftconvolve,
}
#: op name -> this plugin's function with SciPy's signature.
MINE = {
    "solve_triangular": linalg.solve_triangular,
    "cho_solve": lambda c, b, lower=False: linalg.cho_solve((c, lower), b),
    "solve_sylvester": linalg.solve_sylvester,
    "sqrtm": linalg.sqrtm,
    "expm": linalg.expm,
    "signal_convolve": signal.convolve,
    "signal_correlate": signal.correlate,
    "fftconvolve": signal.fftconvolve,
}


def rng():
    return np.random.default_rng(7)


def grad(f, *xs):
    """Gradients of ``sum(f(*xs) * probe)`` in every x (a fixed probe, so no symmetry of
    the seed hides an error)."""
    ts = [tg.tensor(x, requires_grad=True) for x in xs]
    out = f(*ts)
    probe = np.linspace(0.5, 1.5, out.size).reshape(out.shape)
    (out * probe).sum().backward()
    return [t.grad for t in ts], probe, out.data


# ------------------------------------------------------------------ forwards, every sample


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_forward_is_scipys_on_every_sample(name):
    info = tg.get_op(name)
    assert not info.definition.lazy and info.source == "scipy"
    for inputs, params in op_samples(info, rng()):
        expected = SCIPY[name](*inputs, **params)
        np.testing.assert_array_equal(info.call(*inputs, **params).data, expected)
        ts = [tg.tensor(a, requires_grad=True) for a in inputs]
        out = MINE[name](*ts, **params)
        assert isinstance(out, tg.Tensor) and out.requires_grad
        np.testing.assert_array_equal(out.data, expected)


@pytest.mark.parametrize("name", sorted(SCIPY))
def test_every_sample_against_finite_differences(name):
    check_op(tg.get_op(name), order=1, rng=rng(), modes=("rev", "fwd"))


def test_scipys_own_functions_do_not_dispatch_and_say_so():
    t = tg.tensor(np.eye(2), requires_grad=True)
    with pytest.raises(ConversionError):
        sl.expm(t)
    with pytest.raises(ConversionError):
        ss.convolve(t, t)


# ------------------------------------------------------------------ solve_triangular


@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", [0, "T", 2])
@pytest.mark.parametrize("unit", [False, True])
def test_solve_triangular_gradients_closed_form(lower, trans, unit):
    r = rng()
    a = r.uniform(-0.5, 0.5, (3, 3)) + 2 * np.eye(3)
    b = r.standard_normal((3, 2))
    tri = np.tril(a, -1 if unit else 0) if lower else np.triu(a, 1 if unit else 0)
    m = tri + np.eye(3) if unit else tri
    m = m if trans == 0 else m.T
    (ga, gb), w, x = grad(lambda a, b: linalg.solve_triangular(
        a, b, trans=trans, lower=lower, unit_diagonal=unit), a, b)
    np.testing.assert_allclose(x, np.linalg.solve(m, b), rtol=1e-12)
    gb_expected = np.linalg.solve(m.T, w)
    gm = -gb_expected @ x.T                      # gradient in op(a)
    full = gm if trans == 0 else gm.T
    mask = np.tri(3, k=-1 if unit else 0)
    mask = mask if lower else mask.T
    np.testing.assert_allclose(gb, gb_expected, rtol=1e-12)
    np.testing.assert_allclose(ga, full * mask, rtol=1e-12, atol=1e-15)
    assert np.all(ga[mask == 0] == 0)           # the unread entries get nothing


def test_solve_triangular_vector_rhs_second_order_and_bad_trans():
    r = rng()
    a = np.triu(r.uniform(-0.5, 0.5, (3, 3))) + 2 * np.eye(3)
    b = r.standard_normal(3)
    check_grads(lambda a, b: linalg.solve_triangular(a, b, trans=1), a, b, order=2)
    with pytest.raises(ValueError, match="trans"):
        tg.ops.solve_triangular(tg.tensor(a, requires_grad=True), b, trans=3).sum().backward()


# ------------------------------------------------------------------ cholesky family


def _spd(r, n=3):
    b = r.standard_normal((n, n))
    return b @ b.T + n * np.eye(n)


@pytest.mark.parametrize("lower", [False, True])
def test_cholesky_and_cho_factor_are_scipys(lower):
    a = _spd(rng())
    np.testing.assert_allclose(linalg.cholesky(a, lower=lower).data,
                               sl.cholesky(a, lower=lower), rtol=1e-12)
    c, low = linalg.cho_factor(a, lower=lower)
    c_sp, low_sp = sl.cho_factor(a, lower=lower)
    assert low is low_sp is lower
    keep = np.tri(3) if lower else np.tri(3).T           # SciPy's other triangle is junk
    np.testing.assert_allclose(c.data * keep, c_sp * keep, rtol=1e-12)
    np.testing.assert_array_equal(c.data * (1 - keep), 0.0)


@pytest.mark.parametrize("lower", [False, True])
def test_cho_solve_of_cho_factor_has_the_solve_gradient(lower):
    r = rng()
    a, b = _spd(r), r.standard_normal((3, 2))
    (ga, gb), w, x = grad(lambda a, b: linalg.cho_solve(linalg.cho_factor(a, lower), b), a, b)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-12)
    gb_expected = np.linalg.solve(a, w)
    ga_solve = -gb_expected @ x.T
    np.testing.assert_allclose(gb, gb_expected, rtol=1e-10)
    # cholesky factors the symmetric part of a, so the gradient is the symmetrised one
    np.testing.assert_allclose(ga, (ga_solve + ga_solve.T) / 2, rtol=1e-9, atol=1e-13)


def test_cho_solve_factor_gradient_reads_one_triangle_and_second_order():
    r = rng()
    a, b = _spd(r), r.standard_normal(3)
    low = np.linalg.cholesky(a)
    junk = low + np.triu(r.standard_normal((3, 3)), 1)   # as SciPy's cho_factor leaves it
    (gc, _), _, x = grad(lambda c, b: linalg.cho_solve((c, True), b), junk, b)
    np.testing.assert_allclose(x, np.linalg.solve(a, b), rtol=1e-12)
    assert np.all(gc[np.triu_indices(3, 1)] == 0) and np.any(gc != 0)
    check_grads(lambda c, b: linalg.cho_solve((c, True), b), junk, b, order=2)
    check_grads(lambda a: linalg.cho_solve(linalg.cho_factor(a), b), a, order=2)


# ------------------------------------------------------------------ sqrtm, expm, sylvester


def test_sqrtm_gradient_of_trace_is_half_the_inverse_root():
    a = _spd(rng())
    (ga,), _, _ = grad(lambda a: linalg.sqrtm(a), a)   # probe-weighted: finite differences
    check_grads(linalg.sqrtm, a, order=2)
    t = tg.tensor(a, requires_grad=True)
    np.trace(linalg.sqrtm(t)).backward()
    np.testing.assert_allclose(t.grad, 0.5 * np.linalg.inv(sl.sqrtm(a)).T, rtol=1e-10)


def test_sqrtm_of_a_non_symmetric_matrix_second_order():
    r = rng()
    a = r.uniform(-0.4, 0.4, (3, 3)) + 2 * np.eye(3)
    check_grads(linalg.sqrtm, a, order=2, modes=("rev", "fwd"))


@pytest.mark.parametrize("a", [-np.eye(2), np.array([[1.0, 2.0], [3.0, -4.0]])])
def test_sqrtm_refuses_a_complex_root(a):
    with pytest.raises(ValueError, match="no real principal square root"):
        linalg.sqrtm(tg.tensor(a, requires_grad=True))


def test_expm_gradient_closed_forms():
    r = rng()
    a = 0.5 * r.standard_normal((3, 3))
    t = tg.tensor(a, requires_grad=True)
    np.trace(linalg.expm(t)).backward()                  # d tr(e^A) = tr(e^A dA)
    np.testing.assert_allclose(t.grad, sl.expm(a).T, rtol=1e-10)
    (ga,), w, _ = grad(linalg.expm, a)
    np.testing.assert_allclose(ga, sl.expm_frechet(a.T, w, compute_expm=False), rtol=1e-9)
    d = np.array([0.3, -1.2])                            # diagonal: elementwise exp
    (gd,), w, out = grad(linalg.expm, np.diag(d))
    np.testing.assert_allclose(out, np.diag(np.exp(d)), rtol=1e-12)
    np.testing.assert_allclose(np.diag(gd), np.diag(w) * np.exp(d), rtol=1e-10)
    check_grads(linalg.expm, a, order=2, modes=("rev", "fwd"))


def test_solve_sylvester_gradients_solve_the_adjoint_equation():
    r = rng()
    a = r.uniform(-0.4, 0.4, (3, 3)) + 2 * np.eye(3)
    b = r.uniform(-0.4, 0.4, (2, 2)) + 1.5 * np.eye(2)
    q = r.standard_normal((3, 2))
    (ga, gb, gq), w, x = grad(linalg.solve_sylvester, a, b, q)
    np.testing.assert_allclose(a @ x + x @ b, q, atol=1e-12)
    np.testing.assert_allclose(a.T @ gq + gq @ b.T, w, atol=1e-12)
    np.testing.assert_allclose(ga, -gq @ x.T, rtol=1e-12)
    np.testing.assert_allclose(gb, -x.T @ gq, rtol=1e-12)
    check_grads(linalg.solve_sylvester, a, b, q, order=2)


# ------------------------------------------------------------------ scipy.signal


def _linear_gradient(f, x, w):
    """``d sum(w * f(x)) / dx`` for ``f`` linear in ``x``: ``f`` at each unit array."""
    out = np.zeros(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1.0
        out[i] = np.sum(w * f(e.reshape(x.shape)))
    return out.reshape(x.shape)


CONV_CASES = [((6,), (3,), "full"), ((6,), (3,), "same"), ((6,), (3,), "valid"),
              ((3,), (5,), "valid"), ((3,), (5,), "same"), ((4, 5), (2, 3), "same"),
              ((2, 3), (3, 4), "valid"), ((3, 3), (2, 2), "full")]


@pytest.mark.parametrize("mine,theirs", [(signal.convolve, ss.convolve),
                                         (signal.correlate, ss.correlate)])
@pytest.mark.parametrize("s1,s2,mode", CONV_CASES)
@pytest.mark.parametrize("method", ["direct", "fft"])
def test_convolve_and_correlate_gradients_are_the_transposed_maps(mine, theirs, s1, s2,
                                                                  mode, method):
    r = rng()
    x1, x2 = r.standard_normal(s1), r.standard_normal(s2)
    (g1, g2), w, out = grad(lambda a, b: mine(a, b, mode=mode, method=method), x1, x2)
    np.testing.assert_allclose(out, theirs(x1, x2, mode=mode, method=method), atol=1e-12)
    np.testing.assert_allclose(g1, _linear_gradient(
        lambda e: theirs(e, x2, mode=mode, method=method), x1, w), atol=1e-10)
    np.testing.assert_allclose(g2, _linear_gradient(
        lambda e: theirs(x1, e, mode=mode, method=method), x2, w), atol=1e-10)


@pytest.mark.parametrize("s1,s2,mode,axes", [((6,), (3,), "same", None),
                                             ((2, 3), (3, 4), "valid", None),
                                             ((2, 5), (1, 3), "same", 1),
                                             ((3, 2), (2, 2), "full", (0,))])
def test_fftconvolve_gradients_are_the_transposed_maps(s1, s2, mode, axes):
    r = rng()
    x1, x2 = r.standard_normal(s1), r.standard_normal(s2)
    (g1, g2), w, out = grad(lambda a, b: signal.fftconvolve(a, b, mode, axes), x1, x2)
    np.testing.assert_allclose(out, ss.fftconvolve(x1, x2, mode, axes), atol=1e-12)
    np.testing.assert_allclose(g1, _linear_gradient(
        lambda e: ss.fftconvolve(e, x2, mode, axes), x1, w), atol=1e-10)
    np.testing.assert_allclose(g2, _linear_gradient(
        lambda e: ss.fftconvolve(x1, e, mode, axes), x2, w), atol=1e-10)


def test_signal_second_order_through_both_inputs():
    r = rng()
    x1, x2 = r.standard_normal((3, 4)), r.standard_normal((2, 2))

    def f(a, b):     # not bilinear: second derivatives mix both inputs
        return signal.correlate(a * a, b, mode="same") * signal.fftconvolve(a, b * b, "same")

    check_grads(f, x1, x2, order=2, modes=("rev", "fwd"))
    check_grads(lambda a, b: signal.convolve(a, b, "valid") ** 2, x1, x2, order=2)


def test_float32_stays_float32():
    r = rng()
    for f, xs in [(linalg.expm, [r.standard_normal((2, 2))]),
                  (signal.fftconvolve, [r.standard_normal(5), r.standard_normal(3)])]:
        ts = [tg.tensor(x.astype(np.float32), requires_grad=True) for x in xs]
        out = f(*ts)
        assert out.dtype == np.float32
        out.sum().backward()
        assert all(t.grad.dtype == np.float32 for t in ts)
