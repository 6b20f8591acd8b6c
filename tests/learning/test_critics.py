"""Tests of the stacked group critics: C51 projection, loss, group layers, remap and optimiser."""

import pytest
import torch
from torch import nn

from isaacgymenvs_ddiffpg.learning.critics import (
    GroupDistributionalDoubleQ,
    GroupLinear,
    c51_projection,
    critic_loss,
    remap_groups,
    soft_update,
    target_distribution,
)
from isaacgymenvs_ddiffpg.learning.group_adamw import GroupAdamW

PROBS = torch.tensor([0.1, 0.2, 0.3, 0.25, 0.15])
SUPPORT = torch.linspace(0.0, 4.0, 5)


@pytest.mark.parametrize(
    ("reward", "not_done", "gamma", "expected"),
    [
        # r + 0.5 z = [1, 1.5, 2, 2.5, 3]: half-atoms split evenly between neighbours.
        (1.0, 1.0, 0.5, [0.0, 0.2, 0.525, 0.275, 0.0]),
        # r + 0.9 z = [3, 3.9, 4.8, 5.7, 6.6]: everything above 4 is clipped onto the last atom.
        (3.0, 1.0, 0.9, [0.0, 0.0, 0.0, 0.12, 0.88]),
        # terminal: all mass at r = 2.3, split 0.7 / 0.3 between atoms 2 and 3.
        (2.3, 0.0, 0.99, [0.0, 0.0, 0.7, 0.3, 0.0]),
        # negative reward below v_min is clipped onto the first atom.
        (-1.0, 0.0, 0.99, [1.0, 0.0, 0.0, 0.0, 0.0]),
    ],
)
def test_c51_projection_matches_hand_computation(reward, not_done, gamma, expected):
    projected = c51_projection(PROBS, torch.tensor(reward), torch.tensor(not_done), gamma, SUPPORT)
    torch.testing.assert_close(projected, torch.tensor(expected))


def test_c51_projection_keeps_mass_and_support():
    generator = torch.Generator().manual_seed(0)
    support = torch.linspace(0.0, 5.0, 51)
    probs = torch.rand(2, 3, 64, 51, generator=generator).softmax(-1)
    reward = torch.randn(3, 64, generator=generator) * 10
    not_done = (torch.rand(3, 64, generator=generator) > 0.3).float()
    projected = c51_projection(probs, reward, not_done, 0.99, support)
    assert projected.shape == (2, 3, 64, 51)
    assert projected.min() >= 0
    torch.testing.assert_close(projected.sum(-1), torch.ones(2, 3, 64))
    # The mean is that of r + gamma z clipped to [v_min, v_max] (exact for in-range atoms).
    shifted = (reward.unsqueeze(-1) + 0.99 * not_done.unsqueeze(-1) * support).clamp(0, 5)
    torch.testing.assert_close((projected * support).sum(-1), (probs * shifted).sum(-1))


def test_group_linear_equals_separate_linears():
    torch.manual_seed(0)
    group = GroupLinear(3, 6, 4)
    torch.manual_seed(0)
    separate = [nn.Linear(6, 4) for _ in range(3)]
    x = torch.randn(3, 5, 6)
    expected = torch.stack([layer(x[g]) for g, layer in enumerate(separate)])
    torch.testing.assert_close(group(x), expected)


def test_probs_and_q_shapes():
    critic = GroupDistributionalDoubleQ(3, 4, 2, hidden=(16, 16), num_atoms=11, v_max=10.0)
    obs, action = torch.randn(3, 7, 4), torch.rand(3, 7, 2)
    probs = critic.probs(obs, action)
    assert probs.shape == (2, 3, 7, 11)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 3, 7))
    q = critic.q(obs, action)
    assert q.shape == (3, 7)
    torch.testing.assert_close(q, (probs * critic.support).sum(-1).min(0).values)


def test_target_distribution_is_normalised_min_of_heads():
    torch.manual_seed(0)
    critic = GroupDistributionalDoubleQ(2, 3, 1, hidden=(8,), num_atoms=11, v_max=10.0)
    next_obs, next_action = torch.randn(2, 5, 3), torch.rand(2, 5, 1)
    reward, not_done = torch.rand(2, 5), torch.ones(2, 5)
    target = target_distribution(critic, next_obs, next_action, reward, not_done, 0.9)
    projected = c51_projection(
        critic.probs(next_obs, next_action), reward, not_done, 0.9, critic.support
    )
    minimum = projected.min(0).values
    torch.testing.assert_close(target, minimum / minimum.sum(-1, keepdim=True))


def test_critic_loss_decreases_on_toy_regression():
    """Terminal transitions with a per-group reward: each group's Q must approach its reward."""
    torch.manual_seed(0)
    groups, batch = 3, 64
    critic = GroupDistributionalDoubleQ(groups, 4, 2, hidden=(32, 32), num_atoms=21, v_max=10.0)
    target_critic = GroupDistributionalDoubleQ(
        groups, 4, 2, hidden=(32, 32), num_atoms=21, v_max=10.0
    )
    target_critic.load_state_dict(critic.state_dict())
    optimizer = GroupAdamW(critic.parameters(), groups, lr=3e-3)
    obs, action = torch.randn(groups, batch, 4), torch.rand(groups, batch, 2) * 2 - 1
    reward = torch.tensor([2.0, 5.0, 8.0]).view(3, 1).expand(groups, batch)
    not_done = torch.zeros(groups, batch)
    losses = []
    for _ in range(150):
        loss, group_loss = critic_loss(
            critic, target_critic, obs, action, reward, obs, action, not_done, 0.99
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        soft_update(target_critic, critic, 0.05)
        losses.append(group_loss)
    assert group_loss.shape == (groups,)
    assert (losses[-1] < 0.25 * losses[0]).all()
    torch.testing.assert_close(critic.q(obs, action).mean(1), reward[:, 0], atol=0.3, rtol=0)


def test_soft_update_lerps_parameters():
    online = GroupDistributionalDoubleQ(2, 3, 1, hidden=(8,))
    target = GroupDistributionalDoubleQ(2, 3, 1, hidden=(8,))
    before = [p.clone() for p in target.parameters()]
    soft_update(target, online, 0.05)
    for old, new, source in zip(before, target.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(new, 0.95 * old + 0.05 * source)


def test_group_adamw_matches_torch_adamw_per_group():
    """Two groups with different gradient scales each follow torch.optim.AdamW + clipping."""
    torch.manual_seed(0)
    layer = GroupLinear(2, 3, 2)
    references = [nn.Parameter(layer.weight[g].detach().clone()) for g in range(2)]
    optimizer = GroupAdamW([layer.weight], 2, lr=1e-2, weight_decay=0.1, max_grad_norm=1.0)
    reference_optimizers = [torch.optim.AdamW([p], lr=1e-2, weight_decay=0.1) for p in references]
    for step in range(5):
        grad = torch.randn(2, 3, 2) * torch.tensor([0.1, 10.0]).view(2, 1, 1) * (step + 1)
        layer.weight.grad = grad.clone()
        optimizer.step()
        for g, (param, reference) in enumerate(zip(references, reference_optimizers, strict=True)):
            param.grad = grad[g].clone()
            nn.utils.clip_grad_norm_([param], 1.0)
            reference.step()
    for g in range(2):
        torch.testing.assert_close(layer.weight[g], references[g].detach())


def test_remap_copies_group_identity_and_resets_fresh_optimiser_state():
    torch.manual_seed(0)
    online = GroupDistributionalDoubleQ(3, 4, 2, hidden=(16, 16), num_atoms=11)
    target = GroupDistributionalDoubleQ(3, 4, 2, hidden=(16, 16), num_atoms=11)
    optimizer = GroupAdamW(online.parameters(), 3)
    obs, action = torch.randn(3, 8, 4), torch.rand(3, 8, 2)
    for _ in range(3):
        loss, _ = critic_loss(
            online, target, obs, action, torch.rand(3, 8), obs, action, torch.ones(3, 8), 0.99
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    old_probs = online.probs(obs, action).detach()
    old_target_probs = target.probs(obs, action).detach()
    old_moments = [m.clone() for m in optimizer.exp_avg]
    # New groups: explore stays, old 2 keeps its optimiser, old 2 is duplicated with a fresh
    # optimiser, and a new cluster copies Q_explore with a fresh optimiser.
    source = torch.tensor([0, 2, 2, 0])
    fresh = torch.tensor([False, False, True, True])
    remap_groups(online, target, optimizer, source, fresh)

    new_obs, new_action = obs[source], action[source]
    new_probs = online.probs(new_obs, new_action)
    assert new_probs.shape == (2, 4, 8, 11)
    torch.testing.assert_close(new_probs, old_probs[:, source])
    torch.testing.assert_close(target.probs(new_obs, new_action), old_target_probs[:, source])
    torch.testing.assert_close(optimizer.step_count, torch.tensor([3.0, 3.0, 0.0, 0.0]))
    for old, new in zip(old_moments, optimizer.exp_avg, strict=True):
        torch.testing.assert_close(new[:2], old[source[:2]])
        assert (new[2:] == 0).all() and (old[source[:2]] != 0).any()
    # The remapped optimiser keeps working, and the copies diverge only through their own data.
    loss, group_loss = critic_loss(
        online,
        target,
        new_obs,
        new_action,
        torch.rand(4, 8),
        new_obs,
        new_action,
        torch.ones(4, 8),
        0.99,
    )
    optimizer.zero_grad()
    loss.backward()
    grad_norm = optimizer.step()
    assert grad_norm.shape == (4,) and group_loss.shape == (4,)
    torch.testing.assert_close(optimizer.step_count, torch.tensor([4.0, 4.0, 1.0, 1.0]))


def test_zero_group_weight_leaves_that_group_untrained():
    torch.manual_seed(0)
    critic = GroupDistributionalDoubleQ(3, 4, 2, hidden=(16,), num_atoms=11, v_max=10.0)
    target_critic = GroupDistributionalDoubleQ(3, 4, 2, hidden=(16,), num_atoms=11, v_max=10.0)
    obs, action = torch.randn(3, 8, 4), torch.rand(3, 8, 2)
    reward, not_done = torch.ones(3, 8), torch.ones(3, 8)
    loss, group_loss = critic_loss(
        critic,
        target_critic,
        obs,
        action,
        reward,
        obs,
        action,
        not_done,
        0.99,
        group_weight=torch.tensor([1.0, 0.0, 1.0]),
    )
    loss.backward()
    first = next(critic.parameters())
    per_group = first.grad.view(3, -1).abs().sum(dim=1)
    assert per_group[1] == 0 and per_group[0] > 0 and per_group[2] > 0
    assert (group_loss > 0).all()  # the logged loss still covers every group


def kernel_projection(next_probs, reward, not_done, gamma, support):
    """C51's projection written with the full (A, A) triangular kernel."""
    num_atoms = support.shape[0]
    delta = (support[-1] - support[0]) / (num_atoms - 1)
    shifted = reward.unsqueeze(-1) + gamma * not_done.unsqueeze(-1) * support
    position = (shifted.clamp(support[0], support[-1]) - support[0]) / delta
    kernel = (1.0 - (position.unsqueeze(-1) - torch.arange(num_atoms)).abs()).clamp_min(0.0)
    return (next_probs.unsqueeze(-2) @ kernel).squeeze(-2)


def test_c51_projection_is_the_triangular_kernel():
    """The cumulative-sum projection is the kernel's, for rewards below, inside and above the
    support, terminal or not, and several batch shapes."""
    generator = torch.Generator().manual_seed(3)
    support = torch.linspace(-2.0, 12.0, 51)
    probs = torch.rand(2, 3, 200, 51, generator=generator).softmax(-1)
    reward = torch.randn(3, 200, generator=generator) * 8
    reward[0, :10] = 0.28  # on an atom exactly
    not_done = (torch.rand(3, 200, generator=generator) > 0.3).float()
    for gamma in (0.99, 0.5, 1.0):
        expected = kernel_projection(probs, reward, not_done, gamma, support)
        projected = c51_projection(probs, reward, not_done, gamma, support)
        torch.testing.assert_close(projected, expected, atol=1e-6, rtol=0)
        assert projected.min() >= 0
    one = (probs[0, 0], reward[0], not_done[0], 0.9, support)  # no leading head dim
    torch.testing.assert_close(c51_projection(*one), kernel_projection(*one), atol=1e-6, rtol=0)
