"""Proof it trains: the seeds' two-layer network f = W2 max(0, W1 x) learns the spirals
that defeat a linear classifier, and softmax / SVM linear classifiers separate a linearly
separable set. Plain SGD is written inline (no optimizer module needed)."""
import time

import numpy as np

import pydl
import pydl.nn as nn
import pydl.nn.functional as F


def spirals(points_per_class=100, classes=3, seed=0):
    """CS231n's spiral data: 3 interleaved arms in the plane, not linearly separable."""
    rng = np.random.default_rng(seed)
    X = np.zeros((points_per_class * classes, 2), dtype=np.float32)
    y = np.zeros(points_per_class * classes, dtype=np.int64)
    for c in range(classes):
        ix = range(points_per_class * c, points_per_class * (c + 1))
        r = np.linspace(0.0, 1, points_per_class)
        t = np.linspace(c * 4, (c + 1) * 4, points_per_class) + rng.standard_normal(points_per_class) * 0.2
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[ix] = c
    return pydl.tensor(X), pydl.tensor(y)


def blobs(n_per_class=100, classes=4, dim=5, seed=0):
    """Gaussian clusters far apart: linearly separable."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim)) * 6
    X = np.concatenate([c + rng.standard_normal((n_per_class, dim)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(classes), n_per_class)
    return pydl.tensor(X), pydl.tensor(y)


def sgd_step(params, lr, weight_decay=0.0):
    with pydl.no_grad():
        for p in params:
            if weight_decay:
                p -= lr * weight_decay * p
            p -= lr * p.grad
            p.grad = None


def accuracy(scores, y):
    return (scores.argmax(dim=1) == y).float().mean().item()


def test_two_layer_mlp_learns_spirals():
    pydl.manual_seed(0)
    X, y = spirals()
    net = nn.Sequential(nn.Linear(2, 100), nn.ReLU(), nn.Linear(100, 3))  # f = W2 max(0, W1 x)
    params = list(net.parameters())
    start = time.perf_counter()
    first = None
    for _ in range(1500):
        loss = F.cross_entropy(net(X), y)
        if first is None:
            first = loss.item()
        loss.backward()
        sgd_step(params, lr=1.0, weight_decay=1e-3)
    elapsed = time.perf_counter() - start
    assert abs(first - np.log(3)) < 0.1  # the seeds' sanity check: initial loss ~ log(C)
    with pydl.no_grad():
        acc = accuracy(net(X), y)
    assert acc >= 0.97, f"training accuracy {acc:.3f}"
    assert loss.item() < 0.3
    assert elapsed < 20, f"1500 steps took {elapsed:.1f} s"


def test_linear_classifier_cannot_learn_spirals():
    pydl.manual_seed(0)
    X, y = spirals()
    lin = nn.Linear(2, 3)
    for _ in range(300):
        F.cross_entropy(lin(X), y).backward()
        sgd_step(list(lin.parameters()), lr=1.0, weight_decay=1e-3)
    with pydl.no_grad():
        assert accuracy(lin(X), y) < 0.65  # about 0.5: one template per class is not enough


def train_linear(loss_fn, X, y, classes, steps=200, lr=0.1):
    pydl.manual_seed(1)
    W = (0.001 * pydl.randn(X.shape[1], classes)).requires_grad_()  # small random weights
    b = pydl.zeros(classes, requires_grad=True)
    for _ in range(steps):
        loss = loss_fn(X @ W + b, y) + 1e-4 * (W * W).sum()  # L2 regularisation
        loss.backward()
        sgd_step([W, b], lr)
    return W, b, loss.item()


def test_softmax_classifier_separates_blobs():
    X, y = blobs()
    W, b, loss = train_linear(F.cross_entropy, X, y, 4)
    with pydl.no_grad():
        assert accuracy(X @ W + b, y) == 1.0
    assert loss < 0.1
    Xt, yt = blobs(seed=0, n_per_class=50)  # same centres, fresh points
    with pydl.no_grad():
        assert accuracy(Xt @ W + b, yt) >= 0.99


def test_svm_classifier_separates_blobs():
    X, y = blobs()
    W, b, loss = train_linear(F.svm_loss, X, y, 4)
    with pydl.no_grad():
        scores = X @ W + b
        assert accuracy(scores, y) == 1.0
        # the hinge is satisfied: the right class wins by the margin almost everywhere
        assert F.svm_loss(scores, y).item() < 0.05
    W2, b2, _ = train_linear(F.multi_margin_loss, X, y, 4)
    with pydl.no_grad():
        assert accuracy(X @ W2 + b2, y) == 1.0
