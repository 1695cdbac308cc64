"""What did LeNet-5 learn on the digits? First-layer filters, saliency, guided backprop,
Grad-CAM, occlusion, class visualisation, feature inversion, t-SNE / PCA of its features,
nearest neighbours, and how FGSM and random noise change its accuracy.

    pip install ".[data,viz]" && python examples/understand_lenet.py [OUT_DIR] [--quick]

Grids are written as PNG by pydl itself; the heat-map overlays and scatter plots need matplotlib.
"""
import os
import sys
import time

import numpy as np

import pydl
import pydl.nn.functional as F
from pydl.data import Digits
from pydl.models import LeNet5
from pydl.viz import (accuracy, activation_maps, class_visualization, feature_inversion, fgsm, filter_grid, grad_cam,
                      guided_backprop, image_grid, iterative_fgsm, nearest_neighbors, noise_robustness, occlusion,
                      pca, saliency, save_png, scatter_plot, show_heatmaps, tsne)

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "pydl-example/understand"
quick = "--quick" in sys.argv
os.makedirs(out, exist_ok=True)
pydl.manual_seed(0)
rng = np.random.default_rng(0)
path = lambda name: os.path.join(out, name)  # noqa: E731

x_train, y_train = Digits(train=True, size=28).arrays()     # (1438, 1, 28, 28) in [0, 1]
x_test, y_test = Digits(train=False, size=28).arrays()

# ---- train LeNet-5 (pixels in [0, 1], so attacks can clip to the valid range)
model = LeNet5()
opt = pydl.optim.Adam(model.parameters(), lr=1e-3)
t0 = time.time()
for epoch in range(2 if quick else 5):
    perm = rng.permutation(len(x_train))
    for i in range(0, len(perm), 64):
        idx = perm[i:i + 64]
        loss = F.cross_entropy(model(pydl.tensor(x_train[idx])), pydl.tensor(y_train[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy(model, x_test, y_test) * 100:.1f} % "
          f"({time.time() - t0:.0f} s)")
model.eval()
clean = accuracy(model, x_test, y_test)

# ---- first-layer filters
save_png(path("filters_conv1.png"), filter_grid(model.conv1.weight, nrow=10), scale=8)

# ---- attributions for one test image of each class
pick = np.array([np.nonzero(y_test == c)[0][0] for c in range(10)])
xs, ys = x_test[pick], y_test[pick]
sal = saliency(model, xs, ys)
gb = guided_backprop(model, xs, ys)
cam = grad_cam(model, model.relu2, xs, ys)                  # on the last conv layer's maps (14 x 14)
occ = occlusion(model, xs, ys, patch=7, stride=7)           # 4 x 4 positions
save_png(path("saliency.png"), image_grid(np.concatenate([xs, sal[:, None], np.maximum(gb, 0)]), nrow=10,
                                          normalize="each"), scale=3)
try:
    show_heatmaps(xs, cam, path("grad_cam.png"), titles=[f"class {c}" for c in ys])
    show_heatmaps(xs, occ, path("occlusion.png"), titles=[f"class {c}" for c in ys])
except ImportError as e:
    print(f"(heat-map overlays skipped: {e})")

# ---- class visualisation and feature inversion
vis = [class_visualization(model, c, (1, 28, 28), steps=60 if quick else 150, lr=0.1, l2_reg=1e-2,
                           blur_every=10, blur_sigma=0.6, clip=(0, 1))[0] for c in range(10)]
save_png(path("class_visualization.png"), image_grid(np.stack(vis), nrow=10, normalize="each"), scale=3)
inv = [feature_inversion(model, layer, xs[3], steps=100 if quick else 300, lr=0.05, tv_reg=1e-2)[0]
       for layer in (model.relu1, model.relu2, model.relu3)]
save_png(path("feature_inversion.png"), image_grid(np.stack([xs[3]] + inv), nrow=4, normalize="each"), scale=4)

# ---- the feature space (fc1's 500 activations): PCA, t-SNE, nearest neighbours
feats = activation_maps(model, model.relu3, x_test)
try:
    scatter_plot(pca(feats, 2), y_test, path("features_pca.png"), "PCA of LeNet-5 fc1 features")
    scatter_plot(tsne(feats, seed=0), y_test, path("features_tsne.png"), "t-SNE of LeNet-5 fc1 features")
except ImportError as e:
    print(f"(scatter plots skipped: {e})")
queries = pick[:5]
nn_feat = nearest_neighbors(feats[queries], feats, k=6)
nn_pix = nearest_neighbors(x_test[queries].reshape(5, -1), x_test.reshape(len(x_test), -1), k=6)
save_png(path("nearest_neighbours.png"), image_grid(np.concatenate([x_test[nn_feat.ravel()], x_test[nn_pix.ravel()]]),
                                                    nrow=6, normalize=None), scale=2)
nn_agree = float((y_test[nearest_neighbors(feats, feats, k=2)[:, 1]] == y_test).mean())

# ---- adversarial examples and robustness
print(f"clean test accuracy {clean * 100:.1f} %; 1-NN in feature space agrees with the label on "
      f"{nn_agree * 100:.1f} % of the test digits")
for eps in (0.05, 0.1, 0.2):
    adv = fgsm(model, x_test, y_test, eps, clip=(0, 1))
    it = iterative_fgsm(model, x_test, y_test, eps, steps=10, clip=(0, 1))
    print(f"eps {eps:.2f}: FGSM accuracy {accuracy(model, adv, y_test) * 100:5.1f} %, iterative FGSM (10 steps) "
          f"{accuracy(model, it, y_test) * 100:5.1f} %")
adv = fgsm(model, xs, ys, 0.1, clip=(0, 1))
save_png(path("fgsm.png"), image_grid(np.concatenate([xs, adv, (adv - xs) * 5 + 0.5]), nrow=10, normalize=None),
         scale=3)
robust = noise_robustness(model, x_test, y_test, sigmas=(0.0, 0.1, 0.2, 0.4), clip=(0, 1))
print("random Gaussian noise: " + ", ".join(f"sigma {s:.1f} -> {a * 100:.1f} %" for s, a in robust.items()))
print(f"{time.time() - t0:.0f} s; PNGs in {out}/: {', '.join(sorted(os.listdir(out)))}")
