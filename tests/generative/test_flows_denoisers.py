"""MADE's autoregressive property and exact likelihood; RealNVP's log-determinant against a
numerical Jacobian and its inverse; the U-Net / DiT denoisers and the time embedding."""
import itertools
import math

import numpy as np
import pytest

import pydl
from pydl.models.dit import DiT, SelfAttention
from pydl.models.made import MADE, MaskedLinear
from pydl.models.realnvp import AffineCoupling, RealNVP
from pydl.models.unet import UNet, sinusoidal_embedding


def _jacobian(f, x, h=1e-6):
    """Central differences of f: R^D -> R^D at x (D,), float64."""
    D = x.size
    J = np.zeros((D, D))
    for j in range(D):
        e = np.zeros(D)
        e[j] = h
        J[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return J


@pytest.mark.parametrize("order", [None, [2, 0, 3, 1, 4]])
def test_made_is_autoregressive(order):
    pydl.manual_seed(0)
    made = MADE(5, hidden=(32, 32), order=order).double()
    for p in made.parameters():  # non-zero biases so no path hides behind a zero
        p.data[...] = np.random.default_rng(1).standard_normal(p.shape)
    pos = np.argsort(np.asarray(made.order))  # pos[d] = position of variable d in the order
    x0 = np.random.default_rng(2).standard_normal(5)
    J = _jacobian(lambda v: made(pydl.tensor(v[None])).detach().numpy()[0], x0)
    for d, j in itertools.product(range(5), range(5)):
        if pos[j] >= pos[d]:
            assert J[d, j] == 0.0, (d, j)   # output d never sees x_j at or after it
    # the first variable's conditional is a constant; the last depends on at least one input
    last = int(np.asarray(made.order)[-1])
    assert np.abs(J[last]).sum() > 0


def test_made_exact_likelihood_normalises():
    pydl.manual_seed(0)
    made = MADE(3, hidden=(16,)).double()
    xs = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    p = np.exp(made.log_prob(pydl.tensor(xs)).detach().numpy())
    assert p.sum() == pytest.approx(1.0, rel=1e-10)   # an exact density sums to 1 over {0,1}^3
    assert made.sample(4, seed=0).shape == (4, 3)


def test_masked_linear():
    m = MaskedLinear(3, 2, mask=[[1, 0, 0], [1, 1, 0]])
    y = m(pydl.tensor(np.array([[0.0, 0.0, 5.0]], np.float32)))
    np.testing.assert_allclose(y.detach().numpy(), m.bias.detach().numpy()[None], rtol=1e-6)
    with pytest.raises(ValueError, match="mask"):
        MaskedLinear(3, 2, mask=np.ones((3, 2)))


def test_coupling_logdet_matches_numerical_jacobian():
    pydl.manual_seed(0)
    layer = AffineCoupling(6, mask=[1, 0, 1, 0, 1, 0], hidden=16).double()
    for p in layer.parameters():
        p.data[...] = np.random.default_rng(3).standard_normal(p.shape) * 0.5
    x = np.random.default_rng(4).standard_normal(6)
    y, logdet = layer(pydl.tensor(x[None]))
    J = _jacobian(lambda v: layer(pydl.tensor(v[None]))[0].detach().numpy()[0], x)
    assert logdet.item() == pytest.approx(np.linalg.slogdet(J)[1], abs=1e-6)
    np.testing.assert_allclose(layer.inverse(y).detach().numpy()[0], x, atol=1e-10)


def test_realnvp_exact_log_likelihood():
    pydl.manual_seed(0)
    flow = RealNVP(4, num_layers=4, hidden=16).double()
    for p in flow.parameters():
        p.data[...] = np.random.default_rng(5).standard_normal(p.shape) * 0.3
    x = np.random.default_rng(6).standard_normal(4)
    z, logdet = flow(pydl.tensor(x[None]))
    J = _jacobian(lambda v: flow(pydl.tensor(v[None]))[0].detach().numpy()[0], x)
    assert logdet.item() == pytest.approx(np.linalg.slogdet(J)[1], abs=1e-6)
    lp = flow.log_prob(pydl.tensor(x[None])).item()
    zz = z.detach().numpy()[0]
    assert lp == pytest.approx(-0.5 * zz @ zz - 2 * math.log(2 * math.pi) + np.linalg.slogdet(J)[1], abs=1e-6)
    np.testing.assert_allclose(flow.inverse(z).detach().numpy()[0], x, atol=1e-9)
    # the likelihood trains: a few steps of maximum likelihood raise it
    data = pydl.tensor(np.random.default_rng(7).standard_normal((64, 4)) * 0.3 + 1.0)
    flow = RealNVP(4, num_layers=2, hidden=16).double()
    opt = pydl.optim.Adam(flow.parameters(), lr=1e-2)
    before = flow.log_prob(data).mean().item()
    for _ in range(30):
        opt.zero_grad()
        (-flow.log_prob(data).mean()).backward()
        opt.step()
    assert flow.log_prob(data).mean().item() > before + 0.5
    assert flow.sample(3).shape == (3, 4)


def test_sinusoidal_embedding():
    e = sinusoidal_embedding(pydl.tensor([0, 3, 7]), 8).detach().numpy()
    w = np.exp(-np.log(10000.0) * np.arange(4) / 4)
    np.testing.assert_allclose(e[1], np.concatenate([np.sin(3 * w), np.cos(3 * w)]), rtol=1e-6)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_embedding(pydl.tensor([0]), 5)


def test_denoisers_shapes_time_and_gradients():
    pydl.manual_seed(0)
    for net in (UNet(in_channels=1, base=8, channel_mults=(1, 2)), DiT(1, 8, patch=2, dim=16, depth=1, num_heads=2)):
        x = pydl.randn(2, 1, 8, 8)
        out = net(x, pydl.tensor([0, 10]))
        assert out.shape == (2, 1, 8, 8)
        # the output depends on t
        out2 = net(x, pydl.tensor([5, 10]))
        assert not np.allclose(out.detach().numpy()[0], out2.detach().numpy()[0])
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="divisible"):
        UNet(1, 8, (1, 2, 2))(pydl.randn(1, 1, 6, 6), pydl.tensor([0]))


def test_self_attention_matches_formula(rng):
    att = SelfAttention(4, num_heads=1).double()
    x = rng.standard_normal((1, 3, 4))
    W, b = att.qkv.weight.detach().numpy(), att.qkv.bias.detach().numpy()
    qkv = x[0] @ W.T + b
    Q, K, V = qkv[:, :4], qkv[:, 4:8], qkv[:, 8:]
    E = Q @ K.T / 2.0
    A = np.exp(E - E.max(1, keepdims=True))
    A /= A.sum(1, keepdims=True)
    Y = (A @ V) @ att.proj.weight.detach().numpy().T + att.proj.bias.detach().numpy()
    np.testing.assert_allclose(att(pydl.tensor(x)).detach().numpy()[0], Y, rtol=1e-10)
