"""The VAE's loss and the reparameterisation trick.

The cheat sheet: "for grad to flow from the random sample, abstract the randomness to eps":
z = mu + sigma * eps with eps ~ N(0, I), so z is a differentiable function of (mu, sigma).
The loss has two terms: the reconstruction of the input and the KL divergence of
q(z | x) = N(mu, sigma^2) from the prior N(0, I); multiplying the second by beta > 1 is the
disentangling variant (beta-VAE).
"""
import pydl
import pydl.nn.functional as F

__all__ = ["gaussian_kl", "reparameterize", "vae_loss"]


def reparameterize(mu, logvar, eps=None):
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): (N, D), (N, D) -> (N, D).

    ``eps`` may be given (tests, fixed samples); otherwise it is drawn from pydl's generator.

    >>> z = reparameterize(pydl.zeros(2, 3), pydl.zeros(2, 3), eps=pydl.ones(2, 3))
    >>> z.tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"reparameterize: mu {mu.shape} and logvar {logvar.shape} must have the same shape")
    if eps is None:
        eps = pydl.randn(*mu.shape, dtype=mu.dtype)
    return mu + (logvar * 0.5).exp() * eps


def gaussian_kl(mu, logvar):
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample: (N, D) -> (N,).

    KL = 1/2 sum_d (mu_d^2 + sigma_d^2 - log sigma_d^2 - 1).

    >>> gaussian_kl(pydl.zeros(1, 4), pydl.zeros(1, 4)).tolist()
    [0.0]
    """
    return 0.5 * (mu * mu + logvar.exp() - logvar - 1.0).sum(dim=1)


def vae_loss(recon, x, mu, logvar, beta=1.0, reconstruction="bce"):
    """The VAE loss averaged over the batch: reconstruction + beta * KL, and its two terms.

    recon (N, ...) is the decoder's output: logits of Bernoulli pixels for
    ``reconstruction="bce"`` (x in [0, 1]), or the mean of a unit Gaussian for ``"mse"``
    (squared error summed over the pixels, halved). mu, logvar (N, D). Returns
    ``(loss, reconstruction_term, kl_term)``, each a scalar Tensor (sums over the pixels /
    latents, means over the batch).

    >>> loss, rec, kl = vae_loss(pydl.zeros(1, 2), pydl.tensor([[0.0, 1.0]]), pydl.zeros(1, 3), pydl.zeros(1, 3))
    >>> round(loss.item(), 4), kl.item()
    (1.3863, 0.0)
    """
    if recon.shape != x.shape:
        raise ValueError(f"vae_loss: recon {recon.shape} and x {x.shape} must have the same shape")
    if beta < 0:
        raise ValueError(f"vae_loss: beta must be >= 0, got {beta}")
    n = x.shape[0]
    if reconstruction == "bce":
        rec = F.binary_cross_entropy_with_logits(recon, x, reduction="sum") / n
    elif reconstruction == "mse":
        rec = 0.5 * F.mse_loss(recon, x, reduction="sum") / n
    else:
        raise ValueError(f"vae_loss: reconstruction must be 'bce' or 'mse', got {reconstruction!r}")
    kl = gaussian_kl(mu, logvar).mean()
    return rec + beta * kl, rec, kl
