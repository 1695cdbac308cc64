"""The two classification losses of lecture 3: softmax cross-entropy and the multiclass
SVM (hinge) loss, forward ``-> (loss, cache)`` and backward ``(grad_loss, cache)``.

For scores s (N, C) and the right class y_i of each row:

    cross-entropy  L_i = -log( exp(s_{y_i}) / sum_j exp(s_j) )
    SVM            L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + 1)

cross_entropy follows PyTorch's F.cross_entropy with class-index targets (class weights,
ignore_index, label smoothing, reductions); svm_loss is the seeds' hinge loss with a
margin (PyTorch's multi_margin_loss is this divided by C).
"""
import numpy as np

from .softmax import log_softmax_forward

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _scores_and_target(scores, target, op, arg):
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"{op}: {arg} must have 2 dimensions (N, C), got shape {s.shape}")
    if s.shape[1] == 0:
        raise ValueError(f"{op}: {arg} must have at least one class, got shape {s.shape}")
    t = np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got {t.dtype}")
    if t.shape != (s.shape[0],):
        raise ValueError(f"{op}: target must have shape (N,) = ({s.shape[0]},), got {t.shape}")
    return s, t.astype(np.int64)


def _check_range(t, C, op, counts):
    bad = np.flatnonzero(counts & ((t < 0) | (t >= C)))
    if bad.size:
        i = bad[0]
        raise ValueError(f"{op}: target index {t[i]} out of range for {C} classes (at target[{i}])")


def _grad_scale(grad_loss, reduction, N, op):
    """grad_loss as something that broadcasts against an (N, C) gradient."""
    g = np.asarray(grad_loss, dtype=np.float64)
    if reduction == "none":
        if g.shape != (N,):
            raise ValueError(f"{op}: grad_loss must have shape (N,) = ({N},) for reduction='none', got {g.shape}")
        return g[:, None]
    if g.ndim != 0:
        raise ValueError(f"{op}: grad_loss must be a scalar (0-d) for reduction={reduction!r}, got shape {g.shape}")
    return g


def cross_entropy_forward(logits, target, weight=None, *, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Softmax cross-entropy of logits (N, C) against class indices target (N,).

    Each row is the cross-entropy between a target distribution q and p = softmax(z):
    ``L_i = -sum_c q_c log p_c`` with ``q_c = (1 - eps) w_{y_i} [c == y_i] + eps / C * w_c``
    (w: class weights, all 1 by default; eps: label_smoothing). Rows whose target is
    ignore_index count for nothing. reduction: "mean" divides the sum by the total weight
    of the counted targets (NaN when there are none, as PyTorch), "sum", or "none" (N,).
    Returns (loss, cache); loss is 0-d for "mean"/"sum".

    >>> loss, _ = cross_entropy_forward([[3.2, 5.1, -1.7]], [0])  # lecture 3's cat image
    >>> round(float(loss), 4)
    2.0404
    """
    op = "cross_entropy"
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    z, t = _scores_and_target(logits, target, op, "logits")
    N, C = z.shape
    if weight is None:
        w = np.ones(C)
    else:
        w = np.asarray(weight, dtype=np.float64)
        if w.shape != (C,):
            raise ValueError(f"{op}: weight must have shape (C,) = ({C},), got {w.shape}")
    counts = t != ignore_index
    _check_range(t, C, op, counts)
    y = np.where(counts, t, 0)

    logp = log_softmax_forward(z)  # (N, C)
    q = label_smoothing / C * np.tile(w, (N, 1))  # (N, C): the smoothed, weighted target
    q[np.arange(N), y] += (1.0 - label_smoothing) * w[y]
    q[~counts] = 0.0
    with np.errstate(invalid="ignore"):
        per_row = np.where(counts, -np.sum(q * logp, axis=1), 0.0)  # (N,)
    total_weight = np.sum(w[y][counts])
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = np.array(per_row.sum() / total_weight)
    elif reduction == "sum":
        loss = np.array(per_row.sum())
    else:
        loss = per_row
    cache = dict(logp=logp, q=q, counts=counts, reduction=reduction, total_weight=total_weight)
    return loss, cache


def cross_entropy_backward(grad_loss, cache):
    """d loss / d logits (N, C) given d(final) / d loss (0-d, or (N,) for "none").

    With p = softmax(z): dL_i/dz_c = sum_k q_k p_c - q_c (the usual "p - onehot" when
    q is one-hot), zero on ignored rows; "mean" divides by the total target weight.

    >>> _, cache = cross_entropy_forward([[0.0, 0.0]], [1])
    >>> cross_entropy_backward(1.0, cache)
    array([[ 0.5, -0.5]])
    """
    p = np.exp(cache["logp"])
    q = cache["q"]
    g = _grad_scale(grad_loss, cache["reduction"], p.shape[0], "cross_entropy_backward")
    with np.errstate(divide="ignore", invalid="ignore"):
        if cache["reduction"] == "mean":
            g = g / cache["total_weight"]
        return np.where(cache["counts"][:, None], (q.sum(axis=1, keepdims=True) * p - q) * g, 0.0)


def svm_loss_forward(scores, target, *, margin=1.0, reduction="mean"):
    """Multiclass SVM hinge loss of scores (N, C) against class indices target (N,).

    ``L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin)``: zero once the right class
    beats every other by the margin. reduction "mean" (over N; NaN for N = 0), "sum" or
    "none" (N,). Returns (loss, cache).

    Lecture 3's example (scores of the cat, car and frog images, one row each):

    >>> scores = [[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]]
    >>> loss, _ = svm_loss_forward(scores, [0, 1, 2], reduction="none")
    >>> loss.round(2)
    array([ 2.9,  0. , 12.9])
    """
    op = "svm_loss"
    _check_reduction(reduction, op)
    s, t = _scores_and_target(scores, target, op, "scores")
    N, C = s.shape
    _check_range(t, C, op, np.ones(N, dtype=bool))
    rows = np.arange(N)
    margins = s - s[rows, t][:, None] + margin  # (N, C)
    hinge = np.maximum(0.0, margins)  # NaN stays NaN
    hinge[rows, t] = 0.0  # j != y_i
    per_row = hinge.sum(axis=1)
    if reduction == "mean":
        with np.errstate(invalid="ignore"):
            loss = np.array(per_row.sum() / N)
    elif reduction == "sum":
        loss = np.array(per_row.sum())
    else:
        loss = per_row
    return loss, dict(margins=margins, target=t, reduction=reduction)


def svm_loss_backward(grad_loss, cache):
    """d loss / d scores (N, C) given d(final) / d loss (0-d, or (N,) for "none").

    Each active margin (s_j - s_y + margin > 0, j != y) adds 1 to ds_j and -1 to ds_y:
    the max gate routes the gradient to the margins that are on.

    >>> _, cache = svm_loss_forward([[3.2, 5.1, -1.7]], [0])
    >>> svm_loss_backward(1.0, cache)
    array([[-1.,  1.,  0.]])
    """
    margins, t = cache["margins"], cache["target"]
    N = margins.shape[0]
    rows = np.arange(N)
    active = (margins > 0).astype(np.float64)
    active[rows, t] = 0.0
    grad = active
    grad[rows, t] = -active.sum(axis=1)
    g = _grad_scale(grad_loss, cache["reduction"], N, "svm_loss_backward")
    if cache["reduction"] == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g / N
    return grad * g
