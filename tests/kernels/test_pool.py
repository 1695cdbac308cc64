"""Pooling kernels: every backend against the NumPy reference, the reference against
numeric gradients, and PyTorch's edge rules (ceil_mode, padding, dilation, ties, NaN)."""
import itertools

import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
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


# (H, W, kernel_size, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (7, 7, 2, None, 0, 1, False),
    (7, 7, 2, None, 0, 1, True),
    (8, 8, 2, 2, 0, 1, False),      # the canonical 2x2 stride 2 (fast path)
    (33, 7, 2, 2, 0, 1, False),     # fast path, odd width
    (7, 33, 3, 2, 1, 1, False),     # padding with stride > 1
    (7, 33, 3, 2, 1, 1, True),
    (9, 9, 3, 1, 1, 2, False),      # dilation
    (9, 9, (3, 2), (2, 1), (1, 0), (2, 3), True),
    (1, 1, 1, 1, 0, 1, False),
    (1, 7, (1, 3), (1, 2), (0, 1), 1, True),
    (5, 5, 5, 3, 2, 1, True),
    (33, 33, 4, 3, 2, 1, True),
]


@pytest.mark.parametrize("backend", backends("max_pool2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("H,W,k,s,p,d,ceil", MAX_CASES)
def test_max_pool2d_matches_reference(backend, dtype, H, W, k, s, p, d, ceil, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3, H, W), dtype, xp)
    out, idx = kernels.get("max_pool2d_forward", backend)(x, k, s, p, d, ceil)
    ref_out, ref_idx = reference.max_pool2d_forward(to_numpy(x), k, s, p, d, ceil)
    assert_close(out, ref_out, dtype, what="out")
    assert to_numpy(idx).dtype == np.int64
    np.testing.assert_array_equal(to_numpy(idx), ref_idx)
    g = rand(rng, ref_out.shape, dtype, xp)
    got = kernels.get("max_pool2d_backward", backend)(g, idx, x.shape)
    assert_close(got, reference.max_pool2d_backward(to_numpy(g), ref_idx, x.shape), dtype, what="grad_input")


@pytest.mark.parametrize("backend", backends("max_pool2d_forward", fast_only=False))
def test_max_pool2d_ties_take_the_first_and_nan_propagates(backend):
    xp = xp_for(backend)
    # Window 0: all equal -> the first; window 1: NaN, 3, NaN -> the last NaN (PyTorch's
    # `v > best || isnan(v)`); window 2: all -inf -> the first index.
    x = np.array([[[[1.0, 1.0, np.nan, 5.0, -np.inf, -np.inf],
                    [1.0, 1.0, 3.0, np.nan, -np.inf, -np.inf]]]], dtype=np.float32)
    out, idx = kernels.get("max_pool2d_forward", backend)(xp.asarray(x), 2)
    out, idx = to_numpy(out), to_numpy(idx)
    assert out[0, 0, 0, 0] == 1.0 and idx[0, 0, 0, 0] == 0
    assert np.isnan(out[0, 0, 0, 1]) and idx[0, 0, 0, 1] == 9
    assert out[0, 0, 0, 2] == -np.inf and idx[0, 0, 0, 2] == 4
    # Same rules through the general path (dilated, padded windows).
    ones = xp.ones((1, 1, 3, 5), dtype=np.float64)
    _, idx = kernels.get("max_pool2d_forward", backend)(ones, (2, 2), 2, 0, (1, 2))
    np.testing.assert_array_equal(to_numpy(idx)[0, 0], [[0, 2]])
    _, idx = kernels.get("max_pool2d_forward", backend)(ones, 3, 2, 1)
    np.testing.assert_array_equal(to_numpy(idx)[0, 0], [[0, 1, 3], [5, 6, 8]])
    _, idx = kernels.get("max_pool2d_forward", backend)(xp.asarray(x), (2, 2), 2, 0, (1, 2))
    assert np.isnan(x[0, 0, 0, 2]) and to_numpy(idx)[0, 0, 0, 0] == 2  # the NaN at column 2


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("W,k,s,p,d,ceil", [(70, 2, 2, 0, 1, False), (71, 2, 2, 0, 1, True), (40, 3, 2, 1, 1, False),
                                            (40, 3, 1, 1, 1, False), (53, 3, 1, 1, 2, True), (40, (2, 3), (1, 2),
                                            (1, 1), (1, 3), False), (33, 3, 3, 1, 1, False), (17, 2, 1, 0, 1, False),
                                            (9, 2, 2, 0, 1, False), (20, 2, 2, 0, 1, True), (11, 2, 1, 0, 1, False),
                                            (14, 3, 2, 1, 1, False)])
def test_every_isa_path_matches_reference(path, dtype, W, k, s, p, d, ceil, isa, rng):
    # Rows wide enough for the vector chunks (16, 8 or 4 floats; 8, 4 or 2 doubles) and
    # their shifted last chunk, with ties (values rounded to a few levels), NaN and -inf.
    isa(path)
    x = np.round(rng.standard_normal((2, 3, 9, W)) * 1.5).astype(dtype)
    x[0, 0, 1, 5::7] = np.nan
    x[1, 2, :, 3::5] = -np.inf
    out, idx = kernels.get("max_pool2d_forward")(x, k, s, p, d, ceil)
    ref_out, ref_idx = reference.max_pool2d_forward(x, k, s, p, d, ceil)
    assert_close(out, ref_out, dtype)
    np.testing.assert_array_equal(idx, ref_idx)


@pytest.mark.parametrize("backend", backends("max_pool2d_forward"))
def test_max_pool2d_unbatched_empty_batch_and_strided_input(backend, rng):
    xp = xp_for(backend)
    fwd, bwd = kernels.get("max_pool2d_forward", backend), kernels.get("max_pool2d_backward", backend)
    x = rand(rng, (3, 7, 9), np.float32, xp)  # (C, H, W)
    out, idx = fwd(x, 3, 2, 1)
    ref_out, ref_idx = reference.max_pool2d_forward(to_numpy(x), 3, 2, 1)
    assert_close(out, ref_out, np.float32)
    np.testing.assert_array_equal(to_numpy(idx), ref_idx)
    out, idx = fwd(xp.zeros((0, 3, 8, 8), dtype=np.float32), 2)
    assert out.shape == (0, 3, 4, 4) and idx.shape == (0, 3, 4, 4)
    assert bwd(out, idx, (0, 3, 8, 8)).shape == (0, 3, 8, 8)
    base = rand(rng, (4, 3, 16, 18), np.float64, xp)
    view = base[::2, :, ::-2, 1::2]  # strided, negative-stride
    out, idx = fwd(view, 2)
    ref_out, ref_idx = reference.max_pool2d_forward(to_numpy(view), 2)
    assert_close(out, ref_out, np.float64)
    np.testing.assert_array_equal(to_numpy(idx), ref_idx)


@pytest.mark.parametrize("backend", backends("max_unpool2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_max_unpool2d_matches_reference(backend, dtype, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3, 9, 7), dtype, xp)
    out, idx = kernels.get("max_pool2d_forward", backend)(x, 3, 2, 1)
    up = kernels.get("max_unpool2d_forward", backend)(out, idx, (9, 7))
    assert_close(up, reference.max_unpool2d_forward(to_numpy(out), to_numpy(idx), (9, 7)), dtype)
    g = rand(rng, (2, 3, 9, 7), dtype, xp)
    got = kernels.get("max_unpool2d_backward", backend)(g, idx)
    assert_close(got, reference.max_unpool2d_backward(to_numpy(g), to_numpy(idx)), dtype)


# (H, W, kernel_size, stride, padding, ceil_mode)
AVG_CASES = [
    (7, 7, 2, None, 0, False),
    (7, 7, 3, 2, 1, True),
    (8, 33, (3, 2), (2, 3), (1, 1), True),
    (1, 1, 1, 1, 0, False),
    (5, 5, 5, 3, 2, True),
    (33, 7, 4, 3, 2, True),
]


@pytest.mark.parametrize("backend", backends("avg_pool2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("H,W,k,s,p,ceil", AVG_CASES)
@pytest.mark.parametrize("count_include_pad,divisor_override", [(True, None), (False, None), (True, 3), (False, -2)])
def test_avg_pool2d_matches_reference(backend, dtype, H, W, k, s, p, ceil, count_include_pad, divisor_override, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3, H, W), dtype, xp)
    args = (k, s, p, ceil, count_include_pad, divisor_override)
    out = kernels.get("avg_pool2d_forward", backend)(x, *args)
    ref = reference.avg_pool2d_forward(to_numpy(x), *args)
    assert_close(out, ref, dtype)
    g = rand(rng, ref.shape, dtype, xp)
    got = kernels.get("avg_pool2d_backward", backend)(g, x.shape, *args)
    assert_close(got, reference.avg_pool2d_backward(to_numpy(g), x.shape, *args), dtype)


ADAPTIVE_SIZES = [(1, 1), (3, 4), (7, 9), (5, None), (10, 13), 2, (0, 3)]


@pytest.mark.parametrize("backend", backends("adaptive_avg_pool2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("output_size", ADAPTIVE_SIZES)
def test_adaptive_pools_match_reference(backend, dtype, output_size, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3, 7, 9), dtype, xp)
    out = kernels.get("adaptive_avg_pool2d_forward", backend)(x, output_size)
    ref = reference.adaptive_avg_pool2d_forward(to_numpy(x), output_size)
    assert_close(out, ref, dtype)
    g = rand(rng, ref.shape, dtype, xp)
    got = kernels.get("adaptive_avg_pool2d_backward", backend)(g, x.shape)
    assert_close(got, reference.adaptive_avg_pool2d_backward(to_numpy(g), x.shape), dtype)
    out, idx = kernels.get("adaptive_max_pool2d_forward", backend)(x, output_size)
    ref_out, ref_idx = reference.adaptive_max_pool2d_forward(to_numpy(x), output_size)
    assert_close(out, ref_out, dtype)
    np.testing.assert_array_equal(to_numpy(idx), ref_idx)
    got = kernels.get("adaptive_max_pool2d_backward", backend)(g, idx, x.shape)
    assert_close(got, reference.adaptive_max_pool2d_backward(to_numpy(g), ref_idx, x.shape), dtype)


# (H, W, kernel_size, output_size, output_ratio)
FRACTIONAL_CASES = [
    (7, 7, 2, (4, 5), None),
    (16, 13, 3, (8, 6), None),
    (10, 10, 2, (9, 9), None),      # overlapping windows
    (33, 20, (2, 3), (5, 17), None),
    (32, 32, 2, None, 0.5),
    (17, 9, 3, None, (0.6, 0.7)),
    (5, 5, 5, 1, None),
]


@pytest.mark.parametrize("backend", backends("fractional_max_pool2d_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("H,W,k,output_size,output_ratio", FRACTIONAL_CASES)
def test_fractional_max_pool2d_matches_reference(backend, dtype, H, W, k, output_size, output_ratio, rng):
    xp = xp_for(backend)
    x = rand(rng, (2, 3, H, W), dtype, xp)
    # The samples carry the input's dtype (PyTorch computes the window starts in it).
    u = xp.asarray(rng.random((2, 3, 2)).astype(dtype))
    out, idx = kernels.get("fractional_max_pool2d_forward", backend)(x, k, output_size, output_ratio, u)
    ref_out, ref_idx = reference.fractional_max_pool2d_forward(to_numpy(x), k, output_size, output_ratio, to_numpy(u))
    assert_close(out, ref_out, dtype)
    np.testing.assert_array_equal(to_numpy(idx), ref_idx)
    g = rand(rng, ref_out.shape, dtype, xp)
    got = kernels.get("fractional_max_pool2d_backward", backend)(g, idx, x.shape)
    assert_close(got, reference.fractional_max_pool2d_backward(to_numpy(g), ref_idx, x.shape), dtype)


def test_fractional_window_starts_are_pytorchs():
    # PyTorch 2.x, torch.nn.functional.fractional_max_pool2d(arange(49).view(1,1,7,7), 2,
    # output_size=4, _random_samples=[[[0.3, 0.7]]], return_indices=True)[1]; hand-checked
    # against generate_intervals: alpha = (7 - 2) / 3, columns start at int((i + 0.3) alpha)
    # - int(0.3 alpha) = 0, 2, 3, 5 and rows (u = 0.7) at 0, 1, 3, 5.
    x = np.arange(49.0).reshape(1, 1, 7, 7)
    out, idx = reference.fractional_max_pool2d_forward(x, 2, output_size=4, samples=np.array([[[0.3, 0.7]]]))
    rows, cols = [0, 1, 3, 5], [0, 2, 3, 5]
    expected = np.array([[(r + 1) * 7 + c + 1 for c in cols] for r in rows])
    np.testing.assert_array_equal(idx[0, 0], expected)


@pytest.mark.parametrize("backend", ["cpu"])  # CPU threads (the GPU's atomics may reorder sums)
def test_results_do_not_depend_on_the_thread_count(backend, threads, rng):
    # 4.7M values: past the 2 x 2M-element grain at which the kernels use a second thread
    x = rand(rng, (16, 16, 131, 141), np.float32)
    results = []
    for n in (1, 2, 3):
        threads(n)
        out, idx = kernels.get("max_pool2d_forward", backend)(x, 3, 2, 1)
        grad = kernels.get("max_pool2d_backward", backend)(out, idx, x.shape)
        avg = kernels.get("avg_pool2d_forward", backend)(x, 3, 2, 1)
        results.append((out, idx, grad, avg))
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# The reference backward against numeric gradients (float64, tiny shapes)
# ---------------------------------------------------------------------------------------

def test_reference_max_pool_backward_is_the_numeric_gradient(rng):
    x = rng.standard_normal((1, 2, 5, 6))
    for args in [(2,), (3, 2, 1), ((2, 3), 1, 0, (2, 1), True)]:
        out, idx = reference.max_pool2d_forward(x, *args)
        g = rng.standard_normal(out.shape)
        num = numeric_grad(lambda z: reference.max_pool2d_forward(z, *args)[0], x, g)
        np.testing.assert_allclose(reference.max_pool2d_backward(g, idx, x.shape), num, atol=1e-6)


def test_reference_avg_pool_backward_is_the_numeric_gradient(rng):
    x = rng.standard_normal((1, 2, 5, 6))
    for args in [(2,), (3, 2, 1, True, False), ((2, 3), 1, (1, 0), False, True, 5)]:
        g = rng.standard_normal(reference.avg_pool2d_forward(x, *args).shape)
        num = numeric_grad(lambda z: reference.avg_pool2d_forward(z, *args), x, g)
        np.testing.assert_allclose(reference.avg_pool2d_backward(g, x.shape, *args), num, atol=1e-6)


def test_reference_adaptive_and_fractional_backward_are_numeric_gradients(rng):
    x = rng.standard_normal((1, 2, 5, 7))
    g = rng.standard_normal((1, 2, 3, 4))
    num = numeric_grad(lambda z: reference.adaptive_avg_pool2d_forward(z, (3, 4)), x, g)
    np.testing.assert_allclose(reference.adaptive_avg_pool2d_backward(g, x.shape), num, atol=1e-6)
    _, idx = reference.adaptive_max_pool2d_forward(x, (3, 4))
    num = numeric_grad(lambda z: reference.adaptive_max_pool2d_forward(z, (3, 4))[0], x, g)
    np.testing.assert_allclose(reference.adaptive_max_pool2d_backward(g, idx, x.shape), num, atol=1e-6)
    u = rng.random((1, 2, 2))
    _, idx = reference.fractional_max_pool2d_forward(x, 2, (3, 4), samples=u)
    num = numeric_grad(lambda z: reference.fractional_max_pool2d_forward(z, 2, (3, 4), samples=u)[0], x, g)
    np.testing.assert_allclose(reference.fractional_max_pool2d_backward(g, idx, x.shape), num, atol=1e-6)
    up_g = rng.standard_normal((1, 2, 5, 7))
    _, idx = reference.max_pool2d_forward(x, 2)
    y = rng.standard_normal(idx.shape)
    num = numeric_grad(lambda z: reference.max_unpool2d_forward(z, idx, (5, 7)), y, up_g)
    np.testing.assert_allclose(reference.max_unpool2d_backward(up_g, idx), num, atol=1e-6)


# ---------------------------------------------------------------------------------------
# Bad input: clear errors naming the op and the argument, from every backend
# ---------------------------------------------------------------------------------------

BAD_MAX = [
    (dict(shape=(1, 1, 5, 5), kernel_size=7), "output size is too small"),
    (dict(shape=(1, 1, 5, 5), kernel_size=2, padding=2), "pad should be at most half of kernel size"),
    (dict(shape=(1, 1, 5, 5), kernel_size=0), "kernel_size must be positive"),
    (dict(shape=(1, 1, 5, 5), kernel_size=2, stride=0), "stride must be positive"),
    (dict(shape=(1, 1, 5, 5), kernel_size=2, dilation=0), "dilation must be positive"),
    (dict(shape=(1, 1, 5, 5), kernel_size=2, padding=-1), "padding must be non-negative"),
    (dict(shape=(5, 5), kernel_size=2), "must have 3 or 4 dimensions"),
    (dict(shape=(1, 0, 5, 5), kernel_size=2), "non-zero C, H and W"),
    (dict(shape=(1, 1, 5, 5), kernel_size=(1, 2, 3)), "kernel_size must be an int or a pair"),
]


@pytest.mark.parametrize("backend", backends("max_pool2d_forward", fast_only=False))
@pytest.mark.parametrize("case,message", BAD_MAX)
def test_max_pool2d_bad_input(backend, case, message):
    case = dict(case)
    x = xp_for(backend).zeros(case.pop("shape"), dtype=np.float32)
    with pytest.raises((ValueError, TypeError), match=message) as err:
        kernels.get("max_pool2d_forward", backend)(x, **case)
    assert "max_pool2d" in str(err.value)


@pytest.mark.parametrize("backend", backends("avg_pool2d_forward", fast_only=False))
def test_avg_pool2d_bad_input(backend):
    f = kernels.get("avg_pool2d_forward", backend)
    xp = xp_for(backend)
    x = xp.zeros((1, 1, 5, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="avg_pool2d: divisor_override must not be zero"):
        f(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match="avg_pool2d: pad should be at most half"):
        f(x, 3, padding=2)
    with pytest.raises(ValueError, match="avg_pool2d: output size is too small"):
        f(xp.zeros((1, 1, 3, 3), np.float32), 5)


@pytest.mark.parametrize("backend", backends("max_pool2d_backward", fast_only=False))
def test_bad_indices_raise(backend):
    xp = xp_for(backend)
    g = xp.ones((1, 1, 2, 2), dtype=np.float32)
    idx = xp.array([[[[0, 1], [2, 100]]]], dtype=np.int64)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: indices must lie in \[0, 16\)"):
        kernels.get("max_pool2d_backward", backend)(g, idx, (1, 1, 4, 4))
    with pytest.raises(ValueError, match="max_unpool2d: found an invalid max index 100"):
        kernels.get("max_unpool2d_forward", backend)(g, idx, (4, 4))
    with pytest.raises(ValueError, match="indices must have the shape of grad_out"):
        kernels.get("max_pool2d_backward", backend)(g, idx[..., :1], (1, 1, 4, 4))


@pytest.mark.parametrize("backend", backends("fractional_max_pool2d_forward", fast_only=False))
def test_fractional_bad_input(backend):
    f = kernels.get("fractional_max_pool2d_forward", backend)
    xp = xp_for(backend)
    x = xp.zeros((2, 3, 5, 5), dtype=np.float32)
    u = xp.zeros((2, 3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="kernel height 3 too large"):
        f(x, 3, output_size=4, samples=u)
    with pytest.raises(ValueError, match="exactly one of output_size and output_ratio"):
        f(x, 2, samples=u)
    with pytest.raises(ValueError, match="samples must have shape"):
        f(x, 2, output_size=3, samples=u[:1])
    with pytest.raises(ValueError, match="samples .* are required"):
        f(x, 2, output_size=3)


@pytest.mark.parametrize("backend", backends("max_pool2d_forward"))
def test_cpu_rejects_foreign_types(backend):
    xp = xp_for(backend)
    with pytest.raises(TypeError, match="max_pool2d: input must be float32 or float64, got int64"):
        kernels.get("max_pool2d_forward", backend)(xp.zeros((1, 1, 4, 4), dtype=np.int64), 2)
    with pytest.raises(TypeError, match=f"max_pool2d: input must be a {xp.__name__}.ndarray"):
        kernels.get("max_pool2d_forward", backend)([[[[1.0]]]], 1)
    with pytest.raises(TypeError, match="indices must be an integer array"):
        kernels.get("max_pool2d_backward", backend)(xp.ones((1, 1, 1, 1), np.float32),
                                                    xp.zeros((1, 1, 1, 1), np.float32), (1, 1, 2, 2))


@pytest.mark.parametrize("backend", backends("max_pool2d_forward"))
@pytest.mark.parametrize("k,s,p,d,ceil", list(itertools.product([2, 3], [1, 2], [0, 1], [1, 2], [False, True])))
def test_max_pool2d_option_sweep(backend, k, s, p, d, ceil, rng):
    x = rand(rng, (1, 2, 11, 10), np.float64, xp_for(backend))
    try:
        ref_out, ref_idx = reference.max_pool2d_forward(to_numpy(x), k, s, p, d, ceil)
    except ValueError:
        with pytest.raises(ValueError):
            kernels.get("max_pool2d_forward", backend)(x, k, s, p, d, ceil)
        return
    out, idx = kernels.get("max_pool2d_forward", backend)(x, k, s, p, d, ceil)
    assert_close(out, ref_out, np.float64)
    np.testing.assert_array_equal(to_numpy(idx), ref_idx)


@pytest.mark.parametrize("name", ['pydl.kernels.reference.pool', 'pydl.kernels.reference._pool_rules'])
def test_reference_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run doctest for details)"
