"""Gradient clipping: clip_grad_norm_ (every norm type) and clip_grad_value_."""
import math

import numpy as np
import pytest

import pydl
from pydl.nn.utils import clip_grad_norm_, clip_grad_value_


def params_with_grads(rng, shapes=((3, 4), (5,), ()), scale=1.0, dtype=np.float32):
    params = []
    for s in shapes:
        p = pydl.nn.Parameter(pydl.tensor(np.zeros(s, dtype)))
        p.grad = pydl.tensor((scale * rng.standard_normal(s)).astype(dtype))
        params.append(p)
    return params


def all_grads(params):
    return np.concatenate([p.grad.data.astype(np.float64).ravel() for p in params if p.grad is not None])


def ref_norm(v, norm_type):
    a = np.abs(v)
    if norm_type == math.inf:
        return a.max()
    if norm_type == 0:
        return float(np.count_nonzero(v))
    return (a**norm_type).sum() ** (1 / norm_type)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf, "inf"])
def test_total_norm_and_scaling(norm_type, rng):
    params = params_with_grads(rng, scale=3.0)
    before = all_grads(params)
    p_norm = float(norm_type)
    want = ref_norm(before, p_norm)
    total = clip_grad_norm_(params, max_norm=1.0, norm_type=norm_type)
    assert isinstance(total, pydl.Tensor) and total.shape == () and total.dtype == np.float32
    assert float(total) == pytest.approx(want, rel=1e-5)
    after = all_grads(params)
    np.testing.assert_allclose(after, before * (1.0 / (want + 1e-6)), rtol=1e-5)  # direction kept
    assert ref_norm(after, p_norm) == pytest.approx(1.0, rel=1e-5)


def test_no_change_below_max_norm(rng):
    params = params_with_grads(rng, scale=0.01)
    before = all_grads(params)
    total = clip_grad_norm_(params, max_norm=10.0)
    assert float(total) == pytest.approx(np.linalg.norm(before), rel=1e-5)
    np.testing.assert_array_equal(all_grads(params), before)


def test_parameters_without_grad_and_single_tensor(rng):
    params = params_with_grads(rng, scale=2.0)
    extra = pydl.nn.Parameter(pydl.tensor(np.ones(3, np.float32)))  # no grad: skipped
    total = clip_grad_norm_(iter(params + [extra]), max_norm=0.5)
    assert extra.grad is None
    assert float(total) > 0.5
    one = params_with_grads(rng, shapes=((4,),))[0]
    total = clip_grad_norm_(one, max_norm=0.1)
    assert np.linalg.norm(one.grad.data) == pytest.approx(0.1, rel=1e-4)
    assert float(clip_grad_norm_([extra], max_norm=1.0)) == 0.0


def test_float64_grads_and_huge_values(rng):
    params = params_with_grads(rng, dtype=np.float64)
    total = clip_grad_norm_(params, 1.0)
    assert total.dtype == np.float64
    big = pydl.nn.Parameter(pydl.tensor(np.zeros(2, np.float32)))
    big.grad = pydl.tensor(np.array([3e20, 4e20], np.float32))  # squares overflow float32
    assert float(clip_grad_norm_([big], 1.0)) == pytest.approx(5e20, rel=1e-6)
    np.testing.assert_allclose(big.grad.data, [0.6, 0.8], rtol=1e-5)


def test_nonfinite_norm(rng):
    params = params_with_grads(rng)
    params[0].grad.data[0, 0] = np.nan
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert not np.isnan(params[1].grad.data).any()  # nothing scaled before the error
    total = clip_grad_norm_(params, 1.0)  # PyTorch's default: scale by the nan norm
    assert math.isnan(float(total)) and np.isnan(params[1].grad.data).all()

    params = params_with_grads(rng)
    params[1].grad.data[0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(params, 1.0, norm_type=math.inf, error_if_nonfinite=True)


def test_clip_grad_value(rng):
    params = params_with_grads(rng, scale=3.0)
    before = all_grads(params)
    assert clip_grad_value_(params, 1.5) is None
    np.testing.assert_array_equal(all_grads(params), np.clip(before, -1.5, 1.5).astype(np.float32))
    with pytest.raises(ValueError, match="clip_value must be non-negative"):
        clip_grad_value_(params, -1.0)


def test_bad_parameters_argument():
    with pytest.raises(TypeError, match="clip_grad_norm_: parameters must be Tensors"):
        clip_grad_norm_([np.zeros(3)], 1.0)
    with pytest.raises(TypeError, match="clip_grad_value_: parameters must be Tensors"):
        clip_grad_value_([1.0], 1.0)


def test_clipping_tames_an_exploding_update(rng):
    """The seeds' use: a step with clipped gradients stays bounded whatever the gradient."""
    p = pydl.nn.Parameter(pydl.tensor(np.zeros(10, np.float32)))
    opt = pydl.optim.SGD([p], lr=0.1)
    p.grad = pydl.tensor((1e6 * rng.standard_normal(10)).astype(np.float32))
    clip_grad_norm_([p], max_norm=1.0)
    opt.step()
    assert np.linalg.norm(p.data) == pytest.approx(0.1, rel=1e-4)
