"""pydl.classic: the classifiers of lectures 2-3, before neural networks.

==========================  ==================================================
``KNearestNeighbors``       k-NN, L1 / L2 (vectorised through pydl's gemm)
``pairwise_distances``      the full distance matrix
``LinearClassifier``        f(x) = Wx + b, SVM or softmax loss, SGD
``least_squares``           closed form W* = (X'X)^-1 X'Y (bias trick, ridge)
``cross_validate``          k-fold cross-validation (choose k, the distance)
==========================  ==================================================

>>> from pydl.data.datasets import load_digits_arrays
>>> x, y = load_digits_arrays(train=True)
>>> xt, yt = load_digits_arrays(train=False)
>>> KNearestNeighbors(1).fit(x, y).score(xt, yt) > 0.97
True
"""
from .knn import KNearestNeighbors, pairwise_distances
from .linear import LeastSquaresClassifier, LinearClassifier, least_squares
from .model_selection import cross_validate, kfold_indices, train_test_split

__all__ = ["KNearestNeighbors", "LeastSquaresClassifier", "LinearClassifier", "cross_validate", "kfold_indices",
           "least_squares", "pairwise_distances", "train_test_split"]
