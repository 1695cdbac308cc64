"""Sequence models: ViT and Swin forward + backward on tiny inputs, the shifted-window mask,
captioning models overfitting a tiny synthetic set (LSTM and Transformer decoders), the
character LM's loss falling under truncated BPTT with clipping, and the parameter count of
a Transformer block through pydl.utils.summary."""
import numpy as np
import pytest

import pydl
from pydl import models, nn
from pydl.models.captioning import CaptioningRNN, CaptioningTransformer, decode_captions, synthetic_captions
from pydl.models.charlm import CharLM, CharVocab, load_text, sample, train_charlm
from pydl.models.swin import PatchMerging, SwinBlock, SwinTiny, roll2d, shifted_window_mask
from pydl.models.vit import VisionTransformer
from pydl.utils import summary


def _grads_everywhere(model):
    return all(p.grad is not None and np.isfinite(p.grad.numpy()).all() for p in model.parameters())


def test_vit_forward_backward():
    pydl.manual_seed(0)
    vit = VisionTransformer(image_size=8, patch_size=4, in_channels=3, num_classes=5, dim=16, depth=2, heads=2,
                            mlp_dim=32)
    x = pydl.randn(2, 3, 8, 8)
    assert tuple(vit.embed(x).shape) == (2, 5, 16)  # 4 patches + the class token
    y = vit(x)
    assert y.shape == (2, 5)
    y.sum().backward()
    assert _grads_everywhere(vit)
    assert "conv_proj.weight" in vit.state_dict() and "encoder.layers.1.self_attn.in_proj_weight" in vit.state_dict()
    assert vit.conv_proj.stride == (4, 4) or vit.conv_proj.stride == 4
    with pytest.raises(ValueError, match="image"):
        vit(pydl.randn(1, 3, 12, 12))
    assert "vit_tiny" in models.list_models() and "swin_tiny" in models.list_models()


def test_swin_forward_backward_and_shapes():
    pydl.manual_seed(0)
    m = SwinTiny(in_channels=1, num_classes=3, image_size=16, patch_size=2, dim=8, window_size=4)
    y = m(pydl.randn(2, 1, 16, 16))
    assert y.shape == (2, 3)
    y.sum().backward()
    assert _grads_everywhere(m)
    assert PatchMerging(8)(pydl.randn(2, 4, 6, 8)).shape == (2, 2, 3, 16)


def test_shifted_windows():
    x = pydl.arange(16.0).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(roll2d(x, 1).numpy(), np.roll(x.numpy(), (1, 1), (1, 2)))
    mask = shifted_window_mask(8, 8, 4, 2)
    assert mask.shape == (4, 16, 16)
    assert mask[0].all()  # the top-left window holds one region only
    assert mask[3].sum() == 4 * 4 * 4  # the bottom-right window: four 2 x 2 regions of 4 tokens
    # a token only attends within its own region: perturbing another region of the same
    # shifted window leaves its output alone
    pydl.manual_seed(0)
    blk = SwinBlock(4, 1, window_size=4, shift_size=2)
    blk.mlp = nn.Identity()
    blk.norm2 = nn.Identity()
    a = pydl.randn(1, 8, 8, 4)
    b = a.numpy().copy()
    # one channel (a shift of all would vanish in the norm); rolled by -2 the token lands at
    # (5, 5), in the window of rows/cols 4..7
    b[0, 7, 7, 0] += 10.0
    ya, yb = blk(a).detach().numpy(), blk(pydl.tensor(b)).detach().numpy()
    assert not np.allclose(ya[0, 6, 6], yb[0, 6, 6], atol=1e-5)  # same window, same region: a neighbour
    assert np.allclose(ya[0, 0, 0], yb[0, 0, 0], atol=1e-5)  # same window after the roll, but the far corner
    assert np.allclose(ya[0, 5, 5], yb[0, 5, 5], atol=1e-5)  # another window


@pytest.mark.parametrize("cls", [CaptioningRNN, CaptioningTransformer])
def test_captioning_overfits_synthetic_set(cls):
    images, captions, words = synthetic_captions(24)
    pydl.manual_seed(0)
    model = cls(len(words))
    opt = pydl.optim.Adam(model.parameters(), lr=1e-2)
    x = pydl.tensor(images)
    for step in range(150):
        loss = model.loss(x, captions)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.02:
            break
    assert loss.item() < 0.05
    got = decode_captions(model.sample(x, max_length=8), words)
    assert got == decode_captions(captions, words)
    assert got[0] == "a red square top left"


def test_charlm_loss_falls_and_samples():
    text = load_text()
    assert len(text) > 10_000 and "Shall I compare thee to a summer's day?" in text
    vocab = CharVocab(text)
    pydl.manual_seed(0)
    model = CharLM(len(vocab), embed_dim=16, hidden_size=64)
    losses = train_charlm(model, vocab.encode(text), steps=60, batch_size=8, seq_len=32, lr=1e-2, clip=1.0)
    assert losses[0] > np.log(len(vocab)) - 0.5  # starts near a uniform guess
    assert np.mean(losses[-10:]) < 3.0 and np.mean(losses[-10:]) < losses[0] - 1.0
    g = sample(model, vocab, prime="When ", length=40)
    assert len(g) == 40 and g == sample(model, vocab, prime="When ", length=40)  # greedy: deterministic
    t1 = sample(model, vocab, prime="When ", length=40, temperature=1.0, seed=1)
    assert t1 == sample(model, vocab, prime="When ", length=40, temperature=1.0, seed=1) and set(t1) <= set(text)
    with pytest.raises(ValueError, match="no bundled text"):
        load_text("no-such-text")


def test_truncated_bptt_detaches_between_windows():
    """The state passed to the next window carries values but no graph."""
    vocab = CharVocab("abcd")
    model = CharLM(len(vocab), 4, 8)
    seen = []
    orig = model.forward

    def spy(ids, state=None):
        seen.append(state)
        return orig(ids, state)

    model.forward = spy
    train_charlm(model, vocab.encode("abcd" * 40), steps=3, batch_size=2, seq_len=8)
    assert seen[0] is None
    assert all(s is not None and s[0].grad_fn is None and not s[0].requires_grad for s in seen[1:])


@pytest.mark.parametrize("ff,expected", [(4, 12), (1, 6)])
def test_summary_counts_transformer_block(ff, expected):
    """Weights of a block (biases and norms left out): 4 D^2 in the attention (W_q, W_k, W_v,
    W_o) plus 2 D F in the MLP: 12 D^2 with the usual F = 4D; with F = D it is 6 D^2 (the
    attention alone being the 4 D^2)."""
    D = 16
    layer = nn.TransformerEncoderLayer(D, 2, dim_feedforward=ff * D, batch_first=True)
    s = summary(layer, (5, D), verbose=False)
    rows = {r.name: r.params for r in s.layers}
    biases = 3 * D + D + ff * D + D
    norms = 2 * 2 * D
    assert rows["self_attn"] + rows["self_attn.out_proj"] - 4 * D == 4 * D * D  # in_proj 3D^2 + 3D, out_proj D^2 + D
    assert s.total_params - biases - norms == expected * D * D


def test_cli_demo_charlm(tmp_path, capsys):
    from pydl.cli import main

    out = tmp_path / "charlm"
    assert main(["demo", "--task", "charlm", "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "character-level LSTM" in printed and "greedy:" in printed and "temperature 0.8:" in printed
    assert (out / "samples.txt").read_text().startswith("greedy:\nShall I ")


@pytest.mark.parametrize("name", ["pydl.nn.modules.rnn", "pydl.nn.modules.attention", "pydl.nn.modules.transformer",
                                  "pydl.nn.functional._attention", "pydl.nn.utils.rnn", "pydl.models.vit",
                                  "pydl.models.swin", "pydl.models.captioning", "pydl.models.charlm"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


@pytest.mark.parametrize("name", ["vit_tiny", "swin_tiny"])
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3)])
def test_zoo_builders(name, size, channels):
    m = models.get_model(name, num_classes=10, in_channels=channels, image_size=size)
    assert m(pydl.randn(1, channels, size, size)).shape == (1, 10)
    assert summary(m, (channels, size, size), verbose=False).total_params > 100_000


def test_swin_relative_position_bias():
    pydl.manual_seed(0)
    blk = SwinBlock(8, 2, window_size=4, shift_size=2)
    M = 4
    idx = blk.attn.relative_position_index.numpy()
    assert idx.shape == (M * M, M * M) and np.all(np.diag(idx) == (M - 1) * (2 * M - 1) + (M - 1))  # offset 0
    assert idx[0, M * M - 1] == 0 and idx[M * M - 1, 0] == (2 * M - 1) ** 2 - 1  # offsets (-3, -3) and (3, 3)
    x = pydl.randn(2, 8, 8, 8)
    blk(x).sum().backward()
    assert np.abs(blk.attn.relative_position_bias_table.grad.numpy()).max() > 0
    # a zero table gives what the fused path computes
    fused = SwinBlock(8, 2, window_size=4, shift_size=2, relative_position_bias=False)
    fused.load_state_dict({k: v for k, v in blk.state_dict().items() if "relative" not in k})
    with pydl.no_grad():
        blk.attn.relative_position_bias_table.zero_()
        np.testing.assert_allclose(blk(x).numpy(), fused(x).numpy(), atol=1e-5)
