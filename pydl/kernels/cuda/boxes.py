"""Detection kernels on the GPU (csrc/cuda/boxes.cu): IoU, GIoU, NMS, RoI Align / pool.

Same signatures and results as :mod:`pydl.kernels.reference.boxes` (CuPy arrays in and
out; kept indices and argmax are int64). NMS sorts by score here (CuPy's stable argsort:
descending, ties by index, NaN last), then the bitmask kernels of boxes.cu decide; the
kept positions come back as flags, so the result needs no host round trip. box_area and
box_convert are not in this backend: a few element-wise products, no kernel to write.
"""
from ._common import cp, float_array, launcher, stream

OPS = ("box_iou", "generalized_box_iou", "nms", "batched_nms",
       "roi_align_forward", "roi_align_backward", "roi_pool_forward", "roi_pool_backward")


def _boxes(b, op, name="boxes"):
    float_array(b, op, name)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{op}: {name} must have shape (N, 4), got {b.shape}")
    return cp.ascontiguousarray(b)


def _same_dtype(a, b, op, na, nb):
    if a.dtype != b.dtype:
        raise TypeError(f"{op}: {na} and {nb} must have the same dtype, got {a.dtype} and {b.dtype}")


def _iou(boxes1, boxes2, generalized):
    op = "generalized_box_iou" if generalized else "box_iou"
    a, b = _boxes(boxes1, op, "boxes1"), _boxes(boxes2, op, "boxes2")
    _same_dtype(a, b, op, "boxes1", "boxes2")
    out = cp.empty((a.shape[0], b.shape[0]), dtype=a.dtype)
    if out.size:
        launcher("box_iou", a.dtype)(a.data.ptr, a.shape[0], b.data.ptr, b.shape[0], out.data.ptr, generalized,
                                     stream())
    return out


def box_iou(boxes1, boxes2):
    """Intersection over union of every pair: (N, 4), (M, 4) -> (N, M)."""
    return _iou(boxes1, boxes2, False)


def generalized_box_iou(boxes1, boxes2):
    """Generalized IoU of every pair: (N, 4), (M, 4) -> (N, M), in [-1, 1]."""
    return _iou(boxes1, boxes2, True)


def _scores(scores, b, op):
    s = float_array(scores, op, "scores")
    _same_dtype(b, s, op, "boxes", "scores")
    if s.shape != (b.shape[0],):
        raise ValueError(f"{op}: scores must have shape ({b.shape[0]},), got {s.shape}")
    return s


def _score_order(s):
    """Indices by decreasing score, ties by index, NaN last (two stable sorts)."""
    nan = cp.isnan(s)
    order = cp.argsort(cp.where(nan, cp.inf, -s))           # -inf and NaN tie here ...
    return order[cp.argsort(nan[order].astype(cp.int8))]    # ... and NaN goes last


def _nms_sorted(b, s, cls, thr):
    n = b.shape[0]
    if n == 0:
        return cp.empty(0, dtype=cp.int64)
    order = _score_order(s)
    sorted_boxes = cp.ascontiguousarray(b[order])
    sorted_cls = None if cls is None else cp.ascontiguousarray(cls[order])
    nb = (n + 63) // 64
    mask = cp.empty((n, nb), dtype=cp.uint64)  # (n, nb) suppression bits, the one O(n^2) buffer
    removed = cp.empty(nb, dtype=cp.uint64)
    keep_flag = cp.empty(n, dtype=cp.uint8)
    launcher("nms", b.dtype)(sorted_boxes.data.ptr, 0 if sorted_cls is None else sorted_cls.data.ptr, n, float(thr),
                             mask.data.ptr, removed.data.ptr, keep_flag.data.ptr, stream())
    return order[cp.flatnonzero(keep_flag)].astype(cp.int64)


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression: (N, 4), (N,) -> kept indices (int64), by decreasing score."""
    b = _boxes(boxes, "nms")
    return _nms_sorted(b, _scores(scores, b, "nms"), None, iou_threshold)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category: (N, 4), (N,), (N,) int -> kept indices (int64) by decreasing score."""
    op = "batched_nms"
    b = _boxes(boxes, op)
    s = _scores(scores, b, op)
    i = cp.asarray(idxs)
    if i.dtype.kind not in "iub":
        raise TypeError(f"{op}: idxs must be an integer array, got {i.dtype}")
    if i.shape != (b.shape[0],):
        raise ValueError(f"{op}: idxs must have shape ({b.shape[0]},), got {i.shape}")
    return _nms_sorted(b, s, i.astype(cp.int64), iou_threshold)


# --------------------------------------------------------------------------------------
# RoI Align / RoI pool
# --------------------------------------------------------------------------------------
def _features(x, op, name):
    float_array(x, op, name)
    if x.ndim != 4:
        raise ValueError(f"{op}: {name} must be (N, C, H, W), got {x.shape}")
    return cp.ascontiguousarray(x)


def _rois(rois, N, op):
    """rois (K, 5) as contiguous float64 on the device, batch indices checked."""
    r = cp.asarray(rois)
    if r.dtype.kind != "f":
        raise TypeError(f"{op}: rois must be float32 or float64, got {r.dtype}")
    if r.ndim != 2 or r.shape[1] != 5:
        raise ValueError(f"{op}: rois must have shape (K, 5), got {r.shape}")
    r = cp.ascontiguousarray(r, dtype=cp.float64)
    b = r[:, 0]
    bad = ~((b >= 0) & (b < N) & (b == cp.floor(b)))
    if r.shape[0] and bool(bad.any()):
        k = int(cp.argmax(bad))
        raise ValueError(f"{op}: rois[:, 0] must hold batch indices in [0, {N}), got {float(b[k])} at row {k}")
    return r


def _output_size(o, op):
    v = (o, o) if isinstance(o, int) else tuple(o)
    if len(v) != 2 or min(v) <= 0:
        raise ValueError(f"{op}: output_size must be two positive integers, got {o}")
    return int(v[0]), int(v[1])


def _input_shape(shape, op):
    s = tuple(int(v) for v in shape)
    if len(s) != 4 or min(s) < 0:
        raise ValueError(f"{op}: input_shape must be (N, C, H, W), got {shape}")
    return s


def _grad(grad_out, rois, C, op):
    g = _features(grad_out, op, "grad_out")
    K = rois.shape[0]
    if g.shape[0] != K or g.shape[1] != C:
        raise ValueError(f"{op}: grad_out must be ({K}, {C}, PH, PW), got {g.shape}")
    return g


def _forward_args(input, rois, output_size, op):
    """(x, rois as float64, an empty output (K, C, PH, PW)) of a RoI forward."""
    x = _features(input, op, "input")
    PH, PW = _output_size(output_size, op)
    r = _rois(rois, x.shape[0], op)
    return x, r, cp.empty((r.shape[0], x.shape[1], PH, PW), dtype=x.dtype)


def roi_align_forward(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align: (N, C, H, W), rois (K, 5) = (batch index, x1, y1, x2, y2) -> (K, C, PH, PW)."""
    x, r, out = _forward_args(input, rois, output_size, "roi_align")
    _, C, H, W = x.shape
    PH, PW = out.shape[2:]
    if out.size:
        launcher("roi_align_forward", x.dtype)(x.data.ptr, r.data.ptr, r.shape[0], C, H, W, PH, PW,
                                               float(spatial_scale), int(sampling_ratio), bool(aligned),
                                               out.data.ptr, stream())
    return out


def roi_align_backward(grad_out, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """Adjoint of roi_align_forward: (K, C, PH, PW) -> (N, C, H, W) (atomic scatter of the bilinear taps)."""
    op = "roi_align_backward"
    float_array(grad_out, op, "grad_out")
    N, C, H, W = _input_shape(input_shape, op)
    r = _rois(rois, N, op)
    g = _grad(grad_out, r, C, op)
    dx = cp.empty((N, C, H, W), dtype=g.dtype)
    if dx.size:
        launcher("roi_align_backward", g.dtype)(g.data.ptr, r.data.ptr, r.shape[0], N, C, H, W, g.shape[2],
                                                g.shape[3], float(spatial_scale), int(sampling_ratio),
                                                bool(aligned), dx.data.ptr, stream())
    return dx


def roi_pool_forward(input, rois, output_size, spatial_scale=1.0):
    """RoI max pooling: (N, C, H, W), rois (K, 5) -> (out (K, C, PH, PW), argmax (K, C, PH, PW) int64)."""
    x, r, out = _forward_args(input, rois, output_size, "roi_pool")
    _, C, H, W = x.shape
    PH, PW = out.shape[2:]
    arg = cp.empty(out.shape, dtype=cp.int64)
    if out.size:
        launcher("roi_pool_forward", x.dtype)(x.data.ptr, r.data.ptr, r.shape[0], C, H, W, PH, PW,
                                              float(spatial_scale), out.data.ptr, arg.data.ptr, stream())
    return out, arg


def roi_pool_backward(grad_out, argmax, rois, input_shape):
    """Max routes: each bin's gradient goes to its argmax cell: (K, C, PH, PW) -> (N, C, H, W)."""
    op = "roi_pool_backward"
    float_array(grad_out, op, "grad_out")
    a = cp.asarray(argmax)
    N, C, H, W = _input_shape(input_shape, op)
    if a.shape != grad_out.shape:
        raise ValueError(f"{op}: argmax must have grad_out's shape {grad_out.shape}, got {a.shape}")
    r = _rois(rois, N, op)
    g = _grad(grad_out, r, C, op)
    a = cp.ascontiguousarray(a, dtype=cp.int64)
    if a.size and bool(((a < -1) | (a >= H * W)).any()):
        raise ValueError(f"{op}: argmax holds values outside [-1, {H * W})")
    dx = cp.empty((N, C, H, W), dtype=g.dtype)
    if dx.size:
        launcher("roi_pool_backward", g.dtype)(g.data.ptr, a.data.ptr, r.data.ptr, r.shape[0], N, C, H, W,
                                               g.shape[2], g.shape[3], dx.data.ptr, stream())
    return dx
