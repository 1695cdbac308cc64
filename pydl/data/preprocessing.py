"""Preprocessing (lecture 7): zero-centring, per-channel statistics, PCA and whitening.

The seeds' recipe for images: subtract the mean (per pixel or per channel), divide by the
standard deviation per channel; PCA decorrelates the data (rotates it onto the eigenvectors
of its covariance) and whitening also scales each direction to unit variance. ZCA whitening
rotates back afterwards, so whitened images still look like images (edges stand out).
Statistics come from the training set only and are then applied to every split.
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["PCA", "ZCA", "channel_stats", "zero_center"]


def _array(data, op):
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray):
        return data
    if hasattr(data, "__len__") and hasattr(data, "__getitem__") and not isinstance(data, (str, bytes)):  # a Dataset
        first = data[0]
        images = [data[i][0] if isinstance(first, tuple) else data[i] for i in range(len(data))]
        return np.stack([im.data if isinstance(im, Tensor) else np.asarray(im) for im in images])
    raise TypeError(f"{op}: expected an array, a Tensor or a data set, got {type(data).__name__}")


def channel_stats(data):
    """Per-channel mean and standard deviation of images (N, C, H, W) (or a data set of them),
    over N, H and W: the numbers ``Normalize`` takes. Returns two float64 arrays (C,).

    >>> x = np.stack([np.zeros((2, 2)), np.ones((2, 2))])[None]   # 1 image, 2 channels
    >>> channel_stats(x)
    (array([0., 1.]), array([0., 0.]))
    """
    x = _array(data, "channel_stats").astype(np.float64, copy=False)
    if x.ndim != 4:
        raise ValueError(f"channel_stats: expected images (N, C, H, W), got shape {x.shape}")
    return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))


def zero_center(data, mean=None):
    """Subtract the mean image (over the first axis), or the given ``mean``; returns (centred, mean).

    >>> zero_center(np.array([[1.0, 2.0], [3.0, 6.0]]))
    (array([[-1., -2.],
           [ 1.,  2.]]), array([2., 4.]))
    """
    x = _array(data, "zero_center")
    mean = x.mean(axis=0) if mean is None else np.asarray(mean)
    return x - mean, mean


class _Whitening:
    op = "whitening"

    def _flat(self, data):
        x = _array(data, self.op)
        if x.ndim < 2:
            raise ValueError(f"{self.op}: expected samples (N, D) or images (N, ...), got shape {x.shape}")
        return x.reshape(x.shape[0], -1).astype(np.float64), x.shape[1:]

    def fit(self, data):
        """Learn the mean and the covariance's eigenvectors from ``data`` (N, ...); returns self."""
        x, self.sample_shape_ = self._flat(data)
        if x.shape[0] < 2:
            raise ValueError(f"{self.op}: fitting needs at least 2 samples, got {x.shape[0]}")
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        cov = xc.T @ xc / (x.shape[0] - 1)                 # (D, D)
        eigvals, eigvecs = np.linalg.eigh(cov)              # ascending
        order = np.argsort(eigvals)[::-1]
        self.explained_variance_ = np.maximum(eigvals[order], 0.0)
        self.components_ = eigvecs[:, order].T              # (D, D), one direction per row
        # a deterministic sign per direction: the largest entry positive
        signs = np.sign(self.components_[np.arange(len(order)), np.abs(self.components_).argmax(axis=1)])
        self.components_ *= np.where(signs == 0, 1, signs)[:, None]
        total = self.explained_variance_.sum()
        self.explained_variance_ratio_ = self.explained_variance_ / total if total > 0 else self.explained_variance_
        return self

    def _check_fitted(self):
        if not hasattr(self, "mean_"):
            raise RuntimeError(f"{self.op}: call fit(data) before transform")

    def fit_transform(self, data):
        return self.fit(data).transform(data)


class PCA(_Whitening):
    """Principal component analysis: project centred samples onto the ``n_components``
    directions of largest variance; ``whiten=True`` also divides each by its standard
    deviation (PCA whitening). Samples (N, D), or images (N, ...) flattened.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((500, 2)) @ np.array([[3.0, 0.0], [1.0, 0.5]])
    >>> z = PCA(whiten=True).fit_transform(x)
    >>> np.round(np.cov(z.T), 6)
    array([[ 1., -0.],
           [-0.,  1.]])
    """

    op = "PCA"

    def __init__(self, n_components=None, whiten=False, eps=1e-8):
        self.n_components, self.whiten, self.eps = n_components, whiten, float(eps)

    def transform(self, data):
        """(N, ...) -> (N, n_components)."""
        self._check_fitted()
        x, _ = self._flat(data)
        k = self.n_components or x.shape[1]
        z = (x - self.mean_) @ self.components_[:k].T
        if self.whiten:
            z /= np.sqrt(self.explained_variance_[:k] + self.eps)
        return z

    def inverse_transform(self, z):
        """(N, k) -> (N, ...) back in the input space (exact when k = D)."""
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        k = z.shape[1]
        if self.whiten:
            z = z * np.sqrt(self.explained_variance_[:k] + self.eps)
        return (z @ self.components_[:k] + self.mean_).reshape((z.shape[0],) + tuple(self.sample_shape_))


class ZCA(_Whitening):
    """ZCA whitening: ``x -> U diag(1 / sqrt(lambda + eps)) U^T (x - mean)``: unit covariance,
    but rotated back into the input's coordinates, so images stay images. ``eps`` keeps the
    near-zero directions (noise) from being blown up. Keeps the input's shape.
    """

    op = "ZCA"

    def __init__(self, eps=1e-2):
        self.eps = float(eps)

    def fit(self, data):
        super().fit(data)
        u = self.components_.T
        self.whitening_ = (u / np.sqrt(self.explained_variance_ + self.eps)) @ u.T
        self.dewhitening_ = (u * np.sqrt(self.explained_variance_ + self.eps)) @ u.T
        return self

    def transform(self, data):
        self._check_fitted()
        x, shape = self._flat(data)
        return ((x - self.mean_) @ self.whitening_).reshape((x.shape[0],) + tuple(shape))

    def inverse_transform(self, data):
        self._check_fitted()
        x, shape = self._flat(data)
        return (x @ self.dewhitening_ + self.mean_).reshape((x.shape[0],) + tuple(shape))
