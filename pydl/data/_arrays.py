"""Arrays in, the same kind out: the transforms take NumPy arrays or pydl Tensors."""
import numpy as np

from ..tensor import Tensor


def _unwrap(x, op):
    """(array, was_tensor) from an array or a Tensor."""
    if isinstance(x, Tensor):
        return x.data, True
    if isinstance(x, np.ndarray):
        return x, False
    raise TypeError(f"{op}: expected a NumPy array or a pydl Tensor, got {type(x).__name__}")


def _wrap(arr, was_tensor):
    return Tensor._make(np.ascontiguousarray(arr)) if was_tensor else arr


def _as_batch(x, op):
    """(batch (N, C, H, W), single) from one image (C, H, W) or a batch."""
    if x.ndim == 3:
        return x[None], True
    if x.ndim == 4:
        return x, False
    raise ValueError(f"{op}: expected an image (C, H, W) or a batch (N, C, H, W), got shape {x.shape}")
