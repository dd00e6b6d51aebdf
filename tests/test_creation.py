"""Creation helpers: tg.zeros, ones, full, zeros_like, ones_like, arange, linspace, eye,
randn, rand. Values against NumPy's, dtypes, requires_grad, seeded generators."""

from __future__ import annotations

import numpy as np
import pytest

import tapegrad as tg


def _leaf(t, dtype, shape):
    assert isinstance(t, tg.Tensor) and t.is_leaf
    assert t.dtype == dtype and t.shape == shape


@pytest.mark.parametrize("make, fill", [(tg.zeros, 0.0), (tg.ones, 1.0)])
def test_zeros_ones_numpy_and_torch_shapes(make, fill):
    for shape_args in [((2, 3),), (2, 3), ([2, 3],)]:
        t = make(*shape_args)
        _leaf(t, np.float64, (2, 3))
        np.testing.assert_array_equal(t.data, np.full((2, 3), fill))
        assert not t.requires_grad and t.grad is None
    _leaf(make(4), np.float64, (4,))
    _leaf(make(()), np.float64, ())
    _leaf(make(2, dtype=np.float32), np.float32, (2,))
    _leaf(make(2, dtype=np.int32), np.int32, (2,))
    with pytest.raises(TypeError, match="dtype= as a keyword"):
        make((2,), np.float32)


def test_requires_grad_leaves_take_gradients():
    w = tg.ones(3, requires_grad=True)
    b = tg.zeros((), requires_grad=True)
    assert w.requires_grad and b.requires_grad
    ((w * tg.tensor([1.0, 2.0, 3.0])).sum() + 5 * b).backward()
    np.testing.assert_array_equal(w.grad, [1.0, 2.0, 3.0])
    assert b.grad == 5.0


@pytest.mark.parametrize("call", [
    lambda: tg.zeros(2, dtype=np.int64, requires_grad=True),
    lambda: tg.ones(2, dtype=bool, requires_grad=True),
    lambda: tg.full(3, 7, requires_grad=True),             # int64 like np.full
    lambda: tg.arange(4, requires_grad=True),
    lambda: tg.eye(2, dtype=np.int8, requires_grad=True),
    lambda: tg.zeros_like(np.arange(3), requires_grad=True),
    lambda: tg.linspace(0, 10, 3, dtype=int, requires_grad=True),
])
def test_requires_grad_with_integer_dtype_raises(call):
    with pytest.raises(TypeError, match="floating"):
        call()


def test_full_follows_numpy_dtype_rules():
    t = tg.full((2, 2), 2.5)
    _leaf(t, np.float64, (2, 2))
    np.testing.assert_array_equal(t.data, np.full((2, 2), 2.5))
    assert tg.full(3, 7).dtype == np.int64
    t = tg.full(3, 7, dtype=np.float32, requires_grad=True)
    _leaf(t, np.float32, (3,))
    np.testing.assert_array_equal(t.data, [7, 7, 7])
    np.testing.assert_array_equal(tg.full(2, tg.tensor(1.5)).data, [1.5, 1.5])


def test_like_helpers_keep_shape_and_dtype_and_own_their_data():
    x = np.arange(6.0, dtype=np.float32).reshape(2, 3)
    z = tg.zeros_like(x)
    _leaf(z, np.float32, (2, 3))
    np.testing.assert_array_equal(z.data, np.zeros((2, 3)))
    o = tg.ones_like(tg.tensor(x, requires_grad=True), dtype=np.float64, requires_grad=True)
    _leaf(o, np.float64, (2, 3))
    assert o.requires_grad
    np.testing.assert_array_equal(o.data, np.ones((2, 3)))
    assert tg.zeros_like(np.arange(3)).dtype == np.int64
    o.data[0, 0] = 5.0
    assert x[0, 0] == 0.0


@pytest.mark.parametrize("args, kw", [
    ((5,), {}), ((2, 7), {}), ((0.0, 1.0, 0.25), {}), ((3, -3, -2), {}),
    ((4,), {"dtype": np.float32}), ((1, 2, 0.1), {}),
])
def test_arange_matches_numpy(args, kw):
    t = tg.arange(*args, **kw)
    expected = np.arange(*args, **kw)
    assert t.dtype == expected.dtype
    np.testing.assert_array_equal(t.data, expected)


def test_arange_step_keyword_and_requires_grad():
    np.testing.assert_array_equal(tg.arange(6, step=2).data, [0, 2, 4])
    t = tg.arange(0.0, 3.0, requires_grad=True)
    assert t.requires_grad
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 2.0, 4.0])


def test_linspace_matches_numpy():
    np.testing.assert_array_equal(tg.linspace(0, 1, 5).data, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(tg.linspace(0, 1, 4, endpoint=False).data,
                                  [0, 0.25, 0.5, 0.75])
    t, step = tg.linspace(2.0, 3.0, 3, retstep=True, requires_grad=True)
    assert step == 0.5 and t.requires_grad
    np.testing.assert_array_equal(t.data, [2.0, 2.5, 3.0])
    t = tg.linspace([0, 10], [1, 20], 3, axis=1, dtype=np.float32)
    np.testing.assert_allclose(t.data, [[0, 0.5, 1], [10, 15, 20]])
    assert t.dtype == np.float32


def test_eye_offsets_and_rectangles():
    np.testing.assert_array_equal(tg.eye(3).data, np.eye(3))
    np.testing.assert_array_equal(tg.eye(2, 4, k=1).data,
                                  [[0, 1, 0, 0], [0, 0, 1, 0]])
    np.testing.assert_array_equal(tg.eye(3, k=-1).data, np.eye(3, k=-1))
    _leaf(tg.eye(2, dtype=np.float32, requires_grad=True), np.float32, (2, 2))


def test_randn_and_rand_reproduce_numpy_generators():
    np.testing.assert_array_equal(tg.randn(3, rng=0).data,
                                  np.random.default_rng(0).standard_normal(3))
    np.testing.assert_array_equal(tg.randn((2, 3), rng=5).data,
                                  np.random.default_rng(5).standard_normal((2, 3)))
    np.testing.assert_array_equal(tg.rand(2, 2, rng=1).data,
                                  np.random.default_rng(1).random((2, 2)))
    gen, ref = np.random.default_rng(3), np.random.default_rng(3)
    a, b = tg.randn(4, rng=gen), tg.randn(4, rng=gen)  # a Generator advances
    np.testing.assert_array_equal(a.data, ref.standard_normal(4))
    np.testing.assert_array_equal(b.data, ref.standard_normal(4))
    assert tg.randn(rng=0).shape == ()
    r = tg.randn(2, 2, rng=0, dtype=np.float32, requires_grad=True)
    _leaf(r, np.float32, (2, 2))
    assert r.requires_grad
    np.testing.assert_array_equal(
        r.data, np.random.default_rng(0).standard_normal((2, 2)).astype(np.float32))
    u = tg.rand(1000, rng=2).data
    assert 0.0 <= u.min() and u.max() < 1.0
    assert not np.array_equal(tg.randn(3).data, tg.randn(3).data)  # fresh entropy


def test_random_helpers_refuse_bad_rng_and_dtype():
    with pytest.raises(TypeError, match="rng"):
        tg.randn(2, rng="seed")
    with pytest.raises(TypeError, match="floating"):
        tg.rand(2, dtype=np.int64)


def test_helpers_are_exported():
    for name in ("zeros", "ones", "full", "zeros_like", "ones_like", "arange", "linspace",
                 "eye", "randn", "rand"):
        assert name in tg.__all__ and callable(getattr(tg, name))
