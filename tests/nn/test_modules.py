"""pydl.nn modules: registration, state_dict with PyTorch's keys, strict loading,
containers, repr, and the layers Linear, Embedding, Dropout, Maxout, Flatten."""
import copy
import math
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import pydl
import pydl.nn as nn
from pydl.autograd import gradcheck


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.act = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Sequential(nn.Linear(3, 3), nn.Tanh())])
        self.heads = nn.ModuleDict({"a": nn.Linear(3, 2), "b": nn.Linear(3, 1, bias=False)})
        self.scale = nn.Parameter(pydl.ones(1))
        self.register_buffer("running", pydl.zeros(3))
        self.register_buffer("scratch", pydl.zeros(2), persistent=False)

    def forward(self, x):
        h = self.act(self.fc1(x))
        for b in self.blocks:
            h = b(h)
        return self.heads["a"](h) * self.scale


KEYS = ["scale", "running", "fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.0.weight",
        "blocks.1.0.bias", "heads.a.weight", "heads.a.bias", "heads.b.weight"]


def test_state_dict_keys_like_pytorch():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict) and list(sd) == KEYS
    assert "scratch" not in sd  # non-persistent buffer
    assert all(not v.requires_grad for v in sd.values())
    assert np.shares_memory(sd["fc1.weight"].data, net.fc1.weight.data)
    names = [n for n, _ in net.named_parameters()]
    assert names == ["scale"] + [k for k in KEYS[2:]]
    assert [n for n, _ in net.named_buffers()] == ["running", "scratch"]
    assert len(list(net.parameters())) == 10 and len(list(net.buffers())) == 2
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "blocks", "heads"]
    assert [n for n, _ in net.named_modules()][:4] == ["", "fc1", "act", "blocks"]
    assert "blocks.1.0" in dict(net.named_modules())
    assert net.get_submodule("blocks.1.0") is net.blocks[1][0]
    assert net.get_parameter("heads.a.bias") is net.heads["a"].bias
    assert net.state_dict(keep_vars=True)["scale"] is net.scale


def test_load_state_dict_round_trip():
    a, b = Net(), Net()
    b.running.data[...] = 5
    result = a.load_state_dict(b.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), b.state_dict()[k].numpy())
    assert a.running.tolist() == [5.0] * 3
    # arrays work as values too; parameters keep their identity
    w = a.fc1.weight
    a.load_state_dict({k: v.numpy() for k, v in b.state_dict().items()})
    assert a.fc1.weight is w


def test_load_state_dict_strict_errors_leave_model_unchanged():
    a, b = Net(), Net()
    before = {k: v.numpy().copy() for k, v in a.state_dict().items()}
    sd = b.state_dict()
    del sd["fc1.bias"]
    sd["extra.weight"] = pydl.ones(1)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "fc1.bias"') as e:
        a.load_state_dict(sd)
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in str(e.value)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    res = a.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["extra.weight"]
    np.testing.assert_array_equal(a.fc1.weight.detach().numpy(), b.fc1.weight.detach().numpy())


def test_load_state_dict_shape_mismatch_lists_all_and_changes_nothing():
    a = Net()
    before = {k: v.numpy().copy() for k, v in a.state_dict().items()}
    sd = Net().state_dict()
    sd["fc1.weight"] = pydl.ones(3, 5)
    sd["heads.a.bias"] = pydl.ones(7)
    for strict in (True, False):
        with pytest.raises(RuntimeError) as e:
            a.load_state_dict(sd, strict=strict)
        msg = str(e.value)
        assert "size mismatch for fc1.weight: copying a param with shape (3, 5)" in msg
        assert "the shape in current model is (3, 4)" in msg and "size mismatch for heads.a.bias" in msg
        for k, v in a.state_dict().items():
            np.testing.assert_array_equal(v.numpy(), before[k])


def test_setattr_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(pydl.ones(2))
    m.sub = nn.Linear(1, 1)
    m.plain = pydl.ones(2)  # a plain tensor is an attribute, not a buffer
    assert [n for n, _ in m.named_parameters()] == ["w", "sub.weight", "sub.bias"]
    assert "plain" not in m.state_dict()
    with pytest.raises(TypeError, match="parameter"):
        m.w = pydl.ones(2)
    m.w = None
    assert m.w is None and [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
    m.register_buffer("b", pydl.ones(1))
    m.b = pydl.zeros(1)
    assert m.state_dict()["b"].tolist() == [0.0]
    del m.b
    assert "b" not in m.state_dict()
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(pydl.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()


def test_shared_parameters_counted_once():
    lin = nn.Linear(2, 2)
    net = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(net.parameters())) == 2
    assert list(net.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_train_eval_zero_grad_apply_requires_grad():
    net = Net()
    assert net.training and net.blocks[1][0].training
    net.eval()
    assert not net.training and not net.blocks[1][0].training
    net.train()
    assert net.heads["a"].training
    net(pydl.ones(2, 4)).sum().backward()
    assert all(p.grad is not None for p in [net.fc1.weight, net.scale])
    net.zero_grad(set_to_none=False)
    assert net.fc1.weight.grad.numpy().sum() == 0
    net.zero_grad()
    assert net.fc1.weight.grad is None
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 5
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_to_dtype_keeps_parameter_objects():
    net = Net()
    w = net.fc1.weight
    net.to(pydl.float64)
    assert net.fc1.weight is w and w.dtype == pydl.float64 and net.running.dtype == pydl.float64
    assert net(pydl.ones(2, 4, dtype=pydl.float64)).dtype == pydl.float64
    net.float()
    assert w.dtype == pydl.float32
    with pytest.raises(TypeError, match="floating point"):
        net.to(pydl.int64)


def test_repr_like_pytorch():
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Dropout(0.1), nn.Linear(3, 1, bias=False)))
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): Dropout(p=0.1, inplace=False)\n"
        "    (1): Linear(in_features=3, out_features=1, bias=False)\n"
        "  )\n"
        ")")
    assert repr(nn.Embedding(10, 3, padding_idx=0)) == "Embedding(10, 3, padding_idx=0)"
    assert repr(nn.LeakyReLU(0.1)) == "LeakyReLU(negative_slope=0.1)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear) and isinstance(seq[1:], nn.Sequential)
    assert len(seq[1:]) == 2
    seq.append(nn.Sigmoid())
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"] and len(seq) == 4
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["fc.weight", "fc.bias"] and named.fc is named[0]
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.Linear(1, 1))
    ml.extend([nn.ReLU()])
    ml.insert(0, nn.Tanh())
    assert [type(m).__name__ for m in ml] == ["Tanh", "Linear", "Linear", "ReLU"]
    assert list(ml.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    del ml[0]
    assert list(ml.state_dict())[0] == "0.weight"
    with pytest.raises(IndexError):
        ml[10]
    md = nn.ModuleDict({"b": nn.Linear(1, 1)})
    md["a"] = nn.ReLU()
    assert list(md.keys()) == ["b", "a"] and "a" in md and len(md) == 2
    assert md.pop("a").__class__ is nn.ReLU


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    seen = []
    h = lin.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    lin(pydl.ones(3, 2))
    h.remove()
    lin(pydl.ones(3, 2))
    assert seen == [(3, 2)]


def test_deepcopy_and_pickle():
    net = Net()
    twin = copy.deepcopy(net)
    assert twin.fc1.weight is not net.fc1.weight
    np.testing.assert_array_equal(twin.fc1.weight.numpy(force=True), net.fc1.weight.numpy(force=True))
    assert isinstance(twin.fc1.weight, nn.Parameter) and twin.fc1.weight.requires_grad
    back = pickle.loads(pickle.dumps(net))
    assert list(back.state_dict()) == KEYS


# --------------------------------------------------------------------- layers
def test_linear_default_init_and_forward(rng):
    pydl.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w = lin.weight.detach().numpy()
    assert w.shape == (300, 400) and lin.bias.shape == (300,)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound  # U(-1/sqrt(in), 1/sqrt(in))
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound
    assert np.abs(lin.bias.detach().numpy()).max() <= bound
    x = rng.standard_normal((5, 400)).astype(np.float32)
    out = lin(pydl.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), x @ w.T + lin.bias.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert nn.Linear(3, 2, bias=False).bias is None
    assert nn.Linear(3, 2, dtype=pydl.float64).weight.dtype == pydl.float64


def test_linear_gradcheck_through_module():
    lin = nn.Linear(3, 2).double()
    x = pydl.randn(4, 3, dtype=pydl.float64, requires_grad=True)
    assert gradcheck(lambda a, w, b: nn.functional.linear(a, w, b), (x, lin.weight, lin.bias))


def test_embedding_module():
    pydl.manual_seed(1)
    emb = nn.Embedding(10, 4, padding_idx=3)
    assert emb.weight.detach().numpy()[3].tolist() == [0.0] * 4
    w = emb.weight.detach().numpy()
    assert abs(w.std() - 1) < 0.5
    out = emb(pydl.tensor([[1, 3, 1]]))
    assert out.shape == (1, 3, 4)
    out.sum().backward()
    assert emb.weight.grad.numpy()[:, 0].tolist() == [0, 2, 0, 0, 0, 0, 0, 0, 0, 0]
    pre = nn.Embedding.from_pretrained(pydl.ones(2, 3))
    assert not pre.weight.requires_grad and pre(pydl.tensor([1])).tolist() == [[1.0, 1.0, 1.0]]


def test_dropout_module_train_eval():
    drop = nn.Dropout(0.5)
    x = pydl.ones(1000)
    assert (drop(x).numpy() == 0).any()
    drop.eval()
    assert drop(x) is x


def test_flatten_unflatten_identity():
    x = pydl.ones(2, 3, 4)
    assert nn.Flatten()(x).shape == (2, 12) and nn.Flatten(0)(x).shape == (24,)
    assert nn.Unflatten(1, (3, 1))(pydl.ones(2, 3)).shape == (2, 3, 1)
    assert nn.Identity(5, foo=1)(x) is x


def test_maxout_module():
    m = nn.Maxout(3, 2, num_pieces=3).double()
    x = pydl.randn(4, 3, dtype=pydl.float64)
    pieces = x.numpy() @ m.weight.detach().numpy().T + m.bias.detach().numpy()
    np.testing.assert_allclose(m(x).detach().numpy(), pieces.reshape(4, 2, 3).max(-1))
    assert gradcheck(lambda a, w, b: nn.functional.maxout(nn.functional.linear(a, w, b), 3, dim=-1),
                     (x.requires_grad_(), m.weight, m.bias))
    assert list(m.state_dict()) == ["weight", "bias"] and m.weight.shape == (6, 3)
