"""Reverse-mode rules of NumPy's multi-output decompositions (the ops in linalg.py).

Each function takes the cotangents of the outputs (``None`` for an output that gets
none), the outputs and the input, and returns the input's cotangent. They follow
HIPS autograd's ``numpy/linalg.py`` (slogdet, eigh, eig) and PyTorch's
``FunctionsManual.cpp`` (svd, qr); real inputs, stacked ``(..., m, n)`` matrices.
They use operators, matmul, swapaxes and the ``np.linalg`` functions tapegrad
implements, so on Tensors they record.
"""

from __future__ import annotations

import numpy as np


def used(g):
    """``None`` for the cotangent of an output nothing used, else ``g``.

    The engine passes an output nothing used a plain array of zeros (under
    ``create_graph`` too: a constant), so a rule can skip that output's term; a
    cotangent that is a Tensor is always used (forward mode derived from a vjp
    differentiates with respect to it)."""
    return None if type(g) is np.ndarray and not g.any() else g


def _t(x):
    return x.swapaxes(-1, -2)


def _diag(x, n):
    return x[..., None] * np.eye(n)


def _tril(x, k=0):
    return x * np.tri(x.shape[-2], x.shape[-1], k)


def slogdet_vjp(g_sign, g_logdet, sign, logdet, a):
    """``np.linalg.slogdet``: ``g_logdet * inv(a).T``; the sign is locally constant."""
    n = a.shape[-1]
    return g_logdet[..., None, None] * np.linalg.solve(_t(a), np.eye(n))


def eigh_vjp(gw, gv, w, v, a, UPLO="L"):
    """``np.linalg.eigh``, which reads one triangle of ``a`` (``UPLO``)."""
    n = a.shape[-1]
    inner = 0.0 if gw is None else _diag(gw, n)
    if gv is not None:
        off = 1.0 - np.eye(n)
        f = off / (w[..., None, :] - w[..., :, None] + np.eye(n))
        inner = inner + f * (_t(v) @ gv)
    full = v @ inner @ _t(v)
    strict = np.tri(n, n, -1) if UPLO == "L" else np.tri(n, n, -1).T
    return full * np.eye(n) + (full + _t(full)) * strict


def svd_vjp(gu, gs, gvh, u, s, vh, a):
    """``np.linalg.svd(a, full_matrices=False)`` with outputs ``u, s, vh``."""
    m, n = a.shape[-2], a.shape[-1]
    k = s.shape[-1]
    inner = 0.0 if gs is None else _diag(gs, k)
    s2 = s * s
    e = s2[..., None, :] - s2[..., :, None] + np.eye(k)
    if gu is not None:
        j = _t(u) @ gu
        inner = inner + (j - _t(j)) * s[..., None, :] / e
    if gvh is not None:
        kk = vh @ _t(gvh)
        inner = inner + s[..., :, None] * (kk - _t(kk)) / e
    ga = u @ inner @ vh
    if m > k and gu is not None:
        ga = ga + ((gu - u @ (_t(u) @ gu)) / s[..., None, :]) @ vh
    if n > k and gvh is not None:
        ga = ga + u @ ((gvh - (gvh @ _t(vh)) @ vh) / s[..., :, None])
    return ga


def qr_vjp(gq, gr, q, r, a):
    """``np.linalg.qr(a)`` (mode ``'reduced'``) with outputs ``q, r``."""
    m, n = a.shape[-2], a.shape[-1]
    if m < n:
        x, y = a[..., :, :m], a[..., :, m:]
        gr_x = None if gr is None else gr[..., :, :m]
        gr_y = None if gr is None else gr[..., :, m:]
        if gr_y is not None:
            gq = y @ _t(gr_y) if gq is None else gq + y @ _t(gr_y)
        gx = qr_vjp(gq, gr_x, q, r[..., :, :m], x)
        gy = q @ gr_y if gr_y is not None else np.zeros(y.shape)
        return np.concatenate([gx, gy], axis=-1)
    mm = 0.0
    if gr is not None:
        mm = r @ _t(gr)
    if gq is not None:
        mm = mm - _t(gq) @ q
    copied = _tril(mm) + _t(_tril(mm, -1))
    rhs = q @ copied if gq is None else gq + q @ copied
    return _t(np.linalg.solve(r, _t(rhs)))


def eig_vjp(ge, gu, e, u, a):
    """``np.linalg.eig`` with outputs ``e, u`` (unit eigenvectors), distinct eigenvalues."""
    n = e.shape[-1]
    ut = _t(u)
    inner = 0.0 if ge is None else _diag(ge, n)
    if gu is not None:
        f = 1.0 / (e[..., None, :] - e[..., :, None] + np.eye(n)) * (1.0 - np.eye(n))
        utgu = ut @ gu
        inner = inner + f * utgu
        inner = inner - f * ((ut @ np.conj(u)) @ (np.real(utgu) * np.eye(n)))
    r = np.linalg.solve(ut, inner @ ut)
    return r if np.iscomplexobj(a) else np.real(r)
