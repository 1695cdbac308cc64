"""batch_norm in training: forward (batch statistics, running-statistics update), and
forward+backward, float32, NCHW, affine. GB/s counts the minimum traffic: x read and y
written (forward), plus grad_out and x read and grad_input written (backward)."""
import numpy as np

from ..._device import array_module
from ._affine_norm import cpu_case, gpu_case, inputs

# (pass, N, C, H, W): the canonical N64 64x56x56, a small shape (the cost of a call) and
# BatchNorm1d on (N, C)
SHAPES = [("fwd", 64, 64, 56, 56), ("fwd+bwd", 64, 64, 56, 56), ("fwd+bwd", 8, 16, 14, 14),
          ("fwd+bwd", 4096, 512, 1, 1)]
QUICK = [("fwd", 3, 5, 4, 7), ("fwd+bwd", 3, 5, 4, 7)]


def _with_kernels(fwd, bwd, x, g, weight, bias, backward_too):
    xp, c = array_module(x), x.shape[1]

    def fwd_bwd():  # fresh running statistics per call, so every call does the same work
        out, mean, invstd = fwd(x, xp.zeros(c, np.float32), xp.ones(c, np.float32), weight, bias, True)
        return (out,) + tuple(bwd(g, x, weight, mean, invstd, True)) if backward_too else out
    return fwd_bwd


def _torch_op(t):
    # fresh running statistics per call, as _with_kernels
    return lambda tx, tw, tb: t.nn.functional.batch_norm(tx, t.zeros(tx.shape[1], device=tx.device),
                                                         t.ones(tx.shape[1], device=tx.device), tw, tb, True)


def _name(kind, dims):
    n, c = dims[:2]
    return f"{kind} N{n} {c}x{dims[2]}x{dims[3]}" if len(dims) == 4 else f"{kind} {n}x{c}"


def _dims(n, c, h, w):
    return (n, c) if h == w == 1 else (n, c, h, w)


def case(shape):
    kind, n, c, h, w = shape
    dims = _dims(n, c, h, w)
    return cpu_case(_name(kind, dims), "batch_norm", _with_kernels, _torch_op, inputs(dims, c), kind == "fwd+bwd",
                    "batch_norm GB/s = the minimum traffic (x read, y written; fwd+bwd adds grad_out and x read "
                    "and grad_input written) / median time. pydl reads x twice in each direction (statistics, "
                    "then the element-wise pass), as PyTorch does.")


# GPU cases (pydl bench --device cuda): the canonical shape, fwd and fwd+bwd, and BatchNorm1d.
CUDA_SHAPES = [("fwd", 64, 64, 56, 56), ("fwd+bwd", 64, 64, 56, 56), ("fwd+bwd", 4096, 512, 1, 1)]
CUDA_QUICK = [("fwd", 3, 5, 4, 7), ("fwd+bwd", 3, 5, 4, 7)]


def cuda_case(shape):
    kind, n, c, h, w = shape
    dims = _dims(n, c, h, w)
    return gpu_case(_name(kind, dims), "batch_norm", _with_kernels, _torch_op, inputs(dims, c), kind == "fwd+bwd")
