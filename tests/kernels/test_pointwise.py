"""Pointwise kernels of the training step (relu, in-place add, fused SGD update) against the
NumPy reference."""
import numpy as np
import pytest

import pydl
from parity import FLOAT_DTYPES, assert_close, backends, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference

# around the thread split (kGrain = 2^18 elements per thread), odd sizes, empty
SHAPES = [(0,), (1,), (7, 33), (2, 3, 5, 7), (1 << 18,), (3, (1 << 18) + 129)]


@pytest.mark.parametrize("backend", backends("relu_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_relu_matches_reference(backend, dtype, shape, rng):
    xp = xp_for(backend)
    x = rng.standard_normal(shape).astype(dtype)
    y = kernels.get("relu_forward", backend)(xp.asarray(x))
    assert_close(y, reference.relu_forward(x), dtype)
    g = rng.standard_normal(shape).astype(dtype)
    dx = kernels.get("relu_backward", backend)(xp.asarray(g), y)
    assert_close(dx, reference.relu_backward(g, to_numpy(y)), dtype)


@pytest.mark.parametrize("backend", backends("relu_forward"))
def test_relu_strided_input_and_nan(backend):
    x = np.arange(-6.0, 6.0, dtype=np.float32).reshape(3, 4)[:, ::-2]  # negative strides: copied, not misread
    y = to_numpy(kernels.get("relu_forward", backend)(x))
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    y = to_numpy(kernels.get("relu_forward", backend)(np.array([np.nan, -np.inf, np.inf], np.float64)))
    assert np.isnan(y[0]) and y[1] == 0 and y[2] == np.inf  # NaN passes, as PyTorch's relu
    dx = to_numpy(kernels.get("relu_backward", backend)(np.ones(3, np.float32), np.array([0, 1, -0.0], np.float32)))
    np.testing.assert_array_equal(dx, [0, 1, 0])  # the gradient stops at 0 (not x > 0)


@pytest.mark.parametrize("backend", backends("add_"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_add_inplace_matches_reference(backend, dtype, shape, rng):
    xp = xp_for(backend)
    a = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype)
    dst = xp.asarray(a.copy())
    assert kernels.get("add_", backend)(dst, xp.asarray(b)) is None
    assert_close(dst, reference.add_(a.astype(np.float64), b), dtype)


def _sgd_options():
    return [dict(lr=0.1), dict(lr=0.05, weight_decay=1e-2), dict(lr=0.1, momentum=0.9),
            dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=1e-3),
            dict(lr=0.01, momentum=0.8, nesterov=True, weight_decay=5e-4), dict(lr=0.1, momentum=0.5, maximize=True),
            dict(lr=0.0, momentum=0.9)]


@pytest.mark.parametrize("backend", backends("sgd_step_"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", [(0,), (5,), (7, 33), ((1 << 18) + 3,)])
@pytest.mark.parametrize("opts", _sgd_options(), ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_sgd_step_matches_reference(backend, dtype, shape, opts, rng):
    xp = xp_for(backend)
    p = rng.standard_normal(shape).astype(dtype)
    b = rng.standard_normal(shape).astype(dtype) if opts.get("momentum") else None
    for step in range(3):  # the buffer carries over between steps
        g = rng.standard_normal(shape).astype(dtype)
        b_ref = None if b is None else b.astype(np.float64)  # updated in place by the reference
        p_ref = reference.sgd_step_(p.astype(np.float64), g, b_ref, **opts)
        pd, bd = xp.asarray(p), None if b is None else xp.asarray(b)
        assert kernels.get("sgd_step_", backend)(pd, xp.asarray(g), bd, **opts) is None
        assert_close(pd, p_ref, dtype, what=f"param after step {step}")
        if b is not None:
            assert_close(bd, b_ref, dtype, what=f"momentum buffer after step {step}")
        p, b = to_numpy(pd), None if bd is None else to_numpy(bd)


@pytest.mark.parametrize("backend", backends("sgd_step_"))
@pytest.mark.skipif(pydl._C.build_info["native"], reason="-march=native may contract b * m + d into one FMA")
def test_sgd_step_is_numpy_sgd_bit_for_bit(backend, rng):
    """The fused update rounds like pydl/optim/sgd.py's NumPy code (the optim tests compare
    that code with transcriptions of torch.optim.SGD)."""
    p = rng.standard_normal(1000).astype(np.float32)
    b = rng.standard_normal(1000).astype(np.float32)
    g = rng.standard_normal(1000).astype(np.float32)
    p_np, b_np = p.copy(), b.copy()
    d = g + 1e-4 * p_np
    b_np *= 0.9
    b_np += d
    p_np -= 0.1 * (d + 0.9 * b_np)
    kernels.get("sgd_step_", backend)(p, g, b, 0.1, 0.9, 0.0, 1e-4, True, False)
    np.testing.assert_array_equal(b, b_np)
    np.testing.assert_array_equal(p, p_np)


@pytest.mark.parametrize("backend", backends("relu_forward"))
def test_pointwise_threads_do_not_change_results(backend, threads, rng):
    x = rng.standard_normal(3 << 18).astype(np.float32)
    p, g, b = (rng.standard_normal(3 << 18).astype(np.float32) for _ in range(3))
    out = {}
    for n in (1, 2):
        threads(n)
        pn, bn, acc = p.copy(), b.copy(), x.copy()
        kernels.get("sgd_step_", backend)(pn, g, bn, 0.1, 0.9)
        kernels.get("add_", backend)(acc, g)
        out[n] = (kernels.get("relu_forward", backend)(x), pn, bn, acc)
    for a, c in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("backend", backends("sgd_step_"))
def test_pointwise_bad_input(backend):
    f32 = np.zeros((4, 3), np.float32)
    with pytest.raises(TypeError, match="relu: input must be float32 or float64, got int64"):
        kernels.get("relu_forward", backend)(np.zeros(3, np.int64))
    with pytest.raises(TypeError, match="relu: input must be a numpy.ndarray"):
        kernels.get("relu_forward", backend)([1.0, 2.0])
    with pytest.raises(ValueError, match=r"relu_backward: grad_out and output must have the same shape, got \(4, 3\)"):
        kernels.get("relu_backward", backend)(f32, np.zeros(3, np.float32))
    with pytest.raises(TypeError, match="relu_backward: grad_out and output must have the same dtype"):
        kernels.get("relu_backward", backend)(f32, f32.astype(np.float64))
    with pytest.raises(ValueError, match="add_: dst must be C-contiguous"):
        kernels.get("add_", backend)(np.zeros((3, 4), np.float32).T, f32)
    ro = np.zeros((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="add_: dst is read-only"):
        kernels.get("add_", backend)(ro, f32)
    with pytest.raises(ValueError, match="add_: dst and src must have the same shape"):
        kernels.get("add_", backend)(f32, np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="sgd_step_: momentum 0.9.* needs a momentum_buffer"):
        kernels.get("sgd_step_", backend)(f32, f32, None, 0.1, 0.9)
    with pytest.raises(ValueError, match="sgd_step_: nesterov needs a momentum > 0"):
        kernels.get("sgd_step_", backend)(f32, f32, None, 0.1, 0.0, 0.0, 0.0, True)
    with pytest.raises(TypeError, match="sgd_step_: param and grad must have the same dtype"):
        kernels.get("sgd_step_", backend)(f32, f32.astype(np.float64), None, 0.1)


@pytest.mark.parametrize("name", ["pydl.kernels.reference.pointwise"])
def test_reference_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run doctest for details)"
