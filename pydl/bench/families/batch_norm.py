"""batch_norm in training: forward (batch statistics, running-statistics update), and
forward+backward, float32, NCHW, affine. GB/s counts the minimum traffic: x read and y
written (forward), plus grad_out and x read and grad_input written (backward)."""
import numpy as np

from ..._device import array_module
from ..harness import Case, kernel, reference_kernel, torch

# (pass, N, C, H, W): the canonical N64 64x56x56, a small shape (the cost of a call) and
# BatchNorm1d on (N, C)
SHAPES = [("fwd", 64, 64, 56, 56), ("fwd+bwd", 64, 64, 56, 56), ("fwd+bwd", 8, 16, 14, 14),
          ("fwd+bwd", 4096, 512, 1, 1)]
QUICK = [("fwd", 3, 5, 4, 7), ("fwd+bwd", 3, 5, 4, 7)]

REFERENCE_MAX_ELEMENTS = 1 << 22


def _inputs(dims, c):
    """(x, grad_out, weight, bias) on the host, float32; x is (N, C, H, W) or (N, C)."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal(dims, dtype=np.float32) + 0.5, rng.standard_normal(dims, dtype=np.float32),
            (1.0 + 0.1 * rng.standard_normal(c)).astype(np.float32), (0.1 * rng.standard_normal(c)).astype(np.float32))


def _with_kernels(fwd, bwd, x, g, weight, bias, backward_too):
    xp, c = array_module(x), x.shape[1]

    def fwd_bwd():  # fresh running statistics per call, so every call does the same work
        out, mean, invstd = fwd(x, xp.zeros(c, np.float32), xp.ones(c, np.float32), weight, bias, True)
        return (out,) + tuple(bwd(g, x, weight, mean, invstd, True)) if backward_too else out
    return fwd_bwd


def _torch_run(t, tx, tg, tw, tb, backward_too):
    F, c, dev = t.nn.functional, tx.shape[1], tx.device

    def torch_run():
        rm, rv = t.zeros(c, device=dev), t.ones(c, device=dev)
        if not backward_too:
            with t.no_grad():
                return F.batch_norm(tx, rm, rv, tw, tb, True)
        tx.grad = tw.grad = tb.grad = None
        y = F.batch_norm(tx, rm, rv, tw, tb, True)
        y.backward(tg)
        return y, tx.grad, tw.grad, tb.grad
    return torch_run


def _expected(host, backward_too):
    return _with_kernels(reference_kernel("batch_norm_forward"), reference_kernel("batch_norm_backward"), *host,
                         backward_too)


def _name(kind, dims):
    n, c = dims[:2]
    return f"{kind} N{n} {c}x{dims[2]}x{dims[3]}" if len(dims) == 4 else f"{kind} {n}x{c}"


def case(shape):
    kind, n, c, h, w = shape
    backward_too = kind == "fwd+bwd"
    dims = (n, c) if h == w == 1 else (n, c, h, w)
    host = x, g, weight, bias = _inputs(dims, c)
    run = {"pydl": _with_kernels(kernel("batch_norm_forward"), kernel("batch_norm_backward"), *host, backward_too)}
    if x.size <= REFERENCE_MAX_ELEMENTS:
        run["reference"] = _expected(host, backward_too)
    t = torch()
    if t is not None:
        tw, tb = t.from_numpy(weight).requires_grad_(), t.from_numpy(bias).requires_grad_()
        tx = t.from_numpy(x).requires_grad_(backward_too)
        run["torch"] = _torch_run(t, tx, t.from_numpy(g), tw, tb, backward_too)
    nbytes = 2 * x.nbytes + (3 * x.nbytes if backward_too else 0)
    return Case(_name(kind, dims), run, _expected(host, backward_too), bytes=float(nbytes), notes=[
        "batch_norm GB/s = the minimum traffic (x read, y written; fwd+bwd adds grad_out and x read "
        "and grad_input written) / median time. pydl reads x twice in each direction (statistics, "
        "then the element-wise pass), as PyTorch does."])


# GPU cases (pydl bench --device cuda): the canonical shape, fwd and fwd+bwd, and BatchNorm1d.
CUDA_SHAPES = [("fwd", 64, 64, 56, 56), ("fwd+bwd", 64, 64, 56, 56), ("fwd+bwd", 4096, 512, 1, 1)]
CUDA_QUICK = [("fwd", 3, 5, 4, 7), ("fwd+bwd", 3, 5, 4, 7)]


def cuda_case(shape):
    from .. import gpu

    kind, n, c, h, w = shape
    backward_too = kind == "fwd+bwd"
    dims = (n, c) if h == w == 1 else (n, c, h, w)
    host = _inputs(dims, c)
    x, g, weight, bias = gpu.to_gpu(*host)
    forward, backward = gpu.kernel("batch_norm_forward"), gpu.kernel("batch_norm_backward")
    run = {"pydl": _with_kernels(forward, backward, x, g, weight, bias, backward_too)}
    t = gpu.torch_cuda()
    if t is not None:
        tx, tg = t.from_dlpack(x).requires_grad_(backward_too), t.from_dlpack(g)
        tw, tb = t.from_dlpack(weight).requires_grad_(), t.from_dlpack(bias).requires_grad_()
        run["torch"] = _torch_run(t, tx, tg, tw, tb, backward_too)
    nbytes = 2 * x.nbytes + (3 * x.nbytes if backward_too else 0)
    return Case(_name(kind, dims), run, _expected(host, backward_too), bytes=float(nbytes))
