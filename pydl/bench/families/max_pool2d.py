"""max_pool2d (with the arg-max kept, as training needs it) forward, and forward+backward,
float32, NCHW. GB/s counts the traffic of pydl's passes: x read and out + int64 indices
written (forward), plus grad_out and the indices read and grad_input written (backward)."""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (pass, N, C, H, W, kernel, stride, padding): the canonical 2x2 stride 2, a small shape
# (the cost of a call), and ResNet's stem pool (3x3, stride 2, padding 1)
SHAPES = [("fwd", 64, 64, 56, 56, 2, 2, 0), ("fwd+bwd", 64, 64, 56, 56, 2, 2, 0),
          ("fwd+bwd", 8, 16, 14, 14, 2, 2, 0), ("fwd+bwd", 32, 64, 112, 112, 3, 2, 1)]
QUICK = [("fwd", 2, 3, 9, 7, 2, 2, 0), ("fwd+bwd", 2, 3, 9, 7, 3, 2, 1)]

REFERENCE_MAX_ELEMENTS = 1 << 18  # the NumPy reference loops over output positions in Python


def _torch_run(t, tx, tg, k, s, p, backward_too):
    """PyTorch's max_pool2d on torch tensors (forward with indices, or forward and backward)."""
    F = t.nn.functional
    if not backward_too:
        return lambda: F.max_pool2d(tx, k, s, p, return_indices=True)[0]
    tx = tx.clone().requires_grad_()

    def torch_fwd_bwd():
        tx.grad = None
        y = F.max_pool2d(tx, k, s, p)
        y.backward(tg)
        return y, tx.grad
    return torch_fwd_bwd


def case(shape):
    kind, n, c, h, w, k, s, p = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = kernel("max_pool2d_forward"), kernel("max_pool2d_backward")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)  # (N, C, H, W)
    ref_fwd, ref_bwd = reference_kernel("max_pool2d_forward"), reference_kernel("max_pool2d_backward")
    out0, _ = forward(x, k, s, p)
    g = rng.standard_normal(out0.shape, dtype=np.float32)  # (N, C, OH, OW)

    def with_kernels(fwd, bwd):
        if not backward_too:
            return lambda: fwd(x, k, s, p)[0]

        def fwd_bwd():
            out, idx = fwd(x, k, s, p)
            return out, bwd(g, idx, x.shape)
        return fwd_bwd

    def expected():
        out, idx = ref_fwd(x, k, s, p)
        return (out, ref_bwd(g, idx, x.shape)) if backward_too else out

    run = {"pydl": with_kernels(forward, backward)}
    if x.size <= REFERENCE_MAX_ELEMENTS:
        run["reference"] = with_kernels(ref_fwd, ref_bwd)
    t = torch()
    if t is not None:
        run["torch"] = _torch_run(t, t.from_numpy(x), t.from_numpy(g), k, s, p, backward_too)
    out_elems = out0.size
    nbytes = x.nbytes + out_elems * (4 + 8)
    if backward_too:
        nbytes += out_elems * (4 + 8) + x.nbytes
    return Case(f"{kind} N{n} {c}x{h}x{w} k{k} s{s} p{p}", run, expected, bytes=float(nbytes), notes=[
        "max_pool2d GB/s = (x read + out and int64 indices written; fwd+bwd adds grad_out and the indices "
        "read and grad_input written) / median time; torch keeps the indices too when it trains. The "
        "reference (float64, a Python loop over output positions) is timed on small shapes only."])


# ---------------------------------------------------------------- GPU (pydl bench --device cuda)
CUDA_SHAPES = SHAPES
CUDA_QUICK = QUICK


def cuda_case(shape):
    from .. import gpu

    kind, n, c, h, w, k, s, p = shape
    backward_too = kind == "fwd+bwd"
    forward, backward = gpu.kernel("max_pool2d_forward"), gpu.kernel("max_pool2d_backward")
    ref_fwd, ref_bwd = reference_kernel("max_pool2d_forward"), reference_kernel("max_pool2d_backward")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w), dtype=np.float32)  # (N, C, H, W)
    xd = gpu.to_gpu(x)
    out0, _ = forward(xd, k, s, p)
    g = rng.standard_normal(out0.shape, dtype=np.float32)  # (N, C, OH, OW)
    gd = gpu.to_gpu(g)

    def pydl_run():
        out, idx = forward(xd, k, s, p)
        return (out, backward(gd, idx, xd.shape)) if backward_too else out

    def expected():  # the float64 reference on the host (slow on the large shapes: a Python loop)
        out, idx = ref_fwd(x, k, s, p)
        return (out, ref_bwd(g, idx, x.shape)) if backward_too else out

    run = {"pydl": pydl_run}
    t = gpu.torch_cuda()
    if t is not None:
        run["torch"] = _torch_run(t, t.from_dlpack(xd), t.from_dlpack(gd), k, s, p, backward_too)
    out_elems = out0.size
    nbytes = x.nbytes + out_elems * (4 + 8) + (out_elems * (4 + 8) + x.nbytes if backward_too else 0)
    return Case(f"{kind} N{n} {c}x{h}x{w} k{k} s{s} p{p}", run, expected, bytes=float(nbytes), notes=[
        "GPU max_pool2d GB/s: the traffic of pydl's passes as on the CPU; torch = F.max_pool2d on CUDA tensors."])
