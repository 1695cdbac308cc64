"""The CNN zoo: every model runs a forward and a backward pass on a small input; the
parameter counts torchvision documents and a handful of its state_dict keys are pinned
(so torchvision checkpoints map onto pydl's models by name)."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import models, nn

# name -> (builder kwargs, input shape, expected output shape): small enough to run fast
SMALL = {
    "lenet5": (dict(), (2, 1, 28, 28), (2, 10)),
    "alexnet": (dict(num_classes=5), (2, 3, 63, 63), (2, 5)),
    "vgg11_bn": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "googlenet": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "resnet18": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "resnet34": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "resnet50": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "resnext50_32x4d": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "resnet18_cifar": (dict(num_classes=5), (2, 3, 16, 16), (2, 5)),
    "resnet34_cifar": (dict(num_classes=5), (2, 3, 8, 8), (2, 5)),
    "resnet50_cifar": (dict(num_classes=5), (2, 3, 8, 8), (2, 5)),
    "densenet121": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "densenet_cifar": (dict(num_classes=5), (2, 3, 16, 16), (2, 5)),
    "mobilenet_v2": (dict(num_classes=5), (2, 3, 32, 32), (2, 5)),
    "mlp_mixer": (dict(num_classes=5, image_size=32, patch_size=8, hidden_dim=64, num_blocks=2, tokens_mlp_dim=32,
                       channels_mlp_dim=128), (2, 3, 32, 32), (2, 5)),
    "mlp_mixer_cifar": (dict(num_classes=5, num_blocks=2), (2, 3, 32, 32), (2, 5)),
}


def test_every_zoo_model_is_registered():
    names = set(models.list_models())
    assert set(SMALL) <= names
    assert {"vgg11", "vgg16", "vgg16_bn"} <= names


@pytest.mark.parametrize("name", sorted(SMALL))
def test_forward_and_backward(name):
    kwargs, in_shape, out_shape = SMALL[name]
    pydl.manual_seed(0)
    model = models.get_model(name, **kwargs)
    x = pydl.randn(*in_shape)
    out = model(x)
    if name == "googlenet":  # training mode: (logits, aux2, aux1), the auxiliary losses weighted by 0.3
        assert isinstance(out, models.googlenet.GoogLeNetOutputs)
        assert out.aux_logits1.shape == out.aux_logits2.shape == out_shape
        target = pydl.tensor([0, 1])
        loss = F.cross_entropy(out.logits, target) + 0.3 * (
            F.cross_entropy(out.aux_logits1, target) + F.cross_entropy(out.aux_logits2, target))
        out = out.logits
    else:
        loss = F.cross_entropy(out, pydl.tensor([0, 1]))
    assert out.shape == out_shape
    assert np.isfinite(loss.item())
    loss.backward()
    params = list(model.parameters())
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}: no gradient for {missing[:5]}"
    assert all(np.isfinite(p.grad.numpy()).all() for p in params)
    model.eval()
    with pydl.no_grad():
        y = model(x)
    assert y.shape == out_shape  # eval: a plain tensor (GoogLeNet drops its auxiliary heads)


# torchvision's documented parameter counts (1000 classes)
TORCHVISION_PARAMS = {
    "alexnet": 61_100_840,
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnext50_32x4d": 25_028_904,
    "mobilenet_v2": 3_504_872,
    "densenet121": 7_978_856,
}  # vgg16's 138,357,544: test_vgg16_keys_forward_and_backward (one VGG build is slow enough)


def count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_counts_are_torchvisions(name):
    assert count(models.get_model(name)) == TORCHVISION_PARAMS[name]


def test_googlenet_parameter_counts():
    # torchvision's GoogLeNet_Weights documents 6,624,904: the model without its auxiliary classifiers
    assert count(models.get_model("googlenet", aux_logits=False)) == 6_624_904
    assert count(models.get_model("googlenet")) == 13_004_888


def test_lenet5_is_the_seeds_table():
    net = models.get_model("lenet5")
    assert count(net) == (20 * 1 * 25 + 20) + (50 * 20 * 25 + 50) + (2450 * 500 + 500) + (500 * 10 + 10)
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    assert shapes["conv1.weight"] == (20, 1, 5, 5) and shapes["conv2.weight"] == (50, 20, 5, 5)
    assert shapes["fc1.weight"] == (500, 2450) and shapes["fc2.weight"] == (10, 500)
    with pytest.raises(ValueError, match="multiple of 4"):
        models.get_model("lenet5", image_size=30)
    assert models.get_model("lenet5", image_size=32, in_channels=3)(pydl.randn(1, 3, 32, 32)).shape == (1, 10)


def test_resnet18_state_dict_keys_are_torchvisions():
    sd = models.get_model("resnet18").state_dict()
    assert len(sd) == 122
    pinned = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_mean": (64,),
        "bn1.num_batches_tracked": (),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer1.1.bn2.bias": (64,),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer2.0.downsample.1.running_var": (128,),
        "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
    }
    for k, shape in pinned.items():
        assert tuple(sd[k].shape) == shape, k
    assert list(sd)[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                            "bn1.num_batches_tracked"]
    assert list(sd)[-2:] == ["fc.weight", "fc.bias"]
    cifar = models.get_model("resnet18_cifar", num_classes=1000).state_dict()
    assert list(cifar) == list(sd) and tuple(cifar["conv1.weight"].shape) == (64, 3, 3, 3)


def test_resnet50_and_resnext_keys():
    sd = models.get_model("resnet50").state_dict()
    assert tuple(sd["layer1.0.conv3.weight"].shape) == (256, 64, 1, 1)
    assert tuple(sd["layer1.0.downsample.0.weight"].shape) == (256, 64, 1, 1)
    assert tuple(sd["fc.weight"].shape) == (1000, 2048)
    sd = models.get_model("resnext50_32x4d").state_dict()
    assert tuple(sd["layer1.0.conv2.weight"].shape) == (128, 4, 3, 3)  # 32 groups of 4 channels
    assert tuple(sd["layer4.2.conv2.weight"].shape) == (1024, 32, 3, 3)


def test_mobilenet_v2_state_dict_keys_are_torchvisions():
    sd = models.get_model("mobilenet_v2").state_dict()
    assert len(sd) == 314
    pinned = {
        "features.0.0.weight": (32, 3, 3, 3),
        "features.0.1.running_mean": (32,),
        "features.1.conv.0.0.weight": (32, 1, 3, 3),  # depthwise
        "features.1.conv.1.weight": (16, 32, 1, 1),  # pointwise, linear
        "features.1.conv.2.running_var": (16,),
        "features.2.conv.0.0.weight": (96, 16, 1, 1),  # expand x6
        "features.2.conv.1.0.weight": (96, 1, 3, 3),
        "features.2.conv.2.weight": (24, 96, 1, 1),
        "features.2.conv.3.num_batches_tracked": (),
        "features.17.conv.2.weight": (320, 960, 1, 1),
        "features.18.0.weight": (1280, 320, 1, 1),
        "classifier.1.weight": (1000, 1280),
        "classifier.1.bias": (1000,),
    }
    for k, shape in pinned.items():
        assert tuple(sd[k].shape) == shape, k


def test_other_torchvision_keys():
    sd = models.get_model("alexnet").state_dict()
    assert list(sd) == [f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")] + \
        [f"classifier.{i}.{p}" for i in (1, 4, 6) for p in ("weight", "bias")]
    g = models.get_model("googlenet").state_dict()
    for k in ("conv1.conv.weight", "conv1.bn.running_mean", "conv3.bn.weight", "inception3a.branch1.conv.weight",
              "inception3a.branch2.1.conv.weight", "inception3a.branch3.1.bn.bias", "inception4e.branch4.1.conv.weight",
              "aux1.conv.conv.weight", "aux1.fc1.weight", "aux2.fc2.bias", "fc.weight"):
        assert k in g, k
    assert tuple(g["inception3a.branch3.1.conv.weight"].shape) == (32, 16, 3, 3)  # torchvision's "5x5" is 3x3
    assert not any(k.startswith("aux") for k in models.get_model("googlenet", aux_logits=False).state_dict())
    d = models.get_model("densenet121").state_dict()
    for k in ("features.conv0.weight", "features.norm0.running_var", "features.denseblock1.denselayer1.conv1.weight",
              "features.denseblock4.denselayer16.conv2.weight", "features.transition3.conv.weight",
              "features.norm5.bias", "classifier.weight"):
        assert k in d, k
    assert tuple(d["features.denseblock2.denselayer12.conv1.weight"].shape) == (128, 128 + 11 * 32, 1, 1)


def test_vgg16_keys_forward_and_backward():
    net = models.get_model("vgg16")
    assert count(net) == 138_357_544
    sd = net.state_dict()
    convs = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert list(sd) == [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")] + \
        [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]
    assert tuple(sd["classifier.0.weight"].shape) == (4096, 512 * 7 * 7)
    out = net(pydl.randn(2, 3, 32, 32))  # 1x1 features, the adaptive pool repeats them to 7x7
    assert out.shape == (2, 1000)
    out.sum().backward()
    assert net.features[0].weight.grad.shape == (64, 3, 3, 3)


def test_stochastic_depth_option():
    plain = models.get_model("resnet18_cifar", num_classes=3)
    net = models.get_model("resnet18_cifar", num_classes=3, stochastic_depth_prob=0.5)
    assert list(net.state_dict()) == list(plain.state_dict())  # no new keys
    probs = [b.stochastic_depth.p if b.stochastic_depth is not None else 0.0
             for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert probs[0] == 0.0 and probs[-1] == pytest.approx(0.5) and probs == sorted(probs)  # linear decay
    x = pydl.randn(4, 3, 8, 8)
    net.eval()
    with pydl.no_grad():
        a, b = net(x), net(x)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # eval: deterministic
    net.train()
    pydl.manual_seed(1)
    c = net(x)
    pydl.manual_seed(2)
    d = net(x)
    assert not np.allclose(c.detach().numpy(), d.detach().numpy())
    mb = models.get_model("mobilenet_v2", num_classes=3, width_mult=0.25, stochastic_depth_prob=0.2)
    assert any(getattr(m, "stochastic_depth", None) is not None for m in mb.modules())
    mx = models.get_model("mlp_mixer_cifar", num_blocks=2, drop_path_rate=0.1)
    assert isinstance(mx.blocks[1].drop_path, nn.StochasticDepth)


def test_googlenet_aux_only_in_training():
    net = models.get_model("googlenet", num_classes=4)
    x = pydl.randn(2, 3, 32, 32)
    assert isinstance(net(x), tuple)
    net.eval()
    assert isinstance(net(x), pydl.Tensor)
    assert isinstance(models.get_model("googlenet", num_classes=4, aux_logits=False)(x), pydl.Tensor)


def test_lenet5_learns_a_small_batch():
    """A few Adam steps overfit 16 random images (the seeds' sanity check: loss goes down)."""
    pydl.manual_seed(0)
    net = models.get_model("lenet5")
    x, y = pydl.randn(16, 1, 28, 28), pydl.randint(0, 10, (16,))
    opt = pydl.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


@pytest.mark.parametrize("name", ["pydl.models.lenet", "pydl.models.alexnet", "pydl.models.vgg",
                                  "pydl.models.googlenet", "pydl.models.resnet", "pydl.models.densenet",
                                  "pydl.models.mobilenet", "pydl.models.mlp_mixer"])
def test_docstring_examples(name):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(name), extraglobs={"pydl": pydl, "np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
