"""Pooling, normalisation, up-sampling and structured dropout through autograd, and their
modules: gradcheck in float64 of every functional op, values against the reference
kernels, module semantics (BatchNorm's train/eval and running statistics, defaults,
state_dict keys, reprs) and PyTorch parity where PyTorch is installed."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from parity import assert_close
from pydl import kernels, nn
from pydl.autograd import gradcheck

ref = kernels.backend("reference")


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), dtype=pydl.float64, requires_grad=grad)


def distinct(rng, shape):
    """Values with no ties (max pooling's gradient is not defined at a tie)."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)


SAMPLES = np.array([[[0.3, 0.7], [0.9, 0.1], [0.5, 0.5]], [[0.2, 0.4], [0.6, 0.8], [0.05, 0.95]]])

# name -> function of x (float64 Tensor), input shape; every one is gradchecked
OPS = {
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), (2, 3, 6, 5)),
    "max_pool2d_ceil_pad_dilation": (lambda x: F.max_pool2d(x, 3, 2, 1, dilation=1, ceil_mode=True), (2, 3, 6, 7)),
    "max_pool2d_dilated": (lambda x: F.max_pool2d(x, 2, 1, 0, dilation=2), (1, 2, 6, 6)),
    "max_pool2d_unbatched": (lambda x: F.max_pool2d(x[0], (2, 3), (1, 2)), (1, 3, 5, 7)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), (2, 3, 6, 5)),
    "avg_pool2d_pad_ceil": (lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (2, 3, 6, 7)),
    "avg_pool2d_exclude_pad": (lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (1, 2, 5, 5)),
    "avg_pool2d_divisor": (lambda x: F.avg_pool2d(x, 2, divisor_override=3), (1, 2, 4, 4)),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (2, 3, 7, 5)),
    "adaptive_avg_pool2d_global": (lambda x: F.adaptive_avg_pool2d(x, 1), (2, 3, 4, 4)),
    "adaptive_avg_pool2d_upsizing": (lambda x: F.adaptive_avg_pool2d(x, (4, 5)), (1, 2, 2, 3)),
    "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (3, 2)), (2, 3, 7, 5)),
    "fractional_max_pool2d": (lambda x: F.fractional_max_pool2d(x, 2, output_size=(4, 3),
                                                                _random_samples=pydl.tensor(SAMPLES)), (2, 3, 7, 6)),
    "batch_norm_train": (lambda x: F.batch_norm(x, None, None, training=True), (4, 3, 2, 2)),
    "batch_norm_eval": (lambda x: F.batch_norm(x, pydl.tensor([0.5, -1.0, 0.0], dtype=pydl.float64),
                                               pydl.tensor([2.0, 0.5, 1.0], dtype=pydl.float64)), (2, 3, 2, 2)),
    "batch_norm_1d": (lambda x: F.batch_norm(x[:, :, 0, 0], None, None, training=True), (5, 3, 1, 1)),
    "layer_norm": (lambda x: F.layer_norm(x, (3, 4)), (2, 2, 3, 4)),
    "group_norm": (lambda x: F.group_norm(x, 2), (2, 4, 3, 2)),
    "instance_norm": (lambda x: F.instance_norm(x), (2, 3, 3, 3)),
    "interpolate_nearest": (lambda x: F.interpolate(x, size=(5, 7)), (1, 2, 3, 4)),
    "interpolate_nearest_scale": (lambda x: F.interpolate(x, scale_factor=1.5), (1, 2, 3, 4)),
    "interpolate_bilinear": (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), (1, 2, 3, 4)),
    "interpolate_bilinear_ac": (lambda x: F.interpolate(x, size=(5, 3), mode="bilinear", align_corners=True),
                                (1, 2, 3, 4)),
    "interpolate_linear_1d": (lambda x: F.interpolate(x[0], scale_factor=2.5, mode="linear"), (1, 2, 3, 4)),
    "interpolate_area": (lambda x: F.interpolate(x, size=(2, 2), mode="area"), (1, 2, 4, 5)),
    "pixel_shuffle": (lambda x: F.pixel_shuffle(x, 2), (1, 8, 2, 3)),
    "pixel_unshuffle": (lambda x: F.pixel_unshuffle(x, 2), (1, 2, 4, 6)),
    "dropout2d": (lambda x: (pydl.manual_seed(7), F.dropout2d(x, 0.4))[1], (3, 4, 2, 2)),
    "stochastic_depth": (lambda x: (pydl.manual_seed(7), F.stochastic_depth(x, 0.4, "row"))[1], (6, 2, 3)),
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck(rng, name):
    fn, shape = OPS[name]
    x = t64(distinct(rng, shape) if "max" in name else rng.standard_normal(shape))
    assert gradcheck(fn, (x,))


def test_affine_parameters_gradcheck(rng):
    x = t64(rng.standard_normal((3, 4, 2, 3)))
    w, b = t64(rng.uniform(0.5, 1.5, 4)), t64(rng.standard_normal(4))
    assert gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    rm, rv = pydl.zeros(4, dtype=pydl.float64), pydl.ones(4, dtype=pydl.float64)
    assert gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, w, b))
    assert gradcheck(lambda x, w, b: F.group_norm(x, 2, w, b), (x, w, b))
    assert gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), (x, w, b))
    lw, lb = t64(rng.standard_normal((2, 3))), t64(rng.standard_normal((2, 3)))
    assert gradcheck(lambda x, w, b: F.layer_norm(x, (2, 3), w, b), (x, lw, lb))
    assert gradcheck(lambda w: F.layer_norm(x.detach(), (3,), w[0]), (lw,))  # weight only, no bias


def test_max_unpool2d_gradcheck_and_round_trip(rng):
    x = t64(distinct(rng, (2, 3, 6, 7)))
    out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert idx.dtype == pydl.int64 and not idx.requires_grad
    up = F.max_unpool2d(out, idx, 3, 2, 1, output_size=x.shape)
    assert up.shape == x.shape
    kept = up.detach().numpy() != 0  # the maxima are back where they came from
    np.testing.assert_array_equal(up.detach().numpy()[kept], x.detach().numpy()[kept])
    # non-overlapping windows: every index is distinct (a repeated one keeps only the last value)
    out, idx = F.max_pool2d(x, 2, return_indices=True)
    v = t64(out.detach().numpy())
    assert gradcheck(lambda v: F.max_unpool2d(v, idx, 2, output_size=(6, 7)), (v,))
    with pytest.raises(ValueError, match="invalid output_size"):
        F.max_unpool2d(out, idx, 3, 2, 1, output_size=(20, 20))


@pytest.mark.parametrize("name, fn, ref_fn", [
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
     lambda x: ref.max_pool2d_forward(x, 3, 2, 1, ceil_mode=True)[0]),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
     lambda x: ref.avg_pool2d_forward(x, 3, 2, 1, count_include_pad=False)),
    ("adaptive_avg", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), lambda x: ref.adaptive_avg_pool2d_forward(x, (3, 4))),
    ("layer_norm", lambda x: F.layer_norm(x, (6, 7)), lambda x: ref.layer_norm_forward(x, (6, 7))[0]),
    ("group_norm", lambda x: F.group_norm(x, 3), lambda x: ref.group_norm_forward(x, 3)[0]),
    ("bilinear", lambda x: F.interpolate(x, size=(9, 5), mode="bilinear"),
     lambda x: ref.upsample_bilinear2d_forward(x, (9, 5), False)),
])
def test_float32_values_match_reference(rng, name, fn, ref_fn):
    x = rng.standard_normal((2, 3, 6, 7))
    assert_close(fn(pydl.tensor(x.astype(np.float32))).numpy(), ref_fn(x), np.float32, what=name)


def test_norm_backward_asks_only_for_needed_gradients(monkeypatch):
    calls = []
    real = kernels.cpu.batch_norm_backward
    monkeypatch.setattr(kernels.cpu, "batch_norm_backward",
                        lambda *a, needs: calls.append(needs) or real(*a, needs=needs))
    bn = nn.BatchNorm2d(3)
    bn(pydl.randn(2, 3, 4, 4)).sum().backward()
    assert calls == [(False, True, True)]
    assert bn.weight.grad is not None


EMPTY_BATCH_OPS = {
    "conv2d": lambda x: nn.Conv2d(3, 4, 3)(x),
    "conv_transpose2d": lambda x: nn.ConvTranspose2d(3, 4, 3, stride=2)(x),
    "max_pool2d": lambda x: F.max_pool2d(x, 2),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2),
    "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 2),
    "adaptive_max_pool2d": lambda x: F.adaptive_max_pool2d(x, 3),
    "fractional_max_pool2d": lambda x: F.fractional_max_pool2d(x, 2, output_size=4),
    "batch_norm_train": lambda x: nn.BatchNorm2d(3)(x),
    "batch_norm_eval": lambda x: nn.BatchNorm2d(3).eval()(x),
    "layer_norm": lambda x: F.layer_norm(x, (8,)),
    "group_norm": lambda x: F.group_norm(x, 3),
    "nearest": lambda x: F.interpolate(x, scale_factor=2),
    "bilinear": lambda x: F.interpolate(x, size=(5, 5), mode="bilinear"),
    "pixel_unshuffle": lambda x: F.pixel_unshuffle(x, 2),
    "dropout2d": lambda x: F.dropout2d(x),
}


@pytest.mark.parametrize("name", sorted(EMPTY_BATCH_OPS))
def test_empty_batch(name):
    """Batch 0 gives an empty output of the right shape, and an empty gradient."""
    x = pydl.randn(0, 3, 8, 8, requires_grad=True)
    y = EMPTY_BATCH_OPS[name](x)
    assert y.shape[0] == 0 and y.ndim == 4
    y.sum().backward()
    assert x.grad.shape == x.shape


# --------------------------------------------------------------- BatchNorm
def test_batchnorm2d_defaults_and_keys():
    bn = nn.BatchNorm2d(4)
    assert (bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats) == (4, 1e-5, 0.1, True, True)
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert bn.weight.tolist() == [1.0] * 4 and bn.bias.tolist() == [0.0] * 4
    assert bn.running_mean.tolist() == [0.0] * 4 and bn.running_var.tolist() == [1.0] * 4
    assert bn.num_batches_tracked.dtype == pydl.int64 and bn.num_batches_tracked.shape == ()
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert repr(bn) == "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)"
    plain = nn.BatchNorm2d(4, affine=False, track_running_stats=False)
    assert list(plain.state_dict()) == [] and plain.weight is None and plain.running_mean is None


def test_batchnorm_training_updates_running_statistics(rng):
    bn = nn.BatchNorm2d(3, momentum=0.25)
    x = rng.standard_normal((4, 3, 5, 5)) * 3 + 2
    y = bn(pydl.tensor(x.astype(np.float32))).detach().numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    want = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)  # batch statistics, biased variance
    M = 4 * 5 * 5
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.25 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.75 + 0.25 * var * M / (M - 1), rtol=1e-5)  # unbiased
    assert int(bn.num_batches_tracked) == 1
    bn.eval()  # evaluation: the running statistics, no update
    before = bn.running_mean.numpy().copy()
    y = bn(pydl.tensor(x.astype(np.float32))).detach().numpy()
    want = (x - before[None, :, None, None]) / np.sqrt(bn.running_var.numpy()[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_momentum_none_is_a_cumulative_average(rng):
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [rng.standard_normal((6, 2)) * (i + 1) + i for i in range(4)]
    for b in batches:
        bn(pydl.tensor(b.astype(np.float32)))
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.mean(0) for b in batches], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), np.mean([b.var(0, ddof=1) for b in batches], axis=0),
                               rtol=1e-5)
    assert int(bn.num_batches_tracked) == 4


def test_batchnorm_without_running_stats_uses_batch_statistics_in_eval(rng):
    bn = nn.BatchNorm1d(3, track_running_stats=False).eval()
    x = rng.standard_normal((5, 3, 4))
    y = bn(pydl.tensor(x)).detach().numpy()
    mean, var = x.mean(axis=(0, 2), keepdims=True), x.var(axis=(0, 2), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-6)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(pydl.ones(2, 3))
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        nn.BatchNorm1d(3)(pydl.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(pydl.ones(1, 3))
    with pytest.raises(ValueError, match="3 channels|running_mean"):
        nn.BatchNorm2d(4)(pydl.ones(2, 3, 2, 2))


def test_batchnorm_state_dict_round_trip_and_double():
    a, b = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    a(pydl.randn(4, 3, 2, 2))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.running_var.numpy(), a.running_var.numpy())
    assert int(b.num_batches_tracked) == 1
    c = nn.BatchNorm2d(3).double()
    assert c.running_mean.dtype == pydl.float64 and c.num_batches_tracked.dtype == pydl.int64
    c(pydl.randn(4, 3, 2, 2, dtype=pydl.float64))
    assert c.running_mean.dtype == pydl.float64


def test_batchnorm_float64_input_updates_float32_buffers():
    bn = nn.BatchNorm2d(2)
    y = bn(pydl.randn(4, 2, 3, 3, dtype=pydl.float64) + 1)
    assert y.dtype == pydl.float64 and bn.running_mean.dtype == pydl.float32
    assert float(bn.running_mean.sum()) > 0.1


# --------------------------------------------------- instance, layer, group norm
def test_instance_norm_module(rng):
    m = nn.InstanceNorm2d(3)
    assert (m.affine, m.track_running_stats) == (False, False) and list(m.state_dict()) == []
    x = rng.standard_normal((2, 3, 4, 5))
    y = m(pydl.tensor(x)).numpy()
    mean, var = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-5), rtol=1e-6)
    np.testing.assert_allclose(m(pydl.tensor(x[0])).numpy(), y[0], rtol=1e-6)  # unbatched (C, H, W)
    tracked = nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    assert list(tracked.state_dict()) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    tracked(pydl.tensor(x.astype(np.float32)))
    np.testing.assert_allclose(tracked.running_mean.numpy(), 0.1 * x.mean(axis=(2, 3)).mean(0), rtol=1e-4)
    np.testing.assert_allclose(tracked.running_var.numpy(), 0.9 + 0.1 * x.var(axis=(2, 3), ddof=1).mean(0),
                               rtol=1e-4)
    tracked.eval()
    rm, rv = tracked.running_mean.numpy(), tracked.running_var.numpy()
    np.testing.assert_allclose(tracked(pydl.tensor(x.astype(np.float32))).detach().numpy(),
                               (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="num_features"):
        nn.InstanceNorm2d(4, affine=True)(pydl.ones(2, 3, 2, 2))


def test_layer_norm_and_group_norm_modules(rng):
    ln = nn.LayerNorm([3, 4])
    assert ln.normalized_shape == (3, 4) and ln.eps == 1e-5 and ln.elementwise_affine
    assert list(ln.state_dict()) == ["weight", "bias"] and ln.weight.shape == (3, 4)
    assert repr(ln) == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True)"
    x = rng.standard_normal((2, 5, 3, 4))
    y = ln(pydl.tensor(x)).detach().numpy()
    m, v = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(y, (x - m) / np.sqrt(v + 1e-5), rtol=1e-6)
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]
    assert list(nn.LayerNorm(4, elementwise_affine=False).state_dict()) == []
    gn = nn.GroupNorm(2, 6)
    assert list(gn.state_dict()) == ["weight", "bias"] and repr(gn) == "GroupNorm(2, 6, eps=1e-05, affine=True)"
    x = rng.standard_normal((2, 6, 3, 3))
    xg = x.reshape(2, 2, -1)
    want = ((xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(gn(pydl.tensor(x)).detach().numpy(), want, rtol=1e-6)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(4, 6)


# ------------------------------------------------------------------- pooling
def test_pooling_modules():
    mp = nn.MaxPool2d(2)
    assert mp.stride == 2 and repr(mp) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert mp(pydl.randn(1, 20, 28, 28)).shape == (1, 20, 14, 14)
    out, idx = nn.MaxPool2d(2, return_indices=True)(pydl.randn(1, 2, 4, 4))
    assert nn.MaxUnpool2d(2)(out, idx).shape == (1, 2, 4, 4)
    assert nn.MaxUnpool2d(2)(out, idx, output_size=(5, 5)).shape == (1, 2, 5, 5)
    ap = nn.AvgPool2d(3, stride=2, padding=1)
    assert repr(ap) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert ap(pydl.randn(1, 2, 8, 8)).shape == (1, 2, 4, 4)
    assert repr(nn.AdaptiveAvgPool2d((1, 1))) == "AdaptiveAvgPool2d(output_size=(1, 1))"
    assert nn.AdaptiveAvgPool2d((5, None))(pydl.randn(1, 2, 8, 7)).shape == (1, 2, 5, 7)
    out, idx = nn.AdaptiveMaxPool2d(2, return_indices=True)(pydl.randn(2, 3, 5, 5))
    assert out.shape == idx.shape == (2, 3, 2, 2)
    for m in (mp, ap, nn.AdaptiveAvgPool2d(1)):
        assert list(m.state_dict()) == []


def test_fractional_max_pool_draws_from_pydl_generator():
    x = pydl.randn(2, 3, 10, 10)
    m = nn.FractionalMaxPool2d(2, output_ratio=(0.5, 0.5))
    pydl.manual_seed(3)
    a = m(x)
    pydl.manual_seed(3)
    b = m(x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert a.shape == (2, 3, 5, 5)
    m = nn.FractionalMaxPool2d(2, output_ratio=(0.7, 0.7))
    outs = {m(x).numpy().tobytes() for _ in range(5)}
    assert len(outs) > 1  # new windows each call
    out, idx = nn.FractionalMaxPool2d(3, output_size=4, return_indices=True)(x)
    assert out.shape == idx.shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match="output size, or a pooling ratio"):
        nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.FractionalMaxPool2d(2, output_ratio=1.5)


# ---------------------------------------------------------------- up-sampling
def test_upsample_modules(rng):
    up = nn.Upsample(scale_factor=2, mode="bilinear")
    assert repr(up) == "Upsample(scale_factor=2.0, mode='bilinear')"
    assert up(pydl.randn(1, 3, 4, 5)).shape == (1, 3, 8, 10)
    assert nn.Upsample(size=(7, 3))(pydl.randn(1, 1, 2, 2)).shape == (1, 1, 7, 3)
    x = pydl.tensor([[[[0.0, 1.0]]]])
    np.testing.assert_allclose(nn.UpsamplingBilinear2d(size=(1, 3))(x).numpy(), [[[[0.0, 0.5, 1.0]]]])
    np.testing.assert_allclose(nn.UpsamplingNearest2d(scale_factor=2)(x).numpy(), [[[[0, 0, 1, 1], [0, 0, 1, 1]]]])
    ps = nn.PixelShuffle(3)
    y = ps(pydl.randn(2, 18, 4, 5))
    assert y.shape == (2, 2, 12, 15) and nn.PixelUnshuffle(3)(y).shape == (2, 18, 4, 5)


def test_interpolate_errors():
    x = pydl.ones(1, 1, 2, 2)
    with pytest.raises(ValueError, match="exactly one of size or scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, scale_factor=2, align_corners=True)
    with pytest.raises(NotImplementedError, match="bicubic"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="4-D"):
        F.interpolate(pydl.ones(1, 1, 3), scale_factor=2, mode="bilinear")


# ------------------------------------------------------------------- dropout
def test_dropout2d_drops_whole_channels():
    pydl.manual_seed(0)
    x = pydl.ones(8, 16, 3, 3)
    y = nn.Dropout2d(0.25)(x).numpy()
    per_channel = y.reshape(8, 16, -1)
    assert np.all((per_channel == 0).all(-1) | np.isclose(per_channel, 1 / 0.75).all(-1))
    assert 0.1 < (per_channel == 0).all(-1).mean() < 0.4
    m = nn.Dropout2d(0.5).eval()
    assert m(x) is x
    assert F.dropout2d(x, 1.0).numpy().sum() == 0
    assert repr(nn.Dropout2d()) == "Dropout2d(p=0.5, inplace=False)"
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout2d(1.5)


def test_stochastic_depth_drops_whole_samples():
    pydl.manual_seed(1)
    x = pydl.ones(64, 3, 2)
    y = nn.StochasticDepth(0.5, "row")(x).numpy().reshape(64, -1)
    assert np.all((y == 0).all(1) | (y == 2).all(1)) and 0 < (y == 0).all(1).sum() < 64
    y = nn.StochasticDepth(0.5, "batch")(x).numpy()
    assert np.all(y == 0) or np.all(y == 2)
    assert nn.StochasticDepth(0.5).eval()(x) is x
    with pytest.raises(ValueError, match="mode"):
        nn.StochasticDepth(0.5, "col")


# ------------------------------------------------------------------- PyTorch
def test_modules_match_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((4, 6, 9, 10)).astype(np.float32)
    pairs = [
        (nn.BatchNorm2d(6, momentum=0.3), torch.nn.BatchNorm2d(6, momentum=0.3)),
        (nn.BatchNorm2d(6, momentum=None), torch.nn.BatchNorm2d(6, momentum=None)),
        (nn.GroupNorm(3, 6), torch.nn.GroupNorm(3, 6)),
        (nn.InstanceNorm2d(6, affine=True, track_running_stats=True),
         torch.nn.InstanceNorm2d(6, affine=True, track_running_stats=True)),
        (nn.LayerNorm([9, 10]), torch.nn.LayerNorm([9, 10])),
        (nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True)),
        (nn.AvgPool2d(3, 2, 1, count_include_pad=False), torch.nn.AvgPool2d(3, 2, 1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((4, 3)), torch.nn.AdaptiveAvgPool2d((4, 3))),
        (nn.AdaptiveMaxPool2d((4, 3)), torch.nn.AdaptiveMaxPool2d((4, 3))),
        (nn.Upsample(scale_factor=1.7, mode="bilinear"), torch.nn.Upsample(scale_factor=1.7, mode="bilinear")),
        (nn.Upsample(scale_factor=2.5), torch.nn.Upsample(scale_factor=2.5)),
        (nn.PixelUnshuffle(1), torch.nn.PixelUnshuffle(1)),
    ]
    for ours, theirs in pairs:
        assert list(ours.state_dict()) == list(theirs.state_dict()), repr(ours)
        for step in range(2):
            xt, xo = torch.tensor(x + step, requires_grad=True), pydl.tensor(x + step, requires_grad=True)
            yt, yo = theirs(xt), ours(xo)
            np.testing.assert_allclose(yo.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-4,
                                       err_msg=repr(ours))
            g = rng.standard_normal(yt.shape).astype(np.float32)
            yt.backward(torch.tensor(g))
            yo.backward(pydl.tensor(g))
            np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-3, atol=1e-4, err_msg=repr(ours))
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


# ------------------------------------------------------------------ docstrings
@pytest.mark.parametrize("name", ["pydl.nn.functional._pool", "pydl.nn.functional._norm",
                                  "pydl.nn.functional._resample", "pydl.nn.modules.pooling",
                                  "pydl.nn.modules.normalization", "pydl.nn.modules.upsampling",
                                  "pydl.nn.modules.dropout"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
