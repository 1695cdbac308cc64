"""MLP-Mixer (Tolstikhin et al. 2021): an image classifier with no convolution after the
patch embedding and no attention, only MLPs.

The seeds' description of a Mixer layer: layer norm, transpose to get the patches, MLP
(token mixing: each channel mixes information across the patches), transpose back to get
the channels, layer norm, second MLP (channel mixing, per patch); both with a residual
connection. The image enters as non-overlapping patches, each linearly embedded (a
convolution whose kernel and stride are the patch size).

Names follow timm's implementation (``stem.proj``, ``blocks.0.norm1``,
``blocks.0.mlp_tokens.fc1``, ``blocks.0.mlp_channels.fc2``, ``norm``, ``head``); torchvision
has no MLP-Mixer. ``drop_path_rate`` adds stochastic depth on both residual branches.
"""
from .. import nn
from . import register_model

__all__ = ["MixerBlock", "Mlp", "MlpMixer", "mlp_mixer"]


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, in_features, hidden_features, drop=0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


class MixerBlock(nn.Module):
    """x + token_mlp(norm1(x)^T)^T, then x + channel_mlp(norm2(x)); x: (N, tokens, dim).

    >>> MixerBlock(dim=8, seq_len=4, tokens_dim=6, channels_dim=16)(pydl.randn(2, 4, 8)).shape
    (2, 4, 8)
    """

    def __init__(self, dim, seq_len, tokens_dim, channels_dim, drop=0.0, drop_path=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_tokens = Mlp(seq_len, tokens_dim, drop)
        self.drop_path = nn.StochasticDepth(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp_channels = Mlp(dim, channels_dim, drop)

    def forward(self, x):
        x = x + self.drop_path(self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2))
        return x + self.drop_path(self.mlp_channels(self.norm2(x)))


class _PatchEmbed(nn.Module):
    """Non-overlapping patch_size x patch_size patches -> (N, patches, dim) by a strided conv."""

    def __init__(self, image_size, patch_size, in_channels, dim):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"MlpMixer: image_size {image_size} must be a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size = image_size, patch_size
        self.num_patches = (image_size // patch_size) ** 2
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        if tuple(x.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"MlpMixer: expected {self.image_size}x{self.image_size} images, got "
                             f"{tuple(x.shape[-2:])}")
        return self.proj(x).flatten(2).transpose(1, 2)


class MlpMixer(nn.Module):
    """patches -> linear embedding -> num_blocks Mixer layers -> layer norm -> mean over the
    patches -> linear head. (N, C, image_size, image_size) -> (N, num_classes).

    >>> net = MlpMixer(num_classes=10, image_size=16, patch_size=4, hidden_dim=32, num_blocks=2,
    ...                tokens_mlp_dim=16, channels_mlp_dim=64)
    >>> net(pydl.randn(2, 3, 16, 16)).shape
    (2, 10)
    """

    def __init__(self, num_classes=1000, image_size=224, patch_size=16, in_channels=3, hidden_dim=512, num_blocks=8,
                 tokens_mlp_dim=256, channels_mlp_dim=2048, drop_rate=0.0, drop_path_rate=0.0):
        super().__init__()
        self.stem = _PatchEmbed(image_size, patch_size, in_channels, hidden_dim)
        seq_len = self.stem.num_patches
        self.blocks = nn.Sequential(*[
            MixerBlock(hidden_dim, seq_len, tokens_mlp_dim, channels_mlp_dim, drop_rate,
                       drop_path_rate * i / max(num_blocks - 1, 1))
            for i in range(num_blocks)])
        self.norm = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.head = nn.Linear(hidden_dim, num_classes)

    def forward(self, x):
        x = self.norm(self.blocks(self.stem(x)))
        return self.head(x.mean(dim=1))


@register_model("mlp_mixer")
def mlp_mixer(num_classes=1000, in_channels=3, image_size=224, patch_size=16, hidden_dim=512, num_blocks=8,
              tokens_mlp_dim=256, channels_mlp_dim=2048, drop_path_rate=0.0):
    """MLP-Mixer, Mixer-S/16 by default (hidden 512, 8 blocks, MLPs 256 / 2048 wide)."""
    return MlpMixer(num_classes, image_size, patch_size, in_channels, hidden_dim, num_blocks, tokens_mlp_dim,
                    channels_mlp_dim, drop_path_rate=drop_path_rate)


@register_model("mlp_mixer_cifar")
def mlp_mixer_cifar(num_classes=10, in_channels=3, image_size=32, patch_size=4, hidden_dim=128, num_blocks=4,
                    tokens_mlp_dim=64, channels_mlp_dim=512, drop_path_rate=0.0):
    """A small MLP-Mixer for 32x32 images: 4x4 patches (64 tokens), hidden 128, 4 blocks."""
    return MlpMixer(num_classes, image_size, patch_size, in_channels, hidden_dim, num_blocks, tokens_mlp_dim,
                    channels_mlp_dim, drop_path_rate=drop_path_rate)
