"""Up-sampling kernels (nearest, bilinear, pixel shuffle): every backend against the NumPy
reference, the reference against numeric gradients and PyTorch's index rules."""
import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference


def rand(rng, shape, dtype, xp=np):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def numeric_grad(f, x, g, h=1e-6):
    """dL/dx of L = sum(g * f(x)) by central differences (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(g * f(x))
        x[i] = old - h
        minus = np.sum(g * f(x))
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


# (H, W) -> (OH, OW): up, down, mixed, identity, doubling, size 1, odd sizes
RESIZES = [((3, 5), (7, 11)), ((4, 4), (8, 8)), ((5, 7), (3, 4)), ((1, 1), (3, 2)), ((6, 6), (6, 13)),
           ((7, 33), (33, 7)), ((2, 3), (1, 1)), ((33, 1), (66, 7))]


@pytest.mark.parametrize("backend", backends("upsample_nearest2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("size,out_size", RESIZES)
def test_nearest_matches_reference(backend, dtype, size, out_size, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3) + size, dtype, xp)
    out = kernels.get("upsample_nearest2d_forward", backend)(x, out_size)
    assert_close(out, reference.upsample_nearest2d_forward(to_numpy(x), out_size), dtype)
    g = rand(rng, (2, 3) + out_size, dtype, xp)
    got = kernels.get("upsample_nearest2d_backward", backend)(g, x.shape)
    assert_close(got, reference.upsample_nearest2d_backward(to_numpy(g), x.shape), dtype)


@pytest.mark.parametrize("backend", backends("upsample_bilinear2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("size,out_size", RESIZES)
@pytest.mark.parametrize("align_corners", [True, False])
def test_bilinear_matches_reference(backend, dtype, size, out_size, align_corners, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3) + size, dtype, xp)
    out = kernels.get("upsample_bilinear2d_forward", backend)(x, out_size, align_corners)
    assert_close(out, reference.upsample_bilinear2d_forward(to_numpy(x), out_size, align_corners), dtype)
    g = rand(rng, (2, 3) + out_size, dtype, xp)
    got = kernels.get("upsample_bilinear2d_backward", backend)(g, x.shape, align_corners)
    assert_close(got, reference.upsample_bilinear2d_backward(to_numpy(g), x.shape, align_corners), dtype)


@pytest.mark.parametrize("backend", backends("upsample_nearest2d_forward"))
@pytest.mark.parametrize("scale", [1.7, 2.3, 0.6, 3.0, 0.5])
def test_explicit_scale_factors(backend, scale, rng):
    # F.interpolate(x, scale_factor=s) sizes the output floor(L * s) but indexes with 1 / s.
    xp = xp_for(backend)
    x = rand(rng, (1, 2, 5, 7), np.float32)
    out_size = (int(np.floor(5 * scale)), int(np.floor(7 * scale)))
    scales = (scale, scale)
    got = kernels.get("upsample_nearest2d_forward", backend)(xp.asarray(x), out_size, scales)
    assert_close(got, reference.upsample_nearest2d_forward(x, out_size, scales), np.float32)
    g = rand(rng, (1, 2) + out_size, np.float32)
    assert_close(kernels.get("upsample_nearest2d_backward", backend)(xp.asarray(g), x.shape, scales),
                 reference.upsample_nearest2d_backward(g, x.shape, scales), np.float32)
    got = kernels.get("upsample_bilinear2d_forward", backend)(xp.asarray(x), out_size, False, scales)
    assert_close(got, reference.upsample_bilinear2d_forward(x, out_size, False, scales), np.float32)
    assert_close(kernels.get("upsample_bilinear2d_backward", backend)(xp.asarray(g), x.shape, False, scales),
                 reference.upsample_bilinear2d_backward(g, x.shape, False, scales), np.float32)


def test_nearest_index_rule_is_pytorchs():
    # PyTorch: F.interpolate(arange(5).view(1,1,1,5), size=(1,8)) -> [0,0,1,1,2,3,3,4], and
    # with scale_factor=1.7 (size 8, index scale 1/1.7) -> [0,0,1,1,2,2,3,4].
    x = np.arange(5.0).reshape(1, 1, 1, 5)
    np.testing.assert_array_equal(reference.upsample_nearest2d_forward(x, (1, 8))[0, 0, 0], [0, 0, 1, 1, 2, 3, 3, 4])
    np.testing.assert_array_equal(reference.upsample_nearest2d_forward(x, (1, 8), (1.0, 1.7))[0, 0, 0],
                                  [0, 0, 1, 1, 2, 2, 3, 4])


def test_bilinear_align_corners_formulas():
    x = np.array([[[[0.0, 1.0, 2.0]]]])
    # align_corners: the end pixels' centres coincide -> exact linear ramp.
    np.testing.assert_allclose(reference.upsample_bilinear2d_forward(x, (1, 5), True)[0, 0, 0], [0, 0.5, 1, 1.5, 2])
    # half-pixel centres, clamped at 0 on the left and at the last pixel on the right.
    np.testing.assert_allclose(reference.upsample_bilinear2d_forward(x, (1, 6), False)[0, 0, 0],
                               [0, 0.25, 0.75, 1.25, 1.75, 2])


@pytest.mark.parametrize("backend", backends("pixel_shuffle_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape,r", [((2, 12, 3, 5), 2), ((1, 9, 1, 1), 3), ((12, 2, 3), 2), ((2, 3, 4, 4, 7), 1)])
def test_pixel_shuffle_matches_reference(backend, dtype, shape, r, rng):
    xp = xp_for(backend)
    x = rand(rng, shape, dtype, xp)
    y = kernels.get("pixel_shuffle_forward", backend)(x, r)
    assert_close(y, reference.pixel_shuffle_forward(to_numpy(x), r), dtype)
    assert_close(kernels.get("pixel_shuffle_backward", backend)(y, r), to_numpy(x), dtype)
    z = kernels.get("pixel_unshuffle_forward", backend)(y, r)
    assert_close(z, reference.pixel_unshuffle_forward(to_numpy(y), r), dtype)
    assert_close(z, to_numpy(x), dtype)
    assert_close(kernels.get("pixel_unshuffle_backward", backend)(z, r), to_numpy(y), dtype)


@pytest.mark.parametrize("backend", backends("upsample_nearest2d_forward"))
def test_empty_batch_and_strided_input(backend, rng):
    f = kernels.get("upsample_bilinear2d_forward", backend)
    xp = xp_for(backend)
    assert f(xp.zeros((0, 3, 4, 4), np.float32), (8, 8), False).shape == (0, 3, 8, 8)
    assert kernels.get("upsample_nearest2d_backward", backend)(xp.zeros((0, 3, 8, 8)), (0, 3, 4, 4)).shape == \
        (0, 3, 4, 4)
    view = rand(rng, (4, 3, 10, 12), np.float64, xp)[::2, :, ::-1, ::3]
    assert_close(f(view, (7, 9), True), reference.upsample_bilinear2d_forward(to_numpy(view), (7, 9), True),
                 np.float64)


@pytest.mark.parametrize("backend", ["cpu"])  # CPU threads
def test_results_do_not_depend_on_the_thread_count(backend, threads, rng):
    # outputs of 4.2M values: past the 2 x 2M-element grain at which a second thread helps
    x = rand(rng, (4, 64, 65, 63), np.float32)
    g = rand(rng, (4, 64, 128, 129), np.float32)
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append((kernels.get("upsample_bilinear2d_forward", backend)(x, (128, 129), False),
                        kernels.get("upsample_bilinear2d_backward", backend)(g, x.shape, False),
                        kernels.get("upsample_nearest2d_backward", backend)(g, x.shape)))
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


def test_reference_backward_is_the_numeric_gradient(rng):
    x = rng.standard_normal((1, 2, 3, 4))
    for out_size in [(5, 7), (2, 3)]:
        g = rng.standard_normal((1, 2) + out_size)
        num = numeric_grad(lambda z: reference.upsample_nearest2d_forward(z, out_size), x, g)
        np.testing.assert_allclose(reference.upsample_nearest2d_backward(g, x.shape), num, atol=1e-6)
        for ac in (True, False):
            num = numeric_grad(lambda z: reference.upsample_bilinear2d_forward(z, out_size, ac), x, g)
            np.testing.assert_allclose(reference.upsample_bilinear2d_backward(g, x.shape, ac), num, atol=1e-6)
    x = rng.standard_normal((1, 8, 2, 3))
    g = rng.standard_normal((1, 2, 4, 6))
    num = numeric_grad(lambda z: reference.pixel_shuffle_forward(z, 2), x, g)
    np.testing.assert_allclose(reference.pixel_shuffle_backward(g, 2), num, atol=1e-6)


@pytest.mark.parametrize("backend", backends("upsample_nearest2d_forward", fast_only=False))
def test_bad_input(backend):
    xp = xp_for(backend)
    x = xp.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"upsample_nearest2d: input and output sizes must be positive.*H: 0"):
        kernels.get("upsample_nearest2d_forward", backend)(x, (0, 2))
    with pytest.raises(ValueError, match="upsample_bilinear2d: input must have 4 dimensions"):
        kernels.get("upsample_bilinear2d_forward", backend)(x[0], (2, 2), False)
    with pytest.raises(ValueError, match="upsample_bilinear2d: output_size must be a pair"):
        kernels.get("upsample_bilinear2d_forward", backend)(x, 5, False)
    with pytest.raises(ValueError, match="pixel_shuffle: the input's 3 channels must be divisible by "
                                         "upscale_factor\\*\\*2 = 4"):
        kernels.get("pixel_shuffle_forward", backend)(xp.zeros((1, 3, 2, 2)), 2)
    with pytest.raises(ValueError, match="pixel_unshuffle: the input's height 3 and width 3 must be divisible"):
        kernels.get("pixel_unshuffle_forward", backend)(x, 2)


@pytest.mark.parametrize("name", ['pydl.kernels.reference.upsample'])
def test_reference_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run doctest for details)"
