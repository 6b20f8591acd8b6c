"""Nothing lost, nothing silent: non-finite updates are skipped and stop a run that cannot
learn, broken transitions stay out of the replay, checkpoints are durable, safe to load and
refused when they do not fit, and a stop signal leaves a final checkpoint."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from isaacgymenvs_ddiffpg.learning.checkpoint import (
    load_checkpoint,
    newest_checkpoint,
    save_checkpoint,
)
from isaacgymenvs_ddiffpg.learning.group_adamw import GroupAdamW, guarded_step, make_adamw
from isaacgymenvs_ddiffpg.learning.replay import TrajectoryReplay
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import (
    CheckpointError,
    TrainingDivergedError,
    TrainingInterrupted,
)
from tests.learning.test_trainer import EASY, make_trainer

# ---------------------------------------------------------------------------- skipped steps


def test_group_adamw_skips_a_non_finite_step_and_goes_on() -> None:
    param = torch.nn.Parameter(torch.ones(2, 3))
    opt = GroupAdamW([param], num_groups=2, lr=0.1)
    param.grad = torch.full((2, 3), 0.5)
    opt.step()
    before = (param.detach().clone(), opt.exp_avg[0].clone(), opt.step_count.clone())
    param.grad = torch.tensor([[0.5, float("nan"), 0.5], [0.5, 0.5, 0.5]])
    opt.step()
    assert bool(opt.skipped)
    assert torch.equal(param, before[0]) and torch.equal(opt.exp_avg[0], before[1])
    assert torch.equal(opt.step_count, before[2])
    param.grad = torch.full((2, 3), 0.5)
    opt.step(skip=torch.tensor(True))  # a non-finite loss skips a finite gradient too
    assert bool(opt.skipped) and torch.equal(param, before[0])
    opt.step()
    assert not bool(opt.skipped) and not torch.equal(param, before[0])
    assert opt.step_count.tolist() == [2.0, 2.0]


def test_guarded_step_leaves_fused_adamw_untouched_on_nan() -> None:
    net = torch.nn.Linear(3, 2)
    opt = make_adamw(net.parameters(), lr=0.1)
    params = list(net.parameters())
    weights = [p.detach().clone() for p in params]
    loss = net(torch.tensor([[float("nan"), 1.0, 2.0]])).sum()
    loss.backward()
    assert bool(guarded_step(opt, params, loss, max_grad_norm=1.0))
    assert all(torch.equal(p, w) for p, w in zip(params, weights, strict=True))
    opt.zero_grad()
    loss = net(torch.ones(1, 3)).sum()
    loss.backward()
    assert not bool(guarded_step(opt, params, loss, max_grad_norm=1.0))
    assert not torch.equal(params[0], weights[0])


def test_exploding_learning_rates_stop_the_run_without_nan_checkpoints(tmp_path: Path) -> None:
    trainer = make_trainer(
        tmp_path / "run", max_iterations=400, critic_lr=1e30, actor_lr=1e30, save_interval=45
    )
    with pytest.raises(TrainingDivergedError) as err:
        trainer.train()
    message = str(err.value)
    assert "non-finite" in message and "iter45.pth" in message  # names the last good one
    assert trainer.iteration < 100  # stopped at a log soon after the warm-up, not at the end
    for path in (tmp_path / "run" / "nn").glob("*.pth"):
        algo = load_checkpoint(path)["algo"]
        for name in ("actor", "critic", "novelty"):
            for value in algo[name].values():
                assert torch.isfinite(value).all(), f"{path.name}: {name} is not finite"


# ---------------------------------------------------------------------------- broken transitions


def test_replay_leaves_out_non_finite_and_broken_transitions() -> None:
    replay = TrajectoryReplay(2, 8, 5, obs_dim=2, act_dim=1, num_target_slots=1)
    no = torch.zeros(2, dtype=torch.bool)

    def add(obs: float, next_obs: float, broken: bool = False) -> torch.Tensor:
        row = torch.tensor([[obs, 0.0], [obs, 0.0]])
        following = torch.tensor([[next_obs, 0.0], [next_obs, 0.0]])
        return replay.add(
            row,
            torch.zeros(2, 1),
            torch.zeros(2),
            following,
            no,
            no,
            torch.zeros(2).long(),
            torch.tensor([broken, False]),
        )

    assert not add(0.0, 1.0).any()
    assert add(1.0, float("nan")).tolist() == [True, True]  # next obs NaN: left out
    assert add(float("nan"), 2.0).tolist() == [True, True]
    assert add(2.0, 3.0, broken=True).tolist() == [True, False]
    done = replay.completed(2)
    # each env's first trajectory was cut after its one good transition
    assert done["lengths"].tolist() == [1, 1]
    assert torch.isfinite(replay.obs).all()
    batch = replay.sample(64, 1, torch.Generator().manual_seed(0))
    assert torch.isfinite(batch["obs"]).all() and torch.isfinite(batch["next_obs"]).all()


class NanOnce:
    """A real env whose observation of env 1 is NaN in one step (a sensor glitch)."""

    def __init__(self, env: RlGamesVecEnv, at_step: int) -> None:
        self.env, self.at_step, self.steps = env, at_step, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, actions: torch.Tensor):
        obs, reward, done, infos = self.env.step(actions)
        self.steps += 1
        if self.steps == self.at_step:
            obs = obs.clone()
            obs[1] = float("nan")
        return obs, reward, done, infos


def test_a_nan_observation_is_left_out_and_training_goes_on(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=80)
    trainer.env = NanOnce(trainer.env, at_step=50)  # type: ignore[assignment]
    trainer.train()  # does not diverge
    replay = trainer.algo.replay
    assert torch.isfinite(replay.obs).all() and torch.isfinite(replay.target_action).all()
    state = load_checkpoint(tmp_path / "run" / "nn" / "last.pth")
    assert all(torch.isfinite(v).all() for v in state["algo"]["actor"].values())


def test_a_physics_blow_up_ends_the_episode_and_stays_out_of_the_replay() -> None:
    task = make_task("PointMazeV1", num_envs=3, env=EASY, seed=0)
    for _ in range(5):
        task.step(torch.zeros(3, 2))
    task.sim.qvel[1] = 1e12  # MuJoCo would have reset this env by itself, silently
    task.sim.qpos[2, 0] = float("nan")
    obs, reward, terminated, truncated, extras = task.step(torch.ones(3, 2))
    assert extras["physics_reset"].tolist() == [False, True, True]
    assert truncated.tolist() == [False, True, True] and not terminated.any()
    assert (reward == 0).all() and task.progress_buf.tolist() == [6, 0, 0]
    assert torch.isfinite(obs).all() and obs[1:, :2].abs().max() < 2.0  # fresh episodes

    trainer = make_trainer(Path("unused"), max_iterations=1)
    for _ in range(3):
        trainer.collect()
    trainer.env.task.sim.qvel[2] = 1e12  # type: ignore[attr-defined]
    trainer.collect()
    assert int(trainer.stats["physics_resets"]) == 1
    assert int(trainer.stats["dropped_transitions"]) == 1
    assert trainer.algo.replay.obs.abs().max() < 100


def test_actions_of_the_wrong_shape_or_type_are_refused_nan_is_counted() -> None:
    task = make_task("PointMazeV1", num_envs=4)
    with pytest.raises(ValueError, match=r"shape \(4, 2\).*got \(4, 1\)"):
        task.step(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="nothing is broadcast"):
        task.step(torch.zeros(2))
    with pytest.raises(TypeError, match="torch tensor"):
        task.step("left")  # type: ignore[arg-type]
    extras = task.step([[0.5, 0.0]] * 4)[4]  # a list (or numpy array) is converted
    assert not extras["nonfinite_actions"].any()
    actions = torch.zeros(4, 2)
    actions[2, 1] = float("nan")
    obs, _, _, _, extras = task.step(actions)
    assert extras["nonfinite_actions"].tolist() == [False, False, True, False]
    assert torch.isfinite(obs).all()


# ---------------------------------------------------------------------------- checkpoint files


def test_periodic_saves_refresh_last_and_the_newest_is_found_by_number(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=1, save_interval=20)
    nn = tmp_path / "run" / "nn"
    for iteration in (20, 80, 120):
        trainer.iteration = iteration
        trainer.save(nn / f"PointMazeV1_iter{iteration}.pth")
        last = load_checkpoint(nn / "last.pth")
        assert last["iteration"] == iteration
    assert os.path.samefile(nn / "last.pth", nn / "PointMazeV1_iter120.pth")
    (nn / "last.pth").unlink()  # e.g. killed before last.pth ever existed
    assert newest_checkpoint(nn) == nn / "PointMazeV1_iter120.pth"  # not iter80 (by name)


def test_loading_never_runs_code_from_the_file(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    crafted = tmp_path / "crafted.pth"
    torch.save({"format": "isaacgymenvs_ddiffpg/ddiffpg-v1", "x": Payload()}, crafted)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(crafted)
    assert not marker.exists()


def full_disk(tmp_path: Path) -> tuple[Path, str]:
    """A folder on a 256 KiB tmpfs (as root), or (unprivileged) a folder where writes beyond
    256 KiB fail through the file-size limit; and which of the two it is."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True
    )
    return mount, ("tmpfs" if done.returncode == 0 else "rlimit")


def test_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path: Path) -> None:
    folder, kind = full_disk(tmp_path)
    path = folder / "last.pth"
    try:
        save_checkpoint({"value": torch.zeros(1000)}, path)  # 4 kB: fits
        big = {"value": torch.zeros(200_000)}  # 800 kB: does not
        if kind == "tmpfs":
            with pytest.raises(CheckpointError) as err:
                save_checkpoint(big, path, last_good=folder / "iter40.pth")
            assert "the disk is full" in str(err.value)
        else:
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)
            previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, limit[1]))
            try:
                with pytest.raises(CheckpointError) as err:
                    save_checkpoint(big, path, last_good=folder / "iter40.pth")
            finally:
                resource.setrlimit(resource.RLIMIT_FSIZE, limit)
                signal.signal(signal.SIGXFSZ, previous)
        message = str(err.value)
        assert str(path) in message and "MiB are free" in message and "iter40.pth" in message
        assert load_checkpoint(path)["value"].shape == (1000,)  # the old file is intact
        assert sorted(p.name for p in folder.iterdir()) == ["last.pth"]  # no temp file left
    finally:
        if kind == "tmpfs":
            subprocess.run(["umount", str(folder)], check=True)


# ---------------------------------------------------------------------------- incompatible


def test_incompatible_checkpoints_get_one_paragraph(tmp_path: Path) -> None:
    source = make_trainer(tmp_path / "a", max_iterations=3)
    source.train()
    good = tmp_path / "a" / "nn" / "last.pth"
    longer = {**EASY, "episode_length": 50}
    other_layout = {**EASY, "layout": "11111/1GGR1/11111"}  # same size, another maze
    for env, key in ((longer, "task_env.episode_length"), (other_layout, "task_env.layout")):
        env_task = RlGamesVecEnv(make_task("PointMazeV1", num_envs=8, env=env, seed=0))
        other = Trainer(source.cfg, env_task, tmp_path / "b", "cpu", 0, 3, task_name="PointMazeV1")
        with pytest.raises(CheckpointError, match=key):
            other.restore(good)
    state = load_checkpoint(good)
    state["task_version"] = 0  # a checkpoint of older physics
    old = tmp_path / "old.pth"
    save_checkpoint(state, old)
    with pytest.raises(CheckpointError, match="physics or control changed"):
        make_trainer(tmp_path / "c", max_iterations=3).restore(old)
    del state["task_env"]  # written before checkpoints recorded their dependencies
    save_checkpoint(state, old)
    with pytest.raises(CheckpointError, match="earlier version"):
        make_trainer(tmp_path / "d", max_iterations=3).restore(old)


def test_the_budget_that_ends_the_run_is_announced(tmp_path: Path, capsys) -> None:
    trainer = make_trainer(tmp_path / "a", max_iterations=110, num_envs=8, max_env_steps=160)
    trainer.announce()
    out = capsys.readouterr().out
    assert "stops at iteration 20 (160 env steps), set by max_env_steps=160" in out
    assert "warning: the warm-up of random actions lasts 40 iterations" in out
    trainer = make_trainer(tmp_path / "b", max_iterations=110, num_envs=8)
    trainer.announce()
    out = capsys.readouterr().out
    assert "stops at iteration 110" in out and "max_iterations=110" in out and "warning" not in out


# ---------------------------------------------------------------------------- stop signals


def interrupt_after(trainer: Trainer, iterations: int, signum: int) -> None:
    """Send `signum` to this process once `trainer` has run `iterations` iterations."""

    def watch() -> None:
        while trainer.iteration < iterations:
            threading.Event().wait(0.005)
        os.kill(os.getpid(), signum)

    threading.Thread(target=watch, daemon=True).start()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_writes_a_final_checkpoint(tmp_path: Path, signum: int) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=10**6)
    interrupt_after(trainer, 30, signum)
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.train()
    assert stop.value.signum == signum
    saved = load_checkpoint(stop.value.checkpoint)
    assert saved["iteration"] == trainer.iteration >= 30
    assert signal.getsignal(signum) is not None  # handlers restored (no exception on exit)


def test_slurm_time_limit_signal_is_handed_to_the_previous_handler(tmp_path: Path) -> None:
    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        trainer = make_trainer(tmp_path / "run", max_iterations=10**6)
        interrupt_after(trainer, 20, signal.SIGUSR2)
        with pytest.raises(TrainingInterrupted):
            trainer.train()
        assert calls == [signal.SIGUSR2]  # e.g. submitit's requeue, after the checkpoint
        assert (tmp_path / "run" / "nn" / "last.pth").is_file()
    finally:
        signal.signal(signal.SIGUSR2, previous)
