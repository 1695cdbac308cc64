"""Linear-probe evaluation: freeze an encoder, fit a linear softmax classifier on its
features, report the test accuracy (the lecture: "pretext task performance is irrelevant;
toss a linear classifier on the back of the encoder")."""
import numpy as np

import pydl
import pydl.nn.functional as F
from ..tensor import Tensor

__all__ = ["extract_features", "linear_probe"]


def extract_features(encoder, x, batch_size=256):
    """encoder(x) in eval mode and without gradient, flattened: (N, ...) -> NumPy (N, D)."""
    was_training = encoder.training
    encoder.eval()
    xs = x.data if isinstance(x, Tensor) else np.asarray(x)
    out = []
    with pydl.no_grad():
        for i in range(0, len(xs), batch_size):
            f = encoder(pydl.tensor(xs[i:i + batch_size]))
            out.append(np.asarray(f.data).reshape(f.shape[0], -1))
    encoder.train(was_training)
    return np.concatenate(out).astype(np.float64) if out else np.zeros((0, 0))


def linear_probe(train_features, train_labels, test_features, test_labels, epochs=300, lr=0.05,
                 weight_decay=1e-4, seed=0):
    """Fit softmax regression on standardised features (full-batch Adam) -> test accuracy in [0, 1].

    Features are NumPy (N, D) (see :func:`extract_features`); labels integer (N,).
    """
    xtr, xte = np.asarray(train_features, np.float64), np.asarray(test_features, np.float64)
    ytr, yte = np.asarray(train_labels, np.int64), np.asarray(test_labels, np.int64)
    if xtr.ndim != 2 or xte.ndim != 2 or xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"linear_probe: features must be (N, D) with the same D, got {xtr.shape}, {xte.shape}")
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    n_classes = int(max(ytr.max(), yte.max())) + 1
    rng = np.random.default_rng(seed)
    W = pydl.tensor((rng.standard_normal((xtr.shape[1], n_classes)) * 0.01).astype(np.float32), requires_grad=True)
    b = pydl.zeros(n_classes, requires_grad=True)
    opt = pydl.optim.Adam([W, b], lr=lr, weight_decay=weight_decay)
    X, Y = pydl.tensor(xtr.astype(np.float32)), pydl.tensor(ytr)
    for _ in range(epochs):
        opt.zero_grad()
        loss = F.cross_entropy(X @ W + b, Y)
        loss.backward()
        opt.step()
    with pydl.no_grad():
        pred = np.asarray((pydl.tensor(xte.astype(np.float32)) @ W + b).data).argmax(1)
    return float((pred == yte).mean())
