"""Adversarial examples and robustness (lecture 8): "modify the image to improve a class
score, repeat"; and the black-box version: add random noise and watch the accuracy."""
import numpy as np

import pydl
import pydl.nn.functional as F
from .attribution import _input, _targets, eval_mode

__all__ = ["accuracy", "fgsm", "iterative_fgsm", "noise_robustness"]


def _array(x, dtype=None):
    """A Tensor's array (detached) or any array-like, as NumPy."""
    from ..tensor import Tensor
    return np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype)


def _loss_grad(model, x, y, op):
    x = _input(x, op)
    with eval_mode(model):
        loss = F.cross_entropy(model(x), pydl.tensor(_targets(y, x.shape[0], op)))
        (g,) = pydl.autograd.grad(loss, x)
    return np.asarray(g.data), float(loss.item())


def fgsm(model, x, y, eps, clip=None):
    """Fast gradient sign method: x_adv = x + eps * sign(d loss(x, y) / dx), the one step that
    raises the cross-entropy most under an L-infinity budget eps. (N, C, H, W) -> NumPy."""
    if eps < 0:
        raise ValueError(f"fgsm: eps must be >= 0, got {eps}")
    g, _ = _loss_grad(model, x, y, "fgsm")
    arr = _array(x)
    adv = arr + eps * np.sign(g)
    return (np.clip(adv, *clip) if clip is not None else adv).astype(arr.dtype)


def iterative_fgsm(model, x, y, eps, alpha=None, steps=10, clip=None):
    """Iterative FGSM (basic iterative method): ``steps`` FGSM steps of size ``alpha``, each
    projected back into the eps-ball around x (and into ``clip``)."""
    alpha = eps / 4 if alpha is None else alpha
    x0 = _array(x)
    adv = x0.copy()
    for _ in range(steps):
        g, _ = _loss_grad(model, adv, y, "iterative_fgsm")
        adv = np.clip(adv + alpha * np.sign(g), x0 - eps, x0 + eps)
        if clip is not None:
            adv = np.clip(adv, *clip)
    return adv.astype(x0.dtype)


def accuracy(model, x, y, batch_size=512):
    """Fraction of images (N, C, H, W) whose arg-max class equals y (eval mode, no gradient)."""
    xs = _array(x)
    ys = _array(y)
    correct = 0
    with eval_mode(model), pydl.no_grad():
        for i in range(0, len(xs), batch_size):
            pred = np.asarray(model(pydl.tensor(xs[i:i + batch_size])).data).argmax(1)
            correct += int((pred == ys[i:i + batch_size]).sum())
    return correct / max(len(xs), 1)


def noise_robustness(model, x, y, sigmas=(0.0, 0.1, 0.2, 0.5, 1.0), seed=0, clip=None):
    """Accuracy under additive Gaussian noise of each standard deviation: {sigma: accuracy}."""
    rng = np.random.default_rng(seed)
    xs = _array(x)
    out = {}
    for s in sigmas:
        noisy = xs + s * rng.standard_normal(xs.shape).astype(xs.dtype)
        if clip is not None:
            noisy = np.clip(noisy, *clip)
        out[float(s)] = accuracy(model, noisy, y)
    return out
