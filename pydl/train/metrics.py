"""Classification metrics on score arrays: accuracy and top-k accuracy, and a running mean.

Scores (N, K) (any monotone function of the class probabilities: logits, log-probabilities)
and targets (N,) class indices, or (N, K) probabilities (mixup / cutmix targets: their
arg-max counts as the class). Tensors or NumPy arrays.
"""
import numpy as np

from .._device import to_device
from ..tensor import Tensor

__all__ = ["MeanMetric", "accuracy", "correct_topk", "topk_accuracy"]


def _arrays(output, target, op):
    out = to_device(output.data, "cpu") if isinstance(output, Tensor) else np.asarray(output)  # GPU: to the host
    tgt = to_device(target.data, "cpu") if isinstance(target, Tensor) else np.asarray(target)
    if out.ndim != 2:
        raise ValueError(f"{op}: output must be scores of shape (N, K), got {out.shape}")
    if tgt.ndim == 2 and tgt.dtype.kind == "f":
        tgt = tgt.argmax(axis=1)
    if tgt.shape != (out.shape[0],):
        raise ValueError(f"{op}: target must be (N,) class indices or (N, K) probabilities for output "
                         f"{out.shape}, got {tgt.shape}")
    return out, tgt


def correct_topk(output, target, ks=(1,)):
    """How many targets are among the k highest scores, for each k in ``ks`` (a list of ints).

    A target's rank is the number of classes scoring higher, plus those scoring the same
    with a smaller index (ties broken as ``argmax`` breaks them, so top-1 is ``accuracy``).
    """
    out, tgt = _arrays(output, target, "correct_topk")
    if out.shape[0] == 0:
        return [0 for _ in ks]
    mine = out[np.arange(out.shape[0]), tgt][:, None]
    before = np.arange(out.shape[1])[None, :] < tgt[:, None]
    above = ((out > mine) | ((out == mine) & before)).sum(axis=1)    # the target's 0-based rank
    return [int((above < min(int(k), out.shape[1])).sum()) for k in ks]


def accuracy(output, target):
    """The fraction of samples whose highest score is the target class.

    >>> accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1]))
    0.5
    """
    out, tgt = _arrays(output, target, "accuracy")
    return float((out.argmax(axis=1) == tgt).mean()) if out.shape[0] else 0.0


def topk_accuracy(output, target, k=5):
    """The fraction of samples whose target is among the ``k`` highest scores.

    >>> topk_accuracy(np.array([[0.1, 0.5, 0.4], [0.8, 0.15, 0.05]]), np.array([2, 2]), k=2)
    0.5
    """
    out, _ = _arrays(output, target, "topk_accuracy")
    return correct_topk(output, target, (k,))[0] / out.shape[0] if out.shape[0] else 0.0


class MeanMetric:
    """A running, sample-weighted mean: ``update(value, n)``, ``compute()``."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def update(self, value, n=1):
        self.total += float(value) * n
        self.count += int(n)

    def compute(self):
        return self.total / self.count if self.count else float("nan")
