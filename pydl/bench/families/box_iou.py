"""box_iou: the N x M IoU matrix of two box sets, float32, against torchvision's box_iou."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch
from .nms import boxes_and_scores, torchvision

SHAPES = [(100, 100), (1000, 1000), (4000, 4000)]
QUICK = [(7, 33)]

ISSUE_TORCHVISION_MS = {(1000, 1000): 5.0}  # issue 7's figure, not measured in this run


def case(shape):
    n, m = shape
    box_iou = kernel("box_iou")
    a, _ = boxes_and_scores(n, seed=1)  # (N, 4)
    b, _ = boxes_and_scores(m, seed=2)  # (M, 4)
    run = {"pydl": lambda: box_iou(a, b)}
    ref = reference_kernel("box_iou")
    notes = ["box_iou: boxes as in the nms family, float32; GB/s counts the (N, M) float32 output written."]
    if ref is not None and n * m <= 1 << 22:
        run["reference"] = lambda: ref(a, b)
    tv = torchvision()
    if tv is not None:
        tmod, tvops = tv
        ta, tb = tmod.from_numpy(a), tmod.from_numpy(b)
        run["torch"] = lambda: tvops.box_iou(ta, tb)
        notes.append("torch = torchvision.ops.box_iou.")
    else:
        t = torch()
        if t is not None:  # torchvision's box_iou is these torch operations (ops/boxes.py)
            ta, tb = t.from_numpy(a), t.from_numpy(b)

            def torchvision_formula():
                area1 = (ta[:, 2] - ta[:, 0]) * (ta[:, 3] - ta[:, 1])
                area2 = (tb[:, 2] - tb[:, 0]) * (tb[:, 3] - tb[:, 1])
                lt = t.max(ta[:, None, :2], tb[:, :2])
                rb = t.min(ta[:, None, 2:], tb[:, 2:])
                wh = (rb - lt).clamp(min=0)
                inter = wh[:, :, 0] * wh[:, :, 1]
                return inter / (area1[:, None] + area2 - inter)
            run["torch"] = torchvision_formula
            notes.append("torchvision not importable: the torch row runs torchvision's box_iou "
                         "code (torch operations) in this process.")
        if shape in ISSUE_TORCHVISION_MS:
            notes.append(f"issue 7 quotes torchvision at {ISSUE_TORCHVISION_MS[shape]} ms for {n}x{m} on the "
                         "project machine (not measured in this run).")
    return Case(f"{n}x{m}", run, expected=lambda: (ref or box_iou)(a.astype(np.float64), b.astype(np.float64)),
                bytes=4.0 * n * m, notes=notes)
