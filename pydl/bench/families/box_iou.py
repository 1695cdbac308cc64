"""box_iou: the N x M IoU matrix of two box sets, float32, against torchvision's box_iou."""
import numpy as np

from ..harness import Case, kernel, reference_kernel
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
        torch, tvops = tv
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        run["torchvision"] = lambda: tvops.box_iou(ta, tb)
    elif shape in ISSUE_TORCHVISION_MS:
        notes.append(f"torchvision not importable here: issue 7 quotes {ISSUE_TORCHVISION_MS[shape]} ms for "
                     f"{n}x{m} on the project machine (not measured in this run).")
    return Case(f"{n}x{m}", run, expected=lambda: (ref or box_iou)(a.astype(np.float64), b.astype(np.float64)),
                bytes=4.0 * n * m, notes=notes)
