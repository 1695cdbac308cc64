"""Pictures: image grids as PNG (written by pydl itself, no matplotlib needed), scatter
plots and heat-map overlays (matplotlib, ``pip install pydl[viz]``)."""
import struct
import zlib

import numpy as np

__all__ = ["filter_grid", "image_grid", "save_png", "scatter_plot", "show_heatmaps"]


def _array(x, dtype=None):
    """A Tensor's array (detached) or any array-like, as NumPy."""
    from ..tensor import Tensor
    return np.asarray(x.data if isinstance(x, Tensor) else x, dtype=dtype)


def image_grid(images, nrow=8, padding=1, normalize="global", pad_value=1.0):
    """Tile images (N, C, H, W) (C = 1 or 3) into one (C, rows * (H + pad) + pad, ...) array in [0, 1].

    ``normalize``: "global" (min-max over all), "each" (per image, as for filters) or None
    (clip to [0, 1]).
    """
    x = _array(images, np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"image_grid: expected (N, 1 or 3, H, W), got {x.shape}")
    if normalize == "global":
        x = (x - x.min()) / (np.ptp(x) + 1e-12)
    elif normalize == "each":
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        x = (x - lo) / (x.max(axis=(1, 2, 3), keepdims=True) - lo + 1e-12)
    elif normalize is None:
        x = np.clip(x, 0, 1)
    else:
        raise ValueError(f"image_grid: normalize must be 'global', 'each' or None, got {normalize!r}")
    N, C, H, W = x.shape
    ncol = min(nrow, max(N, 1))
    nrows = -(-N // ncol)
    grid = np.full((C, nrows * (H + padding) + padding, ncol * (W + padding) + padding), pad_value)
    for i in range(N):
        r, c = divmod(i, ncol)
        top, left = padding + r * (H + padding), padding + c * (W + padding)
        grid[:, top:top + H, left:left + W] = x[i]
    return grid


def filter_grid(weight, nrow=8, padding=1):
    """First-layer filters (K, C, kh, kw) as a grid, each filter min-max scaled on its own
    (C = 3 shown in colour, otherwise the channels' mean)."""
    w = _array(weight, np.float64)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected conv weights (K, C, kh, kw), got {w.shape}")
    if w.shape[1] != 3:
        w = w.mean(axis=1, keepdims=True)
    return image_grid(w, nrow=nrow, padding=padding, normalize="each")


def save_png(path, image, scale=1):
    """Write an image in [0, 1], (H, W), (1, H, W) or (3, H, W), as an 8-bit PNG; ``scale``
    repeats each pixel (small digits are 8x8). Pure Python (zlib), no matplotlib."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    if a.ndim not in (2, 3):
        raise ValueError(f"save_png: expected (H, W) or (C, H, W) with C in (1, 3), got {np.shape(image)}")
    if scale > 1:
        a = a.repeat(scale, axis=0).repeat(scale, axis=1)
    px = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
    h, w = px.shape[:2]
    color = 2 if px.ndim == 3 else 0
    raw = b"".join(b"\x00" + px[r].tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)
    return path


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError("pydl.viz: this plot needs matplotlib (pip install pydl[viz])") from e
    return plt


def scatter_plot(points, labels, path, title=""):
    """2-D embedding (N, 2) coloured by integer label, written to ``path`` (PNG). Needs matplotlib."""
    plt = _pyplot()
    p = np.asarray(points)
    fig, ax = plt.subplots(figsize=(5, 5))
    sc = ax.scatter(p[:, 0], p[:, 1], c=np.asarray(labels), cmap="tab10", s=6)
    ax.legend(*sc.legend_elements(), fontsize=6, loc="best")
    ax.set_title(title)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def show_heatmaps(images, maps, path, titles=None):
    """Images (N, 1 or 3, H, W) with heat maps (N, h, w) overlaid (resized by repetition when h
    divides H), one column each, written to ``path``. Needs matplotlib."""
    plt = _pyplot()
    imgs = np.asarray(images, dtype=np.float64)
    maps = np.asarray(maps, dtype=np.float64)
    n = len(imgs)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4), squeeze=False)
    for i in range(n):
        img = imgs[i].transpose(1, 2, 0)
        img = img[..., 0] if img.shape[-1] == 1 else img
        m = maps[i]
        if img.shape[0] % m.shape[0] == 0 and img.shape[1] % m.shape[1] == 0:
            m = m.repeat(img.shape[0] // m.shape[0], 0).repeat(img.shape[1] // m.shape[1], 1)
        axes[0, i].imshow(img, cmap="gray")
        axes[1, i].imshow(img, cmap="gray")
        axes[1, i].imshow(m, cmap="jet", alpha=0.5)
        if titles is not None:
            axes[0, i].set_title(str(titles[i]), fontsize=7)
        for ax in axes[:, i]:
            ax.axis("off")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
