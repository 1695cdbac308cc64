"""k-nearest neighbours: distances against direct formulas, deterministic ties, Digits accuracy."""
import numpy as np
import pytest

from pydl.classic import KNearestNeighbors, cross_validate, pairwise_distances


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_distances_match_the_definitions(metric, rng):
    a = rng.standard_normal((37, 13))
    b = rng.standard_normal((129, 13))
    diff = a[:, None, :] - b[None, :, :]
    ref = np.abs(diff).sum(-1) if metric == "l1" else np.sqrt((diff ** 2).sum(-1))
    np.testing.assert_allclose(pairwise_distances(a, b, metric, block=7), ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.diag(pairwise_distances(a, a, metric)), 0, atol=1e-6)


def test_l2_uses_the_gemm_kernel(monkeypatch, rng):
    import pydl.classic.knn as knn

    calls = []
    real = knn._gemm()
    monkeypatch.setattr(knn, "_gemm", lambda: (lambda *a, **k: calls.append(1) or real(*a, **k)))
    pairwise_distances(rng.random((4, 3)), rng.random((5, 3)))
    assert calls == [1]


def test_ties_are_broken_deterministically():
    # equidistant neighbours: training order decides
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    knn = KNearestNeighbors(1).fit(X, np.array([3, 1, 2, 0]))
    assert knn.predict(np.array([[0.0]])).tolist() == [3]
    _, idx = knn.kneighbors(np.array([[0.0]]))
    assert idx.tolist() == [[0]]
    # a 1-1 vote: the class of the nearest neighbour wins, whatever the label values
    X = np.array([[0.0], [0.9], [-1.0]])
    for labels, expected in (([5, 2, 9], 5), ([2, 5, 9], 2)):
        knn = KNearestNeighbors(2).fit(X, np.array(labels))
        assert knn.predict(np.array([[0.1]])).tolist() == [expected]
    # 2-2 vote with k = 4: the tied class holding the nearest point
    X = np.array([[0.0], [0.5], [1.0], [1.5], [10.0]])
    knn = KNearestNeighbors(4).fit(X, np.array([1, 0, 0, 1, 0]))
    assert knn.predict(np.array([[0.2]])).tolist() == [1]


def test_majority_vote():
    X = np.array([[0.0], [1.0], [1.1], [1.2], [5.0]])
    y = np.array([0, 1, 1, 1, 0])
    assert KNearestNeighbors(3).fit(X, y).predict(np.array([[0.2]])).tolist() == [1]
    assert KNearestNeighbors(1).fit(X, y).predict(np.array([[0.2]])).tolist() == [0]


def test_errors(rng):
    with pytest.raises(ValueError, match="n_neighbors"):
        KNearestNeighbors(0)
    with pytest.raises(ValueError, match="metric"):
        KNearestNeighbors(1, "cosine")
    with pytest.raises(RuntimeError, match="call fit"):
        KNearestNeighbors().predict(rng.random((2, 3)))
    knn = KNearestNeighbors(3).fit(rng.random((5, 3)), np.arange(5))
    with pytest.raises(ValueError, match="features"):
        knn.predict(rng.random((2, 4)))
    with pytest.raises(ValueError, match="more than the 2 training samples"):
        KNearestNeighbors(3).fit(rng.random((2, 3)), np.arange(2))
    with pytest.raises(ValueError, match="labels must be integers"):
        KNearestNeighbors(1).fit(rng.random((2, 3)), np.array([0.5, 1.0]))


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    from pydl.data.datasets import load_digits_arrays

    return load_digits_arrays(True) + load_digits_arrays(False)


def test_knn_on_digits(digits):
    x, y, xt, yt = digits
    # 1-NN on the raw 8x8 pixels: measured 98.3 % (L2) and 97.5 % (L1); 3-NN L2 98.9 %
    assert KNearestNeighbors(1, "l2").fit(x, y).score(xt, yt) >= 0.97
    assert KNearestNeighbors(1, "l1").fit(x, y).score(xt, yt) >= 0.96
    assert KNearestNeighbors(3, "l2").fit(x, y).score(xt, yt) >= 0.97


def test_cross_validation_chooses_k(digits):
    x, y = digits[0], digits[1]
    means = {k: cross_validate(lambda: KNearestNeighbors(k), x, y, k=5)["mean"] for k in (1, 3, 25)}
    assert all(m > 0.9 for m in means.values())
    assert max(means, key=means.get) in (1, 3)                 # small k wins on this clean data
