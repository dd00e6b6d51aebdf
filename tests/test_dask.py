"""Tensors over Dask arrays: forward, backward and ``.grad`` stay lazy graphs.

Every test that must not compute runs under ``no_compute()``: a Dask scheduler that
raises, so any eager computation (``np.asarray`` on a Dask array, truthiness, NumPy
functions Dask does not implement) fails the test at the line that caused it. Values
are then compared with the same computation on NumPy arrays.
"""

import contextlib
import importlib.util
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.errors import ShapeError, TapegradTypeError
from tapegrad.gradcheck import op_samples

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

ROOT = Path(__file__).resolve().parent.parent


class Computed(Exception):
    """Raised by the scheduler of ``no_compute``."""


def _refuse(*args, **kwargs):
    raise Computed("a Dask array was computed where everything must stay lazy")


@contextlib.contextmanager
def no_compute():
    with dask.config.set(scheduler=_refuse):
        yield


def lazy(x):
    return hasattr(getattr(x, "_data", x), "__dask_graph__")


def chunked(a, chunks=2):
    return da.from_array(np.asarray(a), chunks=chunks)


def value(x):
    return tg.compute(x)[0]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ----------------------------------------------------------------------- op families


def _both(f, *arrays, chunks=2):
    """``f`` on tensors of ``arrays`` (NumPy), and on tensors of chunked Dask copies: the
    outputs and the gradients of ``sum(out * probe)``; the Dask ones must stay lazy."""
    results = []
    for on_dask in (False, True):
        ts = [tg.tensor(chunked(a, chunks) if on_dask else a, requires_grad=True)
              for a in arrays]
        with no_compute() if on_dask else contextlib.nullcontext():
            out = f(*ts)
            probe = np.linspace(0.5, 1.5, out.size).reshape(out.shape)
            (out * probe).sum().backward()
        results.append((out, [t.grad for t in ts]))
    (out_np, g_np), (out_da, g_da) = results
    assert lazy(out_da) and all(lazy(g) for g in g_da)
    got = tg.compute(out_da, *g_da)
    np.testing.assert_allclose(got[0], out_np.data, rtol=1e-12, atol=1e-12)
    for a, b in zip(got[1:], g_np, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    return got


def test_elementwise(rng):
    x, y = rng.uniform(0.5, 2, (5, 4)), rng.uniform(-1, 1, (5, 4))
    _both(lambda a, b: (a.sin() * b.exp() + a.log() / (1 + b * b)).tanh(), x, y)
    _both(lambda a, b: a.sigmoid() ** 2 - np.maximum(a, b) + np.where(b > 0, a, -b), x, y)


def test_reductions(rng):
    x = rng.standard_normal((6, 4))
    _both(lambda a: a.sum(axis=0) + a.mean(axis=0) * a.max(axis=0), x)
    _both(lambda a: a.var(axis=1) + a.std() + tg.ops.logsumexp(a, axis=1), x)
    _both(lambda a: tg.ops.softmax(a, axis=1) + tg.ops.log_softmax(a, axis=0), x)


def test_matmul(rng):
    X, w, W = rng.standard_normal((8, 3)), rng.standard_normal(3), rng.standard_normal((3, 2))
    _both(lambda a, b: a @ b, X, w)
    _both(lambda a, b: (a @ b).T @ a, X, W)


def test_shaping(rng):
    x = rng.standard_normal((4, 6))
    _both(lambda a: a.reshape(2, 2, 6).sum(axis=1).T[1:, ::2] + a.reshape(-1)[:2].sum(), x)
    _both(lambda a: a[2] + a[:, 1].sum() + a[np.array([0, 3])].sum(), x)
    _both(lambda a: tg.concatenate([a, 2 * a], axis=1) + 0, x)
    _both(lambda a: tg.stack([a, a.exp()])[1].swapaxes(0, 1), x)
    _both(lambda a: a.clip(-0.5, 0.5) * a, x)


def test_broadcasting_sums_gradients_back_lazily(rng):
    X, b, s = rng.standard_normal((6, 3)), rng.standard_normal(3), rng.standard_normal((6, 1))
    _, gX, gb, gs = _both(lambda X, b, s: (X + b) * s, X, b, s)
    assert gb.shape == (3,) and gs.shape == (6, 1) and gX.shape == (6, 3)


def test_accumulation_fan_out_and_two_backwards(rng):
    x = rng.standard_normal(5)
    _both(lambda a: a * a.sin() + a.exp() * a, x)   # a used three times: grads add up
    t = tg.tensor(chunked(x), requires_grad=True)
    with no_compute():
        (t * t).sum().backward()
        (3 * t).sum().backward()     # added to the first .grad, lazily
        assert lazy(t.grad)
    np.testing.assert_allclose(value(t.grad), 2 * x + 3)


def test_dtype_casts_stay_lazy(rng):
    x = rng.standard_normal(6).astype(np.float32)
    t = tg.tensor(chunked(x), requires_grad=True)
    with no_compute():
        y = t.astype(np.float64) * np.linspace(1, 2, 6)   # float64 math on float32 data
        y.sum().backward()
        assert lazy(t.grad) and t.grad.dtype == np.float32   # cast back to the leaf's dtype
    np.testing.assert_allclose(value(t.grad), np.linspace(1, 2, 6), rtol=1e-6)


def test_numpy_parameter_gets_a_lazy_gradient_through_dask_data(rng):
    X, y = rng.standard_normal((40, 3)), rng.uniform(size=40)
    w = tg.tensor(np.array([0.3, -0.2, 0.1]), requires_grad=True)
    with no_compute():
        loss = tg.nn.binary_cross_entropy_with_logits(tg.tensor(chunked(X, 10)) @ w,
                                                      chunked(y, 10))
        loss.backward()
        assert type(w.data) is np.ndarray and lazy(loss) and lazy(w.grad)
    got_loss, got_grad = tg.compute(loss, w.grad)
    z = X @ w.data
    p = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(got_loss, np.mean(np.logaddexp(0, z) - y * z))
    np.testing.assert_allclose(got_grad, X.T @ (p - y) / 40)


def test_value_and_grad_tape_and_seeds_stay_lazy(rng):
    X = chunked(rng.standard_normal((12, 3)), 4)
    w0 = np.array([0.5, -1.0, 2.0])
    f = lambda w, X: ((X @ w).tanh() ** 2).sum()   # noqa: E731  (X a raw Dask array)
    with no_compute():
        v, g = tg.value_and_grad(f)(w0, X)
        with tg.Tape() as tape:
            w = tg.tensor(w0)
            tape.watch(w)
            out = (tg.tensor(X) @ w).tanh()
        g_tape = tape.gradient(out, w, output_gradients=2 * (out.data))  # a lazy seed
        assert lazy(v) and lazy(g) and lazy(g_tape)
    v, g, g_tape = tg.compute(v, g, g_tape)
    Xn = X.compute()
    t = np.tanh(Xn @ w0)
    np.testing.assert_allclose(v, (t ** 2).sum())
    np.testing.assert_allclose(g, Xn.T @ (2 * t * (1 - t ** 2)))
    np.testing.assert_allclose(g_tape, g)


def test_second_order_and_forward_mode_stay_lazy(rng):
    x = rng.uniform(-1, 1, 6)
    f = lambda a: (a.sin() * a).sum()              # noqa: E731
    with no_compute():
        hvp = tg.grad(lambda a: (tg.grad(f)(a) * np.arange(6.0)).sum())(chunked(x))
        out, tangent = tg.jvp(f, (chunked(x),), (chunked(np.ones(6)),))
        assert lazy(hvp) and lazy(out) and lazy(tangent)
    np.testing.assert_allclose(value(hvp), (2 * np.cos(x) - x * np.sin(x)) * np.arange(6.0))
    np.testing.assert_allclose(value(tangent), np.sum(np.sin(x) + x * np.cos(x)))


def test_repr_anomaly_and_drawing_do_not_compute(rng):
    t = tg.tensor(chunked(rng.standard_normal(4)), requires_grad=True)
    with no_compute(), tg.detect_anomaly():
        y = (t * 2).sum()
        y.backward()
        assert "dask.array<" in repr(t) and "grad=dask.array<" in repr(t)
        assert "digraph" in tg.to_dot(y)


def test_explicit_reads_compute():
    t = tg.tensor(chunked([1.5, 2.5]))
    assert t.sum().item() == 4.0 and t.tolist() == [1.5, 2.5]
    assert float(t[0]) == 1.5 and np.asarray(t).tolist() == [1.5, 2.5]


# ----------------------------------------------------------------------- tg.compute


def test_compute_runs_shared_work_once(rng):
    calls = []

    def block(x):
        calls.append(1)
        return x

    X = da.map_blocks(block, chunked(rng.standard_normal((8, 2)), (4, 2)),
                      meta=np.empty((0, 0)))       # given: no call to infer it
    w = tg.tensor(np.ones(2), requires_grad=True)
    loss = ((tg.tensor(X) @ w) ** 2).sum()
    loss.backward()
    with dask.config.set(scheduler="sync"):   # no fusion: Dask may inline cheap tasks
        loss_v, grad_v = tg.compute(loss, w.grad, optimize_graph=False)
        assert len(calls) == 2          # each of the 2 chunks once, for both results
        loss.data.compute(optimize_graph=False), w.grad.compute(optimize_graph=False)
        assert len(calls) == 6          # one at a time: the forward runs twice
    Xn = X.compute(scheduler="sync")
    np.testing.assert_allclose(loss_v, ((Xn @ np.ones(2)) ** 2).sum())
    np.testing.assert_allclose(grad_v, 2 * Xn.T @ (Xn @ np.ones(2)))


def test_compute_returns_numpy_for_everything():
    out = tg.compute(tg.tensor([1.0, 2.0]), np.arange(3), 2.5, chunked([4.0]),
                     tg.tensor(chunked([5.0, 6.0])))
    assert type(out) is tuple and all(type(a) is np.ndarray for a in out)
    assert [a.tolist() for a in out] == [[1.0, 2.0], [0, 1, 2], 2.5, [4.0], [5.0, 6.0]]
    assert tg.compute() == ()
    with pytest.raises(TapegradTypeError, match="argument 1 is a dict"):
        tg.compute(1.0, {"a": 1})


# ----------------------------------------------------------------------- limits


def test_unknown_chunk_sizes_work_elementwise_and_fail_clearly_where_summed(rng):
    x = rng.standard_normal(10)
    d = chunked(x, 5)
    rows = d[d > 0]                                # chunk sizes unknown: shape (nan,)
    keep = x > 0
    t = tg.tensor(rows, requires_grad=True)
    with no_compute():
        (t.exp() * t).backward(rows * 0 + 1)       # same (unknown) shapes: nothing summed
    np.testing.assert_allclose(value(t.grad), (np.exp(x) * (1 + x))[keep])
    w = tg.tensor(np.ones(1), requires_grad=True)
    with no_compute():
        with pytest.raises(ShapeError, match=r"op 'sum'.*compute_chunk_sizes\(\)"):
            t.exp().sum().backward()               # sum's gradient needs the shape
        with pytest.raises(ShapeError, match=r"op 'mul'.*compute_chunk_sizes\(\)"):
            (tg.tensor(rows) * w).backward(rows)   # w broadcast to (nan,): summed back
    rows.compute_chunk_sizes()                      # the fix the errors name
    w = tg.tensor(np.ones(1), requires_grad=True)
    (tg.tensor(rows) * w).sum().backward()
    np.testing.assert_allclose(value(w.grad), [x[keep].sum()])


def test_ops_needing_values_refuse_dask_naming_the_op():
    t = tg.tensor(chunked([3.0, 1.0, 2.0]), requires_grad=True)
    with no_compute(), pytest.raises(TapegradTypeError,
                                     match="op 'sort' .* needs concrete values"):
        np.sort(t)
    assert np.sort(tg.tensor(np.array([3.0, 1.0]))).data.tolist() == [1.0, 3.0]


def test_repeated_index_gradient_refused_unique_ones_lazy(rng):
    x = rng.standard_normal((4, 3))
    _both(lambda a: a[np.array([3, 0, 1])] * 2, x)
    t = tg.tensor(chunked(x), requires_grad=True)
    y = t[np.array([0, 0])].sum()
    with no_compute(), pytest.raises(ValueError, match="repeated index on a Dask array"):
        y.backward()


def test_logsumexp_gradient_of_rows_mixing_finite_and_infinite():
    # A row with a finite result next to a row whose result is +inf: the finite row's
    # gradient is its softmax (it used to get an extra share meant for infinite rows).
    x = tg.tensor([[5.0, -np.inf], [np.inf, 1.0]], requires_grad=True)
    tg.ops.logsumexp(x, axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0], [1.0, 0.0]])


# ----------------------------------------------------------------------- every op

# Built-in ops that raise a clear error on Dask inputs (chunks of 2) instead of running
# lazily, by cause. The check below runs every registered op and fails if this list is
# out of date either way.
REFUSED = {  # need concrete values: tapegrad refuses them (OpDef(lazy=False))
    "argsort", "cholesky", "column_stack", "cross", "cross_entropy",
    "softmax_cross_entropy", "cumprod", "det",
    "eig", "eigh", "eigvals", "eigvalsh", "full", "inner", "kron", "matrix_power",
    "multi_dot", "partition", "pinv", "ptp", "qr", "select", "slogdet", "sort", "svd",
    "svd_u", "svd_vh", "svdvals",
    # numerics: NumPy functions Dask has no lazy version of (or not checked lazy yet)
    "interp", "polyval", "trapezoid", "convolve", "correlate", "cov", "corrcoef",
    "take_along_axis", "meshgrid1", "meshgrid2", "meshgrid3", "meshgrid4", "quantile",
    "percentile", "lstsq",
}
DASK_LIMITS = {  # lazy in Dask only under Dask's own conditions, which it names
    **dict.fromkeys(["fft", "fft2", "fftn", "ifft", "ifft2", "ifftn", "rfft", "rfft2",
                     "rfftn", "irfft", "irfft2", "irfftn"], "single chunk"),
    "inv": "square matrix", "solve": "square matrix", "gradient": "Rechunk",
    "median": "only works along an axis", "repeat": "integer axis",
    "hstack": "out of bounds", "diagonal": "1-d array of integers",
    "scatter_add": "repeated index", "take": "repeated index",
}
# Lazy, forward and backward, once each array is one chunk (the rfft family's gradients
# cut and join chunks along the transformed axis, so they stay refused).
ONE_CHUNK = {"fft", "fft2", "fftn", "ifft", "ifft2", "ifftn", "irfft", "irfft2", "irfftn",
             "inv", "solve", "gradient"}
BUILTIN = [i for i in tg.list_ops() if i.plugin.startswith("tapegrad.builtins")]


def _run_op(info, inputs, params, to_dask):
    """Forward of ``info`` on its sample (float arrays through ``to_dask``), then backward
    with a seed of the output's library; returns (outputs, gradients)."""
    d = info.definition
    seq = list(inputs[0]) if info.variadic else list(inputs)
    ts = [tg.tensor(to_dask(a), requires_grad=info.variadic or i not in d.nondiff)
          if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
          for i, a in enumerate(seq)]
    out = info.call(ts, **params) if info.variadic else info.call(*ts, **params)
    outs = tuple(out) if isinstance(out, tuple) else (out,)
    tracked = [o for o in outs if o._node is not None]
    if tracked:
        probes = [to_dask(np.linspace(0.5, 1.5, o.size).reshape(o.shape).astype(o.dtype))
                  for o in tracked]
        loss = sum(((o * p).real if o.dtype.kind == "c" else o * p).sum()
                   for o, p in zip(tracked, probes, strict=True))
        loss.backward()
    grads = [t.grad for t in ts if isinstance(t, tg.Tensor) and t.grad is not None]
    return outs, grads


def _lazy_check(info, chunks):
    inputs, params = op_samples(info, np.random.default_rng(0))[0]
    seq = list(inputs[0]) if info.variadic else list(inputs)
    if not any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in seq):
        pytest.skip("no floating input to make lazy (a logic op on masks)")
    ref_outs, ref_grads = _run_op(info, inputs, params, lambda a: a)
    with no_compute(), warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)   # Dask's "not implemented" fallback
        outs, grads = _run_op(info, inputs, params, lambda a: chunked(a, chunks))
        assert all(lazy(o) for o in outs) and all(lazy(g) for g in grads), info.name
    got = tg.compute(*outs, *grads)
    for a, b in zip(got, [o.data for o in ref_outs] + ref_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=info.name)


@pytest.mark.parametrize("info", BUILTIN, ids=[i.name for i in BUILTIN])
def test_every_builtin_op_on_dask(info):
    """Forward and backward of the op's first sample on Dask arrays in chunks of 2: lazy
    and equal to NumPy, or a clear error naming the op (the lists above), never an eager
    computation (the scheduler refuses) nor Dask's silent fallback (an error here)."""
    if info.name not in REFUSED and info.name not in DASK_LIMITS:
        _lazy_check(info, 2)
        return
    with pytest.raises(Exception) as exc:
        _lazy_check(info, 2)
    text = str(exc.value)
    assert f"op {info.name!r}" in text, text
    assert not isinstance(exc.value, Computed | AssertionError), text
    if info.name in REFUSED:
        assert isinstance(exc.value, TapegradTypeError) and "needs concrete values" in text
    else:
        assert DASK_LIMITS[info.name] in text, text
    if info.name in ONE_CHUNK:   # lazy once each array is a single chunk
        _lazy_check(info, -1)


def test_refused_list_is_the_engines():
    assert REFUSED == {i.name for i in tg.list_ops() if not i.definition.lazy
                       and i.source.startswith("tapegrad.")}
    assert {i.name for i in BUILTIN} >= REFUSED | set(DASK_LIMITS)


# ----------------------------------------------------------------------- distributed


def _fit_logistic(X, y, p):
    from scipy.optimize import minimize

    vg = tg.value_and_grad(lambda w, X, y: tg.nn.binary_cross_entropy_with_logits(
        tg.tensor(X) @ w[1:] + w[0], y))

    def fun(w):
        v, g = tg.compute(*vg(w, X, y))
        return float(v), g

    return minimize(fun, np.zeros(p + 1), jac=True, method="L-BFGS-B").x


def test_distributed_cluster_threads_on_loopback():
    distributed = pytest.importorskip("dask.distributed")
    rng = da.random.default_rng(3)
    X = rng.standard_normal((4000, 2), chunks=(1000, 2))
    true = np.array([0.5, 1.5, -1.0])
    y = (rng.uniform(size=4000, chunks=1000) < 1 / (1 + np.exp(-(X @ true[1:] + true[0]))))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp://", host="127.0.0.1",
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        X, y = X.persist(), y.astype(float).persist()
        w = _fit_logistic(X, y, 2)
    assert np.max(np.abs(w - true)) < 0.25


def test_distributed_cluster_processes_on_loopback():
    distributed = pytest.importorskip("dask.distributed")
    X = chunked(np.random.default_rng(4).standard_normal((60, 3)), (20, 3))
    w = tg.tensor(np.array([1.0, -1.0, 0.5]), requires_grad=True)
    loss = ((tg.tensor(X) @ w).tanh() ** 2).mean()
    loss.backward()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
        got_loss, got_grad = tg.compute(loss, w.grad)
    Xn = X.compute(scheduler="sync")
    t = np.tanh(Xn @ w.data)
    np.testing.assert_allclose(got_loss, np.mean(t ** 2))
    np.testing.assert_allclose(got_grad, Xn.T @ (2 * t * (1 - t ** 2)) / 60)


def test_example_fits_glms_within_tolerance():
    spec = importlib.util.spec_from_file_location("dask_example",
                                                  ROOT / "examples" / "13_dask_logistic.py")
    import sys
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        ex = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(ex)
    finally:
        sys.path.remove(str(ROOT / "examples"))
    with dask.config.set(scheduler="threads"):
        for kind, loss, coef in (("logistic", ex.logistic_loss, ex.TRUE_LOGISTIC),
                                 ("poisson", ex.poisson_loss, ex.TRUE_POISSON)):
            X, y = ex.make_data(30_000, coef, kind, chunk=10_000)
            w, calls = ex.fit(loss, X.persist(), y.persist(), coef.size - 1)
            assert np.max(np.abs(w - coef)) < 0.1, (kind, w)
            assert calls < 40


# ----------------------------------------------------------------------- CuPy (GPU)


def test_cupy_mlp_step_on_the_gpu():
    cp = pytest.importorskip("cupy")
    if cp.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(0)
    X, W, b = rng.standard_normal((16, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
    grads = []
    for xp in (np, cp):
        Wt, bt = tg.tensor(xp.asarray(W), requires_grad=True), tg.tensor(xp.asarray(b),
                                                                         requires_grad=True)
        loss = ((tg.tensor(xp.asarray(X)) @ Wt + bt).relu() ** 2).mean()
        loss.backward()
        grads.append([Wt.grad, bt.grad])
    assert all(type(g) is cp.ndarray for g in grads[1])
    for a, g in zip(grads[0], grads[1], strict=True):
        np.testing.assert_allclose(cp.asnumpy(g), a, rtol=1e-10)


def test_readme_lists_the_refused_ops():
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Larger than memory: Dask"):]
    section = section[:section.index("\n## ", 5)]
    for name in sorted(REFUSED | set(DASK_LIMITS)):
        assert re.search(rf"`{name}`", section), name
