"""Segmentation: mean IoU against hand counts, the FCN's shapes and every up/down-sampling
path carrying gradient, and a brief training run on the synthetic shapes."""
import numpy as np

import pydl
import pydl.nn.functional as F
from pydl.vision.segmentation import ShapesFCN, confusion_matrix, mean_iou
from pydl.vision.shapes import make_shapes


def test_mean_iou_by_hand():
    pred = np.array([0, 0, 1, 1, 2, 2])
    true = np.array([0, 1, 1, 1, 2, 0])
    # class 0: 1 / 3, class 1: 2 / 3, class 2: 1 / 2
    assert mean_iou(pred, true, 3) == np.mean([1 / 3, 2 / 3, 1 / 2])
    assert confusion_matrix(pred, true, 3).sum() == 6
    assert mean_iou(np.array([0, 0]), np.array([0, 0]), 3) == 1.0  # absent classes left out
    assert confusion_matrix(pred, np.array([0, 1, 1, 1, 2, 255]), 3).sum() == 5  # ignored label


def test_fcn_shapes_and_gradients():
    m = ShapesFCN(3, width=4)
    x = pydl.tensor(np.random.default_rng(0).standard_normal((2, 3, 16, 24)).astype(np.float32))
    y = m(x)
    assert y.shape == (2, 3, 16, 24)
    F.cross_entropy(y, pydl.tensor(np.zeros((2, 16, 24), np.int64))).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name


def test_fcn_trains_briefly():
    pydl.manual_seed(0)
    rng = np.random.default_rng(0)
    kw = dict(size=32, min_side=10, max_side=16)
    m = ShapesFCN(3, width=8)
    opt = pydl.optim.Adam(m.parameters(), lr=5e-3)
    vx, _, vy = make_shapes(16, seed=5, **kw)
    for _ in range(100):
        x, _, y = make_shapes(16, rng=rng, **kw)
        loss = F.cross_entropy(m(pydl.tensor(x)), pydl.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with pydl.no_grad():
        pred = m(pydl.tensor(vx)).numpy().argmax(1)
    # all-background scores ~0.28 (one class of three right); a model that sees shapes: well above
    # (it reaches ~0.55-0.65 here; telling discs from rectangles takes longer training)
    miou = mean_iou(pred, vy, 3)
    assert miou > 0.45, miou


def test_example_runs(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "segment_shapes.py"
    spec = importlib.util.spec_from_file_location("segment_shapes_example", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    miou = mod.main(["--steps", "2", "--width", "4", "--eval-every", "1"])
    assert 0.0 <= miou <= 1.0
    assert "final: mean IoU" in capsys.readouterr().out
