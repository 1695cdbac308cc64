"""softmax / log_softmax, forward and backward: every backend against the float64
NumPy reference, the reference against numeric gradients, edges and bad input."""
import itertools

import numpy as np
import pytest

import pydl
from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

SIZES = (1, 2, 7, 129, 1000)
# Every rows x cols pair (tall, wide, square), empty batches, zero classes, 1-D and 3-D.
# (3, 3000): rows past 1024 columns (the CUDA kernels' block-per-row path).
SHAPES = list(itertools.product(SIZES, SIZES)) + [(0, 5), (0, 0), (3, 0), (17,), (4, 7, 33), (2, 0, 3), (3, 3000)]
OPS = ["softmax", "log_softmax"]


def rand(rng, shape, dtype, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def run(op, backend, *arrays):
    xp = xp_for(backend)
    return kernels.get(op, backend)(*[xp.asarray(a) for a in arrays])


@pytest.mark.parametrize("backend", backends("softmax_forward"))
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_matches_reference(backend, op, dtype, shape, rng):
    x = rand(rng, shape, dtype)
    got = run(f"{op}_forward", backend, x)
    assert_close(got, getattr(reference, f"{op}_forward")(x), dtype)


@pytest.mark.parametrize("backend", backends("softmax_backward"))
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_backward_matches_reference(backend, op, dtype, shape, rng):
    y = getattr(reference, f"{op}_forward")(rand(rng, shape, np.float64)).astype(dtype)
    g = rand(rng, shape, dtype, scale=1.0)
    got = run(f"{op}_backward", backend, g, y)
    assert_close(got, getattr(reference, f"{op}_backward")(g, y), dtype, what=f"{op}_backward")


@pytest.mark.parametrize("op", OPS)
def test_reference_backward_is_the_numeric_gradient(op, rng):
    # L = sum(G * f(x)); dL/dx by central differences, as lecture 3 checks gradients.
    f = getattr(reference, f"{op}_forward")
    x, G = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    h = 1e-6
    num = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        d = np.zeros_like(x)
        d[idx] = h
        num[idx] = (np.sum(G * f(x + d)) - np.sum(G * f(x - d))) / (2 * h)
    got = getattr(reference, f"{op}_backward")(G, f(x))
    assert_close(got, num, np.float64, rtol=1e-6, atol=1e-8)


def test_hand_computed_values():
    # softmax([0, log 2, log 5]) = [1, 2, 5] / 8; log_softmax = log of that.
    x = np.array([[0.0, np.log(2.0), np.log(5.0)]])
    for backend in ["reference", "cpu"]:
        for dtype in FLOAT_DTYPES:
            xd = x.astype(dtype)
            tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else {}  # log 2, log 5 rounded to float32
            assert_close(np.asarray(kernels.get("softmax_forward", backend)(xd), dtype), [[0.125, 0.25, 0.625]],
                         dtype, **tol)
            assert_close(np.asarray(kernels.get("log_softmax_forward", backend)(xd), dtype),
                         np.log([[0.125, 0.25, 0.625]]), dtype, **tol)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(5, 1), (9, 7), (33, 129), (7, 1000), (2, 70001)], ids=str)
def test_every_isa_path_matches_reference(path, op, dtype, shape, isa, rng):
    isa(path)
    x = rand(rng, shape, dtype)
    assert_close(kernels.get(f"{op}_forward")(x), getattr(reference, f"{op}_forward")(x), dtype)
    y = getattr(reference, f"{op}_forward")(x).astype(dtype)
    g = rand(rng, shape, dtype, scale=1.0)
    assert_close(kernels.get(f"{op}_backward")(g, y), getattr(reference, f"{op}_backward")(g, y), dtype,
                 what=f"{op}_backward")


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_vector_exp_is_accurate_over_its_whole_range(path, dtype, isa):
    # log_softmax_backward with grad_y = [0, 1] and y = [x, .] returns -exp(x) with no
    # other rounding: a window onto the kernels' vectorised exp (simd_math.h).
    isa(path)
    lo, hi = (-105.0, 89.0) if dtype == np.float32 else (-746.0, 710.0)
    x = np.concatenate([np.linspace(lo, hi, 100003), [0.0, -np.inf, np.inf, np.nan]]).astype(dtype)
    y = np.zeros((x.size, 2), dtype)
    y[:, 0] = x
    g = np.zeros_like(y)
    g[:, 1] = 1.0
    got = -kernels.get("log_softmax_backward")(g, y)[:, 0].astype(np.float64)
    with np.errstate(over="ignore"):
        exact = np.exp(x.astype(np.float64))
        rounded = exact.astype(dtype)
    normal = np.isfinite(rounded) & (rounded >= np.finfo(dtype).tiny)
    ulps = np.abs(got[normal] - exact[normal]) / np.spacing(rounded[normal]).astype(np.float64)
    assert ulps.max() <= 2.0, f"exp is off by {ulps.max():.2f} ulp"
    # Underflow to denormals / 0 and overflow to inf, within a denormal step.
    tiny = np.isfinite(x) & ~normal & np.isfinite(rounded)
    assert np.all(np.abs(got[tiny] - exact[tiny]) <= 2 * np.finfo(dtype).smallest_subnormal)
    assert np.all(np.isposinf(got[np.isfinite(x) & np.isinf(rounded)]))
    assert got[-4] == 1.0 and got[-3] == 0.0 and np.isposinf(got[-2]) and np.isnan(got[-1])


@pytest.mark.parametrize("backend", backends("softmax_forward"))
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_logits_of_magnitude_1e4(backend, op, dtype, rng):
    x = np.stack([
        np.full(9, 1e4), np.full(9, -1e4),                     # constant rows: uniform
        np.r_[1e4, 1e4 - 1.0, np.full(7, -1e4)],                # mixed signs
        np.r_[-1e4, -1e4 + 2.0, np.full(7, -1e4 - 50.0)],
        rng.uniform(-1e4, 1e4, 9),
    ]).astype(dtype)
    got = run(f"{op}_forward", backend, x)
    ref = getattr(reference, f"{op}_forward")(x)
    assert np.isfinite(to_numpy(got)).all()
    assert_close(got, ref, dtype)


@pytest.mark.parametrize("backend", backends("softmax_forward"))
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nan_and_inf_propagate_like_pytorch(backend, op, dtype):
    inf, nan = np.inf, np.nan
    x = np.array([
        [1.0, nan, 2.0, 0.0],      # NaN anywhere: the row is NaN
        [1.0, inf, 2.0, 0.0],      # +inf: inf - inf, the row is NaN
        [1.0, -inf, 2.0, 0.0],     # -inf: probability 0 (log: -inf), the rest finite
        [-inf, -inf, -inf, -inf],  # nothing finite: NaN (as PyTorch)
        [1.0, 3.0, 2.0, 0.0],
    ], dtype=dtype)
    got = to_numpy(run(f"{op}_forward", backend, x))
    ref = getattr(reference, f"{op}_forward")(x)
    assert np.isnan(got[[0, 1, 3]]).all()
    assert got[2, 1] == (0.0 if op == "softmax" else -inf)
    with np.errstate(invalid="ignore"):  # inf - inf inside the comparison
        assert_close(got, ref, dtype)


def reversed_view(a):
    """A view with negative strides holding the same values as ``a``."""
    return np.flip(np.flip(a).copy())


@pytest.mark.parametrize("backend", backends("softmax_forward"))
@pytest.mark.parametrize("op", OPS)
def test_strided_negative_stride_and_misaligned_inputs(backend, op, rng):
    big = rand(rng, (40, 90), np.float32)
    raw = np.zeros(4 * 6 * 5 + 1, dtype=np.uint8)
    misaligned = np.ndarray((6, 5), dtype=np.float32, buffer=raw.data, offset=1)
    misaligned[...] = rng.standard_normal((6, 5))
    for x in [big[:, ::2], big[::-1, ::-3], big.T, big[5:25, 7:60], misaligned, big[:, 3]]:
        assert_close(run(f"{op}_forward", backend, x), getattr(reference, f"{op}_forward")(x), np.float32)
        y = getattr(reference, f"{op}_forward")(x).astype(np.float32)
        g = rand(rng, x.shape, np.float32)
        assert_close(run(f"{op}_backward", backend, reversed_view(g), reversed_view(y)),
                     getattr(reference, f"{op}_backward")(g, y), np.float32)


@pytest.mark.parametrize("op", OPS)
def test_results_do_not_depend_on_thread_count(op, threads, rng):
    # Each row is computed start to finish by one thread: bitwise the same.
    x = rand(rng, (301, 517), np.float32)
    g = rand(rng, (301, 517), np.float32)
    out = {}
    for n in (1, 2, 3):
        threads(n)
        y = kernels.get(f"{op}_forward")(x)
        out[n] = (y, kernels.get(f"{op}_backward")(g, y))
    for n in (2, 3):
        assert np.array_equal(out[n][0], out[1][0]) and np.array_equal(out[n][1], out[1][1])


def test_outputs_are_fresh_c_contiguous_arrays(rng):
    x = rand(rng, (4, 6), np.float32)
    y = kernels.get("softmax_forward")(x)
    assert y.flags.c_contiguous and y.flags.owndata and not np.shares_memory(x, y)
    assert y.dtype == np.float32 and y.shape == x.shape


BAD_INPUT = [
    ("softmax_forward", lambda: (np.ones((2, 3), np.int32),), TypeError, "softmax: x must be float32 or float64, got int32"),
    ("softmax_forward", lambda: (np.ones((2, 3), np.float16),), TypeError, "softmax: x must be float32 or float64, got float16"),
    ("softmax_forward", lambda: ([[1.0, 2.0]],), TypeError, "softmax: x must be a numpy.ndarray"),
    ("softmax_forward", lambda: (np.ones((), np.float32),), ValueError,
     "softmax: x must have at least 1 dimension, got a 0-d array"),
    ("log_softmax_forward", lambda: (np.ones((), np.float64),), ValueError, "log_softmax: x must have at least 1 dimension"),
    ("log_softmax_forward", lambda: (np.ones(3, np.complex64),), TypeError, "log_softmax: x must be float32 or float64"),
    ("softmax_backward", lambda: (np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)), ValueError,
     "softmax_backward: grad_y must have the shape of y (2, 4), got (2, 3)"),
    ("softmax_backward", lambda: (np.ones((2, 3), np.float64), np.ones((2, 3), np.float32)), TypeError,
     "softmax_backward: grad_y and y must have the same dtype, got float64 and float32"),
    ("log_softmax_backward", lambda: (np.ones((2, 3), np.int64), np.ones((2, 3), np.float32)), TypeError,
     "log_softmax_backward: grad_y must be float32 or float64, got int64"),
    ("log_softmax_backward", lambda: (np.ones((), np.float32), np.ones((), np.float32)), ValueError,
     "log_softmax_backward: grad_y must have at least 1 dimension"),
]


@pytest.mark.parametrize("op,make,exc,message", BAD_INPUT)
def test_bad_input_raises_clear_errors(op, make, exc, message):
    with pytest.raises(exc, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        kernels.get(op)(*make())


def test_registry_lists_the_family():
    for op in ["softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward"]:
        assert kernels.available(op)[:2] == ["reference", "cpu"]
    assert pydl.kernels.get("softmax_forward", "reference") is reference.softmax_forward


def test_arrays_that_went_through_pickle_are_accepted(rng):
    # Their dtype is equal to, but not the same object as, numpy's float32 (for example
    # arrays sent by DataLoader worker processes).
    import pickle

    x = pickle.loads(pickle.dumps(rand(rng, (3, 4), np.float64)))
    assert x.dtype is not np.dtype(np.float64)
    assert_close(kernels.get("softmax_forward")(x), reference.softmax_forward(x), np.float64)
    y = reference.softmax_forward(x)
    assert_close(kernels.get("softmax_backward")(x, pickle.loads(pickle.dumps(y))), reference.softmax_backward(x, y),
                 np.float64)
