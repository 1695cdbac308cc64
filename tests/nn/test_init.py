"""pydl.nn.init: PyTorch's fan and gain rules, and the statistics of each initialiser."""
import math

import numpy as np
import pytest

import pydl
from pydl.nn import init


def big(*shape):
    pydl.manual_seed(123)
    return pydl.empty(*shape)


def test_fans_like_pytorch():
    assert init._calculate_fan_in_and_fan_out(pydl.empty(30, 20)) == (20, 30)
    assert init._calculate_fan_in_and_fan_out(pydl.empty(16, 3, 5, 5)) == (75, 400)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(pydl.empty(5))


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == 5 / 3
    assert init.calculate_gain("relu") == math.sqrt(2)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="Unsupported"):
        init.calculate_gain("swish")


def test_constant_zeros_ones_eye():
    t = pydl.empty(3, 4)
    assert init.constant_(t, 0.3) is t and np.allclose(t.numpy(), 0.3)
    assert init.zeros_(t).numpy().sum() == 0 and init.ones_(t).numpy().sum() == 12
    assert init.eye_(pydl.empty(2, 3)).tolist() == [[1, 0, 0], [0, 1, 0]]


def test_uniform_and_normal():
    t = init.uniform_(big(200, 500), -2, 3)
    x = t.numpy()
    assert x.min() >= -2 and x.max() < 3 and abs(x.mean() - 0.5) < 0.02
    assert abs(x.std() - 5 / math.sqrt(12)) < 0.02
    x = init.normal_(big(200, 500), 1.0, 0.5).numpy()
    assert abs(x.mean() - 1.0) < 0.01 and abs(x.std() - 0.5) < 0.01
    x = init.trunc_normal_(big(200, 500), 0, 1, -1, 1).numpy()
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3)])
def test_xavier(shape):
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(pydl.empty(*shape))
    std = 0.7 * math.sqrt(2 / (fan_in + fan_out))
    x = init.xavier_uniform_(big(*shape), gain=0.7).numpy()
    assert np.abs(x).max() <= math.sqrt(3) * std and abs(x.std() - std) < 0.03 * std
    x = init.xavier_normal_(big(*shape), gain=0.7).numpy()
    assert abs(x.std() - std) < 0.03 * std and abs(x.mean()) < 0.05 * std


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity, a", [("relu", 0), ("leaky_relu", 0.1), ("tanh", 0)])
def test_kaiming(mode, nonlinearity, a):
    shape = (256, 32, 3, 3)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(pydl.empty(*shape))
    fan = fan_in if mode == "fan_in" else fan_out
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    x = init.kaiming_uniform_(big(*shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    assert np.abs(x).max() <= math.sqrt(3) * std * (1 + 1e-6) and abs(x.std() - std) < 0.03 * std
    x = init.kaiming_normal_(big(*shape), a=a, mode=mode, nonlinearity=nonlinearity).numpy()
    assert abs(x.std() - std) < 0.03 * std
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(big(3, 3), mode="fan_avg")


def test_kaiming_keeps_relu_activations_from_shrinking():
    """Lecture 6's experiment: through 10 ReLU layers of width 500 the activations keep
    their scale with Kaiming, and collapse with small random weights (0.01 N(0, 1))."""
    pydl.manual_seed(0)
    h_k = h_s = pydl.randn(200, 500)
    for _ in range(10):
        w_k = init.kaiming_normal_(pydl.empty(500, 500), nonlinearity="relu")
        w_s = init.normal_(pydl.empty(500, 500), 0, 0.01)
        h_k = (h_k @ w_k.T).relu()
        h_s = (h_s @ w_s.T).relu()
    assert 0.3 < h_k.std().item() < 3
    assert h_s.std().item() < 1e-6


def test_orthogonal():
    q = init.orthogonal_(big(4, 6)).numpy().astype(np.float64)
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-5)


def test_init_under_grad_does_not_record():
    p = pydl.nn.Parameter(pydl.empty(3, 3))
    init.kaiming_uniform_(p)
    assert p.is_leaf and p.grad_fn is None and p.requires_grad


def test_seeded_init_is_reproducible():
    pydl.manual_seed(7)
    a = pydl.nn.Linear(5, 4).weight.detach().numpy().copy()
    pydl.manual_seed(7)
    b = pydl.nn.Linear(5, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)
