"""Train pydl's small fully convolutional network (pydl.vision.segmentation.ShapesFCN) to
label every pixel of the synthetic shapes images as background, rectangle or disc, with
per-pixel cross-entropy, and report the mean IoU on held-out images.

    python examples/segment_shapes.py             # ~ a few minutes on a laptop CPU
    python examples/segment_shapes.py --steps 50  # a quick look

Images: 48 x 48, 1 to 3 non-overlapping shapes with sides 8 to 24 px, batches of 16.
Stated figure (default settings, seed 0): mean IoU above 0.9. Measured: 0.961 after 600
steps in 41 s on a busy 2-core CPU (step 150: 0.488, 300: 0.562, 450: 0.937, 600: 0.961;
telling a disc's inside from a rectangle's is what takes the first few hundred steps).
"""
import argparse
import time

import numpy as np

import pydl
import pydl.nn.functional as F
from pydl.vision.segmentation import ShapesFCN, mean_iou
from pydl.vision.shapes import make_shapes


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--width", type=int, default=12)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=150)
    args = p.parse_args(argv)

    pydl.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    kw = dict(size=args.size, min_side=args.size // 6, max_side=args.size // 2)
    val_x, _, val_y = make_shapes(64, seed=args.seed + 1000, **kw)
    model = ShapesFCN(num_classes=3, width=args.width)
    opt = pydl.optim.Adam(model.parameters(), lr=args.lr)

    def evaluate():
        model.eval()
        with pydl.no_grad():
            pred = model(pydl.tensor(val_x)).numpy().argmax(1)
        model.train()
        return mean_iou(pred, val_y, 3)

    t0 = time.time()
    for step in range(1, args.steps + 1):
        x, _, y = make_shapes(args.batch_size, rng=rng, **kw)
        loss = F.cross_entropy(model(pydl.tensor(x)), pydl.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            print(f"step {step:4d}  {time.time() - t0:6.1f} s  loss {loss.item():.3f}  mIoU {evaluate():.3f}",
                  flush=True)
    miou = evaluate()
    print(f"final: mean IoU {miou:.3f} on 64 held-out images ({time.time() - t0:.0f} s)")
    return miou


if __name__ == "__main__":
    main()
