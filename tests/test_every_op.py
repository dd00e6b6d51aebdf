"""Every registered op, whichever plugin or spec declared it, against finite differences."""

import numpy as np
import pytest

import tapegrad as tg
from tapegrad.gradcheck import check_op, op_samples

OPS = [info for info in tg.list_ops() if info.differentiable]


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_op_matches_finite_differences(info):
    check_op(info, rng=np.random.default_rng(1))


@pytest.mark.parametrize("info", OPS, ids=[i.name for i in OPS])
def test_op_float32_gradients_stay_float32(info):
    for inputs, params in op_samples(info, np.random.default_rng(2))[:1]:
        seq = list(inputs[0]) if info.variadic else list(inputs)
        ts = [tg.tensor(np.asarray(a, dtype=np.float32), requires_grad=True)
              if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in seq]
        out = info.call(ts, **params) if info.variadic else info.call(*ts, **params)
        if isinstance(out, tuple):  # several outputs: all of them, as one vector
            out = tg.ops.concatenate([o.reshape(-1) for o in out])
        if out.dtype != np.float32:  # ops that cast on purpose (astype)
            continue
        out.backward(np.ones_like(out.data))
        for t in ts:
            if isinstance(t, tg.Tensor) and t.grad is not None:
                assert t.grad.dtype == np.float32
                assert t.grad.shape == t.shape
