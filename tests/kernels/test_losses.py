"""cross_entropy (fused) and the multiclass SVM hinge loss, forward and backward: every
backend against the float64 NumPy reference, the reference against hand-computed values
and numeric gradients, PyTorch's edge semantics, bad input."""
import itertools
import math

import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

SIZES = (1, 2, 7, 129, 1000)
# (N, C): tall, wide, square; (3, 3000): rows past 1024 classes (the CUDA kernels' block-per-row path)
SHAPES = list(itertools.product(SIZES, SIZES)) + [(3, 3000)]
REDUCTIONS = ["mean", "sum", "none"]


def logits_for(rng, N, C, dtype, scale=3.0):
    return (scale * rng.standard_normal((N, C))).astype(dtype)


def grad_loss_for(rng, reduction, N):
    return rng.standard_normal(N) if reduction == "none" else 0.7


def cross_entropy(backend, logits, target, weight=None, grad_loss=1.0, **kw):
    """(loss, grad_logits) of one backend."""
    xp = xp_for(backend)
    w = None if weight is None else xp.asarray(weight)
    loss, cache = kernels.get("cross_entropy_forward", backend)(xp.asarray(logits), xp.asarray(target), w, **kw)
    if isinstance(grad_loss, np.ndarray):
        grad_loss = xp.asarray(grad_loss.astype(logits.dtype))
    return loss, kernels.get("cross_entropy_backward", backend)(grad_loss, cache)


def svm(backend, scores, target, grad_loss=1.0, **kw):
    xp = xp_for(backend)
    loss, cache = kernels.get("svm_loss_forward", backend)(xp.asarray(scores), xp.asarray(target), **kw)
    if isinstance(grad_loss, np.ndarray):
        grad_loss = xp.asarray(grad_loss.astype(scores.dtype))
    return loss, kernels.get("svm_loss_backward", backend)(grad_loss, cache)


def check_cross_entropy(backend, logits, target, weight, dtype, grad_loss=1.0, **kw):
    loss, grad = cross_entropy(backend, logits, target, weight, grad_loss, **kw)
    ref_loss, ref_grad = cross_entropy("reference", logits, target, weight, grad_loss, **kw)
    assert_close(loss, ref_loss, dtype, what=f"loss {kw}")
    assert_close(grad, ref_grad, dtype, what=f"grad {kw}")


# ---------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("N,C", SHAPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_reference(backend, dtype, N, C, label_smoothing, weighted, rng):
    z = logits_for(rng, N, C, dtype)
    t = rng.integers(0, C, N)
    w = rng.uniform(0.2, 2.0, C).astype(dtype) if weighted else None
    for reduction in REDUCTIONS:
        check_cross_entropy(backend, z, t, w, dtype, grad_loss_for(rng, reduction, N),
                            label_smoothing=label_smoothing, reduction=reduction)


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_ignore_index(backend, dtype, reduction, label_smoothing, weighted, rng):
    N, C = 37, 11
    z = logits_for(rng, N, C, dtype)
    w = rng.uniform(0.2, 2.0, C).astype(dtype) if weighted else None
    kw = dict(label_smoothing=label_smoothing, reduction=reduction)
    t = rng.integers(0, C, N)
    t[::3] = -100  # the default ignore_index
    check_cross_entropy(backend, z, t, w, dtype, grad_loss_for(rng, reduction, N), **kw)
    # ignore_index may name a real class: its rows count for nothing.
    t = rng.integers(0, C, N)
    check_cross_entropy(backend, z, t, w, dtype, grad_loss_for(rng, reduction, N), ignore_index=3, **kw)
    # The rows that count are unaffected by what the ignored rows hold (even NaN).
    t[::2] = 3
    z2 = z.copy()
    z2[::2] = np.nan
    g = grad_loss_for(rng, reduction, N)
    loss, grad = cross_entropy(backend, z2, t, w, g, ignore_index=3, **kw)
    ref_loss, ref_grad = cross_entropy("reference", z, t, w, g, ignore_index=3, **kw)
    assert_close(loss, ref_loss, dtype)
    assert_close(grad, ref_grad, dtype)
    assert (to_numpy(grad)[::2] == 0).all()


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_all_ignored_and_empty_batch(backend, dtype, label_smoothing, rng):
    # PyTorch: mean over no targets is NaN (0 / 0), sum is 0, none is zeros; gradient 0.
    for N in (0, 5):
        z = logits_for(rng, N, 4, dtype)
        t = np.full(N, -100, dtype=np.int64)
        for reduction in REDUCTIONS:
            loss, grad = cross_entropy(backend, z, t, None, np.ones(N) if reduction == "none" else 1.0,
                                       label_smoothing=label_smoothing, reduction=reduction)
            loss, grad = to_numpy(loss), to_numpy(grad)
            assert loss.dtype == dtype and grad.dtype == dtype and grad.shape == (N, 4)
            assert (grad == 0).all()
            if reduction == "mean":
                assert loss.shape == () and np.isnan(loss)
            elif reduction == "sum":
                assert loss.shape == () and loss == 0
            else:
                assert loss.shape == (N,) and (loss == 0).all()


def test_cross_entropy_hand_computed():
    # Lecture 3's cat image: scores (cat, car, frog) = (3.2, 5.1, -1.7), right class cat.
    expected = -math.log(math.exp(3.2) / (math.exp(3.2) + math.exp(5.1) + math.exp(-1.7)))  # 2.0404
    # Uniform logits over 3 classes, target 1, weights (1, 2, 3), smoothing 0.3: the target
    # distribution is q = 0.1 * w + 0.7 * w_1 * onehot(1) = (0.1, 1.6, 0.3), p = 1/3, so
    # the row loss is sum(q) log 3 = 2 log 3 and the mean divides by w_1 = 2: log 3.
    # Gradient: (sum(q) p - q) / 2 = (2/3 - q) / 2.
    q = np.array([0.1, 1.6, 0.3])
    for backend in ["reference", "cpu"]:
        for dtype in FLOAT_DTYPES:
            loss, grad = cross_entropy(backend, np.array([[3.2, 5.1, -1.7]], dtype), np.array([0]))
            assert abs(float(loss) - expected) < 1e-5
            p = np.exp([3.2, 5.1, -1.7]) / np.exp([3.2, 5.1, -1.7]).sum()
            assert np.allclose(to_numpy(grad), p - [1, 0, 0], atol=1e-6)
            loss, grad = cross_entropy(backend, np.zeros((1, 3), dtype), np.array([1]), np.array([1.0, 2.0, 3.0], dtype),
                                       label_smoothing=0.3)
            assert abs(float(loss) - math.log(3)) < 1e-6
            assert np.allclose(to_numpy(grad), (2 / 3 - q) / 2, atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_reference_backward_is_the_numeric_gradient(reduction, weighted, rng):
    N, C = 4, 5
    z = rng.standard_normal((N, C))
    t = np.array([1, -100, 4, 0])
    w = rng.uniform(0.5, 2.0, C) if weighted else None
    G = rng.standard_normal(N) if reduction == "none" else np.array(1.3)

    def objective(zz):  # sum(G * loss)
        loss, _ = reference.cross_entropy_forward(zz, t, w, label_smoothing=0.2, reduction=reduction)
        return float(np.sum(G * loss))

    h = 1e-6
    num = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        d = np.zeros_like(z)
        d[idx] = h
        num[idx] = (objective(z + d) - objective(z - d)) / (2 * h)
    _, cache = reference.cross_entropy_forward(z, t, w, label_smoothing=0.2, reduction=reduction)
    assert_close(reference.cross_entropy_backward(G, cache), num, np.float64, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("label_smoothing,weighted", [(0.0, False), (0.1, False), (0.0, True), (0.1, True)])
def test_cross_entropy_every_isa_path(path, dtype, label_smoothing, weighted, isa, rng):
    isa(path)
    for N, C in [(9, 1), (13, 7), (33, 129), (5, 1000)]:
        z = logits_for(rng, N, C, dtype)
        t = rng.integers(0, C, N)
        t[0] = -100
        w = rng.uniform(0.2, 2.0, C).astype(dtype) if weighted else None
        for reduction in REDUCTIONS:
            check_cross_entropy("cpu", z, t, w, dtype, grad_loss_for(rng, reduction, N),
                                label_smoothing=label_smoothing, reduction=reduction)


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_logits_of_magnitude_1e4(backend, dtype, label_smoothing, rng):
    z = np.stack([
        np.full(9, 1e4), np.full(9, -1e4),
        np.r_[1e4, 1e4 - 1.0, np.full(7, -1e4)],
        np.r_[-1e4, -1e4 + 2.0, np.full(7, -1e4 - 50.0)],
        rng.uniform(-1e4, 1e4, 9),
    ]).astype(dtype)
    t = np.array([0, 3, 1, 8, 4])
    for reduction in REDUCTIONS:
        loss, grad = cross_entropy(backend, z, t, None, grad_loss_for(rng, reduction, 5),
                                   label_smoothing=label_smoothing, reduction=reduction)
        assert np.isfinite(to_numpy(loss)).all() and np.isfinite(to_numpy(grad)).all()
    check_cross_entropy(backend, z, t, None, dtype, label_smoothing=label_smoothing)
    check_cross_entropy(backend, z, t, None, dtype, np.ones(5), label_smoothing=label_smoothing, reduction="none")


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
def test_cross_entropy_nan_and_inf(backend):
    z = np.array([[1.0, np.nan, 0.0], [1.0, np.inf, 0.0], [1.0, -np.inf, 0.0], [0.5, 0.2, 0.1]], np.float32)
    loss, grad = cross_entropy(backend, z, np.array([0, 0, 0, 2]), reduction="none", grad_loss=np.ones(4))
    loss, grad = to_numpy(loss), to_numpy(grad)
    assert np.isnan(loss[:2]).all() and np.isnan(grad[:2]).all()
    assert np.isfinite(loss[2:]).all() and grad[2, 1] == 0.0 and np.isfinite(grad[2:]).all()
    mean, _ = cross_entropy(backend, z, np.array([0, 0, 0, 2]))
    assert np.isnan(to_numpy(mean))


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_backward_twice_through_one_cache(backend, reduction, rng):
    # The first backward hands the stored gradient over (the caller may modify it); a
    # second one (retain_graph) recomputes it.
    xp = xp_for(backend)
    z = logits_for(rng, 6, 5, np.float32)
    t = rng.integers(0, 5, 6)
    fwd, bwd = kernels.get("cross_entropy_forward", backend), kernels.get("cross_entropy_backward", backend)
    _, cache = fwd(xp.asarray(z), xp.asarray(t), label_smoothing=0.1, reduction=reduction)
    _, ref_cache = reference.cross_entropy_forward(z, t, label_smoothing=0.1, reduction=reduction)
    g1 = np.ones(6, np.float32) if reduction == "none" else 1.0
    g2 = rng.standard_normal(6).astype(np.float32) if reduction == "none" else np.float32(-2.5)
    first = bwd(xp.asarray(g1) if reduction == "none" else g1, cache)
    expected_first = reference.cross_entropy_backward(g1, ref_cache)
    assert_close(first, expected_first, np.float32)
    first[...] = 123.0
    assert_close(bwd(xp.asarray(g2) if reduction == "none" else g2, cache),
                 reference.cross_entropy_backward(g2, ref_cache), np.float32)
    assert_close(bwd(xp.asarray(g1) if reduction == "none" else g1, cache), expected_first, np.float32)


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
@pytest.mark.parametrize("target_dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
                                          np.uint64])
def test_cross_entropy_any_integer_target_dtype(backend, target_dtype, rng):
    z = logits_for(rng, 8, 6, np.float32)
    t = rng.integers(0, 6, 8)
    expected = cross_entropy("reference", z, t)
    got = cross_entropy(backend, z, t.astype(target_dtype), ignore_index=200 if target_dtype == np.uint8 else -100)
    assert_close(got[0], expected[0], np.float32)
    assert_close(got[1], expected[1], np.float32)


@pytest.mark.parametrize("backend", backends("cross_entropy_forward"))
def test_cross_entropy_strided_and_negative_stride_inputs(backend, rng):
    big = logits_for(rng, 30, 40, np.float32)
    ts = rng.integers(0, 20, 60)
    w = rng.uniform(0.5, 2, 40).astype(np.float32)
    for z, t, ww in [(big[:, ::2], ts[::2], w[::2]), (big[::-1, ::-2], ts[::-2], w[::-2]),
                     (big.T[:20, :15], ts[5:25] % 15, w[:15]), (big[::3], ts[:10], w)]:
        for reduction in REDUCTIONS:
            check_cross_entropy(backend, z, t, ww, np.float32, grad_loss_for(rng, reduction, z.shape[0]),
                                label_smoothing=0.1, reduction=reduction)


def test_cross_entropy_results_do_not_depend_on_thread_count(threads, rng):
    # One thread per row, the batch sum in row order: bitwise the same.
    z = logits_for(rng, 513, 301, np.float32)
    t = rng.integers(0, 301, 513)
    out = {}
    for n in (1, 2, 3):
        threads(n)
        out[n] = [cross_entropy("cpu", z, t, None, np.ones(513) if r == "none" else 1.0, label_smoothing=0.1, reduction=r)
                  for r in REDUCTIONS]
    for n in (2, 3):
        for (l1, g1), (ln, gn) in zip(out[1], out[n]):
            assert np.array_equal(l1, ln) and np.array_equal(g1, gn)


CE_BAD_INPUT = [
    (lambda: (np.ones((4, 5), np.int32), np.zeros(4, np.int64)), {}, TypeError,
     "cross_entropy: logits must be float32 or float64, got int32"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(5, np.int64)), {}, ValueError,
     "cross_entropy: target must have shape (N,) = (4,), got (5,)"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros((4, 1), np.int64)), {}, ValueError,
     "cross_entropy: target must have shape (N,) = (4,), got (4, 1)"),
    (lambda: (np.ones((4, 5), np.float32), np.array([0, 1, 7, 2])), {}, ValueError,
     "cross_entropy: target index 7 out of range for 5 classes (at target[2])"),
    (lambda: (np.ones((4, 5), np.float32), np.array([0, -1, 2, 2])), {}, ValueError,
     "cross_entropy: target index -1 out of range for 5 classes (at target[1])"),
    (lambda: (np.ones((4, 5), np.float32), np.array([0, -100, 2, 2])), dict(ignore_index=-1), ValueError,
     "cross_entropy: target index -100 out of range for 5 classes"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.float32)), {}, TypeError,
     "cross_entropy: target must hold integer class indices, got float32"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, bool)), {}, TypeError,
     "cross_entropy: target must hold integer class indices, got bool"),
    (lambda: (np.ones(5, np.float32), np.zeros(1, np.int64)), {}, ValueError,
     "cross_entropy: logits must have 2 dimensions (N, C), got shape (5,)"),
    (lambda: (np.ones((2, 3, 4), np.float32), np.zeros(2, np.int64)), {}, ValueError,
     "cross_entropy: logits must have 2 dimensions (N, C), got shape (2, 3, 4)"),
    (lambda: (np.ones((4, 0), np.float32), np.zeros(4, np.int64)), {}, ValueError,
     "cross_entropy: logits must have at least one class, got shape (4, 0)"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.int64), np.ones(4, np.float32)), {}, ValueError,
     "cross_entropy: weight must have shape (C,) = (5,), got (4,)"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.int64), np.ones(5, np.int64)), {}, TypeError,
     "cross_entropy: weight must be float32 or float64, got int64"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.int64)), dict(reduction="avg"), ValueError,
     "cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.int64)), dict(label_smoothing=1.5), ValueError,
     "cross_entropy: label_smoothing must be between 0.0 and 1.0, got 1.5"),
    (lambda: ([[1.0, 2.0]], np.zeros(1, np.int64)), {}, TypeError, "cross_entropy: logits must be a numpy.ndarray"),
    (lambda: (np.ones((1, 2), np.float32), [0]), {}, TypeError, "cross_entropy: target must be a numpy.ndarray"),
]


def pattern(message):
    return "^" + message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")


@pytest.mark.parametrize("make,kw,exc,message", CE_BAD_INPUT)
def test_cross_entropy_bad_input_raises_clear_errors(make, kw, exc, message):
    with pytest.raises(exc, match=pattern(message)):
        kernels.get("cross_entropy_forward")(*make(), **kw)


def test_cross_entropy_backward_bad_input():
    z, t = np.ones((4, 5), np.float32), np.zeros(4, np.int64)
    fwd, bwd = kernels.get("cross_entropy_forward"), kernels.get("cross_entropy_backward")
    _, cache = fwd(z, t)
    with pytest.raises(ValueError, match=pattern("cross_entropy_backward: grad_loss must be a scalar (0-d) for "
                                                 "reduction='mean', got shape (4,)")):
        bwd(np.ones(4, np.float32), cache)
    with pytest.raises(TypeError, match="^cross_entropy_backward: grad_loss must be a number or a 0-d array"):
        bwd("1.0", cache)
    _, cache = fwd(z, t, reduction="none")
    with pytest.raises(ValueError, match=pattern("cross_entropy_backward: grad_loss must have shape (N,) = (4,) "
                                                 "for reduction='none', got (3,)")):
        bwd(np.ones(3, np.float32), cache)
    with pytest.raises(TypeError, match="^cross_entropy_backward: grad_loss must be float32 or float64, got int64"):
        bwd(np.ones(4, np.int64), cache)
    assert bwd(np.ones(4, np.float64), cache).shape == (4, 5)  # the failed calls left the cache intact
    with pytest.raises(TypeError, match="^cross_entropy_backward: cache must be the cache returned by "
                                        "cross_entropy_forward, got <class 'dict'>"):
        bwd(1.0, {})
    _, svm_cache = kernels.get("svm_loss_forward")(z, t)
    with pytest.raises(TypeError, match="^cross_entropy_backward: cache must come from cross_entropy_forward, got one "
                                        "from svm_loss_forward"):
        bwd(1.0, svm_cache)


# ---------------------------------------------------------------------------------
# svm_loss
# ---------------------------------------------------------------------------------

def check_svm(backend, scores, target, dtype, grad_loss=1.0, **kw):
    loss, grad = svm(backend, scores, target, grad_loss, **kw)
    ref_loss, ref_grad = svm("reference", scores, target, grad_loss, **kw)
    assert_close(loss, ref_loss, dtype, what=f"loss {kw}")
    assert_close(grad, ref_grad, dtype, what=f"grad {kw}")


@pytest.mark.parametrize("backend", backends("svm_loss_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("N,C", SHAPES + [(0, 5)])
@pytest.mark.parametrize("margin", [1.0, 0.5])
def test_svm_loss_matches_reference(backend, dtype, N, C, margin, rng):
    s = logits_for(rng, N, C, dtype, scale=1.0)
    t = rng.integers(0, C, N)
    for reduction in REDUCTIONS:
        check_svm(backend, s, t, dtype, grad_loss_for(rng, reduction, N), margin=margin, reduction=reduction)


def test_svm_loss_hand_computed():
    # Lecture 3: three images (cat, car, frog), one row of class scores each.
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    t = np.array([0, 1, 2])
    for backend in ["reference", "cpu"]:
        for dtype in FLOAT_DTYPES:
            loss, grad = svm(backend, scores.astype(dtype), t, np.ones(3), reduction="none")
            assert np.allclose(to_numpy(loss), [2.9, 0.0, 12.9], atol=1e-5)
            # cat row: car's margin 2.9 is on, frog's -3.9 off; frog row: both on.
            assert np.array_equal(to_numpy(grad), [[-1, 1, 0], [0, 0, 0], [1, 1, -2]])
            mean, _ = svm(backend, scores.astype(dtype), t)
            assert abs(float(mean) - (2.9 + 0.0 + 12.9) / 3) < 1e-5  # 5.27


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_svm_reference_backward_is_the_numeric_gradient(reduction, rng):
    N, C = 4, 6
    s = rng.standard_normal((N, C))
    t = np.array([1, 5, 0, 2])
    G = rng.standard_normal(N) if reduction == "none" else np.array(0.8)

    def objective(ss):
        loss, _ = reference.svm_loss_forward(ss, t, margin=0.5, reduction=reduction)
        return float(np.sum(G * loss))

    h = 1e-6
    num = np.zeros_like(s)
    for idx in np.ndindex(s.shape):
        d = np.zeros_like(s)
        d[idx] = h
        num[idx] = (objective(s + d) - objective(s - d)) / (2 * h)
    _, cache = reference.svm_loss_forward(s, t, margin=0.5, reduction=reduction)
    assert_close(reference.svm_loss_backward(G, cache), num, np.float64, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_svm_loss_every_isa_path(path, dtype, isa, rng):
    isa(path)
    for N, C in [(9, 1), (13, 7), (33, 129), (5, 1000)]:
        s = logits_for(rng, N, C, dtype, scale=1.0)
        t = rng.integers(0, C, N)
        for reduction in REDUCTIONS:
            check_svm("cpu", s, t, dtype, grad_loss_for(rng, reduction, N), reduction=reduction)


@pytest.mark.parametrize("backend", backends("svm_loss_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_svm_loss_large_scores_nan_and_empty(backend, dtype, rng):
    s = rng.uniform(-1e4, 1e4, (6, 9)).astype(dtype)
    t = rng.integers(0, 9, 6)
    check_svm(backend, s, t, dtype, reduction="none", grad_loss=np.ones(6))
    s[2, 4] = np.nan
    loss, _ = svm(backend, s, t, np.ones(6), reduction="none")
    loss = to_numpy(loss)
    assert np.isnan(loss[2]) and np.isfinite(np.delete(loss, 2)).all()  # NaN score or NaN target score
    for reduction, check in [("mean", np.isnan), ("sum", lambda v: v == 0), ("none", lambda v: v.shape == (0,))]:
        loss, grad = svm(backend, np.zeros((0, 3), dtype), np.zeros(0, np.int64),
                         np.zeros(0) if reduction == "none" else 1.0, reduction=reduction)
        assert check(to_numpy(loss)) and to_numpy(grad).shape == (0, 3)


@pytest.mark.parametrize("backend", backends("svm_loss_forward"))
def test_svm_loss_strided_inputs_and_integer_targets(backend, rng):
    big = logits_for(rng, 30, 40, np.float32, scale=1.0)
    ts = rng.integers(0, 20, 60)
    for s, t in [(big[:, ::2], ts[::2].astype(np.int32)), (big[::-1, ::-2], ts[::-2].astype(np.uint8)),
                 (big.T[:20, :15], (ts[5:25] % 15).astype(np.int16))]:
        for reduction in REDUCTIONS:
            check_svm(backend, s, t, np.float32, grad_loss_for(rng, reduction, s.shape[0]), reduction=reduction)


def test_svm_loss_results_do_not_depend_on_thread_count(threads, rng):
    s = logits_for(rng, 513, 301, np.float32, scale=1.0)
    t = rng.integers(0, 301, 513)
    out = {}
    for n in (1, 2, 3):
        threads(n)
        out[n] = [svm("cpu", s, t, 1.0, reduction=r) for r in ("mean", "sum")]
    for n in (2, 3):
        for (l1, g1), (ln, gn) in zip(out[1], out[n]):
            assert np.array_equal(l1, ln) and np.array_equal(g1, gn)


def test_svm_loss_backward_twice_through_one_cache(rng):
    s = logits_for(rng, 5, 4, np.float64, scale=1.0)
    t = rng.integers(0, 4, 5)
    _, cache = kernels.get("svm_loss_forward")(s, t)
    _, ref_cache = reference.svm_loss_forward(s, t)
    first = kernels.get("svm_loss_backward")(2.0, cache)
    assert_close(first, reference.svm_loss_backward(2.0, ref_cache), np.float64)
    first[...] = 0
    assert_close(kernels.get("svm_loss_backward")(1.0, cache), reference.svm_loss_backward(1.0, ref_cache), np.float64)


SVM_BAD_INPUT = [
    (lambda: (np.ones((4, 5), np.int64), np.zeros(4, np.int64)), {}, TypeError,
     "svm_loss: scores must be float32 or float64, got int64"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(3, np.int64)), {}, ValueError,
     "svm_loss: target must have shape (N,) = (4,), got (3,)"),
    (lambda: (np.ones((4, 5), np.float32), np.array([0, 5, 1, 1])), {}, ValueError,
     "svm_loss: target index 5 out of range for 5 classes (at target[1])"),
    (lambda: (np.ones((4, 5), np.float32), np.array([0, -100, 1, 1])), {}, ValueError,
     "svm_loss: target index -100 out of range for 5 classes"),
    (lambda: (np.ones((4,), np.float32), np.zeros(4, np.int64)), {}, ValueError,
     "svm_loss: scores must have 2 dimensions (N, C), got shape (4,)"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.float64)), {}, TypeError,
     "svm_loss: target must hold integer class indices, got float64"),
    (lambda: (np.ones((4, 5), np.float32), np.zeros(4, np.int64)), dict(reduction="max"), ValueError,
     "svm_loss: reduction must be 'mean', 'sum' or 'none', got 'max'"),
]


@pytest.mark.parametrize("make,kw,exc,message", SVM_BAD_INPUT)
def test_svm_loss_bad_input_raises_clear_errors(make, kw, exc, message):
    with pytest.raises(exc, match=pattern(message)):
        kernels.get("svm_loss_forward")(*make(), **kw)


def test_registry_lists_the_losses():
    for op in ["cross_entropy_forward", "cross_entropy_backward", "svm_loss_forward", "svm_loss_backward"]:
        assert kernels.available(op)[:2] == ["reference", "cpu"]


def test_cpu_functions_take_the_reference_argument_names():
    # The C++ bindings cannot be inspected; call them with every argument by the name
    # the reference uses, and check keyword-only arguments are keyword-only in both.
    import inspect

    z, t = np.ones((3, 4), np.float32), np.array([0, 1, 2])
    values = dict(x=z, y=z, grad_y=z, logits=z, scores=z, target=t, weight=None, ignore_index=-100,
                  label_smoothing=0.0, reduction="mean", margin=1.0, grad_loss=1.0)
    for op in ["softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
               "cross_entropy_forward", "cross_entropy_backward", "svm_loss_forward", "svm_loss_backward"]:
        params = inspect.signature(getattr(reference, op)).parameters
        if "cache" in params:
            forward = op.replace("backward", "forward")
            values["cache"] = kernels.get(forward)(z, t)[1]
        kernels.get(op)(**{name: values[name] for name in params})
        keyword_only = [p for p in params.values() if p.kind is p.KEYWORD_ONLY]
        if keyword_only:
            positional = [values[p.name] for p in params.values()]
            for backend in ["reference", "cpu"]:
                with pytest.raises(TypeError):
                    kernels.get(op, backend)(*positional)
