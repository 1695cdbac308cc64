"""SimCLR on the 8x8 handwritten digits: a small conv encoder trained without labels with
NT-Xent over two augmented views, judged by a linear probe against the same encoder left at
its random initialisation (and raw pixels).

    pip install ".[data]" && python examples/simclr_digits.py [OUT_DIR] [--quick]

Writes simclr_views.png (pairs of views) and, with matplotlib, simclr_tsne.png.
"""
import os
import sys
import time

import numpy as np

import pydl
import pydl.nn as nn
from pydl.data import Digits
from pydl.ssl import extract_features, linear_probe, nt_xent, simclr_augment
from pydl.viz import image_grid, save_png, scatter_plot, tsne

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "pydl-example/simclr"
quick = "--quick" in sys.argv
os.makedirs(out, exist_ok=True)
pydl.manual_seed(0)
rng = np.random.default_rng(0)

x_train, y_train = Digits(train=True).arrays()
x_test, y_test = Digits(train=False).arrays()


def encoder():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())


few = np.concatenate([np.nonzero(y_train == c)[0][:10] for c in range(10)])   # 10 labelled images per class


def probe(enc=None):
    """Linear-probe test accuracy with all 1,438 training labels and with 10 per class."""
    ftr = x_train.reshape(len(x_train), -1) if enc is None else extract_features(enc, x_train)
    fte = x_test.reshape(len(x_test), -1) if enc is None else extract_features(enc, x_test)
    return linear_probe(ftr, y_train, fte, y_test), linear_probe(ftr[few], y_train[few], fte, y_test)


random_acc = probe(encoder())
pixel_acc = probe()

enc = encoder()
head = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32))   # the projection head (dropped after)
params = list(enc.parameters()) + list(head.parameters())
epochs, batch = (8 if quick else 40), 256
opt = pydl.optim.Adam(params, lr=3e-3, weight_decay=1e-5)
t0 = time.time()
for epoch in range(epochs):
    perm = rng.permutation(len(x_train))
    losses = []
    for i in range(0, len(perm) - batch + 1, batch):
        x = x_train[perm[i:i + batch]]
        v1, v2 = simclr_augment(x, rng), simclr_augment(x, rng)          # two augmentations of each image
        z1, z2 = head(enc(pydl.tensor(v1))), head(enc(pydl.tensor(v2)))
        loss = nt_xent(z1, z2, temperature=0.5)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    if epoch % 5 == 0 or epoch == epochs - 1:
        print(f"epoch {epoch + 1:3d}  NT-Xent {np.mean(losses):.3f}  ({time.time() - t0:.0f} s)")

simclr_acc = probe(enc)
for name, acc in (("SimCLR encoder", simclr_acc), ("random encoder", random_acc), ("raw pixels", pixel_acc)):
    print(f"linear probe test accuracy, {name:15s}: all labels {acc[0] * 100:5.1f} %, 10 labels/class "
          f"{acc[1] * 100:5.1f} %")

views = simclr_augment(x_test[:12], rng), simclr_augment(x_test[:12], rng)
save_png(os.path.join(out, "simclr_views.png"), image_grid(np.concatenate([x_test[:12], *views]), nrow=12,
                                                           normalize=None), scale=4)
try:
    emb = tsne(extract_features(enc, x_test), seed=0)
    scatter_plot(emb, y_test, os.path.join(out, "simclr_tsne.png"), "t-SNE of SimCLR features (test digits)")
except ImportError as e:
    print(f"(no t-SNE plot: {e})")
print(f"PNGs in {out}/")
