"""Intrinsic motivation: NeRF positional encoding, RND novelty and the NovelD / RND bonus."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.group_adamw import make_adamw

if TYPE_CHECKING:
    from isaacgymenvs_ddiffpg.learning.config import AgentConfig

NoveltyType = Literal["noveld", "rnd"]


def positional_encoding(x: Tensor, num_frequencies: int = 10) -> Tensor:
    """NeRF positional encoding gamma(x) = [x, sin(2^0 x), cos(2^0 x), ..., cos(2^{L-1} x)].

    Args:
        x: (..., D).
        num_frequencies: L.

    Returns:
        encoded: (..., D * (1 + 2L)). Block 0 is x; block 1 + 2k is sin(2^k x) and block
        2 + 2k is cos(2^k x), each block D wide.
    """
    frequencies = 2.0 ** torch.arange(num_frequencies, device=x.device, dtype=x.dtype)
    angles = x.unsqueeze(-2) * frequencies.unsqueeze(-1)
    features = torch.stack([angles.sin(), angles.cos()], dim=-2)
    return torch.cat([x, features.flatten(-3)], dim=-1)


def _mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """ELU MLP with orthogonal weights (gain sqrt(2)) and zero biases."""
    dims = (in_dim, *hidden, out_dim)
    layers: list[nn.Module] = []
    for dim_in, dim_out in zip(dims[:-1], dims[1:], strict=True):
        linear = nn.Linear(dim_in, dim_out)
        nn.init.orthogonal_(linear.weight, gain=math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.ELU()]
    return nn.Sequential(*layers[:-1])


class RND(nn.Module):
    """Random network distillation: a trained predictor chasing a frozen random target."""

    def __init__(
        self, in_dim: int, hidden: tuple[int, ...] = (512, 256, 128), out_dim: int = 128
    ) -> None:
        super().__init__()
        self.predictor = _mlp(in_dim, hidden, out_dim)
        self.target = _mlp(in_dim, hidden, out_dim)
        self.target.requires_grad_(False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Embed inputs with both networks.

        Args:
            x: (..., in_dim).

        Returns:
            predicted: (..., out_dim) f_hat(x).
            target: (..., out_dim) f(x), no gradient.
        """
        return self.predictor(x), self.target(x)


class Novelty(nn.Module):
    """Novelty N(s) = ||f_hat(s) - f(s)||_2 of RND over positionally encoded observations."""

    def __init__(
        self,
        obs_dim: int,
        pos_dim: int,
        novelty_type: NoveltyType = "noveld",
        pos_enc: bool = True,
        num_frequencies: int = 10,
        scale: float = 0.01,
        alpha: float = 0.5,
        hidden: tuple[int, ...] = (512, 256, 128),
        out_dim: int = 128,
    ) -> None:
        """Build the novelty model.

        Args:
            obs_dim: observation size.
            pos_dim: the first ``pos_dim`` observation dims are positions (xy or ee-xyz).
            novelty_type: 'noveld' (NovelD on RND) or 'rnd' (plain RND bonus).
            pos_enc: positionally encode the position dims (the ``intrinsic.pos_enc`` ablation).
            num_frequencies: L of the positional encoding.
            scale: reward scale.
            alpha: NovelD weight of the current state's novelty.
            hidden: RND hidden sizes.
            out_dim: RND embedding size.
        """
        super().__init__()
        if novelty_type not in ("noveld", "rnd"):
            raise ValueError(f"novelty_type must be 'noveld' or 'rnd', got {novelty_type!r}")
        self.pos_dim = pos_dim if pos_enc else 0
        self.novelty_type = novelty_type
        self.num_frequencies = num_frequencies
        self.scale = scale
        self.alpha = alpha
        in_dim = obs_dim + self.pos_dim * 2 * num_frequencies
        self.rnd = RND(in_dim, hidden, out_dim)

    def encode(self, obs: Tensor) -> Tensor:
        """Positionally encode the position dims and append the rest of the observation.

        Args:
            obs: (..., obs_dim).

        Returns:
            encoded: (..., obs_dim + 2 L pos_dim).
        """
        if self.pos_dim == 0:
            return obs
        position = positional_encoding(obs[..., : self.pos_dim], self.num_frequencies)
        return torch.cat([position, obs[..., self.pos_dim :]], dim=-1)

    def _distance(self, obs: Tensor) -> Tensor:
        predicted, target = self.rnd(self.encode(obs))
        return (predicted - target).norm(dim=-1)

    @torch.no_grad()
    def novelty(self, obs: Tensor) -> Tensor:
        """N(s) = ||f_hat(s) - f(s)||_2.

        Args:
            obs: (B, obs_dim).

        Returns:
            novelty: (B,).
        """
        return self._distance(obs)

    @torch.no_grad()
    def intrinsic_reward(self, obs: Tensor, next_obs: Tensor) -> Tensor:
        """Intrinsic reward of a transition, recomputed on every sampled batch.

        'noveld': scale * max(N(s') - alpha * N(s), 0); 'rnd': scale * N(s').

        Args:
            obs: (B, obs_dim) s.
            next_obs: (B, obs_dim) s'.

        Returns:
            intrinsic_reward: (B,), non-negative.
        """
        if self.novelty_type == "rnd":
            return self.scale * self._distance(next_obs)
        novelty, next_novelty = self._distance(torch.cat([obs, next_obs])).chunk(2)
        return self.scale * (next_novelty - self.alpha * novelty).clamp_min(0.0)

    def reward_and_loss(self, obs: Tensor, next_obs: Tensor) -> tuple[Tensor, Tensor]:
        """`intrinsic_reward` and `loss` of one batch from one pass of both networks.

        The reward needs the networks on s and s', the predictor's loss on the same s and s';
        with the predictor unchanged in between (DDiffPG and the baselines step it last), one
        forward serves both, and the loss keeps its graph for the novelty step's backward.

        Args:
            obs: (B, obs_dim) s.
            next_obs: (B, obs_dim) s'.

        Returns:
            intrinsic_reward: (B,) detached, as `intrinsic_reward(obs, next_obs)`.
            loss: scalar, as `loss(torch.cat((obs, next_obs)))`.
        """
        predicted, target = self.rnd(self.encode(torch.cat((obs, next_obs))))
        error = predicted - target
        novelty, next_novelty = error.detach().norm(dim=-1).chunk(2)
        if self.novelty_type == "rnd":
            reward = self.scale * next_novelty
        else:
            reward = self.scale * (next_novelty - self.alpha * novelty).clamp_min(0.0)
        return reward, error.square().mean()

    def loss(self, obs: Tensor) -> Tensor:
        """Predictor regression loss, mean_{b, j} (f_hat_j(s_b) - f_j(s_b))^2.

        Args:
            obs: (B, obs_dim), e.g. the batch's obs and next_obs concatenated.

        Returns:
            loss: scalar; only the predictor receives gradients.
        """
        predicted, target = self.rnd(self.encode(obs))
        return (predicted - target).square().mean()


def novelty_from_config(
    cfg: AgentConfig, obs_dim: int, pos_dim: int, device: torch.device
) -> tuple[Novelty, torch.optim.AdamW]:
    """The novelty model of an agent's settings and the AdamW of its RND predictor.

    Args:
        cfg: the agent's settings (its novelty and ``intrinsic`` fields).
        obs_dim: observation size.
        pos_dim: leading observation dims that are positions.
        device: where the model lives.
    """
    novelty = Novelty(
        obs_dim,
        pos_dim,
        cfg.intrinsic_type,  # type: ignore[arg-type]
        cfg.pos_enc,
        cfg.pos_enc_frequencies,
        cfg.intrinsic_scale,
        cfg.intrinsic_alpha,
        tuple(cfg.novelty_hidden),
        cfg.novelty_out_dim,
    ).to(device)
    optimizer = make_adamw(novelty.rnd.predictor.parameters(), lr=cfg.novelty_lr)
    return novelty, optimizer
