"""batch_norm in training: forward (batch statistics, running-statistics update), and
forward+backward, float32, NCHW, affine. GB/s counts the minimum traffic: x read and y
written (forward), plus grad_out and x read and grad_input written (backward)."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (pass, N, C, H, W): the canonical N64 64x56x56, a small shape (the cost of a call) and
# BatchNorm1d on (N, C)
SHAPES = [("fwd", 64, 64, 56, 56), ("fwd+bwd", 64, 64, 56, 56), ("fwd+bwd", 8, 16, 14, 14),
          ("fwd+bwd", 4096, 512, 1, 1)]
QUICK = [("fwd", 3, 5, 4, 7), ("fwd+bwd", 3, 5, 4, 7)]

REFERENCE_MAX_ELEMENTS = 1 << 22


def case(shape):
    kind, n, c, h, w = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = kernel("batch_norm_forward"), kernel("batch_norm_backward")
    rng = np.random.default_rng(0)
    dims = (n, c) if h == w == 1 else (n, c, h, w)
    x = (rng.standard_normal(dims, dtype=np.float32) + 0.5)  # (N, C, H, W) or (N, C)
    g = rng.standard_normal(dims, dtype=np.float32)
    weight = (1.0 + 0.1 * rng.standard_normal(c)).astype(np.float32)
    bias = (0.1 * rng.standard_normal(c)).astype(np.float32)

    def with_kernels(fwd, bwd):
        # fresh running statistics per call, so every call does the same work
        def fwd_only():
            return fwd(x, np.zeros(c, np.float32), np.ones(c, np.float32), weight, bias, True)[0]

        def fwd_bwd():
            out, mean, invstd = fwd(x, np.zeros(c, np.float32), np.ones(c, np.float32), weight, bias, True)
            return (out,) + tuple(bwd(g, x, weight, mean, invstd, True))
        return fwd_bwd if backward_too else fwd_only

    ref_fwd, ref_bwd = reference_kernel("batch_norm_forward"), reference_kernel("batch_norm_backward")

    def expected():
        out, mean, invstd = ref_fwd(x, None, None, weight, bias, True)
        return (out,) + tuple(ref_bwd(g, x, weight, mean, invstd, True)) if backward_too else out

    run = {"pydl": with_kernels(forward, backward)}
    if x.size <= REFERENCE_MAX_ELEMENTS:
        run["reference"] = with_kernels(ref_fwd, ref_bwd)
    t = torch()
    if t is not None:
        F = t.nn.functional
        tw, tb = t.from_numpy(weight).requires_grad_(), t.from_numpy(bias).requires_grad_()
        tg = t.from_numpy(g)
        tx = t.from_numpy(x).requires_grad_(backward_too)

        def torch_run():
            rm, rv = t.zeros(c), t.ones(c)
            if not backward_too:
                with t.no_grad():
                    return F.batch_norm(tx, rm, rv, tw, tb, True)
            tx.grad = tw.grad = tb.grad = None
            y = F.batch_norm(tx, rm, rv, tw, tb, True)
            y.backward(tg)
            return y, tx.grad, tw.grad, tb.grad
        run["torch"] = torch_run
    nbytes = 2 * x.nbytes + (3 * x.nbytes if backward_too else 0)
    return Case(f"{kind} N{n} {c}x{h}x{w}" if len(dims) == 4 else f"{kind} {n}x{c}", run, expected,
                bytes=float(nbytes), notes=[
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
    forward, backward = gpu.kernel("batch_norm_forward"), gpu.kernel("batch_norm_backward")
    cp = gpu.cupy()
    rng = np.random.default_rng(0)
    dims = (n, c) if h == w == 1 else (n, c, h, w)
    host = (rng.standard_normal(dims, dtype=np.float32) + 0.5, rng.standard_normal(dims, dtype=np.float32),
            (1.0 + 0.1 * rng.standard_normal(c)).astype(np.float32), (0.1 * rng.standard_normal(c)).astype(np.float32))
    x, g, weight, bias = gpu.to_gpu(*host)

    def pydl_run():  # fresh running statistics per call, so every call does the same work
        out, mean, invstd = forward(x, cp.zeros(c, cp.float32), cp.ones(c, cp.float32), weight, bias, True)
        return (out,) + tuple(backward(g, x, weight, mean, invstd, True)) if backward_too else out

    def expected():
        ref_fwd, ref_bwd = reference_kernel("batch_norm_forward"), reference_kernel("batch_norm_backward")
        out, mean, invstd = ref_fwd(host[0], None, None, host[2], host[3], True)
        return (out,) + tuple(ref_bwd(host[1], host[0], host[2], mean, invstd, True)) if backward_too else out

    run = {"pydl": pydl_run}
    t = gpu.torch_cuda()
    if t is not None:
        F = t.nn.functional
        tx, tg = t.from_dlpack(x).requires_grad_(backward_too), t.from_dlpack(g)
        tw, tb = t.from_dlpack(weight).requires_grad_(), t.from_dlpack(bias).requires_grad_()

        def torch_run():
            rm, rv = t.zeros(c, device="cuda"), t.ones(c, device="cuda")
            if not backward_too:
                with t.no_grad():
                    return F.batch_norm(tx, rm, rv, tw, tb, True)
            tx.grad = tw.grad = tb.grad = None
            y = F.batch_norm(tx, rm, rv, tw, tb, True)
            y.backward(tg)
            return y, tx.grad, tw.grad, tb.grad
        run["torch"] = torch_run
    nbytes = 2 * x.nbytes + (3 * x.nbytes if backward_too else 0)
    return Case(f"{kind} N{n} {c}x{h}x{w}" if len(dims) == 4 else f"{kind} {n}x{c}", run, expected,
                bytes=float(nbytes))
