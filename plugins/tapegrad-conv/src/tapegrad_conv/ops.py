"""2-D convolution and pooling ops, vectorised NumPy (NCHW inputs, OIHW weights).

Every kernel here is vectorised: im2col (one strided slice copy per *kernel offset*) or
``sliding_window_view`` plus one matrix product, and col2im as a loop over the kernel
offsets only -- never a Python loop over pixels, channels or the batch.

The ops come in closed families, so that every vjp is itself built from registered ops
and gradients of gradients work (``create_graph=True``, ``tg.hessian``):

- ``conv2d``            vjp: ``conv_transpose2d`` (input), ``conv2d_weight_grad`` (weight)
- ``conv_transpose2d``  vjp: ``conv2d`` (input), ``conv2d_weight_grad`` (weight)
- ``conv2d_weight_grad``vjp: ``conv_transpose2d`` (x), ``conv2d`` (g)
- ``max_pool2d``        vjp: ``max_pool2d_scatter``; scatter and ``max_pool2d_gather``
                        are each other's vjp (the argmax mask is piecewise constant)
- ``avg_pool2d``        vjp: ``avg_pool2d_backward``, whose vjp is ``avg_pool2d``

``stride``, ``padding``, ``kernel_size`` and ``output_padding`` are an int or an
``(h, w)`` pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tapegrad import OpDef, lift

_conv2d = lift("conv2d")
_conv_t = lift("conv_transpose2d")
_conv_wg = lift("conv2d_weight_grad")
_mp_scatter = lift("max_pool2d_scatter")
_mp_gather = lift("max_pool2d_gather")
_avg_pool = lift("avg_pool2d")
_avg_back = lift("avg_pool2d_backward")


def pair(v: Any) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 1) -> (2, 1)``; anything else raises ValueError."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    try:
        a, b = v
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"expected an int or an (h, w) pair, got {v!r}") from None


def _check4(name: str, x: np.ndarray) -> None:
    if np.ndim(x) != 4:
        raise ValueError(f"{name}: expected a 4-D NCHW array, got shape {np.shape(x)}")


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """View ``(N, C, Ho, Wo, kh, kw)`` of the strided ``kh x kw`` windows of ``x``."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def im2col(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Contiguous patches ``(C, kh, kw, N, Ho, Wo)`` of ``x`` (N, C, H, W).

    One strided slice copy per kernel offset. The layout makes a convolution one plain 2-D
    matrix product, ``weight (O, C*kh*kw) @ cols (C*kh*kw, N*Ho*Wo)``: a strided 6-D
    view is slow to feed to BLAS, ``kh * kw`` block copies are not.
    """
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"conv2d: a {kh}x{kw} kernel does not fit in a {h}x{w} "
                         "(padded) input")
    cols = np.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    xt = x.transpose(1, 0, 2, 3)
    for i in range(kh):          # loop over kernel offsets only
        for j in range(kw):
            cols[:, i, j] = xt[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
    return cols


def col2im_cn(cols: np.ndarray, hw: tuple[int, int], sh: int, sw: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: sum ``cols`` (C, kh, kw, N, Ho, Wo) into (N, C, *hw)."""
    c, kh, kw, n, ho, wo = cols.shape
    out = np.zeros((c, n, *hw), dtype=cols.dtype)
    for i in range(kh):          # loop over kernel offsets only
        for j in range(kw):
            out[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw] += cols[:, i, j]
    return out.transpose(1, 0, 2, 3)


def out_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def col2im(cols: np.ndarray, shape: tuple[int, ...], sh: int, sw: int) -> np.ndarray:
    """Adjoint of :func:`windows`: sum ``cols`` ``(N, C, Ho, Wo, kh, kw)`` into ``shape``."""
    n, c, ho, wo, kh, kw = cols.shape
    out = np.zeros(shape, dtype=cols.dtype)
    for i in range(kh):          # loop over kernel offsets only
        for j in range(kw):
            out[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw] += cols[..., i, j]
    return out


def _output_padding(in_hw, k, s, p) -> tuple[int, int]:
    """The output_padding making ``conv_transpose2d`` give back ``in_hw``."""
    return tuple(int(n + 2 * pp - ((out_size(n, kk, ss, pp) - 1) * ss + kk))
                 for n, kk, ss, pp in zip(in_hw, k, s, p, strict=True))


# ------------------------------------------------------------------ conv2d


def conv2d_forward(x, weight, bias, stride=1, padding=0):
    _check4("conv2d input", x)
    _check4("conv2d weight", weight)
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    o, c, kh, kw = weight.shape
    if x.shape[1] != c:
        raise ValueError(f"conv2d: input has {x.shape[1]} channels, weight expects {c}")
    cols = im2col(_pad(x, ph, pw), kh, kw, sh, sw)           # (C, kh, kw, N, Ho, Wo)
    n, ho, wo = cols.shape[3:]
    out = (weight.reshape(o, -1) @ cols.reshape(c * kh * kw, -1))  # (O, N*Ho*Wo)
    out = out.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
    if np.ndim(bias) == 1:
        out = out + np.asarray(bias)[:, None, None]
    else:
        out = out + bias
    return np.ascontiguousarray(out)


def _conv2d_dx(g, out, x, weight, bias, stride=1, padding=0):
    k = weight.shape[2:]
    op = _output_padding(x.shape[2:], k, pair(stride), pair(padding))
    return _conv_t(g, weight, stride=stride, padding=padding, output_padding=op)


def _conv2d_dw(g, out, x, weight, bias, stride=1, padding=0):
    return _conv_wg(x, g, kernel_size=tuple(weight.shape[2:]), stride=stride, padding=padding)


def _conv2d_db(g, out, x, weight, bias, stride=1, padding=0):
    gb = g.sum(axis=(0, 2, 3))
    return gb if getattr(bias, "ndim", 0) == 1 else gb.sum()


# ------------------------------------------------------------------ conv_transpose2d


def conv_transpose2d_forward(x, weight, stride=1, padding=0, output_padding=0):
    _check4("conv_transpose2d input", x)
    _check4("conv_transpose2d weight", weight)
    (sh, sw), (ph, pw), (oph, opw) = pair(stride), pair(padding), pair(output_padding)
    n, ci, h, w = x.shape
    ci2, co, kh, kw = weight.shape
    if ci != ci2:
        raise ValueError(f"conv_transpose2d: input has {ci} channels, weight expects {ci2}")
    xt = x.transpose(1, 0, 2, 3).reshape(ci, -1)              # (Ci, N*H*W)
    cols = (weight.reshape(ci, -1).T @ xt).reshape(co, kh, kw, n, h, w)
    full = col2im_cn(cols, ((h - 1) * sh + kh + oph, (w - 1) * sw + kw + opw), sh, sw)
    ho = (h - 1) * sh - 2 * ph + kh + oph
    wo = (w - 1) * sw - 2 * pw + kw + opw
    return np.ascontiguousarray(full[:, :, ph:ph + ho, pw:pw + wo])


def _convt_dx(g, out, x, weight, stride=1, padding=0, output_padding=0):
    return _conv2d(g, weight, 0.0, stride=stride, padding=padding)


def _convt_dw(g, out, x, weight, stride=1, padding=0, output_padding=0):
    return _conv_wg(g, x, kernel_size=tuple(weight.shape[2:]), stride=stride, padding=padding)


# ------------------------------------------------------------------ conv2d_weight_grad


def conv2d_weight_grad_forward(x, g, kernel_size=1, stride=1, padding=0):
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(padding)
    cols = im2col(_pad(x, ph, pw), kh, kw, sh, sw)           # (C, kh, kw, N, Ho, Wo)
    c, (ho, wo) = cols.shape[0], cols.shape[4:]
    if (ho, wo) != g.shape[2:]:
        raise ValueError(f"conv2d_weight_grad: g has spatial shape {g.shape[2:]}, the "
                         f"windows of x give {(ho, wo)}")
    o = g.shape[1]
    gt = g.transpose(1, 0, 2, 3).reshape(o, -1)               # (O, N*Ho*Wo)
    dw = gt @ cols.reshape(c * kh * kw, -1).T
    return dw.reshape(o, c, kh, kw)


def _wg_dx(G, out, x, g, kernel_size=1, stride=1, padding=0):
    op = _output_padding(x.shape[2:], pair(kernel_size), pair(stride), pair(padding))
    return _conv_t(g, G, stride=stride, padding=padding, output_padding=op)


def _wg_dg(G, out, x, g, kernel_size=1, stride=1, padding=0):
    return _conv2d(x, G, 0.0, stride=stride, padding=padding)


# ------------------------------------------------------------------ max pooling


def _pool_args(kernel_size, stride):
    k = pair(kernel_size)
    return k, (k if stride is None else pair(stride))


def _argmax_index(x, kernel_size, stride):
    """Index arrays ``(n, c, row, col)`` of each window's maximum, shape ``(N, C, Ho, Wo)``."""
    (kh, kw), (sh, sw) = _pool_args(kernel_size, stride)
    win = windows(x, kh, kw, sh, sw)
    n, c, ho, wo = win.shape[:4]
    flat = win.reshape(n, c, ho, wo, kh * kw).argmax(axis=-1)
    rows = np.arange(ho)[:, None] * sh + flat // kw
    cols = np.arange(wo)[None, :] * sw + flat % kw
    return (np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols)


def _pool(x, kernel_size, stride, combine):
    """Fold ``combine`` over the ``kh * kw`` strided slices of ``x`` (one per offset)."""
    (kh, kw), (sh, sw) = _pool_args(kernel_size, stride)
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"pooling: a {kh}x{kw} window does not fit in a "
                         f"{x.shape[2]}x{x.shape[3]} input")
    out = None
    for i in range(kh):          # loop over kernel offsets only
        for j in range(kw):
            part = x[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
            out = part.copy() if out is None else combine(out, part, out=out)
    return out


def max_pool2d_forward(x, kernel_size=2, stride=None):
    _check4("max_pool2d input", x)
    return _pool(x, kernel_size, stride, np.maximum)


def max_pool2d_scatter_forward(g, x, kernel_size=2, stride=None):
    """Route ``g`` (pooled shape) to the argmax of each window of ``x`` (shape of ``x``)."""
    out = np.zeros(x.shape, dtype=np.result_type(g, x))
    np.add.at(out, _argmax_index(x, kernel_size, stride), g)
    return out


def max_pool2d_gather_forward(y, x, kernel_size=2, stride=None):
    """Read ``y`` (shape of ``x``) at the argmax of each window of ``x`` (pooled shape)."""
    return y[_argmax_index(x, kernel_size, stride)]


# ------------------------------------------------------------------ average pooling


def avg_pool2d_forward(x, kernel_size=2, stride=None):
    _check4("avg_pool2d input", x)
    (kh, kw), _ = _pool_args(kernel_size, stride)
    out = _pool(x, kernel_size, stride, np.add)
    return out / (kh * kw) if out.dtype.kind == "f" else out / float(kh * kw)


def avg_pool2d_backward_forward(g, kernel_size=2, stride=None, input_hw=None):
    """Spread each pooled gradient evenly over its window; result ``(N, C, *input_hw)``."""
    (kh, kw), (sh, sw) = _pool_args(kernel_size, stride)
    n, c, ho, wo = g.shape
    cols = np.broadcast_to((g / (kh * kw))[..., None, None], (n, c, ho, wo, kh, kw))
    return col2im(cols, (n, c, *pair(input_hw)), sh, sw)


# ------------------------------------------------------------------ samples


def _conv_samples(rng):
    r = rng.standard_normal
    return [
        ((r((2, 3, 5, 5)), r((4, 3, 3, 3)), r(4)), {}),
        ((r((1, 2, 6, 5)), r((3, 2, 3, 2)), r(3)), {"stride": 2, "padding": 1}),
        ((r((2, 1, 4, 4)), r((2, 1, 2, 2)), 0.0), {"stride": (1, 2), "padding": (1, 0)}),
    ]


def _convt_samples(rng):
    r = rng.standard_normal
    return [
        ((r((2, 3, 3, 3)), r((3, 2, 3, 3))), {}),
        ((r((1, 2, 3, 2)), r((2, 3, 3, 2))), {"stride": 2, "padding": 1, "output_padding": 1}),
    ]


def _wg_samples(rng):
    r = rng.standard_normal
    return [
        ((r((2, 3, 5, 5)), r((2, 4, 3, 3))), {"kernel_size": 3}),
        ((r((1, 2, 6, 5)), r((1, 3, 3, 3))), {"kernel_size": (3, 2), "stride": 2, "padding": 1}),
    ]


def distinct(rng, shape):
    """Values at least 0.05 apart: no ties in any max, even after a finite-difference step."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.05 - size * 0.025).reshape(shape)


def _pool_samples(rng):
    return [
        ((distinct(rng, (2, 2, 4, 4)),), {"kernel_size": 2}),
        ((distinct(rng, (1, 3, 5, 5)),), {"kernel_size": 3, "stride": 1}),
        ((distinct(rng, (2, 1, 5, 6)),), {"kernel_size": (2, 3), "stride": (2, 1)}),
    ]


def _scatter_samples(rng):
    x = distinct(rng, (2, 2, 5, 5))
    return [((rng.standard_normal((2, 2, 3, 3)), x), {"kernel_size": 3, "stride": 1}),
            ((rng.standard_normal((2, 2, 2, 2)), x), {"kernel_size": 2})]


def _gather_samples(rng):
    x = distinct(rng, (2, 2, 5, 5))
    return [((rng.standard_normal((2, 2, 5, 5)), x), {"kernel_size": 3, "stride": 1}),
            ((rng.standard_normal((2, 2, 5, 5)), x), {"kernel_size": 2})]


def _avg_back_samples(rng):
    r = rng.standard_normal
    return [((r((2, 2, 2, 2)),), {"kernel_size": 2, "input_hw": (5, 4)}),
            ((r((1, 3, 3, 3)),), {"kernel_size": 3, "stride": 1, "input_hw": 5})]


def _avg_samples(rng):
    r = rng.standard_normal
    return [((r((2, 2, 4, 4)),), {"kernel_size": 2}),
            ((r((1, 3, 5, 5)),), {"kernel_size": 3, "stride": 1}),
            ((r((2, 1, 5, 6)),), {"kernel_size": (2, 3), "stride": (2, 1)})]


# ------------------------------------------------------------------ definitions


def op_definitions() -> list[OpDef]:
    """The Python ops of this plugin."""
    return [
        OpDef("conv2d", conv2d_forward, (_conv2d_dx, _conv2d_dw, _conv2d_db),
              params={"stride": 1, "padding": 0}, samples=_conv_samples,
              doc="2-D cross-correlation: x (N,C,H,W), weight (O,C,kh,kw), bias (O,) or 0"),
        OpDef("conv_transpose2d", conv_transpose2d_forward, (_convt_dx, _convt_dw),
              params={"stride": 1, "padding": 0, "output_padding": 0},
              samples=_convt_samples,
              doc="transposed 2-D convolution: x (N,Ci,H,W), weight (Ci,Co,kh,kw)"),
        OpDef("conv2d_weight_grad", conv2d_weight_grad_forward, (_wg_dx, _wg_dg),
              params={"kernel_size": 1, "stride": 1, "padding": 0},
              samples=_wg_samples,
              doc="gradient of conv2d w.r.t. its weight: x (N,C,H,W), g (N,O,Ho,Wo)"),
        OpDef("max_pool2d", max_pool2d_forward,
              lambda g, out, x, kernel_size=2, stride=None:
                  _mp_scatter(g, x, kernel_size=kernel_size, stride=stride),
              params={"kernel_size": 2, "stride": None}, method=True,
              samples=_pool_samples,
              doc="max over kh x kw windows of an NCHW array (stride defaults to kernel)"),
        OpDef("max_pool2d_scatter", max_pool2d_scatter_forward,
              lambda G, out, g, x, kernel_size=2, stride=None:
                  (_mp_gather(G, x, kernel_size=kernel_size, stride=stride), None),
              params={"kernel_size": 2, "stride": None}, nondiff=(1,),
              samples=_scatter_samples,
              doc="max_pool2d's vjp: g routed to each window's argmax in x"),
        OpDef("max_pool2d_gather", max_pool2d_gather_forward,
              lambda G, out, y, x, kernel_size=2, stride=None:
                  (_mp_scatter(G, x, kernel_size=kernel_size, stride=stride), None),
              params={"kernel_size": 2, "stride": None}, nondiff=(1,),
              samples=_gather_samples,
              doc="y read at each window's argmax in x (adjoint of max_pool2d_scatter)"),
        OpDef("avg_pool2d", avg_pool2d_forward,
              lambda g, out, x, kernel_size=2, stride=None:
                  _avg_back(g, kernel_size=kernel_size, stride=stride,
                            input_hw=tuple(x.shape[2:])),
              params={"kernel_size": 2, "stride": None}, save_inputs="shape",
             method=True, samples=_avg_samples,
              doc="mean over kh x kw windows of an NCHW array (stride defaults to kernel)"),
        OpDef("avg_pool2d_backward", avg_pool2d_backward_forward,
              lambda G, out, g, kernel_size=2, stride=None, input_hw=None:
                  _avg_pool(G, kernel_size=kernel_size, stride=stride),
              params={"kernel_size": 2, "stride": None, "input_hw": None},
              save_inputs=False, samples=_avg_back_samples,
              doc="avg_pool2d's vjp: g spread evenly over each window"),
    ]
