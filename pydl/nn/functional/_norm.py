"""Normalisation with autograd: batch norm, layer norm, group norm and instance norm.

One recipe (the seeds' lecture 6): subtract the mean of a group of values, divide by their
standard deviation, then scale and shift with learned parameters; the layers differ only
in which values form a group (a channel over the batch, a sample, a group of channels of a
sample). The forward kernels return the statistics they used (mean and 1 / std), which the
node keeps with the input and the weight: the backward kernel recomputes x-hat from them,
so no normalised copy of the input is stored.
"""
import numpy as np

from ..._device import check_same_device
from ...autograd.function import Node
from ...autograd.grad_mode import GradMode
from ...tensor import Tensor, _make
from ._dispatch import as_float, edge, kernel, needs_of, tensor_arg

__all__ = ["batch_norm", "group_norm", "instance_norm", "layer_norm"]


def _record(input, weight, bias, out, node):
    if GradMode.enabled and (input.requires_grad or (weight is not None and weight.requires_grad)
                             or (bias is not None and bias.requires_grad)):
        node.next_edges = (edge(input), edge(weight), edge(bias))
        return _make(out, node)
    return _make(out)


def _grad_as(grad, x):
    return grad if grad.dtype == x.dtype else grad.astype(x.dtype)


class NativeBatchNormBackward(Node):
    """Training: dx = invstd (g - mean(g) - x-hat mean(g x-hat)) with g = dy w (the batch
    statistics depend on every x); eval: dx = dy w invstd (the statistics are constants)."""

    def __init__(self, x, w, mean, invstd, training):
        self.x, self.w, self.mean, self.invstd, self.training = x, w, mean, invstd, training

    def name(self):
        return "NativeBatchNormBackward0"

    def backward(self, grad):
        x = self.x
        return kernel("batch_norm_backward", x)(_grad_as(grad, x), x, self.w, self.mean, self.invstd, self.training,
                                                needs=needs_of(self.next_edges))


def _running(op, r, dtype, name):
    """The array a running statistic is updated in: the buffer's own when its dtype is the
    input's, else a converted copy (written back after the kernel ran)."""
    if r is None:
        return None, None
    arr = r.data if isinstance(r, Tensor) else r
    if not hasattr(arr, "dtype"):
        raise TypeError(f"{op}: {name} must be a Tensor or None, got {type(r).__name__}")
    if arr.dtype == dtype and arr.flags.c_contiguous:
        return arr, None
    return arr.astype(dtype), arr


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    """Batch normalisation over the channel axis 1 of an (N, C) or (N, C, *) input.

    Training: normalise each channel with its batch mean and biased variance, and update
    ``running_mean`` / ``running_var`` (C,) in place: ``running = (1 - momentum) running +
    momentum batch`` (the unbiased variance for running_var). Evaluation: normalise with the
    running statistics -- a fixed per-channel affine map, which is why it folds into the
    convolution before it (:func:`pydl.nn.utils.fuse_conv_bn_eval`).

    >>> F = pydl.nn.functional
    >>> x = pydl.tensor([[1.0, 10.0], [3.0, 14.0]])
    >>> rm, rv = pydl.zeros(2), pydl.ones(2)
    >>> F.batch_norm(x, rm, rv, training=True, eps=0.0)
    tensor([[-1., -1.],
            [ 1.,  1.]])
    >>> rm, rv
    (tensor([0.2000, 1.2000]), tensor([1.1000, 1.7000]))
    """
    op = "batch_norm"
    tensor_arg(input, op)
    x, w, b = as_float(op, input, weight, bias)
    rm, rm_orig = _running(op, running_mean, x.dtype, "running_mean")
    rv, rv_orig = _running(op, running_var, x.dtype, "running_var")
    if rm is not None and rm.__class__ is not x.__class__ or rv is not None and rv.__class__ is not x.__class__:
        check_same_device(op, x, rm, rv)  # running statistics left on the other device
    out, mean, invstd = kernel("batch_norm_forward", x, inplace=(1, 2))(x, rm, rv, w, b, bool(training),
                                                                       float(momentum), float(eps))
    if training:
        for new, orig in ((rm, rm_orig), (rv, rv_orig)):
            if orig is not None:
                orig[...] = new
    return _record(input, weight, bias, out, NativeBatchNormBackward(x, w, mean, invstd, bool(training)))


class NativeLayerNormBackward(Node):
    def __init__(self, x, normalized_shape, mean, rstd, w):
        self.x, self.normalized_shape, self.mean, self.rstd, self.w = x, normalized_shape, mean, rstd, w

    def name(self):
        return "NativeLayerNormBackward0"

    def backward(self, grad):
        x = self.x
        return kernel("layer_norm_backward", x)(_grad_as(grad, x), x, self.normalized_shape, self.mean, self.rstd,
                                                self.w, needs=needs_of(self.next_edges))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation: each sample normalised over its last ``len(normalized_shape)``
    dimensions, then scaled and shifted element-wise by weight and bias (normalized_shape).

    >>> pydl.nn.functional.layer_norm(pydl.tensor([[1.0, 3.0], [0.0, 4.0]]), (2,), eps=0.0)
    tensor([[-1.,  1.],
            [-1.,  1.]])
    """
    op = "layer_norm"
    tensor_arg(input, op)
    x, w, b = as_float(op, input, weight, bias)
    shape = (int(normalized_shape),) if np.isscalar(normalized_shape) else tuple(int(s) for s in normalized_shape)
    out, mean, rstd = kernel("layer_norm_forward", x)(x, shape, w, b, float(eps))
    return _record(input, weight, bias, out, NativeLayerNormBackward(x, shape, mean, rstd, w))


class NativeGroupNormBackward(Node):
    def __init__(self, x, num_groups, mean, rstd, w):
        self.x, self.num_groups, self.mean, self.rstd, self.w = x, num_groups, mean, rstd, w

    def name(self):
        return "NativeGroupNormBackward0"

    def backward(self, grad):
        x = self.x
        return kernel("group_norm_backward", x)(_grad_as(grad, x), x, self.num_groups, self.mean, self.rstd, self.w,
                                                needs=needs_of(self.next_edges))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation: the C channels of each sample split into ``num_groups`` groups,
    each normalised over its channels and positions; per-channel weight and bias (C,).
    num_groups = C is instance norm, num_groups = 1 a layer norm over (C, *).

    >>> pydl.nn.functional.group_norm(pydl.tensor([[1.0, 3.0, 4.0, 8.0]]), 2, eps=0.0)
    tensor([[-1.,  1., -1.,  1.]])
    """
    op = "group_norm"
    tensor_arg(input, op)
    x, w, b = as_float(op, input, weight, bias)
    G = int(num_groups)
    out, mean, rstd = kernel("group_norm_forward", x)(x, G, w, b, float(eps))
    return _record(input, weight, bias, out, NativeGroupNormBackward(x, G, mean, rstd, w))


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None, use_input_stats=True,
                  momentum=0.1, eps=1e-5):
    """Instance normalisation: each channel of each sample normalised over its positions
    (group norm with one channel per group; per-channel weight and bias).

    With running statistics, ``use_input_stats`` updates them with the batch's mean of the
    per-instance means and unbiased variances (as PyTorch does); ``use_input_stats=False``
    normalises with the running statistics instead.

    >>> pydl.nn.functional.instance_norm(pydl.tensor([[[1.0, 3.0], [0.0, 4.0]]]), eps=0.0)
    tensor([[[-1.,  1.],
             [-1.,  1.]]])
    """
    op = "instance_norm"
    x = tensor_arg(input, op)
    if x.ndim < 3:
        raise ValueError(f"{op}: expected an input of at least 3 dimensions (N, C, *), got shape {tuple(x.shape)}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are required when use_input_stats=False")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    C = x.shape[1]
    out = group_norm(input, C, weight, bias, eps)
    if running_mean is not None or running_var is not None:
        xv = x.reshape(x.shape[0], C, -1)
        L = xv.shape[2]
        batch_mean = xv.mean(axis=2, dtype=np.float64).mean(axis=0)
        batch_var = xv.var(axis=2, ddof=1 if L > 1 else 0, dtype=np.float64).mean(axis=0)  # unbiased
        for r, batch in ((running_mean, batch_mean), (running_var, batch_var)):
            if r is not None:
                arr = r.data if isinstance(r, Tensor) else r
                arr[...] = (1 - momentum) * arr + momentum * batch
    return out
