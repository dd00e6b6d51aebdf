"""Threads recording and backpropagating at once give the same numbers as sequential runs.

Recording state (grad mode, open tapes) is per thread; leaf ``.grad`` accumulation is
locked. A short switch interval makes the interpreter interleave threads op by op.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tapegrad as tg

N_THREADS = 4
N_STEPS = 100


@pytest.fixture(autouse=True)
def fast_switching():
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(fn: Callable[[int], Any], n: int = N_THREADS) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def train(seed: int) -> dict[str, Any]:
    """100 SGD steps of a 4-8-1 tanh MLP on seed-specific data; every step's gradients."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((16, 4))
    y = np.sin(X.sum(axis=1, keepdims=True))
    params = [tg.tensor(rng.standard_normal(s) * 0.5, requires_grad=True)
              for s in [(4, 8), (8,), (8, 1), (1,)]]
    grads, losses = [], []
    for step in range(N_STEPS):
        w1, b1, w2, b2 = params
        batch = X[(step % 4) * 4:(step % 4) * 4 + 4]
        target = y[(step % 4) * 4:(step % 4) * 4 + 4]
        h = (batch @ w1 + b1).tanh()
        pred = h @ w2 + b2
        loss = ((pred - target) ** 2).mean() + 1e-3 * (w1 * w1).sum()
        loss.backward()
        losses.append(loss.item())
        grads.append([p.grad.copy() for p in params])
        with tg.no_grad():
            for p in params:
                p.data = p.data - 0.1 * p.grad
                p.grad = None
    return {"grads": grads, "losses": np.array(losses),
            "params": [p.data.copy() for p in params]}


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-12, atol=0)
    for ga, gb in zip(a["grads"], b["grads"], strict=True):
        for x, y in zip(ga, gb, strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)
    for x, y in zip(a["params"], b["params"], strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-15)


def test_parallel_training_matches_sequential():
    sequential = [train(seed) for seed in range(N_THREADS)]
    parallel = run_threads(train)
    for s, p in zip(sequential, parallel, strict=True):
        _assert_same(s, p)
    # the runs differ from each other: a mix-up between threads would show
    assert not np.allclose(sequential[0]["losses"], sequential[1]["losses"])
    assert sequential[0]["losses"][-1] < sequential[0]["losses"][0]


def test_parallel_training_through_tapes_matches_sequential():
    def tape_train(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(100 + seed)
        X = rng.standard_normal((8, 3))
        w = tg.tensor(rng.standard_normal((3, 2)), requires_grad=True)
        out = []
        for _ in range(N_STEPS):
            with tg.Tape() as tape:
                loss = (X @ w).sigmoid().sum()
            g = tape.gradient(loss, w)
            out.append(g)
            w.data = w.data - 0.05 * g
        return out

    sequential = [tape_train(i) for i in range(N_THREADS)]
    parallel = run_threads(tape_train)
    for s, p in zip(sequential, parallel, strict=True):
        for a, b in zip(s, p, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_threads_recording_into_their_own_tapes_never_see_each_others_entries():
    n_ops = 200
    barrier = threading.Barrier(N_THREADS)

    def record(i: int) -> tuple[int, set[str], float]:
        x = tg.tensor(float(i + 1))
        with tg.Tape() as tape:
            tape.watch(x)
            y = x
            for k in range(n_ops):
                y = y * 1.01 if k % 2 else y + float(i)
                if k == n_ops // 2:
                    barrier.wait()  # every tape is open and half full at once
        names = {e.op.name for e in tape.entries}
        return len(tape), names, float(tape.gradient(y, x))

    results = run_threads(record)
    for n, names, grad in results:
        assert n == n_ops
        assert names == {"mul", "add"}
        assert grad == pytest.approx(1.01 ** (n_ops // 2), rel=1e-12)


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    inside = threading.Event()
    done = threading.Event()
    seen = {}

    def quiet() -> None:
        with tg.no_grad():
            inside.set()
            done.wait(timeout=30)
            seen["quiet"] = tg.is_grad_enabled()

    t = threading.Thread(target=quiet)
    t.start()
    try:
        assert inside.wait(timeout=30)
        assert tg.is_grad_enabled()
        x = tg.tensor(2.0, requires_grad=True)
        (x * x).backward()
        assert float(x.grad) == 4.0
    finally:
        done.set()
        t.join()
    assert seen["quiet"] is False


def test_concurrent_backward_into_a_shared_leaf_accumulates_every_gradient():
    w = tg.tensor(np.zeros(5), requires_grad=True)

    def work(i: int) -> None:
        c = np.arange(5.0) + i
        for _ in range(N_STEPS):
            ((w + 1.0) * c).sum().backward()

    run_threads(work)
    expected = N_STEPS * sum(np.arange(5.0) + i for i in range(N_THREADS))
    np.testing.assert_array_equal(w.grad, expected)


def test_shared_frozen_weights_read_by_many_threads():
    rng = np.random.default_rng(7)
    W = tg.tensor(rng.standard_normal((6, 6)), requires_grad=True)
    inputs = [rng.standard_normal((3, 6)) for _ in range(N_THREADS)]

    def grads_of(i: int) -> np.ndarray:
        xs = tg.tensor(inputs[i], requires_grad=True)
        last = None
        for _ in range(50):
            with tg.Tape() as tape:
                loss = (xs @ W).tanh().sum()
            last = tape.gradient(loss, xs)
        return last

    parallel = run_threads(grads_of)
    for i, g in enumerate(parallel):
        expected = (1 - np.tanh(inputs[i] @ W.data) ** 2) @ W.data.T
        np.testing.assert_allclose(g, expected, rtol=1e-12)
    assert W.grad is None  # tape.gradient never accumulates into leaves
