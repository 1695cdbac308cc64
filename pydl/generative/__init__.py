"""pydl.generative: the cheat sheet's generative models as losses, schedules and samplers.

- :mod:`~pydl.generative.vae`: the reparameterisation trick and the VAE loss (reconstruction
  + beta * KL to N(0, I));
- :mod:`~pydl.generative.gan`: the two-term discriminator loss and the non-saturating
  generator loss;
- :mod:`~pydl.generative.diffusion`: the DDPM noise schedule, ``q_sample``, the simplified
  loss (Algorithm 1), ancestral sampling (Algorithm 2) and DDIM sampling.

The networks (autoencoder, VAE, DCGAN pair, U-Net / DiT denoisers, MADE, RealNVP) live in
:mod:`pydl.models`.
"""
from .diffusion import DDPMSchedule, ddim_sample, ddpm_loss, ddpm_sample, q_sample
from .gan import discriminator_loss, generator_loss
from .vae import gaussian_kl, reparameterize, vae_loss

__all__ = ["DDPMSchedule", "ddim_sample", "ddpm_loss", "ddpm_sample", "discriminator_loss", "gaussian_kl",
           "generator_loss", "q_sample", "reparameterize", "vae_loss"]
