"""DDPM diffusion actor: epsilon-prediction network, reverse-chain sampling and its loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.core import smooth_target_action
from isaacgymenvs_ddiffpg.learning.ddpm import DDPMSchedule, cosine_cap_betas


def mish_inplace(x: Tensor) -> Tensor:
    """Mish in place, without autograd: x tanh(softplus(x)) = x n / (n + 2), n = e^x (e^x + 2).

    About twice as fast as ``F.mish`` on CPU (one exp instead of exp, log1p and tanh); the
    exponent is capped at 20, where n / (n + 2) is 1 in float32.
    """
    n = x.clamp_max(20.0).exp_()
    n.mul_(n + 2.0)
    return x.mul_(n.div_(n + 2.0))


class SinusoidalEmbedding(nn.Module):
    """Transformer-style sinusoidal features of a scalar timestep."""

    frequencies: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        frequencies = torch.exp(-math.log(10000.0) * torch.arange(half) / (half - 1))
        self.register_buffer("frequencies", frequencies)

    def forward(self, timestep: Tensor) -> Tensor:
        """Embed timesteps.

        Args:
            timestep: (B,) int or float timesteps.

        Returns:
            features: (B, dim) = [sin(k w), cos(k w)].
        """
        angles = timestep.float().unsqueeze(-1) * self.frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class DiffusionNet(nn.Module):
    """Epsilon network eps_theta(a_k, k, cond): time features, condition and noisy action -> MLP.

    The first layer acts on ``[time features, cond, a_k]``. Its three column blocks are applied
    separately where that saves work (same parameters, same function): the time features of the
    K timesteps are computed once per call instead of once per sample, and the condition's
    block once per reverse chain instead of once per denoising step (`project_cond`,
    `project_time`, `eps_from`).
    """

    def __init__(
        self,
        cond_dim: int,
        act_dim: int,
        time_dim: int = 256,
        hidden: tuple[int, ...] = (1024, 512, 256),
    ) -> None:
        super().__init__()
        self.time_dim, self.cond_dim = time_dim, cond_dim
        self.time_encoder = nn.Sequential(
            SinusoidalEmbedding(time_dim),
            nn.Linear(time_dim, 4 * time_dim),
            nn.Mish(),
            nn.Linear(4 * time_dim, time_dim),
        )
        layers: list[nn.Module] = []
        in_dim = time_dim + cond_dim + act_dim
        for width in hidden:
            layers += [nn.Linear(in_dim, width), nn.Mish()]
            in_dim = width
        layers.append(nn.Linear(in_dim, act_dim))
        self.body = nn.Sequential(*layers)

    @property
    def first(self) -> nn.Linear:
        """The first body layer, on ``[time features, cond, a_k]``."""
        first = self.body[0]
        assert isinstance(first, nn.Linear)
        return first

    def project_time(self, num_steps: int, device: torch.device) -> Tensor:
        """First-layer pre-activation of the time features of k = 0..num_steps-1.

        Returns:
            (num_steps, hidden[0]) = W_time @ time_encoder(k): row k for timestep k (picked by
            a one-hot matmul where gradients flow, for a deterministic backward).
        """
        table = self.time_encoder(torch.arange(num_steps, device=device))
        return F.linear(table, self.first.weight[:, : self.time_dim])

    def project_cond(self, cond: Tensor) -> Tensor:
        """First-layer pre-activation of the condition, bias included.

        Args:
            cond: (B, cond_dim).

        Returns:
            (B, hidden[0]) = W_cond @ cond + b.
        """
        columns = slice(self.time_dim, self.time_dim + self.cond_dim)
        return F.linear(cond, self.first.weight[:, columns], self.first.bias)

    def eps_from(self, noisy_action: Tensor, time_proj: Tensor, cond_proj: Tensor) -> Tensor:
        """Predict the noise from the projected time and condition.

        Args:
            noisy_action: (B, act_dim) a_k.
            time_proj: (B, hidden[0]) or (hidden[0],) rows of `project_time`.
            cond_proj: (B, hidden[0]) from `project_cond`.

        Returns:
            eps_hat: (B, act_dim).
        """
        action_weight = self.first.weight[:, self.time_dim + self.cond_dim :]
        hidden = torch.addmm(cond_proj + time_proj, noisy_action, action_weight.T)
        for layer in list(self.body)[1:]:
            if isinstance(layer, nn.Mish) and not torch.is_grad_enabled():
                hidden = mish_inplace(hidden)  # sampling: every hidden tensor here is a fresh one
            else:
                hidden = layer(hidden)
        return hidden

    def forward(self, noisy_action: Tensor, timestep: Tensor, cond: Tensor) -> Tensor:
        """Predict the noise added to the action (the plain, unsplit form).

        Args:
            noisy_action: (B, act_dim) a_k.
            timestep: (B,) long k.
            cond: (B, cond_dim) state and mode embedding.

        Returns:
            eps_hat: (B, act_dim).
        """
        time_features = self.time_encoder(timestep)
        return self.body(torch.cat([time_features, cond, noisy_action], dim=-1))


class DiffusionPolicy(nn.Module):
    """Conditional DDPM policy: ancestral sampling and the simplified DDPM training loss."""

    def __init__(
        self,
        cond_dim: int,
        act_dim: int,
        denoising_steps: int = 5,
        time_dim: int = 256,
        hidden: tuple[int, ...] = (1024, 512, 256),
    ) -> None:
        super().__init__()
        self.act_dim = act_dim
        self.net = DiffusionNet(cond_dim, act_dim, time_dim, hidden)
        self.schedule = DDPMSchedule(denoising_steps)

    @property
    def denoising_steps(self) -> int:
        """K, the number of denoising steps."""
        return self.schedule.denoising_steps

    def chain_noise(
        self,
        batch: int,
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> Tensor:
        """Every standard normal draw of `batch` reverse chains: a_K, then the noise of the
        steps k = K-1 .. 1 (the last step, k = 0, is noise-free).

        Returns:
            noise: (K, batch, act_dim).
        """
        shape = (self.denoising_steps, batch, self.act_dim)
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)

    @torch.no_grad()
    def sample(self, cond: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Draw actions by running the full reverse chain (no gradient through the chain).

        Args:
            cond: (B, cond_dim) state and mode embedding.
            generator: optional generator on ``cond.device`` for all noise draws.

        Returns:
            action: (B, act_dim), in [-1, 1] by construction of the last step.
        """
        noise = self.chain_noise(cond.shape[0], generator, cond.device, cond.dtype)
        return self.denoise(cond, noise)

    def denoise(self, cond: Tensor, noise: Tensor) -> Tensor:
        """The reverse chain from given noise (`chain_noise`): a pure function of its inputs.

        Args:
            cond: (B, cond_dim) state and mode embedding.
            noise: (K, B, act_dim) a_K and the noise of steps K-1 .. 1.

        Returns:
            action: (B, act_dim) a_0.
        """
        with torch.no_grad():
            # 1. Start from a_K; the condition and the K time features enter the first layer the
            #    same way at every step, so they are projected once.
            action = noise[0]
            cond_proj = self.net.project_cond(cond)
            time_proj = self.net.project_time(self.denoising_steps, cond.device)
            for k in reversed(range(self.denoising_steps)):
                # 2. Predict the noise in a_k.
                eps_hat = self.net.eps_from(action, time_proj[k], cond_proj)
                # 3. Step to a_{k-1}; the last step (k = 0) is noise-free.
                step_noise = noise[self.denoising_steps - k] if k > 0 else None
                action = self.schedule.step(eps_hat, k, action, step_noise)
            return action

    def loss_noise(
        self,
        batch: int,
        generator: torch.Generator | None,
        device: torch.device,
        dtype: torch.dtype,
    ) -> tuple[Tensor, Tensor]:
        """The draws of `loss` for `batch` samples: timesteps k (B,) long uniform in [0, K) and
        noise (B, act_dim) standard normal."""
        k = torch.randint(0, self.denoising_steps, (batch,), generator=generator, device=device)
        noise = torch.randn((batch, self.act_dim), generator=generator, device=device, dtype=dtype)
        return k, noise

    def loss(
        self,
        cond: Tensor,
        target_action: Tensor,
        generator: torch.Generator | None = None,
        weight: Tensor | None = None,
    ) -> Tensor:
        """Simplified DDPM loss E_{k, eps} ||eps - eps_theta(a_k, k, cond)||^2 (Ho et al. eq. 14).

        Args:
            cond: (B, cond_dim) state and mode embedding.
            target_action: (B, act_dim) actions to behaviour-clone.
            generator: optional generator on ``cond.device`` for k and eps.
            weight: (B,) optional 0/1 mask of the samples to learn from (the loss is the mean
                over the kept samples; none kept gives 0).

        Returns:
            loss: scalar, mean over batch and action dims.
        """
        k, noise = self.loss_noise(target_action.shape[0], generator, cond.device, cond.dtype)
        return self.loss_from(cond, target_action, k, noise, weight)

    def loss_from(
        self,
        cond: Tensor,
        target_action: Tensor,
        k: Tensor,
        noise: Tensor,
        weight: Tensor | None = None,
    ) -> Tensor:
        """`loss` with given draws (`loss_noise`): a pure function of its inputs.

        Args:
            cond: (B, cond_dim); target_action: (B, act_dim).
            k: (B,) long timesteps; noise: (B, act_dim).
            weight: (B,) optional 0/1 mask, as for `loss`.

        Returns:
            loss: scalar.
        """
        noisy_action = self.schedule.add_noise(target_action, noise, k)
        # Each sample's row of the time table, picked by a one-hot matmul: the same values as
        # indexing, but the backward is a matmul, whereas indexing's backward accumulates with
        # index_put, which adds in a run-dependent order on a multi-threaded CPU or a GPU.
        time_table = self.net.project_time(self.denoising_steps, cond.device)
        time_proj = F.one_hot(k, self.denoising_steps).to(time_table.dtype) @ time_table
        eps_hat = self.net.eps_from(noisy_action, time_proj, self.net.project_cond(cond))
        if weight is None:
            return F.mse_loss(eps_hat, noise)
        per_sample = (eps_hat - noise).square().mean(dim=-1)
        return (per_sample * weight).sum() / weight.sum().clamp_min(1.0)


def smoothed_sample(
    policy: DiffusionPolicy,
    cond: Tensor,
    chain_noise: Tensor,
    smooth_noise: Tensor,
    std: float,
    clip: float,
) -> Tensor:
    """a' for the critic's target: the reverse chain, then TD3's smoothing noise.

    Args:
        policy: the diffusion actor.
        cond: (B, cond_dim) next state and mode embedding.
        chain_noise: (K, B, act_dim) from `DiffusionPolicy.chain_noise`.
        smooth_noise: (B, act_dim) standard normal.
        std, clip: the smoothing noise's std and bound (`smooth_target_action`).

    Returns:
        next_action: (B, act_dim) in [-1, 1].
    """
    with torch.no_grad():
        return smooth_target_action(policy.denoise(cond, chain_noise), smooth_noise, std, clip)


__all__ = ["DDPMSchedule", "DiffusionNet", "DiffusionPolicy", "cosine_cap_betas", "smoothed_sample"]
