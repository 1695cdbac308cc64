"""conv2d forward, and forward+backward (the input, weight and bias gradients), float32.

GFLOP/s counts the multiply-adds of the convolution itself, 2 * N * K * OH * OW * C/G * KH * KW
per pass (the forward once, fwd+bwd three times: forward, input gradient, weight gradient).
PyTorch's side computes the same three gradients (its input requires grad).
"""
import numpy as np

from ..harness import Case, kernel, reference_kernel, torch

# (pass, name, N, C, H, W, K, kernel, stride, padding): DESIGN.md's four canonical layers,
# and a deep layer of the CIFAR ResNet-18 (e2e) that runs Winograd's F(2x2, 3x3)
_LAYERS = [("LeNet", 64, 1, 28, 28, 20, 5, 1, 2), ("ResNet", 32, 64, 56, 56, 64, 3, 1, 1),
           ("AlexNet-1", 16, 3, 224, 224, 64, 11, 4, 2), ("CIFAR", 128, 3, 32, 32, 32, 3, 1, 1),
           ("ResNet-18 8x8x256", 32, 256, 8, 8, 256, 3, 1, 1)]
SHAPES = [(p,) + layer for p in ("fwd", "fwd+bwd") for layer in _LAYERS]
QUICK = [("fwd", "tiny", 2, 3, 9, 8, 4, 3, 2, 1), ("fwd+bwd", "tiny", 2, 3, 9, 8, 4, 3, 2, 1)]

# The float64 reference builds the columns of the whole batch: timed on small layers only.
REFERENCE_MAX_FLOPS = 2e8
TRUTH_IMAGES = 4  # images per call of the reference when computing the truth (memory)


def _truth(x, w, b, g, stride, padding, backward_too):
    """The float64 reference, a few images at a time; sums the weight and bias gradients."""
    ref_fwd, ref_bwd = reference_kernel("conv2d_forward"), reference_kernel("conv2d_backward")
    outs, gxs, gw, gb = [], [], 0.0, 0.0
    for n0 in range(0, x.shape[0], TRUTH_IMAGES):
        xs = x[n0:n0 + TRUTH_IMAGES].astype(np.float64)
        outs.append(ref_fwd(xs, w, b, stride, padding))
        if backward_too:
            gx, gwi, gbi = ref_bwd(g[n0:n0 + TRUTH_IMAGES], xs, w, stride, padding)
            gxs.append(gx)
            gw, gb = gw + gwi, gb + gbi
    out = np.concatenate(outs)
    return (out, np.concatenate(gxs), gw, gb) if backward_too else out


def _problem(shape):
    """The layer's float32 inputs (NumPy) and its flop count."""
    kind, name, n, c, h, w_, k, ks, stride, padding = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w_), dtype=np.float32)  # (N, C, H, W)
    w = (rng.standard_normal((k, c, ks, ks), dtype=np.float32) / np.sqrt(c * ks * ks)).astype(np.float32)
    b = rng.standard_normal(k, dtype=np.float32)  # (K,)
    oh, ow = (h + 2 * padding - ks) // stride + 1, (w_ + 2 * padding - ks) // stride + 1
    g = rng.standard_normal((n, k, oh, ow), dtype=np.float32)  # (N, K, OH, OW)
    flops = 2.0 * n * k * oh * ow * c * ks * ks * (3 if kind == "fwd+bwd" else 1)
    return x, w, b, g, flops


def _with_kernels(fwd, bwd, x, w, b, g, stride, padding):
    """The call of one backend's kernels (bwd None: the forward alone)."""
    if bwd is None:
        return lambda: fwd(x, w, b, stride, padding)
    return lambda: (fwd(x, w, b, stride, padding),) + tuple(bwd(g, x, w, stride, padding))


def _torch_run(t, tx, tw, tb, tg, stride, padding, backward_too):
    """PyTorch's conv2d on torch tensors (forward, or forward and the three gradients)."""
    F = t.nn.functional
    if not backward_too:
        def torch_fwd():
            with t.no_grad():
                return F.conv2d(tx, tw, tb, stride, padding)
        return torch_fwd
    tx_, tw_, tb_ = (v.clone().requires_grad_() for v in (tx, tw, tb))

    def torch_fwd_bwd():
        tx_.grad = tw_.grad = tb_.grad = None
        y = F.conv2d(tx_, tw_, tb_, stride, padding)
        y.backward(tg)
        return y, tx_.grad, tw_.grad, tb_.grad
    return torch_fwd_bwd


def _label(shape):
    kind, name, n, c, h, w_, k, ks, stride, padding = shape
    return f"{kind} {name} N{n} {c}x{h}x{w_} k{k} {ks}x{ks}" + (f" s{stride}" if stride > 1 else "") + f" p{padding}"


NOTE = ("conv2d GFLOP/s = 2 * N * K * OH * OW * C * KH * KW per pass (fwd+bwd: 3 passes, the input gradient "
        "included on both sides) / median time; the reference computes in float64.")


def case(shape):
    kind, name, n, c, h, w_, k, ks, stride, padding = shape
    backward_too = kind == "fwd+bwd"
    forward = kernel("conv2d_forward")
    backward = kernel("conv2d_backward") if backward_too else None
    x, w, b, g, flops = _problem(shape)
    run = {"pydl": _with_kernels(forward, backward, x, w, b, g, stride, padding)}
    ref_fwd, ref_bwd = reference_kernel("conv2d_forward"), reference_kernel("conv2d_backward")
    if ref_fwd is not None and (ref_bwd is not None or not backward_too) and flops <= REFERENCE_MAX_FLOPS:
        run["reference"] = _with_kernels(ref_fwd, ref_bwd if backward_too else None, x, w, b, g, stride, padding)
    t = torch()
    if t is not None:
        run["torch"] = _torch_run(t, *(t.from_numpy(v) for v in (x, w, b, g)), stride, padding, backward_too)
    return Case(_label(shape), run, lambda: _truth(x, w, b, g, stride, padding, backward_too), flops=flops,
                notes=[NOTE])


# ---------------------------------------------------------------- GPU (pydl bench --device cuda)
CUDA_SHAPES = SHAPES
CUDA_QUICK = QUICK


def cuda_case(shape):
    from .. import gpu

    kind, name, n, c, h, w_, k, ks, stride, padding = shape
    backward_too = kind == "fwd+bwd"
    forward = gpu.kernel("conv2d_forward")
    backward = gpu.kernel("conv2d_backward") if backward_too else None
    x, w, b, g, flops = _problem(shape)
    xd, wd, bd, gd = gpu.to_gpu(x, w, b, g)
    run = {"pydl": _with_kernels(forward, backward, xd, wd, bd, gd, stride, padding)}
    notes = [NOTE, "GPU: pydl = im2col + pydl's CUDA gemm per tile of images; torch = F.conv2d on CUDA tensors "
                   "(cuDNN, TF32 off)."]
    t = gpu.torch_cuda()
    if t is not None:
        inner = _torch_run(t, *(t.from_dlpack(v) for v in (xd, wd, bd, gd)), stride, padding, backward_too)

        def torch_run():  # TF32 off: the same float32 arithmetic as pydl's default path
            was = t.backends.cudnn.allow_tf32
            t.backends.cudnn.allow_tf32 = False
            try:
                return inner()
            finally:
                t.backends.cudnn.allow_tf32 = was
        run["torch"] = torch_run
    return Case(_label(shape), run, lambda: _truth(x, w, b, g, stride, padding, backward_too), flops=flops,
                notes=notes)
