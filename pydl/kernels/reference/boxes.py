"""Boxes: area, format conversion, IoU / generalized IoU, greedy NMS, RoI Align and RoI pooling.

The textbook versions (NumPy, float64) of the detection kernels, the specification that
``csrc/cpu/boxes.cpp`` is tested against. Boxes are ``(x1, y1, x2, y2)`` rows ("xyxy")
unless a format says otherwise; ``N, M`` count boxes, ``K`` regions of interest, ``N, C,
H, W`` the feature map, ``PH, PW`` the pooled output.

Defined behaviour on bad boxes (the same in every backend):

- the area used by IoU is ``max(x2 - x1, 0) * max(y2 - y1, 0)``: an inverted box
  (``x2 < x1``) or a zero-area box has IoU 0 with everything, itself included;
- IoU is ``inter / union`` when ``union > 0`` and 0 otherwise; a box with a NaN
  coordinate therefore has IoU 0 with everything (never suppresses, is never suppressed);
- NMS ranks by score, descending, ties by index (a stable sort); NaN scores rank below
  every number (NaN boxes come last, in index order); a box is suppressed when its IoU
  with a kept box is strictly greater than ``iou_threshold`` (equal does not suppress);
- RoI Align samples falling outside ``[-1, H] x [-1, W]`` (or NaN) read 0.
"""
import math

import numpy as np

__all__ = ["box_area", "box_convert", "box_iou", "generalized_box_iou", "nms", "batched_nms",
           "roi_align_forward", "roi_align_backward", "roi_pool_forward", "roi_pool_backward"]

_FORMATS = ("xyxy", "xywh", "cxcywh")


def _boxes(b, op, name="boxes"):
    b = np.asarray(b, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"{op}: {name} must have shape (N, 4), got {b.shape}")
    return b


def box_area(boxes):
    """Area ``(x2 - x1) * (y2 - y1)`` of each box: (N, 4) -> (N,) (torchvision's: an
    inverted box has a negative area here; IoU clamps it to 0).

    >>> box_area([[0, 0, 2, 3], [1, 1, 2, 2]])
    array([6., 1.])
    """
    b = _boxes(boxes, "box_area")
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_convert(boxes, in_fmt, out_fmt):
    """Converts (N, 4) boxes between "xyxy", "xywh" (corner + size) and "cxcywh" (centre + size).

    >>> box_convert([[1, 2, 5, 6]], "xyxy", "cxcywh")
    array([[3., 4., 4., 4.]])
    """
    for f, n in ((in_fmt, "in_fmt"), (out_fmt, "out_fmt")):
        if f not in _FORMATS:
            raise ValueError(f"box_convert: {n} must be one of {', '.join(_FORMATS)}, got {f!r}")
    b = _boxes(boxes, "box_convert")
    if in_fmt == "xywh":
        b = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    elif in_fmt == "cxcywh":
        b = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2,
                      b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], axis=1)
    if out_fmt == "xywh":
        b = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    elif out_fmt == "cxcywh":
        b = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                      b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    return b.copy()


def _area_clamped(b):
    return np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)


def _inter_union(a, b):
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(iw, 0) * np.maximum(ih, 0)
    union = _area_clamped(a)[:, None] + _area_clamped(b)[None, :] - inter
    return inter, union


def box_iou(boxes1, boxes2):
    """Intersection over union of every pair: (N, 4), (M, 4) -> (N, M).

    ``IoU = |A n B| / |A u B|``; 0 where the union is empty (zero-area, inverted or NaN boxes).

    >>> box_iou([[0, 0, 2, 2]], [[1, 0, 3, 2], [5, 5, 6, 6]])
    array([[0.33333333, 0.        ]])
    """
    a, b = _boxes(boxes1, "box_iou", "boxes1"), _boxes(boxes2, "box_iou", "boxes2")
    with np.errstate(invalid="ignore", divide="ignore"):
        inter, union = _inter_union(a, b)
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def generalized_box_iou(boxes1, boxes2):
    """Generalized IoU of every pair: (N, 4), (M, 4) -> (N, M), in [-1, 1].

    ``GIoU = IoU - |C \\ (A u B)| / |C|`` with C the smallest box enclosing A and B; equals
    the IoU where ``|C|`` is not > 0 or the formula gives NaN (infinite or NaN boxes).

    >>> generalized_box_iou([[0, 0, 1, 1]], [[2, 0, 3, 1]])
    array([[-0.33333333]])
    """
    a, b = _boxes(boxes1, "generalized_box_iou", "boxes1"), _boxes(boxes2, "generalized_box_iou", "boxes2")
    with np.errstate(invalid="ignore", divide="ignore"):
        inter, union = _inter_union(a, b)
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
        cw = np.maximum(a[:, None, 2], b[None, :, 2]) - np.minimum(a[:, None, 0], b[None, :, 0])
        ch = np.maximum(a[:, None, 3], b[None, :, 3]) - np.minimum(a[:, None, 1], b[None, :, 1])
        area_c = np.maximum(cw, 0) * np.maximum(ch, 0)
        ok = area_c > 0
        g = iou - (area_c - np.where(union > 0, union, 0)) / np.where(ok, area_c, 1)
        return np.where(ok & ~np.isnan(g), g, iou)


def _score_order(scores):
    """Indices by decreasing score, ties by index, NaN last."""
    s = np.asarray(scores, dtype=np.float64)
    key = np.where(np.isnan(s), np.inf, -s)          # NaN ranks below -inf
    nan_last = np.isnan(s).astype(np.int64)
    return np.lexsort((np.arange(s.size), key, nan_last))


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression: (N, 4), (N,) -> kept indices (int64), by decreasing score.

    Walk the boxes from the highest score down; keep a box unless a box kept before it
    overlaps it with IoU strictly greater than ``iou_threshold``.

    >>> nms([[0, 0, 2, 2], [0, 0, 2, 1.9], [3, 3, 4, 4]], [0.9, 0.8, 0.7], 0.5)
    array([0, 2])
    """
    b = _boxes(boxes, "nms")
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (b.shape[0],):
        raise ValueError(f"nms: scores must have shape ({b.shape[0]},), got {s.shape}")
    order = _score_order(s)
    iou = box_iou(b, b)
    keep = []
    removed = np.zeros(b.shape[0], dtype=bool)
    for i in order:
        if removed[i]:
            continue
        keep.append(i)
        removed |= iou[i] > iou_threshold
    return np.array(keep, dtype=np.int64)


def batched_nms(boxes, scores, idxs, iou_threshold):
    """NMS within each category: boxes of different ``idxs`` never suppress each other.
    (N, 4), (N,), (N,) int -> kept indices (int64) by decreasing score.

    >>> batched_nms([[0, 0, 2, 2], [0, 0, 2, 1.9]], [0.9, 0.8], [0, 1], 0.5)
    array([0, 1])
    """
    b = _boxes(boxes, "batched_nms")
    idxs = np.asarray(idxs).reshape(-1)
    s = np.asarray(scores, dtype=np.float64)
    keep = []
    for c in np.unique(idxs):
        sel = np.flatnonzero(idxs == c)
        keep.extend(sel[nms(b[sel], s[sel], iou_threshold)])
    keep = np.sort(np.array(keep, dtype=np.int64))
    return keep[_score_order(s[keep])]  # by score, ties by index


def _rois(rois, op):
    r = np.asarray(rois, dtype=np.float64)
    if r.ndim != 2 or r.shape[1] != 5:
        raise ValueError(f"{op}: rois must have shape (K, 5), got {r.shape}")
    return r


def _bilinear_weights(y, x, H, W):
    """torchvision's sampling rule: [(h, w, weight)] of the four neighbours of (y, x)."""
    if not (y >= -1.0 and y <= H and x >= -1.0 and x <= W):   # outside, or NaN
        return []
    y, x = max(y, 0.0), max(x, 0.0)
    y_lo, x_lo = int(y), int(x)
    if y_lo >= H - 1:
        y_lo = y_hi = H - 1
        y = float(y_lo)
    else:
        y_hi = y_lo + 1
    if x_lo >= W - 1:
        x_lo = x_hi = W - 1
        x = float(x_lo)
    else:
        x_hi = x_lo + 1
    ly, lx = y - y_lo, x - x_lo
    hy, hx = 1.0 - ly, 1.0 - lx
    return [(y_lo, x_lo, hy * hx), (y_lo, x_hi, hy * lx), (y_hi, x_lo, ly * hx), (y_hi, x_hi, ly * lx)]


def _roi_align_samples(roi, H, W, PH, PW, spatial_scale, sampling_ratio, aligned):
    """For each output bin (ph, pw): [(h, w, weight)] such that out = sum weight * x[h, w]."""
    off = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (roi[1:] * spatial_scale) - off
    bins = [[[] for _ in range(PW)] for _ in range(PH)]
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return bins
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bh, bw = rh / PH, rw / PW
    gh = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rh / PH))
    gw = sampling_ratio if sampling_ratio > 0 else int(math.ceil(rw / PW))
    count = max(gh * gw, 1)
    for ph in range(PH):
        for pw in range(PW):
            for iy in range(gh):
                y = y1 + ph * bh + (iy + 0.5) * bh / gh
                for ix in range(gw):
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    bins[ph][pw] += [(h, w, wt / count) for h, w, wt in _bilinear_weights(y, x, H, W)]
    return bins


def _check_batch_index(r, N, op):
    b = r[:, 0]
    if np.any(~np.isfinite(b)) or np.any(b != np.round(b)) or np.any((b < 0) | (b >= N)):
        bad = b[~np.isfinite(b) | (b != np.round(b)) | (b < 0) | (b >= N)]
        raise ValueError(f"{op}: rois[:, 0] must hold batch indices in [0, {N}), got {bad[:3]}")


def roi_align_forward(input, rois, output_size, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """RoI Align (Mask R-CNN): (N, C, H, W), rois (K, 5) = (batch index, x1, y1, x2, y2)
    -> (K, C, PH, PW).

    Each RoI (scaled by ``spatial_scale``, shifted by -0.5 when ``aligned``) is cut into
    PH x PW bins; each bin averages ``sampling_ratio``^2 bilinear samples on a regular grid
    (adaptive ``ceil(roi_size / PH)`` per side when ``sampling_ratio <= 0``). No rounding
    anywhere, so the crop is differentiable in the features.

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> roi_align_forward(x, [[0, 0, 0, 2, 2]], (1, 1), aligned=True)
    array([[[[2.5]]]])
    """
    x = np.asarray(input, dtype=np.float64)
    r = _rois(rois, "roi_align")
    N, C, H, W = x.shape
    PH, PW = output_size
    _check_batch_index(r, N, "roi_align")
    out = np.zeros((r.shape[0], C, PH, PW))
    for k in range(r.shape[0]):
        n = int(r[k, 0])
        bins = _roi_align_samples(r[k], H, W, PH, PW, spatial_scale, sampling_ratio, aligned)
        for ph in range(PH):
            for pw in range(PW):
                for h, w, wt in bins[ph][pw]:
                    out[k, :, ph, pw] += wt * x[n, :, h, w]
    return out


def roi_align_backward(grad_out, rois, input_shape, spatial_scale=1.0, sampling_ratio=-1, aligned=False):
    """Adjoint of roi_align_forward: (K, C, PH, PW) -> (N, C, H, W); every sample scatters
    its bilinear weight times the bin's gradient back to its four neighbours."""
    g = np.asarray(grad_out, dtype=np.float64)
    r = _rois(rois, "roi_align_backward")
    N, C, H, W = input_shape
    PH, PW = g.shape[2:]
    _check_batch_index(r, N, "roi_align_backward")
    dx = np.zeros((N, C, H, W))
    for k in range(r.shape[0]):
        n = int(r[k, 0])
        bins = _roi_align_samples(r[k], H, W, PH, PW, spatial_scale, sampling_ratio, aligned)
        for ph in range(PH):
            for pw in range(PW):
                for h, w, wt in bins[ph][pw]:
                    dx[n, :, h, w] += wt * g[k, :, ph, pw]
    return dx


def _round_half_away(v):
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


def roi_pool_forward(input, rois, output_size, spatial_scale=1.0):
    """RoI max pooling (Fast R-CNN): (N, C, H, W), rois (K, 5) -> (out (K, C, PH, PW),
    argmax (K, C, PH, PW) int64 = h * W + w of each maximum, -1 for an empty bin (out 0)).

    The scaled RoI is rounded to whole cells (half away from zero), cut into PH x PW bins
    of floor / ceil edges, and each bin keeps its largest value (first one on ties).

    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> roi_pool_forward(x, [[0, 0, 0, 3, 3]], (2, 2))[0]
    array([[[[ 5.,  7.],
             [13., 15.]]]])
    """
    x = np.asarray(input, dtype=np.float64)
    r = _rois(rois, "roi_pool")
    N, C, H, W = x.shape
    PH, PW = output_size
    _check_batch_index(r, N, "roi_pool")
    out = np.zeros((r.shape[0], C, PH, PW))
    arg = np.full((r.shape[0], C, PH, PW), -1, dtype=np.int64)
    for k in range(r.shape[0]):
        n = int(r[k, 0])
        if not np.all(np.isfinite(r[k, 1:])):
            continue
        sw, sh, ew, eh = (_round_half_away(v * spatial_scale) for v in r[k, 1:])
        rw, rh = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bh, bw = rh / PH, rw / PW
        for ph in range(PH):
            hs = min(max(math.floor(ph * bh) + sh, 0), H)
            he = min(max(math.ceil((ph + 1) * bh) + sh, 0), H)
            for pw in range(PW):
                ws = min(max(math.floor(pw * bw) + sw, 0), W)
                we = min(max(math.ceil((pw + 1) * bw) + sw, 0), W)
                if he <= hs or we <= ws:
                    continue
                for c in range(C):
                    best, idx = -np.inf, -1
                    for h in range(hs, he):
                        for w in range(ws, we):
                            if idx < 0 or x[n, c, h, w] > best:
                                best, idx = x[n, c, h, w], h * W + w
                    out[k, c, ph, pw], arg[k, c, ph, pw] = best, idx
    return out, arg


def roi_pool_backward(grad_out, argmax, rois, input_shape):
    """Max routes: each bin's gradient goes to the input cell its argmax names (K, C, PH, PW)
    -> (N, C, H, W); empty bins (argmax -1) send nothing."""
    g = np.asarray(grad_out, dtype=np.float64)
    r = _rois(rois, "roi_pool_backward")
    N, C, H, W = input_shape
    _check_batch_index(r, N, "roi_pool_backward")
    dx = np.zeros((N, C, H * W))
    K, _, PH, PW = g.shape
    for k in range(K):
        n = int(r[k, 0])
        for c in range(C):
            for ph in range(PH):
                for pw in range(PW):
                    a = argmax[k, c, ph, pw]
                    if a >= 0:
                        dx[n, c, a] += g[k, c, ph, pw]
    return dx.reshape(N, C, H, W)
