"""Preprocessing: per-channel statistics, zero-centring, PCA and ZCA whitening."""
import numpy as np
import pytest

from pydl.data import TensorDataset
from pydl.data.preprocessing import PCA, ZCA, channel_stats, zero_center


@pytest.fixture
def correlated(rng):
    mix = np.array([[2.0, 0.0, 0.0], [1.5, 0.5, 0.0], [0.3, -0.2, 0.1]])
    return rng.standard_normal((2000, 3)) @ mix + np.array([1.0, -2.0, 0.5])


def test_channel_stats_match_numpy(rng):
    x = rng.random((7, 3, 5, 4)).astype(np.float32)
    mean, std = channel_stats(x)
    np.testing.assert_allclose(mean, x.transpose(1, 0, 2, 3).reshape(3, -1).mean(1), rtol=1e-6)
    np.testing.assert_allclose(std, x.transpose(1, 0, 2, 3).reshape(3, -1).std(1), rtol=1e-5)
    ds = TensorDataset(x, np.zeros(7, np.int64))
    np.testing.assert_allclose(channel_stats(ds)[0], mean, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        channel_stats(x[0])


def test_zero_center(rng):
    x = rng.random((10, 4))
    xc, mean = zero_center(x)
    np.testing.assert_allclose(xc.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(zero_center(x, mean)[0], xc)


def test_pca_decorrelates_and_whitens(correlated):
    z = PCA().fit_transform(correlated)
    cov = np.cov(z.T)
    np.testing.assert_allclose(cov - np.diag(np.diag(cov)), 0, atol=1e-8)       # decorrelated
    assert np.all(np.diff(np.diag(cov)) <= 1e-9)                                  # by decreasing variance
    w = PCA(whiten=True).fit_transform(correlated)
    np.testing.assert_allclose(np.cov(w.T), np.eye(3), atol=1e-5)
    pca = PCA(n_components=2).fit(correlated)
    assert pca.transform(correlated).shape == (2000, 2)
    assert pca.explained_variance_ratio_[:2].sum() > 0.95
    full = PCA(whiten=True).fit(correlated)
    np.testing.assert_allclose(full.inverse_transform(full.transform(correlated)), correlated, atol=1e-8)


def test_pca_sign_is_deterministic(correlated):
    a = PCA().fit(correlated).components_
    b = PCA().fit(correlated[::-1].copy()).components_
    np.testing.assert_allclose(a, b, atol=1e-8)


def test_zca_whitens_and_keeps_images_images(rng, correlated):
    zca = ZCA(eps=1e-9).fit(correlated)
    out = zca.transform(correlated)
    np.testing.assert_allclose(np.cov(out.T), np.eye(3), atol=1e-5)
    np.testing.assert_allclose(zca.whitening_, zca.whitening_.T, atol=1e-10)      # symmetric: no rotation away
    np.testing.assert_allclose(zca.inverse_transform(out), correlated, atol=1e-6)
    images = rng.random((50, 1, 4, 4))
    assert ZCA().fit(images).transform(images).shape == images.shape


def test_errors(rng):
    with pytest.raises(RuntimeError, match="call fit"):
        PCA().transform(rng.random((3, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        ZCA().fit(rng.random((1, 2)))
    with pytest.raises(TypeError, match="expected an array"):
        channel_stats("images")
