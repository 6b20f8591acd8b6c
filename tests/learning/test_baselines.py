"""TD3, SAC and DIPO: each update learns its critic and improves its actor; SAC's temperature
adapts; DIPO's target actions climb Q inside the action box; the novelty switch; the Trainer
trains and resumes every baseline, and so does `python train.py train=TD3Small ...`; the modes
of evaluated episodes are counted by DTW."""

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from isaacgymenvs_ddiffpg.learning.agents import config_from_dict, make_agent
from isaacgymenvs_ddiffpg.learning.baselines import (
    DIPO,
    SAC,
    TD3,
    BaselineConfig,
    DIPOConfig,
    SACConfig,
    TD3Config,
)
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.critics import critic_loss
from isaacgymenvs_ddiffpg.learning.mode_count import count_modes
from isaacgymenvs_ddiffpg.learning.player import Player
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from tests.learning.test_trainer import EASY, TINY, TINY_DIFFUSION
from tests.test_train_cli import train as train_cli

CONFIGS = {"td3": TD3Config, "sac": SACConfig, "dipo": DIPOConfig}
ACTORS = {"td3": {"actor_hidden": [32, 32]}, "sac": {"actor_hidden": [32, 32]}}
ACTORS["dipo"] = TINY_DIFFUSION
NUM_ENVS, OBS_DIM, ACT_DIM = 64, 4, 2


def tiny(algorithm: str, **overrides) -> BaselineConfig:
    return CONFIGS[algorithm](**{**TINY, **ACTORS[algorithm], "use_intrinsic": False, **overrides})


def bandit(cfg: BaselineConfig, seed: int = 0) -> TD3 | SAC | DIPO:
    """An agent whose replay holds one-step episodes with reward 5 (1 + a_0): terminal, so the
    critic's target is the reward itself and the best action has a_0 = 1."""
    agent = make_agent(cfg, EnvSpec(OBS_DIM, ACT_DIM, 2, 5, NUM_ENVS, 10.0), "cpu", seed)
    assert isinstance(agent, TD3 | SAC | DIPO)
    gen = torch.Generator().manual_seed(seed)
    done = torch.ones(NUM_ENVS, dtype=torch.bool)
    for _ in range(2):
        obs = torch.randn(NUM_ENVS, OBS_DIM, generator=gen)
        action = torch.rand(NUM_ENVS, ACT_DIM, generator=gen) * 2 - 1
        reward = 5.0 * (1.0 + action[:, 0])
        no_goal = torch.zeros(NUM_ENVS, dtype=torch.long)
        agent.replay.add(obs, action, reward, obs, done, done, no_goal)
    return agent


def fixed_batch_loss(agent: TD3 | SAC | DIPO, batch: dict[str, torch.Tensor]) -> float:
    with torch.no_grad():
        loss, _ = critic_loss(
            agent.critic,
            agent.critic_target,
            batch["obs"],
            batch["action"],
            batch["reward"],
            batch["next_obs"],
            batch["action"],
            (~batch["terminated"]).float(),
            agent.cfg.gamma,
        )
    return float(loss)


def policy_a0(agent: TD3 | SAC | DIPO, obs: torch.Tensor) -> float:
    return float(agent.act(obs, agent.group_z.expand(len(obs), -1))[:, 0].mean())


@pytest.mark.parametrize("algorithm", ["td3", "sac", "dipo"])
def test_update_fits_the_critic_and_moves_the_policy_up_q(algorithm: str) -> None:
    extra = {"td3": {"policy_delay": 1}, "sac": {}, "dipo": {"action_lr": 0.1}}[algorithm]
    cfg = tiny(algorithm, critic_lr=3e-3, actor_lr=3e-3, **extra)
    agent = bandit(cfg)
    batch = agent.replay.sample(128, 1, torch.Generator().manual_seed(1))
    obs = torch.randn(256, OBS_DIM, generator=torch.Generator().manual_seed(2))
    loss_before, a0_before = fixed_batch_loss(agent, batch), policy_a0(agent, obs)
    losses = [agent.update() for _ in range(150)][-1]
    assert fixed_batch_loss(agent, batch) < 0.8 * loss_before
    assert policy_a0(agent, obs) > max(a0_before + 0.3, 0.4), "the policy should climb Q"
    assert all(torch.isfinite(value).all() for value in losses.values())


def test_sac_temperature_follows_its_entropy_target() -> None:
    low, high = bandit(tiny("sac", target_entropy=-50.0)), bandit(tiny("sac", target_entropy=50.0))
    assert isinstance(low, SAC) and isinstance(high, SAC)
    start = float(low.alpha)
    for _ in range(20):
        low.update()
        high.update()
    assert float(low.alpha) < 0.95 * start  # entropy far above target: alpha shrinks
    assert float(high.alpha) > 1.05 * start  # unreachable entropy: alpha grows


def test_dipo_target_actions_climb_q_and_stay_in_the_box() -> None:
    agent = bandit(tiny("dipo", action_steps=10, action_lr=0.1, critic_lr=3e-3))
    for _ in range(30):
        agent.update()
    stored = agent.replay.length > 0  # (env, slot): every one-step episode
    written = agent.replay.target_action[0, :, :, 0][stored]
    executed = agent.replay.action[:, :, 0][stored]
    assert written.abs().max() <= 1.0
    assert float(written[:, 0].mean()) > float(executed[:, 0].mean()) + 0.2
    obs = agent.replay.obs[:, :, 0][stored][None]
    with torch.no_grad():
        q_target = agent.critic.q(obs, written[None])
        q_executed = agent.critic.q(obs, executed[None])
    assert float(q_target.mean()) > float(q_executed.mean())


@pytest.mark.parametrize("algorithm", ["td3", "sac", "dipo"])
def test_novelty_switch(algorithm: str) -> None:
    off = bandit(tiny(algorithm, use_intrinsic=False))
    before = [p.clone() for p in off.novelty.parameters()]
    assert float(off.sample()["intrinsic"].abs().max()) == 0.0
    off.update()
    assert all(torch.equal(a, b) for a, b in zip(before, off.novelty.parameters(), strict=True))
    on = bandit(tiny(algorithm, use_intrinsic=True))
    assert float(on.sample()["intrinsic"].max()) > 0.0
    assert float(on.update()["loss/novelty"]) > 0.0


def easy_trainer(run_dir: Path, cfg: BaselineConfig, max_iterations: int) -> Trainer:
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=8, env=EASY, seed=0))
    eval_env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=1))
    return Trainer(cfg, env, run_dir, "cpu", 0, max_iterations, eval_env, "PointMazeV1")


@pytest.mark.parametrize("algorithm", ["td3", "sac", "dipo"])
def test_trainer_trains_and_resumes_each_baseline_exactly(tmp_path: Path, algorithm: str) -> None:
    cfg = tiny(algorithm, use_intrinsic=True, warm_up_steps=5, eval_interval=10)
    cfg.save_interval = 10
    straight = easy_trainer(tmp_path / "a", cfg, max_iterations=20)
    straight.train()
    assert straight.algo.num_groups == 1 and straight.algo.mode_ids == []
    middle = tmp_path / "a" / "nn" / "PointMazeV1_iter10.pth"
    resumed = easy_trainer(tmp_path / "b", cfg, max_iterations=20)
    resumed.restore(middle)
    resumed.train()
    for name in ("actor", "critic", "critic_target", "novelty"):
        ours = getattr(resumed.algo, name).state_dict()
        for key, value in getattr(straight.algo, name).state_dict().items():
            assert torch.equal(ours[key], value), f"{name}.{key} differs after resume"
    saved = torch.load(middle, weights_only=False)
    assert type(config_from_dict(saved["config"])) is CONFIGS[algorithm]


def test_player_plays_a_baseline_checkpoint(tmp_path: Path) -> None:
    trainer = easy_trainer(tmp_path / "run", tiny("td3", warm_up_steps=3), max_iterations=6)
    trainer.train()
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, seed=3))
    player = Player(env, "cpu", "all", task_name="PointMazeV1")
    player.restore(tmp_path / "run" / "nn" / "last.pth")
    assert isinstance(player.algo, TD3)
    summary = player.run()
    assert list(summary["modes"]) == ["0"] and summary["modes"]["0"]["episodes"] == 4


def test_count_modes_clusters_successful_paths_only() -> None:
    steps = torch.linspace(0, 1, 31)
    above = torch.stack([-8 * steps, 4 * torch.sin(torch.pi * steps)], dim=-1)
    below = above * torch.tensor([1.0, -1.0])
    paths = torch.stack([above, above + 0.1, below, below - 0.1, below, above])
    lengths = torch.full((6,), 30)
    success = torch.tensor([1, 1, 1, 1, 1, 0])
    two = count_modes(paths, lengths, success, threshold=20.0, min_successes=3)
    assert two["num_modes"] == 2 and two["num_success"] == 5
    assert two["mode_shares"] == pytest.approx([3 / 6, 2 / 6])
    one = count_modes(paths, lengths, torch.tensor([1, 1, 0, 0, 0, 1]), 20.0, min_successes=3)
    assert one["num_modes"] == 1
    rare = count_modes(
        paths, lengths, torch.tensor([1, 1, 1, 0, 0, 0]), 20.0, min_share=0.5, min_successes=3
    )
    assert rare["num_modes"] == 1 and rare["mode_shares"] == [pytest.approx(2 / 6)]
    # too few successes to tell how many ways there are: not counted ("n/a")
    few = count_modes(paths, lengths, success, threshold=20.0, min_successes=6)
    assert few["num_modes"] is None and few["num_success"] == 5
    none = count_modes(paths, lengths, torch.zeros(6, dtype=torch.long), 20.0, min_successes=1)
    assert none["num_modes"] is None


@pytest.mark.slow
@pytest.mark.parametrize("train", ["TD3Small", "SACSmall", "DIPOSmall"])
def test_train_cli_trains_each_baseline(tmp_path: Path, train: str) -> None:
    section = train.removesuffix("Small").lower()
    settings = {"warm_up_steps": 5, "eval_interval": 10, "eval_envs": 4, "log_interval": 5}
    done = train_cli(
        tmp_path,
        "task=PointMazeV1",
        f"train={train}",
        "num_envs=8",
        "max_iterations=20",
        "experiment=baseline",
        *(f"train.params.config.{section}.{key}={value}" for key, value in settings.items()),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "runs" / "baseline"
    state = torch.load(run / "nn" / "last.pth", weights_only=False)
    assert state["iteration"] == 20 and state["config"]["algorithm"] == section
    assert state["algo"]["num_updates"] == (20 - 5) * 2  # updates_per_step of the Small configs
    tags = set(EventAccumulator(str(run / "summaries")).Reload().Tags()["scalars"])
    assert {"loss/critic", "loss/actor", "eval/success_z0", "reward/intrinsic"} <= tags
