"""Linear classifiers (SVM and softmax losses, SGD) and closed-form least squares."""
import numpy as np
import pytest

from pydl.classic import LeastSquaresClassifier, LinearClassifier, least_squares
from pydl.data.datasets import make_blobs


@pytest.mark.parametrize("loss", ["svm", "softmax"])
@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_linear_classifier_separates_blobs(loss, penalty):
    x, y = make_blobs(300, 4, 5, seed=0)
    clf = LinearClassifier(loss, penalty=penalty, epochs=15, lr=0.01).fit(x, y)
    assert clf.score(x, y) > 0.95
    assert clf.decision_function(x).shape == (300, 4)
    assert clf.loss_history_[-1] < clf.loss_history_[0]


def test_regularisation_shrinks_the_weights():
    x, y = make_blobs(300, 3, 4, seed=1)
    small = LinearClassifier("softmax", reg=0.0, epochs=20, lr=0.01).fit(x, y)
    big = LinearClassifier("softmax", reg=1.0, epochs=20, lr=0.01).fit(x, y)
    assert np.abs(big.W.data).sum() < 0.5 * np.abs(small.W.data).sum()


def test_seeded_and_errors():
    x, y = make_blobs(60, 3, 2, seed=0)
    a = LinearClassifier(epochs=3, seed=4).fit(x, y).W.data
    b = LinearClassifier(epochs=3, seed=4).fit(x, y).W.data
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="'svm' or 'softmax'"):
        LinearClassifier("hinge")
    with pytest.raises(ValueError, match="labels must be integers"):
        LinearClassifier().fit(x, y.astype(np.float32))
    with pytest.raises(RuntimeError, match="call fit"):
        LinearClassifier().predict(x)


def test_least_squares_closed_form(rng):
    X = rng.standard_normal((50, 3))
    W = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])
    b = np.array([0.25, -1.0])
    Y = X @ W + b
    Wb = least_squares(X, Y)
    np.testing.assert_allclose(Wb, np.vstack([W, b]), atol=1e-10)
    np.testing.assert_allclose(least_squares(X, Y, fit_bias=False), np.linalg.lstsq(X, Y, rcond=None)[0])
    ridge = least_squares(X, Y, l2=10.0)
    assert np.abs(ridge[:-1]).sum() < np.abs(W).sum()
    Xb = np.hstack([X, np.ones((50, 1))])
    reg = 10.0 * np.eye(4)
    reg[-1, -1] = 0
    np.testing.assert_allclose(ridge, np.linalg.solve(Xb.T @ Xb + reg, Xb.T @ Y), rtol=1e-10)
    labels = np.array([0, 2, 1, 2])
    assert least_squares(np.eye(4), labels).shape == (5, 3)
    with pytest.raises(ValueError, match="rows"):
        least_squares(X, Y[:10])


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    from pydl.data.datasets import load_digits_arrays

    return load_digits_arrays(True) + load_digits_arrays(False)


def test_linear_classifiers_on_digits(digits):
    x, y, xt, yt = digits
    # measured on this split: softmax 95.0 %, SVM 95.0 %, least squares (ridge 1e-3) 92.8 %
    assert LinearClassifier("softmax").fit(x, y).score(xt, yt) >= 0.93
    assert LinearClassifier("svm").fit(x, y).score(xt, yt) >= 0.93
    assert LeastSquaresClassifier().fit(x, y).score(xt, yt) >= 0.90
