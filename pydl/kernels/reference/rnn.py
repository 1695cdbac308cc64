"""LSTM and GRU cells and their time loops, forward and backward (lecture 10's RNNs).

A recurrent layer reads a sequence one step at a time, carrying a hidden state h (and,
for the LSTM, a cell state c). The gates follow PyTorch's layout: the weights of all
gates are stacked, w_ih (G * H, I) and w_hh (G * H, H), in PyTorch's gate order.

LSTM (G = 4, order i, f, g, o):

    [a_i, a_f, a_g, a_o] = x w_ih^T + b_ih + h w_hh^T + b_hh
    i = sigmoid(a_i)   f = sigmoid(a_f)   g = tanh(a_g)   o = sigmoid(a_o)
    c' = f * c + i * g                  (the cell-state highway: dc = dc' * f)
    h' = o * tanh(c')

GRU (G = 3, order r, z, n):

    r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
    z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
    n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
    h' = (1 - z) * n + z * h

Backward through a step: the element-wise gate math gives the gradient of the
pre-activations (sigmoid' = s (1 - s), tanh' = 1 - t^2), and the two products give the
rest: grad_x = da w_ih, grad_h = da w_hh (+ the direct paths), grad_w = da^T [x | h],
grad_b = sum over the batch of da. A sequence is the cell applied T times; its backward
walks the steps in reverse, adding each step's grad_h to the output gradient of the
step before (back-propagation through time), and sums the weight gradients over steps.

Shapes: x (B, I), h and c (B, H); sequences x_seq (T, B, I), out (T, B, H). Biases may be
None (a layer built with bias=False); their gradients are then None. The cache returned
by a forward is opaque: pass it to the backward of the same backend.
"""
import numpy as np


def _f64(x):
    return None if x is None else np.asarray(x, dtype=np.float64)


def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _check_cell(op, x, h, w_ih, w_hh, b_ih, b_hh, gates, c=None):
    x, h, w_ih, w_hh, b_ih, b_hh, c = (_f64(a) for a in (x, h, w_ih, w_hh, b_ih, b_hh, c))
    if x.ndim != 2:
        raise ValueError(f"{op}: input must have 2 dimensions (B, I), got shape {x.shape}")
    B, I = x.shape
    if w_hh.ndim != 2 or w_hh.shape[0] != gates * w_hh.shape[1]:
        raise ValueError(f"{op}: w_hh must have shape ({gates} * H, H), got {w_hh.shape}")
    H = w_hh.shape[1]
    if w_ih.shape != (gates * H, I):
        raise ValueError(f"{op}: w_ih must have shape ({gates * H}, {I}) for input size {I} and hidden size {H}, "
                         f"got {w_ih.shape}")
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None and b.shape != (gates * H,):
            raise ValueError(f"{op}: {name} must have shape ({gates * H},), got {b.shape}")
    for name, s in (("hx", h), ("cx", c)):
        if s is not None and s.shape != (B, H):
            raise ValueError(f"{op}: {name} must have shape ({B}, {H}), got {s.shape}")
    return x, h, w_ih, w_hh, b_ih, b_hh, c


def _affine(x, w, b):
    """x w^T + b: (B, K), (G*H, K), (G*H,) -> (B, G*H)."""
    y = x @ w.T
    return y if b is None else y + b


def _grad_or_zeros(g, shape):
    return np.zeros(shape) if g is None else _f64(g)


# ---------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------

def lstm_cell_forward(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    """One LSTM step: x (B, I), h (B, H), c (B, H) -> (h' (B, H), c' (B, H), cache).

    Gate order i, f, g, o; w_ih (4H, I), w_hh (4H, H), b_ih and b_hh (4H,) or None.

    >>> x, h, c = np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1))
    >>> w_ih, w_hh = np.array([[0.0], [1.0], [2.0], [3.0]]), np.zeros((4, 1))
    >>> h1, c1, _ = lstm_cell_forward(x, h, c, w_ih, w_hh)
    >>> h1.round(4).tolist(), c1.round(4).tolist()
    ([[0.7979]], [[1.2131]])
    """
    x, h, w_ih, w_hh, b_ih, b_hh, c = _check_cell("lstm_cell_forward", x, h, w_ih, w_hh, b_ih, b_hh, 4, c)
    a = _affine(x, w_ih, b_ih) + _affine(h, w_hh, b_hh)  # (B, 4H) pre-activations
    a_i, a_f, a_g, a_o = np.split(a, 4, axis=1)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    cache = dict(x=x, h=h, c=c, w_ih=w_ih, w_hh=w_hh, bias=(b_ih is not None, b_hh is not None),
                 i=i, f=f, g=g, o=o, c_new=c_new)
    return h_new, c_new, cache


def lstm_cell_backward(grad_h, grad_c, cache):
    """Backward of one LSTM step: grad_h' (B, H), grad_c' (B, H) (either may be None) ->
    (grad_x, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).

    grad_c = dc' * f is the highway: the cell state's gradient passes through the forget
    gate alone, no squashing non-linearity in between.

    >>> x, h, c = np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1))
    >>> w_ih, w_hh = np.array([[0.0], [1.0], [2.0], [3.0]]), np.zeros((4, 1))
    >>> _, _, cache = lstm_cell_forward(x, h, c, w_ih, w_hh)
    >>> grads = lstm_cell_backward(None, np.ones((1, 1)), cache)
    >>> grads[2].round(4).tolist()  # dc = dc' * f = sigmoid(1)
    [[0.7311]]
    """
    i, f, g, o, c_new = cache["i"], cache["f"], cache["g"], cache["o"], cache["c_new"]
    dh = _grad_or_zeros(grad_h, c_new.shape)
    dc = _grad_or_zeros(grad_c, c_new.shape)
    tc = np.tanh(c_new)
    do = dh * tc
    dc = dc + dh * o * (1.0 - tc * tc)            # through h' = o * tanh(c')
    di, dg, df = dc * g, dc * i, dc * cache["c"]
    da = np.concatenate([di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - g * g), do * o * (1.0 - o)],
                        axis=1)                   # (B, 4H) gradient of the pre-activations
    has_b_ih, has_b_hh = cache["bias"]
    db = da.sum(axis=0)
    return (da @ cache["w_ih"], da @ cache["w_hh"], dc * f, da.T @ cache["x"], da.T @ cache["h"],
            db if has_b_ih else None, db.copy() if has_b_hh else None)


def lstm_forward(x_seq, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None):
    """An LSTM layer over a sequence: x_seq (T, B, I), h0 (B, H), c0 (B, H) ->
    (out (T, B, H), h_T (B, H), c_T (B, H), cache). h0 / c0 may be None (zeros).

    >>> x = np.ones((3, 1, 1)); w_ih, w_hh = np.ones((4, 1)), np.ones((4, 1))
    >>> out, hT, cT, _ = lstm_forward(x, None, None, w_ih, w_hh)
    >>> out[:, 0, 0].round(4).tolist()
    [0.3696, 0.6505, 0.7888]
    """
    x_seq, w_hh = _f64(x_seq), _f64(w_hh)
    if x_seq.ndim != 3:
        raise ValueError(f"lstm_forward: input must have 3 dimensions (T, B, I), got shape {x_seq.shape}")
    T, B = x_seq.shape[:2]
    H = w_hh.shape[1] if w_hh.ndim == 2 else 0
    h = np.zeros((B, H)) if h0 is None else _f64(h0)
    c = np.zeros((B, H)) if c0 is None else _f64(c0)
    _check_cell("lstm_forward", np.zeros(x_seq.shape[1:]), h, w_ih, w_hh, b_ih, b_hh, 4, c)
    out, steps = [], []
    for t in range(T):
        h, c, step = lstm_cell_forward(x_seq[t], h, c, w_ih, w_hh, b_ih, b_hh)
        out.append(h)
        steps.append(step)
    out = np.stack(out) if T else np.zeros((0, B, H))
    return out, h, c, dict(steps=steps, shape=(T, B, x_seq.shape[2], H), w_ih=_f64(w_ih), w_hh=w_hh,
                           bias=(b_ih is not None, b_hh is not None))


def lstm_backward(grad_out, grad_hT, grad_cT, cache):
    """Back-propagation through time for lstm_forward: grad_out (T, B, H), grad_h_T and grad_c_T
    (B, H) (any may be None) -> (grad_x_seq, grad_h0, grad_c0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).
    """
    T, B, I, H = cache["shape"]
    g_out = _grad_or_zeros(grad_out, (T, B, H))
    dh, dc = _grad_or_zeros(grad_hT, (B, H)), _grad_or_zeros(grad_cT, (B, H))
    dx = np.zeros((T, B, I))
    dw_ih, dw_hh = np.zeros_like(cache["w_ih"]), np.zeros_like(cache["w_hh"])
    db_ih, db_hh = np.zeros(4 * H), np.zeros(4 * H)
    for t in reversed(range(T)):
        dx[t], dh, dc, gw_ih, gw_hh, gb_ih, gb_hh = lstm_cell_backward(dh + g_out[t], dc, cache["steps"][t])
        dw_ih += gw_ih
        dw_hh += gw_hh
        db_ih += 0.0 if gb_ih is None else gb_ih
        db_hh += 0.0 if gb_hh is None else gb_hh
    has_b_ih, has_b_hh = cache["bias"]
    return dx, dh, dc, dw_ih, dw_hh, db_ih if has_b_ih else None, db_hh if has_b_hh else None


# ---------------------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------------------

def gru_cell_forward(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One GRU step: x (B, I), h (B, H) -> (h' (B, H), cache).

    Gate order r, z, n; w_ih (3H, I), w_hh (3H, H), b_ih and b_hh (3H,) or None. The reset
    gate multiplies the hidden part of n *after* its product: n = tanh(x W_in^T + b_in +
    r * (h W_hn^T + b_hn)), PyTorch's formula.

    >>> x, h = np.ones((1, 1)), np.full((1, 1), 0.5)
    >>> w_ih, w_hh = np.array([[0.0], [1.0], [2.0]]), np.ones((3, 1))
    >>> h1, _ = gru_cell_forward(x, h, w_ih, w_hh)
    >>> h1.round(4).tolist()
    [[0.5877]]
    """
    x, h, w_ih, w_hh, b_ih, b_hh, _ = _check_cell("gru_cell_forward", x, h, w_ih, w_hh, b_ih, b_hh, 3)
    gi = _affine(x, w_ih, b_ih)  # (B, 3H)
    gh = _affine(h, w_hh, b_hh)  # (B, 3H)
    gi_r, gi_z, gi_n = np.split(gi, 3, axis=1)
    gh_r, gh_z, gh_n = np.split(gh, 3, axis=1)
    r, z = sigmoid(gi_r + gh_r), sigmoid(gi_z + gh_z)
    n = np.tanh(gi_n + r * gh_n)
    h_new = (1.0 - z) * n + z * h
    cache = dict(x=x, h=h, w_ih=w_ih, w_hh=w_hh, bias=(b_ih is not None, b_hh is not None),
                 r=r, z=z, n=n, gh_n=gh_n)
    return h_new, cache


def gru_cell_backward(grad_h, cache):
    """Backward of one GRU step: grad_h' (B, H) ->
    (grad_x, grad_h, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).

    >>> x, h = np.ones((1, 1)), np.full((1, 1), 0.5)
    >>> w_ih, w_hh = np.array([[0.0], [1.0], [2.0]]), np.ones((3, 1))
    >>> _, cache = gru_cell_forward(x, h, w_ih, w_hh)
    >>> [g.round(4).tolist() for g in gru_cell_backward(np.ones((1, 1)), cache)[:2]]
    [[[-0.0576]], [[0.7511]]]
    """
    r, z, n, gh_n, h = cache["r"], cache["z"], cache["n"], cache["gh_n"], cache["h"]
    dh_new = _grad_or_zeros(grad_h, h.shape)
    dn = dh_new * (1.0 - z)
    dz = dh_new * (h - n)
    da_n = dn * (1.0 - n * n)                      # gradient of n's pre-activation
    dr = da_n * gh_n
    da_r, da_z = dr * r * (1.0 - r), dz * z * (1.0 - z)
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)        # (B, 3H) d(x w_ih^T + b_ih)
    dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)    # (B, 3H) d(h w_hh^T + b_hh)
    has_b_ih, has_b_hh = cache["bias"]
    return (dgi @ cache["w_ih"], dgh @ cache["w_hh"] + dh_new * z, dgi.T @ cache["x"], dgh.T @ h,
            dgi.sum(axis=0) if has_b_ih else None, dgh.sum(axis=0) if has_b_hh else None)


def gru_forward(x_seq, h0, w_ih, w_hh, b_ih=None, b_hh=None):
    """A GRU layer over a sequence: x_seq (T, B, I), h0 (B, H) or None -> (out (T, B, H), h_T, cache).

    >>> x = np.ones((3, 1, 1)); w_ih, w_hh = np.ones((3, 1)), np.ones((3, 1))
    >>> out, hT, _ = gru_forward(x, None, w_ih, w_hh)
    >>> out[:, 0, 0].round(4).tolist()
    [0.2048, 0.3468, 0.4517]
    """
    x_seq, w_hh = _f64(x_seq), _f64(w_hh)
    if x_seq.ndim != 3:
        raise ValueError(f"gru_forward: input must have 3 dimensions (T, B, I), got shape {x_seq.shape}")
    T, B = x_seq.shape[:2]
    H = w_hh.shape[1] if w_hh.ndim == 2 else 0
    h = np.zeros((B, H)) if h0 is None else _f64(h0)
    _check_cell("gru_forward", np.zeros(x_seq.shape[1:]), h, w_ih, w_hh, b_ih, b_hh, 3)
    out, steps = [], []
    for t in range(T):
        h, step = gru_cell_forward(x_seq[t], h, w_ih, w_hh, b_ih, b_hh)
        out.append(h)
        steps.append(step)
    out = np.stack(out) if T else np.zeros((0, B, H))
    return out, h, dict(steps=steps, shape=(T, B, x_seq.shape[2], H), w_ih=_f64(w_ih), w_hh=w_hh,
                        bias=(b_ih is not None, b_hh is not None))


def gru_backward(grad_out, grad_hT, cache):
    """Back-propagation through time for gru_forward: grad_out (T, B, H), grad_h_T (B, H) (either
    may be None) -> (grad_x_seq, grad_h0, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).
    """
    T, B, I, H = cache["shape"]
    g_out = _grad_or_zeros(grad_out, (T, B, H))
    dh = _grad_or_zeros(grad_hT, (B, H))
    dx = np.zeros((T, B, I))
    dw_ih, dw_hh = np.zeros_like(cache["w_ih"]), np.zeros_like(cache["w_hh"])
    db_ih, db_hh = np.zeros(3 * H), np.zeros(3 * H)
    for t in reversed(range(T)):
        dx[t], dh, gw_ih, gw_hh, gb_ih, gb_hh = gru_cell_backward(dh + g_out[t], cache["steps"][t])
        dw_ih += gw_ih
        dw_hh += gw_hh
        db_ih += 0.0 if gb_ih is None else gb_ih
        db_hh += 0.0 if gb_hh is None else gb_hh
    has_b_ih, has_b_hh = cache["bias"]
    return dx, dh, dw_ih, dw_hh, db_ih if has_b_ih else None, db_hh if has_b_hh else None
