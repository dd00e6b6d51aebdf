"""Products: dot, vdot, inner, outer, tensordot, einsum, cross, multi_dot.

Every product is linear in each operand, so each vjp is another product of the upstream
gradient with the other operands (recorded on Tensors: second order comes for free) and
each jvp is the sum of the product with one operand replaced by its tangent. They are
holomorphic in HIPS autograd's sense (no conjugates), so the rules hold for complex
inputs; ``vdot``, which conjugates its first operand, is the exception.

``einsum`` is a variadic op, ``tg.ops.einsum([a, b], "ij,jk->ik")``; :func:`einsum`
has NumPy's signature (``einsum("ij,jk", a, b)``). ``np.einsum(subscripts, *tensors)``
cannot reach the op yet: the dispatch tables map a NumPy function straight onto the op's
caller, which takes the operands as its first argument (see the lead's notes).
"""

from __future__ import annotations

import string

import numpy as np

from tapegrad.hookspecs import hookimpl
from tapegrad.opdef import OpDef
from tapegrad.registry import lift

from ._jvp import plus

_einsum = lift("einsum")


def bilinear(fn):
    """The jvp of ``fn(a, b, **params)``, linear in each operand."""
    def rule(ts, out, a, b, **params):
        return plus(None if ts[0] is None else fn(ts[0], b, **params),
                    None if ts[1] is None else fn(a, ts[1], **params))
    return rule


# ------------------------------------------------------------------ tensordot


def contracted_axes(axes, nda, ndb):
    """``tensordot``'s ``axes`` (an int, or a pair of ints / sequences) as two lists."""
    if isinstance(axes, (int, np.integer)):
        return list(range(nda - int(axes), nda)), list(range(int(axes)))
    ax_a, ax_b = axes
    ax_a = [ax_a] if isinstance(ax_a, (int, np.integer)) else list(ax_a)
    ax_b = [ax_b] if isinstance(ax_b, (int, np.integer)) else list(ax_b)
    return [int(i) % nda for i in ax_a], [int(i) % ndb for i in ax_b]


def tensordot(a, b, axes=2):
    try:
        return np.tensordot(a, b, axes)
    except IndexError as exc:  # NumPy's answer when axes name more axes than there are
        raise ValueError(f"tensordot: axes={axes!r} do not fit operands of shapes "
                         f"{np.shape(a)} and {np.shape(b)}") from exc


def _inverse(perm):
    return tuple(int(i) for i in np.argsort(perm))


def tensordot_grad_a(g, out, a, b, axes=2):
    ax_a, ax_b = contracted_axes(axes, a.ndim, b.ndim)
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    t = np.tensordot(g, b, axes=(list(range(len(free_a), g.ndim)), free_b))
    # t has a's free axes, then b's contracted axes in b's order
    return np.transpose(t, _inverse(free_a + [ax_a[j] for j in np.argsort(ax_b)]))


def tensordot_grad_b(g, out, a, b, axes=2):
    ax_a, ax_b = contracted_axes(axes, a.ndim, b.ndim)
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    t = np.tensordot(a, g, axes=(free_a, list(range(len(free_a)))))
    # t has a's contracted axes in a's order, then b's free axes
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    return np.transpose(t, _inverse([ax_b[j] for j in np.argsort(ax_a)] + free_b))


# ------------------------------------------------------------------ dot, inner, outer, vdot


def _dot_axes(a, b):
    return [a.ndim - 1], [max(b.ndim - 2, 0)]


def _contraction_grads(axes_of):
    """The vjps of a product contracting ``axes_of(a, b)`` (a scalar operand scales)."""

    def grad_a(g, out, a, b):
        if a.ndim == 0 or b.ndim == 0:
            return g * b
        return tensordot_grad_a(g, out, a, b, axes=axes_of(a, b))

    def grad_b(g, out, a, b):
        if a.ndim == 0 or b.ndim == 0:
            return g * a
        return tensordot_grad_b(g, out, a, b, axes=axes_of(a, b))

    return grad_a, grad_b


def _inner_axes(a, b):
    return [a.ndim - 1], [b.ndim - 1]


dot_grad_a, dot_grad_b = _contraction_grads(_dot_axes)
inner_grad_a, inner_grad_b = _contraction_grads(_inner_axes)


def outer_grad_a(g, out, a, b):
    return (g @ b.reshape(-1)).reshape(a.shape)


def outer_grad_b(g, out, a, b):
    return (a.reshape(-1) @ g).reshape(b.shape)


# ------------------------------------------------------------------ cross


def cross_grad_a(g, out, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    return np.cross(b, g, axisb, axisc, axisa, axis)


def cross_grad_b(g, out, a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    return np.cross(g, a, axisc, axisa, axisb, axis)


def cross_jvp(ts, out, a, b, **params):
    return plus(None if ts[0] is None else np.cross(ts[0], b, **params),
                None if ts[1] is None else np.cross(a, ts[1], **params))


# ------------------------------------------------------------------ multi_dot


def _as_matrices(xs):
    """multi_dot's operands as matrices: a 1-D first is a row, a 1-D last a column."""
    ms = list(xs)
    if ms[0].ndim == 1:
        ms[0] = ms[0].reshape(1, -1)
    if ms[-1].ndim == 1:
        ms[-1] = ms[-1].reshape(-1, 1)
    return ms


def _chain(ms):
    out = None
    for m in ms:
        out = m if out is None else out @ m
    return out


def multi_dot_grad(g, out, *xs):
    ms = _as_matrices(xs)
    g2 = g.reshape(ms[0].shape[0], ms[-1].shape[1])
    grads = []
    for i, x in enumerate(xs):
        left, right = _chain(ms[:i]), _chain(ms[i + 1:])
        gi = g2 if left is None else left.T @ g2
        gi = gi if right is None else gi @ right.T
        grads.append(gi.reshape(x.shape))
    return tuple(grads)


def multi_dot_jvp(ts, out, *xs):
    terms = [np.linalg.multi_dot([t if j == i else x for j, x in enumerate(xs)])
             for i, t in enumerate(ts) if t is not None]
    return plus(*terms)


# ------------------------------------------------------------------ einsum

_LETTERS = frozenset(string.ascii_letters)


def _labels(term):
    """A term's labels, with ``...`` as one token."""
    out, rest = [], term
    while rest:
        if rest.startswith("..."):
            out.append("...")
            rest = rest[3:]
        else:
            out.append(rest[0])
            rest = rest[1:]
    return out


def parse_einsum(subscripts, nops):
    """The explicit form of ``subscripts``: (input terms, output term), ``...`` kept.

    In implicit mode (no ``->``) the output is ``...`` (if any input has it) followed by
    the labels that occur exactly once, in alphabetical order, as NumPy does.
    """
    s = subscripts.replace(" ", "")
    lhs, arrow, rhs = s.partition("->")
    ins = lhs.split(",")
    if len(ins) != nops:
        raise ValueError(f"einsum: {subscripts!r} names {len(ins)} operands, got {nops}")
    if not arrow:
        labels = [c for t in ins for c in _labels(t) if c != "..."]
        once = sorted(c for c in set(labels) if labels.count(c) == 1)
        rhs = ("..." if "..." in lhs else "") + "".join(once)
    return ins, rhs


def _explicit(subscripts, xs, spare):
    """Label lists of the operands and the output, ``...`` spelt out with spare labels.

    An operand's ellipsis covers the last of the broadcast ellipsis dimensions, as in
    NumPy's right-aligned broadcasting.
    """
    ins, rhs = parse_einsum(subscripts, len(xs))
    ins = [_labels(t) for t in ins]
    widths = [x.ndim - len(t) + 1 for t, x in zip(ins, xs, strict=True) if "..." in t]
    ell = [next(spare) for _ in range(max(widths, default=0))]

    def spell(labels, width):
        if "..." not in labels:
            return labels
        k = labels.index("...")
        return labels[:k] + ell[len(ell) - width:] + labels[k + 1:]

    return ([spell(t, x.ndim - len(t) + 1) for t, x in zip(ins, xs, strict=True)],
            spell(_labels(rhs), len(ell)))


def _operand_grad(g, k, ins, rhs, xs, spare):
    """The gradient of operand ``k``: an einsum of ``g`` with the other operands.

    A label repeated in operand ``k`` (``'ii'``) gets a fresh label for each repeat and
    an identity matrix linking the two, so the gradient lands on the diagonal only. A
    label of operand ``k`` found nowhere else (summed over operand ``k`` alone) comes in
    through a vector of ones.
    """
    size = dict(zip(ins[k], xs[k].shape, strict=True))
    dtype = g.dtype
    terms = [rhs] + [t for j, t in enumerate(ins) if j != k]
    arrays = [g] + [x for j, x in enumerate(xs) if j != k]
    present = {c for t in terms for c in t}
    target, seen, eyes = [], [], []
    for c in ins[k]:
        if c in seen:
            new = next(spare)
            eyes.append((c, new))
            target.append(new)
        else:
            seen.append(c)
            target.append(c)
    for c in seen:
        if c not in present:
            terms.append([c])
            arrays.append(np.ones(size[c], dtype=dtype))
    for c, new in eyes:
        terms.append([c, new])
        arrays.append(np.eye(size[c], dtype=dtype))
    spec = ",".join("".join(t) for t in terms) + "->" + "".join(target)
    return _einsum(arrays, subscripts=spec)


def einsum_forward(xs, subscripts, optimize=False):
    return np.einsum(subscripts, *xs, optimize=optimize)


def einsum_grad(g, out, *xs, subscripts, optimize=False):
    spare = iter(sorted(_LETTERS - set(subscripts)))
    ins, rhs = _explicit(subscripts, xs, spare)
    rest = list(spare)
    return tuple(_operand_grad(g, k, ins, rhs, xs, iter(rest)) for k in range(len(xs)))


def einsum_jvp(ts, out, *xs, subscripts, optimize=False):
    return plus(*[_einsum([t if j == i else x for j, x in enumerate(xs)],
                          subscripts=subscripts, optimize=optimize)
                  for i, t in enumerate(ts) if t is not None])


def einsum(subscripts, *operands, optimize=False):
    """``np.einsum``'s signature over the ``einsum`` op: ``einsum("ij,jk", a, b)``."""
    return _einsum(list(operands), subscripts=subscripts, optimize=optimize)


# ------------------------------------------------------------------ samples


def _dot_samples(rng):
    r = rng.standard_normal
    return [
        ((r(4), r(4)), {}),
        ((r((3, 4)), r((4, 2))), {}),
        ((r((3, 4)), r(4)), {}),
        ((r(4), r((4, 3))), {}),
        ((r((2, 3, 4)), r((4, 2))), {}),
        ((r((2, 3)), r((2, 3, 2))), {}),
        ((r((2, 3)), r(())), {}),
        ((r(()), r(3)), {}),
    ]


def _inner_samples(rng):
    r = rng.standard_normal
    return [((r(4), r(4)), {}), ((r((2, 4)), r((3, 4))), {}),
            ((r((2, 3, 4)), r(4)), {}), ((r(()), r((2, 3))), {})]


def _outer_samples(rng):
    r = rng.standard_normal
    return [((r(3), r(4)), {}), ((r((2, 2)), r(3)), {}), ((r(()), r(2)), {})]


def _vdot_samples(rng):
    r = rng.standard_normal
    return [((r(4), r(4)), {}), ((r((2, 3)), r((3, 2))), {})]


def _tensordot_samples(rng):
    r = rng.standard_normal
    return [
        ((r((2, 3, 4)), r((3, 4, 2))), {}),
        ((r((2, 3, 4)), r((4, 2))), {"axes": 1}),
        ((r((2, 3)), r((4,))), {"axes": 0}),
        ((r((2, 3, 4)), r((4, 2, 3))), {"axes": ([1, 2], [2, 0])}),
        ((r((3, 2)), r((2, 3))), {"axes": (0, 1)}),
        ((r((2, 3, 4)), r((2, 4))), {"axes": ((2, 0), (1, 0))}),
    ]


def _cross_samples(rng):
    r = rng.standard_normal
    return [
        ((r(3), r(3)), {}),
        ((r((4, 3)), r(3)), {}),
        ((r((3, 2)), r((2, 3))), {"axisa": 0}),
        ((r((2, 3)), r((3, 2))), {"axisb": 0, "axisc": 0}),
        ((r((3, 2)), r((3, 2))), {"axis": 0}),
    ]


def _multi_dot_samples(rng):
    r = rng.standard_normal
    return [(([r((2, 3)), r((3, 4)), r((4, 2))],), {}),
            (([r(3), r((3, 4)), r(4)],), {}),
            (([r(3), r((3, 2))],), {}),
            (([r((2, 3)), r((3, 4)), r((4, 2)), r(2)],), {})]


def _einsum_samples(rng):
    r = rng.standard_normal
    return [
        (([r((2, 3)), r((3, 4))],), {"subscripts": "ij,jk->ik"}),
        (([r((2, 3)), r((3, 4))],), {"subscripts": "ij,jk"}),
        (([r((3, 3))],), {"subscripts": "ii->i"}),
        (([r((3, 3))],), {"subscripts": "ii"}),
        (([r((2, 3))],), {"subscripts": "ij->"}),
        (([r((2, 3))],), {"subscripts": "ji"}),
        (([r((2, 2, 3)), r((2, 3, 2))],), {"subscripts": "...ij,...jk->...ik"}),
        (([r((1, 2, 3)), r((2, 3, 2))],), {"subscripts": "...ij,...jk"}),
        (([r((2, 4, 3))],), {"subscripts": "i...j->...i"}),
        (([r(3), r((3, 2)), r(2)],), {"subscripts": "i,ij,j->", "optimize": True}),
        (([r((2, 2, 3)), r(3)],), {"subscripts": "iij,j->ij"}),
        (([r(3), r(3)],), {"subscripts": "i,j->ij"}),
    ]


@hookimpl
def tapegrad_ops():
    return [
        OpDef("dot", np.dot, (dot_grad_a, dot_grad_b), jvp=bilinear(np.dot), params={}, method=True,
              implements=(np.dot,), samples=_dot_samples, complex=True,
              doc="np.dot: inner product of vectors, matrix product, sum over a's last "
                  "and b's second-to-last axis"),
        OpDef("vdot", np.vdot,
              (lambda g, out, a, b: (g * b).reshape(a.shape),
               lambda g, out, a, b: (g * a).reshape(b.shape)),
              jvp=bilinear(np.vdot), implements=(np.vdot,), samples=_vdot_samples,
              doc="np.vdot: the dot product of the flattened operands"),
        OpDef("inner", np.inner, (inner_grad_a, inner_grad_b), jvp=bilinear(np.inner),
              implements=(np.inner,), samples=_inner_samples, complex=True,
              lazy=False, doc="np.inner: sum over the last axes of both"),
        OpDef("outer", np.outer, (outer_grad_a, outer_grad_b), jvp=bilinear(np.outer), params={},
              implements=(np.outer,), samples=_outer_samples, complex=True,
              doc="np.outer: outer product of the flattened operands"),
        OpDef("tensordot", tensordot, (tensordot_grad_a, tensordot_grad_b),
              jvp=bilinear(np.tensordot), params={"axes": 2}, implements=(np.tensordot,),
              samples=_tensordot_samples, complex=True,
              doc="np.tensordot: sum over the given axes (an int, or a pair of sequences)"),
        OpDef("cross", np.cross, (cross_grad_a, cross_grad_b), jvp=cross_jvp,
              params={"axisa": -1, "axisb": -1, "axisc": -1, "axis": None},
              implements=(np.cross,), samples=_cross_samples, complex=True,
              lazy=False, doc="np.cross: cross product of 3-vectors along the given axes"),
        OpDef("multi_dot", lambda xs: np.linalg.multi_dot(xs), multi_dot_grad,
              jvp=multi_dot_jvp, variadic=True, params={},
              implements=(np.linalg.multi_dot,), samples=_multi_dot_samples, complex=True,
              lazy=False, doc="np.linalg.multi_dot: a chain of matrix products (1-D ends allowed)"),
        OpDef("einsum", einsum_forward, einsum_grad, jvp=einsum_jvp, variadic=True,
              params={"subscripts": None, "optimize": False}, samples=_einsum_samples,
              implements=((np.einsum, lambda op, subscripts, *operands, **kw:
                           op(list(operands), subscripts=subscripts, **kw)),),
              complex=True,
              doc="np.einsum over a list of operands: explicit, implicit, repeated labels, "
                  "ellipsis"),
    ]
