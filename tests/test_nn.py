"""tg.nn (modules, layers, losses, clipping) and tg.optim, against hand-computed numbers."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.nn import StateDictError

# ------------------------------------------------------------------ layers


def test_linear_shapes_and_bias():
    layer = tg.nn.Linear(3, 5, rng=0)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (5,)
    assert np.all(layer.bias.data == 0)
    x = np.arange(6.0).reshape(2, 3)
    out = layer(x)
    assert out.shape == (2, 5)
    np.testing.assert_allclose(out.data, x @ layer.weight.data)
    nobias = tg.nn.Linear(3, 5, bias=False, rng=0)
    assert len(nobias.parameters()) == 1 and nobias.bias is None


def test_he_and_xavier_init_scales():
    he = tg.nn.Linear(400, 300, init="he", rng=1).weight.data
    assert abs(he.std() / np.sqrt(2 / 400) - 1) < 0.03
    assert abs(he.mean()) < 0.01
    xav = tg.nn.Linear(400, 300, init="xavier", rng=1).weight.data
    limit = np.sqrt(6 / 700)
    assert np.abs(xav).max() <= limit
    assert abs(xav.std() / np.sqrt(2 / 700) - 1) < 0.03
    with pytest.raises(ValueError, match="unknown init"):
        tg.nn.Linear(2, 2, init="bogus")


def test_mlp_matches_numpy_forward_and_last_layer_is_linear():
    mlp = tg.nn.MLP(3, [4, 5, 2], activation="relu", rng=0)
    linears = [m for m in mlp.layers if isinstance(m, tg.nn.Linear)]
    assert [(m.n_in, m.n_out) for m in linears] == [(3, 4), (4, 5), (5, 2)]
    assert sum(isinstance(m, tg.nn.ReLU) for m in mlp.layers) == 2
    x = np.random.default_rng(0).standard_normal((7, 3))
    h = x
    for i, m in enumerate(linears):
        h = h @ m.weight.data + m.bias.data
        if i < 2:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(mlp(x).data, h)
    # He init for ReLU, Xavier for tanh
    assert tg.nn.MLP(500, [500], activation="tanh", rng=0).layers[0].weight.data.max() <= \
        np.sqrt(6 / 1000)


def test_activation_modules_and_sequential():
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    np.testing.assert_allclose(tg.nn.ReLU()(x).data, [0, 0, 0, 1.5])
    np.testing.assert_allclose(tg.nn.Tanh()(x).data, np.tanh(x))
    np.testing.assert_allclose(tg.nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(tg.nn.LeakyReLU(0.1)(x).data, [-0.2, -0.05, 0, 1.5])
    seq = tg.nn.Sequential(tg.nn.Linear(4, 3, rng=0), tg.nn.Tanh(), tg.nn.Linear(3, 1, rng=1))
    assert len(seq) == 3 and len(seq.parameters()) == 4
    t = tg.tensor(x[None, :], requires_grad=True)
    seq(t).sum().backward()
    assert t.grad.shape == (1, 4)
    assert seq[0].weight.grad is not None


class Block(tg.nn.Module):
    def __init__(self):
        self.scale = tg.tensor(2.0, requires_grad=True)
        self.constant = tg.tensor(np.ones(3))  # not a parameter: no requires_grad

    def forward(self, x):
        return x * self.scale


class Net(tg.nn.Module):
    def __init__(self):
        self.head = tg.nn.Linear(3, 2, rng=0)
        self.blocks = [Block(), Block()]
        self.extra = {"a": tg.tensor(np.zeros(2), requires_grad=True)}
        self.pair = (tg.tensor(1.0, requires_grad=True), Block())
        self.alias = self.head.weight  # shared: counted once
        self._private = tg.tensor(5.0, requires_grad=True)  # ignored

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return self.head(x) + self.extra["a"]


def test_parameter_discovery_nested_lists_dicts_tuples():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["head.weight", "head.bias", "blocks.0.scale", "blocks.1.scale",
                     "extra.a", "pair.0", "pair.1.scale"]
    params = net.parameters()
    assert len({id(p) for p in params}) == len(params) == 7
    out = net(np.ones((4, 3)))
    out.sum().backward()
    assert all(p.grad is not None for p in params[:5])
    net.zero_grad()
    assert all(p.grad is None for p in params)


def test_state_dict_roundtrip_with_npz(tmp_path):
    a = tg.nn.MLP(4, [8, 3], rng=0)
    b = tg.nn.MLP(4, [8, 3], rng=1)
    x = np.random.default_rng(2).standard_normal((5, 4))
    assert not np.allclose(a(x).data, b(x).data)
    path = tmp_path / "weights.npz"
    a.save(path)
    with np.load(path) as f:
        assert sorted(f.files) == sorted(a.state_dict())
    b.load(path)
    np.testing.assert_array_equal(a(x).data, b(x).data)
    sd = a.state_dict()
    sd["layers.0.weight"][...] = 0  # a copy: the model is untouched
    assert np.any(a.layers[0].weight.data != 0)


def test_load_state_dict_mismatch_and_corrupt_files(tmp_path):
    a = tg.nn.MLP(4, [8, 3], rng=0)
    wrong = tg.nn.MLP(4, [6, 3], rng=0)
    path = tmp_path / "w.npz"
    wrong.save(path)
    before = a.layers[0].weight.data.copy()
    with pytest.raises(StateDictError, match=r"layers.0.weight.*shape \(4, 6\).*\(4, 8\)"):
        a.load(path)
    np.testing.assert_array_equal(a.layers[0].weight.data, before)  # unchanged
    sd = a.state_dict()
    del sd["layers.2.bias"]
    sd["stray"] = np.zeros(1)
    with pytest.raises(StateDictError, match=r"missing keys \['layers.2.bias'\].*unexpected "
                                              r"keys \['stray'\]"):
        a.load_state_dict(sd)
    a.load_state_dict(sd, strict=False)  # non-strict: loads what matches
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(StateDictError, match="cannot read parameters"):
        a.load(bad)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(StateDictError):
        a.load(truncated)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(StateDictError, match="not an .npz archive"):
        a.load(single)
    with pytest.raises(FileNotFoundError):
        a.load(tmp_path / "missing.npz")


# ------------------------------------------------------------------ losses


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_cross_entropy_value_and_fused_gradient():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4)) * 3
    labels = np.array([0, 3, 1, 1, 2, 0])
    logits = tg.tensor(z, requires_grad=True)
    loss = tg.nn.cross_entropy(logits, labels)
    p = _softmax(z)
    expected = -np.log(p[np.arange(6), labels]).mean()
    assert np.isclose(loss.item(), expected, rtol=1e-12)
    loss.backward()
    onehot = np.eye(4)[labels]
    np.testing.assert_allclose(logits.grad, (p - onehot) / 6, rtol=1e-12, atol=1e-15)
    summed = tg.nn.cross_entropy(z, labels, reduction="sum")
    assert np.isclose(summed.item(), expected * 6)
    per = tg.nn.cross_entropy(z, labels, reduction="none")
    np.testing.assert_allclose(per.data, -np.log(p[np.arange(6), labels]))
    with pytest.raises(ValueError, match="reduction"):
        tg.nn.cross_entropy(z, labels, reduction="avg")
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\]"):
        tg.nn.cross_entropy(z, labels + 1)
    with pytest.raises(ValueError, match="labels of shape"):
        tg.nn.cross_entropy(z, labels[:3])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_is_finite_for_huge_logits(dtype):
    z = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]], dtype=dtype)
    logits = tg.tensor(z, requires_grad=True)
    loss = tg.nn.cross_entropy(logits, np.array([1, 1]))
    # sample 0: logsumexp = 1000, picked -1000 -> 2000; sample 1: log(1 + e^-1) ~ 0.3133
    assert np.isfinite(loss.item())
    assert np.isclose(loss.item(), (2000 + np.log1p(np.exp(-1.0))) / 2, rtol=1e-5)
    loss.backward()
    assert logits.grad.dtype == dtype and np.all(np.isfinite(logits.grad))
    p1 = 1 / (1 + np.exp(-1.0))
    expected = np.array([[1, -1, 0], [0, p1 - 1, 1 - p1]]) / 2
    np.testing.assert_allclose(logits.grad, expected, atol=1e-6)


def test_cross_entropy_second_derivative_is_softmax_jacobian():
    z = np.array([0.5, -1.0, 2.0])
    H = tg.hessian(lambda t: tg.nn.cross_entropy(t, np.array(2)))(z)
    p = _softmax(z)
    np.testing.assert_allclose(H, np.diag(p) - np.outer(p, p), atol=1e-12)


def test_binary_cross_entropy_with_logits_matches_analytic():
    x = np.array([-3.0, -0.2, 0.0, 0.7, 4.0])
    y = np.array([0.0, 1.0, 0.3, 1.0, 0.0])
    t = tg.tensor(x, requires_grad=True)
    loss = tg.nn.binary_cross_entropy_with_logits(t, y)
    s = 1 / (1 + np.exp(-x))
    expected = -(y * np.log(s) + (1 - y) * np.log(1 - s))
    assert np.isclose(loss.item(), expected.mean(), rtol=1e-12)
    loss.backward()
    np.testing.assert_allclose(t.grad, (s - y) / 5, rtol=1e-12)
    np.testing.assert_allclose(
        tg.nn.binary_cross_entropy_with_logits(x, y, reduction="none").data, expected)
    huge = tg.tensor(np.array([1000.0, -1000.0]), requires_grad=True)
    big = tg.nn.binary_cross_entropy_with_logits(huge, np.array([0.0, 0.0]), reduction="sum")
    assert np.isclose(big.item(), 1000.0)
    big.backward()
    np.testing.assert_allclose(huge.grad, [1.0, 0.0])


def test_mse_loss():
    pred = tg.tensor([1.0, 2.0, 4.0], requires_grad=True)
    loss = tg.nn.mse_loss(pred, [1.5, 2.0, 3.0])
    assert np.isclose(loss.item(), (0.25 + 0 + 1) / 3)
    loss.backward()
    np.testing.assert_allclose(pred.grad, 2 * np.array([-0.5, 0.0, 1.0]) / 3)
    assert tg.nn.mse_loss(pred, [0.0, 0.0, 0.0], reduction="sum").item() == 21.0


def test_softmax_ops_are_stable():
    z = np.array([[1000.0, 1000.0, -1000.0]])
    np.testing.assert_allclose(tg.nn.softmax(z).data, [[0.5, 0.5, 0.0]])
    np.testing.assert_allclose(tg.nn.log_softmax(z).data, [[-np.log(2), -np.log(2), -2000 -
                                                             np.log(2)]])
    assert np.isclose(tg.nn.logsumexp(z).item(), 1000 + np.log(2))


# ------------------------------------------------------------------ optimizers


def _param_with_grads(value, grads):
    p = tg.tensor(np.array(value), requires_grad=True)
    return p, iter(grads)


def test_sgd_momentum_and_weight_decay_by_hand():
    p = tg.tensor(np.array([1.0]), requires_grad=True)
    opt = tg.optim.SGD([p], lr=0.1, momentum=0.9)
    for _ in range(2):
        p.grad = np.array([1.0])
        opt.step()
    # buf1 = 1 -> p = 0.9; buf2 = 0.9 * 1 + 1 = 1.9 -> p = 0.9 - 0.19 = 0.71
    assert np.isclose(p.data[0], 0.71)
    q = tg.tensor(np.array([2.0]), requires_grad=True)
    opt = tg.optim.SGD([q], lr=0.5, weight_decay=0.1)
    q.grad = np.array([1.0])
    opt.step()  # g = 1 + 0.1 * 2 = 1.2 -> 2 - 0.6 = 1.4
    assert np.isclose(q.data[0], 1.4)
    opt.zero_grad()
    assert q.grad is None
    opt.step()  # no gradient: no change
    assert np.isclose(q.data[0], 1.4)


def test_adam_two_steps_by_hand():
    p = tg.tensor(np.array([1.0]), requires_grad=True)
    opt = tg.optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    p.grad = np.array([2.0])
    opt.step()
    # m = 0.2, v = 0.004, m_hat = 2, v_hat = 4: p = 1 - 0.1 * 2 / (2 + 1e-8)
    assert np.isclose(p.data[0], 1 - 0.1 * 2 / (2 + 1e-8), rtol=1e-14)
    p.grad = np.array([-1.0])
    opt.step()
    m = 0.9 * 0.2 - 0.1            # 0.08
    v = 0.999 * 0.004 + 0.001      # 0.004996
    m_hat, v_hat = m / (1 - 0.9 ** 2), v / (1 - 0.999 ** 2)
    expected = 1 - 0.1 * 2 / (2 + 1e-8) - 0.1 * m_hat / (np.sqrt(v_hat) + 1e-8)
    assert np.isclose(p.data[0], expected, rtol=1e-12)
    assert np.isclose(expected, 0.873366, atol=1e-6)


def test_adam_l2_vs_adamw_decoupled_decay():
    p = tg.tensor(np.array([2.0]), requires_grad=True)
    p.grad = np.array([0.0])
    tg.optim.AdamW([p], lr=0.1, weight_decay=0.5).step()
    assert np.isclose(p.data[0], 2.0 * (1 - 0.1 * 0.5))  # decay only: m = 0
    q = tg.tensor(np.array([2.0]), requires_grad=True)
    q.grad = np.array([0.0])
    tg.optim.Adam([q], lr=0.1, weight_decay=0.5).step()  # g = 1.0 -> moves by ~lr
    assert np.isclose(q.data[0], 2.0 - 0.1, atol=1e-7)


def test_optimizer_replaces_read_only_data():
    p = tg.tensor(np.array([1.0, 2.0]), requires_grad=True)
    p.data.flags.writeable = False
    p.grad = np.array([1.0, 1.0])
    tg.optim.SGD([p], lr=0.5).step()
    np.testing.assert_allclose(p.data, [0.5, 1.5])


@pytest.mark.parametrize("make_opt", [
    lambda ps: tg.optim.SGD(ps, lr=np.float64(0.1), momentum=0.9, weight_decay=1e-4),
    lambda ps: tg.optim.Adam(ps, lr=np.float64(1e-2), weight_decay=1e-4),
    lambda ps: tg.optim.AdamW(ps, lr=1e-2),
])
def test_float32_stays_float32_through_training_steps(make_opt):
    model = tg.nn.MLP(4, [8, 3], activation="tanh", dtype=np.float32, rng=0)
    opt = make_opt(model.parameters())
    x = np.random.default_rng(0).standard_normal((10, 4))  # float64 data: cast by Linear
    labels = np.arange(10) % 3
    for _ in range(2):
        opt.zero_grad()
        loss = tg.nn.cross_entropy(model(x), labels)
        assert loss.dtype == np.float32
        loss.backward()
        assert all(p.grad.dtype == np.float32 for p in model.parameters())
        tg.nn.clip_grad_norm(model.parameters(), 0.1)
        opt.step()
    assert all(p.dtype == np.float32 for p in model.parameters())
    bce = tg.nn.binary_cross_entropy_with_logits(model(x)[:, 0], (labels == 1) * 1.0)
    assert bce.dtype == np.float32
    assert tg.nn.mse_loss(model(x), np.zeros((10, 3))).dtype == np.float32


def test_training_reduces_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    model = tg.nn.MLP(2, [16, 2], activation="tanh", rng=0)
    opt = tg.optim.Adam(model.parameters(), lr=0.05)
    first = None
    for _ in range(150):
        opt.zero_grad()
        loss = tg.nn.cross_entropy(model(x), labels)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first
    assert np.mean(model(x).data.argmax(axis=1) == labels) > 0.95


# ------------------------------------------------------------------ clipping


def test_clip_grad_norm_returns_total_and_rescales():
    a = tg.tensor(np.zeros(2), requires_grad=True)
    b = tg.tensor(np.zeros(1), requires_grad=True)
    c = tg.tensor(np.zeros(1), requires_grad=True)  # no gradient: skipped
    a.grad, b.grad = np.array([3.0, 0.0]), np.array([4.0])
    total = tg.nn.clip_grad_norm([a, b, c], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0.0, 0.8], rtol=1e-5)
    # below the threshold: untouched
    total = tg.nn.clip_grad_norm([a, b], max_norm=10.0)
    assert total == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(b.grad, [0.8], rtol=1e-5)
    b.grad = np.array([-7.0], dtype=np.float64)
    assert tg.nn.clip_grad_norm([a, b], 2.0, norm_type=float("inf")) == pytest.approx(7.0)
    assert np.isclose(b.grad[0], -2.0, rtol=1e-5)


def test_clip_grad_norm_keeps_float32():
    p = tg.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    p.grad = np.array([30.0, 40.0, 0.0], dtype=np.float32)
    assert tg.nn.clip_grad_norm([p], 5.0) == pytest.approx(50.0)
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [3.0, 4.0, 0.0], rtol=1e-5)


# ------------------------------------------------------------------ more modules


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "cross_entropy",
                                  "binary_cross_entropy_with_logits"])
def test_nn_ops_second_order_matches_finite_differences(name):
    from tapegrad.gradcheck import check_op

    check_op(tg.get_op(name), order=2, rng=np.random.default_rng(3))


def test_flatten_dropout_softmax_modules():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert tg.nn.Flatten()(tg.tensor(x)).shape == (2, 12)
    drop = tg.nn.Dropout(0.5, rng=0)
    out = drop(tg.tensor(np.ones((200, 50))))
    kept = out.data != 0
    assert 0.4 < kept.mean() < 0.6
    np.testing.assert_allclose(out.data[kept], 2.0)  # survivors scaled by 1 / (1 - p)
    model = tg.nn.Sequential(drop)
    model.eval()
    np.testing.assert_array_equal(model(np.ones(5)), np.ones(5))
    np.testing.assert_allclose(tg.nn.Softmax()(np.array([0.0, np.log(3.0)])).data, [0.25, 0.75])
    np.testing.assert_allclose(tg.nn.LogSoftmax()(np.array([0.0, 0.0])).data,
                               [-np.log(2)] * 2)


def test_sgd_nesterov_and_duplicate_parameters():
    p = tg.tensor(np.array([1.0]), requires_grad=True)
    opt = tg.optim.SGD([p, p], lr=0.1, momentum=0.5, nesterov=True)
    assert len(opt.params) == 1  # listed twice, updated once
    p.grad = np.array([1.0])
    opt.step()  # buf = 1; g = 1 + 0.5 * 1 = 1.5 -> p = 1 - 0.15
    assert np.isclose(p.data[0], 0.85)
    with pytest.raises(ValueError, match="empty"):
        tg.optim.Adam([], lr=0.1)
    with pytest.raises(ValueError, match="nesterov"):
        tg.optim.SGD([p], lr=0.1, nesterov=True)


# ------------------------------------------------------------------ dtypes (PyTorch habits)


def test_float32_mlp_from_dtype_keyword_trains_and_stays_float32():
    model = tg.nn.MLP(3, [6, 1], activation="tanh", dtype=np.float32, rng=0)
    assert all(p.dtype == np.float32 for p in model.parameters())
    rng = np.random.default_rng(1)
    x = tg.tensor(rng.standard_normal((32, 3)), dtype=np.float32)
    y = (x.data[:, :1] * 0.5 - x.data[:, 1:2]).astype(np.float32)
    opt = tg.optim.SGD(model.parameters(), lr=0.1)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        out = model(x)
        assert out.dtype == np.float32
        loss = tg.nn.mse_loss(out, y)
        assert loss.dtype == np.float32
        loss.backward()
        assert all(p.grad.dtype == np.float32 for p in model.parameters())
        opt.step()
        losses.append(loss.item())
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert losses[-1] < 0.8 * losses[0]
    # the same model in float64 (same seed) computes the same numbers to float32 precision
    ref = tg.nn.MLP(3, [6, 1], activation="tanh", rng=0)
    np.testing.assert_allclose(tg.nn.MLP(3, [6, 1], activation="tanh", dtype=np.float32,
                                         rng=0)(x).data,
                               ref(x.data.astype(np.float64)).data, rtol=1e-5, atol=1e-6)


def test_layer_dtype_default_and_bad_dtype():
    assert tg.nn.Linear(2, 2, dtype=None).weight.dtype == np.float64
    assert tg.nn.Linear(2, 2, dtype="float32").bias.dtype == np.float32
    with pytest.raises(TypeError, match="floating"):
        tg.nn.Linear(2, 2, dtype=np.int32)
    with pytest.raises(TypeError, match="floating"):
        tg.nn.MLP(2, [2], dtype=np.complex128)


def test_module_astype_round_trip_in_place():
    net = Net()
    params = net.parameters()
    before = {n: p.data.copy() for n, p in net.named_parameters()}
    x = np.ones((4, 3))
    net(x).sum().backward()
    assert net.astype(np.float32) is net
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]  # same objects
    assert all(p.dtype == np.float32 and p.grad.dtype == np.float32
               for p in params[:5])
    assert net.blocks[0].constant.dtype == np.float32       # buffers follow
    assert net._private.dtype == np.float64                  # private attributes do not
    out = net(x.astype(np.float32))
    assert out.dtype == np.float32
    net.zero_grad()
    out.sum().backward()
    assert net.head.weight.grad.dtype == np.float32
    opt = tg.optim.SGD(net.parameters(), lr=0.0)
    opt.step()
    assert all(p.dtype == np.float32 for p in params)
    net.astype(np.float64)
    for n, p in net.named_parameters():
        assert p.dtype == np.float64 and p.requires_grad
        np.testing.assert_allclose(p.data, before[n], rtol=1e-7)  # float32 round trip
        np.testing.assert_array_equal(p.data, before[n].astype(np.float32))
    with pytest.raises(TypeError, match="floating"):
        net.astype(np.int64)
