"""Linear classifiers (lecture 3): scores f(x) = W x + b, one row of W per class.

Bias trick: appending a constant 1 to every x folds b into W, so f(x) = W' x' -- used by
the closed form below. Two losses on the scores s = f(x_i), label y_i:

* multiclass SVM (hinge): L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin)
* softmax (cross-entropy): L_i = -log(exp(s_{y_i}) / sum_j exp(s_j))

plus ``reg`` * (L2: sum W^2 | L1: sum |W|) on the weights (not the bias), minimised by
mini-batch SGD with pydl's autograd and the fused loss kernels. ``least_squares`` is the
closed-form alternative W* = (X'X)^-1 X'Y on one-hot targets (with an optional ridge).
"""
import numpy as np

from .. import random as _pydl_random
from ..nn import functional as F
from ..nn.parameter import Parameter
from ..tensor import Tensor
from .knn import _as_2d

__all__ = ["LeastSquaresClassifier", "LinearClassifier", "least_squares"]


def _labels(y, n, op):
    y = (y.data if isinstance(y, Tensor) else np.asarray(y)).reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{op}: {n} samples but {y.shape[0]} labels")
    if y.dtype.kind not in "iu":
        raise ValueError(f"{op}: labels must be integers, got {y.dtype}")
    if y.size and y.min() < 0:
        raise ValueError(f"{op}: labels must be non-negative, got {y.min()}")
    return y.astype(np.int64)


class LinearClassifier:
    """A linear classifier trained by mini-batch SGD on the SVM or the softmax loss.

    loss: "svm" or "softmax"; reg: regularisation strength; penalty: "l2" or "l1";
    lr, epochs, batch_size, momentum: the SGD; seed: the generator of initial weights
    (0.001 * randn) and batch order (None: pydl's global generator).

    >>> from pydl.data.datasets import make_blobs
    >>> x, y = make_blobs(300, 3, seed=0)
    >>> LinearClassifier("softmax", epochs=20).fit(x, y).score(x, y) > 0.95
    True
    """

    def __init__(self, loss="softmax", reg=1e-4, penalty="l2", lr=0.05, epochs=50, batch_size=64, momentum=0.9,
                 margin=1.0, seed=0):
        if loss not in ("svm", "softmax"):
            raise ValueError(f"LinearClassifier: loss must be 'svm' or 'softmax', got {loss!r}")
        if penalty not in ("l1", "l2"):
            raise ValueError(f"LinearClassifier: penalty must be 'l1' or 'l2', got {penalty!r}")
        self.loss, self.reg, self.penalty, self.lr, self.epochs = loss, float(reg), penalty, float(lr), int(epochs)
        self.batch_size, self.momentum, self.margin, self.seed = int(batch_size), float(momentum), float(margin), seed

    def _loss(self, scores, y):
        if self.loss == "svm":
            return F.svm_loss(scores, y, margin=self.margin)
        return F.cross_entropy(scores, y)

    def fit(self, X, y, num_classes=None):
        """X (N, D) (or (N, ...)), y (N,) integer labels. Returns self; ``loss_history_`` per epoch."""
        from ..optim import SGD

        X = _as_2d(X, "X", "LinearClassifier.fit").astype(np.float32)
        y = _labels(y, X.shape[0], "LinearClassifier.fit")
        C = int(num_classes or (y.max() + 1 if y.size else 1))
        rng = np.random.default_rng(self.seed) if self.seed is not None else _pydl_random.default_generator()
        self.W = Parameter(Tensor._make((0.001 * rng.standard_normal((X.shape[1], C))).astype(np.float32)))
        self.b = Parameter(Tensor._make(np.zeros(C, np.float32)))
        opt = SGD([self.W, self.b], lr=self.lr, momentum=self.momentum)
        self.loss_history_ = []
        for _ in range(self.epochs):
            order = rng.permutation(X.shape[0])
            total = 0.0
            for s in range(0, X.shape[0], self.batch_size):
                idx = order[s:s + self.batch_size]
                scores = Tensor._make(X[idx]) @ self.W + self.b
                loss = self._loss(scores, Tensor._make(y[idx]))
                penalty = (self.W * self.W).sum() if self.penalty == "l2" else self.W.abs().sum()
                loss = loss + self.reg * penalty
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * idx.size
            self.loss_history_.append(total / X.shape[0])
        return self

    def decision_function(self, X):
        """Class scores (N, C)."""
        if not hasattr(self, "W"):
            raise RuntimeError("LinearClassifier: call fit(X, y) before predict")
        X = _as_2d(X, "X", "LinearClassifier.predict").astype(np.float32)
        return X @ self.W.data + self.b.data

    def predict(self, X):
        return self.decision_function(X).argmax(axis=1)

    def score(self, X, y):
        y = _labels(y, _as_2d(X, "X", "score").shape[0], "LinearClassifier.score")
        return float((self.predict(X) == y).mean())


def least_squares(X, Y, l2=0.0, fit_bias=True):
    """The closed-form least-squares weights W* = (X'X + l2 I)^-1 X'Y.

    X (N, D); Y (N, K) targets or (N,) integer labels (turned into one-hot rows). With
    ``fit_bias`` (the bias trick) a column of ones is appended to X, so the result is
    (D + 1, K) and its last row is the bias. Solved with ``np.linalg.lstsq`` when l2 == 0
    (X'X may be singular: constant pixels), else with the ridge's normal equations.

    >>> least_squares(np.array([[0.0], [1.0], [2.0]]), np.array([[1.0], [3.0], [5.0]]))
    array([[2.],
           [1.]])
    """
    op = "least_squares"
    X = _as_2d(X, "X", op).astype(np.float64)
    Y = Y.data if isinstance(Y, Tensor) else np.asarray(Y)
    if Y.ndim == 1:
        labels = _labels(Y, X.shape[0], op)
        Y = np.eye(int(labels.max()) + 1 if labels.size else 1)[labels]
    if Y.shape[0] != X.shape[0]:
        raise ValueError(f"{op}: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
    Y = Y.astype(np.float64).reshape(Y.shape[0], -1)
    if fit_bias:
        X = np.concatenate([X, np.ones((X.shape[0], 1))], axis=1)
    if l2 > 0:
        reg = l2 * np.eye(X.shape[1])
        if fit_bias:
            reg[-1, -1] = 0.0   # the bias is not penalised
        return np.linalg.solve(X.T @ X + reg, X.T @ Y)
    return np.linalg.lstsq(X, Y, rcond=None)[0]


class LeastSquaresClassifier:
    """Classify by the largest output of the least-squares fit to one-hot targets."""

    def __init__(self, l2=1e-3):
        self.l2 = float(l2)

    def fit(self, X, y):
        X = _as_2d(X, "X", "LeastSquaresClassifier.fit")
        self.W_ = least_squares(X, _labels(y, X.shape[0], "LeastSquaresClassifier.fit"), self.l2)
        return self

    def decision_function(self, X):
        if not hasattr(self, "W_"):
            raise RuntimeError("LeastSquaresClassifier: call fit(X, y) before predict")
        X = _as_2d(X, "X", "LeastSquaresClassifier.predict").astype(np.float64)
        return X @ self.W_[:-1] + self.W_[-1]

    def predict(self, X):
        return self.decision_function(X).argmax(axis=1)

    def score(self, X, y):
        y = (y.data if isinstance(y, Tensor) else np.asarray(y)).reshape(-1)
        return float((self.predict(X) == y).mean())
