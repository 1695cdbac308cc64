"""scaled_dot_product_attention, MultiheadAttention and the Transformer blocks: NumPy
transcriptions of the formulas, float64 gradchecks through autograd, state_dict keys, and
PyTorch itself where it is installed."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import nn
from pydl.autograd import gradcheck


def _sdpa_ref(q, k, v, mask=None, causal=False, scale=None):
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    E = q @ np.swapaxes(k, -1, -2) * scale
    L, S = E.shape[-2:]
    if causal:
        E = np.where(np.tril(np.ones((L, S), bool)), E, -np.inf)
    if mask is not None:
        E = np.where(mask, E, -np.inf) if mask.dtype == bool else E + mask
    E = E - E.max(-1, keepdims=True)
    A = np.exp(E)
    A /= A.sum(-1, keepdims=True)
    return A @ v


def _t(a, grad=False):
    return pydl.tensor(a, requires_grad=grad)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L,S", [(5, 5), (3, 7), (33, 17)])
def test_sdpa_matches_textbook(rng, causal, L, S):
    q, k, v = rng.standard_normal((2, 3, L, 8)), rng.standard_normal((2, 3, S, 8)), rng.standard_normal((2, 3, S, 5))
    out = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=causal)
    np.testing.assert_allclose(out.detach().numpy(), _sdpa_ref(q, k, v, causal=causal), atol=1e-10)
    out32 = F.scaled_dot_product_attention(_t(q.astype(np.float32)), _t(k.astype(np.float32)),
                                           _t(v.astype(np.float32)), is_causal=causal)
    assert out32.dtype == pydl.float32
    np.testing.assert_allclose(out32.detach().numpy(), _sdpa_ref(q, k, v, causal=causal), atol=1e-5)


def test_sdpa_masks_broadcast_and_scale(rng):
    q, k, v = rng.standard_normal((2, 1, 4, 6)), rng.standard_normal((1, 3, 5, 6)), rng.standard_normal((5, 2))
    bmask = rng.random((4, 5)) > 0.3
    bmask[:, 0] = True
    fmask = rng.standard_normal((2, 1, 4, 5))
    for m in (bmask, fmask):
        out = F.scaled_dot_product_attention(_t(q), _t(k), _t(v), attn_mask=_t(m), scale=0.7)
        assert out.shape == (2, 3, 4, 2)
        np.testing.assert_allclose(out.detach().numpy(), _sdpa_ref(q, k, v, mask=m, scale=0.7), atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_gradcheck_float64(rng, causal):
    q = _t(rng.standard_normal((2, 1, 4, 3)), True)
    k = _t(rng.standard_normal((2, 2, 4, 3)), True)   # q broadcasts over heads
    v = _t(rng.standard_normal((1, 2, 4, 2)), True)   # v over the batch
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=causal), (q, k, v))
    m = _t(rng.standard_normal((4, 4)))
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=m), (q, k, v))


def test_sdpa_dropout_unfused_path(rng):
    q = _t(rng.standard_normal((2, 4, 3)), True)
    pydl.manual_seed(0)
    out = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    out.sum().backward()
    assert out.shape == (2, 4, 3) and q.grad is not None
    out1 = F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    assert np.all(out1.detach().numpy() == 0)


def test_sdpa_errors():
    x = pydl.randn(2, 3, 4)
    with pytest.raises(TypeError, match="scaled_dot_product_attention: query"):
        F.scaled_dot_product_attention(np.zeros((2, 3)), x, x)
    with pytest.raises(ValueError, match="last dimension"):
        F.scaled_dot_product_attention(x, pydl.randn(2, 3, 5), x)
    with pytest.raises(ValueError, match="attn_mask"):
        F.scaled_dot_product_attention(x, x, x, attn_mask=pydl.zeros(2, 2))
    with pytest.raises(ValueError, match="do not broadcast"):
        F.scaled_dot_product_attention(x, pydl.randn(3, 3, 4), x)


def _mha_ref(mha, q, k, v, kpm=None, attn_mask=None):
    """MultiheadAttention by hand in NumPy: (N, L, E) batch-first."""
    E, H = mha.embed_dim, mha.num_heads
    W, b = mha.in_proj_weight.detach().numpy().astype(np.float64), mha.in_proj_bias.detach().numpy().astype(np.float64)
    Q, K, V = q @ W[:E].T + b[:E], k @ W[E:2 * E].T + b[E:2 * E], v @ W[2 * E:].T + b[2 * E:]
    N, L, S = q.shape[0], q.shape[1], k.shape[1]
    split = lambda x, n: x.reshape(N, n, H, E // H).transpose(0, 2, 1, 3)
    scores = split(Q, L) @ split(K, S).transpose(0, 1, 3, 2) / math.sqrt(E // H)
    if attn_mask is not None:
        scores = np.where(attn_mask, -np.inf, scores)
    if kpm is not None:
        scores = np.where(kpm[:, None, None, :], -np.inf, scores)
    A = np.exp(scores - scores.max(-1, keepdims=True))
    A /= A.sum(-1, keepdims=True)
    out = (A @ split(V, S)).transpose(0, 2, 1, 3).reshape(N, L, E)
    return out @ mha.out_proj.weight.detach().numpy().T + mha.out_proj.bias.detach().numpy(), A.mean(1)


@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention_matches_numpy(rng, need_weights):
    pydl.manual_seed(1)
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    nn.init.normal_(mha.in_proj_bias)
    nn.init.normal_(mha.out_proj.bias)
    q, kv = rng.standard_normal((3, 4, 8)), rng.standard_normal((3, 6, 8))
    kpm = np.zeros((3, 6), bool)
    kpm[1, 4:] = True
    am = np.triu(np.ones((4, 6), bool), 3)
    out, w = mha(_t(q.astype(np.float32)), _t(kv.astype(np.float32)), _t(kv.astype(np.float32)),
                 key_padding_mask=kpm, attn_mask=am, need_weights=need_weights)
    ref, ref_w = _mha_ref(mha, q, kv, kv, kpm, am)
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-4)
    if need_weights:
        np.testing.assert_allclose(w.detach().numpy(), ref_w, atol=1e-5)
    else:
        assert w is None


def test_multihead_attention_sequence_first_and_unbatched(rng):
    mha = nn.MultiheadAttention(6, 3)
    x = pydl.randn(5, 2, 6)
    out, w = mha(x, x, x, average_attn_weights=False)
    assert out.shape == (5, 2, 6) and w.shape == (2, 3, 5, 5)
    out1, w1 = mha(x[:, 0], x[:, 0], x[:, 0])
    np.testing.assert_allclose(out1.detach().numpy(), out[:, 0].detach().numpy(), atol=1e-5)
    assert w1.shape == (5, 5)


def test_multihead_attention_gradcheck_and_keys(rng):
    mha = nn.MultiheadAttention(4, 2, batch_first=True, dtype=np.float64)
    assert list(mha.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    x = _t(rng.standard_normal((2, 3, 4)), True)
    kpm = np.array([[False, False, True], [False, False, False]])
    assert gradcheck(lambda t: mha(t, t, t, need_weights=False, key_padding_mask=kpm)[0], (x,))
    assert gradcheck(lambda t: mha(t, t, t, is_causal=True, need_weights=False)[0], (x,))
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(5, 2)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_layers_match_by_hand(rng, norm_first, activation):
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation=activation,
                                       batch_first=True, norm_first=norm_first)
    x = pydl.randn(2, 5, 8)
    sa = lambda t: layer.self_attn(t, t, t, need_weights=False)[0]
    ff = lambda t: layer.linear2(getattr(F, activation)(layer.linear1(t)))
    if norm_first:
        y = x + sa(layer.norm1(x))
        y = y + ff(layer.norm2(y))
    else:
        y = layer.norm1(x + sa(x))
        y = layer.norm2(y + ff(y))
    np.testing.assert_allclose(layer(x).detach().numpy(), y.detach().numpy(), atol=1e-5)


def test_transformer_state_dict_keys_and_shapes():
    t = nn.Transformer(8, 2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16, batch_first=True)
    keys = list(t.state_dict())
    for k in ["encoder.layers.0.self_attn.in_proj_weight", "encoder.layers.1.linear2.bias", "encoder.norm.weight",
              "decoder.layers.0.multihead_attn.out_proj.weight", "decoder.layers.0.norm3.bias", "decoder.norm.bias"]:
        assert k in keys
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    assert np.isneginf(mask.detach().numpy()[0, 1]) and mask.detach().numpy()[1, 0] == 0
    src, tgt = pydl.randn(2, 6, 8, requires_grad=True), pydl.randn(2, 4, 8, requires_grad=True)
    y = t(src, tgt, tgt_mask=mask)
    y.sum().backward()
    assert y.shape == (2, 4, 8) and src.grad.shape == (2, 6, 8)


def test_decoder_causal_mask_blocks_the_future():
    pydl.manual_seed(0)
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=8, dropout=0.0, batch_first=True).eval()
    tgt, mem = pydl.randn(1, 4, 8), pydl.randn(1, 3, 8)
    a = layer(tgt, mem, tgt_is_causal=True).detach().numpy()
    tgt2 = tgt.detach().numpy().copy()
    tgt2[0, 3] += 5.0
    b = layer(pydl.tensor(tgt2), mem, tgt_mask=nn.Transformer.generate_square_subsequent_mask(4)).detach().numpy()
    np.testing.assert_allclose(a[0, :3], b[0, :3], atol=1e-5)
    assert not np.allclose(a[0, 3], b[0, 3])


def test_positional_encodings():
    pe = nn.PositionalEncoding(6, max_len=20)
    assert list(pe.state_dict()) == []
    x = pydl.zeros(2, 7, 6)
    table = pe(x).detach().numpy()[0]
    pos, i = 5, 1
    np.testing.assert_allclose(table[pos, 2 * i], math.sin(pos / 10000 ** (2 * i / 6)), rtol=1e-5)
    np.testing.assert_allclose(table[pos, 2 * i + 1], math.cos(pos / 10000 ** (2 * i / 6)), rtol=1e-5)
    lp = nn.LearnedPositionalEncoding(6, max_len=10)
    y = lp(pydl.zeros(2, 7, 6))
    y.sum().backward()
    g = lp.weight.grad.numpy()
    assert g[:7].sum() == pytest.approx(2 * 7 * 6) and g[7:].sum() == 0
    with pytest.raises(ValueError, match="max_len"):
        lp(pydl.zeros(1, 11, 6))


@pytest.mark.parametrize("d,ff,expected", [(16, 16, 6), (16, 64, 12)])
def test_block_parameter_count(d, ff, expected):
    """Weights only: 4 D^2 attention + 2 D F MLP (the cheat sheet counts 4 D^2 with F = D when
    the MLP's two layers are counted as one D x D each... see the summary test)."""
    layer = nn.TransformerEncoderLayer(d, 2, dim_feedforward=ff)
    n = sum(p.numel() for name, p in layer.named_parameters() if "weight" in name and "norm" not in name)
    assert n == expected * d * d


def test_torch_parity():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True,
                                          activation="gelu")
    pl = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True, norm_first=True,
                                    activation="gelu")
    assert list(pl.state_dict()) == list(tl.state_dict())
    pl.load_state_dict({k: pydl.tensor(v.detach().numpy()) for k, v in tl.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    kpm = np.array([[False] * 5, [False, False, False, True, True]])
    ref = tl(torch.tensor(x), src_key_padding_mask=torch.tensor(kpm)).detach().numpy()
    np.testing.assert_allclose(pl(pydl.tensor(x), src_key_padding_mask=kpm).detach().numpy(), ref, atol=1e-5)
    q, k, v = (torch.randn(2, 3, 4, 5) for _ in range(3))
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).numpy()
    out = F.scaled_dot_product_attention(*(pydl.tensor(t.numpy()) for t in (q, k, v)), is_causal=True)
    np.testing.assert_allclose(out.detach().numpy(), ref, atol=1e-5)


def test_causal_hint_and_detection():
    """is_causal with the causal mask (or the mask alone, detected by the stacks) gives the same
    result as the mask: the fused kernel then runs causally."""
    from pydl.nn.modules.transformer import _detect_is_causal

    mask = nn.Transformer.generate_square_subsequent_mask(5)
    assert _detect_is_causal(mask, None) and not _detect_is_causal(pydl.zeros(5, 5), None)
    assert _detect_is_causal(np.triu(np.ones((3, 3), bool), 1), None) and not _detect_is_causal(None, None)
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 2)
    x = pydl.randn(2, 5, 8)
    kpm = np.array([[False] * 5, [False] * 4 + [True]])
    a = enc(x, mask=mask, is_causal=False, src_key_padding_mask=kpm).detach().numpy()
    b = enc(x, mask=mask, src_key_padding_mask=kpm).detach().numpy()
    c = enc(x, mask=mask).detach().numpy()
    d = enc(x, mask=mask, is_causal=False).detach().numpy()
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(c, d, atol=1e-5)


def test_torch_parity_kdim_vdim_and_full_transformer():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(8, 2, kdim=5, vdim=3, batch_first=True)
    pm = nn.MultiheadAttention(8, 2, kdim=5, vdim=3, batch_first=True)
    assert list(pm.state_dict()) == list(tm.state_dict())
    pm.load_state_dict({k: pydl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    q, k, v = (rng.standard_normal(s).astype(np.float32) for s in [(2, 4, 8), (2, 6, 5), (2, 6, 3)])
    kpm = np.zeros((2, 6), bool)
    kpm[0, 4:] = True
    a, aw = tm(torch.tensor(q), torch.tensor(k), torch.tensor(v), key_padding_mask=torch.tensor(kpm))
    b, bw = pm(pydl.tensor(q), pydl.tensor(k), pydl.tensor(v), key_padding_mask=kpm)
    np.testing.assert_allclose(b.detach().numpy(), a.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(bw.detach().numpy(), aw.detach().numpy(), atol=1e-5)

    tt = torch.nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, batch_first=True)
    pt = nn.Transformer(8, 2, 2, 2, 16, dropout=0.0, batch_first=True)
    assert list(pt.state_dict()) == list(tt.state_dict())
    pt.load_state_dict({k: pydl.tensor(v.detach().numpy()) for k, v in tt.state_dict().items()})
    src, tgt = rng.standard_normal((2, 5, 8)).astype(np.float32), rng.standard_normal((2, 4, 8)).astype(np.float32)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(4)
    ref = tt(torch.tensor(src), torch.tensor(tgt), tgt_mask=tmask, tgt_is_causal=True).detach().numpy()
    got = pt(pydl.tensor(src), pydl.tensor(tgt), tgt_mask=nn.Transformer.generate_square_subsequent_mask(4))
    np.testing.assert_allclose(got.detach().numpy(), ref, atol=1e-5)


def test_encoder_decoder_layers_gradcheck_float64(rng):
    enc = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, batch_first=True, norm_first=True, activation="gelu",
                                     dtype=np.float64)
    dec = nn.TransformerDecoderLayer(4, 2, 6, dropout=0.0, batch_first=True, dtype=np.float64)
    assert all(p.dtype == pydl.float64 for p in list(enc.parameters()) + list(dec.parameters()))
    x = pydl.tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    m = pydl.tensor(rng.standard_normal((2, 2, 4)), requires_grad=True)
    assert gradcheck(lambda a, b: dec(enc(a, is_causal=True), b, tgt_is_causal=True), (x, m))
