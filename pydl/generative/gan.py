"""GAN losses, on the discriminator's logits.

The cheat sheet: "1st term: the discriminator discerns the real image, 2nd term: the
discriminator discerns the generated image (log-likelihood)":

    max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]

written as a loss to minimise with D = sigmoid(logit). The generator's minimax term
log(1 - D(G(z))) has vanishing gradient when D rejects the fakes confidently (early in
training), so the generator minimises the non-saturating -log D(G(z)) instead.
"""
import pydl.nn.functional as F

__all__ = ["discriminator_loss", "generator_loss"]


def discriminator_loss(real_logits, fake_logits):
    """-(mean log D(x) + mean log(1 - D(G(z)))): logits (N,) or (N, 1) -> scalar.

    >>> import pydl
    >>> round(discriminator_loss(pydl.zeros(4), pydl.zeros(4)).item(), 4)  # D = 1/2 everywhere: 2 log 2
    1.3863
    """
    real = F.binary_cross_entropy_with_logits(real_logits, real_logits.detach() * 0 + 1)
    fake = F.binary_cross_entropy_with_logits(fake_logits, fake_logits.detach() * 0)
    return real + fake


def generator_loss(fake_logits, saturating=False):
    """Non-saturating -mean log D(G(z)) (default), or the minimax mean log(1 - D(G(z))).

    >>> import pydl
    >>> round(generator_loss(pydl.zeros(4)).item(), 4)
    0.6931
    """
    if saturating:
        return -F.binary_cross_entropy_with_logits(fake_logits, fake_logits.detach() * 0)
    return F.binary_cross_entropy_with_logits(fake_logits, fake_logits.detach() * 0 + 1)
