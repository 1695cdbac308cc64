"""Choosing hyper-parameters on held-out data (lecture 2).

Never choose on the test set: split off a validation set, or, when data is scarce, use
k-fold cross-validation -- split the training data into k folds, train on k - 1 and
validate on the remaining one, k times, and average. The classic use: choosing k and the
distance of k-nearest neighbours.
"""
import numpy as np

from ..tensor import Tensor

__all__ = ["cross_validate", "kfold_indices", "train_test_split"]


def kfold_indices(n, k=5, shuffle=True, seed=0):
    """k (train indices, validation indices) pairs covering 0..n-1; the folds differ in size by
    at most one (the first ``n % k`` get the extra sample).

    >>> [v.tolist() for _, v in kfold_indices(5, 2, shuffle=False)]
    [[0, 1, 2], [3, 4]]
    """
    if int(k) < 2 or int(k) > n:
        raise ValueError(f"kfold_indices: k must be between 2 and the number of samples ({n}), got {k}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    folds = np.array_split(order, int(k))
    return [(np.sort(np.concatenate(folds[:i] + folds[i + 1:])), np.sort(folds[i])) for i in range(int(k))]


def _array(a):
    return a.data if isinstance(a, Tensor) else np.asarray(a)


def cross_validate(make_model, X, y, k=5, shuffle=True, seed=0, scoring=None):
    """k-fold cross-validation of the model ``make_model()`` builds (anything with
    ``fit(X, y)`` and ``score(X, y)``, or give ``scoring(model, X, y)``).

    Returns ``{"scores": [k fold accuracies], "mean", "std"}``.

    >>> from pydl.classic import KNearestNeighbors
    >>> X = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [5.2]]); y = np.array([0, 0, 0, 1, 1, 1])
    >>> cross_validate(lambda: KNearestNeighbors(1), X, y, k=3)["mean"]
    1.0
    """
    X, y = _array(X), _array(y)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"cross_validate: {X.shape[0]} samples but {y.shape[0]} labels")
    scores = []
    for train, val in kfold_indices(X.shape[0], k, shuffle, seed):
        model = make_model()
        model.fit(X[train], y[train])
        scores.append(float(scoring(model, X[val], y[val]) if scoring else model.score(X[val], y[val])))
    return {"scores": scores, "mean": float(np.mean(scores)), "std": float(np.std(scores))}


def train_test_split(*arrays, test_size=0.2, seed=0):
    """Split arrays (same first dimension) at random into train and test parts:
    returns [a_train, a_test, b_train, b_test, ...].

    >>> a_train, a_test = train_test_split(np.arange(10), test_size=0.3)
    >>> len(a_train), len(a_test)
    (7, 3)
    """
    if not arrays:
        raise ValueError("train_test_split: give at least one array")
    n = _array(arrays[0]).shape[0]
    if any(_array(a).shape[0] != n for a in arrays):
        raise ValueError("train_test_split: all arrays must have the same first dimension")
    n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 <= n_test <= n:
        raise ValueError(f"train_test_split: test_size {test_size} does not fit {n} samples")
    order = np.random.default_rng(seed).permutation(n)
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    out = []
    for a in arrays:
        a = _array(a)
        out += [a[train], a[test]]
    return out
