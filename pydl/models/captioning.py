"""Image captioning (lecture 10-11, the seeds' assignment): a CNN encodes the image, a
language model decodes the caption one word at a time.

- :class:`CaptioningRNN`: the image's features, projected, are the LSTM's (or vanilla
  RNN's) initial hidden state (the seeds' design) and, projected again, are added to every
  word embedding fed in (with the CNN trained from scratch, the initial state alone passes
  the image on too weakly: the loss sat at the caption prior's entropy in our runs).
- :class:`CaptioningTransformer`: the image's feature map, one token per position, is the
  memory a Transformer decoder cross-attends to; causal self-attention over the words.

Both train with teacher forcing (the ground-truth words ``<START> w1 .. wn`` in, ``w1 .. wn
<END>`` out; ``<NULL>`` padding ignored by the loss) and decode greedily from ``<START>``
until ``<END>``. Token ids follow the seeds: ``<NULL>`` 0, ``<START>`` 1, ``<END>`` 2.
:func:`synthetic_captions` makes a tiny data set (coloured shapes at positions) to check
that both models can fit it.
"""
import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import Tensor, _make

__all__ = ["END", "NULL", "START", "CaptionEncoder", "CaptioningRNN", "CaptioningTransformer", "decode_captions",
           "synthetic_captions"]

NULL, START, END = 0, 1, 2
SPECIAL = ["<NULL>", "<START>", "<END>"]


def _tokens(x):
    return x if isinstance(x, Tensor) else _make(np.asarray(x, dtype=np.int64))


class CaptionEncoder(nn.Module):
    """Two conv-ReLU-pool stages: (N, C, H, W) -> feature map (N, channels, H/4, W/4)."""

    def __init__(self, in_channels=3, channels=32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, channels // 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(channels // 2, channels, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, images):
        return self.features(images)


class CaptioningRNN(nn.Module):
    """CNN -> LSTM (``cell="lstm"``) or vanilla RNN (``cell="rnn"``) captioner.

    forward(images (N, C, H, W), captions_in (N, T)) -> scores (N, T, vocab_size).

    >>> m = CaptioningRNN(vocab_size=6, image_size=8)
    >>> tuple(m(pydl.randn(2, 3, 8, 8), pydl.ones(2, 4, dtype=pydl.int64)).shape)
    (2, 4, 6)
    """

    def __init__(self, vocab_size, wordvec_dim=32, hidden_dim=64, image_size=16, in_channels=3, channels=32,
                 cell="lstm"):
        super().__init__()
        if cell not in ("lstm", "rnn"):
            raise ValueError(f"CaptioningRNN: cell must be 'lstm' or 'rnn', got {cell!r}")
        self.cell, self.vocab_size = cell, vocab_size
        self.encoder = CaptionEncoder(in_channels, channels)
        self.feature_proj = nn.Linear(channels * (image_size // 4) ** 2, hidden_dim)
        self.feature_embed = nn.Linear(channels * (image_size // 4) ** 2, wordvec_dim)
        self.embed = nn.Embedding(vocab_size, wordvec_dim)
        self.rnn = (nn.LSTM if cell == "lstm" else nn.RNN)(wordvec_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def initial_state(self, images):
        """The image's features -> (the initial state, the image vector added to every input)."""
        f = self.encoder(images).flatten(1)
        h0 = self.feature_proj(f).unsqueeze(0)  # (1, N, H)
        return ((h0, h0 * 0.0) if self.cell == "lstm" else h0), self.feature_embed(f).unsqueeze(1)

    def forward(self, images, captions_in):
        state, img = self.initial_state(images)
        out, _ = self.rnn(self.embed(_tokens(captions_in)) + img, state)
        return self.out(out)

    def loss(self, images, captions):
        """Teacher forcing: predict captions[:, 1:] from captions[:, :-1]; <NULL> ignored."""
        captions = _tokens(captions)
        scores = self(images, captions[:, :-1])
        return F.cross_entropy(scores.reshape(-1, self.vocab_size), captions[:, 1:].reshape(-1), ignore_index=NULL)

    def sample(self, images, max_length=12):
        """Greedy decoding: (N, C, H, W) -> (N, max_length) word ids, <NULL> after <END>."""
        N = images.shape[0]
        out = np.full((N, max_length), NULL, dtype=np.int64)
        done = np.zeros(N, bool)
        with no_grad():
            state, img = self.initial_state(images)
            word = np.full((N, 1), START, dtype=np.int64)
            for t in range(max_length):
                h, state = self.rnn(self.embed(_make(word)) + img, state)
                word = self.out(h[:, -1]).data.argmax(-1)
                out[:, t] = np.where(done, NULL, word)
                done |= word == END
                word = word[:, None]
                if done.all():
                    break
        return out


class CaptioningTransformer(nn.Module):
    """CNN feature map as memory -> Transformer decoder captioner.

    forward(images, captions_in (N, T)) -> scores (N, T, vocab_size).

    >>> m = CaptioningTransformer(vocab_size=6, image_size=8)
    >>> tuple(m(pydl.randn(2, 3, 8, 8), pydl.ones(2, 4, dtype=pydl.int64)).shape)
    (2, 4, 6)
    """

    def __init__(self, vocab_size, dim=32, num_heads=2, num_layers=2, image_size=16, in_channels=3, channels=32,
                 max_length=32):
        super().__init__()
        self.vocab_size = vocab_size
        self.encoder = CaptionEncoder(in_channels, channels)
        self.visual_proj = nn.Linear(channels, dim)
        self.visual_pos = nn.LearnedPositionalEncoding(dim, max_len=(image_size // 4) ** 2)
        self.embed = nn.Embedding(vocab_size, dim)
        self.pos = nn.PositionalEncoding(dim, max_len=max_length)
        layer = nn.TransformerDecoderLayer(dim, num_heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, num_layers)
        self.out = nn.Linear(dim, vocab_size)

    def memory(self, images):
        f = self.encoder(images).flatten(2).transpose(1, 2)  # (N, positions, channels)
        return self.visual_pos(self.visual_proj(f))

    def _decode(self, memory, captions_in):
        x = self.pos(self.embed(_tokens(captions_in)))
        return self.out(self.decoder(x, memory, tgt_is_causal=True))

    def forward(self, images, captions_in):
        return self._decode(self.memory(images), captions_in)

    def loss(self, images, captions):
        """Teacher forcing: predict captions[:, 1:] from captions[:, :-1]; <NULL> ignored."""
        captions = _tokens(captions)
        scores = self(images, captions[:, :-1])
        return F.cross_entropy(scores.reshape(-1, self.vocab_size), captions[:, 1:].reshape(-1), ignore_index=NULL)

    def sample(self, images, max_length=12):
        """Greedy decoding (the prefix re-run each step): -> (N, max_length) word ids."""
        N = images.shape[0]
        out = np.full((N, max_length), NULL, dtype=np.int64)
        done = np.zeros(N, bool)
        with no_grad():
            mem = self.memory(images)
            seq = np.full((N, 1), START, dtype=np.int64)
            for t in range(max_length):
                word = self._decode(mem, _make(seq)).data[:, -1].argmax(-1)
                out[:, t] = np.where(done, NULL, word)
                done |= word == END
                seq = np.concatenate([seq, word[:, None]], 1)
                if done.all():
                    break
        return out


def decode_captions(ids, idx_to_word):
    """Word ids (N, T) -> strings, stopping at <END> and skipping <NULL> / <START>."""
    out = []
    for row in np.asarray(ids):
        words = []
        for i in row:
            if i == END:
                break
            if i not in (NULL, START):
                words.append(idx_to_word[int(i)])
        out.append(" ".join(words))
    return out


def synthetic_captions(n=24, image_size=16, seed=0):
    """A tiny captioning set: a red / green / blue square or bar at the top-left, top-right,
    bottom-left or bottom-right of a dark image, captioned like "a red square top left".

    Returns (images (n, 3, S, S) float32, captions (n, T) int64 with <START>/<END>/<NULL>,
    idx_to_word). The first 24 samples are the 24 distinct (colour, shape, place) triples.
    """
    rng = np.random.default_rng(seed)
    colours = ["red", "green", "blue"]
    shapes = ["square", "bar"]
    places = [("top", "left"), ("top", "right"), ("bottom", "left"), ("bottom", "right")]
    words = SPECIAL + ["a"] + colours + shapes + ["top", "bottom", "left", "right"]
    w2i = {w: i for i, w in enumerate(words)}
    S, half = image_size, image_size // 2
    combos = [(c, s, p) for c in range(3) for s in range(2) for p in range(4)]
    images = np.zeros((n, 3, S, S), np.float32)
    caps = np.full((n, 8), NULL, np.int64)
    for k in range(n):
        c, s, p = combos[k % len(combos)]
        top = 0 if places[p][0] == "top" else half
        left = 0 if places[p][1] == "left" else half
        h, w = (half - 2, half - 2) if s == 0 else (half - 2, 2)
        images[k] += 0.05 * rng.standard_normal((3, S, S)).astype(np.float32)
        images[k, c, top + 1:top + 1 + h, left + 1:left + 1 + w] = 1.0
        sentence = ["<START>", "a", colours[c], shapes[s], places[p][0], places[p][1], "<END>"]
        caps[k, :len(sentence)] = [w2i[w] for w in sentence]
    return images, caps, words
