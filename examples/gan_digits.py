"""A DCGAN-style GAN on the 8x8 handwritten digits: the two-term discriminator loss and the
non-saturating generator loss, alternating one step each.

    pip install ".[data]" && python examples/gan_digits.py [OUT_DIR] [--quick]

Writes gan_samples.png (a fixed set of latents, at the end) and gan_progress.png (the same
latents through training).
"""
import os
import sys
import time

import numpy as np

import pydl
from pydl.data import Digits
from pydl.generative import discriminator_loss, generator_loss
from pydl.models.gan import DCGANDiscriminator, DCGANGenerator
from pydl.viz import image_grid, save_png

args = [a for a in sys.argv[1:] if not a.startswith("--")]
out = args[0] if args else "pydl-example/gan"
quick = "--quick" in sys.argv
os.makedirs(out, exist_ok=True)
pydl.manual_seed(0)
rng = np.random.default_rng(0)

x_train, _ = Digits(train=True).arrays()
x_train = x_train * 2 - 1                                # the generator ends in tanh
latent = 32
G = DCGANGenerator(latent_dim=latent, channels=1, image_size=8, base=32)
D = DCGANDiscriminator(channels=1, image_size=8, base=32)
opt_g = pydl.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
opt_d = pydl.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
fixed_z = pydl.randn(64, latent)
epochs, batch = (10 if quick else 60), 64
progress = []
t0 = time.time()
for epoch in range(epochs):
    perm = rng.permutation(len(x_train))
    for i in range(0, len(perm) - batch + 1, batch):
        real = pydl.tensor(x_train[perm[i:i + batch]])
        # discriminator: -[log D(x) + log(1 - D(G(z)))]
        fake = G(pydl.randn(batch, latent))
        d_loss = discriminator_loss(D(real), D(fake.detach()))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        # generator: the non-saturating -log D(G(z))
        g_loss = generator_loss(D(fake))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    if epoch % max(epochs // 6, 1) == 0 or epoch == epochs - 1:
        G.eval()
        with pydl.no_grad():
            progress.append(G(fixed_z[:10]).numpy())
        G.train()
        print(f"epoch {epoch + 1:3d}  D loss {d_loss.item():.3f}  G loss {g_loss.item():.3f}  "
              f"({time.time() - t0:.0f} s)")

G.eval()
D.eval()
with pydl.no_grad():
    samples = G(fixed_z).numpy()
    d_real = pydl.sigmoid(D(pydl.tensor(x_train[:256]))).numpy().mean()
    d_fake = pydl.sigmoid(D(G(pydl.randn(256, latent)))).numpy().mean()
to01 = lambda a: (np.clip(a, -1, 1) + 1) / 2  # noqa: E731
save_png(os.path.join(out, "gan_samples.png"), image_grid(to01(samples), nrow=8, normalize=None), scale=4)
save_png(os.path.join(out, "gan_progress.png"), image_grid(to01(np.concatenate(progress)), nrow=10, normalize=None),
         scale=4)
print(f"mean D(real) {d_real:.2f}, mean D(G(z)) {d_fake:.2f}; {time.time() - t0:.0f} s; PNGs in {out}/")
