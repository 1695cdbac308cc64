"""FGSM raises the loss; class visualisation raises the score; feature inversion lowers its
objective; embeddings; pictures (matplotlib parts skipped without it)."""
import struct
import zlib

import numpy as np
import pytest

import pydl
import pydl.nn as nn
import pydl.nn.functional as F
import pydl.viz as V


def _net():
    pydl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, 3))


def _loss(net, x, y):
    with pydl.no_grad():
        return F.cross_entropy(net(pydl.tensor(x)), pydl.tensor(y)).item()


def test_fgsm_raises_the_loss(rng):
    net = _net()
    x = rng.uniform(size=(8, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    adv = V.fgsm(net, x, y, eps=0.1)
    assert np.abs(adv - x).max() == pytest.approx(0.1, rel=1e-5)
    assert _loss(net, adv, y) > _loss(net, x, y)
    it = V.iterative_fgsm(net, x, y, eps=0.1, steps=5, clip=(0, 1))
    assert np.abs(it - x).max() <= 0.1 + 1e-6 and it.min() >= 0 and it.max() <= 1
    assert _loss(net, it, y) > _loss(net, x, y)
    assert np.array_equal(V.fgsm(net, x, y, eps=0.0), x)
    with pytest.raises(ValueError, match="eps"):
        V.fgsm(net, x, y, eps=-1)


def test_noise_robustness_and_accuracy(rng):
    net = _net()
    x = rng.uniform(size=(10, 1, 6, 6)).astype(np.float32)
    with pydl.no_grad():
        y = net(pydl.tensor(x)).numpy().argmax(1)
    assert V.accuracy(net, x, y) == 1.0
    r = V.noise_robustness(net, x, y, sigmas=(0.0, 5.0))
    assert r[0.0] == 1.0 and 0.0 <= r[5.0] <= 1.0


def test_class_visualization_raises_the_score():
    net = _net()
    img, hist = V.class_visualization(net, 2, (1, 6, 6), steps=20, lr=0.1, blur_every=5)
    assert img.shape == (1, 6, 6) and hist[-1] > hist[0]
    assert V.gaussian_blur(np.ones((1, 1, 5, 5)), 0.7) == pytest.approx(np.ones((1, 1, 5, 5)))


def test_feature_inversion_lowers_its_objective(rng):
    net = _net()
    target = rng.uniform(size=(1, 6, 6)).astype(np.float32)
    rec, hist = V.feature_inversion(net, net[1], target, steps=40, lr=0.05)
    assert rec.shape == (1, 6, 6) and hist[-1] < 0.5 * hist[0]


def test_pca_and_neighbours(rng):
    X = rng.standard_normal((50, 4)) @ np.diag([5.0, 2.0, 0.5, 0.1])
    P = V.pca(X, 2)
    Xc = X - X.mean(0)
    evals, evecs = np.linalg.eigh(Xc.T @ Xc)
    top = evecs[:, ::-1][:, :2]
    np.testing.assert_allclose(np.abs(P), np.abs(Xc @ top), rtol=1e-8, atol=1e-10)
    nn_idx = V.nearest_neighbors(X[:3], X, k=2)
    assert nn_idx[:, 0].tolist() == [0, 1, 2]
    d = np.linalg.norm(X[0] - X, axis=1)
    assert nn_idx[0, 1] == np.argsort(d)[1]
    assert V.nearest_neighbors(X[:2], X, k=1, metric="cosine")[:, 0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="metric"):
        V.nearest_neighbors(X, X, metric="l1")


def test_numpy_tsne_keeps_clusters(rng):
    X = np.concatenate([rng.standard_normal((20, 5)) + 10 * i for i in range(3)])
    Y = V.tsne(X, perplexity=5, n_iter=500, backend="numpy")
    assert Y.shape == (60, 2)
    labels = np.repeat(np.arange(3), 20)
    nn_idx = V.nearest_neighbors(Y, Y, k=2)[:, 1]
    assert (labels[nn_idx] == labels).mean() > 0.95


def _read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body) & 0xFFFFFFFF
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    return ihdr, zlib.decompress(idat)


def test_grids_and_png(tmp_path, rng):
    grid = V.image_grid(rng.uniform(size=(5, 1, 4, 4)), nrow=3, padding=1)
    assert grid.shape == (1, 2 * 5 + 1, 3 * 5 + 1) and grid.min() >= 0 and grid.max() <= 1
    fg = V.filter_grid(rng.standard_normal((6, 3, 5, 5)))
    assert fg.shape[0] == 3
    ihdr, raw = _read_png(V.save_png(tmp_path / "g.png", grid, scale=2))
    w, h = ihdr[0], ihdr[1]
    assert (h, w) == (22, 32) and ihdr[3] == 0 and len(raw) == h * (w + 1)
    ihdr, raw = _read_png(V.save_png(tmp_path / "c.png", fg))
    assert ihdr[3] == 2 and len(raw) == ihdr[1] * (3 * ihdr[0] + 1)


def test_matplotlib_plots(tmp_path, rng):
    pytest.importorskip("matplotlib")
    p = V.scatter_plot(rng.standard_normal((20, 2)), rng.integers(0, 3, 20), tmp_path / "s.png")
    assert open(p, "rb").read(4) == b"\x89PNG"
    p = V.show_heatmaps(rng.uniform(size=(2, 1, 8, 8)), rng.uniform(size=(2, 4, 4)), tmp_path / "h.png", ["a", "b"])
    assert open(p, "rb").read(4) == b"\x89PNG"
