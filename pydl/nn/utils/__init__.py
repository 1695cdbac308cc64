"""Utilities on modules and parameters (PyTorch's ``torch.nn.utils``): gradient clipping,
conv / linear + batch-norm fusion."""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from . import rnn
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_linear_bn_eval, fuse_linear_bn_weights

__all__ = ["clip_grad_norm_", "clip_grad_value_", "fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_linear_bn_eval",
           "fuse_linear_bn_weights", "rnn"]
