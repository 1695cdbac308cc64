"""pydl.utils.summary: the seeds' worked numbers (760 parameters; 64x56x56, 23,296
parameters, 72,855,552 multiply-adds, 784 KB), LeNet-5's shapes from the seeds' table, and
the bookkeeping (batch size, dtype, modes restored, shared layers, several inputs)."""
import numpy as np
import pytest

import pydl
from pydl import models, nn
from pydl.utils import summary


def test_seeds_conv_example_760_parameters():
    s = summary(nn.Conv2d(3, 10, 5, padding=2), (3, 32, 32), verbose=False)
    (row,) = s.layers
    assert row.output_shape == (1, 10, 32, 32)
    assert row.params == 760 == s.total_params
    assert row.mult_adds == 75 * 10 * 32 * 32 == 768_000  # the seeds' 768K


def test_seeds_alexnet_first_layer(capsys):
    s = summary(nn.Conv2d(3, 64, 11, stride=4, padding=2), (3, 227, 227))
    row = s.layers[0]
    assert row.output_shape == (1, 64, 56, 56)
    assert row.params == 23_296
    assert row.mult_adds == 72_855_552 == s.total_mult_adds
    assert row.output_bytes == 802_816 == 784 * 1024
    printed = capsys.readouterr().out
    assert "784.00 KB" in printed and "72,855,552" in printed and "23,296" in printed
    assert str(s) in printed


def test_alexnet_model_summary_first_row():
    s = summary(models.get_model("alexnet"), (3, 227, 227), verbose=False)
    first = s["features.0"]
    assert (first.type, first.output_shape, first.params, first.mult_adds, first.output_bytes) == \
        ("Conv2d", (1, 64, 56, 56), 23_296, 72_855_552, 802_816)
    assert s.total_params == 61_100_840
    assert s.layers[-1].output_shape == (1, 1000)


def test_lenet5_shapes_are_the_seeds_table():
    s = summary(models.get_model("lenet5"), (1, 28, 28), verbose=False)
    got = [(r.name, r.output_shape[1:]) for r in s.layers]
    assert got == [("conv1", (20, 28, 28)), ("relu1", (20, 28, 28)), ("pool1", (20, 14, 14)),
                   ("conv2", (50, 14, 14)), ("relu2", (50, 14, 14)), ("pool2", (50, 7, 7)),
                   ("flatten", (2450,)), ("fc1", (500,)), ("relu3", (500,)), ("fc2", (10,))]
    params = {r.name: r.params for r in s.layers}
    assert params["conv1"] == 20 * 25 + 20 and params["conv2"] == 50 * 20 * 25 + 50
    assert params["fc1"] == 2450 * 500 + 500 and params["fc2"] == 500 * 10 + 10
    assert s.total_params == s.trainable_params == sum(params.values()) == 1_256_080
    assert s["conv1"].mult_adds == 20 * 28 * 28 * 25 and s["fc1"].mult_adds == 2450 * 500
    assert s.param_bytes == 1_256_080 * 4 and s.input_bytes == 28 * 28 * 4


def test_batch_size_and_dtype_scale_the_numbers():
    net = models.get_model("lenet5")
    one = summary(net, (1, 28, 28), verbose=False)
    four = summary(net, (1, 28, 28), dtype=pydl.float64, batch_size=4, verbose=False)
    assert four.layers[0].output_shape == (4, 20, 28, 28)
    assert four.total_mult_adds == 4 * one.total_mult_adds
    assert four.total_output_bytes == 8 * one.total_output_bytes  # 4 images x 8-byte floats
    assert four.total_params == one.total_params


def test_modes_and_running_statistics_are_left_alone():
    net = models.get_model("resnet18_cifar", num_classes=3)
    net.layer1.eval()
    before = net.bn1.running_mean.numpy().copy()
    s = summary(net, (3, 16, 16), verbose=False)
    assert net.training and net.conv1.training and not net.layer1.training and not net.layer1[0].bn1.training
    np.testing.assert_array_equal(net.bn1.running_mean.numpy(), before)
    assert int(net.bn1.num_batches_tracked) == 0
    # the block's ReLU runs twice: two rows, parameters counted once; totals are the model's
    assert sum(1 for r in s.layers if r.name == "layer1.0.relu") == 2
    assert sum(r.params for r in s.layers) == s.total_params == sum(p.numel() for p in net.parameters())
    assert s.layers[-1].output_shape == (1, 3)


def test_transposed_conv_and_frozen_parameters():
    up = nn.Sequential(nn.ConvTranspose2d(4, 2, 3, stride=2), nn.BatchNorm2d(2))
    up[1].requires_grad_(False)
    s = summary(up, (4, 5, 5), verbose=False)
    assert s.layers[0].output_shape == (1, 2, 11, 11)
    assert s.layers[0].mult_adds == 4 * 5 * 5 * 2 * 9  # every input pixel scatters a 2x3x3 filter
    assert s.trainable_params == s.total_params - 4


def test_several_inputs_and_tuple_outputs():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 4), nn.Linear(5, 4)
            self.pool = nn.MaxPool2d(2, return_indices=True)

        def forward(self, x, y):
            out, _ = self.pool(pydl.ones(1, 1, 4, 4))
            return self.a(x) + self.b(y) + out.sum()

    s = summary(Two(), [(3,), (5,)], batch_size=2, verbose=False)
    assert [r.output_shape for r in s.layers] == [((1, 1, 2, 2), (1, 1, 2, 2)), (2, 4), (2, 4)]
    assert s.total_mult_adds == 2 * 4 * 3 + 2 * 4 * 5
    s2 = summary(Two(), input_data=(pydl.ones(1, 3), pydl.ones(1, 5)), verbose=False)
    assert s2["a"].output_shape == (1, 4)


def test_errors():
    with pytest.raises(TypeError, match="Module"):
        summary(lambda x: x, (3,))
    with pytest.raises(ValueError, match="input_size"):
        summary(nn.Linear(2, 2))
    with pytest.raises(KeyError):
        summary(nn.Linear(2, 2), (2,), verbose=False)["nope"]


def test_googlenet_summary_runs_in_eval_mode():
    net = models.get_model("googlenet", num_classes=10)
    s = summary(net, (3, 64, 64), verbose=False)
    assert not any(r.name.startswith("aux") for r in s.layers)  # eval: no auxiliary heads
    assert net.training and s.layers[-1].output_shape == (1, 10)


def test_docstring_examples():
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module("pydl.utils.summary"), extraglobs={"pydl": pydl, "np": np},
                             optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0


class SeedsTransformerBlock(nn.Module):
    """The cheat sheet's exercise: one self-attention layer (queries, keys and values, each a
    D x D projection) and one MLP layer (D x D); biases and layer norms excluded."""

    def __init__(self, d):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.mlp = nn.Linear(d, d, bias=False)

    def forward(self, x):
        q, k, v = self.query(x), self.key(x), self.value(x)
        y = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.mlp(y)


def _weights_without_biases_and_norms(s, model):
    norms = {name for name, m in model.named_modules() if isinstance(m, nn.LayerNorm)}
    total = s.total_params
    for name, p in model.named_parameters():
        if name.endswith("bias") or name.rsplit(".", 1)[0] in norms:
            total -= p.numel()
    return total


@pytest.mark.parametrize("d", [8, 32])
def test_seeds_transformer_block_has_4_d_squared_parameters(d):
    block = SeedsTransformerBlock(d)
    s = summary(block, (5, d), verbose=False)  # 5 tokens of dimension D
    assert s.total_params == 4 * d * d


@pytest.mark.parametrize("d", [8, 32])
def test_standard_transformer_block_has_12_d_squared_weights(d):
    # Q, K, V and the output projection (4 D^2) plus an MLP of width 4D (8 D^2).
    block = nn.TransformerEncoderLayer(d, 2, dim_feedforward=4 * d, batch_first=True)
    s = summary(block, (5, d), verbose=False)
    assert _weights_without_biases_and_norms(s, block) == 12 * d * d
