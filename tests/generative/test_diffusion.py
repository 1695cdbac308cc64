"""DDPM / DDIM: the schedule's closed forms, q_sample's moments, the loss of Algorithm 1, and
the samplers driven by the exact noise predictor of a one-point data set."""
import math

import numpy as np
import pytest

import pydl
from pydl.generative import DDPMSchedule, ddim_sample, ddpm_loss, ddpm_sample, q_sample
from pydl.generative.diffusion import ddim_timesteps


def test_linear_schedule_closed_forms():
    s = DDPMSchedule(1000)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    np.testing.assert_allclose(s.alphas, 1 - s.betas)
    # alpha_bar_t = prod_{s<=t} (1 - beta_s), checked at a few t by a direct product
    for t in (0, 1, 10, 500, 999):
        assert s.alphas_cumprod[t] == pytest.approx(np.prod(1 - s.betas[:t + 1]), rel=1e-12)
    assert s.alphas_cumprod_prev[0] == 1.0
    np.testing.assert_allclose(s.alphas_cumprod_prev[1:], s.alphas_cumprod[:-1])
    np.testing.assert_allclose(s.sqrt_alphas_cumprod ** 2 + s.sqrt_one_minus_alphas_cumprod ** 2, 1.0)
    np.testing.assert_allclose(s.posterior_variance,
                               (1 - s.alphas_cumprod_prev) / (1 - s.alphas_cumprod) * s.betas)
    assert np.all(np.diff(s.alphas_cumprod) < 0) and s.alphas_cumprod[-1] < 1e-4  # x_T is nearly pure noise


def test_cosine_schedule():
    s = DDPMSchedule(100, schedule="cosine")
    f = lambda t: math.cos((t / 100 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 50, 98):
        assert s.alphas_cumprod[t] == pytest.approx(f(t + 1) / f(0), rel=1e-9)
    assert np.all((s.betas > 0) & (s.betas <= 0.999))


def test_schedule_errors():
    with pytest.raises(ValueError, match="num_timesteps"):
        DDPMSchedule(0)
    with pytest.raises(ValueError, match="schedule"):
        DDPMSchedule(10, schedule="quadratic")
    with pytest.raises(ValueError, match="beta_start"):
        DDPMSchedule(10, beta_start=0.5, beta_end=0.1)


def test_q_sample_formula_and_moments():
    s = DDPMSchedule(100)
    x0 = pydl.tensor(np.full((4, 1, 2, 2), 0.7, np.float32))
    eps = pydl.randn(4, 1, 2, 2)
    t = [0, 10, 50, 99]
    xt = q_sample(s, x0, t, eps).detach().numpy()
    ab = s.alphas_cumprod[t].reshape(-1, 1, 1, 1)
    np.testing.assert_allclose(xt, np.sqrt(ab) * 0.7 + np.sqrt(1 - ab) * eps.detach().numpy(), rtol=1e-5, atol=1e-6)
    # moments of q(x_t | x_0) = N(sqrt(a) x0, (1 - a) I) over many draws
    pydl.manual_seed(0)
    n = 20000
    x0 = pydl.full((n, 1), 0.7)
    for tt in (5, 60):
        xt = q_sample(s, x0, [tt] * n).detach().numpy()
        a = s.alphas_cumprod[tt]
        assert xt.mean() == pytest.approx(math.sqrt(a) * 0.7, abs=0.02)
        assert xt.var() == pytest.approx(1 - a, rel=0.05, abs=0.005)


def test_q_sample_errors():
    s = DDPMSchedule(10)
    with pytest.raises(ValueError, match="timesteps must lie"):
        q_sample(s, pydl.ones(2, 3), [0, 10])
    with pytest.raises(TypeError, match="integer"):
        q_sample(s, pydl.ones(2, 3), [0.5, 1.0])
    with pytest.raises(ValueError, match="one timestep per sample"):
        q_sample(s, pydl.ones(2, 3), [0, 1, 2])


class _Zero(pydl.nn.Module):
    def forward(self, x, t):
        return x * 0


def test_ddpm_loss_is_algorithm_1():
    s = DDPMSchedule(50)
    x0 = pydl.randn(3, 1, 4, 4)
    eps = pydl.randn(3, 1, 4, 4)
    # a model predicting 0 pays ||eps||^2 (mean over the elements)
    loss = ddpm_loss(_Zero(), s, x0, t=[1, 2, 3], noise=eps)
    assert loss.item() == pytest.approx(float((eps.detach().numpy() ** 2).mean()), rel=1e-5)

    class Oracle(pydl.nn.Module):  # knows eps: loss 0
        def forward(self, x, t):
            return eps

    assert ddpm_loss(Oracle(), s, x0, t=[1, 2, 3], noise=eps).item() == pytest.approx(0.0, abs=1e-10)
    # gradients reach the model's parameters
    lin = pydl.nn.Conv2d(1, 1, 1)
    ddpm_loss(lambda x, t: lin(x), s, x0).backward()
    assert lin.weight.grad is not None and np.abs(lin.weight.grad.detach().numpy()).sum() > 0


class _PointOracle(pydl.nn.Module):
    """The exact eps-predictor when the data set is one point x*: eps = (x_t - sqrt(a_t) x*) / sqrt(1 - a_t)."""

    def __init__(self, schedule, target):
        super().__init__()
        self.s, self.target = schedule, target

    def forward(self, x, t):
        ti = int(t.detach().numpy()[0])
        a = self.s.alphas_cumprod[ti]
        return (x - math.sqrt(a) * self.target) * (1 / math.sqrt(1 - a))


def test_ddim_eta0_is_deterministic_and_exact():
    s = DDPMSchedule(200)
    target = pydl.tensor(np.linspace(-1, 1, 16, dtype=np.float32).reshape(1, 1, 4, 4))
    model = _PointOracle(s, target)
    xT = pydl.randn(2, 1, 4, 4)
    a = ddim_sample(model, s, (2, 1, 4, 4), num_steps=10, eta=0.0, x_T=xT)
    b = ddim_sample(model, s, (2, 1, 4, 4), num_steps=10, eta=0.0, x_T=xT)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    np.testing.assert_allclose(a.detach().numpy(), np.broadcast_to(target.detach().numpy(), (2, 1, 4, 4)), atol=1e-4)
    # eta > 0: stochastic, still lands on the one data point
    c, traj = ddim_sample(model, s, (2, 1, 4, 4), num_steps=10, eta=1.0, x_T=xT, return_trajectory=True)
    assert len(traj) == 11
    np.testing.assert_allclose(c.detach().numpy(), np.broadcast_to(target.detach().numpy(), (2, 1, 4, 4)), atol=1e-4)


def test_ddim_single_step_matches_formula():
    s = DDPMSchedule(100)
    xT = pydl.randn(1, 1, 2, 2)
    eps = pydl.randn(1, 1, 2, 2)

    class Const(pydl.nn.Module):
        def forward(self, x, t):
            return eps

    t = ddim_timesteps(100, 1)
    assert t.tolist() == [0]
    out = ddim_sample(Const(), s, (1, 1, 2, 2), num_steps=1, x_T=xT).detach().numpy()
    a = s.alphas_cumprod[0]
    np.testing.assert_allclose(out, (xT.numpy() - math.sqrt(1 - a) * eps.numpy()) / math.sqrt(a), rtol=1e-5)
    assert ddim_timesteps(1000, 4).tolist() == [999, 666, 333, 0]
    with pytest.raises(ValueError, match="num_steps"):
        ddim_sample(Const(), s, (1, 1, 2, 2), num_steps=0)


def test_ddpm_ancestral_sampling():
    s = DDPMSchedule(100)
    target = pydl.tensor(np.full((1, 1, 2, 2), 0.5, np.float32))
    pydl.manual_seed(1)
    x, traj = ddpm_sample(_PointOracle(s, target), s, (64, 1, 2, 2), return_trajectory=True)
    assert len(traj) == 101
    # with the exact predictor the chain ends at the data point up to the last steps' noise
    assert abs(x.detach().numpy().mean() - 0.5) < 0.05
    # one step against Algorithm 2's line 4 (z = 0 at t = 1)
    eps = pydl.randn(1, 1, 2, 2)
    xt = pydl.randn(1, 1, 2, 2)

    class Const(pydl.nn.Module):
        def forward(self, x, t):
            return eps

    one = DDPMSchedule(1, beta_start=0.3, beta_end=0.3)
    out = ddpm_sample(Const(), one, (1, 1, 2, 2), x_T=xt).detach().numpy()
    expect = (xt.detach().numpy() - 0.3 / math.sqrt(0.3) * eps.detach().numpy()) / math.sqrt(0.7)
    np.testing.assert_allclose(out, expect, rtol=1e-5)
