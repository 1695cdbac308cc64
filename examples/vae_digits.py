"""A VAE on the 8x8 handwritten digits: samples from the prior, reconstructions and a latent
interpolation, written as PNG grids.

    pip install ".[data]" && python examples/vae_digits.py [OUT_DIR] [--quick]
"""
import os
import sys
import time

import numpy as np

import pydl
from pydl.data import Digits
from pydl.generative import vae_loss
from pydl.models.vae import VAE
from pydl.viz import image_grid, save_png

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "pydl-example/vae"
quick = "--quick" in sys.argv
os.makedirs(out, exist_ok=True)
pydl.manual_seed(0)
rng = np.random.default_rng(0)

x_train, _ = Digits(train=True).arrays()            # (1438, 1, 8, 8) in [0, 1]
x_test, y_test = Digits(train=False).arrays()
epochs, batch, beta = (15 if quick else 60), 64, 1.0
model = VAE(64, hidden=(256, 128), latent_dim=8)
opt = pydl.optim.Adam(model.parameters(), lr=2e-3)

t0 = time.time()
for epoch in range(epochs):
    perm = rng.permutation(len(x_train))
    totals = np.zeros(3)
    for i in range(0, len(perm), batch):
        x = pydl.tensor(x_train[perm[i:i + batch]])
        recon, mu, logvar = model(x)
        loss, rec, kl = vae_loss(recon, x, mu, logvar, beta=beta)
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals += np.array([loss.item(), rec.item(), kl.item()]) * len(x)
    if epoch % 10 == 0 or epoch == epochs - 1:
        l, r, k = totals / len(perm)
        print(f"epoch {epoch + 1:3d}  loss {l:7.2f}  reconstruction {r:7.2f}  KL {k:6.2f}")

model.eval()
with pydl.no_grad():
    xt = pydl.tensor(x_test)
    recon, mu, logvar = model(xt)
    test_loss, test_rec, test_kl = (v.item() for v in vae_loss(recon, xt, mu, logvar))
    samples = model.sample(64).numpy().reshape(64, 1, 8, 8)
    recon_img = recon.sigmoid().numpy()[:16]
    # a straight line in latent space between two test digits of different classes
    a, b = int(np.nonzero(y_test == 0)[0][0]), int(np.nonzero(y_test == 7)[0][0])
    za, zb = mu.numpy()[a], mu.numpy()[b]
    line = np.stack([(1 - s) * za + s * zb for s in np.linspace(0, 1, 10)]).astype(np.float32)
    interp = model.decode(pydl.tensor(line)).sigmoid().numpy().reshape(10, 1, 8, 8)
save_png(os.path.join(out, "vae_samples.png"), image_grid(samples, nrow=8, normalize=None), scale=4)
save_png(os.path.join(out, "vae_reconstructions.png"),
         image_grid(np.concatenate([x_test[:16], recon_img]), nrow=16, normalize=None), scale=4)
save_png(os.path.join(out, "vae_interpolation.png"), image_grid(interp, nrow=10, normalize=None), scale=4)
print(f"test: loss {test_loss:.2f} (reconstruction {test_rec:.2f} + KL {test_kl:.2f}) nats per image; "
      f"{time.time() - t0:.0f} s; wrote vae_samples.png, vae_reconstructions.png, vae_interpolation.png to {out}/")
