"""np.fft ops: forwards equal NumPy's, round trips, gradients against finite differences
(complex outputs through the checker's complex probe, or a real scalarisation via irfft).

Second order through a transform of a real input needs ``np.real`` on Tensors (the
elementwise pack's ``real`` op): those checks run when it is registered.
"""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(3)
F = np.fft
HAS_REAL = any(info.name == "real" for info in tg.list_ops())
needs_real = pytest.mark.skipif(not HAS_REAL, reason="np.real on Tensors needs the real op")


def r(*shape):
    return RNG.standard_normal(shape)


CASES = [
    (F.fft, r(6), {}), (F.fft, r(3, 4), {"n": 6, "axis": 0, "norm": "ortho"}),
    (F.ifft, r(5), {"n": 3, "norm": "forward"}), (F.fft2, r(3, 4), {"s": (4, 3)}),
    (F.ifft2, r(2, 3, 4), {"axes": (0, 2), "norm": "ortho"}),
    (F.fftn, r(2, 3, 4), {}), (F.ifftn, r(2, 3, 4), {"s": (3, 5), "axes": (0, 2)}),
    (F.rfft, r(7), {}), (F.rfft, r(3, 4), {"n": 5, "axis": 0, "norm": "forward"}),
    (F.irfft, r(4), {}), (F.irfft, r(4, 3), {"n": 7, "axis": 0, "norm": "ortho"}),
    (F.rfft2, r(3, 4), {"s": (2, 6)}), (F.irfft2, r(3, 4), {"s": (4, 5)}),
    (F.rfftn, r(2, 3, 4), {"axes": (0, 2), "norm": "ortho"}),
    (F.irfftn, r(2, 3, 4), {"s": (2, 3, 7), "axes": (0, 1, 2), "norm": "forward"}),
    (F.fftshift, r(5), {}), (F.ifftshift, r(3, 4), {"axes": 0}),
]
IDS = [f"{fn.__name__}-{i}" for i, (fn, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("fn, x, kw", CASES, ids=IDS)
def test_forward_matches_numpy_and_gradient_matches_finite_differences(fn, x, kw):
    out = fn(tg.tensor(x, requires_grad=True), **kw)
    assert isinstance(out, tg.Tensor)
    np.testing.assert_allclose(out.data, fn(x, **kw), atol=1e-12)
    tg.check_grads(lambda t: fn(t, **kw), x)


@needs_real
@pytest.mark.parametrize("fn, x, kw", CASES, ids=IDS)
def test_second_order(fn, x, kw):
    tg.check_grads(lambda t: fn(t, **kw), x, order=2)


def test_shifts_are_second_order_without_complex_support():
    tg.check_grads(lambda t: F.fftshift(F.ifftshift(t, axes=(0, 1)) * t), r(3, 4), order=2)


@pytest.mark.parametrize("n", [6, 7])
def test_real_round_trip_is_the_identity_and_so_is_its_gradient(n):
    x = r(n)
    w = r(n)
    out = F.irfft(F.rfft(tg.tensor(x)), n=n)
    np.testing.assert_allclose(out.data, x, atol=1e-12)
    np.testing.assert_allclose(tg.grad(lambda t: (F.irfft(F.rfft(t), n=n) * w).sum())(x), w,
                               atol=1e-12)


@pytest.mark.parametrize("norm", [None, "backward", "ortho", "forward"])
def test_complex_round_trip_through_a_real_scalarisation(norm):
    x = r(3, 4)
    w = r(3, 4) + 1j * r(3, 4)          # mixes real and imaginary parts of each frequency

    def f(t):
        z = F.ifftn(F.fftn(t, norm=norm) * w, norm=norm)
        return F.irfft(z, n=6)          # real output from a complex intermediate

    np.testing.assert_allclose(f(tg.tensor(x)).data,
                               F.irfft(F.ifftn(F.fftn(x, norm=norm) * w, norm=norm), n=6))
    tg.check_grads(f, x)


@pytest.mark.parametrize("n", [6, 7])
def test_circular_convolution_gradient_is_the_correlation(n):
    # y = irfft(rfft(x) * rfft(k)) is x circularly convolved with k; the gradient of
    # sum(w * y) is w circularly correlated with k: sum_i w[i] k[(i - j) % n].
    x, k, w = r(n), r(n), r(n)
    conv = lambda t: F.irfft(F.rfft(t) * F.rfft(k), n=n)
    idx = (np.arange(n)[:, None] - np.arange(n)[None, :]) % n      # [i, j] -> i - j
    np.testing.assert_allclose(conv(tg.tensor(x)).data, k[idx] @ x, atol=1e-12)
    np.testing.assert_allclose(tg.grad(lambda t: (conv(t) * w).sum())(x), w @ k[idx],
                               atol=1e-12)


def test_irfft_odd_length_weights():
    # irfft of length 5 reads frequencies 0, 1, 2: frequency 0 once, 1 and 2 twice.
    z = r(3)
    g = tg.grad(lambda t: F.irfft(t, n=5)[0])(z)
    np.testing.assert_allclose(g, np.array([1.0, 2.0, 2.0]) / 5)
    g = tg.grad(lambda t: F.irfft(t, n=4)[0])(z)          # even: Nyquist once
    np.testing.assert_allclose(g, np.array([1.0, 2.0, 1.0]) / 4)


def test_checker_catches_a_wrong_rule_for_a_complex_output(register):
    # Transposing fft with ifft (a conjugate, scaled) is wrong: the complex probe sees it.
    register(tg.OpDef("tfft_wrong", np.fft.fft, lambda g, out, x: np.real(np.fft.ifft(g)),
                      params={}))
    with pytest.raises(tg.GradcheckError):
        tg.check_grads(tg.ops.tfft_wrong, r(4), modes=("rev",))
