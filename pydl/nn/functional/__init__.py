"""pydl.nn.functional: layers and losses as functions (PyTorch's names and argument order).

    >>> import pydl.nn.functional as F
"""
from ..._ops.unary import sigmoid, tanh  # noqa: F401  (also F.tanh / F.sigmoid, like PyTorch)
from ._activation import (celu, elu, gelu, hardtanh, leaky_relu, log_softmax, logsigmoid, maxout, prelu, relu,
                          relu6, selu, silu, softmax, softmin, softplus)
from ._linear import dropout, embedding, linear, one_hot
from ._loss import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
                    l1_loss, mse_loss, multi_margin_loss, nll_loss, smooth_l1_loss, svm_loss)

__all__ = ["binary_cross_entropy", "binary_cross_entropy_with_logits", "celu", "cross_entropy", "dropout", "elu",
           "embedding", "gelu", "hardtanh", "huber_loss", "kl_div", "l1_loss", "leaky_relu", "linear", "log_softmax",
           "logsigmoid", "maxout", "mse_loss", "multi_margin_loss", "nll_loss", "one_hot", "prelu", "relu", "relu6",
           "selu", "sigmoid", "silu", "smooth_l1_loss", "softmax", "softmin", "softplus", "svm_loss", "tanh"]
