"""Learning-rate schedules against closed forms and hand transcriptions of PyTorch's formulas."""
import copy
import math

import numpy as np
import pytest

import pydl
from pydl import optim
from pydl.optim import lr_scheduler as sched


def make_optimizer(lrs=(0.1,), cls=optim.SGD, **kw):
    groups = [{"params": [pydl.nn.Parameter(pydl.tensor(np.zeros(2, np.float32)))], "lr": lr} for lr in lrs]
    return cls(groups, **kw)


def trace(scheduler, steps):
    """The rates of each group at steps 0 .. steps-1 (read before each scheduler.step())."""
    out = []
    for _ in range(steps):
        scheduler.optimizer.step()
        lrs = [g["lr"] for g in scheduler.optimizer.param_groups]
        assert lrs == scheduler.get_last_lr()
        out.append(lrs)
        scheduler.step()
    return np.array(out)


def expected(fn, base_lrs, steps):
    return np.array([[fn(t, base) for base in base_lrs] for t in range(steps)])


def close(got, want, rtol=1e-12, atol=1e-15):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


BASE = (0.1, 0.03)


# ------------------------------------------------------------------- closed forms
def test_step_lr():
    s = sched.StepLR(make_optimizer(BASE), step_size=3, gamma=0.5)
    close(trace(s, 20), expected(lambda t, b: b * 0.5 ** (t // 3), BASE, 20))


def test_multi_step_lr_with_repeated_milestone():
    s = sched.MultiStepLR(make_optimizer(BASE), milestones=[9, 3, 6, 6], gamma=0.1)
    n_passed = lambda t: sum(m <= t for m in [3, 6, 6, 9])  # noqa: E731
    close(trace(s, 15), expected(lambda t, b: b * 0.1 ** n_passed(t), BASE, 15))


def test_exponential_lr():
    s = sched.ExponentialLR(make_optimizer(BASE), gamma=0.9)
    close(trace(s, 30), expected(lambda t, b: b * 0.9**t, BASE, 30))


@pytest.mark.parametrize("eta_min", [0.0, 0.001])
def test_cosine_annealing_recursive_form_equals_closed_form(eta_min):
    T = 10
    s = sched.CosineAnnealingLR(make_optimizer(BASE), T_max=T, eta_min=eta_min)
    # the seeds' alpha_t = 1/2 alpha_0 (1 + cos(t pi / T)), with a floor; three periods
    want = expected(lambda t, b: eta_min + (b - eta_min) * (1 + math.cos(math.pi * t / T)) / 2, BASE, 3 * T + 3)
    close(trace(s, 3 * T + 3), want, rtol=1e-9, atol=1e-12)


def test_cosine_annealing_reaches_eta_min_at_t_max():
    opt = make_optimizer((1.0,))
    s = sched.CosineAnnealingLR(opt, T_max=7, eta_min=0.05)
    for _ in range(7):
        s.step()
    assert math.isclose(opt.param_groups[0]["lr"], 0.05, abs_tol=1e-12)


@pytest.mark.parametrize("start,end,total", [(0.25, 1.0, 4), (1.0, 0.1, 6), (1 / 3, 1.0, 5)])
def test_linear_lr(start, end, total):
    s = sched.LinearLR(make_optimizer(BASE), start_factor=start, end_factor=end, total_iters=total)
    want = expected(lambda t, b: b * (start + (end - start) * min(t, total) / total), BASE, 12)
    close(trace(s, 12), want, rtol=1e-12)


def test_constant_lr():
    s = sched.ConstantLR(make_optimizer(BASE), factor=0.5, total_iters=4)
    close(trace(s, 10), expected(lambda t, b: b * (0.5 if t < 4 else 1.0), BASE, 10))


def test_lambda_lr_one_function_per_group():
    opt = make_optimizer(BASE)
    s = sched.LambdaLR(opt, [lambda e: 0.95**e, lambda e: 1.0 / (e + 1)])
    want = np.array([[0.1 * 0.95**t, 0.03 / (t + 1)] for t in range(10)])
    close(trace(s, 10), want)


def test_inverse_square_root():
    w = 5
    s = sched.InverseSquareRootLR(make_optimizer(BASE), warmup_steps=w)
    got = trace(s, 40)
    close(got, expected(lambda t, b: b * min((t + 1) / w, math.sqrt(w / (t + 1))), BASE, 40))
    assert got[w - 1, 0] == pytest.approx(0.1)  # the peak is the optimizer's lr, at step w
    assert np.all(np.diff(got[:w, 0]) > 0) and np.all(np.diff(got[w - 1 :, 0]) < 0)
    # the Transformer paper's formula, d_model^-0.5 * min(s^-0.5, s * w^-1.5), with lr = d^-0.5 w^-0.5
    d_model, warm = 512, 4000
    opt = make_optimizer((d_model**-0.5 * warm**-0.5,))
    s = sched.InverseSquareRootLR(opt, warmup_steps=warm)
    for _ in range(9999):
        s.step()
    step_num = 10000
    assert opt.param_groups[0]["lr"] == pytest.approx(d_model**-0.5 * min(step_num**-0.5, step_num * warm**-1.5))


def test_scale_lr_for_batch_size():
    assert sched.scale_lr_for_batch_size(0.1, batch_size=512, base_batch_size=128) == pytest.approx(0.4)
    assert sched.scale_lr_for_batch_size(0.1, batch_size=64, base_batch_size=256) == pytest.approx(0.025)
    with pytest.raises(ValueError, match="positive"):
        sched.scale_lr_for_batch_size(0.1, batch_size=0, base_batch_size=256)


# ------------------------------------------------------------------- SequentialLR
def test_sequential_warmup_then_cosine():
    opt = make_optimizer(BASE)
    warm, T = 5, 10
    warmup = sched.LinearLR(opt, start_factor=0.1, end_factor=1.0, total_iters=warm)
    decay = sched.CosineAnnealingLR(opt, T_max=T)
    s = sched.SequentialLR(opt, [warmup, decay], milestones=[warm])
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([b * 0.1 for b in BASE])

    def lr(t, b):
        if t < warm:
            return b * (0.1 + 0.9 * t / warm)
        return b * (1 + math.cos(math.pi * (t - warm) / T)) / 2

    close(trace(s, warm + T + 1), expected(lr, BASE, warm + T + 1), rtol=1e-9, atol=1e-12)


def test_sequential_constant_then_exponential():
    opt = make_optimizer(BASE)
    s = sched.SequentialLR(
        opt, [sched.ConstantLR(opt, factor=0.1, total_iters=2), sched.ExponentialLR(opt, gamma=0.9)], milestones=[2]
    )
    want = expected(lambda t, b: b * 0.1 if t < 2 else b * 0.9 ** (t - 2), BASE, 8)
    close(trace(s, 8), want)


def test_sequential_errors():
    opt, other = make_optimizer(), make_optimizer()
    a, b = sched.ConstantLR(opt), sched.ExponentialLR(opt, gamma=0.9)
    with pytest.raises(ValueError, match="one more than the number of milestone points"):
        sched.SequentialLR(opt, [a, b], milestones=[2, 4])
    with pytest.raises(ValueError, match="at least one scheduler"):
        sched.SequentialLR(opt, [], milestones=[])
    with pytest.raises(ValueError, match="same optimizer"):
        sched.SequentialLR(opt, [a, sched.ExponentialLR(other, gamma=0.9)], milestones=[2])


# --------------------------------------------------------------------- OneCycleLR
def anneal_cos(start, end, pct):
    return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)


def anneal_linear(start, end, pct):
    return (end - start) * pct + start


def one_cycle_ref(t, total, max_lr, pct_start, anneal, div=25.0, final_div=1e4, three_phase=False,
                  base_m=0.85, max_m=0.95):
    """PyTorch's OneCycleLR phases, written out: (lr, momentum) at step t."""
    initial = max_lr / div
    low = initial / final_div
    up_end = pct_start * total - 1
    if three_phase:
        phases = [(up_end, initial, max_lr, max_m, base_m), (2 * pct_start * total - 2, max_lr, initial, base_m, max_m),
                  (total - 1, initial, low, max_m, max_m)]
    else:
        phases = [(up_end, initial, max_lr, max_m, base_m), (total - 1, max_lr, low, base_m, max_m)]
    start = 0.0
    for i, (end, lr0, lr1, m0, m1) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            pct = (t - start) / (end - start)
            return anneal(lr0, lr1, pct), anneal(m0, m1, pct)
        start = end


@pytest.mark.parametrize("strategy,fn", [("cos", anneal_cos), ("linear", anneal_linear)])
@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_lr_with_momentum(strategy, fn, three_phase):
    total, max_lr = 40, 0.5
    opt = make_optimizer((0.01,), momentum=0.9)
    s = sched.OneCycleLR(opt, max_lr=max_lr, total_steps=total, anneal_strategy=strategy, three_phase=three_phase)
    for t in range(total):
        lr, m = one_cycle_ref(t, total, max_lr, 0.3, fn, three_phase=three_phase)
        assert opt.param_groups[0]["lr"] == pytest.approx(lr, rel=1e-12)
        assert opt.param_groups[0]["momentum"] == pytest.approx(m, rel=1e-12)
        if t < total - 1:
            s.step()


def test_one_cycle_lr_endpoints_and_adam_beta1():
    total, max_lr = 100, 1.0
    opt = make_optimizer((0.01,), cls=optim.Adam, betas=(0.9, 0.99))
    s = sched.OneCycleLR(opt, max_lr=max_lr, epochs=10, steps_per_epoch=10, pct_start=0.25, div_factor=10.0,
                         final_div_factor=100.0)
    lrs, beta1s = [], []
    for t in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        beta1s.append(opt.param_groups[0]["betas"][0])
        assert opt.param_groups[0]["betas"][1] == 0.99
        if t < total - 1:
            s.step()
    assert lrs[0] == pytest.approx(0.1)  # max_lr / div_factor
    assert max(lrs) == pytest.approx(1.0) and int(np.argmax(lrs)) == 24  # pct_start * total - 1
    assert lrs[-1] == pytest.approx(0.1 / 100)  # initial_lr / final_div_factor
    assert beta1s[0] == pytest.approx(0.95) and beta1s[24] == pytest.approx(0.85) and beta1s[-1] == pytest.approx(0.95)
    s.step()  # step total_steps is still allowed (PyTorch's check is '>')
    with pytest.raises(ValueError, match="Tried to step 101 times. The specified number of total steps is 100"):
        s.step()


def test_one_cycle_lr_per_group_max_lr():
    opt = make_optimizer(BASE, momentum=0.9)
    sched.OneCycleLR(opt, max_lr=[1.0, 2.0], total_steps=10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1.0 / 25, 2.0 / 25])
    with pytest.raises(ValueError, match="max_lr must have the same length as optimizer.param_groups"):
        sched.OneCycleLR(make_optimizer(BASE), max_lr=[1.0], total_steps=10)


@pytest.mark.parametrize(
    "kw,message",
    [
        (dict(total_steps=0), "Expected positive integer total_steps, but got 0"),
        (dict(), r"You must define either total_steps OR \(epochs AND steps_per_epoch\)"),
        (dict(epochs=0, steps_per_epoch=3), "Expected positive integer epochs, but got 0"),
        (dict(epochs=2, steps_per_epoch=-1), "Expected positive integer steps_per_epoch, but got -1"),
        (dict(total_steps=10, pct_start=1.5), "Expected float between 0 and 1 pct_start, but got 1.5"),
        (dict(total_steps=10, anneal_strategy="exp"), "anneal_strategy must be one of 'cos' or 'linear'"),
    ],
)
def test_one_cycle_lr_errors(kw, message):
    with pytest.raises(ValueError, match=message):
        sched.OneCycleLR(make_optimizer(), max_lr=1.0, **kw)


def test_one_cycle_needs_momentum_to_cycle():
    opt = make_optimizer(cls=optim.Adagrad)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        sched.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    sched.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False)


# ------------------------------------------------------------------ base behaviour
def test_initial_lr_and_base_lrs_like_pytorch():
    opt = make_optimizer(BASE)
    s = sched.ExponentialLR(opt, gamma=0.5)
    assert [g["initial_lr"] for g in opt.param_groups] == list(BASE) and s.base_lrs == list(BASE)
    assert s.last_epoch == 0
    s.step()
    assert s.last_epoch == 1 and s.get_last_lr() == pytest.approx([0.05, 0.015])


def test_resuming_without_initial_lr_raises():
    with pytest.raises(KeyError, match=r"param 'initial_lr' is not specified in param_groups\[0\]"):
        sched.StepLR(make_optimizer(), step_size=2, last_epoch=4)


def test_step_with_epoch_uses_closed_form():
    opt = make_optimizer(BASE)
    s = sched.StepLR(opt, step_size=3, gamma=0.5)
    with pytest.warns(UserWarning, match="deprecated"):
        s.step(7)
    assert s.get_last_lr() == pytest.approx([0.1 * 0.25, 0.03 * 0.25])


@pytest.mark.parametrize(
    "make",
    [
        lambda o: sched.StepLR(o, step_size=3, gamma=0.5),
        lambda o: sched.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.3),
        lambda o: sched.ExponentialLR(o, gamma=0.8),
        lambda o: sched.CosineAnnealingLR(o, T_max=6, eta_min=0.001),
        lambda o: sched.LinearLR(o, start_factor=0.2, total_iters=6),
        lambda o: sched.ConstantLR(o, factor=0.5, total_iters=5),
        lambda o: sched.InverseSquareRootLR(o, warmup_steps=3),
        lambda o: sched.OneCycleLR(o, max_lr=0.5, total_steps=20),
        lambda o: sched.SequentialLR(
            o, [sched.LinearLR(o, start_factor=0.1, total_iters=3), sched.CosineAnnealingLR(o, T_max=8)],
            milestones=[3]),
    ],
    ids=["step", "multistep", "exponential", "cosine", "linear", "constant", "invsqrt", "onecycle", "sequential"],
)
def test_state_dict_round_trip_continues_identically(make):
    opt_a = make_optimizer(BASE, momentum=0.9)
    a = make(opt_a)
    for _ in range(4):
        a.step()
    saved_sched = copy.deepcopy(a.state_dict())
    saved_opt = copy.deepcopy(opt_a.state_dict())

    opt_b = make_optimizer(BASE, momentum=0.9)
    b = make(opt_b)
    opt_b.load_state_dict(saved_opt)
    b.load_state_dict(saved_sched)
    assert b.get_last_lr() == a.get_last_lr()
    for _ in range(8):
        a.step()
        b.step()
        assert b.get_last_lr() == a.get_last_lr()
        assert [g["lr"] for g in opt_b.param_groups] == [g["lr"] for g in opt_a.param_groups]
    assert "optimizer" not in saved_sched


def test_lambda_lr_state_dict_keeps_callable_object_state():
    class Warm:
        def __init__(self):
            self.scale = 1.0

        def __call__(self, epoch):
            return self.scale * (epoch + 1)

    fn = Warm()
    s = sched.LambdaLR(make_optimizer(), fn)
    fn.scale = 0.5
    sd = s.state_dict()
    assert sd["lr_lambdas"] == [{"scale": 0.5}]
    fn2 = Warm()
    s2 = sched.LambdaLR(make_optimizer(), fn2)
    s2.load_state_dict(sd)
    assert fn2.scale == 0.5
    assert sched.LambdaLR(make_optimizer(), lambda e: 1.0).state_dict()["lr_lambdas"] == [None]


@pytest.mark.parametrize(
    "build,exc,message",
    [
        (lambda o: sched.LinearLR(o, start_factor=0), ValueError,
         "Starting multiplicative factor expected to be greater than 0"),
        (lambda o: sched.LinearLR(o, start_factor=1.5), ValueError, "Starting multiplicative factor"),
        (lambda o: sched.LinearLR(o, end_factor=-0.1), ValueError,
         "Ending multiplicative factor expected to be between 0 and 1"),
        (lambda o: sched.ConstantLR(o, factor=1.5), ValueError,
         "Constant multiplicative factor expected to be between 0 and 1"),
        (lambda o: sched.LambdaLR(o, [lambda e: 1.0] * 3), ValueError, "Expected 1 lr_lambdas, but got 3"),
        (lambda o: sched.InverseSquareRootLR(o, warmup_steps=0), ValueError, "warmup_steps must be a positive integer"),
        (lambda o: sched.StepLR(o, step_size=0), ValueError, "step_size must be a positive integer"),
        (lambda o: sched.CosineAnnealingLR(o, T_max=0), ValueError, "T_max must be positive"),
        (lambda o: sched.StepLR("not an optimizer", step_size=2), TypeError, "is not an Optimizer"),
    ],
)
def test_invalid_arguments(build, exc, message):
    with pytest.raises(exc, match=message):
        build(make_optimizer())
