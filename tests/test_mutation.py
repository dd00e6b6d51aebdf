"""Mutating an array a live graph saved never yields a silently wrong gradient.

The rule (README, "Data, copies and mutation"): ``tg.tensor`` copies its data; a saved
array the user can reach is copied when small (<= protect.COPY_LIMIT elements) and made
read-only while the graph needs it when large; results of recorded ops are read-only.
"""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.protect import COPY_LIMIT

BIG = COPY_LIMIT + 1


def test_tensor_copies_the_ndarray_it_is_built_from():
    src = np.array([1.0, 2.0, 3.0])
    t = tg.tensor(src, requires_grad=True)
    src[0] = 100.0
    assert t.data[0] == 1.0
    assert not np.shares_memory(t.data, src)


def test_data_is_returned_without_a_copy():
    t = tg.tensor(np.zeros(3))
    assert t.data is t.data
    assert t.numpy() is t.data


def test_small_leaf_mutated_before_backward_gives_the_recorded_gradient():
    w = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    w.data[...] = 100.0  # allowed: the graph saved its own copy
    loss.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 4.0, 6.0])


def test_large_leaf_in_place_update_is_refused_while_the_graph_lives():
    w = tg.tensor(np.ones(BIG), requires_grad=True)
    loss = (w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        w.data -= 0.5
    with pytest.raises(ValueError, match="read-only"):
        w.data[0] = 7.0
    loss.backward()
    np.testing.assert_array_equal(w.grad, np.full(BIG, 2.0))
    w.data -= 0.5  # the graph is consumed: writable again
    assert w.data[0] == 0.5


def test_optimizer_step_between_forward_and_retained_backward():
    w = tg.tensor(np.ones(BIG), requires_grad=True)
    opt = tg.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    opt.step()  # replaces the locked array instead of writing into it
    assert np.allclose(w.data, 1.0 - 0.1 * 2.0)
    w.grad = None
    loss.backward()  # still the gradient at the recorded weights, not the new ones
    np.testing.assert_allclose(w.grad, np.full(BIG, 2.0))


def test_manual_update_between_forward_and_retained_backward_is_refused():
    w = tg.tensor(np.ones(BIG), requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(ValueError, match="read-only"):
        w.data -= 0.1 * w.grad
    w.grad = None
    loss.backward()
    np.testing.assert_array_equal(w.grad, np.full(BIG, 2.0))


def test_dropped_graph_releases_its_locks():
    w = tg.tensor(np.ones(BIG), requires_grad=True)
    loss = (w * 3.0).sum()
    assert not w.data.flags.writeable
    del loss
    assert w.data.flags.writeable


def test_locks_are_counted_across_graphs():
    w = tg.tensor(np.ones(BIG), requires_grad=True)
    a = (w * w).sum()
    b = (w * 2.0).sum()
    a.backward()
    assert not w.data.flags.writeable  # b still needs it
    b.backward()
    assert w.data.flags.writeable


def test_plain_ndarray_inputs_are_protected_too():
    small = np.array([1.0, 2.0])
    big = np.ones(BIG)
    x = tg.tensor([3.0, 4.0], requires_grad=True)
    y = tg.tensor(np.ones(BIG), requires_grad=True)
    loss = (x * small).sum() + (y * big).sum()
    small[:] = 50.0  # copied at record time: no effect on the gradient
    with pytest.raises(ValueError, match="read-only"):
        big[0] = 2.0
    loss.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0])
    np.testing.assert_array_equal(y.grad, np.ones(BIG))
    big[0] = 2.0  # released after backward


def test_results_of_recorded_ops_are_read_only():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.tanh()
    z = (y * y).sum()
    with pytest.raises(ValueError, match="read-only"):
        y.data[0] = 0.0
    with pytest.raises(TypeError, match="implicitly"):
        np.asarray(y)  # a tracked result never becomes a plain array behind the user's back
    with pytest.raises(ValueError, match="read-only"):
        y.detach().data[0] = 0.0
    with pytest.raises(RuntimeError, match="recorded op"):
        y.data = np.zeros(2)
    z.backward()
    t = np.tanh([1.0, 2.0])
    np.testing.assert_allclose(x.grad, 2 * t * (1 - t * t))


def test_replacing_leaf_data_is_always_allowed_and_keeps_the_recorded_value():
    w = tg.tensor(np.ones(BIG), requires_grad=True)
    loss = (w * w).sum()
    w.data = np.full(BIG, 5.0)
    loss.backward()
    np.testing.assert_array_equal(w.grad, np.full(BIG, 2.0))
    assert w.data[0] == 5.0


def test_view_of_a_locked_base_is_unlocked_after_its_base():
    base = np.ones(2 * BIG)
    view = base[:BIG]
    a = tg.tensor(np.ones(BIG), requires_grad=True)
    b = tg.tensor(np.ones(2 * BIG), requires_grad=True)
    la = (a * view).sum()
    lb = (b * base).sum()
    del la
    del lb
    assert base.flags.writeable and view.flags.writeable


@pytest.mark.parametrize("size", [3, BIG])
@pytest.mark.parametrize("in_tape", [False, True])
def test_one_input_op_saving_a_leaf_protects_it(size, in_tape):
    # log's rule reads its input: the leaf's data is saved (copied small, locked large)
    # on the inline path and on the general one (an open tape) alike.
    x = tg.tensor(np.full(size, 2.0), requires_grad=True)
    if in_tape:
        with tg.Tape() as tape:
            loss = tg.ops.log(x).sum()
    else:
        loss = tg.ops.log(x).sum()
    if size == BIG:
        with pytest.raises(ValueError, match="read-only"):
            x.data[0] = 4.0
    else:
        x.data[...] = 4.0  # the graph kept its own copy
    grad = tape.gradient(loss, x) if in_tape else (loss.backward(), x.grad)[1]
    np.testing.assert_array_equal(grad, np.full(size, 0.5))
    if size == BIG:
        x.data[0] = 4.0  # released by the backward
