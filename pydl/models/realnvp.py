"""RealNVP (Dinh et al. 2017): a normalising flow built from affine coupling layers.

The taxonomy's flow: an invertible f with a triangular Jacobian, so the exact likelihood is
log p(x) = log N(f(x); 0, I) + log |det df/dx|. A coupling layer keeps the masked half x_a
and transforms the other half with a scale and shift computed from x_a only:

    y = x_a + (1 - b) * (x * exp(s(x_a)) + t(x_a)),    log |det dy/dx| = sum_d (1 - b_d) s_d(x_a)
"""
import math

import numpy as np

import pydl
from .. import nn

__all__ = ["AffineCoupling", "RealNVP"]


class AffineCoupling(nn.Module):
    """One coupling layer on (N, D) with a fixed binary ``mask`` (D,) (1 = passed through).

    ``forward(x) -> (y, log_det (N,))``; ``inverse(y) -> x``. s is squashed by tanh (times a
    learnt scale) for stability.
    """

    def __init__(self, dim, mask, hidden=64):
        super().__init__()
        m = np.asarray(mask, np.float32)
        if m.shape != (dim,) or not np.isin(m, (0, 1)).all():
            raise ValueError(f"AffineCoupling: mask must be a 0/1 vector of length {dim}, got {m}")
        self.register_buffer("mask", pydl.tensor(m))
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * dim))
        self.scale = nn.Parameter(pydl.ones(dim))

    def _s_t(self, x_a):
        st = self.net(x_a)
        D = x_a.shape[1]
        inv = 1 - self.mask
        s = st[:, :D].tanh() * self.scale * inv
        t = st[:, D:] * inv
        return s, t

    def forward(self, x):
        x_a = x * self.mask
        s, t = self._s_t(x_a)
        y = x_a + (1 - self.mask) * (x * s.exp() + t)
        return y, s.sum(dim=1)

    def inverse(self, y):
        y_a = y * self.mask
        s, t = self._s_t(y_a)
        return y_a + (1 - self.mask) * ((y - t) * (-s).exp())


class RealNVP(nn.Module):
    """A stack of coupling layers with alternating checkerboard masks over (N, D) vectors.

    ``forward(x) -> (z, log_det)``, ``log_prob(x)`` exact (N,), ``sample(n)`` by inverting.

    >>> flow = RealNVP(4, num_layers=2, hidden=8)
    >>> flow.log_prob(pydl.randn(3, 4)).shape
    (3,)
    """

    def __init__(self, dim, num_layers=4, hidden=64):
        super().__init__()
        self.dim = dim
        base = np.arange(dim) % 2
        self.layers = nn.ModuleList([AffineCoupling(dim, base if i % 2 == 0 else 1 - base, hidden)
                                     for i in range(num_layers)])

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"RealNVP: input must be (N, {self.dim}), got {x.shape}")
        log_det = None
        for layer in self.layers:
            x, ld = layer(x)
            log_det = ld if log_det is None else log_det + ld
        return x, log_det

    def inverse(self, z):
        for layer in reversed(list(self.layers)):
            z = layer.inverse(z)
        return z

    def log_prob(self, x):
        """log N(f(x); 0, I) + log |det df/dx|: (N, D) -> (N,)."""
        z, log_det = self(x)
        return -0.5 * (z * z).sum(dim=1) - 0.5 * self.dim * math.log(2 * math.pi) + log_det

    def sample(self, n):
        with pydl.no_grad():
            return self.inverse(pydl.randn(n, self.dim))
