"""conv2d / conv_transpose2d: every backend against the float64 reference, the reference
against the textbook definition and numeric gradients, bad input, threads, memory."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

# (N, C, H, W), (K, C/groups, KH, KW) and the keyword arguments of conv2d.
CONV_CASES = [
    pytest.param((2, 3, 8, 8), (4, 3, 3, 3), dict(padding=1), id="3x3-pad1"),
    pytest.param((2, 3, 9, 10), (5, 3, 3, 3), dict(stride=2, padding=1), id="stride2-pad1"),
    pytest.param((1, 2, 11, 13), (3, 2, 3, 2), dict(stride=(2, 3), padding=(0, 2)), id="stride23-pad02"),
    pytest.param((2, 2, 7, 9), (3, 2, 3, 3), dict(padding="same"), id="same-odd"),
    pytest.param((2, 2, 7, 9), (3, 2, 4, 2), dict(padding="same", dilation=(1, 3)), id="same-even-dilated"),
    pytest.param((2, 2, 7, 9), (3, 2, 3, 4), dict(padding="valid"), id="valid"),
    pytest.param((2, 3, 12, 12), (4, 3, 3, 3), dict(padding=2, dilation=2), id="dilation2"),
    pytest.param((2, 4, 9, 9), (6, 2, 3, 3), dict(padding=1, groups=2), id="groups2"),
    pytest.param((2, 4, 9, 9), (4, 1, 3, 3), dict(padding=1, groups=4), id="depthwise"),
    pytest.param((2, 3, 9, 8), (6, 1, 3, 3), dict(stride=2, padding=1, groups=3), id="depthwise-mult2-stride2"),
    pytest.param((2, 5, 10, 11), (5, 1, 5, 3), dict(padding=(2, 1), dilation=(1, 2), groups=5), id="depthwise-5x3"),
    pytest.param((2, 1, 10, 10), (6, 1, 5, 5), dict(padding=2), id="one-input-channel"),
    pytest.param((2, 6, 7, 5), (4, 6, 1, 1), dict(), id="1x1"),
    pytest.param((2, 6, 7, 5), (4, 3, 1, 1), dict(groups=2), id="1x1-groups2"),
    pytest.param((2, 6, 7, 5), (4, 6, 1, 1), dict(stride=2), id="1x1-stride2"),
    pytest.param((2, 6, 7, 5), (4, 6, 1, 1), dict(padding=1), id="1x1-pad1"),
    pytest.param((2, 3, 6, 17), (2, 3, 2, 5), dict(padding=(1, 0)), id="non-square"),
    pytest.param((3, 2, 1, 1), (3, 2, 1, 1), dict(), id="1x1-image"),
    pytest.param((3, 2, 1, 1), (3, 2, 3, 3), dict(padding=1), id="1x1-image-pad1"),
    pytest.param((1, 3, 33, 7), (7, 3, 3, 3), dict(stride=(3, 1), padding=(1, 2)), id="33x7"),
    pytest.param((2, 3, 11, 11), (4, 3, 11, 11), dict(stride=4, padding=2), id="11x11-stride4-pad2"),
    pytest.param((1, 2, 5, 5), (3, 2, 5, 5), dict(), id="kernel=image"),
    pytest.param((0, 3, 8, 8), (4, 3, 3, 3), dict(padding=1), id="batch0"),
    pytest.param((2, 0, 5, 5), (3, 0, 3, 3), dict(padding=1), id="no-input-channels"),
    pytest.param((2, 3, 5, 5), (0, 3, 3, 3), dict(padding=1), id="no-filters"),
    # Larger layers: the work split across threads (see also the forced one-row tiles below).
    pytest.param((2, 64, 33, 33), (16, 64, 3, 3), dict(padding=1), id="multi-tile"),
    pytest.param((8, 32, 24, 24), (32, 32, 3, 3), dict(padding=1), id="batch-parallel"),
    pytest.param((3, 64, 30, 30), (64, 64, 1, 1), dict(), id="1x1-large"),
    pytest.param((4, 32, 40, 40), (32, 1, 3, 3), dict(padding=1, groups=32), id="depthwise-large"),
    # 32 and 64 channels per group: computed pixel-major and transposed back (odd pixel counts).
    pytest.param((2, 8, 13, 11), (64, 8, 3, 3), dict(padding=1), id="64-filters"),
    pytest.param((2, 6, 9, 7), (64, 3, 2, 2), dict(stride=2, groups=2), id="32-filters-per-group"),
    pytest.param((3, 1, 12, 12), (20, 1, 5, 5), dict(padding=2), id="lenet-like"),
    # Deep layers on small images: several images share one column tile (the last one short).
    pytest.param((5, 32, 8, 8), (16, 32, 3, 3), dict(padding=1), id="images-per-tile"),
    pytest.param((5, 32, 8, 8), (24, 16, 3, 3), dict(stride=2, padding=1, groups=2), id="images-per-tile-s2-groups2"),
    pytest.param((3, 128, 7, 8), (8, 128, 1, 1), dict(stride=2), id="images-per-tile-1x1-stride2"),
    # Weights of 4.5 MiB and more: their gradient as one product per chunk of images.
    pytest.param((3, 256, 4, 4), (512, 256, 3, 3), dict(padding=1), id="large-weights"),
    # Deep layers on large images: implicit GEMM (the columns packed straight from the padded,
    # phase-split image), three images on two threads splitting each gemm.
    pytest.param((3, 16, 48, 48), (64, 16, 3, 3), dict(padding=1), id="implicit-gemm"),
    pytest.param((2, 16, 97, 96), (64, 16, 3, 3), dict(stride=2, padding=2, dilation=2), id="implicit-gemm-s2-d2"),
    pytest.param((2, 3, 78, 75), (64, 3, 11, 11), dict(stride=4, padding=2), id="alexnet-like"),
    # The implicit GEMM unpacked (float32, AVX-512): channels not a multiple of its 8-row
    # tiles, output rows of 17 and of exactly 16 pixels (its vectors cross row ends).
    pytest.param((2, 4, 21, 37), (12, 2, 3, 5), dict(stride=(1, 2), padding=(1, 2), dilation=(2, 1), groups=2),
                 id="unpacked-ragged-groups"),
    pytest.param((3, 3, 20, 18), (10, 3, 3, 3), dict(), id="unpacked-16-wide"),
    # Stride 1, rows of 16 or more: the input gradient as the forward conv of the flipped
    # kernel (asymmetric 'same' padding, groups, dilation).
    pytest.param((2, 4, 18, 20), (6, 2, 3, 2), dict(padding="same", dilation=(1, 2), groups=2), id="flipped-input-grad"),
    # 3x3 stride 1 with 128+ channels per group on both sides: Winograd's F(2x2, 3x3) (odd
    # output sizes: tiles with no second row / column; padding 2 and 0; groups).
    pytest.param((3, 128, 5, 7), (128, 128, 3, 3), dict(padding=1), id="winograd-odd"),
    pytest.param((2, 256, 4, 3), (256, 128, 3, 3), dict(padding=(2, 0), groups=2), id="winograd-groups2"),
]

TRANSPOSE_CASES = [
    pytest.param((2, 3, 5, 5), (3, 4, 3, 3), dict(padding=1), id="3x3-pad1"),
    pytest.param((2, 3, 5, 4), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1), id="stride2-outpad1"),
    pytest.param((1, 2, 4, 6), (2, 3, 2, 3), dict(stride=(2, 3), output_padding=(1, 2)), id="stride23-outpad12"),
    pytest.param((2, 4, 5, 5), (4, 3, 3, 3), dict(stride=2, groups=2), id="groups2"),
    pytest.param((2, 4, 5, 5), (4, 1, 3, 3), dict(padding=1, groups=4), id="depthwise"),
    pytest.param((2, 2, 5, 6), (2, 3, 3, 2), dict(padding=(2, 1), dilation=2, output_padding=1), id="dilation2-outpad"),
    pytest.param((2, 6, 7, 5), (6, 4, 1, 1), dict(), id="1x1"),
    pytest.param((2, 3, 1, 1), (3, 2, 4, 4), dict(stride=2), id="1x1-image"),
    pytest.param((0, 3, 5, 5), (3, 4, 3, 3), dict(stride=2), id="batch0"),
    pytest.param((4, 32, 20, 20), (32, 16, 4, 4), dict(stride=2, padding=1), id="large"),
    # The conv it transposes is deep on small images: several images per column tile.
    pytest.param((5, 16, 4, 4), (16, 32, 3, 3), dict(stride=2, padding=1, output_padding=1), id="images-per-tile"),
]


def rand(rng, shape, dtype, xp=np):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def tolerance(dtype, terms):
    # A sum of `terms` unit-normal products carries rounding error growing like sqrt(terms).
    return dict(atol=(1e-5 if np.dtype(dtype) == np.float32 else 1e-11) * max(1.0, np.sqrt(terms)))


def conv_operands(rng, x_shape, w_shape, dtype, xp=np, bias=True):
    K = w_shape[0]
    return rand(rng, x_shape, dtype, xp), rand(rng, w_shape, dtype, xp), (rand(rng, (K,), dtype, xp) if bias else None)


def check_conv(backend, dtype, x_shape, w_shape, kw, rng, bias=True):
    xp = xp_for(backend)
    x, w, b = conv_operands(rng, x_shape, w_shape, dtype, xp, bias)
    out = kernels.get("conv2d_forward", backend)(x, w, b, **kw)
    ref = reference.conv2d_forward(to_numpy(x), to_numpy(w), None if b is None else to_numpy(b), **kw)
    fan_in = np.prod(w_shape[1:])
    assert_close(out, ref, dtype, what="out", **tolerance(dtype, fan_in))
    g = rand(rng, ref.shape, dtype, xp)
    got = kernels.get("conv2d_backward", backend)(g, x, w, **kw)
    want = reference.conv2d_backward(to_numpy(g), to_numpy(x), to_numpy(w), **kw)
    K, N, OHW = w_shape[0], x_shape[0], ref.shape[2] * ref.shape[3]
    terms = dict(grad_input=K * np.prod(w_shape[2:]), grad_weight=N * OHW, grad_bias=N * OHW)
    for name, a, r in zip(terms, got, want):
        assert_close(a, r, dtype, what=name, **tolerance(dtype, terms[name]))


@pytest.mark.parametrize("backend", backends("conv2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,kw", CONV_CASES)
def test_conv2d_matches_reference(backend, dtype, x_shape, w_shape, kw, rng):
    check_conv(backend, dtype, x_shape, w_shape, kw, rng)


@pytest.mark.parametrize("backend", backends("conv2d_forward"))
@pytest.mark.parametrize("x_shape,w_shape,kw", [CONV_CASES[1], CONV_CASES[8], CONV_CASES[12]])
def test_conv2d_without_bias(backend, x_shape, w_shape, kw, rng):
    check_conv(backend, np.float32, x_shape, w_shape, kw, rng, bias=False)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,kw",
                         [CONV_CASES[i] for i in (1, 4, 9, 12, 20, 25, 32, 33, 35, 36, 37, 41, 42, 43)])
def test_every_isa_path_matches_reference(path, dtype, x_shape, w_shape, kw, isa, rng):
    isa(path)
    check_conv("cpu", dtype, x_shape, w_shape, kw, rng)
    check_transpose("cpu", dtype, *[p for p in TRANSPOSE_CASES[1].values], rng)


# Every algorithm the cpu kernel picks between, forced through its private tuning hook on
# cases where the automatic choice would take the other one: one output row per column tile,
# the weight gradient by dot products or by the gemm, channel- or pixel-major forward gemms,
# zero-padded or ragged register tiles, direct or gemm depthwise loops, the channel-major
# forward as an implicit GEMM or not, the implicit GEMM unpacked (float32 on AVX-512, output
# rows of 16 or more; the default there) or not, Winograd's F(2x2, 3x3) for 3x3 stride-1
# undilated convs or not (with one image per chunk: tile_kb=1).
PATHS = [dict(tile_kb=1, unpacked=0), dict(dot=1), dict(dot=0), dict(transposed=1, unpacked=0),
         dict(transposed=0, padded=0, unpacked=0), dict(padded=1, unpacked=0), dict(direct=0), dict(direct=1),
         dict(implicit=0, unpacked=0), dict(implicit=1, unpacked=0), dict(unpacked=1), dict(flipped=0),
         dict(flipped=1), dict(winograd=0), dict(winograd=1), dict(winograd=1, tile_kb=1)]


@pytest.fixture
def conv_path():
    from pydl import _C

    yield lambda cfg: _C._conv_tuning(**cfg)
    _C._conv_tuning()


@pytest.mark.parametrize("cfg", PATHS, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in PATHS])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,kw",
                         [CONV_CASES[i] for i in (0, 1, 3, 8, 9, 10, 11, 13, 20, 25, 29, 30, 31, 33, 34, 35, 38, 39, 40,
                                                  41, 42, 43)])
def test_every_cpu_algorithm_matches_reference(cfg, dtype, x_shape, w_shape, kw, conv_path, rng):
    conv_path(cfg)
    check_conv("cpu", dtype, x_shape, w_shape, kw, rng)


@pytest.mark.parametrize("cfg", PATHS, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c in PATHS])
@pytest.mark.parametrize("x_shape,w_shape,kw", [TRANSPOSE_CASES[i] for i in (1, 3, 4, 9, 10)])
def test_every_cpu_algorithm_matches_reference_transposed(cfg, x_shape, w_shape, kw, conv_path, rng):
    conv_path(cfg)
    check_transpose("cpu", np.float32, x_shape, w_shape, kw, rng)


@pytest.mark.parametrize("backend", backends("conv2d_forward"))
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True),
                                   (False, False, False), (True, True, False)])
def test_backward_computes_only_what_is_needed(backend, needs, rng):
    x, w, _ = conv_operands(rng, (2, 4, 6, 6), (6, 2, 3, 3), np.float64, xp_for(backend))
    g = rand(rng, (2, 6, 3, 3), np.float64, xp_for(backend))
    kw = dict(stride=2, padding=1, groups=2)
    got = kernels.get("conv2d_backward", backend)(g, x, w, needs=needs, **kw)
    want = reference.conv2d_backward(to_numpy(g), to_numpy(x), to_numpy(w), needs=needs, **kw)
    for need, a, r in zip(needs, got, want):
        assert (a is None) == (not need) and (r is None) == (not need)
        if need:
            assert_close(a, r, np.float64)


@pytest.mark.parametrize("backend", backends("conv2d_forward"))
def test_strided_and_transposed_inputs_are_copied_not_misread(backend, rng):
    xp = xp_for(backend)
    nhwc = rand(rng, (2, 9, 10, 4), np.float32, xp)
    x = nhwc.transpose(0, 3, 1, 2)                       # (2, 4, 9, 10), channels last in memory
    big_w = rand(rng, (10, 4, 7, 3), np.float32, xp)
    w = big_w[::2, :, ::-2, :]                            # (5, 4, 4, 3), negative stride
    b = rand(rng, (10,), np.float32, xp)[::2]
    kw = dict(stride=(1, 2), padding=1)
    out = kernels.get("conv2d_forward", backend)(x, w, b, **kw)
    ref = reference.conv2d_forward(to_numpy(x), to_numpy(w), to_numpy(b), **kw)
    assert_close(out, ref, np.float32, **tolerance(np.float32, 48))
    g = rand(rng, ref.shape[:3] + (2 * ref.shape[3],), np.float32, xp)[..., ::2]
    got = kernels.get("conv2d_backward", backend)(g, x, w, **kw)
    want = reference.conv2d_backward(to_numpy(g), to_numpy(x), to_numpy(w), **kw)
    for a, r in zip(got, want):
        assert_close(a, r, np.float32, **tolerance(np.float32, 200))


# ---------------------------------------------------------------------------------------
# conv_transpose2d
# ---------------------------------------------------------------------------------------

def check_transpose(backend, dtype, x_shape, w_shape, kw, rng, bias=True):
    xp = xp_for(backend)
    groups = kw.get("groups", 1)
    x, w = rand(rng, x_shape, dtype, xp), rand(rng, w_shape, dtype, xp)
    b = rand(rng, (w_shape[1] * groups,), dtype, xp) if bias else None
    out = kernels.get("conv_transpose2d_forward", backend)(x, w, b, **kw)
    ref = reference.conv_transpose2d_forward(to_numpy(x), to_numpy(w), None if b is None else to_numpy(b), **kw)
    Cg = w_shape[0] // groups
    assert_close(out, ref, dtype, what="out", **tolerance(dtype, Cg * np.prod(w_shape[2:])))
    g = rand(rng, ref.shape, dtype, xp)
    got = kernels.get("conv_transpose2d_backward", backend)(g, x, w, **kw)
    want = reference.conv_transpose2d_backward(to_numpy(g), to_numpy(x), to_numpy(w), **kw)
    N, HW = x_shape[0], x_shape[2] * x_shape[3]
    terms = dict(grad_input=np.prod(w_shape[1:]), grad_weight=N * HW, grad_bias=N * ref.shape[2] * ref.shape[3])
    for name, a, r in zip(terms, got, want):
        assert_close(a, r, dtype, what=name, **tolerance(dtype, terms[name]))


@pytest.mark.parametrize("backend", backends("conv_transpose2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape,w_shape,kw", TRANSPOSE_CASES)
def test_conv_transpose2d_matches_reference(backend, dtype, x_shape, w_shape, kw, rng):
    check_transpose(backend, dtype, x_shape, w_shape, kw, rng)


@pytest.mark.parametrize("backend", backends("conv_transpose2d_forward"))
def test_conv_transpose2d_without_bias_and_partial_needs(backend, rng):
    check_transpose(backend, np.float64, (2, 3, 5, 4), (3, 2, 3, 3), dict(stride=2, output_padding=1), rng, bias=False)
    xp = xp_for(backend)
    x, w = rand(rng, (2, 3, 4, 4), np.float64, xp), rand(rng, (3, 2, 3, 3), np.float64, xp)
    g = rand(rng, (2, 2, 9, 9), np.float64, xp)
    gx, gw, gb = kernels.get("conv_transpose2d_backward", backend)(g, x, w, stride=2, needs=(False, True, False))
    assert gx is None and gb is None
    assert_close(gw, reference.conv_transpose2d_backward(to_numpy(g), to_numpy(x), to_numpy(w), stride=2)[1],
                 np.float64)


# ---------------------------------------------------------------------------------------
# The reference against the definition and numeric gradients
# ---------------------------------------------------------------------------------------

def conv2d_by_definition(x, w, b, stride, pads, dilation, groups):
    """The six-loop textbook definition (plus the group and batch loops), padding by bounds."""
    N, C, H, W = x.shape
    K, Cg, KH, KW = w.shape
    (sh, sw), (dh, dw), (top, bottom, left, right) = stride, dilation, pads
    OH = (H + top + bottom - dh * (KH - 1) - 1) // sh + 1
    OW = (W + left + right - dw * (KW - 1) - 1) // sw + 1
    out = np.zeros((N, K, OH, OW))
    Kg = K // groups
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for oh in range(OH):
                for ow in range(OW):
                    s = 0.0 if b is None else b[k]
                    for c in range(Cg):
                        for i in range(KH):
                            for j in range(KW):
                                ih, iw = oh * sh - top + i * dh, ow * sw - left + j * dw
                                if 0 <= ih < H and 0 <= iw < W:
                                    s += w[k, c, i, j] * x[n, g * Cg + c, ih, iw]
                    out[n, k, oh, ow] = s
    return out


@pytest.mark.parametrize("x_shape,w_shape,kw,pads", [
    ((2, 4, 6, 7), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2), (1, 1, 2, 2)),
    ((1, 3, 7, 8), (3, 1, 4, 4), dict(padding="same", dilation=2, groups=3), (3, 3, 3, 3)),
    ((1, 2, 5, 6), (2, 2, 2, 3), dict(padding="same"), (0, 1, 1, 1)),
    ((2, 2, 7, 5), (3, 2, 3, 3), dict(stride=3, padding="valid"), (0, 0, 0, 0)),
])
def test_reference_forward_is_the_definition(x_shape, w_shape, kw, pads, rng):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    stride = kw.get("stride", 1)
    dilation = kw.get("dilation", 1)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)  # noqa: E731
    want = conv2d_by_definition(x, w, b, pair(stride), pads, pair(dilation), kw.get("groups", 1))
    assert_close(reference.conv2d_forward(x, w, b, **kw), want, np.float64)


def numeric_grad(f, a, h=1e-6):
    grad = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        up = f()
        a[idx] = old - h
        down = f()
        a[idx] = old
        grad[idx] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("x_shape,w_shape,kw", [
    ((2, 4, 5, 6), (4, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)),
    ((1, 2, 4, 4), (2, 2, 2, 2), dict(stride=2, padding=1)),
])
def test_reference_backward_is_the_numeric_gradient(transposed, x_shape, w_shape, kw, rng):
    # dL/dx, dL/dw, dL/db of L = sum(G * conv(x, w, b)) by central differences.
    if transposed:
        kw = dict(kw, output_padding=1) if kw.get("stride", 1) != 1 else kw
        fwd, bwd = reference.conv_transpose2d_forward, reference.conv_transpose2d_backward
        K = w_shape[1] * kw.get("groups", 1)
    else:
        fwd, bwd = reference.conv2d_forward, reference.conv2d_backward
        K = w_shape[0]
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(K)
    G = rng.standard_normal(fwd(x, w, b, **kw).shape)
    loss = lambda: np.sum(G * fwd(x, w, b, **kw))  # noqa: E731
    gx, gw, gb = bwd(G, x, w, **kw)
    for name, got, arr in [("grad_input", gx, x), ("grad_weight", gw, w), ("grad_bias", gb, b)]:
        assert_close(got, numeric_grad(loss, arr), np.float64, rtol=1e-6, atol=1e-7, what=name)


@pytest.mark.parametrize("kw", [dict(stride=2, padding=1, output_padding=(0, 1)), dict(padding=2, dilation=2, groups=2)])
def test_reference_transpose_is_the_adjoint_of_conv2d(kw, rng):
    # <conv2d(x, w), y> = <x, conv_transpose2d(y, w)>: the transposed conv is the adjoint.
    w = rng.standard_normal((4, 2 if kw.get("groups") else 4, 3, 3))
    x = rng.standard_normal((2, 4, 9, 10))
    ckw = {k: v for k, v in kw.items() if k != "output_padding"}
    y = rng.standard_normal(reference.conv2d_forward(x, w, **ckw).shape)
    xt = reference.conv_transpose2d_forward(y, w, **kw)
    assert xt.shape == x.shape
    assert np.isclose(np.sum(reference.conv2d_forward(x, w, **ckw) * y), np.sum(x * xt), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

f32 = np.float32
BAD_CONV2D = [
    (lambda: (np.ones((1, 3, 5, 5), f32), np.ones((2, 1, 3, 3), f32), {}), ValueError,
     "conv2d: input has 3 channels but weight expects 1"),
    (lambda: (np.ones((1, 4, 5, 5), f32), np.ones((2, 1, 3, 3), f32), dict(groups=2)), ValueError,
     r"conv2d: input has 4 channels but weight expects 2 \(1 per group x 2 groups\)"),
    (lambda: (np.ones((1, 3, 5, 5), f32), np.ones((4, 1, 3, 3), f32), dict(groups=2)), ValueError,
     r"conv2d: groups=2 must divide the input channels \(3\)"),
    (lambda: (np.ones((1, 4, 5, 5), f32), np.ones((3, 2, 3, 3), f32), dict(groups=2)), ValueError,
     r"conv2d: groups=2 must divide the output channels \(3\)"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 7, 3), f32), dict(padding=0)), ValueError,
     r"conv2d: output size would be non-positive: kernel 7x3 \(dilated 7x3\) is larger than the padded input 5x5"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(dilation=3)), ValueError,
     r"conv2d: output size would be non-positive: kernel 3x3 \(dilated 7x7\)"),
    (lambda: (np.ones((3, 5, 5), f32), np.ones((1, 3, 3, 3), f32), {}), ValueError,
     r"conv2d: input must have 4 dimensions \(N, C, H, W\), got shape \(3, 5, 5\)"),
    (lambda: (np.ones((1, 3, 5, 5), f32), np.ones((3, 3, 3), f32), {}), ValueError,
     r"conv2d: weight must have 4 dimensions"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(padding="same", stride=2)), ValueError,
     r"conv2d: padding='same' is not supported for strided convolutions"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(padding="full")), ValueError,
     r"conv2d: padding must be an int, a pair, 'same' or 'valid', got 'full'"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(padding=-1)), ValueError,
     r"conv2d: padding must be non-negative"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(stride=0)), ValueError,
     r"conv2d: stride must be positive"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(stride=(1, 2, 3))), TypeError,
     r"conv2d: stride must be an int or a pair of ints"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(dilation=1.5)), TypeError,
     r"conv2d: dilation must be an int or a pair of ints"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), f32), dict(groups=0)), ValueError,
     r"conv2d: groups must be positive"),
    (lambda: (np.ones((1, 2, 5, 5), f32), np.ones((3, 2, 3, 3), f32), dict(bias=np.ones(2, f32))), ValueError,
     r"conv2d: bias must have shape \(3,\), got \(2,\)"),
]


@pytest.mark.parametrize("backend", ["reference"] + backends("conv2d_forward"))
@pytest.mark.parametrize("make,exc,message", BAD_CONV2D)
def test_conv2d_bad_input_raises_clear_errors(backend, make, exc, message):
    x, w, kw = make()
    with pytest.raises(exc, match="^" + message):
        kernels.get("conv2d_forward", backend)(x, w, **kw)


@pytest.mark.parametrize("make,exc,message", [
    (lambda: (np.ones((1, 1, 5, 5), np.int32), np.ones((1, 1, 3, 3), f32)), TypeError,
     "conv2d: input must be float32 or float64, got int32"),
    (lambda: (np.ones((1, 1, 5, 5), f32), np.ones((1, 1, 3, 3), np.float64)), TypeError,
     "conv2d: input and weight must have the same dtype, got float32 and float64"),
    (lambda: ([[[[1.0]]]], np.ones((1, 1, 1, 1), f32)), TypeError, "conv2d: input must be a numpy.ndarray"),
])
def test_conv2d_cpu_rejects_foreign_types(make, exc, message):
    x, w = make()
    with pytest.raises(exc, match="^" + message):
        kernels.get("conv2d_forward", "cpu")(x, w)
    with pytest.raises(TypeError, match="^conv2d: bias and|^conv2d: input and bias|^conv2d: bias must"):
        kernels.get("conv2d_forward", "cpu")(np.ones((1, 1, 3, 3), f32), np.ones((1, 1, 1, 1), f32),
                                             np.ones(1, np.float64))


@pytest.mark.parametrize("backend", ["reference"] + backends("conv2d_backward"))
def test_backward_checks_grad_out_shape(backend):
    x, w = np.ones((2, 3, 6, 6), f32), np.ones((4, 3, 3, 3), f32)
    with pytest.raises(ValueError, match=r"^conv2d_backward: grad_out must have shape \(2, 4, 4, 4\), got \(2, 4, 5, 4\)"):
        kernels.get("conv2d_backward", backend)(np.ones((2, 4, 5, 4), f32), x, w)
    with pytest.raises(ValueError, match=r"^conv_transpose2d_backward: grad_out must have shape \(2, 3, 8, 8\)"):
        kernels.get("conv_transpose2d_backward", backend)(np.ones((2, 3, 7, 8), f32), np.ones((2, 4, 6, 6), f32),
                                                         np.ones((4, 3, 3, 3), f32))


@pytest.mark.parametrize("backend", ["reference"] + backends("conv_transpose2d_forward"))
@pytest.mark.parametrize("make,message", [
    (lambda: (np.ones((1, 3, 5, 5), f32), np.ones((1, 2, 3, 3), f32), {}),
     "conv_transpose2d: input has 3 channels but weight expects 1"),
    (lambda: (np.ones((1, 2, 5, 5), f32), np.ones((2, 2, 3, 3), f32), dict(stride=2, output_padding=2)),
     r"conv_transpose2d: output_padding .* must be smaller than either stride .* or dilation"),
    (lambda: (np.ones((1, 3, 5, 5), f32), np.ones((3, 2, 3, 3), f32), dict(groups=2)),
     r"conv_transpose2d: groups=2 must divide the input channels \(3\)"),
    (lambda: (np.ones((1, 1, 2, 2), f32), np.ones((1, 1, 3, 3), f32), dict(padding=3)),
     r"conv_transpose2d: output size would be non-positive: -2x-2"),
])
def test_conv_transpose2d_bad_input(backend, make, message):
    x, w, kw = make()
    with pytest.raises(ValueError, match="^" + message):
        kernels.get("conv_transpose2d_forward", backend)(x, w, **kw)


@pytest.mark.parametrize("backend", ["reference"] + backends("conv_transpose2d_forward"))
def test_conv_transpose2d_takes_no_padding_strings(backend):
    with pytest.raises(TypeError, match=r"^conv_transpose2d: padding must be an int or a pair of ints, got 'same'"):
        kernels.get("conv_transpose2d_forward", backend)(np.ones((1, 1, 3, 3), f32), np.ones((1, 1, 3, 3), f32),
                                                         padding="same")


# ---------------------------------------------------------------------------------------
# Threads and memory
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("x_shape,w_shape,kw",
                         [CONV_CASES[26], CONV_CASES[28], CONV_CASES[25], CONV_CASES[33], CONV_CASES[35]])
def test_results_do_not_depend_on_thread_count(x_shape, w_shape, kw, threads, rng):
    x, w, b = conv_operands(rng, x_shape, w_shape, np.float32)
    g = rand(rng, reference.conv2d_forward(x, w, **kw).shape, np.float32)
    runs = []
    for n in (1, 2, 3):
        threads(n)
        runs.append((kernels.get("conv2d_forward")(x, w, b, **kw),) + kernels.get("conv2d_backward")(g, x, w, **kw))
    N, OHW = x_shape[0], g.shape[2] * g.shape[3]
    for other in runs[1:]:
        for name, a, r, terms in zip(["out", "grad_input", "grad_weight", "grad_bias"], other, runs[0],
                                     [np.prod(w_shape[1:]), np.prod(w_shape) / w_shape[1], N * OHW, N * OHW]):
            assert_close(a, r.astype(np.float64), np.float32, what=name, **tolerance(np.float32, terms))
        # The bias gradient is summed in a fixed order: bitwise the same for any thread count.
        assert np.array_equal(other[3], runs[0][3])


# Winograd (3x3 stride 1, 128+ channels): each of the 16 products is one thread's and the
# chunks of images are summed in order, so every result is bitwise the same for any thread
# count (three chunks of one image: tile_kb=1).
@pytest.mark.parametrize("tile_kb", [0, 1])
def test_winograd_results_are_bitwise_the_same_for_any_thread_count(tile_kb, threads, conv_path, rng):
    x_shape, w_shape, kw = CONV_CASES[42].values
    conv_path(dict(tile_kb=tile_kb))
    x, w, b = conv_operands(rng, x_shape, w_shape, np.float32)
    g = rand(rng, reference.conv2d_forward(x, w, **kw).shape, np.float32)
    runs = []
    for n in (1, 2, 3):
        threads(n)
        runs.append((kernels.get("conv2d_forward", "cpu")(x, w, b, **kw),)
                    + kernels.get("conv2d_backward", "cpu")(g, x, w, **kw))
    for other in runs[1:]:
        for name, a, r in zip(["out", "grad_input", "grad_weight", "grad_bias"], other, runs[0]):
            assert np.array_equal(a, r), name


# The unpacked implicit GEMM (float32, AVX-512): threads take whole images, or with fewer
# images than threads share each image's pixel blocks (25M multiply-adds an image: 3 threads
# share one image, 3 and 2 threads share each of 4 and 3 images, 3 and 2 threads take 3 and 4).
@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("images", [1, 3, 4])
def test_unpacked_forward_splits_images_or_their_pixels(images, n_threads, threads, conv_path, rng):
    threads(n_threads)
    conv_path(dict(unpacked=1))
    check_conv("cpu", np.float32, (images, 16, 64, 63), (44, 16, 3, 3), dict(padding=1), rng)


PEAK_MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from pydl import kernels
    N, which = int(sys.argv[1]), sys.argv[2]
    x = np.ones((N, 64, 56, 56), np.float32)
    w = np.full((64, 64, 3, 3), 0.01, np.float32)
    conv, back = kernels.get("conv2d_forward"), kernels.get("conv2d_backward")
    small = x[:2].copy()
    conv(small, w, padding=1), back(conv(small, w, padding=1), small, w, padding=1)  # thread pools, buffers
    g = np.ones((N, 64, 56, 56), np.float32) if which == "backward" else None
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = conv(x, w, padding=1) if which == "forward" else back(g, x, w, padding=1)[0]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(after - before, result.nbytes)
""")


@pytest.mark.parametrize("which", ["forward", "backward"])
def test_peak_memory_of_a_resnet_batch_stays_near_its_output(which, tmp_path):
    # A batch of 256 ResNet-shaped images (64x56x56, 3x3, pad 1): the columns of the whole
    # batch would be 9x the input (1.8 GB); one tile per thread must keep the growth of the
    # peak RSS (measured in a fresh process: C++ allocations included) under 1.5x the output.
    proc = subprocess.run([sys.executable, "-c", PEAK_MEMORY_SCRIPT, "256", which], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)  # outside the checkout: import the installed pydl
    assert proc.returncode == 0, proc.stderr
    growth, out_bytes = map(int, proc.stdout.split())
    assert out_bytes == 256 * 64 * 56 * 56 * 4
    assert growth <= 1.5 * out_bytes, f"peak RSS grew by {growth / 2**20:.0f} MiB for a {out_bytes / 2**20:.0f} MiB output"
