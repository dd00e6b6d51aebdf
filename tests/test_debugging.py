"""Debugging aids: detect_anomaly, tensor hooks, to_dot, the Wengert list of a tape."""

from __future__ import annotations

import inspect
import re
import threading

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.state import STATE


def _line() -> int:
    """The line number of the caller."""
    return inspect.currentframe().f_back.f_lineno


# ----------------------------------------------------------------------- anomaly


def test_anomaly_forward_names_op_source_and_line():
    x = tg.tensor([1.0, -1.0], requires_grad=True)
    with np.errstate(invalid="ignore"), tg.detect_anomaly():
        with pytest.raises(FloatingPointError) as info:
            line = _line(); tg.ops.log(x)  # noqa: E702
    msg = str(info.value)
    assert "'log'" in msg
    assert tg.get_op("log").source in msg
    assert f"{__file__}:{line}" in msg
    assert "NaN" in msg


def test_anomaly_vjp_names_the_forward_call_site():
    x = tg.tensor([4.0, 0.0], requires_grad=True)
    with np.errstate(divide="ignore"), tg.detect_anomaly():
        line = _line(); y = tg.ops.sqrt(x)  # noqa: E702
        loss = y.sum()
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    msg = str(info.value)
    assert "vjp" in msg and "'sqrt'" in msg
    assert f"{__file__}:{line}" in msg
    assert "inf" in msg


def test_anomaly_reports_untracked_forward_too():
    with np.errstate(divide="ignore"), tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="'div'"):
            tg.tensor(1.0) / 0.0


def test_no_anomaly_check_outside_the_block():
    assert STATE.anomaly == 0
    with np.errstate(divide="ignore"):
        y = tg.ops.log(tg.tensor([0.0], requires_grad=True))
    assert np.isneginf(y.data[0])


def test_anomaly_blocks_nest_and_restore_the_flag():
    with tg.detect_anomaly():
        with tg.detect_anomaly():
            assert STATE.anomaly == 2
        assert STATE.anomaly == 1
    assert STATE.anomaly == 0
    with pytest.raises(ZeroDivisionError), tg.detect_anomaly():
        1 / 0  # noqa: B018
    assert STATE.anomaly == 0


def test_anomaly_as_decorator_and_threads():
    @tg.detect_anomaly()
    def step():
        return STATE.anomaly

    assert step() == 1
    assert STATE.anomaly == 0

    barrier = threading.Barrier(4)

    def worker():
        with tg.detect_anomaly():
            barrier.wait()
            (tg.tensor([1.0], requires_grad=True) * 2.0).sum().backward()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert STATE.anomaly == 0


def test_site_is_captured_only_in_anomaly_mode():
    x = tg.tensor(1.0, requires_grad=True)
    assert (x * 2.0)._node.site is None
    with tg.detect_anomaly():
        line = _line(); y = x * 2.0  # noqa: E702
    assert y._node.site.startswith(f"{__file__}:{line}")


# ----------------------------------------------------------------------- hooks


def test_hook_sees_and_replaces_the_gradient_of_a_leaf():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    seen = []

    def hook(g):
        seen.append(np.array(g))
        return g * 10

    x.register_hook(hook)
    (x * x).sum().backward()
    np.testing.assert_allclose(seen[0], [2.0, 4.0])
    np.testing.assert_allclose(x.grad, [20.0, 40.0])


def test_hook_on_intermediate_changes_what_flows_upstream():
    x = tg.tensor(3.0, requires_grad=True)
    y = x * x                   # dy/dx = 6
    y.register_hook(lambda g: g * 0.5)
    (y * 4.0).backward()        # g into y is 4, halved to 2
    assert x.grad == pytest.approx(2.0 * 6.0)


def test_hook_returning_none_keeps_gradient_and_can_be_removed():
    x = tg.tensor(2.0, requires_grad=True)
    seen = []
    remove = x.register_hook(lambda g: seen.append(float(np.asarray(g))))
    (x * 5.0).backward()
    assert seen == [5.0] and x.grad == pytest.approx(5.0)
    remove()
    x.grad = None
    (x * 5.0).backward()
    assert seen == [5.0] and x.grad == pytest.approx(5.0)


# ----------------------------------------------------------------------- to_dot


def test_to_dot_shows_names_ops_shapes_and_scalar_values():
    a = tg.tensor(2.0, requires_grad=True, name="a")
    b = tg.tensor(-3.0, requires_grad=True, name="b")
    w = tg.tensor(np.ones((2, 3)), requires_grad=True, name="w")
    e = a * b
    d = e + tg.ops.sum(w)
    L = tg.ops.tanh(d)
    L.name = "L"
    L.backward(retain_graph=True)
    dot = tg.to_dot(L)
    assert dot.startswith("digraph")
    assert dot.rstrip().endswith("}")
    for text in ("a", "b", "w", "L", "mul", "add", "sum", "tanh", "(2, 3)",
                 "data 2", "data -3", "grad"):
        assert text in dot, text
    # micrograd-style values: a.grad = dL/da = (1 - tanh(d)^2) * b
    expected = (1 - np.tanh(0.0) ** 2) * -3.0
    assert a.grad == pytest.approx(expected)
    assert f"grad {expected:.4g}" in dot
    # one op node per recorded call (mul, sum, add, tanh); an edge op -> value for each,
    # and one value -> op edge per tracked input (2 + 1 + 2 + 1)
    assert dot.count("shape=ellipse") == 4
    assert dot.count("->") == 4 + 6
    _assert_dot_syntax(dot)


def _assert_dot_syntax(dot: str) -> None:
    """Every statement is a quoted node or edge, with an optional closed attribute list."""
    lines = dot.strip().splitlines()
    assert re.fullmatch(r"digraph \w+ \{", lines[0]) and lines[-1] == "}"
    stmt = re.compile(r'  "[^"]+"( -> "[^"]+")?( \[(?:[^"\]]|"(?:[^"\\]|\\.)*")*\])?;')
    for line in lines[1:-1]:
        if line.strip() in ("rankdir=LR;",) or line.strip().startswith("node ["):
            continue
        assert stmt.fullmatch(line), line


def test_to_dot_of_deep_graph_needs_no_recursion():
    x = tg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    dot = tg.to_dot(y)
    assert dot.count("shape=ellipse") == 5000


def test_tape_to_dot_and_wengert_list():
    x = tg.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = tg.tensor([3.0, 4.0], requires_grad=True)
    with tg.Tape(persistent=True) as tape:
        p = x * y
        s = p.sum(axis=0)
        t = tg.ops.exp(s)
    text = str(tape)
    lines = text.splitlines()
    assert lines[0] == "Tape(persistent, 3 entries)"
    assert lines[1].startswith("v1 = input x")
    assert lines[2].startswith("v2 = input")
    assert lines[3].startswith("v3 = mul(v1, v2)")
    assert lines[4].startswith("v4 = sum(v3, axis=0)")
    assert lines[5].startswith("v5 = exp(v4)")
    assert "(2,)" in lines[3]
    dot = tape.to_dot()
    assert "mul" in dot and "exp" in dot and dot.count("shape=ellipse") == 3
    assert "axis=0" in dot
    _assert_dot_syntax(dot)
    assert tape.gradient(t, x) == pytest.approx(np.exp(11.0) * np.array([3.0, 4.0]))


def test_wengert_list_marks_constants():
    x = tg.tensor(1.0, requires_grad=True)
    with tg.Tape() as tape:
        x * 2.0
    assert "v2 = mul(v1, const)" in str(tape)
