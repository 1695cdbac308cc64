"""Fold an eval-mode batch norm into the convolution (or linear layer) before it.

The seeds' remark made concrete: at test time batch norm uses fixed running statistics,
so it is a per-channel affine map ``y = gamma (z - mu) / sqrt(var + eps) + beta``, and
an affine map after a convolution ``z = W * x + b`` is again a convolution:

    W' = W * s (per output channel),   b' = (b - mu) * s + beta,   s = gamma / sqrt(var + eps)

One layer instead of two, the same outputs (up to rounding). PyTorch's function names
(``torch.nn.utils.fusion``).
"""
import copy

import numpy as np

from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval", "fuse_linear_bn_weights"]


def _arr(t):
    return None if t is None else np.asarray(t.data if hasattr(t, "data") else t, dtype=np.float64)


def _check_eval(what, module, bn):
    if module.training or bn.training:
        raise RuntimeError(f"{what}: fusion only for eval! Call .eval() on both modules first")
    if bn.running_mean is None or bn.running_var is None:
        raise RuntimeError(f"{what}: the batch norm has no running statistics (track_running_stats=False)")


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """A copy of ``conv`` (Conv2d, or ConvTranspose2d with ``transpose=True``) whose output
    equals ``bn(conv(x))`` for the eval-mode ``bn``.

    >>> conv, bn = pydl.nn.Conv2d(3, 4, 3), pydl.nn.BatchNorm2d(4)
    >>> bn.running_mean.data[:] = 0.5; bn.running_var.data[:] = 2.0
    >>> _ = conv.eval(), bn.eval()
    >>> x = pydl.randn(2, 3, 8, 8)
    >>> fused = pydl.nn.utils.fuse_conv_bn_eval(conv, bn)
    >>> bool(pydl.allclose(fused(x), bn(conv(x)), atol=1e-5))
    True
    """
    _check_eval("fuse_conv_bn_eval", conv, bn)
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                    bn.eps, bn.weight, bn.bias, transpose)
    return fused


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """``(weight, bias)`` Parameters of the fused convolution (computed in float64, stored
    in the convolution's dtypes). conv_w: (K, C/g, KH, KW), or (C, K/g, KH, KW) with
    ``transpose``; the batch-norm tensors: (K,); bn_w / bn_b None mean 1 / 0."""
    w = _arr(conv_w)
    rm, rv = _arr(bn_rm), _arr(bn_rv)
    b = np.zeros_like(rm) if conv_b is None else _arr(conv_b)
    gamma = np.ones_like(rm) if bn_w is None else _arr(bn_w)
    beta = np.zeros_like(rm) if bn_b is None else _arr(bn_b)
    scale = gamma / np.sqrt(rv + bn_eps)
    shape = [1, -1] if transpose else [-1, 1]
    shape += [1] * (w.ndim - 2)
    if transpose and w.shape[1] != rm.shape[0]:  # grouped: (C, K/g, ...) holds the K channels group by group
        groups = rm.shape[0] // w.shape[1]
        wg = w.reshape((groups, w.shape[0] // groups) + w.shape[1:])
        fused_w = (wg * scale.reshape((groups, 1, -1) + (1,) * (w.ndim - 2))).reshape(w.shape)
    else:
        fused_w = w * scale.reshape(shape)
    fused_b = (b - rm) * scale + beta
    w_dtype = conv_w.dtype
    b_dtype = conv_w.dtype if conv_b is None else conv_b.dtype
    return (Parameter(fused_w.astype(w_dtype), conv_w.requires_grad),
            Parameter(fused_b.astype(b_dtype), True if conv_b is None else conv_b.requires_grad))


def fuse_linear_bn_eval(linear, bn):
    """A copy of ``linear`` whose output equals ``bn(linear(x))`` for the eval-mode
    BatchNorm1d ``bn``."""
    _check_eval("fuse_linear_bn_eval", linear, bn)
    if linear.out_features != bn.num_features:
        raise ValueError("fuse_linear_bn_eval: the linear layer's out_features must match the batch norm's "
                         f"num_features ({linear.out_features} != {bn.num_features})")
    fused = copy.deepcopy(linear)
    fused.weight, fused.bias = fuse_linear_bn_weights(fused.weight, fused.bias, bn.running_mean, bn.running_var,
                                                      bn.eps, bn.weight, bn.bias)
    return fused


def fuse_linear_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b):
    """``(weight, bias)`` of the fused linear layer: W' = W * s per row, b' = (b - mu) s + beta."""
    return fuse_conv_bn_weights(linear_w, linear_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b)
