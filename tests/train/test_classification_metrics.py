"""accuracy, top-k accuracy (ties broken as argmax breaks them), soft targets, running means."""
import numpy as np
import pytest

import pydl
from pydl.train import MeanMetric, accuracy, correct_topk, topk_accuracy


def test_accuracy_and_topk(rng):
    scores = rng.standard_normal((200, 7))
    target = rng.integers(0, 7, 200)
    assert accuracy(scores, target) == pytest.approx(np.mean(scores.argmax(1) == target))
    for k in (1, 3, 7):
        topk = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ref = np.mean([target[i] in topk[i] for i in range(200)])
        assert topk_accuracy(scores, target, k) == pytest.approx(ref)
    assert topk_accuracy(scores, target, 1) == accuracy(scores, target)
    assert topk_accuracy(scores, target, 50) == 1.0


def test_ties_follow_argmax():
    scores = np.zeros((3, 4))
    target = np.array([0, 1, 3])
    assert correct_topk(scores, target, (1, 2, 4)) == [1, 2, 3]
    assert accuracy(scores, target) == pytest.approx(1 / 3)


def test_tensors_and_soft_targets():
    scores = pydl.tensor([[0.1, 0.9], [0.8, 0.2]])
    soft = pydl.tensor([[0.3, 0.7], [0.4, 0.6]])
    assert accuracy(scores, soft) == 0.5
    assert accuracy(np.zeros((0, 3)), np.zeros(0, np.int64)) == 0.0


def test_errors():
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        accuracy(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="target"):
        accuracy(np.zeros((3, 2)), np.zeros(4, np.int64))


def test_mean_metric():
    m = MeanMetric()
    assert np.isnan(m.compute())
    m.update(1.0, 3)
    m.update(3.0, 1)
    assert m.compute() == 1.5
