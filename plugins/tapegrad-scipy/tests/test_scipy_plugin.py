"""tapegrad-scipy: forwards against SciPy, every op against finite differences (first and
second order), closed-form derivatives, the stats functions against scipy.stats and
their gradients in every argument, registration and provenance."""

import math
import re
from importlib import metadata

import numpy as np
import pytest

sp = pytest.importorskip("scipy.special")
ss = pytest.importorskip("scipy.stats")
pytest.importorskip("tapegrad_scipy")

from tapegrad_scipy import special, stats  # noqa: E402
from tapegrad_scipy.plugin import SPEC_FILE  # noqa: E402

import tapegrad as tg  # noqa: E402
from tapegrad import spec as specmod  # noqa: E402
from tapegrad.gradcheck import check_grads, check_op, op_samples  # noqa: E402

PY_OPS = ["polygamma", "multigammaln", "yn", "linsolve", "matinv", "logabsdet"]
YAML_OPS = [u for u in special.UFUNCS if u != "yn"]
ALL_OPS = sorted(PY_OPS + YAML_OPS)
# scipy.linalg and scipy.signal ops: checked in test_scipy_linalg_signal.py
LINALG_SIGNAL_OPS = ["solve_triangular", "cho_solve", "solve_sylvester", "sqrtm", "expm",
                     "signal_convolve", "signal_correlate", "fftconvolve"]


def value(t):
    return t.data if isinstance(t, tg.Tensor) else np.asarray(t)


# ------------------------------------------------------------------ registration


def test_ops_are_registered_with_their_provenance():
    mine = sorted(i.name for i in tg.list_ops() if i.plugin == "scipy")
    assert mine == sorted(ALL_OPS + LINALG_SIGNAL_OPS)
    for name in YAML_OPS:
        assert tg.get_op(name).source == str(SPEC_FILE)
    for name in PY_OPS + LINALG_SIGNAL_OPS:
        assert tg.get_op(name).source == "scipy"


def test_shipped_spec_header_documents_every_field():
    text = SPEC_FILE.read_text()
    header = text[:text.index("\nops:")]
    assert header.startswith("# tapegrad op spec")
    for field in specmod.OP_FIELDS:
        assert re.search(rf"#\s+{field}:", header), field


def test_entry_point_is_declared_when_installed():
    try:
        dist = metadata.distribution("tapegrad-scipy")
    except metadata.PackageNotFoundError:
        pytest.skip("tapegrad-scipy is not installed (pip install ./plugins/tapegrad-scipy)")
    eps = [ep for ep in dist.entry_points if ep.group == "tapegrad"]
    assert [(ep.name, ep.value) for ep in eps] == [("scipy", "tapegrad_scipy.plugin")]
    from importlib.resources import files  # an editable install lists no package files

    assert (files("tapegrad_scipy") / "special.yaml").is_file()


# ------------------------------------------------------------------ forwards and dispatch


@pytest.mark.parametrize("name", special.UFUNCS)
def test_ufunc_forward_is_scipys_and_scipy_dispatches_to_the_op(name):
    info = tg.get_op(name)
    ufunc = getattr(sp, name)
    assert ufunc in info.definition.implements
    for inputs, params in op_samples(info, np.random.default_rng(0)):
        expected = ufunc(*inputs)
        np.testing.assert_array_equal(info.call(*inputs, **params).data, expected)
        np.testing.assert_array_equal(getattr(special, name)(*inputs).data, expected)
        ts = [tg.tensor(a, requires_grad=i not in info.definition.nondiff)
              for i, a in enumerate(inputs)]
        out = ufunc(*ts)                                  # SciPy's ufunc on Tensors
        assert isinstance(out, tg.Tensor) and out.requires_grad
        np.testing.assert_array_equal(out.data, expected)


def test_psi_is_digamma_and_python_functions_match_scipy():
    x = np.linspace(0.3, 4.0, 9)
    t = tg.tensor(x, requires_grad=True)
    np.testing.assert_array_equal(sp.psi(t).data, sp.psi(x))
    np.testing.assert_array_equal(special.psi(x).data, sp.psi(x))
    n = np.array([0, 1, 2, 3, 0, 1, 2, 3, 1])
    np.testing.assert_allclose(special.polygamma(n, x).data, sp.polygamma(n, x), rtol=1e-15)
    for d in (1, 2, 4):
        a = x + 2
        np.testing.assert_allclose(special.multigammaln(a, d).data, sp.multigammaln(a, d),
                                   rtol=1e-14)
    k = np.array([0, 1, 3])
    np.testing.assert_array_equal(sp.yn(k, tg.tensor(x[:3], requires_grad=True)).data,
                                  sp.yn(k, x[:3]))


def test_softmax_family_matches_scipy():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(3, 4)), rng.uniform(-1, 1, (3, 4))
    for axis in (None, 0, 1, (0, 1)):
        for keepdims in (False, True):
            kw = {"axis": axis, "keepdims": keepdims}
            np.testing.assert_allclose(special.logsumexp(a, **kw).data, sp.logsumexp(a, **kw))
            np.testing.assert_allclose(special.logsumexp(a, b=abs(b), **kw).data,
                                       sp.logsumexp(a, b=abs(b), **kw))
            out, sign = special.logsumexp(a, b=b, return_sign=True, **kw)
            ref, ref_sign = sp.logsumexp(a, b=b, return_sign=True, **kw)
            np.testing.assert_allclose(out.data, ref)
            np.testing.assert_array_equal(sign, ref_sign)
        np.testing.assert_allclose(special.softmax(a, axis=axis).data, sp.softmax(a, axis=axis))
        np.testing.assert_allclose(special.log_softmax(a, axis=axis).data,
                                   sp.log_softmax(a, axis=axis))
    big = np.array([1000.0, 1000.0])
    np.testing.assert_allclose(special.logsumexp(big, b=[1.0, 3.0]).data, 1000 + math.log(4))


# ------------------------------------------------------------------ gradients of ops


@pytest.mark.parametrize("name", ALL_OPS)
def test_op_first_and_second_order_against_finite_differences(name):
    info = tg.get_op(name)
    check_op(info, order=2, rng=np.random.default_rng(1))


def grad_of(f, x):
    t = tg.tensor(x, requires_grad=True)
    f(t).sum().backward()
    return t.grad


def test_closed_form_derivatives():
    x = np.linspace(0.3, 4.0, 8)
    np.testing.assert_allclose(grad_of(sp.gammaln, x), sp.digamma(x), rtol=1e-14)
    np.testing.assert_allclose(grad_of(sp.gamma, x), sp.gamma(x) * sp.digamma(x), rtol=1e-14)
    np.testing.assert_allclose(grad_of(sp.digamma, x), sp.polygamma(1, x), rtol=1e-14)
    np.testing.assert_allclose(grad_of(lambda t: special.multigammaln(t + 1, 3), x),
                               sp.digamma(x + 1) + sp.digamma(x + 0.5) + sp.digamma(x),
                               rtol=1e-14)
    z = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(grad_of(sp.erf, z), 2 / np.sqrt(np.pi) * np.exp(-z * z),
                               rtol=1e-14)
    np.testing.assert_allclose(grad_of(sp.expit, z), sp.expit(z) * sp.expit(-z), rtol=1e-14)
    np.testing.assert_allclose(grad_of(sp.log_expit, z), sp.expit(-z), rtol=1e-14)
    np.testing.assert_allclose(grad_of(sp.j0, z), -sp.j1(z), rtol=1e-14)
    np.testing.assert_allclose(grad_of(sp.i0, z), sp.i1(z), rtol=1e-14)
    # second derivative of erf: -2x * 2/sqrt(pi) exp(-x^2)
    np.testing.assert_allclose(tg.grad(tg.grad(lambda t: sp.erf(t)))(0.7),
                               -1.4 * 2 / np.sqrt(np.pi) * np.exp(-0.49), rtol=1e-12)
    # d/dx P(a, x) is the gamma density; a gets no gradient
    a, xs = tg.tensor(2.5, requires_grad=True), tg.tensor(1.3, requires_grad=True)
    sp.gammainc(a, xs).backward()
    assert a.grad is None
    np.testing.assert_allclose(xs.grad, ss.gamma.pdf(1.3, 2.5), rtol=1e-13)
    m = np.array([[2.0, 0.3], [-0.4, 1.5]])
    np.testing.assert_allclose(grad_of(tg.ops.logabsdet, m), np.linalg.inv(m).T, rtol=1e-14)


def test_composed_special_functions_differentiate_in_every_argument():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(3, 4)), rng.uniform(0.2, 1.0, (3, 4))
    c = rng.uniform(-1, 1, (3, 4))
    check_grads(lambda a, b: special.logsumexp(a, axis=1, b=b), a, b, order=2)
    check_grads(lambda a, c: special.logsumexp(a, axis=0, b=c, return_sign=True)[0],
                a, c)
    w = rng.normal(size=(3, 4))
    check_grads(lambda a: special.softmax(a, axis=0) * w, a, order=2)
    check_grads(lambda a: special.log_softmax(a) * w, a)


# ------------------------------------------------------------------ stats: values


R = np.random.default_rng(5)
X = R.normal(size=(3, 4))
XPOS = np.array([-1.0, 0.4, 1.0, 2.0, 5.0])
XUNIT = np.array([-0.5, 0.1, 0.5, 0.9, 1.3])
K = np.array([-1, 0, 1, 2.5, 3, 7])
ALPHA = np.array([1.5, 2.0, 0.7])
XDIR = R.dirichlet(ALPHA, size=5).T
A = R.normal(size=(3, 3))
COV = A @ A.T + np.eye(3)
MEAN = R.normal(size=3)
XMVN = R.normal(size=(4, 3))

VALUE_CASES = [
    ("norm", f, (X, 0.3, 1.7)) for f in ("logpdf", "pdf", "cdf", "logcdf", "sf", "logsf")
] + [
    ("t", f, (X, 3.5, 0.3, 1.7)) for f in ("logpdf", "pdf", "cdf", "logcdf")
] + [
    (d, f, (XPOS, 2.5, 0.1, 1.3)) for d in ("gamma", "chi2") for f in ("logpdf", "pdf", "cdf")
] + [
    ("beta", f, args) for f in ("logpdf", "pdf", "cdf")
    for args in ((XUNIT, 2.5, 1.5), (XUNIT, 2.5, 1.5, -0.2, 1.5))
] + [
    ("poisson", f, args) for f in ("pmf", "cdf") for args in ((K, 2.3), (K, 2.3, 1))
] + [  # logpmf is -inf below the support: finite differences only inside it
    ("poisson", "logpmf", (K[[2, 4, 5]], 2.3)), ("poisson", "logpmf", (K[[2, 4, 5]], 2.3, 1))
] + [
    ("dirichlet", f, (x, ALPHA)) for f in ("logpdf", "pdf")
    for x in (XDIR, XDIR[:, 0], XDIR[:2])
] + [
    ("multivariate_normal", f, args) for f in ("logpdf", "pdf")
    for args in ((XMVN, MEAN, COV), (XMVN[0], MEAN, COV), (XMVN.reshape(2, 2, 3), MEAN,
                 np.diag(COV)), (XMVN[:, 0], None, 2.0), (XMVN, MEAN, 1.5))
] + [("multivariate_normal", "entropy", (MEAN, COV))]


@pytest.mark.parametrize("dist, fn, args", VALUE_CASES,
                         ids=[f"{d}.{f}-{i}" for i, (d, f, _) in enumerate(VALUE_CASES)])
def test_stats_match_scipy_stats(dist, fn, args):
    ours = getattr(getattr(stats, dist), fn)(*args)
    ref = getattr(getattr(ss, dist), fn)(*args)
    assert value(ours).shape == np.shape(ref)
    np.testing.assert_allclose(value(ours), ref, rtol=1e-10, atol=1e-300)


def test_linsolve_wants_a_matrix_right_hand_side():
    with pytest.raises(Exception, match=r"b\[\.\.\., None\]"):
        tg.ops.linsolve(np.eye(2), np.ones(2))


def test_stats_refuse_what_scipy_refuses():
    with pytest.raises(ValueError, match="simplex"):
        stats.dirichlet.logpdf(np.array([0.2, 0.2, 0.2]), ALPHA)
    with pytest.raises(ValueError, match="shape"):
        stats.multivariate_normal.logpdf(XMVN, MEAN, np.eye(2))


# ------------------------------------------------------------------ stats: gradients


def test_norm_logpdf_gradients_closed_form():
    x, loc, scale = np.array([-0.7, 0.2, 1.9]), 0.3, 1.7
    gx, gl, gs = tg.grad(lambda x, l, s: stats.norm.logpdf(x, l, s).sum(),
                         argnums=(0, 1, 2))(x, loc, scale)
    z = (x - loc) / scale
    np.testing.assert_allclose(gx, -z / scale, rtol=1e-14)
    np.testing.assert_allclose(gl, np.sum(z / scale), rtol=1e-14)
    np.testing.assert_allclose(gs, np.sum((z * z - 1) / scale), rtol=1e-14)
    gcdf = tg.grad(lambda x: stats.norm.cdf(x, loc, scale).sum())(x)
    np.testing.assert_allclose(gcdf, ss.norm.pdf(x, loc, scale), rtol=1e-14)


GRAD_CASES = [
    ("norm", "logpdf", (X, 0.3, 1.7), (0, 1, 2)),
    ("norm", "pdf", (X, 0.3, 1.7), (0, 1, 2)),
    ("norm", "logcdf", (X, 0.3, 1.7), (0, 1, 2)),
    ("norm", "logsf", (X, 0.3, 1.7), (0, 1, 2)),
    ("t", "logpdf", (X, 3.5, 0.3, 1.7), (0, 1, 2, 3)),
    ("t", "pdf", (X, 3.5, 0.3, 1.7), (0, 1, 2, 3)),
    ("t", "cdf", (X, 3.5, 0.3, 1.7), (0, 2, 3)),
    ("t", "logcdf", (X, 3.5, 0.3, 1.7), (0, 2, 3)),
    ("gamma", "logpdf", (XPOS[1:], 2.5, 0.1, 1.3), (0, 1, 2, 3)),
    ("gamma", "pdf", (XPOS[1:], 2.5, 0.1, 1.3), (0, 1, 2, 3)),
    ("gamma", "cdf", (XPOS[1:], 2.5, 0.1, 1.3), (0, 2, 3)),
    ("chi2", "logpdf", (XPOS[1:], 3.0, 0.1, 1.3), (0, 1, 2, 3)),
    ("chi2", "pdf", (XPOS[1:], 3.0, 0.1, 1.3), (0, 1, 2, 3)),
    ("chi2", "cdf", (XPOS[1:], 3.0, 0.1, 1.3), (0, 2, 3)),
    ("beta", "logpdf", (XUNIT[1:4], 2.5, 1.5, -0.1, 1.3), (0, 1, 2, 3, 4)),
    ("beta", "pdf", (XUNIT[1:4], 2.5, 1.5), (0, 1, 2)),
    ("beta", "cdf", (XUNIT[1:4], 2.5, 1.5, -0.1, 1.3), (0, 3, 4)),
    ("poisson", "logpmf", (K[[2, 4, 5]], 2.3), (1,)),
    ("poisson", "pmf", (K, 2.3), (1,)),
    ("poisson", "cdf", (K, 2.3), (1,)),
    ("dirichlet", "logpdf", (XDIR, ALPHA), (1,)),      # x on the simplex: see below
    ("dirichlet", "logpdf", (XDIR[:2], ALPHA), (0, 1)),
    ("dirichlet", "pdf", (XDIR[:2], ALPHA), (0, 1)),
    ("multivariate_normal", "logpdf", (XMVN, MEAN, COV), (0, 1, 2)),
    ("multivariate_normal", "pdf", (XMVN[0], MEAN, np.diag(COV)), (0, 1, 2)),
    ("multivariate_normal", "logpdf", (XMVN[:, 0], 0.5, 2.0), (0, 1, 2)),
    ("multivariate_normal", "entropy", (MEAN, COV), (1,)),
]


@pytest.mark.parametrize("dist, fn, args, argnums", GRAD_CASES,
                         ids=[f"{d}.{f}-{i}" for i, (d, f, *_) in enumerate(GRAD_CASES)])
def test_stats_gradients_in_every_argument(dist, fn, args, argnums):
    f = getattr(getattr(stats, dist), fn)
    args = tuple(np.asarray(a, dtype=np.float64) for a in args)
    check_grads(f, *args, argnums=argnums, order=2 if dist in ("norm", "gamma") else 1)


def test_out_of_support_values_have_zero_not_nan_gradients():
    x = tg.tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)
    a = tg.tensor(2.5, requires_grad=True)
    lp = stats.gamma.logpdf(x, a)
    assert np.isneginf(lp.data[0])
    (stats.gamma.pdf(x, a).sum() + stats.gamma.cdf(x, 2.5).sum()).backward()
    assert np.isfinite(x.grad).all() and x.grad[0] == 0.0 and np.isfinite(a.grad)
    y = tg.tensor(XUNIT, requires_grad=True)
    (stats.beta.pdf(y, 2.5, 1.5).sum() + stats.beta.cdf(y, 2.5, 1.5).sum()).backward()
    assert np.isfinite(y.grad).all() and y.grad[0] == 0.0 and y.grad[-1] == 0.0


def test_poisson_gradient_in_mu_closed_form():
    k, mu = np.array([0.0, 1.0, 4.0]), 2.3
    g = tg.grad(lambda m: stats.poisson.logpmf(k, m).sum())(mu)
    np.testing.assert_allclose(g, np.sum(k / mu - 1), rtol=1e-14)
    g = tg.grad(lambda m: stats.poisson.cdf(2, m))(mu)
    np.testing.assert_allclose(g, -ss.poisson.pmf(2, mu), rtol=1e-12)


def test_dirichlet_gradient_closed_form():
    """Full K components: finite differences would leave the simplex (refused, as scipy
    does), so the gradient in x is checked against (alpha - 1) / x."""
    gx, ga = tg.grad(lambda x, a: stats.dirichlet.logpdf(x, a).sum(), argnums=(0, 1))(
        XDIR, ALPHA)
    np.testing.assert_allclose(gx, (ALPHA[:, None] - 1) / XDIR, rtol=1e-13)
    n = XDIR.shape[1]
    np.testing.assert_allclose(ga, np.log(XDIR).sum(axis=1) - n * (
        sp.digamma(ALPHA) - sp.digamma(ALPHA.sum())), rtol=1e-12)


def test_mvn_gradient_closed_form():
    grads = tg.grad(lambda x, m, c: stats.multivariate_normal.logpdf(x, m, c).sum(),
                    argnums=(0, 1, 2))(XMVN, MEAN, COV)
    inv = np.linalg.inv(COV)
    d = XMVN - MEAN
    np.testing.assert_allclose(grads[0], -d @ inv, rtol=1e-12)
    np.testing.assert_allclose(grads[1], np.sum(d @ inv, axis=0), rtol=1e-12)
    expect = 0.5 * (inv @ d.T @ d @ inv) - 0.5 * len(d) * inv
    np.testing.assert_allclose(grads[2], expect, rtol=1e-12, atol=1e-14)
