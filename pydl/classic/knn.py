"""k-nearest neighbours (lecture 2): the first image classifier of the course.

Training memorises the data (O(1)); predicting compares each test sample with every
training sample (O(n)) and lets the k closest vote. Distances:

* L1 (Manhattan): d(a, b) = sum_i |a_i - b_i|
* L2 (Euclidean): d(a, b) = sqrt(sum_i (a_i - b_i)^2)

The L2 distance matrix is fully vectorised with the expansion
``|a - b|^2 = |a|^2 + |b|^2 - 2 a.b``: the cross term for all pairs at once is one matrix
product, computed by pydl's own gemm kernel. L1 has no such trick; it is computed by
broadcasting, a block of test rows at a time to bound the memory.

Ties are broken deterministically: neighbours at equal distance in training order (a
stable sort), and a vote tied between classes goes to the tied class whose member is the
nearest (the k = 1 answer among them).
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["KNearestNeighbors", "pairwise_distances"]


def _as_2d(x, name, op):
    arr = x.data if isinstance(x, Tensor) else np.asarray(x)
    if arr.ndim < 2:
        raise ValueError(f"{op}: {name} must have shape (N, D) (or (N, ...), flattened), got {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _gemm():
    from .. import kernels

    return kernels.get("gemm", "cpu")


def pairwise_distances(a, b, metric="l2", squared=False, block=256):
    """Distances between every row of ``a`` (M, D) and every row of ``b`` (N, D): (M, N) float64.

    metric "l2" (by the |a|^2 + |b|^2 - 2 a.b expansion and pydl's gemm; ``squared`` skips the
    square root) or "l1" (broadcast, ``block`` rows of ``a`` at a time).

    >>> pairwise_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0], [1.0, 1.0]]))
    array([[5.        , 1.41421356]])
    >>> pairwise_distances(np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]]), metric="l1")
    array([[7.]])
    """
    op = "pairwise_distances"
    a = _as_2d(a, "a", op).astype(np.float64)
    b = _as_2d(b, "b", op).astype(np.float64)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{op}: a has {a.shape[1]} features per row but b has {b.shape[1]}")
    if metric == "l2":
        cross = np.asarray(_gemm()(np.ascontiguousarray(a), np.ascontiguousarray(b), trans_b=True))   # (M, N) a.b
        d2 = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * cross
        np.maximum(d2, 0.0, out=d2)   # rounding can make |a - a|^2 slightly negative
        return d2 if squared else np.sqrt(d2)
    if metric == "l1":
        out = np.empty((a.shape[0], b.shape[0]))
        step = max(1, int(block))
        for s in range(0, a.shape[0], step):
            out[s:s + step] = np.abs(a[s:s + step, None, :] - b[None, :, :]).sum(axis=2)
        return out
    raise ValueError(f"{op}: metric must be 'l1' or 'l2', got {metric!r}")


class KNearestNeighbors:
    """The k-nearest-neighbour classifier.

    n_neighbors: k; metric: "l2" or "l1"; block: test rows per distance block (memory bound).

    >>> knn = KNearestNeighbors(n_neighbors=1).fit(np.array([[0.0], [10.0]]), np.array([0, 1]))
    >>> knn.predict(np.array([[2.0], [7.0]]))
    array([0, 1])
    """

    def __init__(self, n_neighbors=1, metric="l2", block=512):
        if isinstance(n_neighbors, bool) or int(n_neighbors) != n_neighbors or n_neighbors < 1:
            raise ValueError(f"KNearestNeighbors: n_neighbors must be a positive integer, got {n_neighbors!r}")
        if metric not in ("l1", "l2"):
            raise ValueError(f"KNearestNeighbors: metric must be 'l1' or 'l2', got {metric!r}")
        self.n_neighbors, self.metric, self.block = int(n_neighbors), metric, int(block)

    def fit(self, X, y):
        """Memorise the training data: X (N, D) (or (N, ...)), y (N,) integer labels."""
        X = _as_2d(X, "X", "KNearestNeighbors.fit")
        y = (y.data if isinstance(y, Tensor) else np.asarray(y)).reshape(-1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"KNearestNeighbors.fit: {X.shape[0]} samples but {y.shape[0]} labels")
        if y.dtype.kind not in "iu":
            raise ValueError(f"KNearestNeighbors.fit: labels must be integers, got {y.dtype}")
        if self.n_neighbors > X.shape[0]:
            raise ValueError(f"KNearestNeighbors.fit: n_neighbors={self.n_neighbors} is more than the "
                             f"{X.shape[0]} training samples")
        self.X_, self.y_ = X.astype(np.float64), y.astype(np.int64)
        self.classes_ = np.unique(self.y_)
        return self

    def kneighbors(self, X):
        """(distances, indices) of the k nearest training samples of each row of X, nearest first."""
        if not hasattr(self, "X_"):
            raise RuntimeError("KNearestNeighbors: call fit(X, y) before predict")
        X = _as_2d(X, "X", "KNearestNeighbors.predict")
        if X.shape[1] != self.X_.shape[1]:
            raise ValueError(f"KNearestNeighbors.predict: X has {X.shape[1]} features, the training data "
                             f"{self.X_.shape[1]}")
        k = self.n_neighbors
        dist = np.empty((X.shape[0], k))
        idx = np.empty((X.shape[0], k), dtype=np.int64)
        for s in range(0, X.shape[0], self.block):
            d = pairwise_distances(X[s:s + self.block], self.X_, self.metric, squared=True) \
                if self.metric == "l2" else pairwise_distances(X[s:s + self.block], self.X_, "l1")
            order = np.argsort(d, axis=1, kind="stable")[:, :k]   # equal distances: training order
            idx[s:s + self.block] = order
            dist[s:s + self.block] = np.take_along_axis(d, order, axis=1)
        return (np.sqrt(dist) if self.metric == "l2" else dist), idx

    def predict(self, X):
        """The majority label of each row's k nearest neighbours (ties: see the module docstring)."""
        _, idx = self.kneighbors(X)
        labels = self.y_[idx]                                   # (M, k), nearest first
        classes = self.classes_
        pos = np.searchsorted(classes, labels)
        votes = np.zeros((labels.shape[0], classes.size), dtype=np.int64)
        np.add.at(votes, (np.arange(labels.shape[0])[:, None], pos), 1)
        top = votes.max(axis=1, keepdims=True)
        tied = votes[np.arange(labels.shape[0])[:, None], pos] == top   # neighbours whose class has the most votes
        first = np.argmax(tied, axis=1)                                 # the nearest such neighbour
        return labels[np.arange(labels.shape[0]), first]

    def score(self, X, y):
        """Accuracy on (X, y)."""
        y = (y.data if isinstance(y, Tensor) else np.asarray(y)).reshape(-1)
        return float((self.predict(X) == y).mean())
