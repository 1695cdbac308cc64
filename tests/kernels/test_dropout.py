"""Dropout kernels (the caller's mask; dropout2d through a per-channel mask) against the
NumPy reference."""
import numpy as np
import pytest

from parity import FLOAT_DTYPES, assert_close, backends, to_numpy, xp_for
from pydl import kernels
from pydl.kernels import reference


@pytest.mark.parametrize("backend", backends("dropout_forward"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape,mask_shape", [((7, 33), (7, 33)), ((4, 3, 5, 6), (4, 3)), ((4, 3, 5, 6), (4, 3, 1, 1)),
                                              ((2, 3, 4), (2, 3, 4)), ((0, 5), (0, 5)), ((5,), (5,)), ((3, 1, 4), (3,))])
@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 1.0])
@pytest.mark.parametrize("mask_dtype", [np.bool_, np.uint8])
def test_dropout_matches_reference(backend, dtype, shape, mask_shape, p, mask_dtype, rng):
    xp = xp_for(backend)
    x = xp.asarray(rng.standard_normal(shape).astype(dtype))
    mask = xp.asarray((rng.random(mask_shape) >= p).astype(mask_dtype))
    out = kernels.get("dropout_forward", backend)(x, p, mask)
    assert_close(out, reference.dropout_forward(to_numpy(x), p, to_numpy(mask)), dtype)
    got = kernels.get("dropout_backward", backend)(x, p, mask)
    assert_close(got, reference.dropout_backward(to_numpy(x), p, to_numpy(mask)), dtype)


@pytest.mark.parametrize("backend", backends("dropout_forward", fast_only=False))
def test_dropout_scales_survivors_and_keeps_nan_like_pytorch(backend):
    x = xp_for(backend).asarray(np.array([2.0, np.nan, -3.0, 4.0], dtype=np.float32))
    mask = np.array([1, 0, 0, 1], dtype=np.uint8)
    out = to_numpy(kernels.get("dropout_forward", backend)(x, 0.5, mask))
    np.testing.assert_array_equal(out[[0, 3]], [4.0, 8.0])
    assert np.isnan(out[1])  # NaN * 0 stays NaN, as PyTorch multiplies by the mask
    assert out[2] == 0 and np.signbit(out[2])  # -3 * 0 = -0
    out = to_numpy(kernels.get("dropout_forward", backend)(x, 1.0, np.ones(4, np.uint8)))
    assert out[0] == 0 and out[3] == 0  # p = 1: everything dropped


@pytest.mark.parametrize("backend", backends("dropout_forward", fast_only=False))
def test_dropout_bad_input(backend):
    f = kernels.get("dropout_forward", backend)
    x = xp_for(backend).zeros((4, 3, 2), np.float32)
    with pytest.raises(ValueError, match="dropout: p must lie in"):
        f(x, 1.5, np.ones((4, 3, 2), bool))
    with pytest.raises(ValueError, match=r"dropout: mask of shape \(4, 2\) must have the input's shape"):
        f(x, 0.5, np.ones((4, 2), bool))
    with pytest.raises(TypeError, match="dropout: mask must be bool or uint8"):
        f(x, 0.5, np.ones((4, 3, 2), np.float32))


@pytest.mark.parametrize("name", ['pydl.kernels.reference.dropout'])
def test_reference_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (run doctest for details)"
