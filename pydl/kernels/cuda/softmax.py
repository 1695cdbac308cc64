"""softmax, log_softmax and the fused losses on the GPU (csrc/cuda/softmax.cu).

Same signatures, checks and return values as :mod:`pydl.kernels.reference.softmax` /
:mod:`pydl.kernels.reference.losses` and the CPU binding. The fused losses return
``(loss, cache)``: the cache holds the gradient for grad_loss = 1, computed in the same
pass as the loss; the first backward hands it out (scaled by grad_loss), a second one
through the same cache runs the forward again (as the CPU's LossCache does).
"""
from ._common import cp, float_array, launcher, ptr, stream

OPS = ("softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
       "cross_entropy_forward", "cross_entropy_backward", "svm_loss_forward", "svm_loss_backward")

_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------------------------------
# softmax / log_softmax
# ---------------------------------------------------------------------------------------

def _rows(x, op, name):
    float_array(x, op, name)
    if x.ndim == 0:
        raise ValueError(f"{op}: {name} must have at least 1 dimension, got a 0-d array")
    return cp.ascontiguousarray(x)


def _forward(x, log):
    op = "log_softmax" if log else "softmax"
    x = _rows(x, op, "x")
    y = cp.empty(x.shape, x.dtype)
    if x.size:
        C = x.shape[-1]
        launcher("softmax_forward", x.dtype)(x.data.ptr, y.data.ptr, x.size // C, C, log, stream())
    return y


def _backward(grad_y, y, log):
    op = "log_softmax_backward" if log else "softmax_backward"
    g = _rows(grad_y, op, "grad_y")
    y = _rows(y, op, "y")
    if g.dtype != y.dtype:
        raise TypeError(f"{op}: grad_y and y must have the same dtype, got {g.dtype} and {y.dtype}")
    if g.shape != y.shape:
        raise ValueError(f"{op}: grad_y must have the shape of y {tuple(y.shape)}, got {tuple(g.shape)}")
    gx = cp.empty(y.shape, y.dtype)
    if y.size:
        C = y.shape[-1]
        launcher("softmax_backward", y.dtype)(g.data.ptr, y.data.ptr, gx.data.ptr, y.size // C, C, log, stream())
    return gx


def softmax_forward(x):
    """softmax over the last axis: (..., C) -> (..., C), CuPy float32 / float64."""
    return _forward(x, False)


def softmax_backward(grad_y, y):
    """grad_x = y * (grad_y - sum(grad_y * y, -1)), from softmax's output y."""
    return _backward(grad_y, y, False)


def log_softmax_forward(x):
    """log_softmax over the last axis: (..., C) -> (..., C), CuPy float32 / float64."""
    return _forward(x, True)


def log_softmax_backward(grad_y, y):
    """grad_x = grad_y - exp(y) * sum(grad_y, -1), from log_softmax's output y."""
    return _backward(grad_y, y, True)


# ---------------------------------------------------------------------------------------
# Fused losses
# ---------------------------------------------------------------------------------------

class LossCache:
    """What a fused loss's backward needs (opaque): the gradient for grad_loss = 1, or,
    once handed out, a way to compute it again."""

    def __init__(self, op, reduction, grad, rerun):
        self.op, self.reduction, self.grad, self._rerun = op, reduction, grad, rerun
        self.N, self.C = grad.shape
        self.dtype = grad.dtype

    def __repr__(self):
        state = ", handed out>" if self.grad is None else ">"
        return (f"<{self.op} cache: reduction='{self.reduction}', gradient ({self.N}, {self.C}) "
                f"{self.dtype}{state}")


def _check_reduction(op, reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got '{reduction}'")


def _scores(op, name, x):
    float_array(x, op, name)
    if x.ndim != 2:
        raise ValueError(f"{op}: {name} must have 2 dimensions (N, C), got shape {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError(f"{op}: {name} must have at least one class, got shape {tuple(x.shape)}")
    return cp.ascontiguousarray(x)


def _target(op, target, N):
    """target (N,) of any integer dtype (CuPy, or NumPy copied over) as contiguous int64."""
    t = target if isinstance(target, cp.ndarray) else cp.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got {t.dtype}")
    if t.shape != (N,):
        raise ValueError(f"{op}: target must have shape (N,) = ({N},), got {tuple(t.shape)}")
    return cp.ascontiguousarray(t, dtype=cp.int64)


def _check_range(op, t, C, counts):
    bad = counts & ((t < 0) | (t >= C))
    if bool(bad.any()):  # one host synchronisation: bad input raises, as on the CPU
        i = int(cp.flatnonzero(bad)[0])
        raise ValueError(f"{op}: target index {int(t[i])} out of range for {C} classes (at target[{i}])")


def _reduce(row_loss, reduction, denominator, dtype):
    """The loss from the (N,) float64 row losses: (N,) for 'none', else 0-d."""
    if reduction == "none":
        return row_loss.astype(dtype)
    total = row_loss.sum()
    if reduction == "mean":
        total = total / denominator  # 0 / 0 is NaN, as in PyTorch
    return total.astype(dtype)


def _cross_entropy_run(logits, target, weight, ignore_index, label_smoothing, reduction):
    op = "cross_entropy"
    z = _scores(op, "logits", logits)
    N, C = z.shape
    t = _target(op, target, N)
    counts = t != ignore_index
    _check_range(op, t, C, counts)
    w = None
    if weight is not None:
        float_array(weight, op, "weight")
        if weight.shape != (C,):
            raise ValueError(f"{op}: weight must have shape (C,) = ({C},), got {tuple(weight.shape)}")
        w = cp.ascontiguousarray(weight, dtype=z.dtype)
    # sums = (S_w, the total weight of the targets that count): device values, no sync
    if w is None:
        sums = cp.stack([cp.asarray(float(C)), counts.sum(dtype=cp.float64)])
    else:
        w64 = w.astype(cp.float64)
        sums = cp.stack([w64.sum(), cp.where(counts, w64[cp.where(counts, t, 0)], 0.0).sum()])
    grad = cp.empty((N, C), z.dtype)
    row_loss = cp.empty(N, cp.float64)
    if N:
        launcher("cross_entropy", z.dtype)(N, C, z.data.ptr, t.data.ptr, ptr(w), sums.data.ptr, reduction == "mean",
                                           int(ignore_index), float(label_smoothing), grad.data.ptr,
                                           row_loss.data.ptr, stream())
    return _reduce(row_loss, reduction, sums[1], z.dtype), grad


def cross_entropy_forward(logits, target, weight=None, *, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """Fused softmax cross-entropy (PyTorch's with class-index targets): ``(loss, cache)``.

    logits (N, C) CuPy float, target (N,) integers, weight (C,) or None; loss is 0-d for
    'mean' / 'sum', (N,) for 'none'.
    """
    op = "cross_entropy"
    _check_reduction(op, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    loss, grad = _cross_entropy_run(logits, target, weight, ignore_index, label_smoothing, reduction)

    def rerun():
        return _cross_entropy_run(logits, target, weight, ignore_index, label_smoothing, reduction)[1]

    return loss, LossCache(op, reduction, grad, rerun)


def _svm_run(scores, target, margin, reduction):
    op = "svm_loss"
    s = _scores(op, "scores", scores)
    N, C = s.shape
    t = _target(op, target, N)
    _check_range(op, t, C, cp.ones(N, dtype=bool))
    grad = cp.empty((N, C), s.dtype)
    row_loss = cp.empty(N, cp.float64)
    if N:
        launcher("svm_loss", s.dtype)(s.data.ptr, t.data.ptr, N, C, float(margin),
                                      1.0 / N if reduction == "mean" else 1.0, grad.data.ptr, row_loss.data.ptr,
                                      stream())
    return _reduce(row_loss, reduction, float(N), s.dtype), grad


def svm_loss_forward(scores, target, *, margin=1.0, reduction="mean"):
    """Multiclass SVM hinge loss ``L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin)``: ``(loss, cache)``."""
    op = "svm_loss"
    _check_reduction(op, reduction)
    loss, grad = _svm_run(scores, target, margin, reduction)
    return loss, LossCache(op, reduction, grad, lambda: _svm_run(scores, target, margin, reduction)[1])


def _loss_backward(op, grad_loss, cache):
    name = op + "_backward"
    if not isinstance(cache, LossCache):
        raise TypeError(f"{name}: cache must be the cache returned by {op}_forward, got {type(cache).__name__}")
    if cache.op != op:
        raise TypeError(f"{name}: cache must come from {op}_forward, got one from {cache.op}_forward")
    N, dtype = cache.N, cache.dtype
    if cache.reduction == "none":
        gl = cp.asarray(grad_loss)
        if gl.dtype.kind != "f":
            raise TypeError(f"{name}: grad_loss must be float32 or float64, got {gl.dtype}")
        if gl.shape != (N,):
            raise ValueError(f"{name}: grad_loss must have shape (N,) = ({N},) for reduction='none', "
                             f"got {tuple(gl.shape)}")
        scale = gl.astype(dtype).reshape(N, 1)
    elif isinstance(grad_loss, cp.ndarray):
        if grad_loss.ndim != 0:
            raise ValueError(f"{name}: grad_loss must be a scalar (0-d) for reduction='{cache.reduction}', "
                             f"got shape {tuple(grad_loss.shape)}")
        scale = grad_loss.astype(dtype)
    else:
        if getattr(grad_loss, "ndim", 0) != 0:
            raise ValueError(f"{name}: grad_loss must be a scalar (0-d) for reduction='{cache.reduction}', "
                             f"got shape {grad_loss.shape}")
        try:
            scale = float(grad_loss)
        except (TypeError, ValueError):
            raise TypeError(f"{name}: grad_loss must be a number or a 0-d array, got "
                            f"{type(grad_loss).__name__}") from None
    grad = cache._rerun() if cache.grad is None else cache.grad
    cache.grad = None  # handed out: the caller owns it now
    if not (isinstance(scale, float) and scale == 1.0) and grad.size:
        grad *= scale
    return grad


def cross_entropy_backward(grad_loss, cache):
    """d loss / d logits (N, C), scaled by grad_loss (0-d, or (N,) for 'none')."""
    return _loss_backward("cross_entropy", grad_loss, cache)


def svm_loss_backward(grad_loss, cache):
    """d loss / d scores (N, C), scaled by grad_loss (0-d, or (N,) for 'none')."""
    return _loss_backward("svm_loss", grad_loss, cache)
