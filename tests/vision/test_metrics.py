"""mean_average_precision: hand-computed VOC / COCO cases, and COCO mode against pycocotools
(the `test` extra; skipped where it is missing) on generated detections."""
import contextlib
import io

import numpy as np
import pytest

from pydl.vision.metrics import average_precision_voc, mean_average_precision


def test_voc_hand_case():
    # one class, two ground truths; detections: hit (0.9), miss (0.8), hit (0.7)
    targets = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "labels": [1, 1]}]
    preds = [{"boxes": [[0, 0, 10, 10], [50, 50, 60, 60], [20, 20, 30, 31]], "scores": [0.9, 0.8, 0.7],
              "labels": [1, 1, 1]}]
    # recall 0.5 at precision 1, recall 1 at precision 2/3: AP = 0.5 * 1 + 0.5 * 2/3
    r = mean_average_precision(preds, targets, mode="voc")
    assert r["map"] == pytest.approx(0.5 + 1 / 3)
    assert average_precision_voc(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)


def test_voc_duplicates_and_threshold():
    targets = [{"boxes": [[0, 0, 2, 1]], "labels": [0]}]
    # IoU exactly 0.5 does not match in VOC (strictly above); a duplicate is a false positive
    preds = [{"boxes": [[0, 0, 1, 1], [0, 0, 2, 1], [0, 0, 2, 1]], "scores": [0.9, 0.8, 0.7], "labels": [0, 0, 0]}]
    r = mean_average_precision(preds, targets, mode="voc")
    assert r["map"] == pytest.approx(0.5)  # precision 1/2 at recall 1
    # COCO matches at IoU >= t: the first detection counts at t = 0.5
    c = mean_average_precision(preds[:1] and [{"boxes": [[0, 0, 1, 1]], "scores": [0.9], "labels": [0]}], targets)
    assert c["map_50"] == pytest.approx(1.0)
    assert c["map_75"] == pytest.approx(0.0)


def test_classes_and_empty():
    targets = [{"boxes": [[0, 0, 10, 10]], "labels": [0]}, {"boxes": np.zeros((0, 4)), "labels": []}]
    preds = [{"boxes": [[0, 0, 10, 10]], "scores": [0.5], "labels": [0]},
             {"boxes": [[0, 0, 5, 5]], "scores": [0.9], "labels": [3]}]  # class 3 has no ground truth
    r = mean_average_precision(preds, targets, mode="voc")
    assert r["map"] == 1.0 and set(r["ap_per_class"]) == {0}
    c = mean_average_precision(preds, targets)
    assert c["map"] == pytest.approx(1.0) and c["map_small"] == pytest.approx(1.0)
    assert c["map_large"] == -1.0  # no large ground truth anywhere
    empty = mean_average_precision([{"boxes": np.zeros((0, 4)), "scores": [], "labels": []}],
                                   [{"boxes": np.zeros((0, 4)), "labels": []}])
    assert empty["map"] == -1.0
    with pytest.raises(ValueError, match="mode must be"):
        mean_average_precision(preds, targets, mode="kitti")
    with pytest.raises(ValueError, match="2 predictions for 1 images"):
        mean_average_precision(preds, targets[:1])


def generate(rng, n_images=12, n_classes=3):
    """Ground truth of every size range and noisy detections: jittered copies of the truth
    (some duplicated, some missed), wrong-class and background false positives."""
    preds, targets = [], []
    for _ in range(n_images):
        G = rng.integers(0, 8)
        xy = rng.uniform(0, 400, (G, 2))
        wh = np.exp(rng.uniform(np.log(8), np.log(200), (G, 2)))
        gb = np.concatenate([xy, xy + wh], 1)
        gl = rng.integers(0, n_classes, G)
        crowd = rng.random(G) < 0.1
        boxes, scores, labels = [], [], []
        for b, lab in zip(gb, gl):
            for _ in range(rng.integers(0, 3)):
                j = rng.normal(0, 0.12, 4) * np.r_[b[2] - b[0], b[3] - b[1], b[2] - b[0], b[3] - b[1]]
                nb = b + j
                nb[2:] = np.maximum(nb[2:], nb[:2] + 1)
                boxes.append(nb)
                scores.append(rng.random())
                labels.append(lab if rng.random() < 0.9 else (lab + 1) % n_classes)
        for _ in range(rng.integers(0, 6)):
            p = rng.uniform(0, 450, 2)
            boxes.append(np.r_[p, p + rng.uniform(5, 150, 2)])
            scores.append(rng.random() * 0.6)
            labels.append(rng.integers(0, n_classes))
        preds.append({"boxes": np.array(boxes).reshape(-1, 4), "scores": np.array(scores),
                      "labels": np.array(labels, np.int64)})
        targets.append({"boxes": gb, "labels": gl, "iscrowd": crowd})
    return preds, targets


def coco_eval(preds, targets, max_dets=(1, 10, 100)):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, anns, dets = [], [], []
    aid = 1
    for i, (p, t) in enumerate(zip(preds, targets)):
        images.append({"id": i + 1, "width": 600, "height": 600})
        for b, lab, cr in zip(t["boxes"], t["labels"], t["iscrowd"]):
            w, h = b[2] - b[0], b[3] - b[1]
            anns.append({"id": aid, "image_id": i + 1, "category_id": int(lab) + 1, "bbox": [b[0], b[1], w, h],
                         "area": w * h, "iscrowd": int(cr)})
            aid += 1
        for b, s, lab in zip(p["boxes"], p["scores"], p["labels"]):
            dets.append({"image_id": i + 1, "category_id": int(lab) + 1,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "score": float(s)})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in range(1, 10)]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    p = ev.eval["precision"][:, :, :, 0, -1]  # area all, the largest maxDets
    return ev.stats, float(np.mean(p[p > -1])) if (p > -1).any() else -1.0


KEYS = ["map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10", "mar_100",
        "mar_small", "mar_medium", "mar_large"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_matches_pycocotools(seed):
    rng = np.random.default_rng(seed)
    preds, targets = generate(rng)
    stats, _ = coco_eval(preds, targets)
    ours = mean_average_precision(preds, targets)
    got = np.array([ours[k] for k in KEYS])
    np.testing.assert_allclose(got, stats, atol=1e-3, err_msg=str(dict(zip(KEYS, zip(got, stats)))))


def test_coco_max_dets_matter():
    rng = np.random.default_rng(7)
    preds, targets = generate(rng, n_images=6)
    stats, ap = coco_eval(preds, targets, max_dets=(1, 2, 3))
    ours = mean_average_precision(preds, targets, max_dets=(1, 2, 3))
    # (pycocotools' summary hard-codes maxDets=100 for its AP lines: read its precision array)
    np.testing.assert_allclose([ours[k] for k in ["map", "mar_1", "mar_2", "mar_3"]], [ap, *stats[[6, 7, 8]]],
                               atol=1e-3)
    assert ours["map"] < mean_average_precision(preds, targets)["map"]
