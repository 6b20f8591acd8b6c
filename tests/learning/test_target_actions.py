"""Tests of the batched Adam ascent that improves stored target actions."""

import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.target_actions import improve_target_actions


class QuadraticCritic(nn.Module):
    """Q_g(s, a) = -||a - peak_g||^2, one peak per group; peak: (G, act_dim)."""

    def __init__(self, peak: Tensor) -> None:
        super().__init__()
        self.peak = nn.Parameter(peak)

    def forward(self, obs: Tensor, action: Tensor) -> Tensor:
        return -(action - self.peak.unsqueeze(1)).square().sum(-1)


def test_ascent_raises_q_towards_each_groups_own_peak():
    generator = torch.Generator().manual_seed(0)
    critic = QuadraticCritic(torch.tensor([[0.3, -0.2], [-0.5, 0.6]]))
    obs = torch.randn(2, 128, 3, generator=generator)
    action = torch.rand(2, 128, 2, generator=generator) * 2 - 1
    improved = improve_target_actions(critic, obs, action)
    assert improved.shape == action.shape and not improved.requires_grad
    with torch.no_grad():
        assert (critic(obs, improved) > critic(obs, action)).all()
        distance_before = (action - critic.peak.unsqueeze(1)).norm(dim=-1).mean(1)
        distance_after = (improved - critic.peak.unsqueeze(1)).norm(dim=-1).mean(1)
    assert (distance_after < 0.5 * distance_before).all()
    assert critic.peak.grad is None  # the critic is frozen: nothing accumulates in it


def test_ascent_stays_in_the_box_when_the_peak_is_outside():
    critic = QuadraticCritic(torch.tensor([[3.0, -3.0]]))
    action = torch.zeros(1, 64, 2)
    improved = improve_target_actions(critic, torch.zeros(1, 64, 1), action, steps=60)
    bound = 1.0 - 1e-5
    assert improved.abs().max() <= bound
    torch.testing.assert_close(improved, torch.tensor([bound, -bound]).expand(1, 64, 2))


def test_ascent_matches_torch_adam_with_clipping():
    """One group reproduces torch.optim.Adam + clip_grad_norm_ + clamp, step for step."""
    generator = torch.Generator().manual_seed(1)
    critic = QuadraticCritic(torch.tensor([[0.9, -0.9, 0.2]]))
    obs = torch.zeros(1, 16, 1)
    start = torch.rand(1, 16, 3, generator=generator) * 2 - 1
    # A steep critic so that the gradient norm exceeds 1 and clipping is exercised.

    def steep(obs: Tensor, action: Tensor) -> Tensor:
        return 50.0 * critic(obs, action)

    improved = improve_target_actions(steep, obs, start, steps=10)

    action = nn.Parameter(start.clone())
    optimizer = torch.optim.Adam([action], lr=0.03, eps=1e-5)
    for _ in range(10):
        loss = -steep(obs, action).mean()
        optimizer.zero_grad()
        loss.backward()
        assert action.grad.norm() > 1.0
        nn.utils.clip_grad_norm_([action], 1.0)
        optimizer.step()
        with torch.no_grad():
            action.clamp_(-1 + 1e-5, 1 - 1e-5)
    torch.testing.assert_close(improved, action.detach())


def test_flat_grad_keeps_flat_directions_still():
    """Released Adam walks an action as far along a nearly flat direction as along a steep
    one; with `flat_grad` the flat direction barely moves and the steep one still does."""

    def q(obs: Tensor, action: Tensor) -> Tensor:  # steep in a0, nearly flat in a1
        return 2.0 * action[..., 0] + 0.001 * action[..., 1]

    obs = torch.zeros(1, 32, 1)
    start = torch.zeros(1, 32, 2)
    released = improve_target_actions(q, obs, start, steps=10, lr=0.03) - start
    damped = improve_target_actions(q, obs, start, steps=10, lr=0.03, flat_grad=0.05) - start
    assert released[..., 1].abs().mean() > 0.2  # ~lr per step whatever the slope
    assert damped[..., 1].abs().mean() < 0.1 * released[..., 1].abs().mean()
    assert damped[..., 0].mean() > 0.9 * released[..., 0].mean() > 0.25
