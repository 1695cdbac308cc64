"""End-to-end training steps (how users judge speed): forward, loss, backward and an
optimizer step of a whole model, the same model and weights in pydl and in PyTorch.

Rows (DESIGN.md's e2e list; the image models, LeNet-5 and the CIFAR ResNet-18 in images/s,
are built in :mod:`.e2e_images`):
- ``transformer``: a small Transformer encoder language model, token embedding -> 2 causal
  encoder layers (D 128, 4 heads, MLP 512, post-norm, ReLU) -> vocabulary logits, cross-entropy
  on the next token; B 32 x L 64 tokens.
- ``lstm_lm``: the character LM of ``pydl demo --task charlm`` (embedding 32 -> LSTM 256 ->
  logits over 65 characters), B 32 x T 64 characters (one truncated-BPTT window).

The optimizer is SGD with lr 0 (the update runs, the weights stay put), so every timed call
computes the same loss, which is checked against the same model run by pydl in float64.
The rate that matters is the tokens per second, B L / median time (in the notes); torch's
weights are loaded from pydl's state_dict (same keys).
"""
import numpy as np

from ..harness import Case, torch
from . import e2e_images

# (model, B, L): tokens per step B x L
SHAPES = [("transformer", 32, 64), ("lstm_lm", 32, 64), ("lenet5", 64), ("resnet18", 32)]
QUICK = [("transformer", 2, 8), ("lstm_lm", 2, 8), ("lenet5", 2), ("resnet18", 2)]
# GPU (pydl bench e2e --device cuda): the image models at the CPU's batches and at batches
# that fill a GPU
CUDA_SHAPES = [("lenet5", 64), ("lenet5", 512), ("resnet18", 32), ("resnet18", 256)]
CUDA_QUICK = [("lenet5", 2), ("resnet18", 2)]

VOCAB = {"transformer": 256, "lstm_lm": 65}


def _pydl_model(kind, dtype):
    import pydl
    from pydl import nn

    pydl.manual_seed(0)
    V = VOCAB[kind]
    if kind == "transformer":
        class TinyLM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(V, 128)
                layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)
                self.encoder = nn.TransformerEncoder(layer, 2)
                self.head = nn.Linear(128, V)

            def forward(self, ids, mask):
                return self.head(self.encoder(self.embed(ids), mask=mask, is_causal=True))
        model = TinyLM()
    else:
        from ...models.charlm import CharLM
        model = CharLM(V, embed_dim=32, hidden_size=256)
    return model.to(dtype) if dtype != np.float32 else model


def _torch_model(kind, t, state):
    V = VOCAB[kind]
    nn = t.nn
    if kind == "transformer":
        class TinyLM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(V, 128)
                layer = nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)
                self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
                self.head = nn.Linear(128, V)

            def forward(self, ids, mask):
                return self.head(self.encoder(self.embed(ids), mask=mask, is_causal=True))
    else:
        class TinyLM(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Embedding(V, 32)
                self.lstm = nn.LSTM(32, 256, batch_first=True)
                self.head = nn.Linear(256, V)

            def forward(self, ids, mask):
                out, _ = self.lstm(self.embed(ids))
                return self.head(out)
    model = TinyLM()
    model.load_state_dict({k: t.from_numpy(np.array(v)) for k, v in state.items()})
    return model


def cuda_case(shape):
    return e2e_images.case(shape, device="cuda")


def case(shape):
    import pydl
    import pydl.nn.functional as F

    if shape[0] in e2e_images.MODELS:
        return e2e_images.case(shape)
    kind, b, n = shape
    V = VOCAB[kind]
    rng = np.random.default_rng(0)
    ids = rng.integers(0, V, (b, n + 1)).astype(np.int64)
    x, y = ids[:, :-1], ids[:, 1:]
    mask32 = pydl.nn.Transformer.generate_square_subsequent_mask(n)

    def pydl_step(dtype):
        model = _pydl_model(kind, dtype)
        opt = pydl.optim.SGD(model.parameters(), lr=0.0)
        tx, ty = pydl.tensor(x), pydl.tensor(y)
        mask = mask32.to(dtype)

        def run():
            logits = model(tx, mask) if kind == "transformer" else model(tx)[0]
            loss = F.cross_entropy(logits.reshape(-1, V), ty.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.detach().numpy()
        return run, model

    run32, model32 = pydl_step(np.float32)
    impls = {"pydl": run32}
    notes = [f"e2e {kind}: tokens/s = {b} x {n} / median time; SGD with lr 0 (update timed, weights fixed)."]
    t = torch()
    if t is not None:
        state = {k: v.detach().numpy() for k, v in model32.state_dict().items()}
        tm = _torch_model(kind, t, state)
        topt = t.optim.SGD(tm.parameters(), lr=0.0)
        tx, ty = t.from_numpy(x), t.from_numpy(y)
        tmask = t.from_numpy(mask32.numpy())

        def torch_run():
            logits = tm(tx, tmask)
            loss = t.nn.functional.cross_entropy(logits.reshape(-1, V), ty.reshape(-1))
            topt.zero_grad()
            loss.backward()
            topt.step()
            return loss.detach()
        impls["torch"] = torch_run

    def expected():
        run64, model64 = pydl_step(np.float64)
        model64.load_state_dict({k: pydl.tensor(v.detach().numpy().astype(np.float64))
                                 for k, v in model32.state_dict().items()})
        return run64()

    name = (f"transformer step B{b} L{n} D128 H4 F512 x2" if kind == "transformer"
            else f"lstm LM step B{b} T{n} E32 H256 V{V}")
    return Case(name, impls, expected, rtol=1e-4, notes=notes)
