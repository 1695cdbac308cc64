"""Normalisation kernels (batch norm, layer norm, group norm / instance norm): every backend
and every ISA path against the NumPy reference, the reference against numeric gradients,
running statistics, eval vs train, and clear errors."""
import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, isa_paths, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference


def rand(rng, shape, dtype, xp=np, scale=1.0, shift=0.0):
    return xp.asarray((scale * rng.standard_normal(shape) + shift).astype(dtype))


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


def assert_grads(got, ref, dtype, names=("grad_input", "grad_weight", "grad_bias"), **tol):
    for g, r, name in zip(got, ref, names):
        if r is None:
            assert g is None, f"{name}: expected None"
        else:
            assert_close(g, r, dtype, what=name, **tol)


# Input shapes: (N, C) (BatchNorm1d), short planes (column path), planes at and above the
# 32-value threshold, odd sizes, a batch of 1.
BN_SHAPES = [(5, 3), (7, 33), (4, 3, 7), (2, 5, 31), (3, 4, 32), (2, 3, 5, 7), (1, 2, 33, 9), (129, 1), (3, 7, 1, 1)]


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_matches_reference(backend, dtype, shape, affine, rng):
    xp = xp_for(backend)
    C = shape[1]
    x = rand(rng, shape, dtype, xp, scale=2.0, shift=3.0)
    w = rand(rng, (C,), dtype, xp) if affine else None
    b = rand(rng, (C,), dtype, xp) if affine else None
    rm, rv = rand(rng, (C,), dtype, xp), xp.asarray(rng.random(C).astype(dtype) + 0.5)
    ref_rm, ref_rv = to_numpy(rm).astype(np.float64), to_numpy(rv).astype(np.float64)
    out, mean, invstd = kernels.get("batch_norm_forward", backend)(x, rm, rv, w, b, True, 0.3, 1e-3)
    r_out, r_mean, r_invstd = reference.batch_norm_forward(
        to_numpy(x), ref_rm, ref_rv, None if w is None else to_numpy(w), None if b is None else to_numpy(b),
        True, 0.3, 1e-3)
    assert_close(out, r_out, dtype, what="out")
    assert_close(mean, r_mean, dtype, what="save_mean")
    assert_close(invstd, r_invstd, dtype, what="save_invstd")
    assert_close(rm, ref_rm, dtype, what="running_mean")  # updated in place, momentum 0.3
    assert_close(rv, ref_rv, dtype, what="running_var")   # with the unbiased variance
    g = rand(rng, shape, dtype, xp)
    got = kernels.get("batch_norm_backward", backend)(g, x, w, mean, invstd, True)
    ref = reference.batch_norm_backward(to_numpy(g), to_numpy(x), None if w is None else to_numpy(w),
                                        to_numpy(mean), to_numpy(invstd), True)
    assert_grads(got, ref, dtype)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 7), (2, 3, 9, 7)])
def test_batch_norm_eval_uses_running_statistics(backend, dtype, shape, rng):
    xp = xp_for(backend)
    C = shape[1]
    x = rand(rng, shape, dtype, xp)
    w, b = rand(rng, (C,), dtype, xp), rand(rng, (C,), dtype, xp)
    rm, rv = rand(rng, (C,), dtype, xp), xp.asarray(rng.random(C).astype(dtype) + 0.5)
    before = (to_numpy(rm).copy(), to_numpy(rv).copy())
    out, mean, invstd = kernels.get("batch_norm_forward", backend)(x, rm, rv, w, b, False)
    r_out, r_mean, r_invstd = reference.batch_norm_forward(to_numpy(x), before[0], before[1], to_numpy(w),
                                                           to_numpy(b), False)
    assert_close(out, r_out, dtype)
    assert_close(mean, r_mean, dtype, what="save_mean")
    np.testing.assert_array_equal(to_numpy(rm), before[0])  # eval leaves the running statistics alone
    np.testing.assert_array_equal(to_numpy(rv), before[1])
    g = rand(rng, shape, dtype, xp)
    got = kernels.get("batch_norm_backward", backend)(g, x, w, mean, invstd, False)
    ref = reference.batch_norm_backward(to_numpy(g), to_numpy(x), to_numpy(w), to_numpy(mean), to_numpy(invstd), False)
    assert_grads(got, ref, dtype)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, False), (False, False, True), (True, True, True)])
def test_batch_norm_needs_mask(backend, needs, rng):
    xp = xp_for(backend)
    x = rand(rng, (4, 3, 40), np.float64, xp)
    w = rand(rng, (3,), np.float64, xp)
    out, mean, invstd = kernels.get("batch_norm_forward", backend)(x, None, None, w, None, True)
    g = rand(rng, x.shape, np.float64, xp)
    got = kernels.get("batch_norm_backward", backend)(g, x, w, mean, invstd, True, needs)
    ref = reference.batch_norm_backward(*map(to_numpy, (g, x, w, mean, invstd)), True, needs)
    assert_grads(got, ref, np.float64)


@pytest.mark.parametrize("path", isa_paths())
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 17), (2, 3, 300), (4, 2, 7, 9)])
def test_every_isa_path_matches_reference(path, dtype, shape, isa, rng):
    isa(path)
    C = shape[1]
    x = rand(rng, shape, dtype, scale=3.0, shift=-2.0)
    w, b = rand(rng, (C,), dtype), rand(rng, (C,), dtype)
    g = rand(rng, shape, dtype)
    out, mean, invstd = kernels.get("batch_norm_forward")(x, None, None, w, b, True)
    r_out, _, _ = reference.batch_norm_forward(x, None, None, w, b, True)
    assert_close(out, r_out, dtype)
    assert_grads(kernels.get("batch_norm_backward")(g, x, w, mean, invstd, True),
                 reference.batch_norm_backward(g, x, w, mean, invstd, True), dtype)
    ns = shape[-1:]
    lw, lb = rand(rng, ns, dtype), rand(rng, ns, dtype)
    out, mean, rstd = kernels.get("layer_norm_forward")(x, ns, lw, lb)
    assert_close(out, reference.layer_norm_forward(x, ns, lw, lb)[0], dtype)
    assert_grads(kernels.get("layer_norm_backward")(g, x, ns, mean, rstd, lw),
                 reference.layer_norm_backward(g, x, ns, mean, rstd, lw), dtype)
    out, mean, rstd = kernels.get("group_norm_forward")(x, 1, w, b)
    assert_close(out, reference.group_norm_forward(x, 1, w, b)[0], dtype)
    assert_grads(kernels.get("group_norm_backward")(g, x, 1, mean, rstd, w),
                 reference.group_norm_backward(g, x, 1, mean, rstd, w), dtype)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
def test_batch_norm_float32_statistics_of_a_large_channel(backend, rng):
    # 200K float32 values per channel, mean 1e3, std 1: float32 sums would lose the
    # variance to cancellation and accumulation error; double accumulators do not.
    xp = xp_for(backend)
    x = rand(rng, (64, 2, 56, 56), np.float32, xp, scale=1.0, shift=1000.0)
    rm, rv = xp.zeros(2, np.float32), xp.ones(2, np.float32)
    out, mean, invstd = kernels.get("batch_norm_forward", backend)(x, rm, rv, None, None, True)
    r_out, r_mean, r_invstd = reference.batch_norm_forward(to_numpy(x), None, None, None, None, True)
    assert_close(mean, r_mean, np.float32, what="save_mean")
    assert_close(invstd, r_invstd, np.float32, what="save_invstd")
    assert_close(out, r_out, np.float32, what="out")
    g = rand(rng, x.shape, np.float32, xp)
    got = kernels.get("batch_norm_backward", backend)(g, x, None, mean, invstd, True)
    ref = reference.batch_norm_backward(*map(to_numpy, (g, x)), None, *map(to_numpy, (mean, invstd)), True)
    assert_grads(got, ref, np.float32)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
def test_strided_inputs_are_read_correctly(backend, rng):
    xp = xp_for(backend)
    x = rand(rng, (6, 5, 8, 10), np.float64, xp)[::2, :, ::-1, 1::2]  # strided, negative-stride
    g = rand(rng, x.shape, np.float64, xp)[:, :, ::-1]
    w = rand(rng, (10,), np.float64, xp)[::2]
    nx, ng, nw = to_numpy(x), to_numpy(g), to_numpy(w)
    out, mean, invstd = kernels.get("batch_norm_forward", backend)(x, None, None, w, None, True)
    assert_close(out, reference.batch_norm_forward(nx, None, None, nw, None, True)[0], np.float64)
    assert_grads(kernels.get("batch_norm_backward", backend)(g, x, w, mean, invstd, True),
                 reference.batch_norm_backward(ng, nx, nw, to_numpy(mean), to_numpy(invstd), True), np.float64)
    xt = rand(rng, (7, 12), np.float32, xp).T  # (12, 7), transposed
    out, mean, rstd = kernels.get("layer_norm_forward", backend)(xt, 7)
    assert_close(out, reference.layer_norm_forward(to_numpy(xt), 7)[0], np.float32)
    out, mean, rstd = kernels.get("group_norm_forward", backend)(x, 5, w)
    assert_close(out, reference.group_norm_forward(nx, 5, nw)[0], np.float64)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
def test_batch_norm_empty_batch(backend, rng):
    xp = xp_for(backend)
    rm, rv = xp.zeros(3), xp.ones(3)
    x = xp.zeros((0, 3, 4, 4))
    out, mean, invstd = kernels.get("batch_norm_forward", backend)(x, rm, rv, None, None, True)
    assert out.shape == (0, 3, 4, 4) and mean.shape == (3,)
    np.testing.assert_array_equal(to_numpy(rm), 0.0)  # untouched, as PyTorch leaves them
    np.testing.assert_array_equal(to_numpy(rv), 1.0)
    gx, gw, gb = kernels.get("batch_norm_backward", backend)(x, x, xp.ones(3), mean, invstd, True)
    assert gx.shape == x.shape
    np.testing.assert_array_equal(to_numpy(gw), 0.0)
    np.testing.assert_array_equal(to_numpy(gb), 0.0)


# ---------------------------------------------------------------------------------------
# layer norm, group norm
# ---------------------------------------------------------------------------------------

LN_CASES = [((5, 7), (7,)), ((2, 3, 33), (33,)), ((4, 3, 5), (3, 5)), ((3, 768), (768,)), ((1, 1), (1,)),
            ((0, 8), (8,)), ((6, 129), (129,)), ((3, 1500), (1500,))]  # past 1024: CUDA's block per row


@pytest.mark.parametrize("backend", backends("layer_norm_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape,ns", LN_CASES)
@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
def test_layer_norm_matches_reference(backend, dtype, shape, ns, affine, rng):
    xp = xp_for(backend)
    x = rand(rng, shape, dtype, xp, scale=2.0, shift=5.0)
    w = rand(rng, ns, dtype, xp) if affine in ("both", "weight") else None
    b = rand(rng, ns, dtype, xp) if affine in ("both", "bias") else None
    out, mean, rstd = kernels.get("layer_norm_forward", backend)(x, ns, w, b, 1e-4)
    r_out, r_mean, r_rstd = reference.layer_norm_forward(to_numpy(x), ns, None if w is None else to_numpy(w),
                                                         None if b is None else to_numpy(b), 1e-4)
    assert_close(out, r_out, dtype)
    assert_close(mean, r_mean, dtype, what="mean")
    assert_close(rstd, r_rstd, dtype, what="rstd")
    g = rand(rng, shape, dtype, xp)
    got = kernels.get("layer_norm_backward", backend)(g, x, ns, mean, rstd, w)
    ref = reference.layer_norm_backward(to_numpy(g), to_numpy(x), ns, to_numpy(mean), to_numpy(rstd),
                                        None if w is None else to_numpy(w))
    assert_grads(got, ref, dtype)


@pytest.mark.parametrize("backend", backends("layer_norm_forward"))
@pytest.mark.parametrize("needs", [(True, False, False), (False, True, True), (False, False, True)])
def test_layer_norm_needs_mask(backend, needs, rng):
    xp = xp_for(backend)
    x = rand(rng, (9, 20), np.float64, xp)
    w = rand(rng, (20,), np.float64, xp)
    out, mean, rstd = kernels.get("layer_norm_forward", backend)(x, 20, w)
    g = rand(rng, x.shape, np.float64, xp)
    ng, nx, nm, nr, nw = map(to_numpy, (g, x, mean, rstd, w))
    assert_grads(kernels.get("layer_norm_backward", backend)(g, x, 20, mean, rstd, w, needs),
                 reference.layer_norm_backward(ng, nx, 20, nm, nr, nw, needs), np.float64)


GN_CASES = [((2, 6, 5), 3), ((3, 4, 7, 9), 2), ((2, 4, 3, 3), 4), ((2, 6), 3), ((1, 8, 33), 1), ((0, 4, 3), 2)]


@pytest.mark.parametrize("backend", backends("group_norm_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape,G", GN_CASES)
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_reference(backend, dtype, shape, G, affine, rng):
    xp = xp_for(backend)
    C = shape[1]
    x = rand(rng, shape, dtype, xp, scale=2.0, shift=-4.0)
    w = rand(rng, (C,), dtype, xp) if affine else None
    b = rand(rng, (C,), dtype, xp) if affine else None
    out, mean, rstd = kernels.get("group_norm_forward", backend)(x, G, w, b, 1e-4)
    r_out, r_mean, r_rstd = reference.group_norm_forward(to_numpy(x), G, None if w is None else to_numpy(w),
                                                         None if b is None else to_numpy(b), 1e-4)
    assert_close(out, r_out, dtype)
    assert_close(mean, r_mean, dtype, what="mean")
    assert_close(rstd, r_rstd, dtype, what="rstd")
    g = rand(rng, shape, dtype, xp)
    got = kernels.get("group_norm_backward", backend)(g, x, G, mean, rstd, w)
    ref = reference.group_norm_backward(to_numpy(g), to_numpy(x), G, to_numpy(mean), to_numpy(rstd),
                                        None if w is None else to_numpy(w))
    assert_grads(got, ref, dtype)


def test_instance_norm_is_group_norm_with_one_channel_per_group(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    out, _, _ = reference.group_norm_forward(x, 3, eps=1e-5)
    mu = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(out, (x - mu) / np.sqrt(var + 1e-5), atol=1e-12)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
def test_results_do_not_depend_on_the_thread_count(backend, threads, rng):
    # Each past the 2 x 2M-element grain at which the kernels use a second thread (on the
    # GPU: the same bits on every run, whatever the scheduling).
    xp = xp_for(backend)
    x = rand(rng, (16, 8, 185, 185), np.float32, xp, shift=1.0)
    xs = rand(rng, (16000, 300), np.float32, xp)  # the column path, two column blocks
    xl = rand(rng, (8000, 600), np.float32, xp)
    w8, wl = rand(rng, (8,), np.float32, xp), rand(rng, (600,), np.float32, xp)
    g, gs, gl = (rand(rng, a.shape, np.float32, xp) for a in (x, xs, xl))
    results = []
    for n in (1, 2, 3):
        threads(n)
        r = []
        for a, ga in ((x, g), (xs, gs)):
            out, m, s = kernels.get("batch_norm_forward", backend)(a, None, None, None, None, True)
            r += [out, m, s, *kernels.get("batch_norm_backward", backend)(ga, a, None, m, s, True, (True, False, True))[::2]]
        out, m, s = kernels.get("layer_norm_forward", backend)(xl, 600, wl)
        r += [out, *kernels.get("layer_norm_backward", backend)(gl, xl, 600, m, s, wl)]
        out, m, s = kernels.get("group_norm_forward", backend)(x, 4, w8)
        r += [out, *kernels.get("group_norm_backward", backend)(g, x, 4, m, s, w8)]
        results.append(r)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(to_numpy(a), to_numpy(b))  # bitwise: fixed reduction orders


# ---------------------------------------------------------------------------------------
# The reference backward against numeric gradients (float64, tiny shapes)
# ---------------------------------------------------------------------------------------

def test_reference_batch_norm_backward_is_the_numeric_gradient(rng):
    x = rng.standard_normal((3, 2, 4))
    w, b = rng.standard_normal(2), rng.standard_normal(2)
    g = rng.standard_normal(x.shape)
    for training in (True, False):
        rm, rv = rng.standard_normal(2), rng.random(2) + 0.5

        def f(xx, ww, bb):
            return reference.batch_norm_forward(xx, rm.copy(), rv.copy(), ww, bb, training)[0]

        _, mean, invstd = reference.batch_norm_forward(x, rm.copy(), rv.copy(), w, b, training)
        gx, gw, gb = reference.batch_norm_backward(g, x, w, mean, invstd, training)
        np.testing.assert_allclose(gx, numeric_grad(lambda z: f(z, w, b), x.copy(), g), atol=1e-6)
        np.testing.assert_allclose(gw, numeric_grad(lambda z: f(x, z, b), w.copy(), g), atol=1e-6)
        np.testing.assert_allclose(gb, numeric_grad(lambda z: f(x, w, z), b.copy(), g), atol=1e-6)


def test_reference_layer_and_group_norm_backward_are_numeric_gradients(rng):
    x = rng.standard_normal((3, 4, 5))
    g = rng.standard_normal(x.shape)
    w, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    _, mean, rstd = reference.layer_norm_forward(x, (4, 5), w, b)
    gx, gw, gb = reference.layer_norm_backward(g, x, (4, 5), mean, rstd, w)
    f = reference.layer_norm_forward
    np.testing.assert_allclose(gx, numeric_grad(lambda z: f(z, (4, 5), w, b)[0], x.copy(), g), atol=1e-6)
    np.testing.assert_allclose(gw, numeric_grad(lambda z: f(x, (4, 5), z, b)[0], w.copy(), g), atol=1e-6)
    np.testing.assert_allclose(gb, numeric_grad(lambda z: f(x, (4, 5), w, z)[0], b.copy(), g), atol=1e-6)
    w, b = rng.standard_normal(4), rng.standard_normal(4)
    _, mean, rstd = reference.group_norm_forward(x, 2, w, b)
    gx, gw, gb = reference.group_norm_backward(g, x, 2, mean, rstd, w)
    f = reference.group_norm_forward
    np.testing.assert_allclose(gx, numeric_grad(lambda z: f(z, 2, w, b)[0], x.copy(), g), atol=1e-6)
    np.testing.assert_allclose(gw, numeric_grad(lambda z: f(x, 2, z, b)[0], w.copy(), g), atol=1e-6)
    np.testing.assert_allclose(gb, numeric_grad(lambda z: f(x, 2, w, z)[0], b.copy(), g), atol=1e-6)


# ---------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", backends("batch_norm_forward", fast_only=False))
def test_batch_norm_bad_input(backend):
    xp = xp_for(backend)
    f = kernels.get("batch_norm_forward", backend)
    x = xp.zeros((4, 3, 5))
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\) to match the input's 3 "):
        f(x, xp.zeros(4), xp.ones(3), training=True)
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\)"):
        f(x, None, None, xp.ones(2), None, True)
    with pytest.raises(ValueError, match="batch_norm: expected more than 1 value per channel when training"):
        f(xp.zeros((1, 3)), None, None, None, None, True)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are required in evaluation mode"):
        f(x, None, None, None, None, False)
    with pytest.raises(ValueError, match="batch_norm: input must have at least 2 dimensions"):
        f(xp.zeros(3), None, None, None, None, True)


@pytest.mark.parametrize("backend", backends("batch_norm_forward"))
def test_batch_norm_running_stats_must_be_updatable(backend):
    xp = xp_for(backend)
    f = kernels.get("batch_norm_forward", backend)
    x = xp.zeros((4, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="batch_norm: running_mean must have the input's dtype float32"):
        f(x, xp.zeros(3), xp.ones(3, np.float32), training=True)
    strided = xp.zeros(6, np.float32)[::2]
    with pytest.raises(ValueError, match="running_var must be a writeable contiguous array"):
        f(x, xp.zeros(3, np.float32), strided, training=True)


@pytest.mark.parametrize("backend", backends("layer_norm_forward", fast_only=False))
def test_layer_and_group_norm_bad_input(backend):
    xp = xp_for(backend)
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape=\[5\] expects input of shape \(\*, 5\)"):
        kernels.get("layer_norm_forward", backend)(xp.zeros((3, 4)), (5,))
    with pytest.raises(ValueError, match="layer_norm: weight must have"):
        kernels.get("layer_norm_forward", backend)(xp.zeros((3, 4)), (4,), xp.ones(3))
    with pytest.raises(ValueError, match="group_norm: the input's 4 channels must be divisible by num_groups"):
        kernels.get("group_norm_forward", backend)(xp.zeros((3, 4, 2)), 3)
    with pytest.raises(ValueError, match=r"group_norm: weight must have shape \(4,\)"):
        kernels.get("group_norm_forward", backend)(xp.zeros((3, 4, 2)), 2, xp.ones(2))


@pytest.mark.parametrize("name", ['pydl.kernels.reference.norm'])
def test_reference_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run doctest for details)"
