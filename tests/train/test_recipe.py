"""The seeds' recipe helpers: initial loss ~ log(C), overfit a small sample, LR range test."""
import math

import numpy as np
import pytest

import pydl
from pydl.data import DataLoader, Spirals
from pydl.models import get_model
from pydl.train import check_initial_loss, lr_range_test, overfit_small_sample


def test_initial_loss_is_about_log_c():
    pydl.manual_seed(0)
    net = get_model("mlp", in_features=2, num_classes=3, hidden=(32,))
    x, y = Spirals().tensors
    r = check_initial_loss(net, pydl.tensor(x), pydl.tensor(y))
    assert r["expected"] == pytest.approx(math.log(3)) and r["ok"]
    # weights far too large: the loss starts far above log(C)
    for p in net.parameters():
        p.data *= 30.0
    assert not check_initial_loss(net, pydl.tensor(x), pydl.tensor(y))["ok"]
    assert net.training


def test_overfit_a_small_sample():
    pydl.manual_seed(0)
    net = get_model("mlp", in_features=2, num_classes=3, hidden=(64,))
    x, y = Spirals().tensors
    idx = np.arange(0, 300, 15)
    r = overfit_small_sample(net, pydl.optim.Adam(net.parameters(), lr=0.02), pydl.tensor(x[idx]),
                             pydl.tensor(y[idx]), steps=300)
    assert r["ok"] and r["accuracy"] == 1.0 and r["losses"][-1] < 0.1 * r["losses"][0]


def test_lr_range_test_restores_the_model_and_suggests_a_rate():
    pydl.manual_seed(0)
    net = get_model("mlp", in_features=2, num_classes=3, hidden=(64,))
    opt = pydl.optim.SGD(net.parameters(), lr=0.123, momentum=0.9)
    before = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    loader = DataLoader(Spirals(), 32, shuffle=True)
    r = lr_range_test(net, opt, loader, start_lr=1e-5, end_lr=10.0, num_iter=100)
    assert 10 < len(r["lrs"]) <= 100 and np.all(np.diff(r["lrs"]) > 0)
    assert r["lrs"][0] == pytest.approx(1e-5)
    assert 1e-5 <= r["suggested_lr"] <= 1.0 and r["min_loss_lr"] == pytest.approx(10 * r["suggested_lr"])
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    assert opt.param_groups[0]["lr"] == 0.123 and not opt.state_dict()["state"]
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_range_test(net, opt, loader, start_lr=1.0, end_lr=0.1)
