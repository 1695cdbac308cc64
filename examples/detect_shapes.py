"""Train pydl's single-stage detector (FCOS-style, pydl.vision.detection.FCOSDetector) to
find coloured rectangles and discs on noise, generated on the fly, and report mAP.

    python examples/detect_shapes.py            # ~ a few minutes on a laptop CPU
    python examples/detect_shapes.py --steps 50 # a quick look

Each step draws a fresh batch of 16 images of 48 x 48 (1 to 3 non-overlapping shapes, sides
8 to 24 px); the score is on 64 held-out images: VOC mAP@0.5 and COCO mAP@[.5:.95].

Stated figure (default settings, seed 0): mAP@0.5 above 0.95. Measured: 0.995 (COCO
mAP@[.5:.95] 0.839) after 800 steps in 174 s on a busy 2-core CPU; the run prints
step  200 mAP@0.5 0.570, step 400 0.679, step 600 0.981, step 800 0.995.
"""
import argparse
import math
import time

import numpy as np

import pydl
from pydl.vision.detection import FCOSDetector
from pydl.vision.metrics import mean_average_precision
from pydl.vision.shapes import CLASSES, make_shapes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=200)
    args = p.parse_args(argv)

    pydl.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    shape_kw = dict(size=args.size, min_side=args.size // 6, max_side=args.size // 2)
    val_images, val_targets, _ = make_shapes(64, seed=args.seed + 1000, **shape_kw)
    model = FCOSDetector(num_classes=len(CLASSES), width=args.width)
    opt = pydl.optim.Adam(model.parameters(), lr=args.lr)

    def evaluate():
        dets = model.detect(pydl.tensor(val_images))
        return (mean_average_precision(dets, val_targets, mode="voc")["map"],
                mean_average_precision(dets, val_targets)["map"])

    t0 = time.time()
    for step in range(1, args.steps + 1):
        for g in opt.param_groups:  # cosine decay to 5 % of the initial rate
            g["lr"] = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        images, targets, _ = make_shapes(args.batch_size, rng=rng, **shape_kw)
        loss, parts = model.loss(pydl.tensor(images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            voc, coco = evaluate()
            print(f"step {step:4d}  {time.time() - t0:6.1f} s  loss cls {parts['cls']:.3f} box {parts['box']:.3f}"
                  f"  mAP@0.5 {voc:.3f}  mAP@[.5:.95] {coco:.3f}", flush=True)
    voc, coco = evaluate()
    print(f"final: mAP@0.5 {voc:.3f}, COCO mAP@[.5:.95] {coco:.3f} on 64 held-out images "
          f"({time.time() - t0:.0f} s)")
    return voc


if __name__ == "__main__":
    main()
