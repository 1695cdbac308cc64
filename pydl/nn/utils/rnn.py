"""Variable-length sequences for the recurrent layers (PyTorch's ``torch.nn.utils.rnn``).

A :class:`PackedSequence` holds the valid steps of a batch of sequences, time-major: the
rows of step 0 of every sequence, then step 1 of those still running, ... (``data``
(sum(lengths), *)), with ``batch_sizes`` (T,) sequences per step and the permutation that
sorted the batch by decreasing length. RNN / LSTM / GRU accept one (and return one); they
also take a padded input with ``lengths=`` directly.
"""
from collections import namedtuple

import numpy as np

from ...tensor import Tensor, _make

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence"]


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """(data, batch_sizes, sorted_indices, unsorted_indices), like PyTorch's."""


def _lengths(lengths):
    return np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths).astype(np.int64).reshape(-1)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences with the given
    lengths (B,) into a PackedSequence.

    >>> x = pydl.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])[..., None]  # (B=2, T=3, 1)
    >>> p = pack_padded_sequence(x, [3, 2], batch_first=True)
    >>> p.data.reshape(-1).tolist(), p.batch_sizes.tolist()
    ([1.0, 4.0, 2.0, 5.0, 3.0], [2, 2, 1])
    """
    lengths = _lengths(lengths)
    x = input.transpose(0, 1) if batch_first else input
    T, B = x.shape[0], x.shape[1]
    if lengths.shape != (B,):
        raise ValueError(f"pack_padded_sequence: lengths must have {B} entries, got {lengths.shape}")
    if B and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"pack_padded_sequence: lengths must be in [1, {T}], got [{lengths.min()}, {lengths.max()}]")
    if enforce_sorted:
        if np.any(np.diff(lengths) > 0):
            raise RuntimeError("pack_padded_sequence: lengths must be sorted in decreasing order when "
                               "enforce_sorted=True")
        order = np.arange(B)
    else:
        order = np.argsort(-lengths, kind="stable")
    sorted_len = lengths[order]
    batch_sizes = np.array([(sorted_len > t).sum() for t in range(int(sorted_len.max()) if B else 0)], np.int64)
    rows = np.concatenate([t * B + order[:n] for t, n in enumerate(batch_sizes)]) if B else np.zeros(0, np.int64)
    flat = x.reshape((T * B,) + tuple(x.shape[2:]))
    data = flat[rows]
    unsorted = np.argsort(order)
    return PackedSequence(data, _make(batch_sizes), None if enforce_sorted else _make(order),
                          None if enforce_sorted else _make(unsorted))


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Undo pack_padded_sequence: -> (padded (T, B, *) ((B, T, *) with batch_first), lengths (B,))."""
    data, batch_sizes = sequence.data, _lengths(sequence.batch_sizes)
    B = int(batch_sizes[0]) if len(batch_sizes) else 0
    T = len(batch_sizes) if total_length is None else int(total_length)
    if T < len(batch_sizes):
        raise ValueError(f"pad_packed_sequence: total_length {T} is less than the longest sequence "
                         f"({len(batch_sizes)})")
    order = np.arange(B) if sequence.sorted_indices is None else _lengths(sequence.sorted_indices)
    # where each padded position (t, b) reads from: its packed row, or one extra padding row
    src = np.full(T * B, data.shape[0], dtype=np.int64)
    pos = 0
    for t, n in enumerate(batch_sizes):
        src[t * B + order[:n]] = np.arange(pos, pos + n)
        pos += n
    pad = _make(np.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype))
    from ..._ops.shape import cat
    padded = cat([data, pad], 0)[src].reshape((T, B) + tuple(data.shape[1:]))
    lengths = np.zeros(B, np.int64)
    for n in batch_sizes:
        lengths[order[:n]] += 1
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, _make(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0):
    """Stack tensors of shapes (L_i, *) into (max L, B, *) ((B, max L, *) with batch_first)."""
    from ..._ops.shape import cat, stack
    T = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        if s.shape[0] < T:
            s = cat([s, _make(np.full((T - s.shape[0],) + tuple(s.shape[1:]), padding_value, dtype=s.dtype))], 0)
        rows.append(s)
    return stack(rows, 0 if batch_first else 1)
