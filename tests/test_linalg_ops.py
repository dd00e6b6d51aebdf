"""Products and np.linalg ops: forwards equal NumPy's, closed-form gradients, second order,
NumPy dispatch, and the decomposition rules of _decomp_rules against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.builtins import _decomp_rules as rules
from tapegrad.builtins.products import einsum
from tapegrad.errors import OpRuleError

RNG = np.random.default_rng(7)


def r(*shape):
    return RNG.standard_normal(shape)


def square(*shape):
    return 2.0 * np.eye(shape[-1]) + 0.5 * RNG.standard_normal(shape)


def spd(*shape):
    b = RNG.standard_normal(shape)
    return b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])


def grad_of(f, x):
    return tg.grad(f)(x)


# ----------------------------------------------------------------------- products


@pytest.mark.parametrize("a, b", [
    (r(4), r(4)), (r(3, 4), r(4, 2)), (r(3, 4), r(4)), (r(4), r(4, 3)),
    (r(2, 3, 4), r(4, 2)), (r(2, 3), r(2, 3, 2)), (r(2, 3), r()), (r(), r(3)),
])
def test_dot_forward_and_method_match_numpy(a, b):
    ta = tg.tensor(a, requires_grad=True)
    np.testing.assert_allclose(np.dot(ta, b).data, np.dot(a, b))
    np.testing.assert_allclose(ta.dot(b).data, a.dot(b))


def test_dot_gradient_of_matrix_product_is_closed_form():
    a, b = r(3, 4), r(4, 2)
    w = r(3, 2)
    ga = tg.grad(lambda x: (np.dot(x, b) * w).sum())(a)
    gb = tg.grad(lambda y: (np.dot(a, y) * w).sum())(b)
    np.testing.assert_allclose(ga, w @ b.T)
    np.testing.assert_allclose(gb, a.T @ w)


@pytest.mark.parametrize("fn, a, b", [
    (np.inner, r(2, 4), r(3, 4)), (np.outer, r(2, 2), r(3)), (np.vdot, r(2, 3), r(3, 2)),
    (np.tensordot, r(2, 3, 4), r(3, 4, 2)),
])
def test_products_dispatch_and_match_numpy(fn, a, b):
    out = fn(tg.tensor(a, requires_grad=True), tg.tensor(b))
    assert isinstance(out, tg.Tensor)
    np.testing.assert_allclose(out.data, fn(a, b))


@pytest.mark.parametrize("axes, sa, sb", [
    (2, (2, 3, 4), (3, 4, 2)), (1, (2, 3, 4), (4, 2)), (0, (2, 3), (4,)),
    (([1, 2], [2, 0]), (2, 3, 4), (4, 2, 3)), ((0, 1), (3, 2), (2, 3)),
])
def test_tensordot_every_axes_form(axes, sa, sb):
    a, b = r(*sa), r(*sb)
    np.testing.assert_allclose(np.tensordot(tg.tensor(a), b, axes).data,
                               np.tensordot(a, b, axes))
    tg.check_grads(lambda x, y: np.tensordot(x, y, axes=axes), a, b, order=2)


def test_tensordot_gradient_is_closed_form():
    a, b, w = r(2, 3, 4), r(4, 3, 5), r(2, 5)
    ga = tg.grad(lambda x: (np.tensordot(x, b, axes=([1, 2], [1, 0])) * w).sum())(a)
    np.testing.assert_allclose(ga, np.einsum("ik,jlk->ilj", w, b))


@pytest.mark.parametrize("subscripts, shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),                   # implicit output
    ("ii->i", [(3, 3)]),                           # diagonal
    ("ii", [(3, 3)]),                              # trace
    ("ji", [(2, 3)]),                              # implicit transpose
    ("ij->", [(2, 3)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 2)]),
    ("...ij,...jk", [(1, 2, 3), (2, 3, 2)]),       # broadcast ellipsis, implicit
    ("i...j->...i", [(2, 4, 3)]),
    ("i,ij,j->", [(3,), (3, 2), (2,)]),            # three operands
    ("iij,j->ij", [(2, 2, 3), (3,)]),
    ("bij,bjk,bkl->bil", [(2, 2, 3), (2, 3, 2), (2, 2, 2)]),
    ("Ab,bA", [(2, 3), (3, 2)]),                   # upper-case labels, implicit
])
def test_einsum_subscript_forms(subscripts, shapes):
    xs = [r(*s) for s in shapes]
    out = einsum(subscripts, *[tg.tensor(x) for x in xs])
    np.testing.assert_allclose(out.data, np.einsum(subscripts, *xs))
    np.testing.assert_allclose(tg.ops.einsum(xs, subscripts).data, np.einsum(subscripts, *xs))
    tg.check_grads(lambda *ts: einsum(subscripts, *ts), *xs, order=2)


def test_einsum_diagonal_gradient_lands_on_the_diagonal():
    x = r(3, 3)
    w = np.array([1.0, 2.0, 3.0])
    g = tg.grad(lambda t: (einsum("ii->i", t) * w).sum())(x)
    np.testing.assert_array_equal(g, np.diag(w))
    np.testing.assert_array_equal(tg.grad(lambda t: einsum("ii", t))(x), np.eye(3))


def test_einsum_gradient_of_operand_is_einsum_of_the_others():
    a, b, c = r(2, 3), r(3, 4), r(4, 2)
    g = tg.grad(lambda t: einsum("ij,jk,ki->", a, t, c))(b)
    np.testing.assert_allclose(g, np.einsum("ij,ki->jk", a, c))


def test_cross_axis_params_and_gradient():
    a, b = r(3, 2), r(2, 3)
    out = np.cross(tg.tensor(a), tg.tensor(b), axisa=0)
    np.testing.assert_allclose(out.data, np.cross(a, b, axisa=0))
    u, v, w = r(3), r(3), r(3)
    np.testing.assert_allclose(tg.grad(lambda t: (np.cross(t, v) * w).sum())(u),
                               np.cross(v, w))
    tg.check_grads(lambda s, t: np.cross(s, t, axis=0), r(3, 2), r(3, 2), order=2)


def test_multi_dot_variadic_matches_numpy_and_chain_rule():
    xs = [r(3), r(3, 4), r(4, 2), r(2)]
    out = np.linalg.multi_dot([tg.tensor(x) for x in xs])
    np.testing.assert_allclose(out.data, np.linalg.multi_dot(xs))
    g = tg.grad(lambda t: np.linalg.multi_dot([xs[0], t, xs[2], xs[3]]))(xs[1])
    np.testing.assert_allclose(g, np.outer(xs[0], xs[2] @ xs[3]))
    tg.check_grads(lambda *ts: np.linalg.multi_dot(list(ts)), r(2, 3), r(3, 3), r(3, 2),
                   order=2)


# ----------------------------------------------------------------------- linalg


def test_inv_gradient_closed_form_batched():
    a, w = square(2, 3, 3), r(2, 3, 3)
    ai = np.linalg.inv(a)
    np.testing.assert_allclose(np.linalg.inv(tg.tensor(a)).data, ai)
    g = grad_of(lambda t: (np.linalg.inv(t) * w).sum(), a)
    np.testing.assert_allclose(g, -np.swapaxes(ai, -1, -2) @ w @ np.swapaxes(ai, -1, -2))


def test_det_gradient_closed_form_and_log_abs_det():
    a = square(3, 3)
    d = np.linalg.det(a)
    np.testing.assert_allclose(np.linalg.det(tg.tensor(a)).item(), d)
    np.testing.assert_allclose(grad_of(np.linalg.det, a), d * np.linalg.inv(a).T)
    logabs = lambda t: tg.ops.log(tg.ops.abs(np.linalg.det(t)))
    np.testing.assert_allclose(grad_of(logabs, a), np.linalg.inv(a).T)


def test_det_batched_second_order():
    tg.check_grads(np.linalg.det, square(2, 3, 3), order=2)


def test_det_gradient_at_a_singular_matrix_raises():
    a = np.array([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(OpRuleError, match="det.*Singular matrix"):
        grad_of(np.linalg.det, a)


@pytest.mark.parametrize("sa, sb", [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 2)),
                                    ((2, 3, 3), (3,))])
def test_solve_vector_matrix_and_batched(sa, sb):
    a, b = square(*sa), r(*sb)
    np.testing.assert_allclose(np.linalg.solve(tg.tensor(a), tg.tensor(b)).data,
                               np.linalg.solve(a, b))
    tg.check_grads(np.linalg.solve, a, b, order=2)


def test_solve_gradient_closed_form():
    a, b, w = square(3, 3), r(3), r(3)
    x = np.linalg.solve(a, b)
    lam = np.linalg.solve(a.T, w)
    np.testing.assert_allclose(tg.grad(lambda t: (np.linalg.solve(a, t) * w).sum())(b), lam)
    np.testing.assert_allclose(tg.grad(lambda t: (np.linalg.solve(t, b) * w).sum())(a),
                               -np.outer(lam, x))


def test_cholesky_matches_numpy_and_symmetric_gradient():
    a = spd(2, 3, 3)
    np.testing.assert_array_equal(np.linalg.cholesky(tg.tensor(a)).data, np.linalg.cholesky(a))
    np.testing.assert_allclose(np.linalg.cholesky(tg.tensor(a), upper=True).data,
                               np.linalg.cholesky(a, upper=True))
    g = grad_of(lambda t: np.linalg.cholesky(t).sum(), a)
    np.testing.assert_allclose(g, np.swapaxes(g, -1, -2))
    # log det A = 2 sum log diag(L): its gradient is inv(A) (symmetric)
    logdet = lambda t: 2 * tg.ops.log(einsum("...ii->...i", np.linalg.cholesky(t))).sum()
    np.testing.assert_allclose(grad_of(logdet, a), np.linalg.inv(a), atol=1e-12)
    tg.check_grads(lambda t: np.linalg.cholesky(t, upper=True), spd(3, 3), order=2)


def test_pinv_matches_numpy_and_inverse_when_square():
    a = r(3, 2)
    np.testing.assert_allclose(np.linalg.pinv(tg.tensor(a)).data, np.linalg.pinv(a))
    tg.check_grads(np.linalg.pinv, r(2, 3, 2), order=2)
    s = square(3, 3)
    np.testing.assert_allclose(grad_of(lambda t: np.linalg.pinv(t).sum(), s),
                               grad_of(lambda t: np.linalg.inv(t).sum(), s))


@pytest.mark.parametrize("n", [0, 1, 3, -1, -2])
def test_matrix_power_including_negative(n):
    a = square(3, 3) / 2
    np.testing.assert_allclose(np.linalg.matrix_power(tg.tensor(a), n).data,
                               np.linalg.matrix_power(a, n))
    tg.check_grads(lambda t: np.linalg.matrix_power(t, n), a, order=2)


def test_matrix_power_two_closed_form():
    a, w = r(3, 3), r(3, 3)
    g = tg.grad(lambda t: (np.linalg.matrix_power(t, 2) * w).sum())(a)
    np.testing.assert_allclose(g, w @ a.T + a.T @ w)


# ----------------------------------------------------------------------- norm

VEC = np.array([0.7, -1.9, 0.4, 1.2, -0.9])
MAT = np.array([[1.0, -2.0, 0.5, 0.9], [0.3, 1.4, -0.8, 2.2], [-1.1, 0.6, 1.7, -0.4]])


@pytest.mark.parametrize("x, kw", [
    (VEC, {}), (VEC, {"ord": 1}), (VEC, {"ord": 2}), (VEC, {"ord": np.inf}),
    (VEC, {"ord": -np.inf}), (VEC, {"ord": 3}), (VEC, {"ord": 0.5}), (VEC, {"ord": -1.5}),
    (MAT, {}), (MAT, {"ord": "fro"}), (MAT, {"ord": "nuc"}), (MAT, {"ord": 2}),
    (MAT, {"ord": -2}), (MAT, {"ord": 1}), (MAT, {"ord": -1}), (MAT, {"ord": np.inf}),
    (MAT, {"ord": -np.inf}), (MAT, {"axis": 1, "keepdims": True}),
    (MAT[None] * [[[1.0]], [[0.5]]], {"ord": 2, "axis": (2, 1)}),
    (MAT[None] * [[[1.0]], [[0.5]]], {"ord": 1, "axis": (0, 2), "keepdims": True}),
])
def test_norm_forms_match_numpy_and_finite_differences(x, kw):
    np.testing.assert_allclose(np.linalg.norm(tg.tensor(x), **kw).data,
                               np.linalg.norm(x, **kw))
    tg.check_grads(lambda t: np.linalg.norm(t, **kw), x, order=2)


def test_norm_gradient_closed_forms():
    np.testing.assert_allclose(grad_of(np.linalg.norm, VEC), VEC / np.linalg.norm(VEC))
    np.testing.assert_allclose(grad_of(lambda t: np.linalg.norm(t, 1), VEC), np.sign(VEC))
    u, _, vt = np.linalg.svd(MAT, full_matrices=False)
    np.testing.assert_allclose(grad_of(lambda t: np.linalg.norm(t, "nuc"), MAT), u @ vt)
    np.testing.assert_allclose(grad_of(lambda t: np.linalg.norm(t, 2), MAT),
                               np.outer(u[:, 0], vt[0]))


def test_norm_at_zero_has_zero_gradient_not_nan():
    for x, kw in [(np.zeros(3), {}), (np.zeros(3), {"ord": 2}), (np.zeros((2, 2)), {}),
                  (np.zeros((2, 2)), {"ord": "fro"}), (np.zeros((2, 2)), {"ord": 2}),
                  (np.zeros((2, 2)), {"ord": "nuc"})]:
        g = grad_of(lambda t, kw=kw: np.linalg.norm(t, **kw), x)
        np.testing.assert_array_equal(g, np.zeros_like(x))
    g = tg.grad(lambda t: np.linalg.norm(t, axis=1).sum())(np.array([[0.0, 0.0], [3.0, 4.0]]))
    np.testing.assert_allclose(g, [[0.0, 0.0], [0.6, 0.8]])


def test_svdvals_gradient_and_third_order():
    a = r(3, 2)
    np.testing.assert_allclose(np.linalg.svdvals(tg.tensor(a)).data, np.linalg.svdvals(a))
    u, _, vt = np.linalg.svd(a, full_matrices=False)
    w = np.array([1.0, -2.0])
    g = tg.grad(lambda t: (np.linalg.svdvals(t) * w).sum())(a)
    np.testing.assert_allclose(g, u @ np.diag(w) @ vt)
    tg.check_grads(np.linalg.svdvals, r(2, 2, 3), order=3, modes=("rev",))


def test_unsupported_numpy_linalg_function_names_itself():
    with pytest.raises(TypeError, match="tensorinv"):
        np.linalg.tensorinv(tg.tensor(square(2, 2), requires_grad=True), ind=1)


# ----------------------------------------------------------------------- decomposition rules


def numeric(f, a, eps=1e-6):
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


def _signs(v):
    """Columns' signs fixed by their first row: a locally constant choice."""
    return np.sign(v[..., :1, :])


def test_slogdet_vjp():
    a, gl = square(2, 3, 3), r(2)
    sign, logdet = np.linalg.slogdet(a)
    np.testing.assert_allclose(rules.slogdet_vjp(None, gl, sign, logdet, a),
                               numeric(lambda x: np.sum(gl * np.linalg.slogdet(x)[1]), a),
                               atol=1e-7)


def test_eigh_vjp():
    b = r(2, 3, 3)
    a = b + np.swapaxes(b, -1, -2)
    gw, gv = r(2, 3), r(2, 3, 3)
    w, v = np.linalg.eigh(a)

    def f(x):
        w, v = np.linalg.eigh(x)
        return np.sum(gw * w) + np.sum(gv * v * _signs(v))

    np.testing.assert_allclose(rules.eigh_vjp(gw, gv * _signs(v), w, v, a), numeric(f, a),
                               atol=1e-7)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (2, 3, 3)])
def test_svd_and_qr_vjps(shape):
    a = r(*shape)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    gu, gs, gvh = r(*u.shape), r(*s.shape), r(*vh.shape)

    def f(x):
        u, s, vh = np.linalg.svd(x, full_matrices=False)
        sg = _signs(u)
        return np.sum(gu * u * sg) + np.sum(gs * s) + np.sum(gvh * vh * np.swapaxes(sg, -1, -2))

    sg = _signs(u)
    np.testing.assert_allclose(
        rules.svd_vjp(gu * sg, gs, gvh * np.swapaxes(sg, -1, -2), u, s, vh, a),
        numeric(f, a), atol=1e-7)
    q, rr = np.linalg.qr(a)
    gq, gr = r(*q.shape), r(*rr.shape)

    def fq(x):
        q, rr = np.linalg.qr(x)
        return np.sum(gq * q) + np.sum(gr * rr)

    np.testing.assert_allclose(rules.qr_vjp(gq, gr, q, rr, a), numeric(fq, a), atol=1e-7)
    np.testing.assert_allclose(rules.qr_vjp(None, gr, q, rr, a),
                               numeric(lambda x: np.sum(gr * np.linalg.qr(x)[1]), a), atol=1e-7)


def test_eig_vjp_real_eigenvalues():
    a = np.diag([1.0, 2.5, 4.0]) + 0.2 * r(3, 3)
    e, u = np.linalg.eig(a)
    assert e.dtype.kind == "f"
    order = np.argsort(e)
    e, u = e[order], u[:, order]
    ge, gu = r(3), r(3, 3)

    def f(x):
        e, u = np.linalg.eig(x)
        o = np.argsort(e)
        return np.sum(ge * e[o]) + np.sum(gu * u[:, o] * _signs(u[:, o]))

    np.testing.assert_allclose(rules.eig_vjp(ge, gu * _signs(u), e, u, a), numeric(f, a),
                               atol=1e-7)
