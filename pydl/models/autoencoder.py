"""A fully-connected autoencoder: compress to a small code, reconstruct from it.

The lecture's starting point for self-supervised features ("start with an autoencoder, then
fine-tune"): the encoder is trained only to make the reconstruction right.
"""
from .. import nn

__all__ = ["Autoencoder"]


def mlp(sizes, final_activation=None):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if final_activation is not None:
        layers.append(final_activation)
    return nn.Sequential(*layers)


class Autoencoder(nn.Module):
    """(N, in_features) or (N, C, H, W) flattened -> code (N, latent_dim) -> reconstruction
    logits of the input's shape (apply a sigmoid for pixels in [0, 1]).

    >>> ae = Autoencoder(64, hidden=(32,), latent_dim=4)
    >>> ae(pydl.randn(2, 1, 8, 8)).shape
    (2, 1, 8, 8)
    """

    def __init__(self, in_features=64, hidden=(128, 64), latent_dim=8):
        super().__init__()
        sizes = [in_features, *hidden, latent_dim]
        self.encoder = mlp(sizes)
        self.decoder = mlp(sizes[::-1])

    def encode(self, x):
        return self.encoder(x.reshape(x.shape[0], -1))

    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x)).reshape(x.shape)
