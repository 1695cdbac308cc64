"""A minimal DiT-style denoiser: the image cut into patches, a Transformer over the patch
tokens, the time embedding added to every token.

The self-attention here is the seeds' formulas written with plain tensor operations
(Q = X W_Q, K = X W_K, V = X W_V, E = Q K^T / sqrt(D_Q), A = softmax(E), Y = A V), split
over heads; it materialises the (T x T) attention matrix, which is fine for the few dozen
tokens of a small image.
"""
import math

import pydl
from .. import nn
from ..nn import functional as F
from .unet import TimestepEmbedding

__all__ = ["DiT", "SelfAttention"]


class SelfAttention(nn.Module):
    """Multi-head self-attention: (N, T, D) -> (N, T, D)."""

    def __init__(self, dim, num_heads=4):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"SelfAttention: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        N, T, D = x.shape
        H, d = self.num_heads, D // self.num_heads
        qkv = self.qkv(x).reshape(N, T, 3, H, d).permute(2, 0, 3, 1, 4)    # (3, N, H, T, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        E = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))              # (N, H, T, T)
        A = F.softmax(E, dim=-1)
        Y = (A @ v).permute(0, 2, 1, 3).reshape(N, T, D)                  # (N, T, D)
        return self.proj(Y)


class DiTBlock(nn.Module):
    """x + attn(LN(x)), then x + MLP(LN(x)) (pre-norm Transformer encoder block)."""

    def __init__(self, dim, num_heads, mlp_ratio=4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DiT(nn.Module):
    """eps_theta(x_t, t): (N, C, H, W), t (N,) -> (N, C, H, W), H and W multiples of ``patch``.

    >>> net = DiT(in_channels=1, image_size=8, patch=2, dim=16, depth=1, num_heads=2)
    >>> net(pydl.randn(2, 1, 8, 8), pydl.tensor([0, 3])).shape
    (2, 1, 8, 8)
    """

    def __init__(self, in_channels=1, image_size=8, patch=2, dim=64, depth=4, num_heads=4):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"DiT: image_size ({image_size}) must be a multiple of patch ({patch})")
        self.c, self.p, self.g = in_channels, patch, image_size // patch
        self.patch_embed = nn.Linear(in_channels * patch * patch, dim)
        self.pos_embed = nn.Parameter(pydl.zeros(1, self.g * self.g, dim))
        nn.init.normal_(self.pos_embed, std=0.02)
        self.time_embed = TimestepEmbedding(dim, dim)
        self.blocks = nn.ModuleList([DiTBlock(dim, num_heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, in_channels * patch * patch)

    def forward(self, x, t):
        N, C, H, W = x.shape
        if (C, H, W) != (self.c, self.g * self.p, self.g * self.p):
            raise ValueError(f"DiT: expected input (N, {self.c}, {self.g * self.p}, {self.g * self.p}), got {x.shape}")
        g, p = self.g, self.p
        tokens = x.reshape(N, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(N, g * g, C * p * p)
        h = self.patch_embed(tokens) + self.pos_embed + self.time_embed(t).reshape(N, 1, -1)
        for block in self.blocks:
            h = block(h)
        out = self.head(self.norm(h))                                     # (N, g*g, C*p*p)
        return out.reshape(N, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(N, C, H, W)
