"""Ops with several outputs: the np.linalg decompositions (slogdet, eigh, eig, svd, qr and
their value-only relatives), the np.split family, broadcast_arrays, np.gradient over
several axes, atleast_Nd of several arrays, and divmod.

Closed-form gradients, NumPy's forwards and result types, stacked inputs, second order."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(21)


def r(*shape):
    return RNG.standard_normal(shape)


def square(*shape):
    return 2.0 * np.eye(shape[-1]) + 0.5 * RNG.standard_normal(shape)


def symmetric(*shape, values=(-1.5, 0.5, 2.0)):
    q, _ = np.linalg.qr(RNG.standard_normal(shape))
    return (q * np.asarray(values[:shape[-1]])) @ np.swapaxes(q, -1, -2)


def real_spectrum(n=3, values=(-1.0, 0.5, 2.0)):
    p = square(n, n)
    return p @ np.diag(values[:n]) @ np.linalg.inv(p)


def both_tracked(fn, *args, **kwargs):
    return fn(*[tg.tensor(a, requires_grad=True) for a in args], **kwargs)


def assert_same_result(res, want):
    """A NumPy (named) tuple of Tensors holding NumPy's values."""
    assert type(res) is type(want)
    assert len(res) == len(want)
    for t, w in zip(res, want, strict=True):
        assert isinstance(t, tg.Tensor)
        np.testing.assert_allclose(t.data, w, atol=1e-12)


# ----------------------------------------------------------------------- slogdet


@pytest.mark.parametrize("a", [square(3, 3), -square(3, 3)[[1, 0, 2]], square(2, 3, 3)])
def test_slogdet_forward_type_and_logdet_gradient_is_inverse_transpose(a):
    res = both_tracked(np.linalg.slogdet, a)
    assert_same_result(res, np.linalg.slogdet(a))
    assert res.sign.data.size and res.logabsdet.requires_grad
    g = tg.grad(lambda t: np.linalg.slogdet(t).logabsdet.sum())(a)
    np.testing.assert_allclose(g, np.linalg.inv(a).swapaxes(-1, -2), atol=1e-12)
    # the sign is locally constant: no gradient at all
    assert not np.any(tg.grad(lambda t: np.linalg.slogdet(t)[0].sum() * 1.0)(a))
    tg.check_grads(lambda t: np.linalg.slogdet(t)[1], a, order=2)


# ----------------------------------------------------------------------- eigh, eigvalsh


@pytest.mark.parametrize("UPLO", ["L", "U"])
def test_eigh_eigenvalue_gradient_is_v_vT_on_the_triangle_read(UPLO):
    a = symmetric(3, 3)
    res = both_tracked(np.linalg.eigh, a, UPLO=UPLO)
    assert_same_result(res, np.linalg.eigh(a, UPLO=UPLO))
    _, v = np.linalg.eigh(a)
    k = 1
    g = tg.grad(lambda t: np.linalg.eigh(t, UPLO=UPLO).eigenvalues[k])(a)
    full = np.outer(v[:, k], v[:, k])
    tri = np.tril if UPLO == "L" else np.triu
    # NumPy reads one triangle: an off-diagonal entry there counts twice, the other none
    np.testing.assert_allclose(g, tri(2 * full) - np.diag(np.diag(full)), atol=1e-12)
    g2 = tg.grad(lambda t: np.linalg.eigvalsh(t, UPLO)[k])(a)
    np.testing.assert_allclose(g2, g, atol=1e-12)


def test_eigh_second_order_stacked_and_sign_invariant_vectors():
    a = symmetric(2, 3, 3)
    w = r(2, 3, 3)
    tg.check_grads(lambda t: np.linalg.eigh(t)[0], a, order=2)
    # a function of the vectors that no sign choice can change
    tg.check_grads(lambda t: (np.linalg.eigh(t)[1] ** 2 * w).sum(), a, order=2)
    np.testing.assert_allclose(np.linalg.eigvalsh(tg.tensor(a)).data, np.linalg.eigvalsh(a))


def test_eigh_uses_only_eigenvalues_without_nan_at_a_repeated_eigenvalue():
    a = np.diag([1.0, 1.0, 3.0])
    g = tg.grad(lambda t: np.linalg.eigh(t)[0].sum())(a)    # the trace: gradient I
    np.testing.assert_allclose(g, np.eye(3), atol=1e-12)


# ----------------------------------------------------------------------- eig, eigvals


def test_eig_real_spectrum_forward_and_eigenvalue_gradient():
    a = real_spectrum()
    res = both_tracked(np.linalg.eig, a)
    assert_same_result(res, np.linalg.eig(a))
    e, u = np.linalg.eig(a)
    left = np.linalg.inv(u)                        # rows: left eigenvectors
    k = int(np.argmax(e))
    g = tg.grad(lambda t: np.linalg.eig(t).eigenvalues[k])(a)
    np.testing.assert_allclose(g, np.outer(left[k], u[:, k]), atol=1e-10)
    g2 = tg.grad(lambda t: np.linalg.eigvals(t)[k])(a)
    np.testing.assert_allclose(g2, g, atol=1e-10)
    tg.check_grads(lambda t: np.linalg.eig(t)[1], a, order=2)


def test_eig_complex_spectrum_of_a_real_matrix():
    a = np.array([[1.0, -2.0, 0.3], [2.0, 1.0, 0.0], [0.1, 0.2, -1.0]])
    e, u = np.linalg.eig(a)
    assert e.dtype.kind == "c"
    res = both_tracked(np.linalg.eig, a)
    assert_same_result(res, np.linalg.eig(a))
    tg.check_grads(lambda t: np.linalg.eigvals(t), a, order=2)
    # the vectors' phases are LAPACK's convention: check phase-invariant functions
    tg.check_grads(lambda t: abs(np.linalg.eig(t)[1]) ** 2, a)
    tg.check_grads(lambda t: np.linalg.eig(t)[0].real * np.linalg.eig(t)[0].imag, a)


# ----------------------------------------------------------------------- svd


@pytest.mark.parametrize("shape", [(3, 2), (2, 3), (3, 3), (2, 3, 2)])
@pytest.mark.parametrize("full", [True, False])
def test_svd_forward_type_and_singular_value_gradient_is_u_vT(shape, full):
    a = r(*shape)
    res = both_tracked(np.linalg.svd, a, full_matrices=full)
    assert_same_result(res, np.linalg.svd(a, full_matrices=full))
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    w = r(*s.shape)
    g = tg.grad(lambda t: (np.linalg.svd(t, full_matrices=full).S * w).sum())(a)
    np.testing.assert_allclose(g, (u * w[..., None, :]) @ vh, atol=1e-12)


def test_svd_vectors_second_order_and_compute_uv_false():
    a = r(3, 2)
    tg.check_grads(lambda t: np.linalg.svd(t, full_matrices=False)[0], a, order=2)
    tg.check_grads(lambda t: np.linalg.svd(t, full_matrices=False).Vh, a.T, order=2)
    s = np.linalg.svd(tg.tensor(a, requires_grad=True), compute_uv=False)
    assert isinstance(s, tg.Tensor)
    np.testing.assert_allclose(s.data, np.linalg.svd(a, compute_uv=False))
    tg.check_grads(lambda t: np.linalg.svd(t, compute_uv=False), a, order=2)


def test_svd_hermitian_reads_the_symmetric_part():
    sym = symmetric(3, 3, values=(-2.0, 0.5, 1.2))
    res = both_tracked(np.linalg.svd, sym, hermitian=True)
    assert_same_result(res, np.linalg.svd(sym, hermitian=True))
    s = np.linalg.svd(tg.tensor(sym), compute_uv=False, hermitian=True)
    np.testing.assert_allclose(s.data, np.linalg.svd(sym, compute_uv=False, hermitian=True))
    g = tg.grad(lambda t: np.linalg.svd(t, hermitian=True)[1][0])(sym)
    np.testing.assert_allclose(g, g.T, atol=1e-12)


def test_full_svd_extra_columns_have_no_gradient():
    a = r(3, 2)
    u = np.linalg.svd(a)[0]
    g = tg.grad(lambda t: np.linalg.svd(t).U[:, :2].sum())(a)   # the unique columns: fine
    np.testing.assert_allclose(
        g, tg.grad(lambda t: np.linalg.svd(t, full_matrices=False).U.sum())(a))
    assert u.shape == (3, 3)
    with pytest.raises(tg.DifferentiabilityError, match="not unique"):
        tg.grad(lambda t: np.linalg.svd(t).U.sum())(a)
    with pytest.raises(tg.DifferentiabilityError, match="not unique"):
        tg.grad(lambda t: np.linalg.svd(t).Vh.sum())(a.T)


# ----------------------------------------------------------------------- qr


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 4, 3)])
def test_qr_forward_type_reconstructs_and_second_order(shape):
    a = r(*shape)
    res = both_tracked(np.linalg.qr, a)
    assert_same_result(res, np.linalg.qr(a))
    np.testing.assert_allclose((res.Q @ res.R).data, a, atol=1e-12)
    # Q R = a for every input: its gradient is that of the identity
    w = r(*shape)
    np.testing.assert_allclose(tg.grad(lambda t: ((lambda q, rr: q @ rr)(*np.linalg.qr(t))
                                                  * w).sum())(a), w, atol=1e-10)
    tg.check_grads(lambda t: np.linalg.qr(t)[0], a, order=2)
    tg.check_grads(lambda t: np.linalg.qr(t)[1], a, order=2)


def test_qr_modes():
    a = r(4, 3)
    rr = np.linalg.qr(tg.tensor(a, requires_grad=True), mode="r")
    assert isinstance(rr, tg.Tensor)
    np.testing.assert_allclose(rr.data, np.linalg.qr(a, mode="r"))
    tg.check_grads(lambda t: np.linalg.qr(t, mode="r"), a, order=2)
    res = both_tracked(np.linalg.qr, a, mode="complete")
    assert_same_result(res, np.linalg.qr(a, mode="complete"))
    g = tg.grad(lambda t: np.linalg.qr(t, mode="complete").R.sum())(a)
    np.testing.assert_allclose(g, tg.grad(lambda t: np.linalg.qr(t).R.sum())(a))
    with pytest.raises(tg.DifferentiabilityError, match="not unique"):
        tg.grad(lambda t: np.linalg.qr(t, mode="complete").Q.sum())(a)
    tg.check_grads(lambda t: np.linalg.qr(t, "complete")[0], a.T, order=2)   # m <= n
    with pytest.raises(ValueError, match="raw"):
        np.linalg.qr(tg.tensor(a, requires_grad=True), mode="raw")


# ----------------------------------------------------------------------- the split family

X = r(4, 6, 2)


@pytest.mark.parametrize("fn, args", [
    (np.split, (2,)), (np.split, (3, 1)), (np.split, ([1, 4], 1)), (np.split, ([2, 1, 9], -2)),
    (np.array_split, (3,)), (np.array_split, (4, 1)), (np.array_split, ([5], 1)),
    (np.hsplit, (2,)), (np.hsplit, ([1, 5],)), (np.vsplit, (2,)), (np.vsplit, ([3],)),
    (np.dsplit, (2,)), (np.dsplit, ([1],)),
])
def test_split_family_forward_and_gradients_reassemble(fn, args):
    x = tg.tensor(X, requires_grad=True)
    pieces = fn(x, *args)
    want = fn(X, *args)
    assert type(pieces) is list and len(pieces) == len(want)
    for p, w in zip(pieces, want, strict=True):
        assert isinstance(p, tg.Tensor) and p.shape == w.shape
        np.testing.assert_array_equal(p.data, w)
    # weighting piece k by k + 1 gives each input element the weight of its piece
    weights = [np.full(w.shape, k + 1.0) for k, w in enumerate(want)]
    sum(((p * wk).sum() for p, wk in zip(pieces, weights, strict=True)), 0.0).backward()
    expected = np.zeros(X.shape)
    for k, w in enumerate(fn(np.arange(X.size).reshape(X.shape), *args)):
        np.add.at(expected.reshape(-1), w.ravel(), k + 1.0)    # unsorted cuts overlap
    np.testing.assert_array_equal(x.grad, expected)


def test_split_second_order_and_numpys_errors():
    x = r(6)
    tg.check_grads(lambda t: np.split(t, [2, 3])[0] ** 3 + np.split(t, [2, 4], axis=0)[2] ** 2, x,
                   order=2)
    t = tg.tensor(x, requires_grad=True)
    with pytest.raises(ValueError, match="equal division"):
        np.split(t, 4)
    with pytest.raises(ValueError, match="2 or more dimensions"):
        np.vsplit(t, 2)
    assert len(np.array_split(t, 4)) == 4


# ----------------------------------------------------------------------- several arrays


def test_broadcast_arrays_gives_tensors_of_the_common_shape_summing_back():
    a = tg.tensor(r(3, 1), requires_grad=True)
    b = tg.tensor(r(4), requires_grad=True)
    res = np.broadcast_arrays(a, b, np.ones((2, 1, 1)))
    want = np.broadcast_arrays(a.data, b.data, np.ones((2, 1, 1)))
    assert type(res) is type(want) and len(res) == 3
    for t, w in zip(res, want, strict=True):
        np.testing.assert_array_equal(t.data, w)
    (res[0] * res[1] * 2.0).sum().backward()
    np.testing.assert_allclose(a.grad, 2 * 2.0 * b.data.sum() * np.ones((3, 1)))
    np.testing.assert_allclose(b.grad, 2 * 2.0 * a.data.sum() * np.ones(4))


def test_np_gradient_over_several_axes_is_a_tuple_with_its_gradients():
    m = r(3, 4)
    res = np.gradient(tg.tensor(m, requires_grad=True), 0.5, edge_order=2)
    want = np.gradient(m, 0.5, edge_order=2)
    assert type(res) is type(want) and len(res) == 2
    for t, w in zip(res, want, strict=True):
        np.testing.assert_allclose(t.data, w)
    res = np.gradient(tg.tensor(m), 2.0, 0.5)
    for t, w in zip(res, np.gradient(m, 2.0, 0.5), strict=True):
        np.testing.assert_allclose(t.data, w)
    one = np.gradient(tg.tensor(m), axis=(1,))
    np.testing.assert_allclose(one.data, np.gradient(m, axis=(1,)))
    tg.check_grads(lambda t: np.gradient(t, 0.5, axis=(0, 1))[1] * np.gradient(t)[0], m,
                   order=2)
    with pytest.raises(TypeError, match="invalid number"):
        np.gradient(tg.tensor(m, requires_grad=True), 1.0, 2.0, 3.0)


@pytest.mark.parametrize("fn", [np.atleast_1d, np.atleast_2d, np.atleast_3d])
def test_atleast_nd_of_several_arrays(fn):
    xs = [r(), r(3), r(2, 3)]
    res = fn(*[tg.tensor(x, requires_grad=True) for x in xs])
    want = fn(*xs)
    assert type(res) is type(want) is tuple
    for t, w in zip(res, want, strict=True):
        np.testing.assert_array_equal(t.data, w)
    ts = [tg.tensor(x, requires_grad=True) for x in xs]
    sum((o.sum() * k for k, o in enumerate(fn(*ts), 1)), 0.0).backward()
    for k, t in enumerate(ts, 1):
        np.testing.assert_array_equal(t.grad, np.full(t.shape, float(k)))


# ----------------------------------------------------------------------- divmod


def test_divmod_operator_and_ufunc_give_floor_divide_and_remainder():
    a, b = np.array([5.5, -3.2, 7.25]), np.array([2.0, 1.5, -2.5])
    x = tg.tensor(a, requires_grad=True)
    y = tg.tensor(b, requires_grad=True)
    for got, want in ((divmod(x, y), np.divmod(a, b)), (np.divmod(x, y), np.divmod(a, b)),
                      (divmod(x, 2.0), np.divmod(a, 2.0)), (divmod(a, y), np.divmod(a, b)),
                      (divmod(3.0, y), np.divmod(3.0, b))):
        assert type(got) is tuple and len(got) == 2
        np.testing.assert_allclose(got[0].data, want[0])
        np.testing.assert_allclose(got[1].data, want[1])
    q, m = divmod(x, y)
    (q * 10.0 + m * 3.0).sum().backward()          # the quotient contributes nothing
    np.testing.assert_allclose(x.grad, 3.0 * np.ones(3))
    np.testing.assert_allclose(y.grad, -3.0 * np.floor(a / b))
    tg.check_grads(lambda s, t: divmod(s, t)[1] ** 2, a, b, order=2)
