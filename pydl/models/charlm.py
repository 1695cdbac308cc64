"""A character-level language model (lecture 10): embedding -> LSTM -> next-character logits,
trained with truncated back-propagation through time and gradient clipping.

Truncated BPTT: the corpus is cut into ``batch_size`` contiguous streams, read in windows
of ``seq_len`` characters; the LSTM's state carries from one window to the next (so the
model sees context beyond a window) but is detached, so each backward pass stops at the
window's start (memory and time per step stay bounded). The gradient norm is clipped
before each update (exploding gradients are the RNN's known failure).

The bundled text (``load_text()``) is a selection of Shakespeare's Sonnets (1609, public
domain), in ``pydl/data/texts/``.

>>> text = load_text()
>>> vocab = CharVocab(text)
>>> vocab.decode(vocab.encode("Shall I compare thee"))
'Shall I compare thee'
"""
import os

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import _make
from . import register_model

__all__ = ["CharLM", "CharVocab", "char_lm", "load_text", "sample", "train_charlm"]

_TEXT_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "texts")


def load_text(name="sonnets"):
    """The bundled text ``name`` (``pydl/data/texts/<name>.txt``) as one string."""
    path = os.path.join(_TEXT_DIR, f"{name}.txt")
    if not os.path.exists(path):
        names = sorted(f[:-4] for f in os.listdir(_TEXT_DIR) if f.endswith(".txt"))
        raise ValueError(f"load_text: no bundled text {name!r} (have: {', '.join(names)})")
    with open(path, encoding="utf-8") as f:
        return f.read()


class CharVocab:
    """The characters of a text, sorted: ``encode(str) -> int64 array``, ``decode(ids) -> str``."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, s):
        try:
            return np.array([self.index[c] for c in s], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"CharVocab.encode: character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in np.asarray(ids).reshape(-1))


class CharLM(nn.Module):
    """(N, T) character ids (+ optional LSTM state) -> ((N, T, vocab) logits, state).

    >>> m = CharLM(vocab_size=5, embed_dim=4, hidden_size=8)
    >>> logits, (h, c) = m(pydl.zeros(2, 3, dtype=pydl.int64))
    >>> tuple(logits.shape), tuple(h.shape)
    ((2, 3, 5), (1, 2, 8))
    """

    def __init__(self, vocab_size, embed_dim=32, hidden_size=128, num_layers=1, dropout=0.0):
        super().__init__()
        self.vocab_size = vocab_size
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, dropout=dropout, batch_first=True)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward(self, ids, state=None):
        out, state = self.lstm(self.embed(ids), state)
        return self.head(out), state


@register_model("char_lm")
def char_lm(num_classes=65, embed_dim=32, hidden_size=128, num_layers=1):
    """A CharLM over ``num_classes`` characters."""
    return CharLM(num_classes, embed_dim, hidden_size, num_layers)


def _streams(ids, batch_size):
    n = len(ids) // batch_size
    if n < 2:
        raise ValueError(f"train_charlm: the text ({len(ids)} characters) is too short for batch_size {batch_size}")
    return ids[: n * batch_size].reshape(batch_size, n)


def train_charlm(model, text_ids, steps=200, batch_size=16, seq_len=64, lr=3e-3, clip=1.0, optimizer=None,
                 callback=None):
    """Truncated BPTT: ``steps`` updates over windows of ``seq_len`` characters of ``batch_size``
    parallel streams, the state carried (detached) between windows and reset at the streams'
    end; gradient norm clipped to ``clip``. Returns the per-step losses (nats / character)."""
    from ..nn.utils import clip_grad_norm_
    from ..optim import Adam

    data = _streams(np.asarray(text_ids, dtype=np.int64), batch_size)
    opt = optimizer or Adam(model.parameters(), lr=lr)
    model.train()
    losses, pos, state = [], 0, None
    for step in range(steps):
        if pos + seq_len + 1 > data.shape[1]:
            pos, state = 0, None
        x = _make(data[:, pos:pos + seq_len])
        y = _make(data[:, pos + 1:pos + seq_len + 1])
        logits, state = model(x, state)
        state = tuple(s.detach() for s in state)  # truncate: the next window's backward stops here
        loss = F.cross_entropy(logits.reshape(-1, model.vocab_size), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        if clip:
            clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
        pos += seq_len
        if callback is not None:
            callback(step, losses[-1])
    return losses


def sample(model, vocab, prime="\n", length=200, temperature=0.0, seed=None):
    """Generate ``length`` characters after ``prime``: greedy (``temperature`` 0, the most
    likely character each step) or drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    model.eval()
    out = []
    with no_grad():
        logits, state = model(_make(vocab.encode(prime)[None]))
        for _ in range(length):
            z = logits.data[0, -1].astype(np.float64)
            if temperature and temperature > 0:
                p = np.exp((z - z.max()) / temperature)
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            else:
                nxt = int(z.argmax())
            out.append(nxt)
            logits, state = model(_make(np.array([[nxt]], dtype=np.int64)), state)
    return vocab.decode(out)


def demo(out=None, steps=300, seed=0, progress=True, temperature=0.8):
    """``pydl demo --task charlm``: train a CharLM on the bundled sonnets with truncated BPTT
    (windows of 64 characters, 16 streams, gradient norm clipped to 1), print the loss and
    samples (greedy and at ``temperature``); with ``out``, write ``samples.txt`` and, when the
    safetensors package is installed, ``charlm.safetensors`` (the state dict) there. Returns a
    dict of the losses, samples and throughput."""
    import time

    from .. import manual_seed, save

    manual_seed(seed)
    text = load_text()
    vocab = CharVocab(text)
    model = CharLM(len(vocab), embed_dim=32, hidden_size=128)
    batch_size, seq_len = 16, 64

    def report(step, loss):
        if progress and (step % 50 == 0 or step == steps - 1):
            print(f"step {step + 1:4d}/{steps}  loss {loss:.3f} nats/char", flush=True)

    t0 = time.perf_counter()
    losses = train_charlm(model, vocab.encode(text), steps=steps, batch_size=batch_size, seq_len=seq_len, lr=1e-2,
                          clip=1.0, callback=report)
    seconds = time.perf_counter() - t0
    greedy = sample(model, vocab, prime="Shall I ", length=160)
    warm = sample(model, vocab, prime="When ", length=160, temperature=temperature, seed=seed)
    result = dict(losses=losses, greedy=greedy, sampled=warm, temperature=temperature,
                  chars_per_second=steps * batch_size * seq_len / seconds, seconds=seconds)
    if out:
        os.makedirs(out, exist_ok=True)
        try:
            import safetensors  # noqa: F401  (pydl.save's format; optional)
        except ImportError:
            result["checkpoint"] = None
        else:
            result["checkpoint"] = os.path.join(out, "charlm.safetensors")
            save(model.state_dict(), result["checkpoint"])
        with open(os.path.join(out, "samples.txt"), "w", encoding="utf-8") as f:
            f.write(f"greedy:\nShall I {greedy}\n\ntemperature {temperature}:\nWhen {warm}\n")
    return result
