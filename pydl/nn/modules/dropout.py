"""Structured dropout: Dropout2d (whole channels) and StochasticDepth (whole residual
branches, Huang et al. 2016). Element-wise Dropout lives in :mod:`.linear`."""
from .. import functional as F
from .module import Module

__all__ = ["Dropout2d", "StochasticDepth"]


class Dropout2d(Module):
    """Zero whole channels of an (N, C, H, W) input with probability p in training (one draw
    per sample and channel), scaling the rest by 1 / (1 - p); the identity in eval mode.

    >>> pydl.nn.Dropout2d(0.2)
    Dropout2d(p=0.2, inplace=False)
    """

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class StochasticDepth(Module):
    """Stochastic depth (torchvision's ``ops.StochasticDepth``): in training, drop the
    residual branch it wraps for a whole sample (``mode='row'``) or the whole batch
    (``'batch'``) with probability p, scaling survivors by 1 / (1 - p); identity in eval.
    Put it at the end of a residual branch: ``out = shortcut + sd(branch(x))``.

    >>> pydl.nn.StochasticDepth(0.1, "row")
    StochasticDepth(p=0.1, mode=row)
    """

    def __init__(self, p, mode="row"):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop probability has to be between 0 and 1, but got {p}")
        if mode not in ("row", "batch"):
            raise ValueError(f"mode has to be either 'batch' or 'row', but got {mode}")
        self.p, self.mode = p, mode

    def forward(self, input):
        return F.stochastic_depth(input, self.p, self.mode, self.training)

    def extra_repr(self):
        return f"p={self.p}, mode={self.mode}"
