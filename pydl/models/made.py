"""MADE: a masked autoencoder for distribution estimation (Germain et al. 2015).

The taxonomy's autoregressive explicit density: p(x) = prod_d p(x_d | x_<d), every
conditional computed in one pass by an MLP whose weights are masked so that output d sees
only the inputs that come before d in the ordering. Each unit k gets a degree m(k): inputs
1..D (their position in the order), hidden units in [min degree below, D - 1]; a hidden
weight k <- j exists iff m(k) >= m(j), an output weight d <- j iff m_out(d) > m(j).
"""
import numpy as np

import pydl
from .. import nn
from ..nn import functional as F

__all__ = ["MADE", "MaskedLinear"]


class MaskedLinear(nn.Linear):
    """y = x (W * M)^T + b with a fixed 0/1 mask M (out_features, in_features) (a buffer)."""

    def __init__(self, in_features, out_features, mask=None, bias=True):
        super().__init__(in_features, out_features, bias=bias)
        m = np.ones((out_features, in_features), np.float32) if mask is None else np.asarray(mask, np.float32)
        if m.shape != (out_features, in_features):
            raise ValueError(f"MaskedLinear: mask must have shape ({out_features}, {in_features}), got {m.shape}")
        self.register_buffer("mask", pydl.tensor(m))

    def set_mask(self, mask):
        self.mask.data[...] = np.asarray(mask, dtype=self.mask.data.dtype)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Binary MADE: x (N, D) in {0, 1} -> logits (N, D) of p(x_d = 1 | x_<d) in ``order``.

    ``order`` is a permutation of 0..D-1 listing the variables first to last (default:
    0, 1, ..., D-1): variable ``order[i]`` is conditioned on ``order[:i]``. ``log_prob(x)`` is
    the exact log-likelihood, ``sample(n)`` draws D passes, one variable at a time.

    >>> made = MADE(4, hidden=(16,))
    >>> made(pydl.zeros(2, 4)).shape
    (2, 4)
    """

    def __init__(self, in_features, hidden=(64,), order=None, seed=0):
        super().__init__()
        D = self.in_features = in_features
        order = np.arange(D) if order is None else np.asarray(order)
        if sorted(order.tolist()) != list(range(D)):
            raise ValueError(f"MADE: order must be a permutation of 0..{D - 1}, got {order.tolist()}")
        self.order = order
        rng = np.random.default_rng(seed)
        degrees = [np.argsort(order) + 1]             # input d has degree = its position in the order (1..D)
        for h in hidden:
            lo = int(min(degrees[-1].min(), D - 1))
            degrees.append(rng.integers(lo, D, size=h) if D > 1 else np.ones(h, np.int64))
        sizes = [D, *hidden, D]
        layers = []
        for i in range(len(hidden)):
            mask = degrees[i + 1][:, None] >= degrees[i][None, :]
            layers += [MaskedLinear(sizes[i], sizes[i + 1], mask), nn.ReLU()]
        out_mask = degrees[0][:, None] > degrees[-1][None, :]
        layers.append(MaskedLinear(sizes[-2], D, out_mask))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)

    def log_prob(self, x):
        """log p(x) = sum_d log p(x_d | x_<d): (N, D) -> (N,)."""
        return -F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(dim=1)

    def sample(self, n, seed=None):
        """n samples (n, D) drawn variable by variable in the model's order."""
        rng = np.random.default_rng(seed)
        x = np.zeros((n, self.in_features), np.float32)
        with pydl.no_grad():
            for d in self.order:
                p = np.asarray(self(pydl.tensor(x)).sigmoid().data)[:, d]
                x[:, d] = (rng.uniform(size=n) < p).astype(np.float32)
        return pydl.tensor(x)
