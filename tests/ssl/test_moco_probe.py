"""MoCo's queue and momentum update, step by step; the linear probe."""
import numpy as np
import pytest

import pydl
from pydl.ssl import KeyQueue, extract_features, linear_probe, momentum_update


def test_momentum_update_step_by_step():
    pydl.manual_seed(0)
    q = pydl.nn.Sequential(pydl.nn.Linear(3, 4), pydl.nn.BatchNorm1d(4))
    k = pydl.nn.Sequential(pydl.nn.Linear(3, 4), pydl.nn.BatchNorm1d(4))
    theta_k = {n: p.detach().numpy().copy() for n, p in k.named_parameters()}
    for step in range(3):
        theta_q = {n: p.detach().numpy().copy() for n, p in q.named_parameters()}
        momentum_update(k, q, m=0.9)
        for n, p in k.named_parameters():
            theta_k[n] = 0.9 * theta_k[n] + 0.1 * theta_q[n]      # theta_k <- m theta_k + (1 - m) theta_q
            np.testing.assert_allclose(p.detach().numpy(), theta_k[n], rtol=1e-6)
        for p in q.parameters():                                  # the query encoder moves (by SGD)
            p.data[...] += 0.5
    np.testing.assert_array_equal(k[1].running_mean.numpy(), q[1].running_mean.numpy())
    momentum_update(k, q, m=0.0)
    for (_, a), (_, b) in zip(k.named_parameters(), q.named_parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    with pytest.raises(ValueError, match="m must be"):
        momentum_update(k, q, m=1.5)
    with pytest.raises(ValueError, match="no match"):
        momentum_update(pydl.nn.Linear(3, 5), pydl.nn.Linear(3, 4))


def test_key_queue_fifo():
    queue = KeyQueue(5, 2)
    assert queue.keys.shape == (5, 2) and queue.ptr == 0
    np.testing.assert_allclose(np.linalg.norm(queue.keys, axis=1), 1.0, rtol=1e-6)
    queue.enqueue(np.full((2, 2), 1.0))
    assert queue.ptr == 2 and (queue.keys[:2] == 1).all()
    queue.enqueue(np.full((2, 2), 2.0))
    assert queue.ptr == 4 and (queue.keys[2:4] == 2).all()
    queue.enqueue(pydl.full((2, 2), 3.0))        # wraps: overwrites slot 4, then the oldest (slot 0)
    assert queue.ptr == 1
    np.testing.assert_array_equal(queue.keys[:, 0], [3, 1, 2, 2, 3])
    assert queue.tensor().shape == (5, 2)
    with pytest.raises(ValueError, match="enqueue"):
        queue.enqueue(np.ones((2, 3)))


def test_linear_probe_separable_vs_noise(rng):
    y = rng.integers(0, 3, 300)
    centres = rng.standard_normal((3, 5)) * 4
    good = centres[y] + rng.standard_normal((300, 5))
    noise = rng.standard_normal((300, 5))
    acc_good = linear_probe(good[:200], y[:200], good[200:], y[200:], epochs=100)
    acc_noise = linear_probe(noise[:200], y[:200], noise[200:], y[200:], epochs=100)
    assert acc_good > 0.9 and acc_noise < 0.6
    enc = pydl.nn.Sequential(pydl.nn.Flatten(), pydl.nn.Linear(4, 2))
    f = extract_features(enc, rng.standard_normal((10, 1, 2, 2)).astype(np.float32), batch_size=3)
    assert f.shape == (10, 2)
