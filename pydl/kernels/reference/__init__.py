"""The NumPy reference kernels: the textbook version of every operation, in float64.

Never optimised: this is the specification the C++ and CUDA kernels are tested against.
Each function takes any array-like input, computes in float64 and returns float64.
"""
from .gemm import gemm, gemm_backward

OPS = ("gemm", "gemm_backward")

__all__ = list(OPS)
