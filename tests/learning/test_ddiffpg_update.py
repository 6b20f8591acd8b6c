"""The rules of DDiffPG's update on a tiny replay: which reward each critic learns, which
embedding each actor sample gets, and that a mode left without data is not touched."""

from __future__ import annotations

import pytest
import torch

from isaacgymenvs_ddiffpg.learning.agents import make_agent
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG, actor_embeddings
from isaacgymenvs_ddiffpg.learning.diffusion import DiffusionPolicy
from isaacgymenvs_ddiffpg.learning.target_actions import improve_target_actions

NUM_ENVS, LENGTH = 8, 4


def agent(**overrides) -> DDiffPG:
    """DDiffPG on 2-d positions with 1-d actions; tiny networks, no intrinsic reward."""
    cfg = DDiffPGConfig(
        **{
            "critic_hidden": [32, 32],
            "num_atoms": 21,
            "actor_hidden": [32],
            "time_dim": 8,
            "novelty_hidden": [16],
            "novelty_out_dim": 8,
            "batch_size": 128,
            "memory_size": 64,
            "action_steps": 2,
            "critic_lr": 3e-3,
            "intrinsic_scale": 0.0,
            "cluster_threshold": 5.0,
            **overrides,
        }
    )
    algo = make_agent(cfg, EnvSpec(2, 1, 2, LENGTH, NUM_ENVS, 10.0), "cpu", seed=0)
    assert isinstance(algo, DDiffPG)
    return algo


def fill(algo: DDiffPG, episodes: int = 4) -> None:
    """Envs 0-3 walk right and reach the goal on their third step (reward 10, terminal); envs
    4-7 walk up and time out after 4 steps with no reward."""
    gen = torch.Generator().manual_seed(1)
    right = torch.arange(NUM_ENVS) < 4
    for _ in range(episodes):
        pos = torch.zeros(NUM_ENVS, 2)
        for step in range(LENGTH):
            action = torch.rand(NUM_ENVS, 1, generator=gen) * 2 - 1
            move = torch.where(right[:, None], torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
            nxt = pos + move
            goal = right & (step == 2)
            timeout = ~right & (step == LENGTH - 1)
            done = goal | timeout
            algo.replay.add(pos, action, 10.0 * goal, nxt, goal, done, goal.long())
            pos = torch.where(done[:, None], torch.zeros(2), nxt)


def test_explore_critic_learns_intrinsic_only_and_mode_critics_extrinsic_too() -> None:
    algo = fill_and_discover(agent())
    for _ in range(300):
        algo.update()
    at_goal = torch.tensor([[[1.0, 0.0]] * 8])  # one step before the goal, any action
    action = torch.linspace(-1, 1, 8).view(1, 8, 1)
    q = algo.critic.q(at_goal.expand(2, -1, -1), action.expand(2, -1, -1))
    assert q[0].abs().max() < 1.0  # Q_explore: intrinsic reward only, here 0
    assert q[1].min() > 6.0  # Q_1: the success reward of 10 one step ahead


def test_route_bonus_gives_q_explore_the_goal_only_on_routes_no_mode_takes() -> None:
    at_goal = torch.tensor([[[1.0, 0.0]] * 8])  # one step before the goal, any action
    action = torch.linspace(-1, 1, 8).view(1, 8, 1)
    # the successes are too few for a mode: their route is new, and Q_explore learns the goal
    algo = agent(route_bonus=1.0, min_mode_size=100)
    fill(algo)
    algo.discover_modes()
    assert algo.num_groups == 1
    assert torch.equal(algo.replay.new_route, (algo.replay.success > 0) & algo.replay.closed)
    for _ in range(300):
        algo.update()
    assert algo.critic.q(at_goal, action)[0].min() > 6.0
    # once they are a mode, no success takes a new route: Q_explore learns the intrinsic only
    algo = fill_and_discover(agent(route_bonus=1.0))
    assert not algo.replay.new_route.any()
    for _ in range(300):
        algo.update()
    q = algo.critic.q(at_goal.expand(2, -1, -1), action.expand(2, -1, -1))
    assert q[0].abs().max() < 1.0 and q[1].min() > 6.0


def fill_and_discover(algo: DDiffPG) -> DDiffPG:
    fill(algo)
    found = algo.discover_modes()
    assert algo.num_groups == 2, found.plan
    return algo


def test_exploration_samples_keep_z_explore_mode_samples_drop_to_zero() -> None:
    group_z = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    gen = torch.Generator().manual_seed(0)
    always = actor_embeddings(group_z, 50, 1.0, gen)
    assert torch.equal(always[0], group_z[0].expand(50, 2))  # group 0 never drops its z
    assert not always[1:].any()
    never = actor_embeddings(group_z, 50, 0.0, gen)
    assert torch.equal(never, group_z[:, None, :].expand(3, 50, 2))
    some = actor_embeddings(group_z, 4000, 0.25, gen)
    dropped = (some[1:] == 0).all(dim=-1).float().mean()
    assert 0.22 < float(dropped) < 0.28 and (some[0] != 0).all()


@pytest.mark.parametrize("radius", [None, 0.05])
def test_a_mode_without_data_keeps_its_critic_target_and_samples(radius: float | None) -> None:
    algo = fill_and_discover(agent(target_radius=radius))
    algo.replay.set_groups(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    for _ in range(3):  # Adam moments of both groups are warm
        algo.update()
    algo.replay.set_groups(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    # stale targets farther from the stored actions than the radius: they stay as they are
    algo.replay.target_action[1] = (algo.replay.action + 0.5).clamp(-1.0, 1.0)

    def snapshot() -> dict[str, list[torch.Tensor]]:
        def group(params, g: int) -> list[torch.Tensor]:
            return [p.detach().view(2, 2, -1)[g].clone() for p in params]

        opt = algo.critic_opt
        return {
            "critic": group(algo.critic.parameters(), 1),
            "target": group(algo.critic_target.parameters(), 1),
            "moments": [m.view(2, -1)[1].clone() for m in opt.exp_avg],
            "step": [opt.step_count[1].clone()],
            "target_actions": [algo.replay.target_action[1].clone()],
            "explore": group(algo.critic.parameters(), 0),
        }

    before = snapshot()
    for _ in range(5):
        stats = algo.update()
    assert bool(stats["health/skipped_updates"] == 0)
    after = snapshot()
    for key in ("critic", "target", "moments", "step", "target_actions"):
        for then, now in zip(before[key], after[key], strict=True):
            assert torch.equal(then, now), f"mode 1's {key} changed without data"
    explore = zip(before["explore"], after["explore"], strict=True)
    assert any(not torch.equal(then, now) for then, now in explore)  # Q_explore did train


def test_success_share_fills_a_modes_batch_with_successes_and_clones_only_them() -> None:
    algo = fill_and_discover(agent(mode_success_share=0.5))  # mode 1 also holds the failures
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    clone_loss = algo.actor_loss

    def recording(actor, cond, target, timestep, noise, weight):
        seen.append((cond.detach().clone(), weight.detach().clone()))
        return clone_loss(actor, cond, target, timestep, noise, weight)

    algo.actor_loss = recording
    for _ in range(5):
        algo.update()
    cond = torch.cat([c.view(2, -1, c.shape[-1]) for c, _ in seen], dim=1)
    weight = torch.cat([w.view(2, -1) for _, w in seen], dim=1)
    up = cond[..., 1] > 0  # the envs that walked up never reached the goal
    assert bool(weight[0].all())  # exploration clones everything
    assert bool(up[0].any()) and bool(up[1].any())  # mode 1 drew failures
    assert not bool(weight[1][up[1]].any())  # and cloned none of them
    assert 0.55 < float(weight[1].mean()) < 0.9  # half the batch, and successes among the rest


def test_explore_flat_grad_scales_with_q_explores_slopes() -> None:
    """The relative floor damps Q_explore's ascent the same whatever the size of its slopes,
    where an absolute floor fit for the mode critics freezes small ones."""

    def q_of(scale: float):
        def q(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
            return scale * action.sum(-1)

        return q

    obs, start = torch.zeros(1, 32, 1), torch.zeros(1, 32, 2)
    moved = {}
    for scale in (0.01, 2.0):
        for name, kwargs in (("relative", {"relative_flat": 0.3}), ("flat", {"flat_grad": 0.02})):
            out = improve_target_actions(q_of(scale), obs, start, steps=5, lr=0.1, **kwargs)
            moved[name, scale] = float((out - start).mean())
    # equal up to Adam's epsilon (1e-5 against a batch-mean slope of 3e-4)
    torch.testing.assert_close(moved["relative", 0.01], moved["relative", 2.0], rtol=0.05, atol=0)
    assert 0.3 < moved["relative", 0.01] < 0.5  # 5 steps of 0.1 / 1.3
    assert moved["flat", 0.01] < 0.5 * moved["flat", 2.0]


def test_masked_clone_loss_is_the_mean_over_kept_samples() -> None:
    torch.manual_seed(0)
    actor = DiffusionPolicy(3, 2, 5, 8, (16,))
    cond, target = torch.randn(6, 3), torch.rand(6, 2) * 2 - 1

    def loss(weight: torch.Tensor | None) -> torch.Tensor:
        return actor.loss(cond, target, torch.Generator().manual_seed(7), weight)

    each = torch.stack([loss(torch.eye(6)[i]) for i in range(6)])
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    torch.testing.assert_close(loss(mask), each[mask.bool()].mean())
    torch.testing.assert_close(loss(torch.ones(6)), loss(None))
    assert loss(torch.zeros(6)) == 0


def test_target_radius_keeps_the_modes_targets_near_their_stored_actions() -> None:
    """Many updates carry targets far up the critics' slopes; with a radius the mode's targets
    stay within it of the stored actions, while Q_explore's move as far as without one."""

    def drift(**overrides) -> tuple[float, float]:
        algo = fill_and_discover(agent(action_lr=0.3, **overrides))
        for _ in range(40):
            algo.update()
        stored = algo.replay.valid[..., None, None] & algo.replay.closed[..., None, None]
        moved = (algo.replay.target_action - algo.replay.action[None]).abs() * stored
        return float(moved[0].max()), float(moved[1].max())

    explore_free, mode_free = drift()
    explore_bound, mode_bound = drift(target_radius=0.05)
    assert mode_free > 0.2  # unbounded, the ascent carries the mode's targets away
    assert mode_bound <= 0.05 + 1e-6
    assert explore_bound > 0.2 and abs(explore_bound - explore_free) < 0.5 * explore_free


def test_further_explorers_follow_the_modes_learn_intrinsic_only_and_keep_their_critics() -> None:
    algo = agent(explorers=3)
    assert algo.num_groups == 3 and algo.mode_ids == []
    first = algo.critic.q(torch.zeros(3, 1, 2), torch.zeros(3, 1, 1)).flatten()
    assert len(set(first.tolist())) == 3  # each explorer's critic starts from its own weights
    z = algo.group_z.clone()
    assert not torch.equal(z[0], z[1]) and not torch.equal(z[1], z[2])
    fill(algo)
    algo.update()
    before = algo.critic.q(torch.zeros(3, 1, 2), torch.zeros(3, 1, 1)).flatten()
    algo.discover_modes()
    # one mode (group 1); the further explorers move behind it with their critics and z
    assert algo.mode_ids == [1] and algo.num_groups == 4
    assert algo.explorer_mask().tolist() == [True, False, True, True]
    after = algo.critic.q(torch.zeros(4, 1, 2), torch.zeros(4, 1, 1)).flatten()
    assert after[[0, 2, 3]].tolist() == before.tolist()
    assert torch.equal(algo.group_z[[0, 2, 3]], z)
    for _ in range(300):
        algo.update()
    at_goal = torch.tensor([[[1.0, 0.0]] * 8]).expand(4, -1, -1)
    q = algo.critic.q(at_goal, torch.linspace(-1, 1, 8).view(1, 8, 1).expand(4, -1, -1))
    assert q[[0, 2, 3]].abs().max() < 1.0  # the explorers: intrinsic reward only, here 0
    assert q[1].min() > 6.0  # the mode: the success reward
    drop = actor_embeddings(algo.group_z, 200, 1.0, algo.generator, algo.explorer_mask())
    assert torch.equal(drop[[0, 2, 3]], algo.group_z[[0, 2, 3], None].expand(-1, 200, -1))
    assert not drop[1].any()  # every mode sample dropped to z = 0


def test_further_explorers_draw_every_transition_and_no_success_share() -> None:
    algo = agent(explorers=2, mode_success_share=1.0)
    fill(algo)
    algo.discover_modes()
    batch = algo.replay.sample(500, 3, torch.Generator().manual_seed(0), 1.0, False, 2)
    up = batch["obs"][..., 1] > 0  # the failures walk up, the successes right
    assert not bool(up[1].any())  # the mode: its successes only
    for group in (0, 2):  # the explorers: all stored data, failures included
        assert 0.3 < float(up[group].float().mean()) < 0.7
        assert bool(batch["success"][group].all()) and bool(batch["has_data"][group])
