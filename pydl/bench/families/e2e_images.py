"""The image rows of ``pydl bench e2e`` (issue 5's speed goals): one training step --
forward, cross-entropy, backward, SGD(momentum 0.9) -- of

- ``lenet5``: the seeds' LeNet-5 on a batch of 64 Digits-28 images (the first 64 of the
  training split; random images in [0, 1] of the same shape where scikit-learn, which
  bundles Digits, is missing -- the time does not depend on the pixel values);
- ``resnet18``: the CIFAR ResNet-18 (3x3 stem, no max-pool; torchvision's keys) on a
  random batch of 32 3x32x32 images,

pydl against the same model and weights in PyTorch (built here with torchvision's
parameter names, so ``load_state_dict`` of pydl's state dict fits it). The rate that
matters is images/s = B / median time (in the notes); other/pydl in the table is the
speed ratio pydl / PyTorch. SGD runs with lr 0 (the update is timed, the weights stay
put), so every call computes the same loss, checked against pydl's float64 model.

On the GPU (``pydl bench e2e --device cuda``, :func:`case` with ``device="cuda"``) the same
step runs on CUDA tensors -- pydl's kernels and CuPy glue against PyTorch CUDA with TF32
off -- and the truth is still the float64 model on the host.
"""
import numpy as np

from ..harness import Case, torch

# model -> (registered pydl model name, batch)
MODELS = {"lenet5": ("lenet5", 64), "resnet18": ("resnet18_cifar", 32)}


def images(kind, b):
    """(x (b, C, H, W) float32, y (b,) int64, where the images come from)."""
    rng = np.random.default_rng(0)
    if kind == "lenet5":
        try:
            from ...data.datasets.digits import load_digits_arrays

            x, y = load_digits_arrays(True, 28)
            return (np.array(x[:b], dtype=np.float32).reshape(b, 1, 28, 28),  # a writable copy
                    np.array(y[:b], dtype=np.int64), "Digits-28")
        except ImportError:
            return (rng.random((b, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, b).astype(np.int64),
                    "random 1x28x28 images (scikit-learn, which bundles Digits, is not installed)")
    return (rng.standard_normal((b, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, b).astype(np.int64),
            "random 3x32x32 images")


def _torch_lenet5(nn):
    class LeNet5(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 20, 5, padding=2)
            self.conv2 = nn.Conv2d(20, 50, 5, padding=2)
            self.fc1 = nn.Linear(2450, 500)
            self.fc2 = nn.Linear(500, 10)

        def forward(self, x):
            f = nn.functional
            x = f.max_pool2d(f.relu(self.conv1(x)), 2, 2)
            x = f.max_pool2d(f.relu(self.conv2(x)), 2, 2)
            return self.fc2(f.relu(self.fc1(x.flatten(1))))
    return LeNet5()


def _torch_resnet18_cifar(nn):
    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            cin = 64
            for i, (cout, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
                cin = cout
            self.fc = nn.Linear(512, 10)

        def forward(self, x):
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(x.mean((2, 3)))
    return ResNet18()


def case(shape, device="cpu"):
    import pydl
    import pydl.nn.functional as F
    from ...models import get_model

    kind, b = shape
    name, _ = MODELS[kind]
    x, y, source = images(kind, b)

    def pydl_step(dtype, dev="cpu"):
        pydl.manual_seed(0)
        model = get_model(name, num_classes=10)
        model = model.to(dtype) if dtype != np.float32 else model
        model.to(dev)
        opt = pydl.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
        tx, ty = pydl.tensor(x.astype(dtype), device=dev), pydl.tensor(y, device=dev)

        def run():
            loss = F.cross_entropy(model(tx), ty)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.detach().data  # NumPy or CuPy: no host copy inside the timed call
        return run, model

    run32, model32 = pydl_step(np.float32, device)
    impls = {"pydl": run32}
    notes = [f"e2e {kind}: images/s = {b} / median time, on {source}; SGD(momentum 0.9) with lr 0 "
             "(update timed, weights fixed); other/pydl = pydl's images/s / PyTorch's."]
    t = torch()
    if device == "cuda":
        from .. import gpu

        t = gpu.torch_cuda()
    if t is not None:
        tm = _torch_lenet5(t.nn) if kind == "lenet5" else _torch_resnet18_cifar(t.nn)
        tm.load_state_dict({k: t.from_numpy(np.array(v.detach().numpy())) for k, v in model32.state_dict().items()})
        tm.to(device)
        topt = t.optim.SGD(tm.parameters(), lr=0.0, momentum=0.9)
        tx, ty = t.from_numpy(x).to(device), t.from_numpy(y).to(device)

        def torch_step():
            loss = t.nn.functional.cross_entropy(tm(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()
            return loss.detach()

        def torch_fp32_step():
            with gpu.torch_tf32(t, False):
                return torch_step()
        impls["torch"] = torch_fp32_step if device == "cuda" else torch_step
        if device == "cuda":
            notes.append("torch on CUDA with TF32 off (cuDNN would round float32 convolutions to TF32).")

    def expected():
        run64, model64 = pydl_step(np.float64)
        model64.load_state_dict({k: pydl.tensor(np.array(v.detach().numpy()).astype(
            np.float64 if v.dtype.kind == "f" else v.dtype)) for k, v in model32.state_dict().items()})
        return run64()

    title = (f"LeNet-5 step B{b} 1x28x28" if kind == "lenet5" else f"ResNet-18 CIFAR step B{b} 3x32x32")
    # on the GPU, float32 sums run in another order than on the CPU: a little more room
    return Case(title, impls, expected, rtol=1e-4 if device == "cpu" else 1e-3, notes=notes)
