"""Loss functions (PyTorch's names, arguments and reductions).

The classification losses of lecture 3 run on the fused kernels of the softmax family:
cross-entropy L_i = -log softmax(s)_{y_i} (``cross_entropy_forward/backward``, which
compute the gradient in the same pass) and the multiclass SVM hinge loss
L_i = sum_{j != y_i} max(0, s_j - s_{y_i} + margin) (``svm_loss_forward/backward``;
PyTorch's ``multi_margin_loss`` is that divided by the number of classes C). Other
losses are written with tensor operations, so autograd differentiates them (with respect
to the target too), or with a short closed-form backward.
"""
import numpy as np

from ..._device import array_module, asarray_on, check_same_device
from ..._ops import unary as _un
from ...autograd.function import Node, sum_to_shape
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make
from ._activation import _kernel, log_softmax

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "huber_loss", "kl_div",
           "l1_loss", "mse_loss", "multi_margin_loss", "nll_loss", "smooth_l1_loss", "svm_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _legacy_reduction(size_average, reduce, reduction):
    """PyTorch's deprecated size_average / reduce flags, mapped to ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _check_reduction(reduction, op, extra=()):
    if reduction not in _REDUCTIONS + tuple(extra):
        raise ValueError(f"{op}: {reduction!r} is not a valid value for reduction "
                         f"(expected one of {', '.join(_REDUCTIONS + tuple(extra))})")


def _reduce(loss, reduction):
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _array(x):
    return x.data if isinstance(x, Tensor) else (None if x is None else np.asarray(x))


def _classes_last(input, op):
    """(N, C, d1, ...) -> ((N*d1*..., C) tensor, spatial shape); (N, C) and (C,) pass through."""
    if input.ndim == 1:
        return input.reshape(1, -1), None
    if input.ndim == 2:
        return input, ()
    rest = tuple(input.shape[2:])
    moved = input.permute(0, *range(2, input.ndim), 1)
    return moved.reshape(-1, input.shape[1]), rest


def _targets_flat(target, input, spatial, op):
    t = _array(target)
    if t.dtype.kind not in "iu":
        raise RuntimeError(f"{op}: expected integer class indices as target (Long), got {t.dtype}")
    if spatial is None:
        if t.ndim != 0 and t.shape != (1,):
            raise RuntimeError(f"{op}: for an unbatched input of shape {tuple(input.shape)} the target must be 0-d, "
                               f"got shape {tuple(t.shape)}")
        return t.reshape(1).astype(np.int64, copy=False)
    expected = (input.shape[0],) + spatial
    if t.shape != expected:
        raise ValueError(f"{op}: expected target of shape {expected} for input of shape {tuple(input.shape)}, "
                         f"got {tuple(t.shape)}")
    return t.reshape(-1).astype(np.int64, copy=False)


def _unflatten_none(loss, input, spatial):
    """Per-element losses of ``reduction='none'`` back in the target's shape."""
    if spatial is None:
        return loss.reshape(())
    if spatial:
        return loss.reshape((input.shape[0],) + spatial)
    return loss


class _FusedLossBackward(Node):
    """The fused kernels keep dL/dscores in their cache; backward scales it by the
    upstream gradient (``*_backward(grad_loss, cache)``)."""

    label = None  # read after backward too, when the engine has freed the instance's fields

    def __init__(self, edges, backward_fn, cache, scale, dtype, label):
        self.next_edges = edges
        self.backward_fn, self.cache, self.scale, self.dtype = backward_fn, cache, scale, dtype
        self.label = label

    def name(self):
        return self.label or "FusedLossBackward"

    def backward(self, grad):
        g = grad.astype(self.dtype, copy=False)
        if self.scale != 1.0:
            g = g * self.scale
        return (self.backward_fn(g, self.cache),)


def _weight_array(weight, C, dtype, op):
    if weight is None:
        return None
    w = _array(weight)
    if w.shape != (C,):
        raise RuntimeError(f"{op}: weight tensor should be defined either for all {C} classes or no classes but got "
                           f"weight tensor of shape: {tuple(w.shape)}")
    return w.astype(dtype, copy=False)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    """Softmax cross-entropy between logits and class indices or class probabilities.

    input (N, C), (C,) or (N, C, d1, ...); target (N,) / () / (N, d1, ...) integer class
    indices, or probabilities of the input's shape. ``weight`` (C,) rescales classes,
    ``ignore_index`` drops targets, ``label_smoothing`` mixes the target with the uniform
    distribution. "mean" divides by the summed weight of the counted targets.

    >>> F = pydl.nn.functional
    >>> round(F.cross_entropy(pydl.tensor([[3.2, 5.1, -1.7]]), pydl.tensor([0])).item(), 4)
    2.0404
    """
    op = "cross_entropy"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    if input.data.dtype.kind != "f":
        raise RuntimeError(f"{op}: expected floating point logits, got {input.data.dtype}")
    t_arr = _array(target)
    if t_arr.dtype.kind == "f":
        return _cross_entropy_probs(input, target, weight, reduction, label_smoothing)
    x2, spatial = _classes_last(input, op)
    t = _targets_flat(target, input, spatial, op)
    C = x2.shape[1]
    w = _weight_array(weight, C, x2.dtype, op)
    if t.__class__ is not x2.data.__class__ or w is not None and w.__class__ is not t.__class__:
        check_same_device(op, x2.data, t, w)
    kernel = _kernel("cross_entropy_forward", x2.data)
    if kernel is not None:
        try:
            loss, cache = kernel(x2.data, t, w, ignore_index=ignore_index, label_smoothing=label_smoothing,
                                 reduction=reduction)
        except ValueError as e:
            raise IndexError(str(e)) if "out of range" in str(e) else e from None
        backward_fn = _kernel("cross_entropy_backward", x2.data)
        if GradMode.enabled and x2.requires_grad:
            out = _make(loss, _FusedLossBackward((x2.grad_fn or x2,), backward_fn, cache, 1.0, x2.dtype,
                                                 "CrossEntropyLossBackward"))
        else:
            out = _make(loss)
    else:
        out = _cross_entropy_composite(x2, t, w, ignore_index, label_smoothing, reduction)
    return _unflatten_none(out, input, spatial) if reduction == "none" else out


def _cross_entropy_composite(x2, t, w, ignore_index, label_smoothing, reduction):
    """The same loss from log_softmax and tensor ops (for devices/dtypes without the kernel)."""
    N, C = x2.shape
    counts = t != ignore_index
    bad = counts & ((t < 0) | (t >= C))
    if bad.any():
        raise IndexError(f"cross_entropy: target index {t[np.flatnonzero(bad)[0]]} out of range for {C} classes")
    xp = array_module(x2.data)
    y = np.where(counts, t, 0)
    wv = xp.ones(C, dtype=x2.dtype) if w is None else w
    q = np.tile(label_smoothing / C * wv, (N, 1))
    q[xp.arange(N), y] += (1.0 - label_smoothing) * wv[y]
    q[~counts] = 0
    per_row = -(log_softmax(x2, 1) * q.astype(x2.dtype)).sum(1)
    if reduction == "mean":
        return per_row.sum() / float(wv[y][counts].sum())
    return _reduce(per_row, reduction)


def _cross_entropy_probs(input, target, weight, reduction, label_smoothing):
    """Targets that are class probabilities: L_n = -sum_c w_c q_nc log p_nc."""
    if not isinstance(target, Tensor):
        target = _make(asarray_on(input.data, target, dtype=input.dtype))
    if target.shape != input.shape:
        raise ValueError(f"cross_entropy: probability targets must have the input's shape {tuple(input.shape)}, got "
                         f"{tuple(target.shape)}")
    x2, spatial = _classes_last(input, "cross_entropy")
    q2, _ = _classes_last(target, "cross_entropy")
    C = x2.shape[1]
    if label_smoothing > 0:
        q2 = q2 * (1 - label_smoothing) + label_smoothing / C
    logp = log_softmax(x2, 1)
    w = _weight_array(weight, C, x2.dtype, "cross_entropy")
    terms = logp * q2 if w is None else logp * q2 * w
    per = -terms.sum(1)
    if reduction == "none":
        return _unflatten_none(per, input, spatial)
    return _reduce(per, reduction)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    """Negative log likelihood of log-probabilities: L_n = -w_{y_n} input[n, y_n].

    input (N, C), (C,) or (N, C, d1, ...); "mean" divides by the summed weight of the
    counted targets.
    """
    op = "nll_loss"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    x2, spatial = _classes_last(input, op)
    t = _targets_flat(target, input, spatial, op)
    check_same_device(op, x2.data, t)
    xp = array_module(t)
    N, C = x2.shape
    counts = t != ignore_index
    bad = counts & ((t < 0) | (t >= C))
    if bad.any():
        raise IndexError(f"{op}: target {t[np.flatnonzero(bad)[0]]} is out of bounds for {C} classes")
    y = np.where(counts, t, 0)
    w = _weight_array(weight, C, x2.dtype, op)
    coef = (xp.ones(N, dtype=x2.dtype) if w is None else w[y]) * counts  # (N,): w_{y_n}, 0 if ignored
    picked = x2[xp.arange(N), y]  # the gather: its gradient is scattered back (copy gate)
    per = -(picked * coef.astype(x2.dtype))
    if reduction == "none":
        return _unflatten_none(per, input, spatial)
    if reduction == "sum":
        return per.sum()
    return per.sum() / float(coef.sum())


def _svm(input, target, margin, reduction, op, divide_by_c, p=1, weight=None):
    _check_reduction(reduction, op)
    if input.ndim not in (1, 2):
        raise ValueError(f"{op}: input must be (N, C) or (C,), got shape {tuple(input.shape)}")
    x2, spatial = _classes_last(input, op)
    t = _targets_flat(target, input, spatial, op)
    N, C = x2.shape
    if ((t < 0) | (t >= C)).any():
        raise IndexError(f"{op}: target index out of range for {C} classes")
    scale = 1.0 / C if divide_by_c else 1.0
    kernel = _kernel("svm_loss_forward", x2.data) if p == 1 and weight is None else None
    if kernel is not None:
        loss, cache = kernel(x2.data, t, margin=margin, reduction=reduction)
        if scale != 1.0:
            loss = loss * loss.dtype.type(scale)
        if GradMode.enabled and x2.requires_grad:
            out = _make(loss, _FusedLossBackward((x2.grad_fn or x2,), _kernel("svm_loss_backward", x2.data), cache,
                                                 scale, x2.dtype, "MultiMarginLossBackward"))
        else:
            out = _make(loss)
    else:
        xp = array_module(t)
        rows = xp.arange(N)
        margins = x2 - x2[rows, t].reshape(-1, 1) + margin
        mask = xp.ones((N, C), dtype=x2.dtype)
        mask[rows, t] = 0
        if weight is not None:
            mask = mask * _weight_array(weight, C, x2.dtype, op)[t][:, None]
        hinge = margins.clamp(min=0)
        if p == 2:
            hinge = hinge * hinge
        elif p != 1:
            raise ValueError(f"{op}: only p == 1 and p == 2 supported")
        per = (hinge * mask).sum(1) * scale
        out = _reduce(per, reduction)
    return _unflatten_none(out, input, spatial) if reduction == "none" else out


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
    """PyTorch's multiclass hinge loss: L_n = sum_{j != y_n} max(0, margin - x[y_n] + x[j])^p / C,
    i.e. the seeds' SVM loss divided by the number of classes C."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"multi_margin_loss: only p == 1 and p == 2 supported, got {p}")
    return _svm(input, target, margin, reduction, "multi_margin_loss", True, p, weight)


def svm_loss(input, target, margin=1.0, reduction="mean"):
    """The seeds' multiclass SVM loss, L_n = sum_{j != y_n} max(0, s_j - s_{y_n} + margin)
    (not divided by C; pydl's name -- PyTorch's closest is ``multi_margin_loss``).

    >>> F = pydl.nn.functional
    >>> round(F.svm_loss(pydl.tensor([[3.2, 5.1, -1.7]]), pydl.tensor([0])).item(), 4)  # lecture 3's cat
    2.9
    """
    return _svm(input, target, margin, reduction, "svm_loss", False)


def _pair(input, target, op):
    if not isinstance(target, Tensor):
        target = _make(asarray_on(input.data, target, dtype=input.dtype))
    return input, target


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error: (x - y)^2, reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "mse_loss")
    input, target = _pair(input, target, "mse_loss")
    d = input - target
    sq = d * d
    if weight is not None:
        sq = sq * weight
    return _reduce(sq, reduction)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean absolute error: |x - y|, reduced."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, "l1_loss")
    input, target = _pair(input, target, "l1_loss")
    return _reduce((input - target).abs(), reduction)


class _SmoothL1Backward(Node):
    """d/d(x - y): (x - y) / beta inside |x - y| < beta, sign(x - y) outside."""

    def __init__(self, edges, d, beta, shapes):
        self.next_edges = edges
        self.d, self.beta, self.shapes = d, beta, shapes

    def _slope(self):
        d, beta = self.d, self.beta
        return np.where(np.abs(d) < beta, d / (beta if beta > 0 else 1), np.sign(d))

    def backward(self, grad):
        dd = grad * self._slope()
        ei, et = self.next_edges
        gi = sum_to_shape(dd, self.shapes[0]) if ei is not None else None
        gt = -sum_to_shape(dd, self.shapes[1]) if et is not None else None
        return gi, gt


class _HuberBackward(_SmoothL1Backward):
    """Huber: x - y inside |x - y| < delta, delta sign(x - y) outside."""

    def _slope(self):
        d, delta = self.d, self.beta
        return np.where(np.abs(d) < delta, d, np.sign(d) * delta)


def _smooth_l1(input, target, reduction, beta, huber, op):
    _check_reduction(reduction, op)
    input, target = _pair(input, target, op)
    if beta < 0:
        raise RuntimeError(f"{op}: {'delta' if huber else 'beta'} must be non-negative, got {beta}")
    d = input.data - target.data
    ad = np.abs(d)
    if huber:  # 0.5 d^2 inside, delta (|d| - delta / 2) outside
        per = np.where(ad < beta, 0.5 * d * d, beta * (ad - 0.5 * beta))
    else:  # 0.5 d^2 / beta inside, |d| - beta / 2 outside
        per = np.where(ad < beta, 0.5 * d * d / (beta if beta > 0 else 1), ad - 0.5 * beta)
    per = per.astype(np.result_type(input.dtype, target.dtype), copy=False)
    if GradMode.enabled and (input.requires_grad or target.requires_grad):
        edges = (input.grad_fn or (input if input.requires_grad else None),
                 target.grad_fn or (target if target.requires_grad else None))
        node_cls = _HuberBackward if huber else _SmoothL1Backward
        loss = _make(per, node_cls(edges, d, beta, (input.shape, target.shape)))
    else:
        loss = _make(per)
    return _reduce(loss, reduction)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """0.5 (x - y)^2 / beta where |x - y| < beta, |x - y| - beta / 2 elsewhere."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    return _smooth_l1(input, target, reduction, beta, False, "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """0.5 (x - y)^2 where |x - y| < delta, delta (|x - y| - delta / 2) elsewhere."""
    out = _smooth_l1(input, target, "none", delta, True, "huber_loss")
    if weight is not None:
        out = out * weight
    return _reduce(out, reduction)


class _BCEBackward(Node):
    """d/dx of -(y log x + (1 - y) log(1 - x)) = (x - y) / (x (1 - x)), the denominator
    kept >= 1e-12 as PyTorch does."""

    def __init__(self, edges, x, y, w, x_shape):
        self.next_edges = edges
        self.x, self.y, self.w, self.x_shape = x, y, w, x_shape

    def backward(self, grad):
        x, y = self.x, self.y
        ex, ey = self.next_edges
        gx = gy = None
        if ex is not None:
            gx = grad * (x - y) / np.maximum(x * (1 - x), 1e-12)
            if self.w is not None:
                gx = gx * self.w
            gx = sum_to_shape(gx, self.x_shape)
        if ey is not None:  # d/dy = log(1 - x) - log(x), logs clamped at -100
            gy = grad * (np.maximum(np.log1p(-x), -100) - np.maximum(np.log(x), -100))
            if self.w is not None:
                gy = gy * self.w
        return gx, gy


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    """-w (y log x + (1 - y) log(1 - x)) for probabilities x in [0, 1]; each log is
    clamped at -100 (PyTorch's rule, so that x = 0 or 1 gives a finite loss)."""
    op = "binary_cross_entropy"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    input, target = _pair(input, target, op)
    if target.shape != input.shape:
        raise ValueError(f"{op}: Using a target size ({tuple(target.shape)}) that is different to the input size "
                         f"({tuple(input.shape)}) is deprecated. Please ensure they have the same size.")
    x, y = input.data, target.data
    if x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1):
        raise RuntimeError(f"{op}: all elements of input should be between 0 and 1")
    with np.errstate(divide="ignore"):
        per = -(y * np.maximum(np.log(x), -100) + (1 - y) * np.maximum(np.log1p(-x), -100))
    w = None
    if weight is not None:
        w = _array(weight).astype(x.dtype, copy=False)
        per = per * w
    per = np.broadcast_to(per, x.shape).astype(x.dtype, copy=False)
    if GradMode.enabled and (input.requires_grad or target.requires_grad):
        edges = (input.grad_fn or (input if input.requires_grad else None),
                 target.grad_fn or (target if target.requires_grad else None))
        loss = _make(per, _BCEBackward(edges, x, y, w, x.shape))
    else:
        loss = _make(per)
    return _reduce(loss, reduction)


class _BCELogitsBackward(Node):
    """With lw = 1 + (pos_weight - 1) y:  dL/dx = (1 - y) - lw sigmoid(-x),
    dL/dy = -x + (pos_weight - 1) softplus(-x)."""

    def __init__(self, edges, x, y, pw, w, sp):
        self.next_edges = edges
        self.x, self.y, self.pw, self.w, self.sp = x, y, pw, w, sp

    def backward(self, grad):
        x, y, pw = self.x, self.y, self.pw
        ex, ey = self.next_edges
        gx = gy = None
        g = grad if self.w is None else grad * self.w
        if ex is not None:
            sig_neg = 0.5 * (1 - np.tanh(0.5 * x))  # sigmoid(-x)
            lw = 1 if pw is None else 1 + (pw - 1) * y
            gx = sum_to_shape(g * ((1 - y) - lw * sig_neg), x.shape)
        if ey is not None:
            gy = g * (-x + (0 if pw is None else (pw - 1) * self.sp))
            gy = sum_to_shape(gy, y.shape)
        return gx, gy


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable formula:
    L = (1 - y) x + (1 + (p - 1) y) (log(1 + e^-|x|) + max(-x, 0)), p = pos_weight
    (broadcast along the last dimension, the classes)."""
    op = "binary_cross_entropy_with_logits"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op)
    input, target = _pair(input, target, op)
    if target.shape != input.shape:
        raise ValueError(f"{op}: Target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    x, y = input.data, target.data
    sp = np.log1p(np.exp(-np.abs(x))) + np.maximum(-x, 0)  # softplus(-x), stable
    pw = None if pos_weight is None else _array(pos_weight).astype(x.dtype, copy=False)
    lw = 1 if pw is None else 1 + (pw - 1) * y
    per = (1 - y) * x + lw * sp
    w = None
    if weight is not None:
        w = _array(weight).astype(x.dtype, copy=False)
        per = per * w
    per = np.broadcast_to(per, x.shape).astype(x.dtype, copy=False)
    if GradMode.enabled and (input.requires_grad or target.requires_grad):
        edges = (input.grad_fn or (input if input.requires_grad else None),
                 target.grad_fn or (target if target.requires_grad else None))
        loss = _make(per, _BCELogitsBackward(edges, x, y, pw, w, sp))
    else:
        loss = _make(per)
    return _reduce(loss, reduction)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """KL divergence with log-probabilities as input: L = y (log y - x), 0 where y = 0
    (``log_target``: e^y (y - x)). "batchmean" divides the sum by the batch size (the
    mathematically right KL; "mean" divides by every element, as PyTorch does)."""
    op = "kl_div"
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _check_reduction(reduction, op, ("batchmean",))
    input, target = _pair(input, target, op)
    if log_target:
        per = _un.exp(target) * (target - input)
    else:
        y = target.data
        positive = y > 0
        safe = _make(np.where(positive, y, 1).astype(y.dtype, copy=False))
        ylogy = target * _un.log(safe) if not target.requires_grad else \
            target * _un.log(target.masked_fill(_make(~positive), 1.0))
        per = ylogy - target * input
    if reduction == "batchmean":
        return per.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(per, reduction)
