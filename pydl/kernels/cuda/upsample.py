"""Up-sampling on the GPU (csrc/cuda/upsample.cu): nearest and bilinear resize, pixel
(un)shuffle, forward and backward.

Signatures and results are the reference's (:mod:`pydl.kernels.reference.upsample`):
(N, C, H, W) -> (N, C, OH, OW); ``scales`` is PyTorch's scale_factor per axis (or None)
and changes the source index exactly as there. Arguments are parsed by the reference's
own checks (the same messages); the kernels see contiguous planes.
"""
from ..reference.upsample import _check, _scales, _shuffle_check
from ._common import cp, float_array, launcher, stream

OPS = ("upsample_nearest2d_forward", "upsample_nearest2d_backward", "upsample_bilinear2d_forward",
       "upsample_bilinear2d_backward", "pixel_shuffle_forward", "pixel_shuffle_backward", "pixel_unshuffle_forward",
       "pixel_unshuffle_backward")


def _scale_args(op, scales):
    """(scale_h, scale_w) for the kernels: the caller's scale_factor, or 0 for 'from the sizes'."""
    sh, sw = _scales(op, scales)
    return float(sh or 0.0), float(sw or 0.0)


def _forward(op, name, input, output_size, scales, *extra):
    float_array(input, op, "input")
    OH, OW = _check(op, input, output_size)
    x = cp.ascontiguousarray(input)
    N, C, H, W = x.shape
    out = cp.empty((N, C, OH, OW), dtype=x.dtype)
    launcher(name, x.dtype)(N * C, H, W, OH, OW, *_scale_args(op, scales), *extra, x.data.ptr, out.data.ptr,
                            stream())
    return out


def _backward(op, name, grad_out, input_size, scales, *extra):
    float_array(grad_out, op, "grad_out")
    if grad_out.ndim != 4:
        raise ValueError(f"{op}: grad_out must have 4 dimensions (N, C, OH, OW), got shape {grad_out.shape}")
    try:
        size = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        size = ()
    if len(size) not in (2, 4):
        raise ValueError(f"{op}: input_size must be (N, C, H, W) or (H, W), got {input_size!r}")
    if len(size) == 4 and size[:2] != grad_out.shape[:2]:
        raise ValueError(f"{op}: input_size {input_size!r} does not match grad_out of shape {grad_out.shape}")
    N, C, OH, OW = grad_out.shape
    H, W = size[-2:]
    if min(H, W, OH, OW) <= 0:
        raise ValueError(f"{op}: input and output sizes must be positive, got input (H: {H}, W: {W}) "
                         f"output (H: {OH}, W: {OW})")
    g = cp.ascontiguousarray(grad_out)
    grad_in = cp.empty((N, C, H, W), dtype=g.dtype)
    launcher(name, g.dtype)(N * C, H, W, OH, OW, *_scale_args(op, scales), *extra, g.data.ptr, grad_in.data.ptr,
                            stream())
    return grad_in


def upsample_nearest2d_forward(input, output_size, scales=None):
    """Nearest resize: out[n, c, i, j] = x[n, c, src_h(i), src_w(j)]; (N, C, H, W) -> (N, C, OH, OW)."""
    return _forward("upsample_nearest2d", "upsample_nearest2d_forward", input, output_size, scales)


def upsample_nearest2d_backward(grad_out, input_size, scales=None):
    """Gradient of upsample_nearest2d: each input sums the gradients of the outputs that copied it."""
    return _backward("upsample_nearest2d_backward", "upsample_nearest2d_backward", grad_out, input_size, scales)


def upsample_bilinear2d_forward(input, output_size, align_corners, scales=None):
    """Bilinear resize (PyTorch's mode='bilinear'): (N, C, H, W) -> (N, C, OH, OW)."""
    return _forward("upsample_bilinear2d", "upsample_bilinear2d_forward", input, output_size, scales,
                    bool(align_corners))


def upsample_bilinear2d_backward(grad_out, input_size, align_corners, scales=None):
    """Gradient of upsample_bilinear2d: each output's gradient to its four inputs, weighted."""
    return _backward("upsample_bilinear2d_backward", "upsample_bilinear2d_backward", grad_out, input_size, scales,
                     bool(align_corners))


def _shuffle(x, r, inverse):
    """pixel_shuffle ((*, C r^2, H, W) -> (*, C, H r, W r)) or, inverse, pixel_unshuffle."""
    op, name = ("pixel_unshuffle", "downscale_factor") if inverse else ("pixel_shuffle", "upscale_factor")
    float_array(x, op, "input")
    r = _shuffle_check(op, x, r, name)
    *lead, C, H, W = x.shape
    if inverse:
        if H % r or W % r:
            raise ValueError(f"{op}: the input's height {H} and width {W} must be divisible by {name} {r}")
        dims = (C, H // r, W // r)  # (C, H, W) of the kernel: the large layout's C, the small one's H, W
        out_shape = (*lead, C * r * r, H // r, W // r)
    else:
        if C % (r * r):
            raise ValueError(f"{op}: the input's {C} channels must be divisible by {name}**2 = {r * r}")
        dims = (C // (r * r), H, W)
        out_shape = (*lead, C // (r * r), H * r, W * r)
    x = cp.ascontiguousarray(x)
    out = cp.empty(out_shape, dtype=x.dtype)
    B = x.size // (C * H * W) if x.size else 0
    launcher("pixel_shuffle", x.dtype)(x.data.ptr, out.data.ptr, B, *dims, r, inverse, stream())
    return out


def pixel_shuffle_forward(input, upscale_factor):
    """Sub-pixel rearrangement: (*, C r^2, H, W) -> (*, C, H r, W r)."""
    return _shuffle(input, upscale_factor, False)


def pixel_shuffle_backward(grad_out, upscale_factor):
    """Gradient of pixel_shuffle: pixel_unshuffle of the gradient (a permutation's inverse)."""
    return _shuffle(grad_out, upscale_factor, True)


def pixel_unshuffle_forward(input, downscale_factor):
    """The inverse of pixel_shuffle: (*, C, H r, W r) -> (*, C r^2, H, W)."""
    return _shuffle(input, downscale_factor, True)


def pixel_unshuffle_backward(grad_out, downscale_factor):
    """Gradient of pixel_unshuffle: pixel_shuffle of the gradient."""
    return _shuffle(grad_out, downscale_factor, False)
