import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

SHAPES = [(1, 1, 1), (2, 7, 3), (7, 129, 33), (129, 7, 1000), (1000, 2, 129), (2, 1000, 7),
          (33, 65, 300), (300, 257, 513), (0, 5, 3), (4, 0, 3), (4, 5, 0)]


def gemm_tolerance(dtype, K):
    # A sum of K products carries rounding error growing like sqrt(K) times the size of
    # the terms (unit normal here), which atol must absorb where the sum cancels to ~0.
    return dict(atol=(1e-5 if np.dtype(dtype) == np.float32 else 1e-11) * max(1.0, np.sqrt(K)))


def rand(rng, shape, dtype, xp=np):
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("backend", backends("gemm"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_matches_reference(backend, dtype, M, N, K, trans_a, trans_b, rng):
    xp = xp_for(backend)
    a = rand(rng, (K, M) if trans_a else (M, K), dtype, xp)
    b = rand(rng, (N, K) if trans_b else (K, N), dtype, xp)
    got = kernels.get("gemm", backend)(a, b, trans_a=trans_a, trans_b=trans_b)
    ref = reference.gemm(to_numpy(a), to_numpy(b), trans_a=trans_a, trans_b=trans_b)
    assert_close(got, ref, dtype, **gemm_tolerance(dtype, K))


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("M,N,K", [(13, 33, 17), (129, 65, 257), (300, 300, 600)])
# transposed operands are packed by other loops (register transposes on the SIMD paths)
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
def test_every_isa_path_matches_reference(path, dtype, M, N, K, trans_a, trans_b, isa, rng):
    isa(path)
    a = rand(rng, (K, M) if trans_a else (M, K), dtype)
    b = rand(rng, (N, K) if trans_b else (K, N), dtype)
    c = rand(rng, (M, N), dtype)
    got = kernels.get("gemm")(a, b, c, alpha=0.5, beta=-2.0, trans_a=trans_a, trans_b=trans_b)
    want = reference.gemm(a, b, c, alpha=0.5, beta=-2.0, trans_a=trans_a, trans_b=trans_b)
    assert_close(got, want, dtype, **gemm_tolerance(dtype, K))


@pytest.mark.parametrize("backend", backends("gemm"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.5, 1.0), (-1.0, 0.5), (0.0, 3.0)])
def test_alpha_beta_and_broadcast_c(backend, dtype, alpha, beta, rng):
    xp = xp_for(backend)
    a, b = rand(rng, (37, 19), dtype, xp), rand(rng, (19, 41), dtype, xp)
    for c_shape in [(37, 41), (41,), (1, 41), (37, 1)]:
        c = rand(rng, c_shape, dtype, xp)
        got = kernels.get("gemm", backend)(a, b, c, alpha=alpha, beta=beta)
        ref = reference.gemm(to_numpy(a), to_numpy(b), to_numpy(c), alpha=alpha, beta=beta)
        assert_close(got, ref, dtype, **gemm_tolerance(dtype, 19))


@pytest.mark.parametrize("backend", backends("gemm"))
def test_beta_zero_ignores_nan_in_c(backend, rng):
    xp = xp_for(backend)
    a, b = rand(rng, (5, 4), np.float32, xp), rand(rng, (4, 3), np.float32, xp)
    c = xp.full((5, 3), np.nan, dtype=np.float32)
    got = to_numpy(kernels.get("gemm", backend)(a, b, c, beta=0.0))
    assert np.isfinite(got).all()


@pytest.mark.parametrize("backend", backends("gemm"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("batch_a,batch_b", [(5, 5), (1, 4), (4, 1), (None, 3), (3, None), (0, 0)])
def test_batched(backend, dtype, batch_a, batch_b, rng):
    xp = xp_for(backend)
    M, N, K = 9, 17, 33
    a = rand(rng, (M, K) if batch_a is None else (batch_a, M, K), dtype, xp)
    b = rand(rng, (K, N) if batch_b is None else (batch_b, K, N), dtype, xp)
    got = kernels.get("gemm", backend)(a, b)
    assert_close(got, reference.gemm(to_numpy(a), to_numpy(b)), dtype, **gemm_tolerance(dtype, K))


@pytest.mark.parametrize("backend", backends("gemm"))
def test_many_small_products_split_across_threads(backend, rng):
    xp = xp_for(backend)
    a, b = rand(rng, (64, 128, 64), np.float32, xp), rand(rng, (64, 64, 128), np.float32, xp)
    got = kernels.get("gemm", backend)(a, b)
    assert_close(got, reference.gemm(to_numpy(a), to_numpy(b)), np.float32, **gemm_tolerance(np.float32, 64))


@pytest.mark.parametrize("backend", backends("gemm"))
def test_strided_and_negative_stride_views(backend, rng):
    xp = xp_for(backend)
    big = rand(rng, (40, 60), np.float32, xp)
    views = [big[::2, 1::3], big[::-1, ::-2][:20, :20], big.T[5:25, 3:23]]
    for v in views:
        other = rand(rng, (v.shape[1], 11), np.float32, xp)
        got = kernels.get("gemm", backend)(v, other)
        assert_close(got, reference.gemm(to_numpy(v), to_numpy(other)), np.float32,
                     **gemm_tolerance(np.float32, v.shape[1]))
        got_t = kernels.get("gemm", backend)(other, v, trans_a=True, trans_b=True)
        assert_close(got_t, reference.gemm(to_numpy(other), to_numpy(v), trans_a=True, trans_b=True),
                     np.float32, **gemm_tolerance(np.float32, v.shape[1]))


def test_misaligned_view_is_copied_not_misread(rng):
    raw = np.zeros(4 * 6 * 5 + 1, dtype=np.uint8)
    a = np.ndarray((6, 5), dtype=np.float32, buffer=raw.data, offset=1)  # not 4-byte aligned
    a[...] = rng.standard_normal((6, 5))
    b = rand(rng, (5, 3), np.float32)
    assert_close(kernels.get("gemm")(a, b), reference.gemm(a, b), np.float32)


def test_nan_and_inf_propagate(rng):
    a = rand(rng, (4, 4), np.float32)
    a[1, 2] = np.nan
    a[3, 0] = np.inf
    b = np.abs(rand(rng, (4, 4), np.float32)) + 0.5
    got = kernels.get("gemm")(a, b)
    assert np.isnan(got[1]).all() and np.isposinf(got[3]).all()
    assert np.isfinite(got[[0, 2]]).all()


def test_results_do_not_depend_on_thread_count(threads, rng):
    a, b = rand(rng, (300, 700), np.float32), rand(rng, (700, 500), np.float32)
    threads(1)
    one = kernels.get("gemm")(a, b)
    threads(2)
    two = kernels.get("gemm")(a, b)
    assert_close(two, one.astype(np.float64), np.float32, **gemm_tolerance(np.float32, 700))


@pytest.mark.parametrize("backend", backends("gemm"))
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, True)])
@pytest.mark.parametrize("shared", [None, "a", "b"])
def test_backward_matches_reference(backend, trans_a, trans_b, shared, rng):
    xp = xp_for(backend)
    M, N, K, B = 6, 5, 7, 3
    a_shape = (K, M) if trans_a else (M, K)
    b_shape = (N, K) if trans_b else (K, N)
    a = rand(rng, a_shape if shared == "a" else (B,) + a_shape, np.float64, xp)
    b = rand(rng, b_shape if shared == "b" else (B,) + b_shape, np.float64, xp)
    g = rand(rng, (B, M, N), np.float64, xp)
    ga, gb = kernels.get("gemm_backward", backend)(g, a, b, trans_a=trans_a, trans_b=trans_b, alpha=0.5)
    ra, rb = reference.gemm_backward(to_numpy(g), to_numpy(a), to_numpy(b), trans_a=trans_a, trans_b=trans_b,
                                     alpha=0.5)
    assert_close(ga, ra, np.float64, what="grad_a")
    assert_close(gb, rb, np.float64, what="grad_b")


def test_reference_backward_is_the_numeric_gradient(rng):
    # dL/dA of L = sum(G * (A @ B)) by central differences, as lecture 3 checks gradients.
    a, b, g = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal((3, 2))
    ga, gb = reference.gemm_backward(g, a, b)
    h = 1e-6
    num = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        d = np.zeros_like(a)
        d[idx] = h
        num[idx] = (np.sum(g * ((a + d) @ b)) - np.sum(g * ((a - d) @ b))) / (2 * h)
    assert_close(ga, num, np.float64, rtol=1e-6, atol=1e-8)
    assert_close(gb, a.T @ g, np.float64)


BAD_INPUT = [
    (lambda: (np.ones((2, 3), np.int64), np.ones((3, 2), np.int64)), TypeError, "a must be float32 or float64, got int64"),
    (lambda: (np.ones((2, 3), np.float32), np.ones((3, 2), np.float64)), TypeError, "same dtype"),
    (lambda: (np.ones(3, np.float32), np.ones((3, 2), np.float32)), ValueError, "a must have 2 or 3 dimensions, got shape (3,)"),
    (lambda: (np.ones((2, 2, 2, 2), np.float32), np.ones((2, 2), np.float32)), ValueError, "must have 2 or 3 dimensions"),
    (lambda: (np.ones((2, 3), np.float32), np.ones((4, 2), np.float32)), ValueError, "inner dimensions differ"),
    (lambda: (np.ones((2, 2, 3), np.float32), np.ones((3, 3, 2), np.float32)), ValueError, "batch sizes differ"),
    (lambda: ([[1.0]], np.ones((1, 1), np.float32)), TypeError, "a must be a numpy.ndarray"),
]


@pytest.mark.parametrize("make,exc,message", BAD_INPUT)
def test_bad_input_raises_clear_errors(make, exc, message):
    a, b = make()
    with pytest.raises(exc, match="^gemm: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        kernels.get("gemm")(a, b)


def test_c_that_does_not_broadcast_is_rejected():
    a, b = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"c of shape \(3,\) does not broadcast to the output shape \(2, 4\)"):
        kernels.get("gemm")(a, b, np.ones(3, np.float32), beta=1.0)


def test_registry_lists_backends():
    assert kernels.available("gemm")[:2] == ["reference", "cpu"]
    with pytest.raises(ValueError, match="unknown kernel 'nope'"):
        kernels.available("nope")
    with pytest.raises(ValueError, match="unknown kernel backend 'tpu'"):
        kernels.backend("tpu")


# ---------------------------------------------------------------------------------------
# The CUDA gemm's opt-in tensor-core paths (precision="tf32" / "bf16", float32 only).
# Both operands are rounded -- to TF32 (unit roundoff 2**-11) or bfloat16 (2**-8) -- and
# products accumulate in float32, so a length-K sum of unit-normal products errs by about
# sqrt(K) * roundoff. The tolerance allows 8x that (over 6 standard deviations), far
# looser than float32's: the reason these paths are never the default.
# ---------------------------------------------------------------------------------------

CUDA_GEMM = [p for p in backends("gemm") if getattr(p, "values", (p,))[0] == "cuda"]
ROUNDOFF = {"tf32": 2.0**-11, "bf16": 2.0**-8}


def tensor_core_tolerance(precision, K):
    return dict(rtol=4 * ROUNDOFF[precision], atol=8 * ROUNDOFF[precision] * max(1.0, np.sqrt(K)))


@pytest.mark.parametrize("backend", CUDA_GEMM)
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
@pytest.mark.parametrize("M,N,K", [(1, 1, 1), (7, 129, 33), (129, 7, 1000), (33, 65, 300), (300, 257, 513),
                                   (0, 5, 3), (4, 5, 0)])
@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_tensor_core_gemm_matches_reference(backend, precision, M, N, K, trans_a, trans_b, rng):
    xp = xp_for(backend)
    a = rand(rng, (K, M) if trans_a else (M, K), np.float32, xp)
    b = rand(rng, (N, K) if trans_b else (K, N), np.float32, xp)
    got = kernels.get("gemm", backend)(a, b, trans_a=trans_a, trans_b=trans_b, precision=precision)
    ref = reference.gemm(to_numpy(a), to_numpy(b), trans_a=trans_a, trans_b=trans_b)
    assert_close(got, ref, np.float32, **tensor_core_tolerance(precision, K))


@pytest.mark.parametrize("backend", CUDA_GEMM)
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_tensor_core_gemm_batched_strided_alpha_beta(backend, precision, rng):
    xp = xp_for(backend)
    big = rand(rng, (3, 90, 80), np.float32, xp)
    a = big[:, ::2, 1::2]  # (3, 45, 40), strided
    b = rand(rng, (40, 70), np.float32, xp)  # shared by the batch
    c = rand(rng, (70,), np.float32, xp)
    got = kernels.get("gemm", backend)(a, b, c, alpha=-1.5, beta=0.5, precision=precision)
    ref = reference.gemm(to_numpy(a), to_numpy(b), to_numpy(c), alpha=-1.5, beta=0.5)
    assert_close(got, ref, np.float32, **tensor_core_tolerance(precision, 40 * 1.5**2))
    ga, gb = kernels.get("gemm_backward", backend)(xp.ones((3, 45, 70), np.float32), a, b, precision=precision)
    ra, rb = reference.gemm_backward(np.ones((3, 45, 70)), to_numpy(a), to_numpy(b))
    assert_close(ga, ra, np.float32, what="grad_a", **tensor_core_tolerance(precision, 70))
    assert_close(gb, rb, np.float32, what="grad_b", **tensor_core_tolerance(precision, 3 * 45))


@pytest.mark.parametrize("backend", CUDA_GEMM)
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_tensor_core_gemm_rounds_its_operands(backend, precision):
    # 1 + 2**-15 is a float32 but neither a TF32 nor a bf16 number: it rounds to 1.
    xp = xp_for(backend)
    a = xp.full((1, 1), 1 + 2.0**-15, dtype=np.float32)
    b = xp.ones((1, 1), dtype=np.float32)
    assert float(to_numpy(kernels.get("gemm", backend)(a, b))[0, 0]) == 1 + 2.0**-15
    assert float(to_numpy(kernels.get("gemm", backend)(a, b, precision=precision))[0, 0]) == 1.0


@pytest.mark.parametrize("backend", CUDA_GEMM)
def test_tensor_core_gemm_bad_precision(backend):
    xp = xp_for(backend)
    a = xp.ones((2, 2), dtype=np.float64)
    with pytest.raises(TypeError, match="gemm: precision='tf32' takes float32 operands, got float64"):
        kernels.get("gemm", backend)(a, a, precision="tf32")
    with pytest.raises(ValueError, match="gemm: precision must be None, 'tf32' or 'bf16', got 'fp16'"):
        kernels.get("gemm", backend)(a.astype(np.float32), a.astype(np.float32), precision="fp16")
