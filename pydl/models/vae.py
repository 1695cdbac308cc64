"""A fully-connected variational autoencoder (Kingma & Welling).

Encoder: x -> (mu, logvar) of q(z | x) = N(mu, exp(logvar)); z = mu + sigma * eps (the
reparameterisation trick, :func:`pydl.generative.reparameterize`); decoder: z -> logits of
Bernoulli pixels. Train with :func:`pydl.generative.vae_loss` (``beta`` > 1: beta-VAE).
"""
import pydl
from .. import nn
from ..generative.vae import reparameterize
from .autoencoder import mlp

__all__ = ["VAE"]


class VAE(nn.Module):
    """(N, in_features) or (N, C, H, W) -> (reconstruction logits of x's shape, mu, logvar).

    >>> vae = VAE(64, hidden=(32,), latent_dim=2)
    >>> recon, mu, logvar = vae(pydl.rand(3, 1, 8, 8))
    >>> recon.shape, mu.shape
    ((3, 1, 8, 8), (3, 2))
    """

    def __init__(self, in_features=64, hidden=(256, 128), latent_dim=8):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(mlp([in_features, *hidden]), nn.ReLU())
        self.to_mu = nn.Linear(hidden[-1], latent_dim)
        self.to_logvar = nn.Linear(hidden[-1], latent_dim)
        self.decoder = mlp([latent_dim, *hidden[::-1], in_features])

    def encode(self, x):
        h = self.encoder(x.reshape(x.shape[0], -1))
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar) if self.training else mu
        return self.decode(z).reshape(x.shape), mu, logvar

    def sample(self, n):
        """n images from the prior: decode z ~ N(0, I); returns pixel probabilities (n, in_features)."""
        with pydl.no_grad():
            return self.decode(pydl.randn(n, self.latent_dim)).sigmoid()
