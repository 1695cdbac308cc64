"""Vision Transformer (Dosovitskiy et al. 2021): an image as a sequence of patches.

Patches of P x P pixels are embedded by one strided convolution (kernel = stride = P: a
linear map of each flattened patch), a learnt class token is prepended, learnt position
embeddings are added, and a stack of pre-norm Transformer encoder blocks (GELU MLP)
processes the sequence; the head classifies the class token's final state.

Names follow torchvision's layout where it maps onto pydl's blocks (``conv_proj``,
``class_token``, ``encoder.pos_embedding``, ``encoder.layers.N``, ``encoder.ln``, ``heads.head``);
the blocks themselves are :class:`pydl.nn.TransformerEncoderLayer` (keys ``self_attn``, ``linear1``...).
"""
import numpy as np

from .. import nn
from .._ops.shape import cat
from . import register_model

__all__ = ["ViTEncoder", "VisionTransformer", "vit_tiny"]


class ViTEncoder(nn.Module):
    """Position embeddings + ``depth`` pre-norm encoder blocks + a final layer norm: (N, L, D) -> (N, L, D)."""

    def __init__(self, seq_length, depth, dim, heads, mlp_dim, dropout=0.0):
        super().__init__()
        self.pos_embedding = nn.Parameter(np.empty((1, seq_length, dim), dtype=np.float32))
        nn.init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout, activation="gelu", batch_first=True,
                                           norm_first=True, layer_norm_eps=1e-6)
        self.layers = nn.TransformerEncoder(layer, depth).layers
        self.ln = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x):
        x = self.dropout(x + self.pos_embedding)
        for layer in self.layers:
            x = layer(x)
        return self.ln(x)


class VisionTransformer(nn.Module):
    """(N, C, H, W) images -> (N, num_classes) logits.

    >>> vit = VisionTransformer(image_size=8, patch_size=4, in_channels=1, num_classes=3, dim=16, depth=1, heads=2,
    ...                         mlp_dim=32)
    >>> tuple(vit(pydl.randn(2, 1, 8, 8)).shape)
    (2, 3)
    """

    def __init__(self, image_size=32, patch_size=4, in_channels=3, num_classes=10, dim=64, depth=4, heads=4,
                 mlp_dim=128, dropout=0.0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"VisionTransformer: image_size {image_size} must be a multiple of patch_size "
                             f"{patch_size}")
        self.image_size, self.patch_size, self.dim = image_size, patch_size, dim
        self.conv_proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(np.zeros((1, 1, dim), dtype=np.float32))
        seq = (image_size // patch_size) ** 2 + 1
        self.encoder = ViTEncoder(seq, depth, dim, heads, mlp_dim, dropout)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(dim, num_classes))

    def embed(self, x):
        """(N, C, H, W) -> (N, 1 + patches, D): patch tokens after the class token."""
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"VisionTransformer: expected {self.image_size} x {self.image_size} images, got "
                             f"{tuple(x.shape[-2:])}")
        x = self.conv_proj(x)                              # (N, D, H/P, W/P)
        x = x.flatten(2).transpose(1, 2)                   # (N, patches, D)
        cls = self.class_token.expand(x.shape[0], -1, -1)
        return cat([cls, x], 1)

    def forward(self, x):
        x = self.encoder(self.embed(x))
        return self.heads(x[:, 0])


@register_model("vit_tiny")
def vit_tiny(num_classes=10, in_channels=3, image_size=32, patch_size=4, dim=64, depth=4, heads=4, mlp_dim=128):
    """A small ViT for 32 x 32 images (4 x 4 patches, D 64, 4 blocks, 4 heads)."""
    return VisionTransformer(image_size, patch_size, in_channels, num_classes, dim, depth, heads, mlp_dim)
