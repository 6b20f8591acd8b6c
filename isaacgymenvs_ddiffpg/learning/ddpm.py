"""The DDPM noise process: the cosine beta schedule, forward noising and ancestral steps."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

Timestep = int | Tensor


def cosine_cap_betas(denoising_steps: int, max_beta: float = 0.999) -> Tensor:
    """Betas of the ``squaredcos_cap_v2`` schedule (Nichol & Dhariwal 2021, eq. 17).

    beta_k = min(1 - abar(t_{k+1}) / abar(t_k), max_beta) with
    abar(t) = cos((t + 0.008) / 1.008 * pi / 2)^2 and t_k = k / K.

    Args:
        denoising_steps: K, the number of diffusion steps.
        max_beta: cap on each beta (the last step would otherwise be 1).

    Returns:
        betas: (K,) float32.
    """

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((k + 1) / denoising_steps) / alpha_bar(k / denoising_steps), max_beta)
        for k in range(denoising_steps)
    ]
    return torch.tensor(betas, dtype=torch.float32)


def _at(table: Tensor, k: Timestep, like: Tensor) -> Tensor:
    """Look up ``table[k]`` and shape it to broadcast against ``like: (B, ...)``."""
    if isinstance(k, int):
        return table[k]
    return table[k].view(-1, *([1] * (like.dim() - 1)))


class DDPMSchedule(nn.Module):
    """Discrete DDPM forward/reverse process with epsilon prediction and x0 clipping to [-1, 1].

    Matches ``diffusers.DDPMScheduler(num_train_timesteps=K, beta_schedule='squaredcos_cap_v2',
    clip_sample=True, prediction_type='epsilon', variance_type='fixed_small')`` sampled with all
    K steps. Timesteps are indexed k = 0..K-1; k = K-1 is the noisiest.

    Buffers (all (K,) float32): ``betas``, ``alphas``, ``alpha_bars``, ``alpha_bars_prev``
    (1 at k = 0), ``posterior_x0_coef``, ``posterior_xk_coef`` and ``posterior_std`` (the
    "fixed_small" posterior std, 0 at k = 0).
    """

    betas: Tensor
    alphas: Tensor
    alpha_bars: Tensor
    alpha_bars_prev: Tensor
    posterior_x0_coef: Tensor
    posterior_xk_coef: Tensor
    posterior_std: Tensor

    def __init__(self, denoising_steps: int = 5) -> None:
        super().__init__()
        self.denoising_steps = denoising_steps
        betas = cosine_cap_betas(denoising_steps)
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = torch.cat([torch.ones(1), alpha_bars[:-1]])
        # Posterior q(x_{k-1} | x_k, x0) = N(c0 * x0 + ck * x_k, var) (Ho et al. 2020, eq. 7).
        posterior_x0_coef = alpha_bars_prev.sqrt() * betas / (1.0 - alpha_bars)
        posterior_xk_coef = alphas.sqrt() * (1.0 - alpha_bars_prev) / (1.0 - alpha_bars)
        posterior_var = (1.0 - alpha_bars_prev) / (1.0 - alpha_bars) * betas
        posterior_std = posterior_var.clamp_min(1e-20).sqrt()
        posterior_std[0] = 0.0
        self.register_buffer("betas", betas)
        self.register_buffer("alphas", alphas)
        self.register_buffer("alpha_bars", alpha_bars)
        self.register_buffer("alpha_bars_prev", alpha_bars_prev)
        self.register_buffer("posterior_x0_coef", posterior_x0_coef)
        self.register_buffer("posterior_xk_coef", posterior_xk_coef)
        self.register_buffer("posterior_std", posterior_std)

    def add_noise(self, x0: Tensor, noise: Tensor, k: Timestep) -> Tensor:
        """Sample the forward process q(x_k | x0) = sqrt(abar_k) x0 + sqrt(1 - abar_k) noise.

        Args:
            x0: (B, act_dim) clean actions.
            noise: (B, act_dim) standard normal noise.
            k: int or (B,) long timesteps in [0, K).

        Returns:
            x_k: (B, act_dim).
        """
        alpha_bar = _at(self.alpha_bars, k, x0)
        return alpha_bar.sqrt() * x0 + (1.0 - alpha_bar).sqrt() * noise

    def predict_x0(self, eps_hat: Tensor, k: Timestep, x_k: Tensor) -> Tensor:
        """Invert the forward process for x0 given predicted noise, clipped to [-1, 1].

        Args:
            eps_hat: (B, act_dim) predicted noise.
            k: int or (B,) long timesteps.
            x_k: (B, act_dim) noisy actions.

        Returns:
            x0_hat: (B, act_dim).
        """
        alpha_bar = _at(self.alpha_bars, k, x_k)
        x0_hat = (x_k - (1.0 - alpha_bar).sqrt() * eps_hat) / alpha_bar.sqrt()
        return x0_hat.clamp(-1.0, 1.0)

    def step(self, eps_hat: Tensor, k: Timestep, x_k: Tensor, noise: Tensor | None) -> Tensor:
        """One ancestral reverse step x_k -> x_{k-1} ~ q(x_{k-1} | x_k, x0_hat).

        Args:
            eps_hat: (B, act_dim) predicted noise at step k.
            k: int or (B,) long timesteps.
            x_k: (B, act_dim) current sample.
            noise: (B, act_dim) standard normal noise, or None for the posterior mean. It is
                ignored at k = 0, where the posterior std is 0.

        Returns:
            x_{k-1}: (B, act_dim); at k = 0 this is the clipped x0 prediction.
        """
        x0_hat = self.predict_x0(eps_hat, k, x_k)
        mean = (
            _at(self.posterior_x0_coef, k, x_k) * x0_hat + _at(self.posterior_xk_coef, k, x_k) * x_k
        )
        if noise is None:
            return mean
        return mean + _at(self.posterior_std, k, x_k) * noise
