"""Convolution through autograd and its modules: F.conv2d / F.conv_transpose2d / F.pad
against the float64 reference kernels and gradcheck, Conv2d / ConvTranspose2d semantics
(PyTorch's defaults, initialisation, state_dict keys, repr, errors), and conv + batch-norm
fusion. PyTorch parity runs where PyTorch is installed."""
import math

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from parity import FLOAT_DTYPES, assert_close
from pydl import kernels, nn
from pydl.autograd import gradcheck

ref = kernels.backend("reference")


def t64(a, grad=True):
    return pydl.tensor(np.asarray(a, dtype=np.float64), dtype=pydl.float64, requires_grad=grad)


# ------------------------------------------------------------------ F.conv2d
CONV_CASES = {
    "plain": dict(x=(2, 3, 6, 5), w=(4, 3, 3, 3)),
    "stride_pad": dict(x=(2, 3, 7, 6), w=(4, 3, 3, 3), stride=2, padding=1),
    "tuple_args": dict(x=(1, 2, 7, 8), w=(3, 2, 3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    "same_odd": dict(x=(2, 2, 5, 6), w=(3, 2, 3, 3), padding="same"),
    "same_even_dilated": dict(x=(1, 2, 6, 6), w=(2, 2, 4, 2), padding="same", dilation=2),
    "valid": dict(x=(1, 2, 5, 5), w=(2, 2, 3, 3), padding="valid"),
    "groups": dict(x=(2, 4, 5, 5), w=(6, 2, 3, 3), groups=2, padding=1),
    "depthwise": dict(x=(2, 3, 6, 6), w=(3, 1, 3, 3), groups=3, stride=2, padding=1),
    "pointwise": dict(x=(2, 5, 3, 4), w=(2, 5, 1, 1)),
    "no_bias": dict(x=(1, 2, 4, 4), w=(3, 2, 2, 2), bias=False),
}


def _conv_args(case):
    kw = {k: v for k, v in case.items() if k not in ("x", "w", "bias")}
    return kw


@pytest.mark.parametrize("name", sorted(CONV_CASES))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_conv2d_matches_reference(rng, name, dtype):
    case = CONV_CASES[name]
    x = rng.standard_normal(case["x"])
    w = rng.standard_normal(case["w"])
    b = None if case.get("bias") is False else rng.standard_normal(case["w"][0])
    kw = _conv_args(case)
    got = F.conv2d(pydl.tensor(x.astype(dtype)), pydl.tensor(w.astype(dtype)),
                   None if b is None else pydl.tensor(b.astype(dtype)), **kw)
    assert_close(got.numpy(), ref.conv2d_forward(x, w, b, **kw), dtype, what=name)


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_gradcheck(rng, name):
    case = CONV_CASES[name]
    x, w = t64(rng.standard_normal(case["x"])), t64(rng.standard_normal(case["w"]))
    kw = _conv_args(case)
    if case.get("bias") is False:
        assert gradcheck(lambda x, w: F.conv2d(x, w, None, **kw), (x, w))
    else:
        b = t64(rng.standard_normal(case["w"][0]))
        assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **kw), (x, w, b))


def test_conv2d_unbatched_input(rng):
    x, w = t64(rng.standard_normal((2, 5, 5))), t64(rng.standard_normal((3, 2, 3, 3)))
    out = F.conv2d(x, w, padding=1)
    assert out.shape == (3, 5, 5)
    np.testing.assert_allclose(out.detach().numpy(), F.conv2d(x[None], w, padding=1).detach().numpy()[0])
    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2), (x, w))


def test_conv_backward_asks_only_for_needed_gradients(rng, monkeypatch):
    """The autograd glue passes needs= so that unused gradients are never computed."""
    calls = []
    real = kernels.cpu.conv2d_backward

    def spy(*args, needs):
        calls.append(needs)
        return real(*args, needs=needs)

    monkeypatch.setattr(kernels.cpu, "conv2d_backward", spy)
    x = pydl.randn(2, 3, 5, 5)
    conv = nn.Conv2d(3, 4, 3)
    conv(x).sum().backward()  # the input is data: no input gradient
    x.requires_grad_()
    conv.weight.requires_grad_(False)
    conv.bias.requires_grad_(False)
    conv(x).sum().backward()  # frozen layer: the input gradient only
    assert calls == [(False, True, True), (True, False, False)]
    assert x.grad is not None and conv.weight.grad is not None


def test_conv2d_keeps_no_copy_of_float32_operands():
    x = pydl.randn(1, 2, 4, 4, requires_grad=True)
    w = pydl.randn(3, 2, 3, 3, requires_grad=True)
    node = F.conv2d(x, w).grad_fn
    assert node.x is x.data and node.w is w.data
    assert node.name() == "ConvolutionBackward0"


def test_conv2d_promotes_mixed_dtypes():
    out = F.conv2d(pydl.ones(1, 1, 3, 3, dtype=pydl.float64), pydl.ones(1, 1, 2, 2))
    assert out.dtype == pydl.float64
    assert float(out.sum()) == 16.0


@pytest.mark.parametrize("bad, err, match", [
    (dict(x=(1, 3, 5, 5), w=(2, 2, 3, 3)), ValueError, "3 channels but weight expects 2"),
    (dict(x=(3, 5), w=(2, 3, 3, 3)), ValueError, "3-D .* or 4-D"),
    (dict(x=(1, 3, 5, 5), w=(2, 3, 3, 3), stride=2, padding="same"), ValueError, "strided"),
    (dict(x=(1, 3, 5, 5), w=(2, 3, 3, 3), padding="full"), ValueError, "padding"),
    (dict(x=(1, 3, 2, 2), w=(2, 3, 3, 3)), ValueError, "larger than the padded input"),
])
def test_conv2d_errors_name_the_problem(bad, err, match):
    kw = {k: v for k, v in bad.items() if k not in ("x", "w")}
    with pytest.raises(err, match=match):
        F.conv2d(pydl.ones(*bad["x"]), pydl.ones(*bad["w"]), **kw)
    with pytest.raises(TypeError, match="conv2d: input must be a Tensor"):
        F.conv2d(np.ones((1, 1, 3, 3)), pydl.ones(1, 1, 2, 2))
    with pytest.raises(TypeError, match="floating point"):
        F.conv2d(pydl.ones(1, 1, 3, 3, dtype=pydl.int64), pydl.ones(1, 1, 2, 2))


# --------------------------------------------------------- F.conv_transpose2d
TRANSPOSE_CASES = {
    "plain": dict(x=(2, 3, 4, 4), w=(3, 2, 3, 3)),
    "stride_output_padding": dict(x=(1, 2, 3, 4), w=(2, 3, 3, 3), stride=2, padding=1, output_padding=1),
    "groups_dilation": dict(x=(2, 4, 3, 3), w=(4, 1, 2, 2), groups=2, dilation=2, stride=(2, 1)),
}


@pytest.mark.parametrize("name", sorted(TRANSPOSE_CASES))
def test_conv_transpose2d_reference_and_gradcheck(rng, name):
    case = TRANSPOSE_CASES[name]
    kw = _conv_args(case)
    x, w = rng.standard_normal(case["x"]), rng.standard_normal(case["w"])
    groups = kw.get("groups", 1)
    b = rng.standard_normal(case["w"][1] * groups)
    got = F.conv_transpose2d(pydl.tensor(x.astype(np.float32)), pydl.tensor(w.astype(np.float32)),
                             pydl.tensor(b.astype(np.float32)), **kw)
    assert_close(got.numpy(), ref.conv_transpose2d_forward(x, w, b, **kw), np.float32, what=name)
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **kw), (t64(x), t64(w), t64(b)))


def test_conv_transpose_is_the_adjoint_of_conv(rng):
    """<conv(x), y> = <x, conv_transpose(y)> with the same weight (the seeds' gradient map)."""
    x, w = rng.standard_normal((2, 3, 7, 7)), rng.standard_normal((4, 3, 3, 3))
    y = rng.standard_normal((2, 4, 4, 4))
    lhs = (F.conv2d(t64(x, False), t64(w, False), stride=2, padding=1).numpy() * y).sum()
    rhs = (x * F.conv_transpose2d(t64(y, False), t64(w, False), stride=2, padding=1).numpy()).sum()
    assert math.isclose(lhs, rhs, rel_tol=1e-10)


# ----------------------------------------------------------------------- F.pad
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_modes_match_numpy_and_gradcheck(rng, mode):
    x = rng.standard_normal((2, 3, 4, 5))
    pads = (2, 1, 1, 3)  # (left, right, top, bottom)
    np_mode = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    want = np.pad(x, ((0, 0), (0, 0), (1, 3), (2, 1)), mode=np_mode)
    np.testing.assert_array_equal(F.pad(t64(x, False), pads, mode=mode).numpy(), want)
    assert gradcheck(lambda t: F.pad(t, pads, mode=mode), (t64(x[:1, :1]),))


def test_pad_value_and_errors():
    assert F.pad(pydl.zeros(1, 1), (1, 0), value=5.0).tolist() == [[5.0, 0.0]]
    with pytest.raises(ValueError, match="padding size should be less"):
        F.pad(pydl.zeros(1, 1, 2, 2), (2, 2), mode="reflect")
    with pytest.raises(ValueError, match="even"):
        F.pad(pydl.zeros(2, 2), (1,))
    with pytest.raises(NotImplementedError, match="mode"):
        F.pad(pydl.zeros(2, 2), (1, 1), mode="mirror")


# ------------------------------------------------------------------ Conv2d module
def test_conv2d_defaults_and_state_dict():
    conv = nn.Conv2d(3, 10, 5, padding=2)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (3, 10, (5, 5))
    assert (conv.stride, conv.padding, conv.dilation, conv.groups) == ((1, 1), (2, 2), (1, 1), 1)
    assert conv.padding_mode == "zeros" and conv.transposed is False and conv.output_padding == (0, 0)
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert conv.weight.shape == (10, 3, 5, 5) and conv.bias.shape == (10,)
    assert conv.weight.dtype == pydl.float32 and conv.weight.requires_grad
    # the seeds' example: 10 x (5 * 5 * 3 + 1) = 760 parameters, 32x32 kept
    assert sum(p.numel() for p in conv.parameters()) == 760
    assert conv(pydl.randn(1, 3, 32, 32)).shape == (1, 10, 32, 32)
    assert list(nn.Conv2d(3, 4, 1, bias=False).state_dict()) == ["weight"]
    assert nn.Conv2d(2, 4, 3, dtype=pydl.float64).weight.dtype == pydl.float64


def test_conv2d_default_init_is_pytorchs():
    """kaiming_uniform_(a=sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias too."""
    pydl.manual_seed(0)
    conv = nn.Conv2d(16, 64, 3)
    fan_in = 16 * 9
    bound = 1 / math.sqrt(fan_in)
    w, b = conv.weight.detach().numpy(), conv.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound  # the std of U(-a, a) is a / sqrt(3)
    # the transposed layout's fan_in is (out / groups) * k * k, as PyTorch computes it
    up = nn.ConvTranspose2d(16, 8, 3)
    assert up.weight.shape == (16, 8, 3, 3)
    assert np.abs(up.bias.detach().numpy()).max() <= 1 / math.sqrt(8 * 9)


def test_conv2d_module_matches_functional_and_seeds_alexnet_layer():
    conv = nn.Conv2d(3, 64, 11, stride=4, padding=2)
    assert sum(p.numel() for p in conv.parameters()) == 23296
    x = pydl.randn(1, 3, 227, 227)
    out = conv(x)
    assert out.shape == (1, 64, 56, 56)  # (227 - 11 + 2 * 2) / 4 + 1 = 56
    np.testing.assert_array_equal(out.detach().numpy(),
                                  F.conv2d(x, conv.weight, conv.bias, 4, 2).detach().numpy())


@pytest.mark.parametrize("padding_mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_modes(rng, padding_mode):
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode=padding_mode).double()
    x = t64(rng.standard_normal((1, 2, 5, 6)))
    want = F.conv2d(F.pad(x, (1, 1, 1, 1), mode=padding_mode), conv.weight, conv.bias)
    np.testing.assert_allclose(conv(x).detach().numpy(), want.detach().numpy())
    assert conv(x).shape == (1, 3, 5, 6)
    same = nn.Conv2d(2, 3, 4, padding="same", padding_mode=padding_mode)
    assert same(pydl.randn(1, 2, 5, 6)).shape == (1, 3, 5, 6)


def test_conv_module_errors():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(3, 3, 3, groups=0)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="Invalid padding string"):
        nn.Conv2d(3, 3, 3, padding="full")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 3, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="zeros"):
        nn.ConvTranspose2d(3, 3, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="3 channels but weight expects 4"):
        nn.Conv2d(4, 2, 3)(pydl.ones(1, 3, 5, 5))


def test_conv_reprs_are_pytorchs():
    assert repr(nn.Conv2d(3, 10, 5, padding=2)) == "Conv2d(3, 10, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))"
    assert repr(nn.Conv2d(8, 8, 3, stride=2, dilation=2, groups=8, bias=False)) == (
        "Conv2d(8, 8, kernel_size=(3, 3), stride=(2, 2), dilation=(2, 2), groups=8, bias=False)")
    assert repr(nn.Conv2d(2, 2, 3, padding="same", padding_mode="reflect")) == (
        "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same, padding_mode=reflect)")
    assert repr(nn.ConvTranspose2d(4, 2, 3, stride=2, output_padding=1)) == (
        "ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))")


def test_conv_transpose2d_output_size():
    up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1)
    x = pydl.randn(2, 8, 5, 5)
    assert up(x).shape == (2, 4, 9, 9)
    assert up(x, output_size=(10, 10)).shape == (2, 4, 10, 10)
    assert up(x, output_size=(2, 4, 9, 10)).shape == (2, 4, 9, 10)
    with pytest.raises(ValueError, match="valid sizes range"):
        up(x, output_size=(12, 12))
    out = up(x)
    out.sum().backward()
    assert up.weight.grad.shape == (8, 4, 3, 3) and up.bias.grad.shape == (4,)


def test_conv2d_module_trains(rng):
    """A few SGD steps fit a known filter: the gradients drive the loss down."""
    pydl.manual_seed(0)
    target = nn.Conv2d(2, 3, 3, padding=1)
    model = nn.Conv2d(2, 3, 3, padding=1)
    opt = pydl.optim.SGD(model.parameters(), lr=0.1)
    x = pydl.randn(8, 2, 6, 6)
    y = target(x).detach()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


# -------------------------------------------------------------------- fusion
@pytest.mark.parametrize("bias, affine", [(True, True), (False, True), (True, False)])
def test_fuse_conv_bn_eval_gives_equal_outputs(rng, bias, affine):
    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=bias)
    bn = nn.BatchNorm2d(4, affine=affine)
    for _ in range(3):  # give the running statistics something to hold
        bn(conv(pydl.randn(4, 3, 8, 8) * 2 + 1))
    if affine:
        bn.weight.data[:] = rng.uniform(0.5, 2.0, 4)
        bn.bias.data[:] = rng.standard_normal(4)
    conv.eval(), bn.eval()
    fused = nn.utils.fuse_conv_bn_eval(conv, bn)
    assert isinstance(fused, nn.Conv2d) and fused.bias is not None and fused is not conv
    x = pydl.randn(2, 3, 8, 8)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(conv(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    assert fused.weight.dtype == pydl.float32 and fused.weight.requires_grad


def test_fuse_transposed_and_linear_and_errors(rng):
    up, bn = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), nn.BatchNorm2d(6)
    bn.running_mean.data[:] = rng.standard_normal(6)
    bn.running_var.data[:] = rng.uniform(0.5, 2, 6)
    bn.weight.data[:] = rng.uniform(0.5, 2, 6)
    up.eval(), bn.eval()
    x = pydl.randn(2, 4, 5, 5)
    fused = nn.utils.fuse_conv_bn_eval(up, bn, transpose=True)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn(up(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    fc, bn1 = nn.Linear(5, 3), nn.BatchNorm1d(3)
    bn1.running_mean.data[:] = rng.standard_normal(3)
    bn1.running_var.data[:] = rng.uniform(0.5, 2, 3)
    fc.eval(), bn1.eval()
    x = pydl.randn(4, 5)
    fused = nn.utils.fuse_linear_bn_eval(fc, bn1)
    np.testing.assert_allclose(fused(x).detach().numpy(), bn1(fc(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(RuntimeError, match="eval"):
        nn.utils.fuse_conv_bn_eval(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))


# ------------------------------------------------------------------- PyTorch
def test_conv_modules_match_torch_with_copied_state(rng):
    torch = pytest.importorskip("torch")
    for ours, theirs in [(nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2),
                          torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)),
                         (nn.Conv2d(4, 6, 4, padding="same", padding_mode="reflect", dilation=2),
                          torch.nn.Conv2d(4, 6, 4, padding="same", padding_mode="reflect", dilation=2)),
                         (nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1),
                          torch.nn.ConvTranspose2d(4, 6, 3, stride=2, output_padding=1))]:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
        x = rng.standard_normal((2, 4, 9, 9)).astype(np.float32)
        xt = torch.tensor(x, requires_grad=True)
        xo = pydl.tensor(x, requires_grad=True)
        yt, yo = theirs(xt), ours(xo)
        np.testing.assert_allclose(yo.detach().numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
        g = rng.standard_normal(yt.shape).astype(np.float32)
        yt.backward(torch.tensor(g))
        yo.backward(pydl.tensor(g))
        np.testing.assert_allclose(xo.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
        assert repr(ours) == repr(theirs)


# ------------------------------------------------------------------ docstrings
@pytest.mark.parametrize("name", ["pydl.nn.functional._conv", "pydl.nn.modules.conv", "pydl.nn.utils.fusion"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
