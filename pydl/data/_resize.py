"""Bilinear resizing of image batches, the data pipeline's version.

PyTorch's ``interpolate(mode="bilinear", align_corners=False)`` rule: output pixel i of a
length-``out`` axis reads the input at ``src = max((i + 0.5) * in / out - 0.5, 0)``, the two
pixels ``floor(src)`` and the next one (clamped to the edge), weighted by distance. Written
as a matrix R (out x in) per axis, a resize is ``R_h @ image @ R_w^T``; a random resized
crop is the same with one pair of matrices per image, whose columns outside the crop box
are zero. Batched matmuls keep it vectorised over the whole batch.

:func:`resize` uses the ``upsample_bilinear2d_forward`` kernel from :mod:`pydl.kernels` when
it is registered, and the matrices otherwise (they agree to float rounding).
"""
import numpy as np

__all__ = ["bilinear_matrix", "resize", "resized_crop"]


def bilinear_matrix(out_size, in_size, start=0, length=None):
    """Interpolation matrices, (B, out_size, in_size) for B boxes (``start``, ``length`` of shape (B,))
    or (out_size, in_size) for scalars: row i holds the weights of the input pixels output i reads,
    for a crop ``[start, start + length)`` of an axis of ``in_size`` pixels resized to ``out_size``.

    >>> bilinear_matrix(4, 2)
    array([[1.  , 0.  ],
           [0.75, 0.25],
           [0.25, 0.75],
           [0.  , 1.  ]])
    """
    scalar = np.ndim(start) == 0 and (length is None or np.ndim(length) == 0)
    start = np.atleast_1d(np.asarray(start, dtype=np.int64))
    length = np.atleast_1d(np.asarray(in_size if length is None else length, dtype=np.int64))
    start, length = np.broadcast_arrays(start, length)
    dst = np.arange(out_size, dtype=np.float64)
    scale = length[:, None] / out_size                                      # (B, 1)
    src = np.maximum((dst[None, :] + 0.5) * scale - 0.5, 0.0)              # (B, out)
    i0 = np.minimum(np.floor(src).astype(np.int64), length[:, None] - 1)
    w1 = np.clip(src - i0, 0.0, 1.0)
    i1 = np.where(i0 < length[:, None] - 1, i0 + 1, i0)
    cols = np.arange(in_size)
    m = ((cols == (start[:, None] + i0)[..., None]) * (1.0 - w1)[..., None]
         + (cols == (start[:, None] + i1)[..., None]) * w1[..., None])      # (B, out, in)
    return m[0] if scalar else m


def _kernel():
    from .. import kernels

    for backend in ("cpu", "reference"):
        try:
            if "upsample_bilinear2d_forward" in kernels.ops(backend):
                return kernels.get("upsample_bilinear2d_forward", backend)
        except (ImportError, ValueError):
            continue
    return None


def resize(x, size):
    """Bilinear resize of a batch ``x`` (N, C, H, W) to (N, C, size[0], size[1]), dtype kept."""
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"resize: expected a batch of shape (N, C, H, W), got shape {x.shape}")
    oh, ow = size
    if (oh, ow) == x.shape[2:]:
        return x.copy()
    kernel = _kernel()
    if kernel is not None:
        work = x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)
        return np.asarray(kernel(work, (oh, ow), align_corners=False)).astype(x.dtype if x.dtype.kind == "f"
                                                                                else np.float32, copy=False)
    rh = bilinear_matrix(oh, x.shape[2]).astype(np.float64)
    rw = bilinear_matrix(ow, x.shape[3]).astype(np.float64)
    out = np.einsum("ih,nchw,jw->ncij", rh, x, rw, optimize=True)
    return out.astype(x.dtype if x.dtype.kind == "f" else np.float32)


def resized_crop(x, top, left, height, width, size):
    """Crop each image n of ``x`` (N, C, H, W) to the box (top[n], left[n], height[n], width[n])
    and resize it bilinearly to ``size`` (OH, OW): returns (N, C, OH, OW)."""
    dtype = x.dtype if x.dtype.kind == "f" else np.float32
    rh = bilinear_matrix(size[0], x.shape[2], top, height).astype(dtype)   # (N, OH, H)
    rw = bilinear_matrix(size[1], x.shape[3], left, width).astype(dtype)   # (N, OW, W)
    return (rh[:, None] @ x.astype(dtype, copy=False)) @ rw[:, None].transpose(0, 1, 3, 2)
