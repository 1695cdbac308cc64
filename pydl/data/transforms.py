"""Transforms and data augmentation (torchvision's names), vectorised over a batch.

Every transform takes one image, (C, H, W), or a whole batch, (N, C, H, W), as a NumPy array
or a pydl Tensor, and gives back the same kind. On a batch the random ones draw independent
parameters for every image in a few vectorised NumPy calls; pydl's array-backed data sets
run them on a whole batch at a time. Randomness comes from the DataLoader's per-batch
generator, or from pydl's global generator outside a loader, so ``pydl.manual_seed``
makes augmentation reproducible.

The seeds' regularisation by augmentation (lecture 7): flips, random crops and scales,
colour jitter, Cutout; and two that mix images *and* labels, applied to a batch:
:func:`mixup` and :func:`cutmix` (in :mod:`pydl.data.mixing`, re-exported here).
Test-time augmentation averages a model's predictions over a fixed set of views
(:class:`TestTimeAugmentation`). Preprocessing (per-channel
mean/std, PCA and ZCA whitening) lives in :mod:`pydl.data.preprocessing`, re-exported here.

>>> import pydl
>>> from pydl.data import transforms as T
>>> _ = pydl.manual_seed(0)
>>> augment = T.Compose([T.RandomCrop(28, padding=2), T.Normalize((0.5,), (0.5,))])
>>> augment(np.zeros((16, 1, 28, 28), np.float32)).shape
(16, 1, 28, 28)
"""
import math
import numbers

import numpy as np

from ..tensor import Tensor
from . import _random
from ._arrays import _as_batch, _unwrap, _wrap
from ._resize import resize, resized_crop
from .mixing import CutMix, MixUp, cutmix, mixup
from .preprocessing import PCA, ZCA, channel_stats, zero_center

__all__ = ["CenterCrop", "ColorJitter", "Compose", "CutMix", "Cutout", "Lambda", "MixUp", "Normalize", "PCA",
           "RandomCrop", "RandomErasing", "RandomHorizontalFlip", "RandomResizedCrop", "RandomVerticalFlip",
           "Resize", "TestTimeAugmentation", "ToTensor", "ZCA", "channel_stats", "cutmix", "mixup", "tta_views",
           "zero_center"]


# ------------------------------------------------------------------ plumbing
def _float(x):
    return x if x.dtype.kind == "f" else x.astype(np.float32)


def _size_pair(size, op):
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) <= 0:
        raise ValueError(f"{op}: size must be a positive int or a pair (h, w), got {size!r}")
    return size


def _range(value, op, name, center=1.0, bound=(0.0, math.inf)):
    """torchvision's jitter ranges: a number v -> [center - v, center + v] (clipped at bound[0])."""
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{op}: {name} must be non-negative, got {value}")
        lo, hi = center - value, center + value
        lo = max(lo, bound[0]) if center == 1.0 else lo
        return (float(lo), float(hi)) if value else None
    lo, hi = (float(v) for v in value)
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f"{op}: {name} values should be between {bound}, got ({lo}, {hi})")
    return None if lo == hi == center else (lo, hi)


class _Transform:
    """Base: subclasses define ``_apply(batch (N, C, H, W) float array, gen) -> batch``."""

    batched = True  # works on a batch (N, C, H, W) as well as on one image

    def __call__(self, x):
        name = type(self).__name__
        arr, was_tensor = _unwrap(x, name)
        batch, single = _as_batch(arr, name)
        out = self._apply(batch, _random.generator())
        return _wrap(out[0] if single else out, was_tensor)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


# ------------------------------------------------------------------ composition, conversion
class Compose:
    """Apply transforms one after the other.

    >>> Compose([Normalize((1.0,), (2.0,)), Lambda(lambda x: x * 10)])(np.ones((1, 1, 1)))
    array([[[0.]]])
    """

    def __init__(self, transforms):
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {type(t).__name__}")

    @property
    def batched(self):
        return all(getattr(t, "batched", False) for t in self.transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        body = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({body}\n)"


class Lambda:
    """A user function as a transform (``batched`` says whether it handles a batch too)."""

    def __init__(self, fn, batched=True):
        if not callable(fn):
            raise TypeError(f"Lambda: fn must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.batched = batched

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self):
        return f"Lambda({self.fn!r})"


class ToTensor:
    """An image as it comes from a file, (H, W, C) or (H, W) (or a batch (N, H, W, C)), to a
    pydl Tensor (C, H, W) (or (N, C, H, W)); uint8 pixels are scaled to [0, 1] float32, other
    dtypes keep their values (torchvision's rule).

    >>> ToTensor()(np.full((2, 2, 3), 255, np.uint8)).shape
    (3, 2, 2)
    """

    batched = True

    def __call__(self, pic):
        arr = pic.data if isinstance(pic, Tensor) else np.asarray(pic)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim not in (3, 4):
            raise ValueError(f"ToTensor: expected an image (H, W), (H, W, C) or a batch (N, H, W, C), "
                             f"got shape {arr.shape}")
        out = np.moveaxis(arr, -1, -3)
        out = out.astype(np.float32) / 255.0 if arr.dtype == np.uint8 else out
        return Tensor._make(np.ascontiguousarray(out))

    def __repr__(self):
        return "ToTensor()"


class Normalize(_Transform):
    """(x - mean[c]) / std[c] per channel: the seeds' zero-centring and scaling.

    >>> Normalize((0.5,), (0.25,))(np.ones((1, 2, 2)))
    array([[[2., 2.],
            [2., 2.]]])
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std evaluated to zero after conversion, leading to division by zero "
                             f"(std={self.std})")
        self.inplace = inplace

    def _apply(self, x, gen):
        C = x.shape[1]
        if len(self.mean) not in (1, C) or len(self.std) not in (1, C):
            raise ValueError(f"Normalize: {len(self.mean)} means and {len(self.std)} stds for an image with "
                             f"{C} channels")
        x = _float(x)
        mean = np.asarray(self.mean, x.dtype).reshape(1, -1, 1, 1)
        std = np.asarray(self.std, x.dtype).reshape(1, -1, 1, 1)
        if self.inplace and x.flags.writeable:
            x -= mean
            x /= std
            return x
        return (x - mean) / std


class Resize(_Transform):
    """Bilinear resize to ``size`` (h, w)."""

    def __init__(self, size):
        self.size = _size_pair(size, "Resize")

    def _apply(self, x, gen):
        return resize(_float(x), self.size)


# ------------------------------------------------------------------ geometry
def _pad(x, padding, fill, mode, op):
    if isinstance(padding, numbers.Integral):
        padding = (padding,) * 4
    elif len(padding) == 2:
        padding = (padding[0], padding[1], padding[0], padding[1])
    left, top, right, bottom = (int(p) for p in padding)
    if min(left, top, right, bottom) < 0:
        raise ValueError(f"{op}: padding must be non-negative, got {padding}")
    widths = ((0, 0), (0, 0), (top, bottom), (left, right))
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=fill)
    if mode not in ("edge", "reflect", "symmetric"):
        raise ValueError(f"{op}: padding_mode must be constant, edge, reflect or symmetric, got {mode!r}")
    return np.pad(x, widths, mode=mode)


def _crop_at(x, top, left, h, w):
    """Each image n of x cropped at (top[n], left[n]) to (h, w), by one gather."""
    n = np.arange(x.shape[0])[:, None, None]
    rows = (top[:, None] + np.arange(h))[:, :, None]
    cols = (left[:, None] + np.arange(w))[:, None, :]
    return np.ascontiguousarray(x[n, :, rows, cols].transpose(0, 3, 1, 2))   # gather gives (N, h, w, C)


class RandomCrop(_Transform):
    """Pad by ``padding`` then crop ``size`` at a random place (a random shift of up to
    ``padding`` pixels when the size is unchanged: the CIFAR / MNIST augmentation).

    padding: int, (left/right, top/bottom) or (left, top, right, bottom); fill: the constant of
    ``padding_mode="constant"`` (also "edge", "reflect", "symmetric").
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _size_pair(size, "RandomCrop")
        self.padding = padding
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def _apply(self, x, gen):
        op = "RandomCrop"
        if self.padding is not None:
            x = _pad(x, self.padding, self.fill, self.padding_mode, op)
        h, w = self.size
        if self.pad_if_needed and (x.shape[2] < h or x.shape[3] < w):
            dh, dw = max(h - x.shape[2], 0), max(w - x.shape[3], 0)
            x = _pad(x, (dw, dh), self.fill, self.padding_mode, op)
        H, W = x.shape[2:]
        if H < h or W < w:
            raise ValueError(f"{op}: required crop size {(h, w)} is larger than input image size {(H, W)}")
        top = gen.integers(0, H - h + 1, size=x.shape[0])
        left = gen.integers(0, W - w + 1, size=x.shape[0])
        return _crop_at(x, top, left, h, w)


class CenterCrop(_Transform):
    """Crop the centre ``size`` (h, w) of each image (pads with zeros if the image is smaller)."""

    def __init__(self, size):
        self.size = _size_pair(size, "CenterCrop")

    def _apply(self, x, gen):
        h, w = self.size
        H, W = x.shape[2:]
        if H < h or W < w:
            x = _pad(x, (max(w - W, 0) // 2, max(h - H, 0) // 2, -(-max(w - W, 0) // 2), -(-max(h - H, 0) // 2)),
                     0, "constant", "CenterCrop")
            H, W = x.shape[2:]
        top, left = int(round((H - h) / 2.0)), int(round((W - w) / 2.0))
        return x[:, :, top:top + h, left:left + w].copy()


class RandomResizedCrop(_Transform):
    """Crop a random box of ``scale`` (fraction of the area) and ``ratio`` (aspect w / h),
    resized bilinearly to ``size``: the ImageNet "random crops and scales" augmentation.

    torchvision's sampling: 10 tries of an area uniform in scale and a log-uniform aspect
    ratio; an image whose 10 tries all miss falls back to the central crop of the clamped ratio.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0)):
        self.size = _size_pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be of kind (min, max), got {scale}, {ratio}")
        self.scale = tuple(float(s) for s in scale)
        self.ratio = tuple(float(r) for r in ratio)

    def _apply(self, x, gen):
        N, _, H, W = x.shape
        area = H * W
        tries = 10
        target = area * gen.uniform(self.scale[0], self.scale[1], size=(N, tries))
        aspect = np.exp(gen.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(N, tries)))
        w = np.round(np.sqrt(target * aspect)).astype(np.int64)
        h = np.round(np.sqrt(target / aspect)).astype(np.int64)
        ok = (w > 0) & (h > 0) & (w <= W) & (h <= H)
        first = np.argmax(ok, axis=1)
        pick = np.arange(N)
        h, w, found = h[pick, first], w[pick, first], ok[pick, first]
        # fallback: the whole image, with the ratio clamped into range
        in_ratio = W / H
        if in_ratio < self.ratio[0]:
            fw, fh = W, int(round(W / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fh, fw = H, int(round(H * self.ratio[1]))
        else:
            fh, fw = H, W
        h = np.where(found, h, fh)
        w = np.where(found, w, fw)
        u = gen.random(size=(2, N))
        top = np.where(found, np.floor(u[0] * (H - h + 1)), (H - h) // 2).astype(np.int64)
        left = np.where(found, np.floor(u[1] * (W - w + 1)), (W - w) // 2).astype(np.int64)
        return resized_crop(x, top, left, h, w, self.size)


class RandomHorizontalFlip(_Transform):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = float(p)

    def _apply(self, x, gen):
        flip = gen.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1]
        return out


class RandomVerticalFlip(_Transform):
    """Mirror each image top-bottom with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = float(p)

    def _apply(self, x, gen):
        flip = gen.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = x[flip][..., ::-1, :]
        return out


# ------------------------------------------------------------------ colour
_GRAY = np.array([0.299, 0.587, 0.114])


def _gray(x):
    """(N, 1, H, W) luminance (ITU-R 601-2, torchvision's weights); a 1-channel image is its own."""
    if x.shape[1] == 1:
        return x
    return np.einsum("nchw,c->nhw", x, _GRAY.astype(x.dtype))[:, None]


def _rgb_to_hsv(x):
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, minc = x.max(axis=1), x.min(axis=1)
    v = maxc
    delta = maxc - minc
    safe = np.where(delta == 0, 1, delta)
    s = np.where(maxc == 0, 0, delta / np.where(maxc == 0, 1, maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = np.where(maxc == r, bc - gc, np.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = np.where(delta == 0, 0.0, (h / 6.0) % 1.0)
    return h, s, v


def _hsv_to_rgb(h, s, v):
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(np.int64) % 6
    choices_r = np.stack([v, q, p, p, t, v])
    choices_g = np.stack([t, v, v, q, p, p])
    choices_b = np.stack([p, p, t, v, v, q])
    pick = i[None]
    r = np.take_along_axis(choices_r, pick, 0)[0]
    g = np.take_along_axis(choices_g, pick, 0)[0]
    b = np.take_along_axis(choices_b, pick, 0)[0]
    return np.stack([r, g, b], axis=1)


class ColorJitter(_Transform):
    """Random brightness, contrast, saturation and hue, on images with values in [0, 1].

    brightness b: x * f, f uniform in [max(0, 1 - b), 1 + b]; contrast: blend with the image's
    mean grey; saturation: blend with its grey version; hue h (<= 0.5): rotate the hue by an
    amount uniform in [-h, h]. The four are applied in a random order (one order per call);
    saturation and hue leave 1-channel images unchanged.
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        op = "ColorJitter"
        self.brightness = _range(brightness, op, "brightness")
        self.contrast = _range(contrast, op, "contrast")
        self.saturation = _range(saturation, op, "saturation")
        self.hue = _range(hue, op, "hue", center=0.0, bound=(-0.5, 0.5))
        if isinstance(hue, numbers.Number) and hue > 0.5:
            raise ValueError(f"{op}: hue must be at most 0.5, got {hue}")

    def _apply(self, x, gen):
        x = _float(x).copy()
        N, C = x.shape[:2]
        shape = (N, 1, 1, 1)
        for k in gen.permutation(4):
            if k == 0 and self.brightness:
                x = np.clip(x * gen.uniform(*self.brightness, size=shape).astype(x.dtype), 0, 1)
            elif k == 1 and self.contrast:
                f = gen.uniform(*self.contrast, size=shape).astype(x.dtype)
                mean = _gray(x).mean(axis=(1, 2, 3), keepdims=True)
                x = np.clip(f * x + (1 - f) * mean, 0, 1)
            elif k == 2 and self.saturation and C == 3:
                f = gen.uniform(*self.saturation, size=shape).astype(x.dtype)
                x = np.clip(f * x + (1 - f) * _gray(x), 0, 1)
            elif k == 3 and self.hue and C == 3:
                h, s, v = _rgb_to_hsv(x)
                h = (h + gen.uniform(*self.hue, size=(N, 1, 1))) % 1.0
                x = _hsv_to_rgb(h, s, v).astype(x.dtype)
        return x


# ------------------------------------------------------------------ erasing
def _box_mask(H, W, top, left, h, w):
    """(N, 1, H, W) boolean masks of the boxes rows [top, top + h), cols [left, left + w)."""
    rows = np.arange(H)[None, :]
    cols = np.arange(W)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + w)[:, None])
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


class RandomErasing(_Transform):
    """With probability ``p``, fill a random rectangle of each image (its area a fraction in
    ``scale``, its aspect in ``ratio``) with ``value``: a number, one per channel, or "random"
    (standard normal noise). Zhong et al.'s Random Erasing; Cutout is its fixed-size cousin.
    """

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0, inplace=False):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomErasing: p should be between 0 and 1, got {p}")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ValueError(f"RandomErasing: scale and ratio should be of kind (min, max), got {scale}, {ratio}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value must be a number, a sequence or 'random', got {value!r}")
        self.p, self.scale, self.ratio, self.value, self.inplace = float(p), tuple(scale), tuple(ratio), value, inplace

    def _apply(self, x, gen):
        x = _float(x)
        N, C, H, W = x.shape
        tries = 10
        area = H * W * gen.uniform(self.scale[0], self.scale[1], size=(N, tries))
        aspect = np.exp(gen.uniform(math.log(self.ratio[0]), math.log(self.ratio[1]), size=(N, tries)))
        h = np.round(np.sqrt(area * aspect)).astype(np.int64)
        w = np.round(np.sqrt(area / aspect)).astype(np.int64)
        ok = (h < H) & (w < W) & (h > 0) & (w > 0)
        first = np.argmax(ok, axis=1)
        pick = np.arange(N)
        h, w = h[pick, first], w[pick, first]
        erase = ok[pick, first] & (gen.random(N) < self.p)
        u = gen.random(size=(2, N))
        top = np.floor(u[0] * (H - h + 1)).astype(np.int64)
        left = np.floor(u[1] * (W - w + 1)).astype(np.int64)
        mask = _box_mask(H, W, top, left, np.where(erase, h, 0), w)
        if isinstance(self.value, str):
            fill = gen.standard_normal(size=x.shape).astype(x.dtype)
        else:
            fill = np.asarray(self.value, dtype=x.dtype).reshape(1, -1, 1, 1)
        if self.inplace and x.flags.writeable:
            np.copyto(x, np.broadcast_to(fill, x.shape), where=np.broadcast_to(mask, x.shape))
            return x
        return np.where(mask, fill, x)


class Cutout(_Transform):
    """With probability ``p``, zero (or ``value``) a ``length`` x ``length`` square centred at a
    uniformly random pixel, clipped at the border (DeVries & Taylor, 2017)."""

    def __init__(self, length, p=1.0, value=0.0):
        if int(length) <= 0:
            raise ValueError(f"Cutout: length must be positive, got {length}")
        self.length, self.p, self.value = int(length), float(p), value

    def _apply(self, x, gen):
        x = _float(x)
        N, _, H, W = x.shape
        cy, cx = gen.integers(0, H, size=N), gen.integers(0, W, size=N)
        y0, x0 = np.clip(cy - self.length // 2, 0, H), np.clip(cx - self.length // 2, 0, W)
        y1, x1 = np.clip(cy + self.length - self.length // 2, 0, H), np.clip(cx + self.length - self.length // 2, 0, W)
        on = gen.random(N) < self.p
        mask = _box_mask(H, W, y0, x0, np.where(on, y1 - y0, 0), x1 - x0)
        return np.where(mask, np.asarray(self.value, x.dtype), x)


# ------------------------------------------------------------------ test-time augmentation
def _shift(x, dy, dx):
    """Translate a batch by (dy, dx) pixels, filling with zeros."""
    out = np.zeros_like(x)
    H, W = x.shape[2:]
    ys, yd = (slice(0, H - dy), slice(dy, H)) if dy >= 0 else (slice(-dy, H), slice(0, H + dy))
    xs, xd = (slice(0, W - dx), slice(dx, W)) if dx >= 0 else (slice(-dx, W), slice(0, W + dx))
    out[:, :, yd, xd] = x[:, :, ys, xs]
    return out


def tta_views(hflip=True, shift=0):
    """A fixed list of views for test-time augmentation: the image itself, its mirror image
    (``hflip``), and the four translations by ``shift`` pixels (up, down, left, right) -- the
    "crops" of a zero-padded image. Each view is ``batch array -> batch array``.

    >>> len(tta_views()), len(tta_views(hflip=False, shift=2))
    (2, 5)
    """
    views = [lambda x: x]
    if hflip:
        views.append(lambda x: x[..., ::-1].copy())
    if shift:
        s = int(shift)
        for dy, dx in ((-s, 0), (s, 0), (0, -s), (0, s)):
            views.append(lambda x, dy=dy, dx=dx: _shift(x, dy, dx))
    return views


class TestTimeAugmentation:
    """Wrap a classifier so that it averages its softmax over fixed views of each input.

    Calling it on a batch (N, C, H, W) returns the log of the averaged probabilities (N, K):
    ``argmax`` gives the prediction and ``cross_entropy`` of it is the ensemble's negative
    log-likelihood. Runs the model in eval mode without recording gradients.

    >>> import pydl
    >>> net = pydl.nn.Sequential(pydl.nn.Flatten(), pydl.nn.Linear(4, 3))
    >>> TestTimeAugmentation(net, tta_views(hflip=True))(pydl.randn(5, 1, 2, 2)).shape
    (5, 3)
    """

    __test__ = False  # not a pytest class
    training = False

    def __init__(self, model, views=None):
        self.model = model
        self.views = list(views) if views is not None else tta_views()
        if not self.views:
            raise ValueError("TestTimeAugmentation: views is empty")

    def __call__(self, input):
        from ..autograd import no_grad
        from ..nn import functional as F

        arr, _ = _unwrap(input, "TestTimeAugmentation")
        was_training = getattr(self.model, "training", False)
        if hasattr(self.model, "eval"):
            self.model.eval()
        try:
            with no_grad():
                total = None
                for view in self.views:
                    probs = F.softmax(self.model(Tensor._make(np.ascontiguousarray(view(arr)))), dim=1).data
                    total = probs if total is None else total + probs
        finally:
            if was_training:
                self.model.train()
        return Tensor._make(np.log(np.maximum(total / len(self.views), np.finfo(total.dtype).tiny)))

    def eval(self):
        return self

    def train(self, mode=True):
        return self
