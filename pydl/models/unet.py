"""A small U-Net denoiser eps_theta(x_t, t) for DDPM / DDIM, with a sinusoidal time embedding.

Encoder levels of residual blocks (GroupNorm, SiLU, 3x3 conv, the time embedding added
per channel) with stride-2 down-sampling, a middle block, and a decoder that up-samples
(nearest + 3x3 conv) and concatenates the encoder's feature maps at the same resolution
(the skip connections). Sized for Digits (8x8) on a CPU; any H, W divisible by
2^(len(channel_mults) - 1) works.
"""
import math

import numpy as np

import pydl
from .. import nn
from ..tensor import Tensor

__all__ = ["TimestepEmbedding", "UNet", "sinusoidal_embedding"]


def sinusoidal_embedding(t, dim, max_period=10000.0):
    """The Transformer's positional encoding of timesteps: (N,) -> (N, dim), first half
    sin(t w_i), second half cos(t w_i), w_i = max_period^(-i / (dim / 2)).

    >>> sinusoidal_embedding(pydl.tensor([0]), 4).tolist()
    [[0.0, 0.0, 1.0, 1.0]]
    """
    if dim % 2:
        raise ValueError(f"sinusoidal_embedding: dim must be even, got {dim}")
    tt = np.asarray(t.data if isinstance(t, Tensor) else t, dtype=np.float64).reshape(-1)
    half = dim // 2
    freqs = np.exp(-math.log(max_period) * np.arange(half) / half)
    args = tt[:, None] * freqs[None]
    return pydl.tensor(np.concatenate([np.sin(args), np.cos(args)], axis=1).astype(np.float32))


class TimestepEmbedding(nn.Module):
    """t (N,) -> sinusoidal (N, dim) -> Linear, SiLU, Linear -> (N, out_dim)."""

    def __init__(self, dim, out_dim):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t):
        emb = sinusoidal_embedding(t, self.dim)
        w = self.mlp[0].weight
        return self.mlp(emb.to(w.dtype))


def _groups(c):
    for g in (8, 4, 2, 1):
        if c % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """x + conv(SiLU(GN(conv(SiLU(GN(x))) + Linear(temb)))) with a 1x1 conv on the skip
    when the channel count changes."""

    def __init__(self, c_in, c_out, temb_dim):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb = nn.Linear(temb_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.act = nn.SiLU()
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, temb):
        h = self.conv1(self.act(self.norm1(x)))
        h = h + self.temb(temb).reshape(temb.shape[0], -1, 1, 1)
        h = self.conv2(self.act(self.norm2(h)))
        return self.skip(x) + h


class UNet(nn.Module):
    """eps_theta(x_t, t): (N, C, H, W), t (N,) int -> (N, C, H, W).

    >>> net = UNet(in_channels=1, base=8, channel_mults=(1, 2))
    >>> net(pydl.randn(2, 1, 8, 8), pydl.tensor([0, 5])).shape
    (2, 1, 8, 8)
    """

    def __init__(self, in_channels=1, base=32, channel_mults=(1, 2), time_dim=None):
        super().__init__()
        time_dim = time_dim or 4 * base
        self.levels = len(channel_mults)
        self.time_embed = TimestepEmbedding(base, time_dim)
        self.stem = nn.Conv2d(in_channels, base, 3, padding=1)
        chans = [base * m for m in channel_mults]
        self.down_blocks, self.downsamples = nn.ModuleList(), nn.ModuleList()
        c = base
        for i, ch in enumerate(chans):
            self.down_blocks.append(ResBlock(c, ch, time_dim))
            c = ch
            if i < len(chans) - 1:
                self.downsamples.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, time_dim)
        self.up_blocks, self.upsamples = nn.ModuleList(), nn.ModuleList()
        for i, ch in reversed(list(enumerate(chans))):
            self.up_blocks.append(ResBlock(c + ch, ch, time_dim))
            c = ch
            if i > 0:
                self.upsamples.append(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                    nn.Conv2d(c, chans[i - 1], 3, padding=1)))
                c = chans[i - 1]
        self.out = nn.Sequential(nn.GroupNorm(_groups(c), c), nn.SiLU(), nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x, t):
        f = 2 ** (self.levels - 1)
        if x.ndim != 4 or x.shape[2] % f or x.shape[3] % f:
            raise ValueError(f"UNet: input must be (N, C, H, W) with H, W divisible by {f}, got {x.shape}")
        temb = self.time_embed(t)
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, temb)
            skips.append(h)
            if i < len(self.downsamples):
                h = self.downsamples[i](h)
        h = self.mid(h, temb)
        for i, block in enumerate(self.up_blocks):
            h = block(pydl.cat([h, skips.pop()], dim=1), temb)
            if i < len(self.upsamples):
                h = self.upsamples[i](h)
        return self.out(h)
