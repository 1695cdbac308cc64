"""pydl.nn.functional: layers and losses as functions (PyTorch's names and argument order).

    >>> import pydl.nn.functional as F
"""
from ..._ops.unary import sigmoid, tanh  # noqa: F401  (also F.tanh / F.sigmoid, like PyTorch)
from ._activation import (celu, elu, gelu, hardtanh, leaky_relu, log_softmax, logsigmoid, maxout, prelu, relu,
                          relu6, selu, silu, softmax, softmin, softplus)
from ._linear import dropout, embedding, linear, one_hot
from ._conv import conv2d, conv_transpose2d, pad
from ._norm import batch_norm, group_norm, instance_norm, layer_norm
from ._pool import (adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, fractional_max_pool2d, max_pool2d,
                    max_pool2d_with_indices, max_unpool2d)
from ._resample import (drop_path, dropout2d, interpolate, pixel_shuffle, pixel_unshuffle, stochastic_depth,
                        upsample, upsample_bilinear, upsample_nearest)
from ._attention import scaled_dot_product_attention
from ._loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
                    l1_loss, mse_loss, multi_margin_loss, nll_loss, smooth_l1_loss, svm_loss)

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "cross_entropy", "dropout", "elu",
           "embedding", "gelu", "hardtanh", "huber_loss", "kl_div", "l1_loss", "leaky_relu", "linear", "log_softmax",
           "logsigmoid", "maxout", "mse_loss", "multi_margin_loss", "nll_loss", "one_hot", "prelu", "relu", "relu6",
           "selu", "sigmoid", "silu", "smooth_l1_loss", "softmax", "softmin", "softplus", "svm_loss", "tanh"]
__all__ += ["adaptive_avg_pool2d", "adaptive_max_pool2d", "avg_pool2d", "batch_norm", "conv2d", "conv_transpose2d",
            "drop_path", "dropout2d", "fractional_max_pool2d", "group_norm", "instance_norm", "interpolate",
            "layer_norm", "max_pool2d", "max_pool2d_with_indices", "max_unpool2d", "pad", "pixel_shuffle",
            "pixel_unshuffle", "stochastic_depth", "upsample", "upsample_bilinear", "upsample_nearest"]
__all__ += ["scaled_dot_product_attention"]
