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


# GPU cases (pydl bench --device cuda): the canonical 1000 x 1000 and a larger matrix.
CUDA_SHAPES = [(1000, 1000), (4000, 4000)]
CUDA_QUICK = [(7, 33)]


def cuda_case(shape):
    from .. import gpu

    n, m = shape
    box_iou = gpu.kernel("box_iou")
    a, _ = boxes_and_scores(n, seed=1)  # (N, 4)
    b, _ = boxes_and_scores(m, seed=2)  # (M, 4)
    ca, cb = gpu.to_gpu(a, b)
    run = {"pydl": lambda: box_iou(ca, cb)}
    notes = ["GPU box_iou: boxes as in the nms family, float32; GB/s counts the (N, M) float32 output written."]
    tv, t = torchvision(), gpu.torch_cuda()
    if tv is not None and t is not None:
        ta, tb = t.from_dlpack(ca), t.from_dlpack(cb)
        run["torch"] = lambda: tv[1].box_iou(ta, tb)
        notes.append("torch = torchvision.ops.box_iou on CUDA tensors.")
    truth = reference_kernel("box_iou")
    return Case(f"{n}x{m}", run, lambda: truth(a.astype(np.float64), b.astype(np.float64)), bytes=4.0 * n * m,
                notes=notes)
