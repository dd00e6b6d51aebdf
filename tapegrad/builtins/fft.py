"""Discrete Fourier transforms (np.fft): the complex, real and inverse-real families and
the shifts, with NumPy's ``n``/``s``, ``axis``/``axes`` and ``norm`` parameters.

Every transform is linear, so its vjp is its transpose and its jvp is the transform of
the tangent. In HIPS autograd's convention (``numpy/fft.py``) the DFT matrix is
symmetric: the transpose of ``fftn`` is ``fftn`` (same ``norm``), of ``ifftn`` is
``ifftn``; cropping and zero-padding to ``s`` transpose into each other. ``rfftn`` is
``fftn`` cropped to the first ``s[-1] // 2 + 1`` frequencies of the last axis. ``irfftn``
reads the real parts of its input's frequencies (weight 2 for those that stand for a
conjugate pair, 1 for zero and Nyquist) and the imaginary parts with the opposite sign:
its transpose of a real cotangent ``g`` is ``ifftn(g)`` cropped and weighted, odd
lengths included. A real input's gradient is the real part (autograd's
``match_complex``).
"""

from __future__ import annotations

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef

from ._jvp import linear


def _plan(x, s, axes, inverse_real=False):
    """NumPy's defaults: the transformed axes and their output lengths, as lists."""
    if axes is None:
        axes = range(x.ndim) if s is None else range(x.ndim - len(s), x.ndim)
    axes = [int(a) % x.ndim for a in axes]
    full = [x.shape[a] for a in axes]
    if inverse_real:
        full[-1] = 2 * (full[-1] - 1)
    if s is None:
        return full, axes
    return [f if n == -1 else int(n) for f, n in zip(full, s, strict=True)], axes


def _one(n, axis):
    return None if n is None else [n], [axis]


def _fit(r, shape, axes):
    """``r`` cropped or zero-padded along ``axes`` to the lengths in ``shape``."""
    for a in axes:
        have, want = r.shape[a], shape[a]
        if have > want:
            r = r[(slice(None),) * a + (slice(0, want),)]
        elif have < want:
            pad = list(r.shape)
            pad[a] = want - have
            r = np.concatenate([r, np.zeros(tuple(pad), dtype=r.dtype)], axis=a)
    return r


def _like(x, r):
    return r if np.iscomplexobj(x) else np.real(r)


def _complex_vjp(g, x, s, axes, norm, inverse):
    s, axes = _plan(x, s, axes)
    transform = np.fft.ifftn if inverse else np.fft.fftn
    return _like(x, _fit(transform(g, axes=axes, norm=norm), x.shape, axes))


def _rfft_vjp(g, x, s, axes, norm):
    s, axes = _plan(x, s, axes)
    shape = list(g.shape)
    shape[axes[-1]] = s[-1]
    full = _fit(g, shape, axes[-1:])
    return np.real(_fit(np.fft.fftn(full, axes=axes, norm=norm), x.shape, axes))


def _pair_weights(n, k, axis, ndim):
    """Weights of irfft's frequencies 0..k-1 for an output of length n."""
    w = np.full(k, 2.0)
    w[0] = 1.0
    if n % 2 == 0 and n // 2 < k:
        w[n // 2] = 1.0
    shape = [1] * ndim
    shape[axis] = k
    return w.reshape(shape)


def _irfft_vjp(g, z, s, axes, norm):
    s, axes = _plan(z, s, axes, inverse_real=True)
    k = s[-1] // 2 + 1
    last = axes[-1]
    r = np.fft.ifftn(g, axes=axes, norm=norm)[(slice(None),) * last + (slice(0, k),)]
    r = r * _pair_weights(s[-1], k, last, z.ndim)
    return _like(z, _fit(r, z.shape, axes))


def fft_grad(g, out, x, n=None, axis=-1, norm=None):
    return _complex_vjp(g, x, *_one(n, axis), norm, inverse=False)


def ifft_grad(g, out, x, n=None, axis=-1, norm=None):
    return _complex_vjp(g, x, *_one(n, axis), norm, inverse=True)


def fftn_grad(g, out, x, s=None, axes=None, norm=None):
    return _complex_vjp(g, x, s, axes, norm, inverse=False)


def ifftn_grad(g, out, x, s=None, axes=None, norm=None):
    return _complex_vjp(g, x, s, axes, norm, inverse=True)


def rfft_grad(g, out, x, n=None, axis=-1, norm=None):
    return _rfft_vjp(g, x, *_one(n, axis), norm)


def rfftn_grad(g, out, x, s=None, axes=None, norm=None):
    return _rfft_vjp(g, x, s, axes, norm)


def irfft_grad(g, out, z, n=None, axis=-1, norm=None):
    return _irfft_vjp(g, z, *_one(n, axis), norm)


def irfftn_grad(g, out, z, s=None, axes=None, norm=None):
    return _irfft_vjp(g, z, s, axes, norm)


# ------------------------------------------------------------------ samples

def _one_d_samples(rng):
    r = rng.standard_normal
    return [((r(6),), {}), ((r(5),), {"norm": "ortho"}), ((r((3, 4)),), {"n": 6}),
            ((r((3, 4)),), {"n": 3, "axis": 0, "norm": "forward"}),
            ((r((2, 5)),), {"n": 4, "norm": "backward"})]


def _inverse_real_one_d_samples(rng):
    r = rng.standard_normal
    return [((r(4),), {}), ((r(4),), {"n": 5, "norm": "ortho"}), ((r((3, 4)),), {"n": 4}),
            ((r((4, 3)),), {"n": 7, "axis": 0, "norm": "forward"}),
            ((r((2, 5)),), {"n": 10, "norm": "backward"})]


def _two_d_samples(rng):
    r = rng.standard_normal
    return [((r((3, 4)),), {}), ((r((3, 4)),), {"s": (4, 3), "norm": "ortho"}),
            ((r((2, 3, 4)),), {"s": (2, 5), "axes": (0, 2), "norm": "forward"}),
            ((r((3, 4)),), {"axes": (1, 0)})]


def _n_d_samples(rng):
    r = rng.standard_normal
    return [((r((2, 3, 4)),), {}), ((r((2, 3, 4)),), {"axes": (1,)}),
            ((r((2, 3, 4)),), {"s": (3, 5), "axes": (0, 2), "norm": "ortho"}),
            ((r((2, 3, 3)),), {"s": (2, 2, 4), "axes": (0, 1, 2), "norm": "forward"}),
            ((r((3, 4)),), {"s": (-1, 6), "axes": (0, 1)})]


def _inverse_real_two_d_samples(rng):
    r = rng.standard_normal
    return [((r((3, 4)),), {}), ((r((3, 4)),), {"s": (4, 5), "norm": "ortho"}),
            ((r((2, 3, 4)),), {"s": (2, 4), "axes": (0, 2), "norm": "forward"}),
            ((r((4, 3)),), {"axes": (1, 0)})]


def _inverse_real_n_d_samples(rng):
    r = rng.standard_normal
    return [((r((2, 3, 4)),), {}), ((r((2, 3, 4)),), {"axes": (1,)}),
            ((r((2, 3, 4)),), {"s": (3, 7), "axes": (0, 2), "norm": "ortho"}),
            ((r((2, 3, 3)),), {"s": (2, 2, 4), "axes": (0, 1, 2), "norm": "forward"})]


def _shift_samples(rng):
    r = rng.standard_normal
    return [((r(5),), {}), ((r((3, 4)),), {}), ((r((3, 4)),), {"axes": 0}),
            ((r((2, 3, 4)),), {"axes": (0, 2)})]


ONE_D = {"n": None, "axis": -1, "norm": None}
TWO_D = {"s": None, "axes": (-2, -1), "norm": None}
N_D = {"s": None, "axes": None, "norm": None}


def _transform(name, fn, vjp, params, samples, is_complex, doc):
    return OpDef(name, fn, vjp, jvp=linear(fn), params=params, implements=(fn,),
                 samples=samples, complex=is_complex, doc=doc)


@hookimpl
def tapegrad_ops():
    f = np.fft
    return [
        _transform("fft", f.fft, fft_grad, ONE_D, _one_d_samples, True,
                   "np.fft.fft: 1-D discrete Fourier transform"),
        _transform("ifft", f.ifft, ifft_grad, ONE_D, _one_d_samples, True,
                   "np.fft.ifft: 1-D inverse DFT"),
        _transform("fft2", f.fft2, fftn_grad, TWO_D, _two_d_samples, True,
                   "np.fft.fft2: 2-D DFT"),
        _transform("ifft2", f.ifft2, ifftn_grad, TWO_D, _two_d_samples, True,
                   "np.fft.ifft2: 2-D inverse DFT"),
        _transform("fftn", f.fftn, fftn_grad, N_D, _n_d_samples, True,
                   "np.fft.fftn: N-D DFT"),
        _transform("ifftn", f.ifftn, ifftn_grad, N_D, _n_d_samples, True,
                   "np.fft.ifftn: N-D inverse DFT"),
        _transform("rfft", f.rfft, rfft_grad, ONE_D, _one_d_samples, False,
                   "np.fft.rfft: 1-D DFT of a real input (non-negative frequencies)"),
        _transform("irfft", f.irfft, irfft_grad, ONE_D, _inverse_real_one_d_samples, True,
                   "np.fft.irfft: inverse of rfft, a real output"),
        _transform("rfft2", f.rfft2, rfftn_grad, TWO_D, _two_d_samples, False,
                   "np.fft.rfft2: 2-D DFT of a real input"),
        _transform("irfft2", f.irfft2, irfftn_grad, TWO_D, _inverse_real_two_d_samples,
                   True, "np.fft.irfft2: inverse of rfft2"),
        _transform("rfftn", f.rfftn, rfftn_grad, N_D, _n_d_samples, False,
                   "np.fft.rfftn: N-D DFT of a real input"),
        _transform("irfftn", f.irfftn, irfftn_grad, N_D, _inverse_real_n_d_samples, True,
                   "np.fft.irfftn: inverse of rfftn"),
        _transform("fftshift", f.fftshift,
                   lambda g, out, x, axes=None: np.fft.ifftshift(g, axes=axes),
                   {"axes": None}, _shift_samples, True,
                   "np.fft.fftshift: move the zero frequency to the centre"),
        _transform("ifftshift", f.ifftshift,
                   lambda g, out, x, axes=None: np.fft.fftshift(g, axes=axes),
                   {"axes": None}, _shift_samples, True,
                   "np.fft.ifftshift: undo fftshift"),
    ]
