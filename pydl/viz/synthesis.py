"""Images synthesised by gradient steps on the input: class visualisation and feature inversion.

Both follow the lecture: start from a plain image, follow the gradient of an objective with
respect to the pixels, "and a heck of a lot of regularisation".
"""
import numpy as np

import pydl
from .attribution import _class_score, eval_mode

__all__ = ["class_visualization", "feature_inversion", "gaussian_blur"]


def gaussian_blur(img, sigma=0.5):
    """Separable Gaussian blur of (N, C, H, W) NumPy images (reflect padding), radius 2 sigma."""
    if sigma <= 0:
        return np.array(img, copy=True)
    r = max(1, int(round(2 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    out = np.asarray(img, dtype=np.float64)
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="reflect" if out.shape[axis] > r else "edge")
        out = sum(k[i] * np.take(p, np.arange(i, i + out.shape[axis]), axis=axis) for i in range(2 * r + 1))
    return out.astype(np.asarray(img).dtype)


def class_visualization(model, target, shape, steps=100, lr=1.0, l2_reg=1e-3, blur_every=10, blur_sigma=0.5,
                        init=None, clip=None, seed=0):
    """The image that maximises class ``target``'s score: gradient ascent on

        I* = argmax_I S_c(I) - lambda ||I||^2

    with ``lr`` times the L2-normalised gradient per step, a Gaussian blur every ``blur_every``
    steps and optional clipping to ``clip`` = (lo, hi). ``shape`` is (C, H, W) of one image.
    Returns (C, H, W) NumPy and the score history.
    """
    rng = np.random.default_rng(seed)
    img = (rng.standard_normal((1,) + tuple(shape)) * 0.01 if init is None
           else np.asarray(init, dtype=np.float64).reshape((1,) + tuple(shape))).astype(np.float32)
    history = []
    with eval_mode(model):
        for step in range(steps):
            x = pydl.tensor(img, requires_grad=True)
            score = _class_score(model(x), [target], "class_visualization")
            obj = score - l2_reg * (x * x).sum()
            (g,) = pydl.autograd.grad(obj, x)
            g = np.asarray(g.data)
            img = img + lr * g / (np.sqrt((g * g).mean()) + 1e-8)
            if blur_every and (step + 1) % blur_every == 0:
                img = gaussian_blur(img, blur_sigma)
            if clip is not None:
                img = np.clip(img, *clip)
            history.append(float(score.item()))
    return img[0], history


def feature_inversion(model, layer, target_image, steps=200, lr=0.05, tv_reg=1e-3, l2_reg=0.0, seed=0):
    """Reconstruct an image from its features phi (the output of ``layer``):

        x* = argmin_x ||phi(x) - phi(x0)||^2 + tv_reg TV(x) + l2_reg ||x||^2

    by Adam on the pixels from small noise. target_image (C, H, W) -> (reconstruction
    (C, H, W) NumPy, loss history).
    """
    x0 = np.asarray(target_image, dtype=np.float32)[None]
    store = {}
    h = layer.register_forward_hook(lambda m, a, out: store.__setitem__("phi", out))
    try:
        with eval_mode(model):
            with pydl.no_grad():
                model(pydl.tensor(x0))
            phi0 = store["phi"].detach()
            rng = np.random.default_rng(seed)
            x = pydl.tensor((rng.standard_normal(x0.shape) * 0.01).astype(np.float32), requires_grad=True)
            opt = pydl.optim.Adam([x], lr=lr)
            history = []
            for _ in range(steps):
                opt.zero_grad()
                model(x)
                d = store["phi"] - phi0
                tv = ((x[:, :, 1:, :] - x[:, :, :-1, :]) ** 2).sum() + ((x[:, :, :, 1:] - x[:, :, :, :-1]) ** 2).sum()
                loss = (d * d).sum() + tv_reg * tv + l2_reg * (x * x).sum()
                loss.backward()
                opt.step()
                history.append(float(loss.item()))
    finally:
        h.remove()
    return np.asarray(x.data)[0], history
