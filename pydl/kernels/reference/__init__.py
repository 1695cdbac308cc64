"""The NumPy reference kernels: the textbook version of every operation, in float64.

Never optimised: this is the specification the C++ and CUDA kernels are tested against.
Each function takes any array-like input, computes in float64 and returns float64.
"""
from .conv import conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward
from .gemm import gemm, gemm_backward
from .losses import cross_entropy_backward, cross_entropy_forward, svm_loss_backward, svm_loss_forward
from .softmax import log_softmax_backward, log_softmax_forward, softmax_backward, softmax_forward

OPS = ("gemm", "gemm_backward",
       "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
       "cross_entropy_forward", "cross_entropy_backward", "svm_loss_forward", "svm_loss_backward",
       "conv2d_forward", "conv2d_backward", "conv_transpose2d_forward", "conv_transpose2d_backward")

__all__ = list(OPS)
