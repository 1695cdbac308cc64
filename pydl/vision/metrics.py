"""Mean average precision for object detection: VOC (IoU 0.5) and COCO (IoU 0.5:0.05:0.95).

The cheat sheet's recipe, per category: take every detection of that category over all
images, sort by score (descending), walk down the list matching each detection greedily
to the best still-unmatched ground-truth box of its image whose IoU clears the threshold
(a match is a true positive, anything else a false positive), and take the area under
the resulting precision-recall curve. mAP is the mean over categories.

- ``mode="voc"``: IoU > 0.5 (strictly, as the VOC devkit), all-point interpolation (the
  area under the precision envelope at every recall step, VOC 2010+).
- ``mode="coco"``: pycocotools' COCOeval for boxes, reproduced step by step: IoU >= t for
  t in 0.50, 0.55, ..., 0.95; 101-point interpolated precision (recall 0, 0.01, ..., 1);
  at most ``max_dets`` detections per image and category (top scores); area ranges all /
  small (< 32^2) / medium / large (> 96^2) in which ground truth outside the range is
  ignored (matching it neither helps nor hurts) and unmatched detections outside it are
  dropped; ground truth marked ``iscrowd`` is ignored the same way (and may match many
  detections). Categories without ground truth (in the range) are left out of the mean;
  an average over nothing is -1, as pycocotools reports it.

Inputs follow torchmetrics' ``MeanAveragePrecision``: one dict per image,
``preds[i] = {"boxes": (D, 4) xyxy, "scores": (D,), "labels": (D,)}`` and
``targets[i] = {"boxes": (G, 4) xyxy, "labels": (G,)}`` (optional ``"iscrowd"`` (G,) and
``"area"`` (G,); the area defaults to the box's width x height).

>>> preds = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "scores": [0.9, 0.8], "labels": [0, 0]}]
>>> targets = [{"boxes": [[0, 0, 10, 10]], "labels": [0]}]
>>> mean_average_precision(preds, targets, mode="voc")["map"]
1.0
>>> round(mean_average_precision(preds, targets)["map"], 4)
1.0
"""
import numpy as np

__all__ = ["mean_average_precision", "average_precision_voc", "COCO_AREA_RANGES"]

COCO_AREA_RANGES = {"all": (0.0, 1e5 ** 2), "small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2),
                    "large": (96.0 ** 2, 1e5 ** 2)}


def _np(x, shape_tail=None, dtype=np.float64):
    a = np.asarray(x.numpy() if hasattr(x, "numpy") and not isinstance(x, np.ndarray) else x, dtype=dtype)
    if shape_tail is not None:
        a = a.reshape((-1,) + shape_tail)
    return a


def _iou_matrix(d, g, crowd=None):
    """IoU (D, G) of xyxy boxes; for crowd ground truth the "union" is the detection's area
    (pycocotools' iscrowd rule)."""
    if d.shape[0] == 0 or g.shape[0] == 0:
        return np.zeros((d.shape[0], g.shape[0]))
    iw = np.minimum(d[:, None, 2], g[None, :, 2]) - np.maximum(d[:, None, 0], g[None, :, 0])
    ih = np.minimum(d[:, None, 3], g[None, :, 3]) - np.maximum(d[:, None, 1], g[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    ad = ((d[:, 2] - d[:, 0]) * (d[:, 3] - d[:, 1]))[:, None]
    ag = ((g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1]))[None, :]
    union = ad + ag - inter
    if crowd is not None:
        union = np.where(crowd[None, :], np.broadcast_to(ad, union.shape), union)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _prepare(preds, targets):
    if len(preds) != len(targets):
        raise ValueError(f"mean_average_precision: {len(preds)} predictions for {len(targets)} images")
    P, T = [], []
    for i, (p, t) in enumerate(zip(preds, targets)):
        for key in ("boxes", "scores", "labels"):
            if key not in p:
                raise ValueError(f"mean_average_precision: preds[{i}] has no {key!r}")
        for key in ("boxes", "labels"):
            if key not in t:
                raise ValueError(f"mean_average_precision: targets[{i}] has no {key!r}")
        pb = _np(p["boxes"], (4,))
        ps = _np(p["scores"]).reshape(-1)
        pl = _np(p["labels"], dtype=np.int64).reshape(-1)
        tb = _np(t["boxes"], (4,))
        tl = _np(t["labels"], dtype=np.int64).reshape(-1)
        if not (pb.shape[0] == ps.shape[0] == pl.shape[0]):
            raise ValueError(f"mean_average_precision: preds[{i}] boxes, scores and labels differ in length")
        if tb.shape[0] != tl.shape[0]:
            raise ValueError(f"mean_average_precision: targets[{i}] boxes and labels differ in length")
        crowd = _np(t.get("iscrowd", np.zeros(tl.shape[0])), dtype=bool).reshape(-1)
        area = _np(t["area"]).reshape(-1) if "area" in t else (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
        P.append((pb, ps, pl))
        T.append((tb, tl, crowd, area))
    return P, T


def average_precision_voc(recall, precision):
    """All-point interpolated AP (VOC 2010+): the area under the precision envelope.

    >>> average_precision_voc(np.array([0.5, 1.0]), np.array([1.0, 0.5]))
    0.75
    """
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    for i in range(mpre.size - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _voc(P, T, iou_threshold):
    classes = np.unique(np.concatenate([t[1] for t in T] + [np.zeros(0, np.int64)]))
    aps = {}
    for c in classes:
        dets = []  # (score, image, box)
        gts = {}
        npos = 0
        for i, ((pb, ps, pl), (tb, tl, crowd, _)) in enumerate(zip(P, T)):
            sel = tl == c
            gts[i] = (tb[sel], crowd[sel], np.zeros(int(sel.sum()), dtype=bool))
            npos += int((~crowd[sel]).sum())
            for k in np.flatnonzero(pl == c):
                dets.append((ps[k], i, pb[k]))
        if npos == 0:
            continue
        order = np.argsort([-d[0] for d in dets], kind="stable")
        tp = np.zeros(len(dets))
        fp = np.zeros(len(dets))
        for r, k in enumerate(order):
            _, i, box = dets[k]
            g, cr, used = gts[i]
            ious = _iou_matrix(box[None], g)[0] if g.shape[0] else np.zeros(0)
            ious = np.where(used, -1.0, ious)  # greedily: the best still-unmatched ground truth
            m = int(np.argmax(ious)) if ious.size else -1
            if m >= 0 and ious[m] > iou_threshold:
                if cr[m]:
                    continue  # a crowd ("difficult") box: neither true nor false positive
                tp[r] = 1
                used[m] = True
            else:
                fp[r] = 1
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / npos
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        aps[int(c)] = average_precision_voc(rec, prec)
    m = float(np.mean(list(aps.values()))) if aps else -1.0
    return {"map": m, "ap_per_class": aps}


def _coco_match(d_boxes, d_scores, g_boxes, g_crowd, g_area, d_area, area_rng, iou_thrs, max_det):
    """pycocotools' evaluateImg for one image and category: (scores, dt matched (T, D),
    dt ignored (T, D), gt ignored (G,)) for the top ``max_det`` detections."""
    g_ignore = g_crowd | (g_area < area_rng[0]) | (g_area > area_rng[1])
    gorder = np.argsort(g_ignore, kind="stable")  # ignored ground truth last
    g_boxes, g_crowd, g_ignore = g_boxes[gorder], g_crowd[gorder], g_ignore[gorder]
    dorder = np.argsort(-d_scores, kind="stable")[:max_det]
    d_boxes, d_scores, d_area = d_boxes[dorder], d_scores[dorder], d_area[dorder]
    ious = _iou_matrix(d_boxes, g_boxes, g_crowd)
    T, D, G = len(iou_thrs), d_boxes.shape[0], g_boxes.shape[0]
    gtm = np.zeros((T, G), dtype=bool)
    dtm = np.zeros((T, D), dtype=bool)
    dt_ig = np.zeros((T, D), dtype=bool)
    for ti, t in enumerate(iou_thrs):
        for di in range(D):
            best = min(t, 1 - 1e-10)
            m = -1
            for gi in range(G):
                if gtm[ti, gi] and not g_crowd[gi]:
                    continue
                if m > -1 and not g_ignore[m] and g_ignore[gi]:
                    break  # only ignored ground truth is left: keep the real match
                if ious[di, gi] < best:
                    continue
                best, m = ious[di, gi], gi
            if m == -1:
                continue
            dt_ig[ti, di] = g_ignore[m]
            dtm[ti, di] = True
            gtm[ti, m] = True
    outside = (d_area < area_rng[0]) | (d_area > area_rng[1])
    dt_ig |= ~dtm & outside[None, :]
    return d_scores, dtm, dt_ig, g_ignore


def _coco(P, T, max_dets, area_ranges):
    iou_thrs = np.linspace(0.5, 0.95, 10)
    rec_thrs = np.linspace(0.0, 1.0, 101)
    classes = np.unique(np.concatenate([t[1] for t in T] + [p[2] for p in P] + [np.zeros(0, np.int64)]))
    A, M, K = len(area_ranges), len(max_dets), len(classes)
    precision = -np.ones((len(iou_thrs), len(rec_thrs), K, A, M))
    recall = -np.ones((len(iou_thrs), K, A, M))
    top = max(max_dets)
    for k, c in enumerate(classes):
        for a, rng in enumerate(area_ranges.values()):
            per_img = []
            for (pb, ps, pl), (tb, tl, crowd, garea) in zip(P, T):
                ds, gs = pl == c, tl == c
                if not ds.any() and not gs.any():
                    continue
                d_area = (pb[ds, 2] - pb[ds, 0]) * (pb[ds, 3] - pb[ds, 1])
                per_img.append(_coco_match(pb[ds], ps[ds], tb[gs], crowd[gs], garea[gs], d_area, rng, iou_thrs, top))
            if not per_img:
                continue
            g_ig = np.concatenate([e[3] for e in per_img])
            npig = int(np.count_nonzero(~g_ig))
            if npig == 0:
                continue
            for m, md in enumerate(max_dets):
                scores = np.concatenate([e[0][:md] for e in per_img])
                order = np.argsort(-scores, kind="mergesort")
                dtm = np.concatenate([e[1][:, :md] for e in per_img], axis=1)[:, order]
                dig = np.concatenate([e[2][:, :md] for e in per_img], axis=1)[:, order]
                tps = np.cumsum(dtm & ~dig, axis=1, dtype=np.float64)
                fps = np.cumsum(~dtm & ~dig, axis=1, dtype=np.float64)
                for t in range(len(iou_thrs)):
                    tp, fp = tps[t], fps[t]
                    nd = tp.size
                    rc = tp / npig
                    pr = tp / (fp + tp + np.spacing(1))
                    recall[t, k, a, m] = rc[-1] if nd else 0
                    pr = np.maximum.accumulate(pr[::-1])[::-1] if nd else pr
                    idx = np.searchsorted(rc, rec_thrs, side="left")
                    q = np.zeros(len(rec_thrs))
                    ok = idx < nd
                    q[ok] = pr[idx[ok]]
                    precision[t, :, k, a, m] = q
    names = list(area_ranges)

    def summarize(ap, iou=None, area="all", md=max(max_dets)):
        a, m = names.index(area), list(max_dets).index(md)
        if ap:
            s = precision[:, :, :, a, m]
            if iou is not None:
                s = s[np.flatnonzero(np.isclose(iou_thrs, iou))]
        else:
            s = recall[:, :, a, m]
        s = s[s > -1]
        return float(np.mean(s)) if s.size else -1.0

    out = {"map": summarize(True)}
    big = max(max_dets)
    out["map_50"] = summarize(True, 0.5, md=big)
    out["map_75"] = summarize(True, 0.75, md=big)
    for area in names:
        if area != "all":
            out[f"map_{area}"] = summarize(True, area=area, md=big)
    for md in max_dets:
        out[f"mar_{md}"] = summarize(False, md=md)
    for area in names:
        if area != "all":
            out[f"mar_{area}"] = summarize(False, area=area, md=big)
    per_class = {}
    for k, c in enumerate(classes):
        s = precision[:, :, k, names.index("all"), list(max_dets).index(big)]
        s = s[s > -1]
        if s.size:
            per_class[int(c)] = float(np.mean(s))
    out["ap_per_class"] = per_class
    out["precision"], out["recall"] = precision, recall
    return out


def mean_average_precision(preds, targets, mode="coco", iou_threshold=0.5, max_dets=(1, 10, 100),
                           area_ranges=None):
    """Mean average precision of detections ``preds`` against ``targets`` (lists of per-image dicts).

    ``mode="voc"``: ``{"map", "ap_per_class"}`` at ``iou_threshold`` (default 0.5) with
    all-point interpolation. ``mode="coco"``: pycocotools' twelve figures as ``map``
    (AP@[.5:.95]), ``map_50``, ``map_75``, ``map_small/medium/large``, ``mar_1/10/100``,
    ``mar_small/medium/large``, plus ``ap_per_class`` and the raw ``precision`` (T, R, K,
    A, M) / ``recall`` (T, K, A, M) arrays (-1 where a category has no ground truth).
    """
    P, T = _prepare(preds, targets)
    if mode == "voc":
        return _voc(P, T, float(iou_threshold))
    if mode == "coco":
        return _coco(P, T, tuple(int(m) for m in max_dets), dict(area_ranges or COCO_AREA_RANGES))
    raise ValueError(f"mean_average_precision: mode must be 'voc' or 'coco', got {mode!r}")
