"""Never silently wrong: the cases of the trustworthy-gradients issue, each with the right
number or the error that replaces a plausible wrong one; and the engine's several-output
ops, optional inputs and complex numbers."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.protect import COPY_LIMIT

BIG = COPY_LIMIT + 1


@pytest.fixture
def plugin():
    names = []

    def register(*ops):
        class P:
            @staticmethod
            @tg.hookimpl
            def tapegrad_ops():
                return list(ops)

        names.append(tg.register_plugin(P(), name=f"tt-{uuid.uuid4().hex[:6]}"))

    yield register
    for n in names:
        tg.unregister_plugin(n)


# ------------------------------------------------------------------ conversions


@pytest.mark.parametrize("convert", [
    np.asarray, np.array, lambda t: np.array([t, 2 * t]), lambda t: np.r_[t, t],
])
def test_implicit_conversion_of_a_tracked_tensor_raises(convert):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="detach") as err:
        convert(x * 1.0)
    assert isinstance(err.value, tg.TapegradError)


def test_third_party_code_calling_asarray_raises_instead_of_dropping_the_gradient():
    special = pytest.importorskip("scipy.special")
    stats = pytest.importorskip("scipy.stats")
    x = tg.tensor([0.5, 1.0], requires_grad=True)
    with pytest.raises(TypeError):
        stats.norm.pdf(x)
    with pytest.raises(TypeError):
        special.logsumexp(x * 2.0)


def test_explicit_exits_still_work():
    x = tg.tensor(1.5, requires_grad=True)
    y = x * 2.0
    assert y.item() == 3.0 and float(y) == 3.0
    assert y.data == 3.0 and y.numpy() == 3.0 and np.asarray(y.detach()) == 3.0


def test_untracked_tensors_convert_freely():
    np.testing.assert_array_equal(np.asarray(tg.tensor([1.0, 2.0])), [1.0, 2.0])


def test_atleast_1d_carries_the_gradient():
    x = tg.tensor(3.0, requires_grad=True)
    (np.atleast_1d(x) * 2.0).sum().backward()
    assert x.grad == 2.0


# ------------------------------------------------------------------ mutation


@pytest.mark.parametrize("view", [lambda x: x.T, lambda x: x.reshape(-1, 2),
                                  lambda x: x[:], lambda x: x.astype(x.dtype),
                                  lambda x: np.broadcast_to(x, (2, 2, 2))])
def test_a_view_of_a_small_leaf_is_saved_as_it_was(view):
    x = tg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    v = view(x)
    w = tg.tensor(np.ones(v.shape), requires_grad=True)
    z = (v * w).sum()
    want = np.broadcast_to(np.asarray(v.detach()).copy(), v.shape).copy()
    x.data[:] = 100.0  # allowed: the graph saved a private copy
    z.backward()
    np.testing.assert_allclose(w.grad, want)


def test_a_view_of_a_large_leaf_locks_the_leaf():
    x = tg.tensor(np.ones((BIG, 2)), requires_grad=True)
    w = tg.tensor(np.ones((2, BIG)), requires_grad=True)
    z = (x.T * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        x.data[:] = 100.0
    z.backward()
    np.testing.assert_allclose(w.grad, 1.0)
    x.data[:] = 100.0  # writable again once the graph is consumed


def test_weight_update_between_forward_and_backward_of_a_transposed_matmul():
    x = tg.tensor(np.ones((3, 2)))
    W = tg.tensor(np.full((4, 2), 0.5), requires_grad=True)
    loss = ((x @ W.T) ** 2).sum()
    W.data -= 0.5  # small: the graph kept its own copy of W
    loss.backward()
    np.testing.assert_allclose(W.grad, 2 * (x.data @ np.full((2, 4), 0.5)).T @ x.data)


def test_results_are_read_only_through_detach():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    with pytest.raises(ValueError, match="read-only"):
        y.detach().data[:] = 0.0
    y.sum().backward()
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]))


def test_astype_to_the_same_dtype_never_hands_out_the_leafs_own_array():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.astype(x.dtype)
    _ = y.data  # read-only for y ...
    x.data[0] = 5.0  # ... but the leaf stays writable
    assert x.data.flags.writeable


def test_views_made_before_the_forward_are_not_protected():
    # The documented limit (README): NumPy cannot take the write flag back from a view
    # that existed before the array was locked.
    big = np.ones(4 * BIG)
    early_view = big[:BIG]
    w = tg.tensor(np.ones(4 * BIG), requires_grad=True)
    loss = (w * big).sum()
    with pytest.raises(ValueError, match="read-only"):
        big[:] = 7.0
    early_view[:] = 7.0  # not caught
    loss.backward()
    assert w.grad[0] == 7.0


# ------------------------------------------------------------------ casts


def test_a_cast_to_integers_is_not_differentiable():
    x = tg.tensor([1.5, 2.5], requires_grad=True)
    y = (x.astype(np.int64) * 1.0).sum()
    assert not y.requires_grad
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


@pytest.mark.parametrize("dtype", [object, str])
def test_a_cast_to_non_numbers_is_refused_naming_the_op(dtype):
    x = tg.tensor([1.5, 2.5], requires_grad=True)
    with pytest.raises(tg.OpRuleError, match="astype"):
        x.astype(dtype)


# ------------------------------------------------------------------ in-place updates


def test_in_place_update_of_a_leaf_under_no_grad_keeps_the_leaf():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    same = w
    with tg.no_grad():
        w -= 0.25 * w.grad
    assert w is same and w.requires_grad
    np.testing.assert_allclose(w.data, [0.5, 1.0])
    (w * w).sum().backward()  # the next step works


def test_in_place_update_of_a_leaf_outside_no_grad_raises():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="in-place"):
        w += 1.0


# ------------------------------------------------------------------ interrupted backward


def test_keyboard_interrupt_in_a_vjp_leaves_tapegrad_working(plugin):
    name = f"tt_interrupt_{uuid.uuid4().hex[:6]}"

    def vjp(g, out, x):
        raise KeyboardInterrupt

    plugin(tg.OpDef(name, lambda x: x * 1.0, vjp))
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    loss = getattr(tg.ops, name)(x.exp()).sum()
    with pytest.raises(KeyboardInterrupt):
        loss.backward()
    with pytest.raises(RuntimeError, match="interrupted"):
        loss.backward()
    y = tg.tensor([3.0], requires_grad=True)
    (y * y).sum().backward()
    assert y.grad[0] == 6.0


# ------------------------------------------------------------------ drawing after backward


def test_to_dot_after_backward_still_shows_the_graph():
    a = tg.tensor(2.0, requires_grad=True, name="a")
    b = tg.tensor(-3.0, requires_grad=True, name="b")
    out = (a * b).tanh()
    out.backward()
    dot = tg.to_dot(out)
    for text in ("a", "b", "mul", "tanh", "grad"):
        assert text in dot
    assert "released" not in dot


# ------------------------------------------------------------------ several outputs


def _sincos_op():
    return tg.OpDef(
        "tt_sincos", lambda x: (np.sin(x), np.cos(x)),
        lambda g, out, x: g[0] * out[1] - g[1] * out[0], nout=2,
        samples=lambda rng: [((rng.uniform(-2, 2, (3,)),), {})])


def test_an_op_with_two_outputs_returns_two_tensors_sharing_one_record(plugin):
    plugin(_sincos_op())
    x = tg.tensor([0.3, 1.1], requires_grad=True)
    s, c = tg.ops.tt_sincos(x)
    assert s._node.record is c._node.record
    (s * 2.0 + c * c).sum().backward()
    xv = np.array([0.3, 1.1])
    np.testing.assert_allclose(x.grad, 2 * np.cos(xv) - 2 * np.cos(xv) * np.sin(xv))


def test_an_unused_output_gets_a_zero_upstream_gradient(plugin):
    plugin(_sincos_op())
    x = tg.tensor([0.3], requires_grad=True)
    s, _ = tg.ops.tt_sincos(x)
    s.sum().backward()
    np.testing.assert_allclose(x.grad, np.cos([0.3]))


def test_two_outputs_to_second_order_and_forward_mode(plugin):
    plugin(_sincos_op())
    tg.check_grads(lambda t: sum(o.sum() for o in tg.ops.tt_sincos(t)),
                   np.array([0.3, -0.7]), order=2)
    _, tangent = tg.jvp(lambda t: tg.ops.tt_sincos(t)[0], (np.array([0.5]),),
                        (np.array([1.0]),))
    np.testing.assert_allclose(tangent, np.cos([0.5]))


def test_a_named_tuple_result_keeps_its_type(plugin):
    plugin(tg.OpDef("tt_eigh", lambda a: np.linalg.eigh(a),
                    lambda g, out, a: None, nout=2))
    res = tg.ops.tt_eigh(tg.tensor(np.eye(2)))
    assert type(res).__name__ == "EighResult"
    assert isinstance(res.eigenvalues, tg.Tensor)


# ------------------------------------------------------------------ optional inputs


def test_a_trailing_input_may_be_left_out(plugin):
    def affine(x, w, b=None):
        return x * w if b is None else x * w + b

    plugin(tg.OpDef("tt_affine", affine,
                    lambda g, out, x, w, b: (g * w, g * x, None if b is None else g),
                    optional=1))
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    tg.ops.tt_affine(x, 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])
    b = tg.tensor([1.0, 1.0], requires_grad=True)
    tg.ops.tt_affine(x, 3.0, b).sum().backward()
    np.testing.assert_allclose(b.grad, [1.0, 1.0])
    assert "b=None" in tg.get_op("tt_affine").describe()


# ------------------------------------------------------------------ complex numbers


def test_abs_of_an_imaginary_multiple_has_the_real_gradient():
    x = tg.tensor([2.0, -3.0], requires_grad=True)
    abs(x * 1j).sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, -1.0])


def test_abs_of_a_complex_scalar_follows_pytorchs_convention():
    z = tg.tensor(1.0 + 2.0j, requires_grad=True)
    abs(z * (3.0 - 1.0j)).backward()  # |c z| = |c| |z|: grad = |c| z / |z|
    np.testing.assert_allclose(z.grad, np.sqrt(10) * (1 + 2j) / np.sqrt(5))


def test_z_times_its_conjugate():
    z = tg.tensor(np.array([1.0 + 2.0j, -0.5 + 0.25j]), requires_grad=True)
    (z * np.conj(z)).real.sum().backward()  # |z|^2: grad 2 z
    np.testing.assert_allclose(z.grad, 2 * z.data)


def test_exp_of_i_x():
    x = tg.tensor(np.array([0.3, 1.2]), requires_grad=True)
    np.exp(1j * x).real.sum().backward()  # cos x
    np.testing.assert_allclose(x.grad, -np.sin([0.3, 1.2]))


def test_matmul_with_complex_weights_against_finite_differences():
    rng = np.random.default_rng(0)
    W0 = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    xv = rng.standard_normal(3)
    W = tg.tensor(W0, requires_grad=True)
    abs(W @ xv).sum().backward()

    def loss(Wv):
        return np.abs(Wv @ xv).sum()

    eps = 1e-6
    num = np.zeros_like(W0)
    for idx in np.ndindex(W0.shape):
        for unit in (1.0, 1j):
            d = np.zeros_like(W0)
            d[idx] = eps * unit
            slope = (loss(W0 + d) - loss(W0 - d)) / (2 * eps)
            num[idx] += slope * unit  # dL/dRe + 1j dL/dIm
    np.testing.assert_allclose(W.grad, num, rtol=1e-6, atol=1e-8)


def test_backward_with_a_complex_seed_keeps_the_imaginary_part():
    z = tg.tensor(np.array([1.0 + 1.0j]), requires_grad=True)
    (z * 2.0).backward(np.array([1.0 - 2.0j]))
    np.testing.assert_allclose(z.grad, [2.0 - 4.0j])


def test_an_op_without_complex_rules_refuses_complex_inputs():
    z = tg.tensor(np.array([1.0 + 1.0j]), requires_grad=True)
    with pytest.raises(TypeError, match="complex"):
        tg.ops.relu(z * 1.0)


# ------------------------------------------------------------------ messages


def test_a_vjp_returning_a_string_is_reported_as_such(plugin):
    plugin(tg.OpDef("tt_strvjp", lambda x: x * 1.0, lambda g, out, x: "oops"))
    x = tg.tensor([1.0], requires_grad=True)
    with pytest.raises(tg.OpRuleError, match="tt_strvjp.*returned a str"):
        tg.ops.tt_strvjp(x).sum().backward()


def test_the_non_scalar_backward_hint_shows_public_api():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"t\.backward\(np\.ones\(t\.shape\)\)") as err:
        (x * 2.0).backward()
    assert "_data" not in str(err.value)
