"""Tests of the positional encoding, RND networks and NovelD intrinsic reward."""

import math

import torch

from isaacgymenvs_ddiffpg.learning.novelty import RND, Novelty, positional_encoding


def test_positional_encoding_shape_and_values():
    x = torch.tensor([[0.5, -1.25]])
    encoded = positional_encoding(x, num_frequencies=10)
    assert encoded.shape == (1, 2 * (1 + 2 * 10))
    torch.testing.assert_close(encoded[0, :2], x[0])
    for k in range(10):
        sin_block = encoded[0, 2 + 4 * k : 4 + 4 * k]
        cos_block = encoded[0, 4 + 4 * k : 6 + 4 * k]
        expected_sin = torch.tensor([math.sin(2**k * 0.5), math.sin(2**k * -1.25)])
        expected_cos = torch.tensor([math.cos(2**k * 0.5), math.cos(2**k * -1.25)])
        torch.testing.assert_close(sin_block, expected_sin)
        torch.testing.assert_close(cos_block, expected_cos)
    assert positional_encoding(torch.zeros(4, 7, 3), 2).shape == (4, 7, 15)


def test_rnd_target_is_frozen_and_orthogonal():
    rnd = RND(6, hidden=(32, 16), out_dim=8)
    assert not any(p.requires_grad for p in rnd.target.parameters())
    first = rnd.target[0]
    # (32, 6) weight with orthonormal columns scaled by gain sqrt(2).
    torch.testing.assert_close(first.weight.T @ first.weight, 2.0 * torch.eye(6))
    assert (first.bias == 0).all()


def test_encode_positions_only():
    novelty = Novelty(obs_dim=5, pos_dim=2, hidden=(16,), out_dim=4)
    obs = torch.randn(3, 5)
    encoded = novelty.encode(obs)
    assert encoded.shape == (3, 2 * 21 + 3)
    torch.testing.assert_close(encoded[:, :42], positional_encoding(obs[:, :2], 10))
    torch.testing.assert_close(encoded[:, 42:], obs[:, 2:])
    assert Novelty(obs_dim=5, pos_dim=2, pos_enc=False).encode(obs) is obs


def test_noveld_reward_is_non_negative_and_rnd_reward_is_scaled_novelty():
    torch.manual_seed(0)
    noveld = Novelty(obs_dim=4, pos_dim=2, hidden=(32, 32), out_dim=8)
    obs, next_obs = torch.randn(512, 4), torch.randn(512, 4)
    reward = noveld.intrinsic_reward(obs, next_obs)
    assert reward.shape == (512,) and (reward >= 0).all() and (reward > 0).any()
    expected = 0.01 * (noveld.novelty(next_obs) - 0.5 * noveld.novelty(obs)).clamp_min(0)
    torch.testing.assert_close(reward, expected)
    # Same-state transitions give (1 - alpha) N(s) > 0; a far more novel s gives 0.
    same = noveld.intrinsic_reward(obs, obs)
    torch.testing.assert_close(same, 0.005 * noveld.novelty(obs))
    rnd = Novelty(obs_dim=4, pos_dim=2, novelty_type="rnd", hidden=(32, 32), out_dim=8)
    torch.testing.assert_close(rnd.intrinsic_reward(obs, next_obs), 0.01 * rnd.novelty(next_obs))


def test_novelty_drops_for_revisited_states():
    torch.manual_seed(0)
    novelty = Novelty(obs_dim=4, pos_dim=2, hidden=(64, 64), out_dim=16)
    optimizer = torch.optim.AdamW(novelty.rnd.predictor.parameters(), lr=1e-3)
    visited = torch.rand(64, 4) * 2 - 1
    unvisited = visited + torch.tensor([4.0, 4.0, 0.0, 0.0])
    before_visited, before_unvisited = novelty.novelty(visited), novelty.novelty(unvisited)
    for _ in range(300):
        loss = novelty.loss(visited)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after_visited, after_unvisited = novelty.novelty(visited), novelty.novelty(unvisited)
    assert after_visited.mean() < 0.2 * before_visited.mean()
    assert after_unvisited.mean() > 2.0 * after_visited.mean()
    assert (before_unvisited > 0).all()
    assert all(p.grad is None for p in novelty.rnd.target.parameters())


def test_reward_and_loss_share_one_pass():
    """The bonus and the predictor's loss from one pass equal the two computed apart, and so
    does the loss's gradient."""
    for novelty_type in ("noveld", "rnd"):
        torch.manual_seed(0)
        novelty = Novelty(obs_dim=4, pos_dim=2, novelty_type=novelty_type, hidden=(32,), out_dim=8)
        obs, next_obs = torch.randn(64, 4), torch.randn(64, 4)
        reward, loss = novelty.reward_and_loss(obs, next_obs)
        assert not reward.requires_grad and loss.requires_grad
        torch.testing.assert_close(reward, novelty.intrinsic_reward(obs, next_obs))
        expected = novelty.loss(torch.cat((obs, next_obs)))
        torch.testing.assert_close(loss, expected)
        params = list(novelty.rnd.predictor.parameters())
        for ours, theirs in zip(
            torch.autograd.grad(loss, params), torch.autograd.grad(expected, params), strict=True
        ):
            torch.testing.assert_close(ours, theirs)
