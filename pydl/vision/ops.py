"""Box operations with torchvision's names and arguments (``torchvision.ops``).

The kernels live in :mod:`pydl.kernels` (reference: ``pydl/kernels/reference/boxes.py``;
C++: ``csrc/cpu/boxes.cpp``; CUDA: ``csrc/cuda/boxes.cu``). Every function takes Tensors or
arrays and returns the same kind, on the device of its inputs: NumPy arrays run the C++
kernels, CuPy arrays the CUDA ones; inputs on two devices raise a RuntimeError. ``roi_align`` and ``roi_pool`` are differentiable in ``input`` (the features);
the box functions are not recorded by autograd (boxes are targets or detached
predictions here; write IoU losses with Tensor operations).

Defined behaviour on bad boxes: IoU uses areas clamped at 0 and is 0 when the union is
not > 0, so zero-area, inverted (x2 < x1) and NaN boxes have IoU 0 with everything; NMS
ranks by score with ties by index and NaN scores last, and suppresses when IoU is strictly
greater than the threshold; empty inputs give empty outputs.
"""
import numpy as np

from .._device import array_module, check_same_device, device_name
from ..autograd.function import Node
from ..autograd.grad_mode import GradMode
from ..nn.functional._dispatch import kernel as _device_kernel
from ..nn.modules.module import Module
from ..tensor import Tensor, _make

__all__ = ["box_area", "box_convert", "box_iou", "generalized_box_iou", "nms", "batched_nms", "remove_small_boxes",
           "clip_boxes_to_image", "roi_align", "roi_pool", "RoIAlign", "RoIPool"]

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _kernel(name, arr):
    """The ``name`` kernel of the backend owning ``arr`` (cpu for NumPy, cuda for CuPy)."""
    return _device_kernel(name, arr)


def _floats(x, op, name):
    """(float array on its own device, was_tensor); lists and numbers become NumPy arrays."""
    is_t = isinstance(x, Tensor)
    a = x.data if is_t else x
    if device_name(a) == "cpu":
        a = np.asarray(a)
    if a.dtype not in _FLOATS:
        if a.dtype.kind not in "fiub":
            raise TypeError(f"{op}: {name} must hold numbers, got {a.dtype}")
        a = a.astype(np.float32)
    return a, is_t


def _same_float(a, b):
    if a.dtype != b.dtype:
        dt = np.result_type(a, b)
        a, b = a.astype(dt), b.astype(dt)
    return a, b


def _out(arr, as_tensor):
    return _make(arr) if as_tensor else arr


def box_area(boxes):
    """Area of (N, 4) xyxy boxes -> (N,)."""
    b, t = _floats(boxes, "box_area", "boxes")
    return _out(_kernel("box_area", b)(b), t)


def box_convert(boxes, in_fmt, out_fmt):
    """(N, 4) boxes from ``in_fmt`` to ``out_fmt``, each one of "xyxy", "xywh", "cxcywh"."""
    b, t = _floats(boxes, "box_convert", "boxes")
    return _out(_kernel("box_convert", b)(b, in_fmt, out_fmt), t)


def box_iou(boxes1, boxes2):
    """IoU of every pair: (N, 4), (M, 4) xyxy -> (N, M).

    >>> box_iou(np.array([[0., 0, 2, 2]]), np.array([[1., 0, 3, 2]]))
    array([[0.33333334]], dtype=float32)
    """
    a, t = _floats(boxes1, "box_iou", "boxes1")
    b, _ = _floats(boxes2, "box_iou", "boxes2")
    a, b = _same_float(a, b)
    check_same_device("box_iou", a, b)
    return _out(_kernel("box_iou", a)(a, b), t)


def generalized_box_iou(boxes1, boxes2):
    """Generalized IoU of every pair: (N, 4), (M, 4) xyxy -> (N, M), in [-1, 1]."""
    a, t = _floats(boxes1, "generalized_box_iou", "boxes1")
    b, _ = _floats(boxes2, "generalized_box_iou", "boxes2")
    a, b = _same_float(a, b)
    check_same_device("generalized_box_iou", a, b)
    return _out(_kernel("generalized_box_iou", a)(a, b), t)


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression: (N, 4) xyxy boxes, (N,) scores -> kept indices (int64)
    sorted by decreasing score (ties by index; NaN scores last). A box is dropped when its
    IoU with a kept box is > ``iou_threshold``.

    >>> nms(np.array([[0., 0, 2, 2], [0, 0, 2, 1.9], [3, 3, 4, 4]]), np.array([.9, .8, .7]), 0.5)
    array([0, 2])
    """
    b, t = _floats(boxes, "nms", "boxes")
    s, _ = _floats(scores, "nms", "scores")
    b, s = _same_float(b, s)
    check_same_device("nms", b, s)
    return _out(_kernel("nms", b)(b, s, float(iou_threshold)), t)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS per category ``idxs`` (N,) int: boxes of different categories never suppress each
    other. Returns kept indices (int64) by decreasing score."""
    b, t = _floats(boxes, "batched_nms", "boxes")
    s, _ = _floats(scores, "batched_nms", "scores")
    b, s = _same_float(b, s)
    i = idxs.data if isinstance(idxs, Tensor) else idxs
    if device_name(i) == "cpu":
        i = np.asarray(i)
    check_same_device("batched_nms", b, s, i)
    return _out(_kernel("batched_nms", b)(b, s, i, float(iou_threshold)), t)


def remove_small_boxes(boxes, min_size):
    """Indices of boxes whose width and height are both >= ``min_size``."""
    b, t = _floats(boxes, "remove_small_boxes", "boxes")
    xp = array_module(b)
    keep = xp.flatnonzero(((b[:, 2] - b[:, 0]) >= min_size) & ((b[:, 3] - b[:, 1]) >= min_size)).astype(np.int64)
    return _out(keep, t)


def clip_boxes_to_image(boxes, size):
    """Clips (N, 4) xyxy boxes to an image of ``size = (height, width)``."""
    b, t = _floats(boxes, "clip_boxes_to_image", "boxes")
    h, w = size
    out = b.copy()
    out[:, 0::2] = out[:, 0::2].clip(0, w)
    out[:, 1::2] = out[:, 1::2].clip(0, h)
    return _out(out, t)


def _rois(boxes, x, op):
    """(K, 5) float64 rois (batch index, x1, y1, x2, y2) on the device of the features ``x``,
    from a (K, 5) Tensor/array or a list of (Ki, 4)."""
    xp = array_module(x)
    if isinstance(boxes, (list, tuple)):
        parts = []
        for n, b in enumerate(boxes):
            a, _ = _floats(b, op, f"boxes[{n}]")
            if a.ndim != 2 or a.shape[1] != 4:
                raise ValueError(f"{op}: boxes[{n}] must have shape (K, 4), got {a.shape}")
            check_same_device(op, x, a)
            parts.append(xp.concatenate([xp.full((a.shape[0], 1), n, dtype=np.float64), a.astype(np.float64)], 1))
        r = xp.concatenate(parts, 0) if parts else xp.zeros((0, 5))
    else:
        r, _ = _floats(boxes, op, "boxes")
        if r.ndim != 2 or r.shape[1] != 5:
            raise ValueError(f"{op}: boxes must be a (K, 5) tensor or a list of (K, 4) tensors, got shape {r.shape}")
        check_same_device(op, x, r)
    return xp.ascontiguousarray(r, dtype=np.float64)


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else tuple(int(x) for x in v)


def _features(input, op):
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    x = input.data
    if x.dtype not in _FLOATS:
        raise TypeError(f"{op}: input must be float32 or float64, got {x.dtype}")
    return x


class RoiAlignBackward(Node):
    """Each bilinear sample scatters its weight times the bin's gradient to its four taps."""

    def __init__(self, rois, shape, spatial_scale, sampling_ratio, aligned):
        self.rois, self.shape = rois, shape
        self.args = (spatial_scale, sampling_ratio, aligned)

    def name(self):
        return "RoiAlignBackward0"

    def backward(self, grad):
        return (_kernel("roi_align_backward", grad)(array_module(grad).ascontiguousarray(grad), self.rois, self.shape, *self.args),)


class RoiPoolBackward(Node):
    """Max routes: each bin's gradient goes to its arg-max cell."""

    def __init__(self, argmax, rois, shape):
        self.argmax, self.rois, self.shape = argmax, rois, shape

    def name(self):
        return "RoiPoolBackward0"

    def backward(self, grad):
        return (_kernel("roi_pool_backward", grad)(array_module(grad).ascontiguousarray(grad), self.argmax, self.rois, self.shape),)


def _record(input, out, node):
    if GradMode.enabled and input.requires_grad:
        node.next_edges = (input.grad_fn or input,)
        return _make(out, node)
    return _make(out)


def roi_align(input, boxes, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align (Mask R-CNN's differentiable crop): (N, C, H, W) features and boxes -> (K, C, PH, PW).

    ``boxes``: a (K, 5) tensor of (batch index, x1, y1, x2, y2) or a list of N (Ki, 4)
    tensors, in input-image coordinates scaled by ``spatial_scale`` (1 / the feature
    stride). Each bin averages ``sampling_ratio``^2 bilinear samples (adaptive when <= 0);
    ``aligned=True`` shifts by half a pixel (the corrected version: use it for new models).

    >>> import pydl
    >>> x = pydl.arange(16.0).reshape(1, 1, 4, 4)
    >>> roi_align(x, [pydl.tensor([[0.0, 0.0, 2.0, 2.0]])], 1, aligned=True)
    tensor([[[[2.5000]]]])
    """
    x = _features(input, "roi_align")
    r = _rois(boxes, x, "roi_align")
    ps = _pair(output_size)
    out = _kernel("roi_align_forward", x)(x, r, ps, float(spatial_scale), int(sampling_ratio), bool(aligned))
    return _record(input, out, RoiAlignBackward(r, x.shape, float(spatial_scale), int(sampling_ratio), bool(aligned)))


def roi_pool(input, boxes, output_size, spatial_scale=1.0):
    """RoI max pooling (Fast R-CNN): (N, C, H, W) features and boxes -> (K, C, PH, PW).
    The scaled box is rounded to whole cells and each bin keeps its maximum."""
    x = _features(input, "roi_pool")
    r = _rois(boxes, x, "roi_pool")
    out, arg = _kernel("roi_pool_forward", x)(x, r, _pair(output_size), float(spatial_scale))
    return _record(input, out, RoiPoolBackward(arg, r, x.shape))


class RoIAlign(Module):
    """Module form of :func:`roi_align`."""

    def __init__(self, output_size, spatial_scale, sampling_ratio, aligned=False):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale
        self.sampling_ratio, self.aligned = sampling_ratio, aligned

    def forward(self, input, rois):
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self):
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


class RoIPool(Module):
    """Module form of :func:`roi_pool`."""

    def __init__(self, output_size, spatial_scale):
        super().__init__()
        self.output_size, self.spatial_scale = output_size, spatial_scale

    def forward(self, input, rois):
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self):
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"
