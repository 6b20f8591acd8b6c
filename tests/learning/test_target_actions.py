"""Tests of the batched Adam ascent that improves stored target actions."""

import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.critics import GroupDistributionalDoubleQ
from isaacgymenvs_ddiffpg.learning.target_actions import (
    ascend_critic,
    critic_q_and_grad,
    improve_target_actions,
    project_obs,
)


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


def test_hand_written_gradient_is_autograds():
    """The stacked critics' min(Q1, Q2) and its action gradient, written out, equal autograd's;
    so does the whole ascent, and the Q it reports is that of the actions it returns."""
    torch.manual_seed(0)
    critic = GroupDistributionalDoubleQ(3, 6, 4, hidden=(32, 16), num_atoms=21, v_max=12.0)
    obs, action = torch.randn(3, 40, 6), torch.rand(3, 40, 4) * 2 - 1
    q, grad = critic_q_and_grad(critic, project_obs(critic, obs), action)
    leaf = action.clone().requires_grad_(True)
    expected_q = critic.q(obs, leaf)
    (expected_grad,) = torch.autograd.grad(expected_q.sum(), leaf)
    torch.testing.assert_close(q, expected_q.detach())
    torch.testing.assert_close(grad, expected_grad)
    assert all(p.grad is None for p in critic.parameters())

    flat = torch.tensor([0.0, 0.02, 0.02])
    by_autograd = improve_target_actions(critic.q, obs, action, steps=8, lr=0.1, flat_grad=flat)
    by_hand, q_after = ascend_critic(critic, obs, action, steps=8, lr=0.1, flat_grad=flat)
    torch.testing.assert_close(by_hand, by_autograd, atol=1e-5, rtol=0)
    torch.testing.assert_close(q_after, critic.q(obs, by_hand).detach())
    assert (q_after.mean(1) > critic.q(obs, action).mean(1)).all()
    # a group that is not active keeps its stored actions
    kept, _ = ascend_critic(critic, obs, action, steps=2, active=torch.tensor([True, False, True]))
    assert torch.equal(kept[1], action[1]) and not torch.equal(kept[0], action[0])
