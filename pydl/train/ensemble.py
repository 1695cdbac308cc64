"""Model ensembles (lecture 8): train several models, average their predictions.

Independent models make partly independent mistakes, so averaging their class
probabilities usually gains one or two points of accuracy over the best single one. The
ensemble returns the log of the averaged probabilities: ``argmax`` is its prediction and
``cross_entropy`` of it is its negative log-likelihood, so a Trainer can evaluate it.
"""
import os

import numpy as np

from .. import nn
from ..nn import functional as F
from ..serialization import load
from ..tensor import Tensor

__all__ = ["Ensemble", "load_ensemble"]


class Ensemble(nn.Module):
    """Average the softmax probabilities of ``models`` (each (N, *) -> (N, K) scores).

    forward: input -> log of the mean probabilities (N, K).

    >>> import pydl
    >>> nets = [pydl.nn.Linear(4, 3) for _ in range(3)]
    >>> probs = Ensemble(nets)(pydl.randn(2, 4)).exp()
    >>> probs.shape, bool(np.allclose(probs.sum(dim=1).data, 1.0, atol=1e-6))
    ((2, 3), True)
    """

    def __init__(self, models, weights=None):
        super().__init__()
        models = list(models)
        if not models:
            raise ValueError("Ensemble: give at least one model")
        self.members = nn.ModuleList(models)
        if weights is None:
            weights = [1.0] * len(models)
        if len(weights) != len(models) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"Ensemble: need one non-negative weight per model (not all zero), got {weights}")
        self.weights = [float(w) / sum(weights) for w in weights]

    def forward(self, x):
        total = None
        for w, m in zip(self.weights, self.members):
            p = F.softmax(m(x), dim=1) * w
            total = p if total is None else total + p
        return total.clamp_min(float(np.finfo(total.dtype).tiny)).log()


def load_ensemble(build_model, paths, weights=None):
    """An :class:`Ensemble` of the models saved at ``paths`` (Trainer checkpoints, ``best.safetensors``
    files, or plain state dicts), each built by ``build_model()`` and loaded."""
    models = []
    for path in paths:
        ckpt = load(os.fspath(path))
        state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
        if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
            raise ValueError(f"load_ensemble: {path} holds no model state dict")
        model = build_model()
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"load_ensemble: the model in {path} does not fit build_model()'s: {e}") from None
        model.eval()
        models.append(model)
    return Ensemble(models, weights).eval()
