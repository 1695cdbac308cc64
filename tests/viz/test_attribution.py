"""Saliency, guided backprop, occlusion, CAM and Grad-CAM on small constructed networks."""
import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.viz as V


class GapNet(nn.Module):
    """conv features -> ReLU -> global average pool -> linear: the network CAM is defined for."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.relu(self.conv(x))).reshape(x.shape[0], -1))


def test_grad_cam_weights_are_the_mean_gradient(rng):
    pydl.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 5, 3, padding=1), nn.Tanh(),
                        nn.Flatten(), nn.Linear(5 * 36, 4))
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    M, alpha = V.grad_cam(net, net[2], pydl.tensor(x), [1, 3], return_weights=True)
    # an independent route to dS_c / dA: run the head on A as a leaf
    with pydl.no_grad():
        A = net[1](net[0](pydl.tensor(x)))
        A = net[2](A)
    A = A.detach().requires_grad_(True)
    head = nn.Sequential(*[net[i] for i in range(3, 6)])
    S = head(A)
    score = S[0, 1] + S[1, 3]
    (g,) = pydl.autograd.grad(score, A)
    g = g.detach().numpy()
    np.testing.assert_allclose(alpha, g.mean(axis=(2, 3)), rtol=1e-5, atol=1e-8)       # step 2
    expect = np.maximum(np.einsum("nk,nkhw->nhw", alpha, A.detach().numpy()), 0)        # step 3
    np.testing.assert_allclose(M, expect, rtol=1e-5, atol=1e-8)
    assert M.shape == (2, 6, 6)


def test_cam_equals_grad_cam_for_a_gap_network(rng):
    pydl.manual_seed(1)
    net = GapNet()
    x = pydl.tensor(rng.standard_normal((3, 1, 5, 5)).astype(np.float32))
    target = [0, 1, 2]
    feats = V.activation_maps(net, net.relu, x)                  # f (N, K, H, W)
    c = V.cam(feats, net.fc.weight, target)
    M, alpha = V.grad_cam(net, net.relu, x, target, return_weights=True)
    HW = 25
    # Grad-CAM's alpha_k = w_{k,c} / HW, so its map is ReLU(CAM) / HW: the cheat sheet's identity
    np.testing.assert_allclose(alpha, net.fc.weight.detach().numpy()[target] / HW, rtol=1e-5)
    np.testing.assert_allclose(M, np.maximum(c, 0) / HW, rtol=1e-5, atol=1e-7)
    # and CAM's spatial mean is the class score minus its bias
    with pydl.no_grad():
        S = net(x).numpy()
    np.testing.assert_allclose(c.mean(axis=(1, 2)) + net.fc.bias.detach().numpy()[target],
                               S[np.arange(3), target], rtol=1e-5, atol=1e-6)


def test_saliency_marks_the_pixels_that_matter(rng):
    # a linear scorer that reads only the top-left 3x3 block of a 6x6 image
    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 2))
    w = np.zeros((2, 36), np.float32)
    region = np.zeros((6, 6), bool)
    region[:3, :3] = True
    w[1, region.ravel()] = rng.uniform(0.5, 1.0, region.sum())
    net[1].weight.data[...] = w
    sal = V.saliency(net, rng.standard_normal((2, 1, 6, 6)), 1)
    assert sal.shape == (2, 6, 6)
    assert (sal[:, region] > 0).all() and (sal[:, ~region] == 0).all()


def test_guided_backprop_clamps_negative_gradients(rng):
    pydl.manual_seed(2)
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    x = rng.standard_normal((1, 1, 2, 2)).astype(np.float32)
    W1, b1 = net[1].weight.detach().numpy(), net[1].bias.detach().numpy()
    W2 = net[3].weight.detach().numpy()
    h = x.reshape(1, 4) @ W1.T + b1
    g_h = W2[1]                                            # dS_1 / d relu(h)
    guided = ((h[0] > 0) * np.maximum(g_h, 0)) @ W1        # ReLU gate and the clamp of the upstream gradient
    plain = ((h[0] > 0) * g_h) @ W1
    np.testing.assert_allclose(V.guided_backprop(net, x, 1).reshape(4), guided, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(V.saliency(net, x, 1).reshape(4), np.abs(plain), rtol=1e-5, atol=1e-7)
    # the hooks are gone afterwards
    assert not net[2]._forward_hooks
    with pytest.raises(ValueError, match="ReLU"):
        V.guided_backprop(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), x, 0)


def test_occlusion_finds_the_region(rng):
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    w = np.zeros((2, 16), np.float32)
    w[0, [10, 11, 14, 15]] = 5.0                        # the bottom-right 2x2 block votes for class 0
    net[1].weight.data[...] = w
    x = np.ones((1, 1, 4, 4), np.float32)
    occ = V.occlusion(net, x, 0, patch=2)
    assert occ.shape == (1, 2, 2)
    assert occ[0, 1, 1] > 0.5 and np.abs(occ[0].ravel()[:3]).max() < 1e-6


def test_errors():
    net = GapNet()
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        V.saliency(net, np.zeros((1, 5, 5)), 0)
    with pytest.raises(ValueError, match="out of range"):
        V.saliency(net, np.zeros((1, 1, 5, 5)), 7)
    with pytest.raises(ValueError, match="fc_weight"):
        V.cam(np.zeros((1, 4, 2, 2)), np.zeros((3, 5)), 0)


def test_docstrings():
    import doctest
    import pydl.viz.attribution, pydl.viz.embedding, pydl.viz.plots, pydl.viz.synthesis  # noqa: E401
    for mod in (pydl.viz.attribution, pydl.viz.embedding, pydl.viz.plots, pydl.viz.synthesis):
        r = doctest.testmod(mod, extraglobs={"pydl": pydl, "np": np})
        assert r.failed == 0, mod.__name__
