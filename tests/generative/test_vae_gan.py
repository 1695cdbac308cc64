"""VAE (reparameterisation, loss terms against their formulas), GAN losses, the model shapes."""
import doctest

import numpy as np
import pytest

import pydl
import pydl.generative as G
from pydl.models.autoencoder import Autoencoder
from pydl.models.gan import DCGANDiscriminator, DCGANGenerator
from pydl.models.vae import VAE


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_reparameterize_formula_and_gradient(rng):
    mu = pydl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    logvar = pydl.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    eps = pydl.tensor(rng.standard_normal((3, 4)))
    z = G.reparameterize(mu, logvar, eps)
    m, lv, e = mu.detach().numpy(), logvar.detach().numpy(), eps.numpy()
    np.testing.assert_allclose(z.detach().numpy(), m + np.exp(lv / 2) * e, rtol=1e-12)
    z.sum().backward()
    np.testing.assert_allclose(mu.grad.detach().numpy(), 1.0)
    np.testing.assert_allclose(logvar.grad.numpy(), 0.5 * np.exp(lv / 2) * e, rtol=1e-12)
    with pytest.raises(ValueError, match="same shape"):
        G.reparameterize(pydl.zeros(2, 3), pydl.zeros(3, 2))


def test_reparameterize_moments():
    pydl.manual_seed(0)
    z = G.reparameterize(pydl.full((20000, 1), 2.0), pydl.full((20000, 1), np.log(0.25))).detach().numpy()
    assert z.mean() == pytest.approx(2.0, abs=0.02) and z.std() == pytest.approx(0.5, rel=0.03)


def test_vae_loss_terms(rng):
    x = rng.uniform(size=(5, 6))
    logits = rng.standard_normal((5, 6))
    mu, logvar = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    T = pydl.tensor
    for beta in (1.0, 4.0):
        loss, rec, kl = G.vae_loss(T(logits), T(x), T(mu), T(logvar), beta=beta)
        p = _sigmoid(logits)
        rec_np = -(x * np.log(p) + (1 - x) * np.log(1 - p)).sum() / 5
        kl_np = (0.5 * (mu ** 2 + np.exp(logvar) - logvar - 1).sum(1)).mean()
        assert rec.item() == pytest.approx(rec_np, rel=1e-9)
        assert kl.item() == pytest.approx(kl_np, rel=1e-9)
        assert loss.item() == pytest.approx(rec_np + beta * kl_np, rel=1e-9)
    _, rec, _ = G.vae_loss(T(logits), T(x), T(mu), T(logvar), reconstruction="mse")
    assert rec.item() == pytest.approx(0.5 * ((logits - x) ** 2).sum() / 5, rel=1e-9)
    with pytest.raises(ValueError, match="reconstruction"):
        G.vae_loss(T(logits), T(x), T(mu), T(logvar), reconstruction="l1")
    with pytest.raises(ValueError, match="beta"):
        G.vae_loss(T(logits), T(x), T(mu), T(logvar), beta=-1)


def test_gan_losses(rng):
    r, f = rng.standard_normal(7), rng.standard_normal(7)
    d = G.discriminator_loss(pydl.tensor(r), pydl.tensor(f)).item()
    assert d == pytest.approx(-(np.log(_sigmoid(r)).mean() + np.log(1 - _sigmoid(f)).mean()), rel=1e-9)
    g = G.generator_loss(pydl.tensor(f)).item()
    assert g == pytest.approx(-np.log(_sigmoid(f)).mean(), rel=1e-9)
    gs = G.generator_loss(pydl.tensor(f), saturating=True).item()
    assert gs == pytest.approx(np.log(1 - _sigmoid(f)).mean(), rel=1e-9)
    # non-saturating: a confident discriminator (D(G(z)) ~ 0) still gives the generator a gradient
    fake = pydl.tensor(np.full(4, -10.0), requires_grad=True)
    G.generator_loss(fake).backward()
    ns = np.abs(fake.grad.detach().numpy()).max()
    fake2 = pydl.tensor(np.full(4, -10.0), requires_grad=True)
    G.generator_loss(fake2, saturating=True).backward()
    assert ns > 1000 * np.abs(fake2.grad.detach().numpy()).max()


def test_models_forward_backward():
    pydl.manual_seed(0)
    ae = Autoencoder(64, hidden=(16,), latent_dim=3)
    x = pydl.rand(4, 1, 8, 8)
    assert ae(x).shape == (4, 1, 8, 8) and ae.encode(x).shape == (4, 3)
    vae = VAE(64, hidden=(16,), latent_dim=2)
    recon, mu, logvar = vae(x)
    loss, _, _ = G.vae_loss(recon, x, mu, logvar)
    loss.backward()
    assert all(p.grad is not None for p in vae.parameters())
    assert vae.sample(5).shape == (5, 64)
    for size in (8, 16):
        g = DCGANGenerator(latent_dim=6, channels=1, image_size=size, base=4)
        d = DCGANDiscriminator(channels=1, image_size=size, base=4)
        img = g(pydl.randn(3, 6))
        assert img.shape == (3, 1, size, size) and np.abs(img.detach().numpy()).max() <= 1
        out = d(img)
        assert out.shape == (3,)
        G.generator_loss(out).backward()
    with pytest.raises(ValueError, match="image_size"):
        DCGANGenerator(image_size=12)


def test_docstrings():
    import pydl.generative.diffusion, pydl.generative.gan, pydl.generative.vae  # noqa: E401
    import pydl.models.autoencoder, pydl.models.gan, pydl.models.vae, pydl.models.unet, pydl.models.dit  # noqa
    import pydl.models.made, pydl.models.realnvp  # noqa: E401
    for mod in (pydl.generative.diffusion, pydl.generative.gan, pydl.generative.vae, pydl.models.autoencoder,
                pydl.models.gan, pydl.models.vae, pydl.models.unet, pydl.models.dit, pydl.models.made,
                pydl.models.realnvp):
        r = doctest.testmod(mod, extraglobs={"pydl": pydl, "np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert r.failed == 0, mod.__name__
