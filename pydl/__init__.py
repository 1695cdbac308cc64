"""pydl: the deep-learning course as a small, fast library.

NumPy reference kernels (the textbook version of each operation), hand-written C++
kernels (and CUDA ones where a GPU exists) behind a PyTorch-like API.
"""
try:
    from . import _C  # noqa: F401
except ImportError as e:  # pragma: no cover - only from an unbuilt source tree
    raise ImportError(
        f"pydl's compiled kernels (pydl._C) are missing from {__path__[0]}: this looks like the "
        "source tree. Install pydl (pip install .) and run from outside the checkout, or use "
        "`pytest`, which does not put the checkout first on sys.path."
    ) from e

from ._config import get_num_threads, set_num_threads, show_config
from . import cuda, kernels
from . import autograd, random
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .random import initial_seed, manual_seed, seed
from .tensor import (Tensor, bool, device, double, float, float16, float32, float64, from_dlpack,
                     get_default_dtype, half, int, int8, int16, int32, int64, long, set_default_dtype, uint8)
from ._ops.creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace,
                            logspace, normal, ones, ones_like, rand, rand_like, randint, randint_like, randn,
                            randn_like, randperm, tensor, zeros, zeros_like)
from ._ops.indexing import gather, index_select, masked_fill, nonzero, take, where
from ._ops.linalg import bmm, dot, matmul, mm, mv, outer
from ._ops.pointwise import (allclose, div, eq, equal, ge, gt, isfinite, isinf, isnan, le, logical_and, logical_not,
                             logical_or, lt, maximum, minimum, mul, ne, pow, sub)
from ._ops.unary import (abs, ceil, clamp, clamp_max, clamp_min, cos, exp, expm1, floor, log, log1p, neg,
                         reciprocal, relu, round, rsqrt, sigmoid, sign, sin, sqrt, square, tanh, trunc)
from ._ops.pointwise import add as _add_op
from ._ops.reduction import (all, amax, amin, any, argmax, argmin, count_nonzero, cumsum, logsumexp, max, mean,
                             min, norm, prod, std, sum, var)
from ._ops.shape import (broadcast_to, cat, chunk, clone, concat, concatenate, flatten, flip, narrow, permute,
                         repeat, reshape, split, squeeze, stack, t, transpose, unbind, unflatten, unsqueeze)
from . import nn


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting."""
    return _add_op(input, other if alpha == 1 else other * alpha)


def is_tensor(obj):
    """True for a pydl Tensor (Parameters included)."""
    return isinstance(obj, Tensor)


def numel(input):
    return input.numel()


clip = clamp
from . import optim, utils
from .serialization import load, save

__version__ = "0.1.0"

_TENSOR_API = [
    "Tensor", "abs", "add", "all", "allclose", "amax", "amin", "any", "arange", "argmax", "argmin", "as_tensor",
    "autograd", "bmm", "bool", "broadcast_to", "cat", "ceil", "chunk", "clamp", "clamp_max", "clamp_min", "clip",
    "clone", "concat", "concatenate", "cos", "count_nonzero", "cumsum", "device", "div", "dot", "double", "empty",
    "empty_like", "enable_grad", "eq", "equal", "exp", "expm1", "eye", "flatten", "flip", "float", "float16",
    "float32", "float64", "floor", "from_dlpack", "from_numpy", "full", "full_like", "gather", "ge",
    "get_default_dtype", "gt",
    "half", "index_select", "initial_seed", "int", "int8", "int16", "int32", "int64", "is_grad_enabled",
    "is_tensor", "isfinite", "isinf", "isnan", "le", "linspace", "log", "log1p", "logical_and", "logical_not",
    "logical_or", "logspace", "logsumexp", "long", "lt", "manual_seed", "masked_fill", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mm", "mul", "mv", "narrow", "ne", "neg", "nn", "no_grad", "nonzero", "norm", "normal",
    "numel", "ones", "ones_like", "outer", "permute", "pow", "prod", "rand", "rand_like", "randint", "randint_like",
    "randn", "randn_like", "random", "randperm", "reciprocal", "relu", "repeat", "reshape", "round", "rsqrt", "seed",
    "set_default_dtype", "set_grad_enabled", "sigmoid", "sign", "sin", "split", "sqrt", "square", "squeeze",
    "stack", "std", "sub", "sum", "t", "take", "tanh", "tensor", "transpose", "trunc", "uint8", "unbind",
    "unflatten", "unsqueeze", "var", "where", "zeros", "zeros_like",
]
__all__ = _TENSOR_API + ["__version__", "cuda", "get_num_threads", "kernels", "load", "optim", "save",
                         "set_num_threads", "show_config", "utils"]


def __getattr__(name):
    """pydl.generative, pydl.ssl and pydl.viz load on first use (they are not needed to train)."""
    if name in ("generative", "ssl", "viz"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'pydl' has no attribute {name!r}")
