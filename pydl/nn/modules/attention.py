"""Multi-head attention and positional encodings (PyTorch's names and state_dict keys).

Multi-head attention (lecture 11): project the queries, keys and values with one stacked
matrix ``in_proj_weight`` (3E, E), split E into H heads of E / H features, attend in each
head with scaled dot-product attention, concatenate the heads and project with
``out_proj``. The attention itself runs in the fused kernel unless the weights are asked
for (``need_weights=True``, PyTorch's default), which needs the (L, S) matrix.
"""
import math

import numpy as np

from ..._device import array_module
from ...tensor import Tensor, _make
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .linear import Linear
from .module import Module

__all__ = ["LearnedPositionalEncoding", "MultiheadAttention", "PositionalEncoding", "sinusoidal_encoding"]


def _arr(m):
    return m.data if isinstance(m, Tensor) else np.asarray(m)


def _additive(m, dtype, invert_bool):
    """A mask as scores to add: bool masks give 0 / -inf (``invert_bool``: True = blocked,
    MultiheadAttention's convention), float masks pass through."""
    m = _arr(m)
    if m.dtype == np.bool_:
        blocked = m if invert_bool else ~m
        return np.where(blocked, -np.inf, 0.0).astype(dtype)
    return m.astype(dtype)


class MultiheadAttention(Module):
    """Multi-head attention: (L, N, E) queries, (S, N, E) keys and values -> (L, N, E) and the
    attention weights (N, L, S) averaged over heads (or (N, H, L, S)); ``batch_first`` puts
    N first. Masks follow PyTorch: ``key_padding_mask`` (N, S) and ``attn_mask`` (L, S) or
    (N * H, L, S), boolean True = may NOT attend, or floating and added to the scores.

    >>> mha = pydl.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = pydl.randn(3, 5, 8)
    >>> out, w = mha(x, x, x)
    >>> tuple(out.shape), tuple(w.shape)
    ((3, 5, 8), (3, 5, 5))
    >>> sorted(mha.state_dict())
    ['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be positive, got {embed_dim} and "
                             f"{num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be divisible by num_heads "
                             f"({num_heads})")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError("MultiheadAttention: add_bias_kv / add_zero_attn are not supported")
        self.embed_dim, self.num_heads, self.dropout, self.batch_first = embed_dim, num_heads, dropout, batch_first
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        dt = dtype or np.float32
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dt))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(np.empty((embed_dim, embed_dim), dtype=dt))
            self.k_proj_weight = Parameter(np.empty((embed_dim, self.kdim), dtype=dt))
            self.v_proj_weight = Parameter(np.empty((embed_dim, self.vdim), dtype=dt))
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(np.empty(3 * embed_dim, dtype=dt)) if bias else None
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dt)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, query, key, value):
        E, b = self.embed_dim, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:E], b[E:2 * E], b[2 * E:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:  # self-attention: one gemm for the three
                q, k, v = F.linear(query, w, b).chunk(3, dim=-1)
                return q, k, v
            wq, wk, wv = w[:E], w[E:2 * E], w[2 * E:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return F.linear(query, wq, bq), F.linear(key, wk, bk), F.linear(value, wv, bv)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        batched = query.ndim == 3
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = _arr(key_padding_mask)[None]
        elif self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, N, E = query.shape
        S = key.shape[0]
        if E != self.embed_dim:
            raise ValueError(f"MultiheadAttention: query must have embed_dim {self.embed_dim} features, got {E}")
        if key.shape[0] != value.shape[0]:
            raise ValueError(f"MultiheadAttention: key and value must have the same length, got {key.shape[0]} "
                             f"and {value.shape[0]}")
        H, Dh = self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        # (L, N, E) -> (N, H, L, Dh)
        q = q.reshape(L, N, H, Dh).permute(1, 2, 0, 3)
        k = k.reshape(S, N, H, Dh).permute(1, 2, 0, 3)
        v = v.reshape(S, N, H, Dh).permute(1, 2, 0, 3)
        dt = q.dtype
        mask = None  # additive, broadcastable to (N, H, L, S)
        causal = bool(is_causal)  # like PyTorch, is_causal is a hint that attn_mask is the causal mask
        if attn_mask is not None and not causal:
            m = _additive(attn_mask, dt, invert_bool=True)
            if m.ndim == 3:
                if m.shape[0] != N * H:
                    raise ValueError(f"MultiheadAttention: a 3-D attn_mask must have shape ({N * H}, {L}, {S}), "
                                     f"got {m.shape}")
                m = m.reshape(N, H, L, S)
            elif m.ndim != 2:
                raise ValueError(f"MultiheadAttention: attn_mask must be 2-D or 3-D, got {m.ndim}-D")
            mask = m
        if key_padding_mask is not None:
            kp = _additive(key_padding_mask, dt, invert_bool=True)
            if kp.shape != (N, S):
                raise ValueError(f"MultiheadAttention: key_padding_mask must have shape ({N}, {S}), got {kp.shape}")
            kp = kp[:, None, None, :]
            mask = kp if mask is None else mask + kp
        if causal and (need_weights or mask is not None):  # the kernel's causal flag cannot combine with a mask
            xp = array_module(q.data)
            causal_mask = xp.where(xp.triu(xp.ones((L, S), dtype=bool), 1), -np.inf, 0.0).astype(dt)
            mask = causal_mask if mask is None else mask + causal_mask
            causal = False
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(Dh))
            if mask is not None:
                scores = scores + _make(mask.astype(dt, copy=False))
            attn = F.softmax(scores, dim=-1)
            weights = attn.mean(dim=1) if average_attn_weights else attn
            if dropout_p > 0:
                attn = F.dropout(attn, dropout_p, training=True)
            out = attn @ v
        else:
            sdpa_mask = None if mask is None else _make(array_module(mask).ascontiguousarray(mask))
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=sdpa_mask, dropout_p=dropout_p,
                                                 is_causal=causal)
        out = out.permute(2, 0, 1, 3).reshape(L, N, E)
        out = self.out_proj(out)
        if not batched:
            out = out.squeeze(1)
            if weights is not None:
                weights = weights.squeeze(0)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


def sinusoidal_encoding(length, dim, base=10000.0, dtype=np.float32):
    """The Transformer paper's table (length, dim): PE[p, 2i] = sin(p / base^(2i/dim)),
    PE[p, 2i+1] = cos(p / base^(2i/dim)).

    >>> sinusoidal_encoding(2, 4, dtype=np.float64).round(4).tolist()
    [[0.0, 1.0, 0.0, 1.0], [0.8415, 0.5403, 0.01, 1.0]]
    """
    pos = np.arange(length, dtype=np.float64)[:, None]
    inv = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    pe = np.zeros((length, dim))
    pe[:, 0::2] = np.sin(pos * inv)
    pe[:, 1::2] = np.cos(pos * inv[: dim // 2])
    return pe.astype(dtype)


class PositionalEncoding(Module):
    """Adds the fixed sinusoidal table to (N, L, E) (``batch_first``) or (L, N, E) inputs, then
    dropout. The table is a non-persistent buffer (no state_dict entry).

    >>> pe = pydl.nn.PositionalEncoding(4, max_len=10)
    >>> pe(pydl.zeros(1, 2, 4))[0, 1].tolist()  # doctest: +ELLIPSIS
    [0.84..., 0.54..., 0.0099..., 0.99...]
    """

    def __init__(self, d_model, dropout=0.0, max_len=5000, batch_first=True):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = dropout
        self.register_buffer("pe", _make(sinusoidal_encoding(max_len, d_model)), persistent=False)

    def forward(self, x):
        L = x.shape[1] if self.batch_first else x.shape[0]
        if L > self.max_len:
            raise ValueError(f"PositionalEncoding: sequence length {L} exceeds max_len {self.max_len}")
        pe = self.pe.data[:L].astype(x.dtype)
        pe = pe[None] if self.batch_first else pe[:, None]
        return F.dropout(x + _make(pe), self.dropout, self.training)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEncoding(Module):
    """A learnt table ``weight`` (max_len, E) added to (N, L, E) (``batch_first``) or (L, N, E)."""

    def __init__(self, d_model, max_len=512, dropout=0.0, batch_first=True):
        super().__init__()
        self.d_model, self.max_len, self.batch_first, self.dropout = d_model, max_len, batch_first, dropout
        self.weight = Parameter(np.empty((max_len, d_model), dtype=np.float32))
        init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x):
        L = x.shape[1] if self.batch_first else x.shape[0]
        if L > self.max_len:
            raise ValueError(f"LearnedPositionalEncoding: sequence length {L} exceeds max_len {self.max_len}")
        pe = self.weight[:L]
        pe = pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)
        return F.dropout(x + pe, self.dropout, self.training)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}"
