"""DDPM and DDIM: the noise schedule, forward noising, the simplified loss, the samplers.

Notation. The cheat sheet writes alpha_t for the *cumulative* product (the DDIM paper's
convention); here, as in the DDPM paper and most code:

    beta_t                      the variance added at step t (a linear or cosine schedule)
    alpha_t     = 1 - beta_t
    alpha_bar_t = prod_{s <= t} alpha_s        (the cheat sheet's alpha_t)

Forward process in closed form, q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I):

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,    eps ~ N(0, I)

Timesteps are 0-based in code: index ``t`` in 0..T-1 is the paper's step t + 1, and
``alpha_bar_prev[0] = 1`` (x_{-1} in code is the clean image).

A denoiser is called as ``model(x_t, t)`` with x_t (N, C, H, W) and t an int64 Tensor (N,),
and returns its estimate of eps, of x_t's shape.
"""
import math

import numpy as np

import pydl
import pydl.nn.functional as F
from ..tensor import Tensor

__all__ = ["DDPMSchedule", "ddim_sample", "ddpm_loss", "ddpm_sample", "q_sample"]


class DDPMSchedule:
    """The variance schedule and its derived arrays (NumPy float64, length T).

    ``schedule="linear"``: beta from ``beta_start`` to ``beta_end`` (the DDPM paper's 1e-4 ..
    0.02 for T = 1000); ``"cosine"``: Nichol & Dhariwal's alpha_bar_t = f(t) / f(0),
    f(t) = cos^2(((t / T + s) / (1 + s)) pi / 2), betas clipped at 0.999.

    >>> s = DDPMSchedule(4, beta_start=0.1, beta_end=0.4)
    >>> s.betas.tolist(), s.alphas_cumprod.round(4).tolist()
    ([0.1, 0.2, 0.30000000000000004, 0.4], [0.9, 0.72, 0.504, 0.3024])
    """

    def __init__(self, num_timesteps=1000, beta_start=1e-4, beta_end=0.02, schedule="linear", s=0.008):
        if int(num_timesteps) < 1:
            raise ValueError(f"DDPMSchedule: num_timesteps must be >= 1, got {num_timesteps}")
        T = self.num_timesteps = int(num_timesteps)
        if schedule == "linear":
            if not 0 < beta_start <= beta_end < 1:
                raise ValueError(f"DDPMSchedule: need 0 < beta_start <= beta_end < 1, got {beta_start}, {beta_end}")
            betas = np.linspace(beta_start, beta_end, T, dtype=np.float64)
        elif schedule == "cosine":
            steps = np.arange(T + 1, dtype=np.float64) / T
            f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = np.clip(1 - f[1:] / f[:-1], 0.0, 0.999)
        else:
            raise ValueError(f"DDPMSchedule: schedule must be 'linear' or 'cosine', got {schedule!r}")
        self.schedule = schedule
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(self.alphas)
        self.alphas_cumprod_prev = np.concatenate([[1.0], self.alphas_cumprod[:-1]])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        # variance of q(x_{t-1} | x_t, x_0): beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
        self.posterior_variance = (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod) * betas

    def __len__(self):
        return self.num_timesteps

    def __repr__(self):
        return (f"DDPMSchedule(num_timesteps={self.num_timesteps}, schedule={self.schedule!r}, "
                f"beta=[{self.betas[0]:.3g}, {self.betas[-1]:.3g}])")

    def gather(self, name, t, like):
        """``getattr(self, name)[t]`` as a Tensor shaped (N, 1, ..., 1) to broadcast against ``like``."""
        t = _indices(t, self.num_timesteps, "DDPMSchedule.gather")
        vals = getattr(self, name)[t].astype(like.data.dtype)
        return pydl.tensor(vals.reshape((-1,) + (1,) * (like.ndim - 1)))


def _indices(t, T, op):
    arr = np.asarray(t.data if isinstance(t, Tensor) else t)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{op}: t must hold integer timesteps, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() >= T):
        raise ValueError(f"{op}: timesteps must lie in [0, {T - 1}], got [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


def q_sample(schedule, x0, t, noise=None):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: (N, ...) -> (N, ...).

    ``t`` (N,) integer timesteps (0-based), ``noise`` eps (default: drawn from N(0, I)).

    >>> s = DDPMSchedule(10)
    >>> q_sample(s, pydl.ones(2, 3), [0, 9], noise=pydl.zeros(2, 3)).shape
    (2, 3)
    """
    if not isinstance(x0, Tensor):
        raise TypeError(f"q_sample: x0 must be a Tensor, got {type(x0).__name__}")
    if len(np.atleast_1d(np.asarray(t.data if isinstance(t, Tensor) else t))) != x0.shape[0]:
        raise ValueError(f"q_sample: need one timestep per sample ({x0.shape[0]})")
    if noise is None:
        noise = pydl.randn(*x0.shape, dtype=x0.dtype)
    elif noise.shape != x0.shape:
        raise ValueError(f"q_sample: noise {noise.shape} must have x0's shape {x0.shape}")
    return schedule.gather("sqrt_alphas_cumprod", t, x0) * x0 + schedule.gather(
        "sqrt_one_minus_alphas_cumprod", t, x0) * noise


def ddpm_loss(model, schedule, x0, t=None, noise=None):
    """The simplified loss of Algorithm 1: || eps - eps_theta(sqrt(a_t) x_0 + sqrt(1 - a_t) eps, t) ||^2.

    Draws t ~ Uniform{0..T-1} and eps ~ N(0, I) per sample unless given; returns the mean
    squared error over all elements (a scalar Tensor to call ``backward()`` on).
    """
    n = x0.shape[0]
    if t is None:
        t = pydl.randint(0, schedule.num_timesteps, (n,))
    elif not isinstance(t, Tensor):
        t = pydl.tensor(np.asarray(t, dtype=np.int64))
    if noise is None:
        noise = pydl.randn(*x0.shape, dtype=x0.dtype)
    x_t = q_sample(schedule, x0, t, noise)
    return F.mse_loss(model(x_t, t), noise)


def ddpm_sample(model, schedule, shape, x_T=None, variance="beta", return_trajectory=False):
    """Ancestral sampling, Algorithm 2: x_T ~ N(0, I), then for t = T .. 1

        x_{t-1} = 1 / sqrt(alpha_t) (x_t - (1 - alpha_t) / sqrt(1 - alpha_bar_t) eps_theta(x_t, t)) + sigma_t z

    with z ~ N(0, I) for t > 1 and z = 0 at the last step; sigma_t^2 = beta_t
    (``variance="beta"``) or the posterior's beta_tilde_t (``"posterior"``).
    Returns x_0 (a Tensor of ``shape``), and the list of x_T .. x_0 with ``return_trajectory``.
    """
    if variance not in ("beta", "posterior"):
        raise ValueError(f"ddpm_sample: variance must be 'beta' or 'posterior', got {variance!r}")
    sigma2 = schedule.betas if variance == "beta" else schedule.posterior_variance
    x = pydl.randn(*shape) if x_T is None else x_T
    traj = [x]
    with pydl.no_grad():
        for t in range(schedule.num_timesteps - 1, -1, -1):
            tt = pydl.full((shape[0],), t, dtype=pydl.int64)
            eps = model(x, tt)
            a, ab = schedule.alphas[t], schedule.alphas_cumprod[t]
            x = (x - ((1 - a) / math.sqrt(1 - ab)) * eps) * (1 / math.sqrt(a))
            if t > 0:
                x = x + math.sqrt(sigma2[t]) * pydl.randn(*shape, dtype=x.dtype)
            traj.append(x)
    return (x, traj) if return_trajectory else x


def ddim_timesteps(num_timesteps, num_steps):
    """The sub-sequence tau of ``num_steps`` timesteps DDIM visits, descending (0-based)."""
    if not 1 <= num_steps <= num_timesteps:
        raise ValueError(f"ddim_sample: num_steps must be in [1, {num_timesteps}], got {num_steps}")
    return np.unique(np.linspace(0, num_timesteps - 1, num_steps).round().astype(np.int64))[::-1]


def ddim_sample(model, schedule, shape, num_steps=50, eta=0.0, x_T=None, return_trajectory=False):
    """DDIM sampling on a sub-sequence of ``num_steps`` timesteps (same trained model, same loss).

    With f_theta(x_t) = (x_t - sqrt(1 - a_t) eps_theta(x_t)) / sqrt(a_t) the predicted x_0
    (a = alpha_bar), each step is

        x_prev = sqrt(a_prev) f_theta(x_t) + sqrt(1 - a_prev - sigma_t^2) eps_theta(x_t) + sigma_t eps_t
        sigma_t = eta sqrt((1 - a_prev) / (1 - a_t)) sqrt(1 - a_t / a_prev)

    eta = 0: deterministic (the same x_T gives the same x_0); eta = 1: DDPM's posterior
    variance. The final step goes to a_prev = 1, i.e. returns f_theta at the last timestep.
    """
    if eta < 0:
        raise ValueError(f"ddim_sample: eta must be >= 0, got {eta}")
    taus = ddim_timesteps(schedule.num_timesteps, num_steps)
    x = pydl.randn(*shape) if x_T is None else x_T
    traj = [x]
    ab = schedule.alphas_cumprod
    with pydl.no_grad():
        for i, t in enumerate(taus):
            a_t = ab[t]
            a_prev = ab[taus[i + 1]] if i + 1 < len(taus) else 1.0
            eps = model(x, pydl.full((shape[0],), int(t), dtype=pydl.int64))
            x0_pred = (x - math.sqrt(1 - a_t) * eps) * (1 / math.sqrt(a_t))
            sigma = eta * math.sqrt((1 - a_prev) / (1 - a_t)) * math.sqrt(max(1 - a_t / a_prev, 0.0))
            x = math.sqrt(a_prev) * x0_pred + math.sqrt(max(1 - a_prev - sigma ** 2, 0.0)) * eps
            if sigma > 0:
                x = x + sigma * pydl.randn(*shape, dtype=x.dtype)
            traj.append(x)
    return (x, traj) if return_trajectory else x
