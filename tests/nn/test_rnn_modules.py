"""RNN / LSTM / GRU and their cells: a step-by-step NumPy transcription of the equations,
float64 gradchecks through autograd (the C++ time loops' BPTT), variable lengths (padded
with lengths= and packed), state_dict keys, and PyTorch itself where it is installed."""
import numpy as np
import pytest

import pydl
from pydl import nn
from pydl.autograd import gradcheck
from pydl.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence, pad_sequence


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _step(mode, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of PyTorch's equations (gates i, f, g, o and r, z, n)."""
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        return _sig(o) * np.tanh(c), c
    if mode == "GRU":
        ir, iz, inn = np.split(gi, 3, axis=-1)
        hr, hz, hn = np.split(gh, 3, axis=-1)
        r, z = _sig(ir + hr), _sig(iz + hz)
        n = np.tanh(inn + r * hn)
        return (1 - z) * n + z * h, c
    pre = gi + gh
    return (np.maximum(pre, 0) if mode == "RNN_RELU" else np.tanh(pre)), c


def _reference(m, x, lengths=None):
    """The layer by hand: x (T, B, I) -> (out, h_n, c_n), sequence b stopping at lengths[b]."""
    P = {k: v.detach().numpy().astype(np.float64) for k, v in m.named_parameters()}
    T, B, _ = x.shape
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    D, H = 2 if m.bidirectional else 1, m.hidden_size
    inp, hs, cs = x, [], []
    for layer in range(m.num_layers):
        outs = []
        for d in range(D):
            s = f"l{layer}{'_reverse' if d else ''}"
            w = [P[f"weight_ih_{s}"], P[f"weight_hh_{s}"], P.get(f"bias_ih_{s}", 0.0), P.get(f"bias_hh_{s}", 0.0)]
            out = np.zeros((T, B, H))
            hN, cN = np.zeros((B, H)), np.zeros((B, H))
            for b in range(B):
                h, c = np.zeros((1, H)), np.zeros((1, H))
                steps = range(lengths[b])
                for t in (reversed(steps) if d else steps):
                    h, c = _step(m.mode, inp[t, b:b + 1], h, c, *w)
                    out[t, b] = h[0]
                hN[b], cN[b] = h[0], c[0]
            outs.append(out)
            hs.append(hN)
            cs.append(cN)
        inp = np.concatenate(outs, -1)
    return inp, np.stack(hs), np.stack(cs)


MODULES = [
    (nn.RNN, dict()),
    (nn.RNN, dict(nonlinearity="relu", num_layers=2)),
    (nn.LSTM, dict(num_layers=2, bidirectional=True)),
    (nn.LSTM, dict(bias=False)),
    (nn.GRU, dict(num_layers=2, bidirectional=True)),
]


@pytest.mark.parametrize("cls,kw", MODULES)
@pytest.mark.parametrize("lengths", [None, [5, 2, 4]])
def test_layers_match_the_equations(rng, cls, kw, lengths):
    m = cls(3, 4, **kw)
    x = rng.standard_normal((5, 3, 3)).astype(np.float32)
    out, hn = m(pydl.tensor(x), lengths=lengths)
    ref_out, ref_h, ref_c = _reference(m, x.astype(np.float64), lengths)
    if cls is nn.LSTM:
        hn, cn = hn
        np.testing.assert_allclose(cn.detach().numpy(), ref_c, atol=1e-5)
    np.testing.assert_allclose(out.detach().numpy(), ref_out, atol=1e-5)
    np.testing.assert_allclose(hn.detach().numpy(), ref_h, atol=1e-5)


@pytest.mark.parametrize("cls,kw", MODULES)
def test_layers_gradcheck_float64(rng, cls, kw):
    m = cls(2, 3, dtype=np.float64, **kw)
    x = pydl.tensor(rng.standard_normal((4, 2, 2)), requires_grad=True)
    L = m.num_layers * (2 if m.bidirectional else 1)
    h0 = pydl.tensor(rng.standard_normal((L, 2, 3)), requires_grad=True)
    c0 = pydl.tensor(rng.standard_normal((L, 2, 3)), requires_grad=True)

    def run(x, h0, c0, *params):
        hx = (h0, c0) if cls is nn.LSTM else h0
        out, hn = m(x, hx, lengths=[4, 3])
        hn = hn if cls is not nn.LSTM else hn[0] * 2 + hn[1]
        return (out * out).sum() + hn.sum()

    assert gradcheck(run, (x, h0, c0) + tuple(m.parameters()))


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cells_gradcheck_and_equations(rng, cls):
    cell = cls(3, 4, dtype=np.float64)
    x = pydl.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    h = pydl.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    c = pydl.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    mode = {nn.RNNCell: "RNN_TANH", nn.LSTMCell: "LSTM", nn.GRUCell: "GRU"}[cls]
    P = [p.detach().numpy() for p in cell.parameters()]
    ref_h, ref_c = _step(mode, x.detach().numpy(), h.detach().numpy(), c.detach().numpy(), *P)
    if cls is nn.LSTMCell:
        got_h, got_c = cell(x, (h, c))
        np.testing.assert_allclose(got_c.detach().numpy(), ref_c, atol=1e-12)
        assert gradcheck(lambda a, b, d, *p: sum(t.sum() * (i + 1) for i, t in enumerate(cell(a, (b, d)))),
                         (x, h, c) + tuple(cell.parameters()))
    else:
        got_h = cell(x, h)
        assert gradcheck(lambda a, b, *p: (cell(a, b) ** 2).sum(), (x, h) + tuple(cell.parameters()))
    np.testing.assert_allclose(got_h.detach().numpy(), ref_h, atol=1e-12)
    assert cell(x[0]).shape == (4,) if cls is not nn.LSTMCell else cell(x[0])[0].shape == (4,)


def test_state_dict_keys_and_shapes():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    sd = m.state_dict()
    assert list(sd)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert "bias_hh_l1_reverse" in sd and sd["weight_ih_l1"].shape == (20, 10)
    assert nn.GRU(3, 5).weight_hh_l0.shape == (15, 5)
    assert sorted(nn.LSTMCell(3, 5).state_dict()) == ["bias_hh", "bias_ih", "weight_hh", "weight_ih"]


def test_batch_first_unbatched_and_initial_state(rng):
    m = nn.GRU(3, 4, batch_first=True)
    x = pydl.randn(2, 6, 3)
    out, h = m(x)
    assert out.shape == (2, 6, 4) and h.shape == (1, 2, 4)
    np.testing.assert_allclose(out.detach().numpy()[:, -1], h.detach().numpy()[0], atol=1e-6)
    out1, _ = m(x[0])
    np.testing.assert_allclose(out1.detach().numpy(), out.detach().numpy()[0], atol=1e-6)
    # continuing from a state = running the whole sequence
    _, ha = m(x[:, :3])
    _, hb = m(x[:, 3:], ha)
    np.testing.assert_allclose(hb.detach().numpy(), h.detach().numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="input_size"):
        m(pydl.randn(2, 6, 5))
    with pytest.raises(ValueError, match="h_0"):
        m(x, pydl.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="lengths"):
        m(x, lengths=[7, 2])


def test_packed_sequence_round_trip(rng):
    x = pydl.tensor(rng.standard_normal((3, 5, 2)).astype(np.float32), requires_grad=True)
    lengths = [2, 5, 3]
    p = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    assert p.batch_sizes.tolist() == [3, 3, 2, 1, 1] and p.data.shape == (10, 2)
    back, lens = pad_packed_sequence(p, batch_first=True)
    assert lens.tolist() == lengths
    mask = (np.arange(5)[None, :] < np.array(lengths)[:, None])[..., None]
    np.testing.assert_array_equal(back.detach().numpy(), np.where(mask, x.detach().numpy(), 0))
    m = nn.LSTM(2, 3, batch_first=True)
    out_p, (h, _) = m(p)
    out, (h2, _) = m(x, lengths=lengths)
    np.testing.assert_allclose(h.detach().numpy(), h2.detach().numpy(), atol=1e-6)
    padded, _ = pad_packed_sequence(out_p, batch_first=True)
    np.testing.assert_allclose(padded.detach().numpy(), out.detach().numpy(), atol=1e-6)
    padded.sum().backward()
    assert np.all(x.grad.numpy()[0, 2:] == 0)
    s = pad_sequence([pydl.ones(2, 3), pydl.ones(4, 3)], batch_first=True)
    assert s.shape == (2, 4, 3) and s.numpy()[0, 2:].sum() == 0


def test_dropout_between_layers():
    m = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = pydl.randn(4, 2, 3)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    pydl.manual_seed(0)
    c, _ = m(x)
    assert not np.allclose(a.detach().numpy(), c.detach().numpy())


@pytest.mark.parametrize("name", ["LSTM", "GRU", "RNN"])
def test_torch_parity(name):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    pm = getattr(nn, name)(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    assert list(pm.state_dict()) == list(tm.state_dict())
    pm.load_state_dict({k: pydl.tensor(v.detach().numpy()) for k, v in tm.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((3, 5, 3)).astype(np.float32)
    lengths = [5, 2, 4]
    packed = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), lengths, batch_first=True,
                                                     enforce_sorted=False)
    t_out, t_h = tm(packed)
    t_out, _ = torch.nn.utils.rnn.pad_packed_sequence(t_out, batch_first=True)
    p_out, p_h = pm(pydl.tensor(x), lengths=lengths)
    np.testing.assert_allclose(p_out.detach().numpy(), t_out.detach().numpy(), atol=1e-5)
    if name == "LSTM":
        t_h, p_h = t_h[1], p_h[1]
    np.testing.assert_allclose(p_h.detach().numpy(), t_h.detach().numpy(), atol=1e-5)
