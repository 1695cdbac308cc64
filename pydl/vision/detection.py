"""Object detection building blocks and a small single-stage detector.

- :class:`AnchorGenerator`: anchors of several sizes and aspect ratios at every cell of a
  feature map (Faster R-CNN's reference boxes).
- :class:`BoxCoder`: boxes <-> deltas ``(dx, dy, dw, dh) = (w_x (x - x_a) / w_a, w_y (y - y_a)
  / h_a, w_w log(w / w_a), w_h log(h / h_a))`` with Faster R-CNN's weights (10, 10, 5, 5).
- :class:`RPNHead`: the region proposal network head (objectness + deltas per anchor).
- :class:`RoIBoxHead`: the second stage of Fast / Faster R-CNN: RoI Align crops of the
  proposals, two fully connected layers, class scores and per-class box deltas.
- :class:`FPN`: the Feature Pyramid Network neck (lateral 1x1 convs, top-down nearest
  up-sampling and addition, 3x3 output convs).
- :class:`MaskHead`: Mask R-CNN's mask branch (4 conv 3x3, a 2x transposed conv, per-class
  mask logits) on RoI Align crops.
- :class:`FCOSDetector`: a single-stage, fully convolutional, anchor-free detector in the
  style of FCOS: a small conv backbone, an FPN, and a head predicting at every cell of the
  stride-4 level a class score (sigmoid, focal loss) and the distances (l, t, r, b) to the
  box's sides (IoU loss); cells near a box's centre ("centre sampling") are its positives.
  ``loss(images, targets)`` trains it; ``detect(images)`` decodes, thresholds and runs
  batched NMS.
"""
import math

import numpy as np

from .. import nn
from ..nn import functional as F
from . import ops

__all__ = ["AnchorGenerator", "BoxCoder", "RPNHead", "RoIBoxHead", "FPN", "MaskHead", "FCOSDetector"]


class AnchorGenerator:
    """Anchors (H * W * A, 4) xyxy for a feature map of size (H, W) and ``stride`` pixels per
    cell: A = len(sizes) * len(aspect_ratios) boxes centred on each cell (ratio = h / w).

    >>> AnchorGenerator(sizes=(8,), aspect_ratios=(1.0,))((1, 2), stride=8)
    array([[ 0.,  0.,  8.,  8.],
           [ 8.,  0., 16.,  8.]], dtype=float32)
    """

    def __init__(self, sizes=(32, 64, 128), aspect_ratios=(0.5, 1.0, 2.0)):
        self.sizes, self.aspect_ratios = tuple(sizes), tuple(aspect_ratios)

    @property
    def num_anchors(self):
        return len(self.sizes) * len(self.aspect_ratios)

    def cell_anchors(self):
        """(A, 4) anchors centred on (0, 0)."""
        out = []
        for r in self.aspect_ratios:
            for s in self.sizes:
                w, h = s / math.sqrt(r), s * math.sqrt(r)
                out.append([-w / 2, -h / 2, w / 2, h / 2])
        return np.array(out, np.float64)

    def __call__(self, feature_size, stride):
        H, W = feature_size
        sy, sx = (stride, stride) if np.isscalar(stride) else stride
        cy, cx = np.meshgrid((np.arange(H) + 0.5) * sy, (np.arange(W) + 0.5) * sx, indexing="ij")
        shifts = np.stack([cx, cy, cx, cy], -1).reshape(-1, 1, 4)
        return (shifts + self.cell_anchors()[None]).reshape(-1, 4).astype(np.float32)


class BoxCoder:
    """Encodes boxes as deltas against reference boxes (anchors, proposals) and back.

    >>> c = BoxCoder()
    >>> a = np.array([[0., 0, 10, 10]]); b = np.array([[1., 2, 11, 14]])
    >>> np.allclose(c.decode(c.encode(b, a), a), b)
    True
    """

    def __init__(self, weights=(10.0, 10.0, 5.0, 5.0), bbox_xform_clip=math.log(1000.0 / 16)):
        self.weights, self.clip = tuple(float(w) for w in weights), bbox_xform_clip

    @staticmethod
    def _centres(b):
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        return b[:, 0] + 0.5 * w, b[:, 1] + 0.5 * h, w, h

    def encode(self, boxes, reference):
        """(K, 4) target boxes and (K, 4) reference boxes -> (K, 4) deltas."""
        b, a = np.asarray(boxes, np.float64), np.asarray(reference, np.float64)
        x, y, w, h = self._centres(b)
        xa, ya, wa, ha = self._centres(a)
        wx, wy, ww, wh = self.weights
        return np.stack([wx * (x - xa) / wa, wy * (y - ya) / ha, ww * np.log(w / wa), wh * np.log(h / ha)], 1)

    def decode(self, deltas, reference):
        """(K, 4) deltas and (K, 4) reference boxes -> (K, 4) boxes (dw, dh clipped at log(1000/16))."""
        d, a = np.asarray(deltas, np.float64), np.asarray(reference, np.float64)
        xa, ya, wa, ha = self._centres(a)
        wx, wy, ww, wh = self.weights
        x, y = d[:, 0] / wx * wa + xa, d[:, 1] / wy * ha + ya
        w = np.exp(np.minimum(d[:, 2] / ww, self.clip)) * wa
        h = np.exp(np.minimum(d[:, 3] / wh, self.clip)) * ha
        return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], 1)


class RPNHead(nn.Module):
    """Region proposal network head: a shared 3x3 conv, then per anchor an objectness logit
    and 4 box deltas. list of (N, C, H, W) -> (list of (N, A, H, W), list of (N, 4A, H, W))."""

    def __init__(self, in_channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, 4 * num_anchors, 1)

    def forward(self, features):
        logits, deltas = [], []
        for f in features:
            t = F.relu(self.conv(f))
            logits.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return logits, deltas


class RoIBoxHead(nn.Module):
    """Fast R-CNN's second stage: RoI Align crops (K, C, S, S) of the proposals, two FC
    layers, then class scores (K, num_classes + 1; 0 is background) and per-class box
    deltas (K, 4 (num_classes + 1)). ``proposals``: a list of (Ki, 4) per image."""

    def __init__(self, in_channels, num_classes, spatial_scale, crop=7, hidden=256, sampling_ratio=2):
        super().__init__()
        self.crop, self.spatial_scale, self.sampling_ratio = crop, spatial_scale, sampling_ratio
        self.fc6 = nn.Linear(in_channels * crop * crop, hidden)
        self.fc7 = nn.Linear(hidden, hidden)
        self.cls_score = nn.Linear(hidden, num_classes + 1)
        self.bbox_pred = nn.Linear(hidden, 4 * (num_classes + 1))

    def forward(self, features, proposals):
        x = ops.roi_align(features, proposals, self.crop, self.spatial_scale, self.sampling_ratio, aligned=True)
        x = F.relu(self.fc6(x.flatten(1)))
        x = F.relu(self.fc7(x))
        return self.cls_score(x), self.bbox_pred(x)


class FPN(nn.Module):
    """Feature Pyramid Network: list of (N, C_i, H_i, W_i), finest first, each level half
    the size of the one before -> list of (N, out_channels, H_i, W_i)."""

    def __init__(self, in_channels_list, out_channels):
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, out_channels, 1) for c in in_channels_list])
        self.output = nn.ModuleList([nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels_list])

    def forward(self, features):
        laterals = [l(f) for l, f in zip(self.lateral, features)]
        outs = [None] * len(laterals)
        top = laterals[-1]
        outs[-1] = self.output[-1](top)
        for i in range(len(laterals) - 2, -1, -1):
            top = laterals[i] + F.interpolate(top, size=laterals[i].shape[2:], mode="nearest")
            outs[i] = self.output[i](top)
        return outs


class MaskHead(nn.Module):
    """Mask R-CNN's mask branch: (K, C, S, S) RoI Align crops -> (K, num_classes, 2S, 2S)
    mask logits (4 conv 3x3 + ReLU, a stride-2 transposed conv, a 1x1 conv); the loss is
    per-pixel binary cross-entropy on the mask of each RoI's own class."""

    def __init__(self, in_channels, num_classes, hidden=64, layers=4):
        super().__init__()
        convs = []
        c = in_channels
        for _ in range(layers):
            convs += [nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU()]
            c = hidden
        self.convs = nn.Sequential(*convs)
        self.deconv = nn.ConvTranspose2d(hidden, hidden, 2, stride=2)
        self.mask_logits = nn.Conv2d(hidden, num_classes, 1)

    def forward(self, crops):
        return self.mask_logits(F.relu(self.deconv(self.convs(crops))))


def _conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU())


class FCOSDetector(nn.Module):
    """A small FCOS-style single-stage detector for images of a few dozen pixels.

    images (N, 3, H, W) -> (class logits (N, K, H/4, W/4), side distances (N, 4, H/4, W/4)
    in units of the stride, positive through exp). Backbone: strides 1, 2, 4, 8; FPN on the
    stride-4 and stride-8 maps; the head runs on the stride-4 level.
    """

    stride = 4

    def __init__(self, num_classes=2, width=16, center_radius=1.5):
        super().__init__()
        w = width
        self.num_classes, self.center_radius = num_classes, center_radius
        self.stem = _conv_bn(3, w)
        self.stage2 = nn.Sequential(_conv_bn(w, 2 * w, 2), _conv_bn(2 * w, 2 * w))
        self.stage4 = nn.Sequential(_conv_bn(2 * w, 4 * w, 2), _conv_bn(4 * w, 4 * w))
        self.stage8 = nn.Sequential(_conv_bn(4 * w, 4 * w, 2), _conv_bn(4 * w, 4 * w))
        self.fpn = FPN([4 * w, 4 * w], 4 * w)
        self.tower = nn.Sequential(nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(4 * w, 4 * w, 3, padding=1), nn.ReLU())
        self.cls = nn.Conv2d(4 * w, num_classes, 3, padding=1)
        self.reg = nn.Conv2d(4 * w, 4, 3, padding=1)
        prior = 0.01  # RetinaNet's initial foreground probability: the focal loss starts calm
        self.cls.bias.data[...] = -math.log((1 - prior) / prior)

    def forward(self, images):
        c4 = self.stage4(self.stage2(self.stem(images)))
        c8 = self.stage8(c4)
        p4 = self.fpn([c4, c8])[0]
        t = self.tower(p4)
        return self.cls(t), self.reg(t).clamp(max=6.0).exp()

    # ---- training targets ------------------------------------------------------------
    def targets(self, targets, feature_size):
        """Per cell: class (-1 background) (N, H, W) and sides (l, t, r, b) / stride (N, 4, H, W)."""
        H, W = feature_size
        s = self.stride
        cy, cx = np.meshgrid((np.arange(H) + 0.5) * s, (np.arange(W) + 0.5) * s, indexing="ij")
        labels = np.full((len(targets), H, W), -1, np.int64)
        sides = np.ones((len(targets), 4, H, W), np.float32)
        for i, t in enumerate(targets):
            boxes = np.asarray(t["boxes"], np.float64).reshape(-1, 4)
            if boxes.shape[0] == 0:
                continue
            l = cx[None] - boxes[:, 0, None, None]
            tp = cy[None] - boxes[:, 1, None, None]
            r = boxes[:, 2, None, None] - cx[None]
            b = boxes[:, 3, None, None] - cy[None]
            gx, gy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
            rad = self.center_radius * s
            near = (np.abs(cx[None] - gx[:, None, None]) < rad) & (np.abs(cy[None] - gy[:, None, None]) < rad)
            inside = (np.minimum(np.minimum(l, tp), np.minimum(r, b)) > 0) & near
            area = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[:, None, None]
            cost = np.where(inside, area, np.inf)
            best = np.argmin(cost, 0)  # the smallest box wins an ambiguous cell
            pos = np.isfinite(np.min(cost, 0))
            labels[i][pos] = np.asarray(t["labels"])[best[pos]]
            stack = np.stack([l, tp, r, b], 1) / s  # (G, 4, H, W)
            sel = np.take_along_axis(stack, best[None, None], 0)[0]
            sides[i][:, pos] = sel[:, pos]
        return labels, sides

    def loss(self, images, targets, alpha=0.25, gamma=2.0):
        """Focal loss on the classes + IoU loss (-log IoU) on the positives' sides, each
        divided by the number of positive cells. Returns (total, {"cls": ..., "box": ...})."""
        cls, reg = self(images)
        N, K, H, W = cls.shape
        labels, sides = self.targets(targets, (H, W))
        onehot = np.zeros((N, K, H, W), np.float32)
        n_idx, h_idx, w_idx = np.nonzero(labels >= 0)
        onehot[n_idx, labels[n_idx, h_idx, w_idx], h_idx, w_idx] = 1
        num_pos = max(1.0, float(n_idx.size))
        t = _tensor(onehot)
        p = cls.sigmoid()
        ce = F.binary_cross_entropy_with_logits(cls, t, reduction="none")
        p_t = p * t + (1 - p) * (1 - t)
        a_t = t * alpha + (1 - t) * (1 - alpha)
        cls_loss = (ce * a_t * (1 - p_t) ** gamma).sum() / num_pos
        pos = _tensor((labels >= 0).astype(np.float32)[:, None])  # (N, 1, H, W)
        g = _tensor(sides)
        inter_w = _minimum(reg[:, 0:1], g[:, 0:1]) + _minimum(reg[:, 2:3], g[:, 2:3])
        inter_h = _minimum(reg[:, 1:2], g[:, 1:2]) + _minimum(reg[:, 3:4], g[:, 3:4])
        inter = inter_w * inter_h
        area_p = (reg[:, 0:1] + reg[:, 2:3]) * (reg[:, 1:2] + reg[:, 3:4])
        area_g = (g[:, 0:1] + g[:, 2:3]) * (g[:, 1:2] + g[:, 3:4])
        iou = (inter + 1e-6) / (area_p + area_g - inter + 1e-6)
        box_loss = (-(iou.log()) * pos).sum() / num_pos
        return cls_loss + box_loss, {"cls": float(cls_loss.item()), "box": float(box_loss.item())}

    # ---- inference -------------------------------------------------------------------
    def detect(self, images, score_threshold=0.05, nms_threshold=0.5, max_detections=100, pre_nms_top_n=1000):
        """Per image {"boxes": (D, 4) xyxy, "scores": (D,), "labels": (D,)} as NumPy arrays."""
        from ..autograd.grad_mode import no_grad

        was_training = self.training
        self.eval()
        with no_grad():
            cls, reg = self(images)
        self.train(was_training)
        scores = 1 / (1 + np.exp(-np.asarray(cls.data, np.float64)))  # (N, K, H, W)
        sides = np.asarray(reg.data, np.float64) * self.stride         # (N, 4, H, W)
        N, K, H, W = scores.shape
        s = self.stride
        cy, cx = np.meshgrid((np.arange(H) + 0.5) * s, (np.arange(W) + 0.5) * s, indexing="ij")
        out = []
        for i in range(N):
            sc = scores[i].reshape(K, -1)
            k_idx, cell = np.nonzero(sc > score_threshold)
            val = sc[k_idx, cell]
            if val.size > pre_nms_top_n:
                top = np.argsort(-val, kind="stable")[:pre_nms_top_n]
                k_idx, cell, val = k_idx[top], cell[top], val[top]
            d = sides[i].reshape(4, -1)[:, cell]
            x, y = cx.reshape(-1)[cell], cy.reshape(-1)[cell]
            boxes = np.stack([x - d[0], y - d[1], x + d[2], y + d[3]], 1).astype(np.float32)
            keep = ops.batched_nms(boxes, val.astype(np.float32), k_idx, nms_threshold)[:max_detections]
            out.append({"boxes": boxes[keep], "scores": val[keep].astype(np.float32), "labels": k_idx[keep]})
        return out


def _tensor(a):
    from .._ops.creation import tensor

    return tensor(a)


def _minimum(a, b):
    from .._ops.pointwise import minimum

    return minimum(a, b)
