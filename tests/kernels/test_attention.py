"""Scaled dot-product attention, forward and backward: every backend and ISA path against
the float64 NumPy reference, the reference against numeric gradients, masks, the causal
rule, fully masked rows, large logits, threads, O(N) memory and bad input."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pydl
from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

# (B, H, L, S, D, Dv): lengths 1, 7, 33, 129, 256 (none a multiple of the 64-wide tiles
# but 256), L != S both ways, D in (1, 16, 64), Dv != D.
SHAPES = [(1, 1, 1, 1, 1, 1), (2, 3, 7, 7, 16, 16), (1, 2, 33, 129, 64, 64), (2, 1, 129, 33, 16, 7),
          (1, 1, 256, 256, 64, 64), (1, 2, 7, 256, 1, 5), (1, 1, 256, 7, 64, 1), (1, 1, 129, 129, 64, 33)]


def rand(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def qkvg(rng, shape, dtype, scale=1.0):
    B, H, L, S, D, Dv = shape
    return (rand(rng, (B, H, L, D), dtype, scale), rand(rng, (B, H, S, D), dtype, scale),
            rand(rng, (B, H, S, Dv), dtype), rand(rng, (B, H, L, Dv), dtype))


def tolerance(dtype, S):
    # Sums over S keys and D features of unit-normal terms: rounding grows like sqrt(S).
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-4, atol=1e-5 * max(1.0, np.sqrt(S)))
    return dict(rtol=1e-9, atol=1e-11 * max(1.0, np.sqrt(S)))


def check_against_reference(backend, dtype, q, k, v, g, mask=None, is_causal=False, scale=None, tol=None):
    xp = xp_for(backend)
    fwd, bwd = kernels.get("attention_forward", backend), kernels.get("attention_backward", backend)
    m = None if mask is None else xp.asarray(mask)
    out, lse = fwd(xp.asarray(q), xp.asarray(k), xp.asarray(v), m, is_causal, scale)
    ref_out, ref_lse = reference.attention_forward(q, k, v, mask, is_causal, scale)
    tol = tol or tolerance(dtype, k.shape[-2])
    assert_close(out, ref_out, dtype, what="out", **tol)
    assert_close(lse, ref_lse, dtype, what="lse", **tol)
    grads = bwd(xp.asarray(g), xp.asarray(q), xp.asarray(k), xp.asarray(v), out, lse, m, is_causal, scale)
    ref_grads = reference.attention_backward(g, q, k, v, ref_out, ref_lse, mask, is_causal, scale)
    for name, got, ref in zip(("grad_q", "grad_k", "grad_v"), grads, ref_grads):
        assert_close(got, ref, dtype, what=name, **tol)
    return to_numpy(out), to_numpy(lse), [to_numpy(x) for x in grads]


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("is_causal", [False, True])
def test_matches_reference(backend, dtype, shape, is_causal, rng):
    check_against_reference(backend, dtype, *qkvg(rng, shape, dtype), is_causal=is_causal)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(2, 2, 33, 129, 64, 16), (1, 3, 129, 7, 16, 64), (1, 1, 7, 7, 1, 1)], ids=str)
@pytest.mark.parametrize("is_causal", [False, True])
def test_every_isa_path_matches_reference(path, dtype, shape, is_causal, isa, rng):
    isa(path)
    q, k, v, g = qkvg(rng, shape, dtype)
    mask = rng.random(shape[2:4]) > 0.2
    check_against_reference("cpu", dtype, q, k, v, g, mask=mask, is_causal=is_causal)


# Mask shapes for scores of shape (2, 3, 33, 70): every way of broadcasting.
MASK_SHAPES = [(33, 70), (70,), (2, 1, 33, 70), (1, 3, 1, 70), (2, 3, 33, 70), (2, 1, 1, 1), (33, 1), (3, 33, 70)]


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("mask_shape", MASK_SHAPES, ids=str)
@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("is_causal", [False, True])
def test_masks_broadcast(backend, dtype, mask_shape, kind, is_causal, rng):
    q, k, v, g = qkvg(rng, (2, 3, 33, 70, 16, 24), dtype)
    if kind == "bool":
        mask = rng.random(mask_shape) > 0.3
        mask[..., 0] = True  # no fully masked rows here (tested below)
    else:
        mask = rand(rng, mask_shape, dtype, scale=2.0)
    check_against_reference(backend, dtype, q, k, v, g, mask=mask, is_causal=is_causal)


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_additive_mask_of_another_dtype_and_custom_scale(backend, dtype, rng):
    q, k, v, g = qkvg(rng, (1, 2, 9, 11, 8, 8), dtype)
    mask = rng.standard_normal((9, 11))  # float64 mask with float32 inputs too
    check_against_reference(backend, dtype, q, k, v, g, mask=mask, scale=0.3)


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", ["bool", "additive"])
def test_fully_masked_rows_give_zero_output_and_gradient(backend, dtype, kind, rng):
    # PyTorch (2.x, math and flash paths alike) returns 0 for a query that sees no key,
    # and passes it no gradient; lse is -inf there.
    q, k, v, g = qkvg(rng, (2, 2, 70, 130, 16, 16), dtype)
    allowed = rng.random((2, 1, 70, 130)) > 0.5
    allowed[:, :, [0, 33, 69]] = False  # three rows see nothing, in different query tiles
    mask = allowed if kind == "bool" else np.where(allowed, 0.0, -np.inf).astype(dtype)
    out, lse, (gq, gk, gv) = check_against_reference(backend, dtype, q, k, v, g, mask=mask)
    assert np.all(out[:, :, [0, 33, 69]] == 0)
    assert np.all(lse[:, :, [0, 33, 69]] == -np.inf)
    assert np.all(gq[:, :, [0, 33, 69]] == 0)
    assert np.isfinite(gk).all() and np.isfinite(gv).all()


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("L,S", [(7, 33), (33, 7), (130, 65), (65, 130), (1, 5), (5, 1)])
def test_causal_is_upper_left_aligned(backend, dtype, L, S, rng):
    # is_causal masks like torch.ones(L, S).tril(0): query i sees keys 0..i, whatever S is.
    q, k, v, g = qkvg(rng, (1, 2, L, S, 16, 8), dtype)
    out, _, _ = check_against_reference(backend, dtype, q, k, v, g, is_causal=True)
    explicit = np.tril(np.ones((L, S), dtype=bool))
    out2, _, _ = check_against_reference(backend, dtype, q, k, v, g, mask=explicit)
    assert_close(out, out2.astype(np.float64), dtype)


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("is_causal", [False, True])
def test_logits_of_large_magnitude(backend, dtype, is_causal, rng):
    # Scores of order +-1e4: the online softmax rescales without overflow; the softmax is
    # then nearly one-hot, so the comparison is against the reference on the same inputs.
    q, k, v, g = qkvg(rng, (1, 2, 65, 129, 16, 16), dtype)
    q = (q * 100).astype(dtype)
    k = (k * 100).astype(dtype)
    out, lse, grads = check_against_reference(backend, dtype, q, k, v, g, is_causal=is_causal,
                                              tol=dict(rtol=2e-3, atol=2e-3) if dtype == np.float32 else None)
    assert np.isfinite(out).all() and np.isfinite(lse).all() and np.abs(lse).max() > 1e3


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("lead", [(), (5,), (2, 3, 2)], ids=str)
def test_any_leading_dimensions(backend, lead, rng):
    q, k, v, g = (rand(rng, lead + s, np.float32) for s in [(9, 8), (13, 8), (13, 4), (9, 4)])
    out, lse, grads = check_against_reference(backend, np.float32, q, k, v, g, is_causal=True)
    assert out.shape == lead + (9, 4) and lse.shape == lead + (9,)


@pytest.mark.parametrize("backend", backends("attention_forward"))
def test_strided_inputs_are_read_correctly(backend, rng):
    base = rand(rng, (2, 40, 3, 24), np.float32)
    q = base[:, :33].transpose(0, 2, 1, 3)[..., ::2]            # (2, 3, 33, 12), non-contiguous
    k = rand(rng, (2, 3, 12, 50), np.float32).swapaxes(-1, -2)  # (2, 3, 50, 12)
    v = rand(rng, (2, 3, 50, 7), np.float32)[:, :, ::-1]        # negative strides
    g = rand(rng, (2, 3, 33, 7), np.float32)
    mask = (rng.random((70, 33)) > 0.2).T[:, :50]               # (33, 50), strided
    check_against_reference(backend, np.float32, q, k, v, g, mask=mask, is_causal=True)


@pytest.mark.parametrize("backend", backends("attention_forward"))
@pytest.mark.parametrize("shape", [(0, 2, 5, 5, 4, 4), (2, 2, 0, 5, 4, 4), (2, 2, 5, 0, 4, 4), (2, 2, 0, 0, 4, 3)],
                         ids=str)
def test_empty(backend, shape, rng):
    q, k, v, g = qkvg(rng, shape, np.float32)
    out, lse, (gq, gk, gv) = check_against_reference(backend, np.float32, q, k, v, g)
    assert out.shape == shape[:3] + (shape[5],) and lse.shape == shape[:3]
    assert gq.shape == q.shape and gk.shape == k.shape and gv.shape == v.shape


@pytest.mark.parametrize("is_causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_reference_backward_is_the_numeric_gradient(is_causal, masked, rng):
    # L = sum(G * Y); dL/dq, dL/dk, dL/dv by central differences in float64.
    q, k, v, G = (rng.standard_normal(s) for s in [(2, 3, 4), (2, 5, 4), (2, 5, 3), (2, 3, 3)])
    mask = (rng.random((3, 5)) > 0.3) if masked else None
    if masked:
        mask[:, 0] = True
    f = lambda q, k, v: np.sum(G * reference.attention_forward(q, k, v, mask, is_causal)[0])  # noqa: E731
    out, lse = reference.attention_forward(q, k, v, mask, is_causal)
    grads = reference.attention_backward(G, q, k, v, out, lse, mask, is_causal)
    args = [q, k, v]
    h = 1e-6
    for which, got in enumerate(grads):
        num = np.zeros_like(args[which])
        for idx in np.ndindex(num.shape):
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[which][idx] += h
            minus[which][idx] -= h
            num[idx] = (f(*plus) - f(*minus)) / (2 * h)
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8)


def test_reference_matches_softmax_of_scores_and_lse(rng):
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    E = q @ k.T / np.sqrt(3)
    A = np.exp(E) / np.exp(E).sum(axis=1, keepdims=True)
    out, lse = reference.attention_forward(q, k, v)
    np.testing.assert_allclose(out, A @ v, rtol=1e-12)
    np.testing.assert_allclose(lse, np.log(np.exp(E).sum(axis=1)), rtol=1e-12)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(2, 4, 129, 200, 64, 64), (1, 1, 300, 200, 16, 8)], ids=str)
@pytest.mark.parametrize("is_causal", [False, True])
def test_thread_count_does_not_change_results(dtype, shape, is_causal, threads, rng):
    # (1, 1, ...) takes the backward's split-the-key-tiles path when there are 2 threads.
    q, k, v, g = qkvg(rng, shape, dtype)
    fwd, bwd = kernels.get("attention_forward"), kernels.get("attention_backward")
    results = []
    for n in (1, 2, 3):
        threads(n)
        out, lse = fwd(q, k, v, None, is_causal)
        results.append((out, lse) + bwd(g, q, k, v, out, lse, None, is_causal))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_close(a, b.astype(np.float64), dtype, **tolerance(dtype, shape[3]))


MEMORY_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from pydl import kernels
    N, H, D = 4096, 2, 64
    causal = bool(int(sys.argv[1]))
    rng = np.random.default_rng(0)
    q, k, v, g = (rng.standard_normal((1, H, N, D)).astype(np.float32) for _ in range(4))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out, lse = kernels.get("attention_forward")(q, k, v, None, causal)
    grads = kernels.get("attention_backward")(g, q, k, v, out, lse, None, causal)
    outputs = out.nbytes + lse.nbytes + sum(x.nbytes for x in grads)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 - outputs)
""")


@pytest.mark.parametrize("is_causal", [False, True])
def test_memory_is_linear_in_sequence_length(is_causal, tmp_path):
    # One N x N float32 score matrix per head at N = 4096 is 64 MiB; beyond its outputs the
    # fused forward + backward needs O(N) per worker thread (about 3 MiB here: Q^T, dY^T,
    # dQ of the head it works on), measured with 2 threads whatever the machine has.
    result = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(int(is_causal))], capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, PYDL_NUM_THREADS="2"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    workspace = int(result.stdout.strip().splitlines()[-1])
    nxn = 4096 * 4096 * 4
    assert workspace < nxn / 8, (f"peak RSS grew by {workspace / 2**20:.1f} MiB beyond the outputs "
                                 f"(one N x N matrix: {nxn / 2**20:.0f} MiB)")


@pytest.mark.parametrize("backend", backends("attention_forward"))
def test_bad_input_is_reported(backend, rng):
    xp = xp_for(backend)
    fwd, bwd = kernels.get("attention_forward", backend), kernels.get("attention_backward", backend)
    q, k, v = (xp.asarray(rand(rng, s, np.float32)) for s in [(2, 5, 8), (2, 7, 8), (2, 7, 3)])
    with pytest.raises(ValueError, match="attention_forward: query must have at least 2 dimensions"):
        fwd(q[0, 0], k, v)
    with pytest.raises(ValueError, match="same leading dimensions"):
        fwd(q, k[:1], v[:1])
    with pytest.raises(ValueError, match="key has 4 features but query has 8"):
        fwd(q, k[..., :4], v)
    with pytest.raises(ValueError, match="value has 6 positions but key has 7"):
        fwd(q, k, v[:, :6])
    with pytest.raises(ValueError, match="at least one feature"):
        fwd(q[..., :0], k[..., :0], v)
    with pytest.raises(ValueError, match=r"attn_mask of shape \(5, 6\) does not broadcast"):
        fwd(q, k, v, xp.ones((5, 6), dtype=bool))
    with pytest.raises(TypeError, match="attn_mask must be boolean or floating point"):
        fwd(q, k, v, xp.ones((5, 7), dtype=np.int32))
    with pytest.raises(TypeError, match="same dtype"):
        fwd(q, k.astype(np.float64), v)
    out, lse = fwd(q, k, v)
    with pytest.raises(ValueError, match=r"grad_out must have shape \(2, 5, 3\)"):
        bwd(out[:, :4], q, k, v, out, lse)
    with pytest.raises(ValueError, match=r"lse must have shape \(2, 5\)"):
        bwd(out, q, k, v, out, lse[:, :4])
    if backend == "cpu":
        with pytest.raises(TypeError, match="query must be a numpy.ndarray"):
            fwd([[1.0]], k, v)
        with pytest.raises(TypeError, match="query must be float32 or float64"):
            fwd(q.astype(np.int64), k, v)


def test_reference_docstring_examples():
    import doctest
    import importlib

    module = importlib.import_module("pydl.kernels.reference.attention")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, f"{result.failed} docstring example(s) failed"
