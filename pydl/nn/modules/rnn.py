"""Recurrent layers: RNN (tanh / relu), LSTM and GRU, and their one-step cells.

PyTorch's names, arguments, shapes and state_dict keys (``weight_ih_l0``, ``weight_hh_l0``,
``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse`` for the backward direction), so weights
move between the two. Gates are stacked in PyTorch's order: LSTM (i, f, g, o), GRU (r, z, n).

LSTM and GRU layers run a whole sequence in one call of the C++ time loop
(``lstm_forward`` / ``gru_forward``); one autograd node per layer and direction calls the
matching BPTT kernel. The vanilla RNN is a Python loop of elementary ops (the lecture's
h_t = tanh(W_hh h_{t-1} + W_ih x_t + b)).

Variable lengths: pass ``lengths`` (B,) to ``forward`` with a padded input, or a
:class:`pydl.nn.utils.rnn.PackedSequence` from ``pack_padded_sequence``. Sequences of
equal length run together; outputs past a sequence's end are zero, and h_n / c_n are the
states at each sequence's own last step (for the reverse direction: its first).
"""
import math

import numpy as np

from ..._device import array_module
from ...autograd.function import Node
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make
from .. import functional as F
from .. import init
from ..functional._dispatch import as_float, edge, kernel
from ..parameter import Parameter
from .module import Module

__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNBase", "RNNCell", "RNNCellBase"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


# ------------------------------------------------------------------------ kernel nodes
# A node has one output; the layer's outputs (out, h_T[, c_T]) travel as one flat array that
# the caller slices (the slices' gradients add back into one flat gradient).

class _FlatOutputsBackward(Node):
    def __init__(self, edges, backward_kernel, cache, shapes, dtype, name):
        self.next_edges = edges
        self.backward_kernel, self.cache, self.shapes, self.dtype, self._name = (backward_kernel, cache, shapes,
                                                                                  dtype, name)

    def name(self):
        return self._name

    def backward(self, grad):
        grad = grad if grad.dtype == self.dtype else grad.astype(self.dtype)
        parts, pos = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape))
            parts.append(array_module(grad).ascontiguousarray(grad[pos:pos + n].reshape(shape)))
            pos += n
        grads = self.backward_kernel(*parts, self.cache)
        return tuple(None if e is None else g for e, g in zip(self.next_edges, grads))


def _run_kernel(name, tensors, n_states):
    """Run ``<name>_forward`` on the arrays of ``tensors`` (None passes) and return its first
    1 + n_states outputs as Tensors linked to one backward node."""
    op = name + "_forward"
    arrays = as_float(op, *tensors)
    xp = array_module(arrays[0])
    arrays = [None if a is None else xp.ascontiguousarray(a) for a in arrays]
    res = kernel(op, arrays[0])(*arrays)
    outs, cache = res[:-1], res[-1]
    if not (GradMode.enabled and any(t is not None and t.requires_grad for t in tensors)):
        return [_make(o) for o in outs]
    shapes = [o.shape for o in outs]
    flat = np.concatenate([o.reshape(-1) for o in outs])
    node = _FlatOutputsBackward(tuple(edge(t) for t in tensors), kernel(name + "_backward", arrays[0]), cache,
                                shapes, flat.dtype, f"{name.title().replace('_', '')}Backward")
    flat_t = _make(flat, node)
    result, pos = [], 0
    for shape in shapes:
        n = int(np.prod(shape))
        result.append(flat_t[pos:pos + n].reshape(shape))
        pos += n
    return result


def _rnn_steps(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity):
    """The vanilla RNN over x (T, B, I) from h (B, H), in elementary ops."""
    act = F.relu if nonlinearity == "relu" else F.tanh
    xw = F.linear(x, w_ih, b_ih)  # all input products at once: (T, B, H)
    outs = []
    for t in range(x.shape[0]):
        h = act(xw[t] + F.linear(h, w_hh, b_hh))
        outs.append(h)
    from ..._ops.shape import stack
    return stack(outs, 0), h


def _sequence(mode, x, h0, c0, w):
    """One layer, one direction, all sequences of equal length: x (T, B, I) ->
    (out (T, B, H), h_T (B, H), c_T (B, H) or None)."""
    if mode == "LSTM":
        out, h, c = _run_kernel("lstm", [x, h0, c0] + list(w), 2)
        return out, h, c
    if mode == "GRU":
        out, h = _run_kernel("gru", [x, h0] + list(w), 1)
        return out, h, None
    if h0 is None:
        h0 = _make(array_module(x.data).zeros((x.shape[1], w[1].shape[1]), dtype=x.dtype))
    out, h = _rnn_steps(x, h0, *w, "relu" if mode == "RNN_RELU" else "tanh")
    return out, h, None


# ------------------------------------------------------------------------ layers

class RNNBase(Module):
    """The shared machinery of RNN, LSTM and GRU (parameters, directions, layers, lengths)."""

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__()
        name = type(self).__name__
        if proj_size:
            raise NotImplementedError(f"{name}: proj_size is not supported")
        if hidden_size <= 0 or input_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be positive, got {input_size}, "
                             f"{hidden_size}, {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.mode, self.input_size, self.hidden_size, self.num_layers = mode, input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout, self.bidirectional = bias, batch_first, float(dropout), bidirectional
        self.proj_size = 0
        G = _GATES[mode]
        dt = dtype or np.float32
        self._flat_weights_names = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[: 2 if bidirectional else 1]:
                in_size = input_size if layer == 0 else hidden_size * (2 if bidirectional else 1)
                names = [f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"]
                setattr(self, names[0], Parameter(np.empty((G * hidden_size, in_size), dtype=dt)))
                setattr(self, names[1], Parameter(np.empty((G * hidden_size, hidden_size), dtype=dt)))
                if bias:
                    names += [f"bias_ih_l{layer}{suffix}", f"bias_hh_l{layer}{suffix}"]
                    setattr(self, names[2], Parameter(np.empty(G * hidden_size, dtype=dt)))
                    setattr(self, names[3], Parameter(np.empty(G * hidden_size, dtype=dt)))
                self._flat_weights_names.extend(names)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _weights(self, layer, reverse):
        s = f"l{layer}{'_reverse' if reverse else ''}"
        b = (getattr(self, f"bias_ih_{s}"), getattr(self, f"bias_hh_{s}")) if self.bias else (None, None)
        return (getattr(self, f"weight_ih_{s}"), getattr(self, f"weight_hh_{s}")) + b

    def _direction(self, x, h0, c0, w, reverse, groups):
        """One layer and direction over x (T, B, I), sequences grouped by length."""
        if groups is None:
            xs = x.flip(0) if reverse else x
            out, h, c = _sequence(self.mode, xs, h0, c0, w)
            return (out.flip(0) if reverse else out), h, c
        T, H = x.shape[0], self.hidden_size
        outs, hs, cs = [], [], []
        for length, idx in groups:
            xg = x.index_select(1, idx)[:length]
            h0g = None if h0 is None else h0.index_select(0, idx)
            c0g = None if c0 is None else c0.index_select(0, idx)
            out, h, c = _sequence(self.mode, xg.flip(0) if reverse else xg, h0g, c0g, w)
            if reverse:
                out = out.flip(0)
            if length < T:
                pad = _make(array_module(out.data).zeros((T - length, len(idx), H), dtype=out.dtype))
                out = F_cat([out, pad], 0)
            outs.append(out)
            hs.append(h)
            cs.append(c)
        inv = np.argsort(np.concatenate([idx for _, idx in groups]))  # back to the caller's batch order
        out = F_cat(outs, 1).index_select(1, inv)
        h = F_cat(hs, 0).index_select(0, inv)
        c = None if cs[0] is None else F_cat(cs, 0).index_select(0, inv)
        return out, h, c

    def _groups(self, lengths, T, B):
        lengths = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths).astype(np.int64).reshape(-1)
        name = type(self).__name__
        if lengths.shape != (B,):
            raise ValueError(f"{name}: lengths must have one entry per sequence ({B}), got shape {lengths.shape}")
        if B and (lengths.min() < 1 or lengths.max() > T):
            raise ValueError(f"{name}: lengths must be in [1, {T}], got [{lengths.min()}, {lengths.max()}]")
        if B and (lengths == T).all():
            return None
        return [(int(length), np.nonzero(lengths == length)[0])
                for length in sorted(set(lengths.tolist()), reverse=True)]

    def forward(self, input, hx=None, lengths=None):
        """input (T, B, I) ((B, T, I) with batch_first; (T, I) unbatched, or a PackedSequence)
        and optional initial states (num_layers * num_directions, B, H) -> (output (T, B, D * H),
        h_n) for RNN / GRU, (output, (h_n, c_n)) for LSTM."""
        from ..utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

        name = type(self).__name__
        packed = isinstance(input, PackedSequence)
        if packed:
            input, lengths = pad_packed_sequence(input, batch_first=False)
            batch_first = False
        else:
            batch_first = self.batch_first
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}")
        batched = input.ndim == 3
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: input must be 2-D (unbatched) or 3-D, got {input.ndim}-D")
        if not batched:
            input = input.unsqueeze(1)
        elif batch_first:
            input = input.transpose(0, 1)
        T, B, I = input.shape
        if I != self.input_size:
            raise ValueError(f"{name}: input.size(-1) must be equal to input_size. Expected {self.input_size}, got {I}")
        D, H, L = 2 if self.bidirectional else 1, self.hidden_size, self.num_layers
        h0 = c0 = None
        if hx is not None:
            if self.mode == "LSTM":
                if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                    raise TypeError(f"{name}: hx must be a tuple (h_0, c_0)")
                h0, c0 = hx
            else:
                h0 = hx
            if not batched:
                h0 = h0.unsqueeze(1)
                c0 = None if c0 is None else c0.unsqueeze(1)
            for nm, s in (("h_0", h0), ("c_0", c0)):
                if s is not None and tuple(s.shape) != (L * D, B, H):
                    raise ValueError(f"{name}: expected {nm} of shape {(L * D, B, H)}, got {tuple(s.shape)}")
        groups = None if lengths is None else self._groups(lengths, T, B)
        x = input
        h_n, c_n = [], []
        for layer in range(L):
            outs = []
            for d in range(D):
                k = layer * D + d
                out, h, c = self._direction(x, None if h0 is None else h0[k], None if c0 is None else c0[k],
                                            self._weights(layer, d == 1), d == 1, groups)
                outs.append(out)
                h_n.append(h)
                c_n.append(c)
            x = outs[0] if D == 1 else F_cat(outs, 2)
            if self.dropout and self.training and layer < L - 1:
                x = F.dropout(x, self.dropout, training=True)
        from ..._ops.shape import stack
        h_n = stack(h_n, 0)
        c_n = stack(c_n, 0) if self.mode == "LSTM" else None
        output = x
        if packed:
            output = pack_padded_sequence(output, lengths, batch_first=False, enforce_sorted=False)
        elif not batched:
            output = output.squeeze(1)
            h_n = h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif batch_first:
            output = output.transpose(0, 1)
        return output, ((h_n, c_n) if self.mode == "LSTM" else h_n)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


def F_cat(tensors, dim):
    from ..._ops.shape import cat
    return cat(tensors, dim)


class RNN(RNNBase):
    """Elman RNN, h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu.

    >>> rnn = pydl.nn.RNN(3, 4, num_layers=2)
    >>> out, h = rnn(pydl.randn(5, 2, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((5, 2, 4), (2, 2, 4))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        self.nonlinearity = nonlinearity
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype=dtype)


class LSTM(RNNBase):
    """LSTM (gates i, f, g, o; the cell state c is the highway the gradient flows along):
    (T, B, I) -> (output (T, B, D * H), (h_n, c_n) (num_layers * D, B, H)).

    >>> lstm = pydl.nn.LSTM(3, 4, batch_first=True, bidirectional=True)
    >>> out, (h, c) = lstm(pydl.randn(2, 5, 3))
    >>> tuple(out.shape), tuple(h.shape), tuple(c.shape)
    ((2, 5, 8), (2, 2, 4), (2, 2, 4))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, dtype=dtype)


class GRU(RNNBase):
    """GRU (gates r, z, n): (T, B, I) -> (output (T, B, D * H), h_n (num_layers * D, B, H))."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype=dtype)


# ------------------------------------------------------------------------ cells

class RNNCellBase(Module):
    def __init__(self, input_size, hidden_size, bias, num_chunks, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        dt = dtype or np.float32
        self.weight_ih = Parameter(np.empty((num_chunks * hidden_size, input_size), dtype=dt))
        self.weight_hh = Parameter(np.empty((num_chunks * hidden_size, hidden_size), dtype=dt))
        if bias:
            self.bias_ih = Parameter(np.empty(num_chunks * hidden_size, dtype=dt))
            self.bias_hh = Parameter(np.empty(num_chunks * hidden_size, dtype=dt))
        else:
            self.bias_ih = self.bias_hh = None
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -stdv, stdv)

    def _prepare(self, input, states):
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: expected input to be 1-D or 2-D but received {input.ndim}-D tensor")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"{name}: input has {input.shape[-1]} features, expected {self.input_size}")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        B = x.shape[0]
        out = []
        for s in states:
            if s is None:
                s = _make(array_module(x.data).zeros((B, self.hidden_size), dtype=x.dtype))
            elif not batched:
                s = s.unsqueeze(0)
            if tuple(s.shape) != (B, self.hidden_size):
                raise ValueError(f"{name}: hidden state must have shape {(B, self.hidden_size)}, got {tuple(s.shape)}")
            out.append(s)
        return x, out, batched

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(RNNCellBase):
    """One Elman step: (B, I), (B, H) -> (B, H)."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: unknown nonlinearity {nonlinearity!r} (tanh or relu)")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, 1, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, [hx])
        act = F.relu if self.nonlinearity == "relu" else F.tanh
        h = act(F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh))
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step through the fused cell kernel: (B, I), ((B, H), (B, H)) -> (h', c').

    >>> cell = pydl.nn.LSTMCell(3, 4)
    >>> h, c = cell(pydl.randn(2, 3))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, dtype)

    def forward(self, input, hx=None):
        h0, c0 = (None, None) if hx is None else hx
        x, (h, c), batched = self._prepare(input, [h0, c0])
        h, c = _run_kernel("lstm_cell", [x, h, c, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh], 2)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class GRUCell(RNNCellBase):
    """One GRU step through the fused cell kernel: (B, I), (B, H) -> (B, H)."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, dtype)

    def forward(self, input, hx=None):
        x, (h,), batched = self._prepare(input, [hx])
        (h,) = _run_kernel("gru_cell", [x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh], 1)
        return h if batched else h.squeeze(0)
