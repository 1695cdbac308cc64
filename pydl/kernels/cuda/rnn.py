"""LSTM and GRU cells and layers on the GPU (csrc/cuda/rnn.cu): the time loop in C++.

Same signatures and results as :mod:`pydl.kernels.reference.rnn` (CuPy arrays in and
out). A cell is the T = 1 case of the layer. The caches are opaque tuples for the
backward of this backend: (tag, x, w_ih, w_hh, hs, cs, saved, has_b_ih, has_b_hh), as
the cpu backend's, with CuPy arrays.
"""
from ._common import cp, float_array, launcher, ptr, stream

OPS = ("lstm_cell_forward", "lstm_cell_backward", "gru_cell_forward", "gru_cell_backward",
       "lstm_forward", "lstm_backward", "gru_forward", "gru_backward")


def _optional(a, like, shape, op, name):
    """a as a contiguous array of like's dtype and the given shape, or None."""
    if a is None:
        return None
    float_array(a, op, name)
    if a.dtype != like.dtype:
        raise TypeError(f"{op}: input and {name} must have the same dtype, got {like.dtype} and {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{op}: {name} must have shape {tuple(shape)}, got {a.shape}")
    return cp.ascontiguousarray(a)


def _layer_args(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, gates, cell, lstm):
    """The checked, contiguous operands: (x (T, B, I), w_ih, w_hh, b_ih, b_hh, h0, c0)."""
    float_array(x, op, "input")
    if cell:
        if x.ndim != 2:
            raise ValueError(f"{op}: input must have 2 dimensions (B, I), got shape {x.shape}")
        x = x.reshape((1,) + x.shape)
    elif x.ndim != 3:
        raise ValueError(f"{op}: input must have 3 dimensions (T, B, I), got shape {x.shape}")
    B, I = x.shape[1:]
    float_array(w_hh, op, "w_hh")
    if w_hh.dtype != x.dtype:
        raise TypeError(f"{op}: input and w_hh must have the same dtype, got {x.dtype} and {w_hh.dtype}")
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{op}: w_hh must have shape ({gates} * H, H), got {w_hh.shape}")
    H = w_hh.shape[1]
    float_array(w_ih, op, "w_ih")
    if w_ih.dtype != x.dtype:
        raise TypeError(f"{op}: input and w_ih must have the same dtype, got {x.dtype} and {w_ih.dtype}")
    if w_ih.shape != (gates * H, I):
        raise ValueError(f"{op}: w_ih must have shape ({gates * H}, {I}) for input size {I} and hidden size {H}, "
                         f"got {w_ih.shape}")
    b_ih = _optional(b_ih, x, (gates * H,), op, "b_ih")
    b_hh = _optional(b_hh, x, (gates * H,), op, "b_hh")
    h0 = _optional(h0, x, (B, H), op, "hx" if cell else "h0")
    c0 = _optional(c0, x, (B, H), op, "cx" if cell else "c0") if lstm else None
    return [cp.ascontiguousarray(a) for a in (x, w_ih, w_hh)] + [b_ih, b_hh, h0, c0]


def _state(a, B, H, dtype):
    """A (B, H) state of our own (the kernels update it in place): a copy of a, or zeros."""
    return cp.zeros((B, H), dtype=dtype) if a is None else a.copy()


def _states(T, B, H, first, dtype):
    """(T + 1, B, H) with first (or zeros) in row 0."""
    s = cp.empty((T + 1, B, H), dtype=dtype)
    s[0] = 0 if first is None else first
    return s


def _layer_forward(op, tag, lstm, x, h0, c0, w_ih, w_hh, b_ih, b_hh, cell):
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = _layer_args(op, x, h0, c0, w_ih, w_hh, b_ih, b_hh, 4 if lstm else 3, cell,
                                                    lstm)
    T, B, I = x.shape
    H = w_hh.shape[1]
    G = (4 if lstm else 3) * H
    dt = x.dtype
    out = cp.empty((T, B, H), dtype=dt)
    hs = _states(T, B, H, h0, dt)
    cs = _states(T, B, H, c0, dt) if lstm else cp.empty((0, B, H), dtype=dt)
    saved = cp.empty((T, B, 4 * H), dtype=dt)
    gh = cp.empty((B, G), dtype=dt)  # one step's recurrent product
    common = (T, B, I, H, x.data.ptr, w_ih.data.ptr, w_hh.data.ptr, ptr(b_ih), ptr(b_hh), hs.data.ptr)
    if lstm:
        launcher("lstm_forward", dt)(*common, cs.data.ptr, saved.data.ptr, gh.data.ptr, out.data.ptr, stream())
    else:
        gi = cp.empty((T, B, G), dtype=dt)  # the input products of every step
        launcher("gru_forward", dt)(*common, saved.data.ptr, gi.data.ptr, gh.data.ptr, out.data.ptr, stream())
    cache = (tag, x, w_ih, w_hh, hs, cs, saved, b_ih is not None, b_hh is not None)
    return out, hs[T].copy(), cs[T].copy() if lstm else None, cache


def _unpack(cache, tag, op):
    if not (isinstance(cache, tuple) and len(cache) == 9 and cache[0] == tag):
        raise TypeError(f"{op}: cache must be the cache returned by the cuda backend's {tag}_forward")
    return cache[1:]


def _layer_backward(op, tag, lstm, grad_out, grad_hT, grad_cT, cache, cell):
    x, w_ih, w_hh, hs, cs, saved, has_b_ih, has_b_hh = _unpack(cache, tag, op)
    T, B, I = x.shape
    H = w_hh.shape[1]
    G = (4 if lstm else 3) * H
    dt = x.dtype
    go = _optional(grad_out, x, (T, B, H), op, "grad_out")
    dh = _state(_optional(grad_hT, x, (B, H), op, "grad_h" if cell else "grad_h_T"), B, H, dt)
    grad_x = cp.empty((T, B, I), dtype=dt)
    grad_w_ih, grad_w_hh = cp.empty((G, I), dtype=dt), cp.empty((G, H), dtype=dt)
    da = cp.empty((T, B, G), dtype=dt)  # gate gradients of every step (GRU: the input parts)
    common = (T, B, I, H, x.data.ptr, w_ih.data.ptr, w_hh.data.ptr, hs.data.ptr)
    if lstm:
        dc = _state(_optional(grad_cT, x, (B, H), op, "grad_c" if cell else "grad_c_T"), B, H, dt)
        db = cp.empty(G, dtype=dt) if has_b_ih or has_b_hh else None
        launcher("lstm_backward", dt)(*common, cs.data.ptr, saved.data.ptr, ptr(go), dh.data.ptr, dc.data.ptr,
                                      da.data.ptr, grad_x.data.ptr, grad_w_ih.data.ptr, grad_w_hh.data.ptr, ptr(db),
                                      stream())
        db_ih = db if has_b_ih else None
        db_hh = (db.copy() if has_b_ih else db) if has_b_hh else None  # both biases: the same gradient
        states = (dh, dc)
    else:
        dah = cp.empty((T, B, G), dtype=dt)  # the hidden parts
        db_ih = cp.empty(G, dtype=dt) if has_b_ih else None
        db_hh = cp.empty(G, dtype=dt) if has_b_hh else None
        launcher("gru_backward", dt)(*common, saved.data.ptr, ptr(go), dh.data.ptr, da.data.ptr, dah.data.ptr,
                                     grad_x.data.ptr, grad_w_ih.data.ptr, grad_w_hh.data.ptr, ptr(db_ih),
                                     ptr(db_hh), stream())
        states = (dh,)
    gx = grad_x.reshape(B, I) if cell else grad_x
    return (gx,) + states + (grad_w_ih, grad_w_hh, db_ih, db_hh)


def lstm_forward(x_seq, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """An LSTM layer: x_seq (T, B, I), h0, c0 (B, H) or None -> (out (T, B, H), h_T, c_T, cache)."""
    return _layer_forward("lstm_forward", "lstm", True, x_seq, h0, c0, w_ih, w_hh, b_ih, b_hh, False)


def lstm_backward(grad_out, grad_hT, grad_cT, cache):
    """BPTT for lstm_forward -> (grad_x_seq, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _layer_backward("lstm_backward", "lstm", True, grad_out, grad_hT, grad_cT, cache, False)


def gru_forward(x_seq, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """A GRU layer: x_seq (T, B, I), h0 (B, H) or None -> (out (T, B, H), h_T, cache)."""
    out, h, _, cache = _layer_forward("gru_forward", "gru", False, x_seq, h0, None, w_ih, w_hh, b_ih, b_hh, False)
    return out, h, cache


def gru_backward(grad_out, grad_hT, cache):
    """BPTT for gru_forward -> (grad_x_seq, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _layer_backward("gru_backward", "gru", False, grad_out, grad_hT, None, cache, False)


def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: x (B, I), h, c (B, H) (None: zeros) -> (h' (B, H), c' (B, H), cache)."""
    out, _, c1, cache = _layer_forward("lstm_cell_forward", "lstm_cell", True, x, h, c, w_ih, w_hh, b_ih, b_hh, True)
    return out[0], c1, cache


def lstm_cell_backward(grad_h, grad_c, cache):
    """Backward of one LSTM step -> (grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _layer_backward("lstm_cell_backward", "lstm_cell", True, None, grad_h, grad_c, cache, True)


def gru_cell_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: x (B, I), h (B, H) (None: zeros) -> (h' (B, H), cache)."""
    out, _, _, cache = _layer_forward("gru_cell_forward", "gru_cell", False, x, h, None, w_ih, w_hh, b_ih, b_hh, True)
    return out[0], cache


def gru_cell_backward(grad_h, cache):
    """Backward of one GRU step -> (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)."""
    return _layer_backward("gru_cell_backward", "gru_cell", False, None, grad_h, None, cache, True)
