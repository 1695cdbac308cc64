"""A DCGAN-style generator / discriminator pair (Radford et al.), sized for small images.

Generator: z (N, latent_dim) -> linear to (base * 2^n, 4, 4) -> n x [ConvTranspose 4x4 s2,
BatchNorm, ReLU] -> 3x3 conv -> tanh, images in [-1, 1]. Discriminator: n x [conv 4x4 s2,
(BatchNorm), LeakyReLU 0.2] -> linear -> one logit. ``image_size`` = 4 * 2^n (8, 16, 32, ...).
Train with :func:`pydl.generative.discriminator_loss` / :func:`~pydl.generative.generator_loss`.
"""
from .. import nn

__all__ = ["DCGANDiscriminator", "DCGANGenerator"]


def _levels(image_size, op):
    n, s = 0, image_size
    while s > 4 and s % 2 == 0:
        s //= 2
        n += 1
    if s != 4 or n == 0:
        raise ValueError(f"{op}: image_size must be 4 * 2^n with n >= 1 (8, 16, 32, ...), got {image_size}")
    return n


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, channels, image_size, image_size) in [-1, 1].

    >>> g = DCGANGenerator(latent_dim=8, channels=1, image_size=8, base=8)
    >>> g(pydl.randn(2, 8)).shape
    (2, 1, 8, 8)
    """

    def __init__(self, latent_dim=32, channels=1, image_size=8, base=32):
        super().__init__()
        n = _levels(image_size, "DCGANGenerator")
        self.latent_dim = latent_dim
        self.width = base * 2 ** n
        self.project = nn.Sequential(nn.Linear(latent_dim, self.width * 16), nn.ReLU())
        layers = []
        c = self.width
        for _ in range(n):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2),
                       nn.ReLU()]
            c //= 2
        layers += [nn.Conv2d(c, channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(self.project(z).reshape(z.shape[0], self.width, 4, 4))


class DCGANDiscriminator(nn.Module):
    """images (N, channels, image_size, image_size) -> logits (N,) of "real".

    >>> d = DCGANDiscriminator(channels=1, image_size=8, base=8)
    >>> d(pydl.randn(2, 1, 8, 8)).shape
    (2,)
    """

    def __init__(self, channels=1, image_size=8, base=32):
        super().__init__()
        n = _levels(image_size, "DCGANDiscriminator")
        layers, c_in, c = [], channels, base
        for i in range(n):
            layers.append(nn.Conv2d(c_in, c, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(0.2))
            c_in, c = c, c * 2
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * 16, 1))

    def forward(self, x):
        return self.net(x).reshape(x.shape[0])
