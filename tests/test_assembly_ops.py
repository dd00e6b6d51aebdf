"""Shaping and assembly ops (tapegrad/builtins/assembly.py): NumPy's forwards through
NumPy's own functions on Tensors, Tensor methods, closed-form gradients, second order."""

import numpy as np
import pytest

import tapegrad as tg

RNG = np.random.default_rng(7)
A = RNG.standard_normal((3, 4))
B = RNG.standard_normal((2, 3, 4))
V = RNG.standard_normal(4)
S = np.array(0.7)
F = np.asfortranarray(RNG.standard_normal((2, 3)))


def _run(fn, arrays, kw):
    """``fn`` on Tensors that require grad and on the plain arrays: same values; the
    Tensor result is tracked (backward reaches every input)."""
    ts = [tg.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts, **kw)
    assert isinstance(out, tg.Tensor)
    expected = fn(*arrays, **kw)
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.data, expected)
    out.backward(np.ones(out.shape))
    for t in ts:
        assert t.grad is not None and t.grad.shape == t.shape
    return ts, out


CASES = [
    ("squeeze", np.squeeze, [B[:1, :, :1]], {}),
    ("squeeze_axis", np.squeeze, [B[:1, :, :1]], {"axis": 0}),
    ("squeeze_axes", np.squeeze, [B[:1, :, :1]], {"axis": (0, 2)}),
    ("expand_dims", np.expand_dims, [A], {"axis": 1}),
    ("expand_dims_neg", np.expand_dims, [A], {"axis": -1}),
    ("expand_dims_tuple", np.expand_dims, [A], {"axis": (0, 3)}),
    ("ravel", np.ravel, [B], {}),
    ("ravel_F", np.ravel, [B], {"order": "F"}),
    ("ravel_A", np.ravel, [A], {"order": "A"}),
    ("ravel_K_reversed", np.ravel, [B[:, ::-1]], {"order": "K"}),
    ("atleast_1d_0d", np.atleast_1d, [S], {}),
    ("atleast_1d_2d", np.atleast_1d, [A], {}),
    ("atleast_2d_0d", np.atleast_2d, [S], {}),
    ("atleast_2d_1d", np.atleast_2d, [V], {}),
    ("atleast_3d_1d", np.atleast_3d, [V], {}),
    ("atleast_3d_2d", np.atleast_3d, [A], {}),
    ("repeat_flat", np.repeat, [A], {"repeats": 2}),
    ("repeat_axis", np.repeat, [A], {"repeats": 3, "axis": 0}),
    ("repeat_list", np.repeat, [A], {"repeats": [1, 0, 2, 1], "axis": -1}),
    ("repeat_positional", lambda x: np.repeat(x, [2, 1, 1], 0), [A], {}),
    ("tile_int", np.tile, [A], {"reps": 2}),
    ("tile_more", np.tile, [A], {"reps": (2, 1, 3)}),
    ("tile_fewer", np.tile, [B], {"reps": (2, 1)}),
    ("tile_0d", np.tile, [S], {"reps": (2, 3)}),
    ("pad_int", np.pad, [A], {"pad_width": 2}),
    ("pad_pair", np.pad, [A], {"pad_width": (1, 2)}),
    ("pad_pairs", lambda x: np.pad(x, ((0, 1), (2, 0)), constant_values=(3.0, -1.0)), [A], {}),
    ("pad_array", np.pad, [A], {"pad_width": np.array([[1, 0], [0, 2]])}),
    ("pad_edge", lambda x: np.pad(x, ((1,),), "edge"), [A], {}),
    ("pad_reflect", np.pad, [A], {"pad_width": (2, 3), "mode": "reflect"}),
    ("pad_reflect_wide", np.pad, [V], {"pad_width": 7, "mode": "reflect"}),
    ("pad_symmetric", np.pad, [A], {"pad_width": [[1, 4], [2, 0]], "mode": "symmetric"}),
    ("pad_wrap", np.pad, [A], {"pad_width": (5, 1), "mode": "wrap"}),
    ("roll_flat", np.roll, [A], {"shift": 5}),
    ("roll_axis", np.roll, [A], {"shift": -1, "axis": 1}),
    ("roll_tuple", np.roll, [B], {"shift": (1, -2), "axis": (0, 2)}),
    ("flip", np.flip, [B], {}),
    ("flip_axis", np.flip, [B], {"axis": 1}),
    ("flip_axes", np.flip, [B], {"axis": (0, 2)}),
    ("fliplr", np.fliplr, [A], {}),
    ("flipud", np.flipud, [V], {}),
    ("rot90", np.rot90, [A], {}),
    ("rot90_k", np.rot90, [B], {"k": 3, "axes": (2, 1)}),
    ("rot90_negative", lambda x: np.rot90(x, -1, (0, 2)), [B], {}),
    ("moveaxis", np.moveaxis, [B], {"source": 0, "destination": -1}),
    ("moveaxis_tuple", np.moveaxis, [B], {"source": (0, 2), "destination": (1, 0)}),
    ("rollaxis", np.rollaxis, [B], {"axis": 2}),
    ("rollaxis_start", lambda x: np.rollaxis(x, 0, 3), [B], {}),
    ("rollaxis_negative", np.rollaxis, [B], {"axis": -1, "start": -2}),
    ("hstack_1d", lambda *xs: np.hstack(xs), [V, V[:2], S], {}),
    ("hstack_2d", lambda *xs: np.hstack(xs), [A, A[:, :1]], {}),
    ("vstack", lambda *xs: np.vstack(xs), [V, A, S * np.ones(4)], {}),
    ("vstack_3d", lambda *xs: np.vstack(xs), [B, B[:1]], {}),
    ("dstack", lambda *xs: np.dstack(xs), [A, A[None].transpose(1, 2, 0)], {}),
    ("dstack_1d", lambda *xs: np.dstack(xs), [V, V], {}),
    ("column_stack", lambda *xs: np.column_stack(xs), [A[:, 0], A, S * np.ones(3)], {}),
    ("append_flat", np.append, [A, V], {}),
    ("append_axis", np.append, [A, A[:2]], {"axis": 0}),
    ("append_last", lambda a, b: np.append(a, b, -1), [A, A[:, :2]], {}),
    ("triu", np.triu, [A], {}),
    ("triu_k", np.triu, [B], {"k": 1}),
    ("triu_1d", np.triu, [V], {"k": -1}),
    ("tril", np.tril, [A], {}),
    ("tril_k", lambda x: np.tril(x, -1), [B], {}),
    ("diag_1d", np.diag, [V], {}),
    ("diag_1d_k", np.diag, [V], {"k": -2}),
    ("diag_2d", np.diag, [A], {}),
    ("diag_2d_k", lambda x: np.diag(x, 1), [A], {}),
    ("diag_2d_negative_k", np.diag, [A], {"k": -2}),
    ("kron", np.kron, [A, A[:2, :3]], {}),
    ("kron_ndim", np.kron, [V, B], {}),
    ("kron_0d", np.kron, [S, A], {}),
    ("take_flat", np.take, [A], {"indices": [0, 11, 11, 3]}),
    ("take_axis", lambda x: np.take(x, [[2, 0], [2, 2]], 1), [A], {}),
    ("take_scalar", np.take, [A], {"indices": -1, "axis": 0}),
    ("take_wrap", np.take, [A], {"indices": [7, -9], "axis": 1, "mode": "wrap"}),
    ("take_clip", np.take, [A], {"indices": [9, -3], "axis": 0, "mode": "clip"}),
]


@pytest.mark.parametrize("fn, arrays, kw", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_numpy_function_on_tensors_matches_numpy(fn, arrays, kw):
    _run(fn, arrays, kw)


def test_methods_have_ndarray_signatures():
    x = tg.tensor(B[:1, :, :1], requires_grad=True)
    a = B[:1, :, :1]
    assert x.squeeze().shape == a.squeeze().shape
    assert x.squeeze(0).shape == a.squeeze(0).shape
    np.testing.assert_array_equal(x.ravel().data, a.ravel())
    y = tg.tensor(F, requires_grad=True)
    np.testing.assert_array_equal(y.ravel("F").data, F.ravel("F"))
    np.testing.assert_array_equal(y.flatten().data, F.flatten())
    np.testing.assert_array_equal(y.flatten("F").data, F.flatten("F"))
    np.testing.assert_array_equal(y.repeat(2).data, F.repeat(2))
    np.testing.assert_array_equal(y.repeat([1, 3], 0).data, F.repeat([1, 3], 0))
    np.testing.assert_array_equal(y.take([2, 2, 0], 1).data, F.take([2, 2, 0], 1))
    np.testing.assert_array_equal(y.take(4).data, F.take(4))
    assert not hasattr(np, "flatten")   # a method only, as in NumPy


# ----------------------------------------------------------------- closed-form gradients


def _grad(f, x):
    t = tg.tensor(x, requires_grad=True)
    f(t).backward()
    return t.grad


@pytest.mark.parametrize("mode, width, counts", [
    ("edge", (2, 1), [3, 1, 1, 2]),            # [a a | a b c d | d]
    ("reflect", 2, [1, 3, 3, 1]),              # [c b | a b c d | c b]
    ("symmetric", 2, [2, 2, 2, 2]),            # [b a | a b c d | d c]
    ("wrap", (1, 2), [2, 2, 1, 2]),            # [d | a b c d | a b]
    ("reflect", (7, 0), [2, 4, 3, 2]),         # wider: [b a b c d c b | a b c d]
    ("constant", (3, 2), [1, 1, 1, 1]),        # the constants get nothing
])
def test_pad_gradient_counts_the_copies(mode, width, counts):
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(_grad(lambda t: np.pad(t, width, mode).sum(), x), counts)


def test_pad_gradient_scatters_weights_to_their_sources():
    x = RNG.standard_normal((2, 3))
    w = RNG.standard_normal((4, 7))
    g = _grad(lambda t: (np.pad(t, ((1, 1), (2, 2)), "edge") * w).sum(), x)
    expected = np.zeros((2, 3))                # each output reads its nearest input
    for i in range(4):
        for j in range(7):
            expected[min(max(i - 1, 0), 1), min(max(j - 2, 0), 2)] += w[i, j]
    np.testing.assert_allclose(g, expected)
    # every pad_width form, constant mode: the gradient is the inner block
    for width in (1, (1,), (1, 1), ((1, 1),), [[1, 1], [1, 1]], np.ones((2, 2), int)):
        g = _grad(lambda t, width=width: (np.pad(t, width, constant_values=9.0) * w[:, 1:6])
                  .sum(), x)
        np.testing.assert_array_equal(g, w[1:3, 2:5])


def test_pad_refuses_modes_it_cannot_differentiate():
    x = tg.tensor(A, requires_grad=True)
    with pytest.raises(ValueError, match="mode 'maximum' is not supported"):
        np.pad(x, 1, "maximum")
    with pytest.raises(ValueError, match="reflect_type"):
        np.pad(x, 1, "reflect", reflect_type="odd")


def test_take_accumulates_repeated_indices():
    x = np.arange(4.0)
    np.testing.assert_array_equal(_grad(lambda t: np.take(t, [1, 1, 3, 1]).sum(), x),
                                  [0, 3, 0, 1])
    m = np.arange(6.0).reshape(2, 3)
    w = np.array([[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]])
    g = _grad(lambda t: (np.take(t, [2, -1, 0], axis=1) * w).sum(), m)
    np.testing.assert_array_equal(g, [[100.0, 0.0, 11.0], [200.0, 0.0, 22.0]])
    # out-of-range indices in the wrap and clip modes land where they read
    np.testing.assert_array_equal(_grad(lambda t: np.take(t, [5, -6, 9], mode="wrap").sum(), x),
                                  [0, 2, 1, 0])
    np.testing.assert_array_equal(_grad(lambda t: np.take(t, [5, -6, 9], mode="clip").sum(), x),
                                  [1, 0, 0, 2])


def test_repeat_and_tile_gradients_sum_the_copies():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(
        _grad(lambda t: (np.repeat(t, [3, 0], axis=0) * np.arange(1.0, 7).reshape(3, 2))
              .sum(), x), [[9.0, 12.0], [0.0, 0.0]])
    np.testing.assert_array_equal(_grad(lambda t: np.tile(t, (3, 1, 2)).sum(), x),
                                  np.full((2, 2), 6.0))


def test_diag_triu_kron_gradients():
    np.testing.assert_array_equal(_grad(lambda t: np.diag(t, 1).sum(), np.ones((3, 4))),
                                  np.eye(3, 4, 1))
    w = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(_grad(lambda t: (np.diag(t, -1) * w).sum(), np.ones(2)),
                                  [3.0, 7.0])
    np.testing.assert_array_equal(_grad(lambda t: np.triu(t, 1).sum(), np.ones(3)), [0, 1, 2])
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 2))
    # d/da sum(kron(a, b)) = sum(b) everywhere
    np.testing.assert_allclose(_grad(lambda t: np.kron(t, b).sum(), a),
                               np.full((2, 3), b.sum()))


def test_ravel_orders():
    w = np.arange(6.0)
    x = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(_grad(lambda t: (np.ravel(t, "F") * w).sum(), x),
                                  [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])
    np.testing.assert_array_equal(_grad(lambda t: (t.flatten("F") * w).sum(), x),
                                  [[0.0, 2.0, 4.0], [1.0, 3.0, 5.0]])
    for order in ("C", "A", "K"):
        np.testing.assert_array_equal(_grad(lambda t, o=order: (np.ravel(t, o) * w).sum(), x),
                                      w.reshape(2, 3))
    # 'A' and 'K' on another memory layout: refused (a saved copy may be C-ordered)
    for order in ("A", "K"):
        with pytest.raises(ValueError, match="memory order"):
            np.ravel(tg.tensor(F, requires_grad=True), order)
        with pytest.raises(ValueError, match="memory order"):
            tg.tensor(F, requires_grad=True).flatten(order)


def test_atleast_1d_carries_a_gradient():
    x = tg.tensor(2.0, requires_grad=True)
    y = np.atleast_1d(x)
    assert isinstance(y, tg.Tensor) and y.shape == (1,)
    (y * 3.0).sum().backward()
    assert x.grad == 3.0
    pair = np.atleast_1d(x, x)                  # several arguments: a tuple, as NumPy
    assert type(pair) is tuple and all(p.shape == (1,) for p in pair)


def test_select_first_true_condition_wins_and_conditions_get_nothing():
    x = np.array([1.0, 2.0, 3.0])
    c1, c2 = np.array([True, False, False]), np.array([True, True, False])
    a, b, d = (tg.tensor(x * k, requires_grad=True) for k in (1, 10, 100))
    out = tg.ops.select([a, b, d], condlist=[c1, c2])
    np.testing.assert_array_equal(out.data, np.select([c1, c2], [x, 10 * x], 100 * x))
    (out * np.array([1.0, 2.0, 4.0])).sum().backward()
    np.testing.assert_array_equal(a.grad, [1, 0, 0])
    np.testing.assert_array_equal(b.grad, [0, 2, 0])
    np.testing.assert_array_equal(d.grad, [0, 0, 4])
    out = tg.ops.select([a], condlist=[c2])     # default 0, as NumPy's
    np.testing.assert_array_equal(out.data, np.select([c2], [x]))
    with pytest.raises(ValueError, match="conditions"):
        tg.ops.select([a, b, d, a], condlist=[c1])


def test_full_gradient_is_the_sum():
    v = tg.tensor(1.5, requires_grad=True)
    out = tg.ops.full((2, 3), v)
    np.testing.assert_array_equal(out.data, np.full((2, 3), 1.5))
    (out * np.arange(6.0).reshape(2, 3)).sum().backward()
    assert v.grad == 15.0
    row = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out = np.full((4, 3), row, like=row)        # NumPy dispatches np.full through like=
    np.testing.assert_array_equal(out.data, np.full((4, 3), [1.0, 2.0, 3.0]))
    out.sum().backward()
    np.testing.assert_array_equal(row.grad, [4.0, 4.0, 4.0])
    assert tg.ops.full(3, v, dtype=np.float32).dtype == np.float32


def test_stack_and_concatenate_are_top_level():
    a, b = tg.tensor(V, requires_grad=True), tg.tensor(2 * V, requires_grad=True)
    np.testing.assert_array_equal(tg.stack([a, b], axis=1).data, np.stack([V, 2 * V], 1))
    out = tg.concatenate([a, b])
    np.testing.assert_array_equal(out.data, np.concatenate([V, 2 * V]))
    (out * np.arange(8.0)).sum().backward()
    np.testing.assert_array_equal(b.grad, np.arange(4.0, 8.0))


# ----------------------------------------------------------------- second order

SECOND_ORDER = [
    ("pad_edge", lambda x: np.pad(x, ((1, 2), (0, 1)), "edge") ** 2, (A,)),
    ("pad_reflect", lambda x: np.sin(np.pad(x, 2, "reflect")), (A,)),
    ("pad_wrap", lambda x: np.pad(x * x, (3, 1), "wrap"), (V,)),
    ("pad_symmetric", lambda x: np.pad(x, 1, "symmetric") ** 3, (A,)),
    ("take", lambda x: np.take(x, [[0, 2], [2, 2]], axis=1) ** 2, (A,)),
    ("repeat", lambda x: np.repeat(x * x, [2, 0, 1], axis=0), (A[:3, :2],)),
    ("tile", lambda x: np.tile(x, (2, 1, 2)) ** 2, (A,)),
    ("roll_flip_rot90", lambda x: np.rot90(np.flip(np.roll(x, (1, 2), (0, 2)), 1), 1, (1, 2))
     ** 2, (B,)),
    ("axes", lambda x: np.rollaxis(np.moveaxis(x * x, 0, -1), 2, 1), (B,)),
    ("stacks", lambda x, y: np.column_stack([x, np.vstack([x, y]).T]) ** 2
     + np.hstack([x, y])[2:6, None], (V, V[::-1])),
    ("dstack_append", lambda x, y: np.append(np.dstack([x, y]), x * y) ** 2, (A, A)),
    ("triangles_diag", lambda x: np.diag(np.triu(x * x, 1) + np.tril(x, -1)), (A[:3, :3],)),
    ("diag_1d", lambda x: np.diag(x * x, 1), (V,)),
    ("kron", lambda x, y: np.kron(x, y) ** 2, (A[:2, :2], V)),
    ("squeeze_expand_ravel", lambda x: np.ravel(np.expand_dims(np.squeeze(x), 0) ** 2, "F"),
     (B[:1],)),
    ("atleast", lambda x: np.atleast_3d(x) * np.atleast_2d(x), (V,)),
    ("full", lambda x: tg.ops.full((2, 3), x) ** 3, (V[:3],)),
    ("select", lambda x, y: tg.ops.select([x * y, y], condlist=[A > 0]) ** 2, (A, A.T.T + 1)),
]


@pytest.mark.parametrize("f, args", [c[1:] for c in SECOND_ORDER],
                         ids=[c[0] for c in SECOND_ORDER])
def test_second_order(f, args):
    tg.check_grads(f, *args, order=2)
