"""GPU tensors: device moves, creation on a device, every op family on GPU tensors against
the same op on the CPU, mixing-device errors, modules, optimizers, a whole LeNet5 training
step, the Trainer and checkpoints on the GPU.

Tests marked ``cuda`` need a device with CuPy and are skipped, with the reason, elsewhere.
The rest run everywhere: device parsing, the errors that name why CUDA cannot run, the
array-module helpers on NumPy, and the mixing check. CuPy is never imported at collection.
"""
import re
import subprocess
import sys

import numpy as np
import pytest
from parity import assert_close

import pydl
import pydl.models  # noqa: F401  (pydl.models.get_model)
import pydl.nn.functional as F
from pydl import _device, nn

USABLE, WHY = pydl.cuda.status()


def needs_gpu(test):
    return pytest.mark.cuda(pytest.mark.skipif(not USABLE, reason=WHY)(test))


no_cuda_here = pytest.mark.skipif(USABLE, reason="CUDA can run here: the refusal paths are not taken")


# ------------------------------------------------------------------ everywhere
@pytest.mark.parametrize("spec, kind, index", [("cpu", "cpu", None), ("cuda", "cuda", None), ("cuda:1", "cuda", 1)])
def test_device_parsing(spec, kind, index):
    d = pydl.device(spec)
    assert (d.type, d.index) == (kind, index) and d == spec


@pytest.mark.parametrize("bad", ["tpu", "gpu", "cuda0", ""])
def test_unknown_devices_are_refused_by_tensors_and_modules(bad):
    with pytest.raises(ValueError, match="expected 'cpu' or 'cuda"):
        pydl.ones(2).to(bad)
    with pytest.raises(ValueError, match="expected 'cpu' or 'cuda"):
        nn.Linear(2, 2).to(bad)
    with pytest.raises(ValueError, match="expected 'cpu' or 'cuda"):
        pydl.zeros(2, device=bad)


@no_cuda_here
@pytest.mark.parametrize("make, where", [
    (lambda: pydl.ones(2).to("cuda"), "to('cuda')"),
    (lambda: pydl.ones(2).cuda(), "to('cuda')"),
    (lambda: pydl.tensor([1.0], device="cuda"), "to('cuda')"),
    (lambda: pydl.zeros(2, 3, device="cuda"), "zeros(device='cuda')"),
    (lambda: pydl.full((2,), 1.5, device="cuda"), "full(device='cuda')"),
    (lambda: pydl.arange(4, device="cuda"), "arange(device='cuda')"),
    (lambda: pydl.randn(3, device="cuda"), "randn(device='cuda')"),
    (lambda: pydl.randint(0, 5, (3,), device="cuda"), "randint(device='cuda')"),
    (lambda: pydl.zeros_like(pydl.ones(2), device="cuda"), "zeros(device='cuda')"),
])
def test_cuda_requests_say_why_cuda_cannot_run(make, where):
    with pytest.raises(RuntimeError) as e:
        make()
    assert where in str(e.value) and "CUDA is not available here: " + WHY in str(e.value)


@no_cuda_here
def test_cuda_module_functions_without_cuda():
    assert pydl.cuda.device_count() == 0 and not pydl.cuda.is_available()
    with pytest.raises(RuntimeError, match="synchronize: CUDA is not available here: " + re.escape(WHY)):
        pydl.cuda.synchronize()


@no_cuda_here
def test_module_to_cuda_says_why_and_leaves_the_module_on_the_cpu():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    with pytest.raises(RuntimeError, match=r"Module.to\('cuda'\): CUDA is not available here: "):
        model.cuda()
    assert all(p.device == "cpu" for p in model.parameters())
    assert all(b.device == "cpu" for b in model.buffers())


@no_cuda_here
def test_trainer_on_cuda_says_why():
    from pydl.train import Trainer

    model = nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="CUDA is not available here"):
        Trainer(model, pydl.optim.SGD(model.parameters(), lr=0.1), device="cuda", progress=False)


@no_cuda_here
def test_pydl_train_device_cuda_is_refused_with_the_reason(capsys):
    from pydl.cli import main

    with pytest.raises(SystemExit) as e:
        main(["train", "mlp", "--data", "spirals", "--epochs", "1", "--device", "cuda", "--quiet"])
    assert e.value.code == 2
    assert "--device cuda: CUDA is not available here: " + WHY in capsys.readouterr().err


def test_trainer_device_cpu_is_accepted_and_moves_nothing():
    from pydl.train import Trainer

    model = nn.Linear(2, 2)
    t = Trainer(model, pydl.optim.SGD(model.parameters(), lr=0.1), device="cpu", progress=False)
    assert t.device == "cpu" and t.model is model


def test_array_module_and_moves_on_numpy():
    a = np.arange(6.0).reshape(2, 3)
    assert _device.array_module(a) is np and _device.array_module(np.float32(1)) is np
    assert _device.array_module(3.0) is np
    assert _device.device_name(a) == "cpu" and _device.device_name(1) == "cpu"
    assert _device.to_device(a, "cpu") is a
    on = _device.asarray_on(a, [1, 2], dtype=np.int64)
    assert on.__class__ is np.ndarray and on.dtype == np.int64


def test_add_at_accumulates_repeated_indices_like_numpy():
    target = np.zeros(4)
    _device.add_at(target, np.array([0, 2, 2, 3, 2]), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    np.testing.assert_array_equal(target, [1.0, 0.0, 10.0, 4.0])


class _StandInGpuArray:
    """Only what the mixing check reads of a CuPy array: its class's module, a shape, and a
    TypeError from NumPy ufuncs (CuPy's answer to a NumPy operand). Not a GPU."""

    __module__ = "cupy._core.core"
    __cuda_array_interface__ = {}

    def __init__(self, shape):
        self.shape, self.ndim, self.dtype = shape, len(shape), np.dtype(np.float32)

    def __array_ufunc__(self, *args, **kwargs):
        raise TypeError("Unsupported type <class 'numpy.ndarray'>")


def test_check_same_device_names_the_op_and_both_devices():
    gpu = _StandInGpuArray((2,))
    _device.check_same_device("add", np.ones(2), None, 2.0, np.float32(1))  # numbers go with anything
    _device.check_same_device("add", gpu, 2.0, None)
    with pytest.raises(RuntimeError, match=r"^conv2d: Expected all tensors to be on the same device, but found at "
                                           r"least two devices, cpu and cuda!$"):
        _device.check_same_device("conv2d", np.ones(2), None, gpu)
    with pytest.raises(RuntimeError, match="cuda and cpu"):
        _device.check_same_device("linear", gpu, np.ones(2))


@pytest.mark.parametrize("op, name", [(lambda a, b: a + b, "add"), (lambda a, b: a * b, "multiply"),
                                      (lambda a, b: a - b, "subtract"), (lambda a, b: a / b, "divide"),
                                      (lambda a, b: a == b, "equal"), (pydl.maximum, "maximum")])
def test_a_binary_op_on_two_devices_raises_the_named_runtime_error(op, name):
    # The array library's TypeError (what CuPy raises for a NumPy operand) becomes the error
    # naming the op and the devices; a TypeError between two CPU arrays stays a TypeError.
    cpu, gpu = pydl.ones(2), pydl.Tensor(_StandInGpuArray((2,)))
    assert gpu.device == "cuda"
    with pytest.raises(RuntimeError, match=f"{name}: Expected all tensors to be on the same device"):
        op(cpu, gpu)


def test_matmul_and_linear_check_devices_before_any_kernel():
    cpu, gpu = pydl.ones(2, 2), pydl.Tensor(_StandInGpuArray((2, 2)))
    with pytest.raises(RuntimeError, match="matmul: Expected all tensors to be on the same device"):
        cpu @ gpu
    with pytest.raises(RuntimeError, match="linear: Expected all tensors to be on the same device"):
        F.linear(cpu, gpu)


def test_manual_seed_and_import_do_not_import_cupy(tmp_path):
    code = ("import sys, pydl; pydl.manual_seed(3); pydl.randn(2); pydl.nn.Linear(2, 2).to('cpu'); "
            "print('cupy' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"


def test_like_and_new_functions_keep_the_device_and_dtype_on_the_cpu():
    x = pydl.ones(2, 3, dtype=pydl.float64)
    for t in (pydl.zeros_like(x), pydl.ones_like(x), pydl.full_like(x, 2.0), pydl.randn_like(x),
              x.new_zeros(4), x.new_ones(1, 2), x.new_full((2,), 3.0), x.new_tensor([1, 2])):
        assert t.device == "cpu" and t.dtype == pydl.float64


def test_box_ops_check_devices_before_any_kernel():
    from pydl.vision import ops

    cpu, gpu = np.zeros((3, 4), np.float32), _StandInGpuArray((3, 4))
    with pytest.raises(RuntimeError, match="box_iou: Expected all tensors to be on the same device"):
        ops.box_iou(cpu, gpu)
    with pytest.raises(RuntimeError, match="nms: Expected all tensors to be on the same device"):
        ops.nms(cpu, _StandInGpuArray((3,)), 0.5)
    features = pydl.zeros(1, 2, 4, 4)
    with pytest.raises(RuntimeError, match="roi_align: Expected all tensors to be on the same device"):
        ops.roi_align(features, _StandInGpuArray((1, 5)), 2)


# ------------------------------------------------------------------ on a GPU
def _cp():
    import cupy

    return cupy


def _pair(shape, seed=0, positive=False, requires_grad=True):
    """The same random float32 values as a CPU leaf and a GPU leaf."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if positive:
        a = np.abs(a) + 0.5
    cpu = pydl.tensor(a, requires_grad=requires_grad)
    gpu = pydl.tensor(a, device="cuda", requires_grad=requires_grad)
    return cpu, gpu


def _assert_same(got_gpu, want_cpu, what, rtol=1e-4, atol=1e-5):
    """A GPU result equal to the CPU one: floats to tolerance, integers exactly."""
    assert got_gpu.device == "cuda", f"{what}: result is on {got_gpu.device}"
    want = want_cpu.detach().numpy()
    if want.dtype.kind == "f":
        assert_close(got_gpu.data, want.astype(np.float64), want.dtype, rtol=rtol, atol=atol, what=what)
    else:
        np.testing.assert_array_equal(got_gpu.data.get(), want, err_msg=what)


@needs_gpu
def test_cuda_module_functions_on_a_gpu():
    assert pydl.cuda.device_count() >= 1
    pydl.ones(3, device="cuda").sum()
    pydl.cuda.synchronize()


@needs_gpu
def test_moves_there_and_back_keep_values_dtype_and_gradients():
    cpu, _ = _pair((3, 4), requires_grad=True)
    gpu = cpu.to("cuda")
    assert gpu.device == "cuda" and gpu.is_cuda and isinstance(gpu.data, _cp().ndarray) and gpu.dtype == cpu.dtype
    back = gpu.cpu()
    assert back.device == "cpu" and back.data.__class__ is np.ndarray
    np.testing.assert_array_equal(back.detach().numpy(), cpu.detach().numpy())
    (gpu * 2).sum().backward()
    assert cpu.grad.device == "cpu"
    np.testing.assert_array_equal(cpu.grad.numpy(), np.full((3, 4), 2.0, np.float32))
    assert gpu.to("cuda") is gpu and cpu.to("cpu") is cpu
    assert "device='cuda'" in repr(gpu)


@needs_gpu
def test_creation_on_the_gpu_and_like_functions_keep_the_device():
    cp = _cp()
    made = [pydl.zeros(2, 3, device="cuda"), pydl.ones(2, device="cuda"), pydl.full((2,), 7, device="cuda"),
            pydl.arange(5, device="cuda"), pydl.eye(3, device="cuda"), pydl.empty(4, device="cuda"),
            pydl.randn(3, device="cuda"), pydl.rand(3, device="cuda"), pydl.randint(0, 9, (4,), device="cuda"),
            pydl.randperm(6, device="cuda"), pydl.tensor([[1, 2]], device="cuda")]
    for t in made:
        assert isinstance(t.data, cp.ndarray), t
    np.testing.assert_array_equal(pydl.arange(5, device="cuda").cpu().numpy(), np.arange(5))
    assert pydl.full((2,), 7, device="cuda").dtype == pydl.int64
    x = pydl.ones(2, 3, device="cuda")
    for t in (pydl.zeros_like(x), pydl.ones_like(x), pydl.full_like(x, 2.0), pydl.randn_like(x), pydl.rand_like(x),
              x.new_zeros(4), x.new_ones(2), x.new_full((2,), 3.0), x.new_tensor([1.0, 2.0])):
        assert t.device == "cuda", t
    assert pydl.zeros_like(x, device="cpu").device == "cpu"


@needs_gpu
def test_manual_seed_makes_gpu_draws_reproducible():
    pydl.manual_seed(5)
    a = pydl.randn(100, device="cuda").cpu().numpy()
    d1 = F.dropout(pydl.ones(100, device="cuda"), 0.5).cpu().numpy()
    pydl.manual_seed(5)
    b = pydl.randn(100, device="cuda").cpu().numpy()
    d2 = F.dropout(pydl.ones(100, device="cuda"), 0.5).cpu().numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(d1, d2)
    assert set(np.unique(d1)) <= {0.0, 2.0} and 20 < np.count_nonzero(d1) < 80


def _idx(*values, device):
    return pydl.tensor(list(values), device=device)


# (name, fn(*tensors, device) -> Tensor, input shapes, positive inputs)
OPS = [
    ("add", lambda a, b, d: a + b, [(3, 4), (4,)], False),
    ("sub", lambda a, b, d: a - b, [(3, 4), (3, 1)], False),
    ("mul", lambda a, b, d: a * b * 2.0, [(3, 4), (3, 4)], False),
    ("div", lambda a, b, d: a / b, [(3, 4), (3, 4)], True),
    ("pow", lambda a, d: a ** 3 + 2.0 ** a, [(5,)], False),
    ("maximum", lambda a, b, d: pydl.maximum(a, b), [(6,), (6,)], False),
    ("unary", lambda a, d: (a.exp() + a.abs().log() + a.tanh() + a.sigmoid() + a.relu() + a.sqrt()), [(7,)], True),
    ("clamp", lambda a, d: a.clamp(-0.5, 0.5), [(9,)], False),
    ("reductions", lambda a, d: a.sum(1) + a.mean(1) + a.max(1)[0] + a.var(1) + a.logsumexp(1), [(4, 5)], False),
    ("amax_all", lambda a, d: a.max() + a.min() + a.sum(), [(4, 5)], False),
    ("argmax", lambda a, d: a.argmax(1), [(4, 5)], False),
    ("shape", lambda a, d: a.permute(1, 0).reshape(-1, 2).transpose(0, 1).contiguous()[:, 1:4].flip(1),
     [(4, 5)], False),
    ("cat_stack", lambda a, b, d: pydl.cat([a, b], 0).sum(0) + pydl.stack([a, b], 2).mean(2).sum(0),
     [(2, 3), (2, 3)], False),
    ("index", lambda a, d: a[_idx(0, 2, 2, device=d)] * 1.5 + a[:, _idx(1, 1, device=d)].sum(1, keepdim=True),
     [(3, 4)], False),
    ("gather", lambda a, d: a.gather(1, pydl.tensor([[0, 0], [1, 3], [2, 2]], device=d)), [(3, 4)], False),
    ("where", lambda a, b, d: pydl.where(a > 0, a, b) + a.masked_fill(a < 0, 0.0), [(3, 4), (3, 4)], False),
    ("matmul", lambda a, b, d: a @ b, [(5, 7), (7, 3)], False),
    ("bmm", lambda a, b, d: a @ b, [(2, 5, 7), (7, 3)], False),
    ("linear", lambda x, w, b, d: F.linear(x, w, b), [(4, 6), (3, 6), (3,)], False),
    ("conv2d", lambda x, w, b, d: F.conv2d(x, w, b, stride=2, padding=1), [(2, 3, 9, 9), (4, 3, 3, 3), (4,)],
     False),
    ("pools", lambda x, d: F.max_pool2d(x, 2) .sum() + F.avg_pool2d(x, 2).sum() + F.adaptive_avg_pool2d(x, 1).sum(),
     [(2, 3, 8, 8)], False),
    ("batch_norm", lambda x, w, b, d: F.batch_norm(x, None, None, w, b, training=True), [(4, 3, 5, 5), (3,), (3,)],
     False),
    ("layer_group_norm", lambda x, d: F.layer_norm(x, (5,)).sum(1) + F.group_norm(x.reshape(2, 4, 5), 2).sum(1),
     [(2, 4, 5)], False),
    ("softmax", lambda x, d: F.softmax(x, 1) * 3 + F.log_softmax(x, 1), [(4, 10)], False),
    ("cross_entropy", lambda x, d: F.cross_entropy(x, _idx(1, 0, 9, 3, device=d), label_smoothing=0.1), [(4, 10)],
     False),
    ("nll_mse", lambda x, t, d: F.nll_loss(F.log_softmax(x, 1), _idx(2, 1, 0, device=d)) + F.mse_loss(x, t),
     [(3, 4), (3, 4)], False),
    ("bce", lambda x, d: F.binary_cross_entropy_with_logits(x, (x > 0).float()), [(3, 4)], False),
    ("activations", lambda x, d: F.gelu(x) + F.leaky_relu(x, 0.1) + F.elu(x) + F.silu(x) + F.softplus(x), [(8,)],
     False),
    ("embedding", lambda w, d: F.embedding(_idx(0, 3, 3, 1, device=d), w), [(5, 4)], False),
    ("attention", lambda q, k, v, d: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     [(1, 2, 6, 4), (1, 2, 6, 4), (1, 2, 6, 4)], False),
    ("upsample_pad", lambda x, d: F.interpolate(F.pad(x, (1, 1, 1, 1)), scale_factor=2, mode="bilinear",
                                                align_corners=False), [(1, 2, 3, 3)], False),
]


@needs_gpu
@pytest.mark.parametrize("name, fn, shapes, positive", OPS, ids=[o[0] for o in OPS])
def test_op_family_on_gpu_tensors_matches_the_cpu(name, fn, shapes, positive):
    pairs = [_pair(s, seed=i, positive=positive) for i, s in enumerate(shapes)]
    cpu_out = fn(*[c for c, _ in pairs], "cpu")
    gpu_out = fn(*[g for _, g in pairs], "cuda")
    _assert_same(gpu_out, cpu_out, f"{name} forward", rtol=2e-4, atol=2e-5)
    if cpu_out.dtype.kind != "f" or not cpu_out.requires_grad:
        return
    weights = np.random.default_rng(99).standard_normal(cpu_out.shape).astype(np.float32)
    (cpu_out * pydl.tensor(weights)).sum().backward()
    (gpu_out * pydl.tensor(weights, device="cuda")).sum().backward()
    for i, (c, g) in enumerate(pairs):
        assert (c.grad is None) == (g.grad is None), f"{name}: gradient {i}"
        if c.grad is not None:
            _assert_same(g.grad, c.grad, f"{name} gradient of input {i}", rtol=2e-4, atol=2e-5)


@needs_gpu
@pytest.mark.parametrize("op, name", [
    (lambda c, g: c + g, "add"), (lambda c, g: g * c, "multiply"), (lambda c, g: c @ g, "matmul"),
    (lambda c, g: F.linear(g, c), "linear"), (lambda c, g: F.layer_norm(g, (4,), weight=c[0]), "layer_norm"),
    (lambda c, g: F.cross_entropy(g, pydl.tensor([0, 1, 2, 3])), "cross_entropy"),
    (lambda c, g: pydl.where(g > 0, c, g), "where"),
])
def test_mixing_devices_raises_naming_the_op(op, name):
    c, g = pydl.ones(4, 4), pydl.ones(4, 4, device="cuda")
    with pytest.raises(RuntimeError, match=f"{name}: Expected all tensors to be on the same device, but found at "
                                           f"least two devices"):
        op(c, g)


def _lenet_pair(seed=0):
    pydl.manual_seed(seed)
    cpu = pydl.models.get_model("lenet5")
    gpu = pydl.models.get_model("lenet5")
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu.to("cuda")


@needs_gpu
# Adam's first steps move every weight by about lr * sign(g): with the default eps a gradient
# that cancels to ~0 could flip sign between the devices' summation orders; eps=1e-3 keeps
# the update continuous in g, so equal-to-tolerance gradients give equal-to-tolerance weights.
@pytest.mark.parametrize("make_opt", [lambda p: pydl.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-4),
                                      lambda p: pydl.optim.Adam(p, lr=1e-3, eps=1e-3)], ids=["sgd", "adam"])
def test_lenet5_training_steps_are_equal_on_cpu_and_gpu(make_opt):
    cpu, gpu = _lenet_pair()
    assert all(p.device == "cuda" for p in gpu.parameters())
    opt_c, opt_g = make_opt(cpu.parameters()), make_opt(gpu.parameters())
    rng = np.random.default_rng(0)
    for step in range(2):
        x = rng.standard_normal((16, 1, 28, 28)).astype(np.float32)
        y = rng.integers(0, 10, 16)
        losses = []
        for model, opt, dev in ((cpu, opt_c, "cpu"), (gpu, opt_g, "cuda")):
            loss = F.cross_entropy(model(pydl.tensor(x, device=dev)), pydl.tensor(y, device=dev))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert abs(losses[0] - losses[1]) <= 1e-4 * max(1.0, abs(losses[0])), (step, losses)
    for (name, pc), (_, pg) in zip(cpu.named_parameters(), gpu.named_parameters()):
        assert pg.device == "cuda"
        assert_close(pg.data, pc.data.astype(np.float64), np.float32, rtol=1e-3, atol=1e-5, what=name)


@needs_gpu
def test_module_cuda_then_cpu_round_trip_and_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU())
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    model.cuda()
    assert all(b.device == "cuda" for b in model.buffers())
    model(pydl.randn(2, 1, 5, 5, device="cuda"))  # running statistics updated on the GPU
    model.cpu()
    after = model.state_dict()
    assert all(v.device == "cpu" for v in after.values())
    assert not np.allclose(after["1.running_mean"].numpy(), before["1.running_mean"])


@needs_gpu
def test_trainer_on_cuda_matches_the_same_run_on_the_cpu():
    from pydl.data import DataLoader, TensorDataset
    from pydl.train import Trainer

    rng = np.random.default_rng(0)
    x = pydl.tensor(rng.standard_normal((64, 2)).astype(np.float32))
    y = pydl.tensor((x.numpy()[:, 0] > 0).astype(np.int64))
    histories = []
    for device in ("cpu", "cuda"):
        pydl.manual_seed(1)
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
        trainer = Trainer(model, pydl.optim.SGD(model.parameters(), lr=0.1), device=device, progress=False)
        histories.append(trainer.fit(DataLoader(TensorDataset(x, y), 16), DataLoader(TensorDataset(x, y), 32),
                                     epochs=2))
        assert all(p.device == device for p in model.parameters())
        assert trainer.predict(DataLoader(TensorDataset(x, y), 32)).shape == (64, 2)
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(histories[1][key], histories[0][key], rtol=1e-4, atol=1e-6, err_msg=key)
    # a near-tie of two logits may resolve differently: at most one sample of 64 apart
    np.testing.assert_allclose(histories[1]["val_accuracy"], histories[0]["val_accuracy"], atol=1 / 64 + 1e-9)


@needs_gpu
def test_train_run_on_cuda():
    from pydl.train.runs import train_run

    result = train_run("mlp", "spirals", epochs=3, batch_size=32, lr=0.01, out=None, progress=False, device="cuda")
    assert result["test_accuracy"] > 0.5 and np.isfinite(result["test_loss"])


@needs_gpu
def test_save_and_load_of_a_gpu_model(tmp_path):
    cpu, gpu = _lenet_pair(seed=3)
    path = tmp_path / "lenet.safetensors"
    pydl.save(gpu.state_dict(), path)
    state = pydl.load(path)
    assert all(v.device == "cpu" for v in state.values())  # checkpoints hold host copies
    fresh_gpu = pydl.models.get_model("lenet5").cuda()
    fresh_gpu.load_state_dict(state)
    fresh_cpu = pydl.models.get_model("lenet5")
    fresh_cpu.load_state_dict(state)
    x = pydl.randn(2, 1, 28, 28)
    want = cpu(x)
    _assert_same(fresh_gpu(x.cuda()), want, "GPU model loaded from a GPU checkpoint")
    np.testing.assert_allclose(fresh_cpu(x).detach().numpy(), want.detach().numpy(), rtol=1e-6)


def _state_arrays(opt):
    for state in opt.state.values():
        for v in state.values():
            a = v.data if isinstance(v, pydl.Tensor) else v
            if hasattr(a, "shape") and a.ndim:
                yield a


@needs_gpu
def test_optimizer_state_dict_moves_between_devices():
    cpu, gpu = _lenet_pair(seed=4)
    opt_g = pydl.optim.Adam(gpu.parameters(), lr=1e-3)
    F.cross_entropy(gpu(pydl.randn(4, 1, 28, 28, device="cuda")), pydl.tensor([1, 2, 3, 4], device="cuda")).backward()
    opt_g.step()
    assert all(isinstance(a, _cp().ndarray) for a in _state_arrays(opt_g))
    opt_c = pydl.optim.Adam(cpu.parameters(), lr=1e-3)
    opt_c.load_state_dict(opt_g.state_dict())  # GPU state into a CPU optimizer
    assert list(_state_arrays(opt_c)) and all(a.__class__ is np.ndarray for a in _state_arrays(opt_c))
    opt_g2 = pydl.optim.Adam(gpu.parameters(), lr=1e-3)
    opt_g2.load_state_dict(opt_c.state_dict())  # and back
    assert all(isinstance(a, _cp().ndarray) for a in _state_arrays(opt_g2))


@needs_gpu
def test_box_ops_run_on_the_gpu_and_match_the_cpu():
    from pydl.vision import ops

    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (200, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 20, (200, 2))], 1).astype(np.float32)
    scores = rng.random(200).astype(np.float32)
    b_cpu, b_gpu = pydl.tensor(boxes), pydl.tensor(boxes, device="cuda")
    s_cpu, s_gpu = pydl.tensor(scores), pydl.tensor(scores, device="cuda")
    _assert_same(ops.box_iou(b_gpu, b_gpu), ops.box_iou(b_cpu, b_cpu), "box_iou")
    _assert_same(ops.nms(b_gpu, s_gpu, 0.5), ops.nms(b_cpu, s_cpu, 0.5), "nms")
    x_cpu, x_gpu = _pair((2, 3, 16, 16), seed=1)
    rois = [boxes[:5] / 4, boxes[5:9] / 4]
    out_cpu = ops.roi_align(x_cpu, [pydl.tensor(r) for r in rois], 3, aligned=True)
    out_gpu = ops.roi_align(x_gpu, [pydl.tensor(r, device="cuda") for r in rois], 3, aligned=True)
    _assert_same(out_gpu, out_cpu, "roi_align")
    out_cpu.sum().backward()
    out_gpu.sum().backward()
    _assert_same(x_gpu.grad, x_cpu.grad, "roi_align backward")
