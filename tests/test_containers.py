"""Containers in the transforms (tapegrad/tree.py pytrees), and transforms that close over
tracked tensors (nested differentiation without perturbation confusion).

Every gradient is compared with a closed form, a hand-written backward pass in NumPy,
or the same transform on separate arguments.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, namedtuple

import numpy as np
import pytest

import tapegrad as tg
from tapegrad import tree

RNG = np.random.default_rng(11)
Pair = namedtuple("Pair", "w b")


# ----------------------------------------------------------------------- tree


def test_flatten_unflatten_round_trip_keeps_types_and_order():
    a, b, c, d = np.ones(2), np.zeros(3), 2.5, tg.tensor(1.0)
    obj = {"z": [a, (b, None)], "a": Pair(c, d), "m": OrderedDict(k=a)}
    leaves, td = tree.flatten(obj)
    assert leaves[0] is a and leaves[1] is b and leaves[2] == 2.5 and leaves[3] is d
    assert len(leaves) == td.num_leaves == 5
    assert td.paths() == ["['z'][0]", "['z'][1][0]", "['a'].w", "['a'].b", "['m']['k']"]
    back = tree.unflatten(td, [10, 11, 12, 13, 14])
    assert back == {"z": [10, (11, None)], "a": Pair(12, 13), "m": OrderedDict(k=14)}
    assert list(back) == ["z", "a", "m"]                     # insertion order, not sorted
    assert type(back["a"]) is Pair and type(back["m"]) is OrderedDict
    assert type(back["z"]) is list and type(back["z"][1]) is tuple
    dd = tree.unflatten(*reversed(tree.flatten(defaultdict(list, x=1.0))))
    assert isinstance(dd, defaultdict) and dd["missing"] == []
    with pytest.raises(ValueError, match="holds 5 leaves"):
        tree.unflatten(td, [1, 2])


def test_number_lists_are_array_leaves_and_other_lists_are_nodes():
    assert tree.flatten([1.0, 2.0])[0] == [[1.0, 2.0]]
    assert tree.flatten([[1, 2], [3, 4]])[1].is_leaf
    assert tree.flatten((np.float64(1.0), 2))[1].is_leaf
    leaves, td = tree.flatten([np.ones(2), 3.0])
    assert len(leaves) == 2 and not td.is_leaf
    assert tree.flatten([])[0] == [] and tree.flatten(None)[0] == []
    assert tree.flatten(np.ones(3))[1].is_leaf
    assert not tree.is_container(np.ones(2)) and tree.is_container({"a": 1})
    assert tree.flatten({"a": 1, "b": 2})[1] != tree.flatten({"b": 2, "a": 1})[1]
    assert tree.flatten({"a": 1, "b": [2, None]})[1] == tree.flatten({"a": 5, "b": [6, None]})[1]


def test_flatten_like_matches_keys_by_name_and_fills_none():
    _, td = tree.flatten({"a": np.ones(2), "b": (np.ones(1), np.ones(3))})
    assert tree.flatten_like(td, {"b": (1, 2), "a": 0}) == [0, 1, 2]
    assert tree.flatten_like(td, {"a": 7, "b": None}) == [7, None, None]
    assert tree.flatten_like(td, None) == [None, None, None]
    assert tree.flatten_like(td, {"a": [1.0, 2.0], "b": [3, 4]}) == [[1.0, 2.0], 3, 4]
    with pytest.raises(ValueError, match=r"missing \['b'\], unexpected \['c'\]"):
        tree.flatten_like(td, {"a": 1, "c": 2}, "g")
    with pytest.raises(ValueError, match=r"g\['b'\]: expected a sequence of 2 items"):
        tree.flatten_like(td, {"a": 1, "b": (1, 2, 3)}, "g")
    squares = tree.tree_map(lambda x, y: x * y, {"a": 2.0, "b": [3.0, None]},
                            {"a": 4.0, "b": [5.0, None]})
    assert squares == {"a": 8.0, "b": [15.0, None]}


# ----------------------------------------------------------------------- grad


def _net_params():
    return {"l1": {"W": RNG.standard_normal((3, 4)), "b": RNG.standard_normal(4)},
            "l2": [RNG.standard_normal((4, 2)), RNG.standard_normal(2)]}


def _loss(p, x, y):
    h = tg.ops.tanh(x @ p["l1"]["W"] + p["l1"]["b"])
    return ((h @ p["l2"][0] + p["l2"][1] - y) ** 2).mean()


def _numpy_backprop(p, x, y):
    """The same loss's gradient, by hand."""
    W1, b1, (W2, b2) = p["l1"]["W"], p["l1"]["b"], p["l2"]
    h = np.tanh(x @ W1 + b1)
    r = h @ W2 + b2 - y
    g_out = 2 * r / r.size
    g_h = g_out @ W2.T * (1 - h ** 2)
    return {"l1": {"W": x.T @ g_h, "b": g_h.sum(0)}, "l2": [h.T @ g_out, g_out.sum(0)]}


def test_grad_of_two_layer_net_wrt_dict_params():
    p = _net_params()
    x, y = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    g = tg.grad(_loss)(p, x, y)
    expected = _numpy_backprop(p, x, y)
    assert list(g) == ["l1", "l2"] and list(g["l1"]) == ["W", "b"]
    assert type(g["l2"]) is list and len(g["l2"]) == 2
    for got, want in zip(tree.leaves(g), tree.leaves(expected), strict=True):
        assert isinstance(got, np.ndarray)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the same as differentiating separate arguments
    flat = lambda W1, b1, W2, b2, x, y: _loss({"l1": {"W": W1, "b": b1}, "l2": [W2, b2]},
                                              x, y)
    sep = tg.grad(flat, argnums=(0, 1, 2, 3))(p["l1"]["W"], p["l1"]["b"], *p["l2"], x, y)
    for got, want in zip(tree.leaves(g), sep, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    v, g2 = tg.value_and_grad(_loss)(p, x, y)
    h = np.tanh(x @ p["l1"]["W"] + p["l1"]["b"])
    assert v == pytest.approx(np.mean((h @ p["l2"][0] + p["l2"][1] - y) ** 2))
    np.testing.assert_allclose(g2["l2"][0], expected["l2"][0], rtol=1e-10)


def test_grad_namedtuple_none_and_argnums_tuple_of_containers():
    f = lambda p, q: (p.w * p.b).sum() * q["s"][0] + q["s"][1]
    p = Pair(np.array([1.0, 2.0]), 3.0)
    q = {"s": (2.0, 5.0), "frozen": None}
    gp, gq = tg.grad(f, argnums=(0, 1))(p, q)
    assert type(gp) is Pair
    np.testing.assert_allclose(gp.w, [6.0, 6.0])          # b * s0
    assert gp.b == pytest.approx(6.0)                     # sum(w) * s0
    assert gq["frozen"] is None
    assert isinstance(gq["s"], np.ndarray)  # a tuple of numbers is one array
    np.testing.assert_allclose(gq["s"], [9.0, 1.0])
    # a list of numbers is one array argument; a list with an array in it is a list
    np.testing.assert_allclose(tg.grad(lambda v: (v * v).sum())([1.0, 3.0]), [2.0, 6.0])
    g = tg.grad(lambda v: v[0].sum() * v[1])([np.ones(2), 4.0])
    assert type(g) is list
    np.testing.assert_allclose(g[0], [4.0, 4.0])
    assert g[1] == pytest.approx(2.0)


def test_grad_of_container_with_tracked_leaves_is_recorded():
    w = tg.tensor([1.0, -2.0], requires_grad=True)
    g = tg.grad(lambda p: (p["w"] ** 3).sum() + p["c"])({"w": w, "c": 4.0})
    assert isinstance(g["w"], tg.Tensor)
    np.testing.assert_allclose(g["w"].data, 3 * w.data ** 2)
    g["w"].sum().backward()
    np.testing.assert_allclose(w.grad, 6 * w.data)


def test_grad_bad_leaf_is_named():
    with pytest.raises(TypeError, match=r"argument 0\['name'\]"):
        tg.grad(lambda p: p["x"].sum())({"x": np.ones(2), "name": "abc"})


# ----------------------------------------------------------------------- vjp / jvp


def test_vjp_with_tuple_and_dict_outputs():
    a, b = np.array([1.0, 2.0]), np.array([3.0, -1.0])

    def f(p, c):
        return p["a"] * p["b"], {"s": (p["a"] * c).sum(), "t": tg.ops.sin(p["b"])}

    out, vjp_fn = tg.vjp(f, {"a": a, "b": b}, 2.0)
    np.testing.assert_allclose(out[0], a * b)
    assert out[1]["s"] == pytest.approx(2.0 * a.sum())
    np.testing.assert_allclose(out[1]["t"], np.sin(b))
    u, w = np.array([1.0, 10.0]), np.array([0.5, -2.0])
    gp, gc = vjp_fn((u, {"t": w, "s": 3.0}))              # keys in another order
    np.testing.assert_allclose(gp["a"], u * b + 3.0 * 2.0)
    np.testing.assert_allclose(gp["b"], u * a + w * np.cos(b))
    assert gc == pytest.approx(3.0 * a.sum())
    gp, gc = vjp_fn((None, {"s": 1.0, "t": None}))        # None: zero cotangent
    np.testing.assert_allclose(gp["a"], [2.0, 2.0])
    np.testing.assert_allclose(gp["b"], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"cotangent\[1\]\['t'\] has shape \(3,\)"):
        vjp_fn((u, {"s": 1.0, "t": np.ones(3)}))
    with pytest.raises(ValueError, match="expected a sequence of 2 items"):
        vjp_fn(u)


def test_jvp_with_container_primals_and_tuple_outputs():
    a, b = np.array([1.0, 2.0]), 3.0
    da = np.array([0.5, -1.0])

    def f(p):
        return p["a"] * p["b"], {"n": (p["a"] ** 2).sum()}

    out, tan = tg.jvp(f, ({"a": a, "b": b},), ({"a": da, "b": 2.0},))
    np.testing.assert_allclose(out[0], a * b)
    assert out[1]["n"] == pytest.approx(5.0)
    np.testing.assert_allclose(tan[0], da * b + a * 2.0)
    assert tan[1]["n"] == pytest.approx(2 * a @ da)
    _, tan = tg.jvp(f, ({"a": a, "b": b},), ({"a": None, "b": 1.0},))
    np.testing.assert_allclose(tan[0], a)
    assert tan[1]["n"] == pytest.approx(0.0)
    _, tan = tg.jvp(f, ({"a": a, "b": b},), (None,))
    np.testing.assert_allclose(tan[0], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"tangent 0\['a'\] has shape \(3,\)"):
        tg.jvp(f, ({"a": a, "b": b},), ({"a": np.ones(3), "b": 0.0},))
    # jvp agrees with vjp: <J v, u> == <v, J^T u>
    v = {"a": da, "b": 2.0}
    _, jv = tg.jvp(lambda p: p["a"] * p["b"], ({"a": a, "b": b},), (v,))
    _, vjp_fn = tg.vjp(lambda p: p["a"] * p["b"], {"a": a, "b": b})
    u = np.array([1.5, -0.5])
    (ju,) = vjp_fn(u)
    assert jv @ u == pytest.approx(ju["a"] @ da + ju["b"] * 2.0)


# ----------------------------------------------------------------------- jacobian / hessian


def test_jacobian_of_dict_argument_and_tuple_output():
    a, b = np.array([1.0, 2.0, 3.0]), 2.0
    J = tg.jacobian(lambda p: (p["a"] * p["b"], p["a"].sum()))({"a": a, "b": b})
    assert isinstance(J, tuple) and list(J[0]) == ["a", "b"]
    np.testing.assert_allclose(J[0]["a"], b * np.eye(3))
    np.testing.assert_allclose(J[0]["b"], a)
    np.testing.assert_allclose(J[1]["a"], np.ones(3))
    assert J[1]["b"] == pytest.approx(0.0) and J[1]["b"].shape == ()


def test_hessian_of_dict_argument_function():
    a, b, c = np.array([0.3, -0.7]), 1.5, np.array([2.0, 0.5])
    s = a @ c

    def f(p):
        return (p["a"] ** 2 * p["b"]).sum() + tg.ops.sin(p["a"] @ p["c"])

    H = tg.hessian(f)({"a": a, "b": b, "c": c})
    assert list(H) == ["a", "b", "c"] and all(list(row) == ["a", "b", "c"]
                                              for row in H.values())
    np.testing.assert_allclose(H["a"]["a"], 2 * b * np.eye(2) - np.sin(s) * np.outer(c, c))
    np.testing.assert_allclose(H["a"]["b"], 2 * a)
    np.testing.assert_allclose(H["b"]["a"], 2 * a)
    assert H["b"]["b"] == pytest.approx(0.0)
    np.testing.assert_allclose(H["a"]["c"], np.cos(s) * np.eye(2) - np.sin(s) * np.outer(c, a))
    np.testing.assert_allclose(H["c"]["c"], -np.sin(s) * np.outer(a, a))
    # the same blocks as the Hessian of the flat function
    flat = lambda a, b, c: f({"a": a, "b": b, "c": c})
    Hf = tg.hessian(flat, argnums=(0, 1, 2))(a, b, c)
    for i, ki in enumerate("abc"):
        for j, kj in enumerate("abc"):
            np.testing.assert_allclose(H[ki][kj], Hf[i][j], atol=1e-14)


def test_grad_of_grad_with_containers():
    # d/dw of (d/dp sum(p.w^3 * p.b)).w summed = 6 w b
    f = lambda p: (p.w ** 3 * p.b).sum()
    outer = tg.grad(lambda w: tg.grad(f)(Pair(w, 2.0)).w.sum())
    np.testing.assert_allclose(outer(np.array([1.0, -0.5])), 6 * np.array([1.0, -0.5]) * 2.0)


# ----------------------------------------------------------------------- check_grads


def test_check_grads_with_container_arguments_and_outputs():
    p = {"W": RNG.standard_normal((2, 3)), "b": RNG.standard_normal(3)}
    x = RNG.standard_normal(2)
    tg.check_grads(lambda p, x: tg.ops.tanh(x @ p["W"] + p["b"]), p, x, order=2)
    tg.check_grads(lambda q: (q[0] * q[1], {"s": tg.ops.sin(q[0]).sum()}),
                   [np.array([0.2, 0.9]), np.array([1.5, -0.4])], order=2)
    cut = lambda t: t.numpy() if isinstance(t, tg.Tensor) else t   # drops b's gradient
    with pytest.raises(tg.GradcheckError, match=r"the leaf 0\['b'\]") as info:
        tg.check_grads(lambda p: p["a"] * cut(p["b"]),
                       {"a": np.array([1.0, 2.0]), "b": np.array([3.0, 4.0])}, modes=("rev",))
    assert info.value.leaf == "0['b']"
    # argnums picks whole arguments: the broken one is not checked
    tg.check_grads(lambda p, y: p["a"] * cut(y), {"a": np.ones(2)}, np.ones(2), argnums=[0])


# ----------------------------------------------------------------------- closures


def test_transform_closing_over_a_tracked_tensor_stays_connected():
    x = tg.tensor(1.0, requires_grad=True)
    y = x * tg.grad(lambda y: x * y)(2.0)
    y.backward()
    assert x.grad == pytest.approx(2.0)
    # closing over a recorded result (not a leaf): d/dx [z * d/dt (z t)] = d/dx z^2, z = x^2
    x = tg.tensor(1.5, requires_grad=True)
    z = x * x
    (z * tg.grad(lambda t: z * t)(1.0)).backward()
    assert x.grad == pytest.approx(4 * 1.5 ** 3)
    # f returning the tracked tensor itself
    v, g = tg.value_and_grad(lambda t: x)(3.0)
    assert v is x and g == pytest.approx(0.0)


@pytest.mark.parametrize("inner", ["grad", "value_and_grad", "vjp", "jvp", "jacobian"])
def test_every_transform_closing_over_x_backpropagates(inner):
    def d_dy(f, y0):
        if inner == "grad":
            return tg.grad(f)(y0)
        if inner == "value_and_grad":
            return tg.value_and_grad(f)(y0)[1]
        if inner == "vjp":
            return tg.vjp(f, y0)[1](1.0)[0]
        if inner == "jvp":
            return tg.jvp(f, (y0,), (1.0,))[1]
        return tg.jacobian(f)(y0)

    for x0 in (0.5, 2.0):
        x = tg.tensor(x0, requires_grad=True)
        out = x * d_dy(lambda y, x=x: x * y * y, 1.5)      # x * 3x
        assert out.item() == pytest.approx(3 * x0 * x0)
        out.backward()
        assert x.grad == pytest.approx(6 * x0)


def test_closing_over_untracked_or_under_no_grad_gives_arrays():
    c = tg.tensor(3.0)
    g = tg.grad(lambda y: c * y * y)(2.0)
    assert isinstance(g, np.ndarray) and g == pytest.approx(12.0)
    x = tg.tensor(3.0, requires_grad=True)
    with tg.no_grad():
        g = tg.grad(lambda y: x * y * y)(2.0)
    assert isinstance(g, np.ndarray) and g == pytest.approx(12.0)
    # inner transforms' own leaves are not the caller's: the outer result is an array
    g = tg.grad(lambda t: tg.grad(lambda y: y * y * t)(3.0) * t)(2.0)
    assert isinstance(g, np.ndarray) and g == pytest.approx(2 * 6 * 2.0)
    g = tg.grad(lambda t: tg.jvp(lambda y: tg.ops.sin(y) * t, (0.4,), (1.0,))[1] * t)(2.0)
    assert isinstance(g, np.ndarray) and g == pytest.approx(2 * np.cos(0.4) * 2.0)


def _confusion_cases():
    """(inner function of (x, y), y0 or 'x', d/dx [x * d/dy inner] at x0)."""
    return [
        (lambda x, y: x + y, 1.0, lambda x0: 1.0),    # Siskind & Pearlmutter: 1, not 2
        (lambda x, y: x + y, "x", lambda x0: 1.0),
        (lambda x, y: x * y, 2.0, lambda x0: 2 * x0),  # d/dx x^2
        (lambda x, y: x * y, "x", lambda x0: 2 * x0),  # confused: 4 x
    ]


def _outer(x, inner, y0):
    return x * tg.grad(lambda y: inner(x, y))(x if isinstance(y0, str) else y0)


@pytest.mark.parametrize("case", range(4))
@pytest.mark.parametrize("x0", [-1.3, 0.5, 2.0])
def test_perturbation_confusion_in_every_nesting(case, x0):
    inner, y0, answer = _confusion_cases()[case]
    want = answer(x0)
    # backward outside
    x = tg.tensor(x0, requires_grad=True)
    _outer(x, inner, y0).backward()
    assert x.grad == pytest.approx(want)
    # tg.grad outside
    g = tg.grad(lambda x: _outer(x, inner, y0))(x0)
    assert isinstance(g, np.ndarray) and g == pytest.approx(want)
    # tg.jvp outside
    _, t = tg.jvp(lambda x: _outer(x, inner, y0), (x0,), (1.0,))
    assert isinstance(t, np.ndarray) and t == pytest.approx(want)
    # a tg.Tape outside, watching a plain tensor
    xw = tg.tensor(x0)
    with tg.Tape() as tape:
        tape.watch(xw)
        out = _outer(xw, inner, y0)
    assert tape.gradient(out, xw) == pytest.approx(want)
