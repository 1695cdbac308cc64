"""Detection models: anchors, box coder, RPN head, RoI box head, FPN, mask head (shapes and
gradients), the FCOS-style detector's targets, and a brief training run whose mAP@0.5
must rise well above chance."""
import numpy as np
import pytest

import pydl
from pydl.vision import detection as D
from pydl.vision.metrics import mean_average_precision
from pydl.vision.shapes import make_shapes


def test_anchor_generator():
    g = D.AnchorGenerator(sizes=(16, 32), aspect_ratios=(0.5, 1.0, 2.0))
    a = g((3, 4), stride=8)
    assert a.shape == (3 * 4 * 6, 4) and g.num_anchors == 6
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    np.testing.assert_allclose(np.sort(np.unique(np.round(w * h))), [256, 1024], rtol=1e-5)
    np.testing.assert_allclose(((a[:, 0] + a[:, 2]) / 2)[:6], 4.0)  # centred on the first cell


def test_box_coder_round_trip(rng):
    c = D.BoxCoder()
    a = np.abs(rng.standard_normal((20, 4))) * 10
    a[:, 2:] += a[:, :2] + 1
    b = a + rng.standard_normal((20, 4))
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 0.5)
    d = c.encode(b, a)
    np.testing.assert_allclose(c.decode(d, a), b, atol=1e-9)
    np.testing.assert_allclose(c.encode(a, a), 0, atol=1e-12)
    assert np.isfinite(c.decode(np.full((1, 4), 1e4), a[:1])).all()  # dw, dh clipped


def test_two_stage_parts_and_mask_head(rng):
    feats = [pydl.tensor(rng.standard_normal((2, 8, 16, 16)).astype(np.float32), requires_grad=True),
             pydl.tensor(rng.standard_normal((2, 16, 8, 8)).astype(np.float32))]
    fpn = D.FPN([8, 16], 12)
    p = fpn(feats)
    assert [t.shape for t in p] == [(2, 12, 16, 16), (2, 12, 8, 8)]
    rpn = D.RPNHead(12, 3)
    logits, deltas = rpn(p)
    assert logits[0].shape == (2, 3, 16, 16) and deltas[1].shape == (2, 12, 8, 8)
    head = D.RoIBoxHead(12, num_classes=2, spatial_scale=0.25, crop=4, hidden=32)
    props = [pydl.tensor(np.array([[0, 0, 30, 30], [10, 5, 60, 40]], np.float32)),
             pydl.tensor(np.array([[4, 4, 20, 50]], np.float32))]
    scores, box_deltas = head(p[0], props)
    assert scores.shape == (3, 3) and box_deltas.shape == (3, 12)
    mask = D.MaskHead(12, num_classes=2, hidden=8)
    crops = pydl.vision.ops.roi_align(p[0], props, 7, 0.25, 2, aligned=True)
    m = mask(crops)
    assert m.shape == (3, 2, 14, 14)
    (scores.sum() + box_deltas.sum() + m.sum() + logits[0].sum()).backward()
    assert feats[0].grad is not None and np.abs(feats[0].grad.numpy()).sum() > 0


def test_fcos_targets():
    model = D.FCOSDetector(num_classes=2, width=4)
    targets = [{"boxes": np.array([[0, 0, 16, 16], [4, 4, 12, 12]], np.float32), "labels": np.array([0, 1])},
               {"boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, np.int64)}]
    labels, sides = model.targets(targets, (8, 8))
    assert np.all(labels[1] == -1)
    # the centre cells belong to the smaller box (label 1); its sides at cell (1, 1) (centre 6, 6)
    assert labels[0, 1, 1] == 1
    np.testing.assert_allclose(sides[0, :, 1, 1], np.array([2, 2, 6, 6]) / 4)
    assert labels[0, 3, 3] == -1  # far from both centres


def test_fcos_trains_briefly():
    pydl.manual_seed(0)
    rng = np.random.default_rng(0)
    kw = dict(size=32, min_side=6, max_side=16)
    model = D.FCOSDetector(num_classes=2, width=8)
    opt = pydl.optim.Adam(model.parameters(), lr=4e-3)
    vi, vt, _ = make_shapes(24, seed=99, **kw)
    before = mean_average_precision(model.detect(pydl.tensor(vi)), vt, mode="voc")["map"]
    for _ in range(50):
        x, t, _ = make_shapes(16, rng=rng, **kw)
        loss, _ = model.loss(pydl.tensor(x), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    dets = model.detect(pydl.tensor(vi))
    after = mean_average_precision(dets, vt, mode="voc")["map"]
    assert before < 0.05
    assert after > 0.2, after  # chance (random boxes) is ~0
    assert all(d["boxes"].shape[1] == 4 and len(d["boxes"]) <= 100 for d in dets)


def test_example_runs(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "detect_shapes.py"
    spec = importlib.util.spec_from_file_location("detect_shapes_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    voc = mod.main(["--steps", "2", "--width", "4", "--eval-every", "1"])
    assert 0.0 <= voc <= 1.0
    assert "final: mAP@0.5" in capsys.readouterr().out
