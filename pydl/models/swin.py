"""Swin-style blocks (Liu et al. 2021): self-attention inside local windows, windows shifted
every other block, and patch merging between stages.

A block partitions the (H, W) grid of tokens into non-overlapping M x M windows and runs
multi-head self-attention within each (cost linear in H W instead of quadratic). The next
block cyclically shifts the grid by M / 2 first, so windows straddle the previous block's
borders; a mask keeps tokens that the roll brought together from different image regions
from attending to each other. Patch merging concatenates each 2 x 2 group of tokens (4C)
and projects to 2C: half the resolution, twice the channels.

Each window's attention scores get a learnt relative position bias B[h, i, j] read from a
table of (2M - 1)^2 entries per head by the offset between tokens i and j (Swin's
``relative_position_bias_table``). With it the scores are formed explicitly (a window holds
only M^2 tokens); ``relative_position_bias=False`` runs the windows through the fused
attention kernel instead (a fixed mask only: the kernel's mask carries no gradient).
"""
import numpy as np

from .. import nn
from .._ops.shape import cat
from ..nn import functional as F
from ..tensor import _make
from . import register_model

__all__ = ["PatchMerging", "SwinBlock", "SwinTiny", "WindowAttention", "roll2d", "swin_tiny",
           "window_partition", "window_reverse"]


def roll2d(x, shift):
    """Cyclic shift of (N, H, W, C) by ``shift`` along H and W (torch.roll(x, (s, s), (1, 2)))."""
    if shift == 0:
        return x
    H, W = x.shape[1], x.shape[2]
    s_h, s_w = shift % H, shift % W
    x = cat([x[:, H - s_h:], x[:, :H - s_h]], 1) if s_h else x
    return cat([x[:, :, W - s_w:], x[:, :, :W - s_w]], 2) if s_w else x


def window_partition(x, M):
    """(N, H, W, C) -> (N, nW, M * M, C)."""
    N, H, W, C = x.shape
    x = x.reshape(N, H // M, M, W // M, M, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(N, (H // M) * (W // M), M * M, C)


def window_reverse(w, M, H, W):
    """(N, nW, M * M, C) -> (N, H, W, C)."""
    N, C = w.shape[0], w.shape[-1]
    x = w.reshape(N, H // M, W // M, M, M, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(N, H, W, C)


def shifted_window_mask(H, W, M, shift):
    """(nW, M*M, M*M) bool: True where two tokens of a window came from the same region
    before the shift (may attend)."""
    region = np.zeros((H, W), np.int64)
    cuts = (slice(0, -M), slice(-M, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            region[hs, ws] = label
            label += 1
    r = region.reshape(H // M, M, W // M, M).transpose(0, 2, 1, 3).reshape(-1, M * M)
    return r[:, :, None] == r[:, None, :]


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows of M x M tokens: (N, nW, T = M^2, C) -> same;
    keys ``qkv``, ``proj`` and ``relative_position_bias_table`` ((2M - 1)^2, heads)."""

    def __init__(self, dim, num_heads, window_size=4, relative_position_bias=True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"WindowAttention: dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads, self.window_size = num_heads, window_size
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        if relative_position_bias:
            M = window_size
            self.relative_position_bias_table = nn.Parameter(np.zeros(((2 * M - 1) ** 2, num_heads), np.float32))
            nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
            coords = np.stack(np.meshgrid(np.arange(M), np.arange(M), indexing="ij")).reshape(2, -1)  # (2, T)
            rel = coords[:, :, None] - coords[:, None, :] + (M - 1)                                  # (2, T, T)
            self.register_buffer("relative_position_index", _make((rel[0] * (2 * M - 1) + rel[1]).astype(np.int64)),
                                 persistent=False)
        else:
            self.relative_position_bias_table = None

    def forward(self, x, mask=None):
        N, nW, T, C = x.shape
        h = self.num_heads
        qkv = self.qkv(x).reshape(N, nW, T, 3, h, C // h).permute(3, 0, 1, 4, 2, 5)  # (3, N, nW, h, T, d)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.relative_position_bias_table is None:
            m = None if mask is None else _make(mask[:, None])  # (nW, 1, T, T) broadcasts over N and heads
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        else:
            if T != self.window_size ** 2:
                raise ValueError(f"WindowAttention: windows of {T} tokens, expected {self.window_size ** 2}")
            idx = self.relative_position_index.data.reshape(-1)
            bias = self.relative_position_bias_table[idx].reshape(T, T, h).permute(2, 0, 1)  # (h, T, T)
            scores = (q @ k.transpose(-2, -1)) * (1.0 / np.sqrt(C // h)) + bias
            if mask is not None:
                scores = scores + _make(np.where(mask[:, None], 0.0, -np.inf).astype(scores.dtype))
            out = F.softmax(scores, dim=-1) @ v
        return self.proj(out.permute(0, 1, 3, 2, 4).reshape(N, nW, T, C))


class SwinBlock(nn.Module):
    """x + W-MSA(LN(x)) (shifted when ``shift_size`` > 0), then x + MLP(LN(x)): (N, H, W, C) -> same."""

    def __init__(self, dim, num_heads, window_size=4, shift_size=0, mlp_ratio=4.0, relative_position_bias=True):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"SwinBlock: shift_size must be in [0, window_size), got {shift_size}")
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, relative_position_bias)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        H, W = x.shape[1], x.shape[2]
        M, s = self.window_size, self.shift_size
        if H % M or W % M:
            raise ValueError(f"SwinBlock: the {H} x {W} grid must be a multiple of window_size {M}")
        if H == M and W == M:
            s = 0  # one window: nothing to shift
        y = roll2d(self.norm1(x), -s)
        mask = shifted_window_mask(H, W, M, s) if s else None
        y = window_reverse(self.attn(window_partition(y, M), mask), M, H, W)
        x = x + roll2d(y, s)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """Each 2 x 2 group of tokens concatenated (4C), normalised, projected to 2C:
    (N, H, W, C) -> (N, H/2, W/2, 2C)."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x):
        if x.shape[1] % 2 or x.shape[2] % 2:
            raise ValueError(f"PatchMerging: H and W must be even, got {tuple(x.shape[1:3])}")
        x = cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x))


class SwinTiny(nn.Module):
    """Patch embedding, two stages of (regular, shifted) Swin blocks with patch merging between,
    global average pool and a linear head: (N, C, H, W) -> (N, num_classes).

    >>> m = SwinTiny(in_channels=1, num_classes=3, image_size=16, patch_size=2, dim=8, window_size=4)
    >>> tuple(m(pydl.randn(2, 1, 16, 16)).shape)
    (2, 3)
    """

    def __init__(self, in_channels=3, num_classes=10, image_size=32, patch_size=2, dim=32, depths=(2, 2),
                 heads=(2, 4), window_size=4):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        stages = []
        for i, (depth, h) in enumerate(zip(depths, heads)):
            d = dim * 2 ** i
            blocks = [SwinBlock(d, h, window_size, 0 if j % 2 == 0 else window_size // 2) for j in range(depth)]
            if i < len(depths) - 1:
                blocks.append(PatchMerging(d))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(dim * 2 ** (len(depths) - 1))
        self.head = nn.Linear(dim * 2 ** (len(depths) - 1), num_classes)

    def forward(self, x):
        x = self.patch_embed(x).permute(0, 2, 3, 1)  # (N, H', W', C)
        x = self.norm(self.stages(x))
        return self.head(x.mean(dim=(1, 2)))


@register_model("swin_tiny")
def swin_tiny(num_classes=10, in_channels=3, image_size=32):
    """A small Swin-style classifier (2 x 2 patches, two stages): windows of 4 for 32 x 32
    images, of 7 for 28 x 28 (the largest of 7, 4, 2 that tiles both stages' grids)."""
    grid = image_size // 2
    fits = [m for m in (7, 4, 2) if grid % m == 0 and (grid // 2) % m == 0]
    if image_size % 4 or not fits:
        raise ValueError(f"swin_tiny: image_size {image_size} gives a {grid} x {grid} grid that no window of 7, 4 "
                         "or 2 tiles at both stages")
    return SwinTiny(in_channels, num_classes, image_size, window_size=fits[0])
