"""Optimizers and schedules against PyTorch itself, where it is installed (skipped otherwise).

The NumPy transcriptions in test_optimizers.py / test_lr_scheduler.py are the specification
that always runs; this file checks that specification and pydl agree with torch.optim.
"""
import numpy as np
import pytest

import pydl
from pydl import optim
from pydl.optim import lr_scheduler as sched

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), ()]

OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.05)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1, maximize=True)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.3)),
    ("Adagrad", dict(lr=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.8, centered=True, momentum=0.5, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, centered=True, maximize=True)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, amsgrad=True)),
]


@pytest.mark.parametrize("name,kw", OPTIMIZERS, ids=[f"{n}-{kw}" for n, kw in OPTIMIZERS])
def test_optimizer_matches_torch(name, kw, rng):
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(8)]
    ours = [pydl.nn.Parameter(pydl.tensor(v)) for v in init]  # float64 on both sides
    theirs = [torch.nn.Parameter(torch.tensor(v)) for v in init]
    opt = getattr(optim, name)(ours, **kw)
    topt = getattr(torch.optim, name)(theirs, **kw)
    for step in grads:
        for p, tp, g in zip(ours, theirs, step):
            p.grad = pydl.tensor(g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


def torch_optimizer(lrs, **kw):
    groups = [{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": lr} for lr in lrs]
    return torch.optim.SGD(groups, momentum=0.9, **kw)


def pydl_optimizer(lrs, **kw):
    groups = [{"params": [pydl.nn.Parameter(pydl.zeros(2))], "lr": lr} for lr in lrs]
    return optim.SGD(groups, momentum=0.9, **kw)


SCHEDULES = {
    "step": lambda m, o: m.StepLR(o, step_size=3, gamma=0.5),
    "multistep": lambda m, o: m.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.3),
    "exponential": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "cosine": lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001),
    "linear": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=6),
    "constant": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
    "lambda": lambda m, o: m.LambdaLR(o, lambda e: 0.9**e + 0.1),
    "sequential": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=4), m.CosineAnnealingLR(o, T_max=10)], milestones=[4]),
    "onecycle-cos": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=30),
    "onecycle-linear-3": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=30, anneal_strategy="linear",
                                                   three_phase=True, pct_start=0.4),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(name):
    lrs = (0.1, 0.03)
    ours_opt, theirs_opt = pydl_optimizer(lrs), torch_optimizer(lrs)
    ours = SCHEDULES[name](sched, ours_opt)
    theirs = SCHEDULES[name](torch.optim.lr_scheduler, theirs_opt)
    steps = 30 if name.startswith("onecycle") else 40
    for _ in range(steps):
        assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12, abs=1e-15)
        for g, tg in zip(ours_opt.param_groups, theirs_opt.param_groups):
            assert g["momentum"] == pytest.approx(tg["momentum"], rel=1e-12)
        theirs_opt.step()
        ours_opt.step()
        ours.step()
        theirs.step()


def test_checkpoints_move_between_pydl_and_torch(tmp_path):
    """A model state dict saved by pydl loads into PyTorch and back (safetensors both ways)."""
    st_torch = pytest.importorskip("safetensors.torch")
    ours = pydl.nn.Linear(4, 3)
    path = tmp_path / "linear.safetensors"
    pydl.save(ours.state_dict(), path)
    theirs = torch.nn.Linear(4, 3)
    theirs.load_state_dict(st_torch.load_file(str(path)))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    want = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(pydl.tensor(x)).data, want, rtol=1e-5, atol=1e-6)

    with torch.no_grad():
        theirs.weight.mul_(2.0)
    st_torch.save_file(theirs.state_dict(), str(path))
    ours.load_state_dict(pydl.load(path))
    np.testing.assert_array_equal(ours.weight.data, theirs.weight.detach().numpy())
