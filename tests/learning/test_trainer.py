"""The DDiffPG training loop: exact resume, checkpoint errors, modes on an easy maze, playback."""

from pathlib import Path

import pytest
import torch

from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint, save_checkpoint
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG
from isaacgymenvs_ddiffpg.learning.player import Player
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import load_task_config, make_task
from isaacgymenvs_ddiffpg.utils.errors import CheckpointError, ConfigError

# Goals one cell to the left and right of the start with a 3 m success radius: random actions
# reach one of them in about 15% of 40-step episodes, so modes appear during the warm-up.
EASY = {
    **load_task_config("PointMazeV1").env,
    "layout": "11111/1GRG1/11111",
    "episode_length": 40,
    "start_noise": 0.0,
    "goal_radius": 3.0,
}


# Tiny networks and batches: the settings every agent has, and the diffusion actor's.
TINY = {
    "critic_hidden": [32, 32],
    "num_atoms": 11,
    "novelty_hidden": [16],
    "novelty_out_dim": 8,
    "batch_size": 64,
    "updates_per_step": 1,
    "memory_size": 64,
    "eval_envs": 4,
    "log_interval": 10,
    "max_env_steps": 10**9,
}
TINY_DIFFUSION = {"actor_hidden": [32, 32], "time_dim": 8, "action_steps": 3}


def tiny_config(**overrides) -> DDiffPGConfig:
    settings = {
        **TINY,
        **TINY_DIFFUSION,
        "warm_up_steps": 40,
        "eval_interval": 20,
        "cluster_threshold": 10.0,
        "save_interval": 60,
    }
    return DDiffPGConfig(**{**settings, **overrides})


def make_trainer(run_dir: Path, max_iterations: int, num_envs: int = 8, **overrides) -> Trainer:
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=num_envs, env=EASY, seed=0))
    eval_env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=1))
    return Trainer(
        tiny_config(**overrides),
        env,
        run_dir,
        "cpu",
        seed=0,
        max_iterations=max_iterations,
        eval_env=eval_env,
        task_name="PointMazeV1",
    )


def test_resume_ends_with_identical_weights(tmp_path: Path) -> None:
    # correlated noise: its per-env state must travel in the checkpoint too
    straight = make_trainer(tmp_path / "a", max_iterations=100, noise_correlation=0.9)
    straight.train()
    assert straight.algo.num_groups >= 2, "the easy maze should give modes to re-map"
    middle = tmp_path / "a" / "nn" / "PointMazeV1_iter60.pth"
    assert middle.is_file() and (tmp_path / "a" / "nn" / "last.pth").is_file()

    resumed = make_trainer(tmp_path / "b", max_iterations=100, noise_correlation=0.9)
    resumed.restore(middle)
    assert resumed.iteration == 60
    resumed.train()

    for name in ("actor", "critic", "critic_target", "novelty"):
        ours = getattr(resumed.algo, name).state_dict()
        for key, value in getattr(straight.algo, name).state_dict().items():
            assert torch.equal(ours[key], value), f"{name}.{key} differs after resume"
    assert torch.equal(resumed.algo.replay.target_action, straight.algo.replay.target_action)
    assert resumed.algo.mode_ids == straight.algo.mode_ids
    assert torch.equal(resumed.obs, straight.obs)


def test_several_explorers_collect_train_and_resume_identically(tmp_path: Path) -> None:
    settings = {"explorers": 3, "explore_data": "own"}
    straight = make_trainer(tmp_path / "a", max_iterations=100, **settings)
    straight.train()
    modes = len(straight.algo.mode_ids)
    assert modes >= 1 and straight.algo.num_groups == modes + 3
    # every exploration group played and stored its own trajectories, the modes' envs theirs
    assert set(straight.algo.replay.explorer.unique().tolist()) == {0, 1, 2, 3}
    explorers = straight.rollout_group[straight.explorer_numbers() > 0]
    assert set(explorers.tolist()) <= {0, modes + 1, modes + 2}

    middle = tmp_path / "a" / "nn" / "PointMazeV1_iter60.pth"
    resumed = make_trainer(tmp_path / "b", max_iterations=100, **settings)
    resumed.restore(middle)
    resumed.train()
    for name in ("actor", "critic", "critic_target"):
        ours = getattr(resumed.algo, name).state_dict()
        for key, value in getattr(straight.algo, name).state_dict().items():
            assert torch.equal(ours[key], value), f"{name}.{key} differs after resume"
    assert torch.equal(resumed.algo.group_z, straight.algo.group_z)

    single = make_trainer(tmp_path / "c", max_iterations=3)
    with pytest.raises(CheckpointError, match="explorers: checkpoint 3, this run 1"):
        single.restore(middle)


def test_checkpoint_errors_name_the_problem(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=3)
    trainer.train()
    good = tmp_path / "run" / "nn" / "last.pth"

    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")
    foreign = tmp_path / "foreign.pth"
    torch.save({"actor": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a checkpoint of this version"):
        load_checkpoint(foreign)

    other = make_trainer(tmp_path / "other", max_iterations=3, num_envs=6)
    with pytest.raises(CheckpointError, match="num_envs: checkpoint 8, this run 6"):
        other.restore(good)
    bigger = make_trainer(tmp_path / "bigger", max_iterations=3, memory_size=128)
    with pytest.raises(CheckpointError, match="memory_size"):
        bigger.restore(good)
    assert good.is_file() and truncated.is_file()


def test_atomic_save_keeps_the_old_file_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    save_checkpoint({"value": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checkpoint({"value": Unpicklable()}, path)
    assert load_checkpoint(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth"]


def test_player_plays_each_mode_and_rejects_unknown_ones(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=60)
    trainer.train()
    modes = trainer.algo.mode_ids
    assert modes, "the easy maze should give at least one mode"
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=4, env=EASY, seed=3))

    player = Player(env, "cpu", "all", task_name="PointMazeV1")
    player.restore(tmp_path / "run" / "nn" / "last.pth")
    summary = player.run()
    assert list(summary["modes"]) == ["0", *map(str, sorted(modes))]
    for table in summary["modes"].values():
        assert table["episodes"] == 4
        assert table["success_rate"] == pytest.approx(table["goal_1"] + table["goal_2"])

    unknown = Player(env, "cpu", str(max(modes) + 5), task_name="PointMazeV1")
    unknown.restore(tmp_path / "run" / "nn" / "last.pth")
    with pytest.raises(ConfigError, match="is not a mode of this checkpoint"):
        unknown.run()
    wrong_task = Player(env, "cpu", "0", task_name="AntMazeV1")
    with pytest.raises(CheckpointError, match="task"):
        wrong_task.restore(tmp_path / "run" / "nn" / "last.pth")


def test_exploit_share_schedules(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, max_iterations=1, max_env_steps=1000)
    assert trainer.exploit_share() == 0.0  # no modes yet: everyone explores
    trainer.algo.embeddings.mode_ids = [0, 1, 2]  # pretend two modes were found
    trainer.env_steps = 100
    assert trainer.exploit_share() == pytest.approx(2 / 3)  # prop: K / (K + 1)
    trainer.env_steps = 700
    assert trainer.exploit_share() == 1.0  # exploration stops at 70% of the budget
    trainer.cfg.exploration, trainer.first_mode_steps = "linear", 200
    trainer.env_steps = 450
    assert trainer.exploit_share() == pytest.approx(0.5)  # halfway from first mode to the stop
    trainer.cfg.exploration = "fixed"
    trainer.env_steps = 100
    assert trainer.exploit_share() == 0.5
    trainer.cfg.exploration_stop_steps = 50  # an absolute stop overrides the ratio
    assert trainer.exploit_share() == 1.0
    trainer.cfg.exploration_stop_steps = 800
    trainer.env_steps = 750
    assert trainer.exploit_share() == 0.5
    with pytest.raises(ValueError, match="exploration_stop_steps"):
        DDiffPGConfig(exploration_stop_steps=-1)

    # further exploration groups are not modes: they change neither the rule nor the start
    more = make_trainer(tmp_path / "e3", max_iterations=1, max_env_steps=1000, explorers=3)
    assert more.algo.num_groups == 3 and more.exploit_share() == 0.0
    more.algo.embeddings.mode_ids = [0, 1, 2]
    more.env_steps = 100
    assert more.algo.num_groups == 5 and more.exploit_share() == pytest.approx(2 / 3)


def test_more_updates_of_larger_batches_from_the_exploration_stop_on(tmp_path: Path) -> None:
    stop = 8 * 50  # 8 envs: the stop falls on iteration 50 of 60, after the 40 of warm-up
    trainer = make_trainer(
        tmp_path,
        max_iterations=60,
        exploration_stop_steps=stop,
        exploit_updates_per_step=3,
        exploit_batch_size=96,
    )
    algo, sampled = trainer.algo, []
    assert isinstance(algo, DDiffPG)
    sample = algo.replay.sample

    def watched_sample(batch_per_group: int, num_groups: int, *args, **kwargs):
        sampled.append((trainer.env_steps, batch_per_group * num_groups))
        return sample(batch_per_group, num_groups, *args, **kwargs)

    algo.replay.sample = watched_sample  # the real sampler, watched
    trainer.train()
    before = [size for steps, size in sampled if steps < stop]
    after = [size for steps, size in sampled if steps >= stop]
    assert len(before) == 9 and len(after) == 3 * 11  # iterations 41-49 and 50-60
    assert max(before) <= 64 and min(before) >= 64 - algo.num_groups
    assert min(after) > 64 and max(after) <= 96
    assert algo.plan_updates(0) == 1 and algo.batch_size == 64  # before the stop again
    with pytest.raises(ValueError, match="exploit_batch_size"):
        DDiffPGConfig(exploit_batch_size=4)
    with pytest.raises(ValueError, match="exploit_updates_per_step"):
        DDiffPGConfig(exploit_updates_per_step=0)


def test_correlated_noise_is_a_stationary_ar1_process(tmp_path: Path) -> None:
    trainer = make_trainer(
        tmp_path, max_iterations=1, num_envs=64, noise_correlation=0.9, warm_up_steps=10**6
    )
    noise = []
    for _ in range(300):
        trainer.collect()
        noise.append(trainer.noise.clone())
    x = torch.stack(noise[100:])  # (T, N, act_dim), past the start from 0
    lag1 = float((x[1:] * x[:-1]).mean() / x.square().mean())
    assert abs(float(x.std()) - 1.0) < 0.1  # per-step std kept
    assert abs(lag1 - 0.9) < 0.03  # correlated over about 10 steps
    stored = trainer.algo.replay.action[:, 0, :40]  # the warm-up plays clamp(noise)
    assert stored.abs().max() <= 1.0 and float(stored.abs().mean()) > 0.5


def test_agent_weights_depend_on_the_seed_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    first = make_trainer(tmp_path / "a", max_iterations=1)
    torch.rand(1000)  # other draws from the global generator must not matter
    state = torch.get_rng_state()
    second = make_trainer(tmp_path / "b", max_iterations=1)
    assert torch.equal(torch.get_rng_state(), state), "building an agent left the global RNG"
    for name in ("actor", "critic", "novelty"):
        ours = getattr(second.algo, name).state_dict()
        for key, value in getattr(first.algo, name).state_dict().items():
            assert torch.equal(ours[key], value), f"{name}.{key} differs between equal seeds"
