"""Multi-process training: rank plumbing, rank-0 discovery views, and two gloo ranks under
torchrun that end as identical replicas whose checkpoint resumes in one process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint
from isaacgymenvs_ddiffpg.learning.discovery import Discovery
from isaacgymenvs_ddiffpg.learning.distributed import (
    RANK_ID_STRIDE,
    Distributed,
    concat_trajectories,
    device_for_rank,
    first_slurm_host,
    init_distributed,
    keep_local_state,
    replicated_state,
    slurm_to_torchrun_env,
    state_digest,
)
from isaacgymenvs_ddiffpg.learning.modes import ModePlan
from isaacgymenvs_ddiffpg.learning.trainer import Trainer
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.utils.errors import ConfigError
from tests.learning.test_trainer import EASY, make_trainer, tiny_config

REPO = Path(__file__).resolve().parents[2]


def test_slurm_variables_become_torchrun_ranks() -> None:
    assert first_slurm_host("gpu[07-09,12],cpu3") == "gpu07"
    assert first_slurm_host("node5") == "node5"
    assert first_slurm_host("a-1,b-2") == "a-1"
    env = {
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_NTASKS": "8",
        "SLURM_JOB_NODELIST": "gpu[03-06]",
        "SLURM_JOB_ID": "123456",
    }
    slurm_to_torchrun_env(env)
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"]) == ("5", "1", "8")
    assert env["MASTER_ADDR"] == "gpu03" and env["MASTER_PORT"] == str(20000 + 123456 % 20000)
    under_torchrun = {"SLURM_PROCID": "5", "RANK": "0", "WORLD_SIZE": "2"}
    slurm_to_torchrun_env(under_torchrun)  # torchrun's own variables win
    assert under_torchrun == {"SLURM_PROCID": "5", "RANK": "0", "WORLD_SIZE": "2"}
    assert device_for_rank("cuda:0", 3) == "cuda:3" and device_for_rank("cuda", 1) == "cuda:1"
    assert device_for_rank("cpu", 3) == "cpu"


def test_multi_gpu_without_a_launcher_explains(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RANK", "WORLD_SIZE", "SLURM_PROCID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError, match="needs torchrun"):
        init_distributed("cpu")


def test_single_process_calls_change_nothing() -> None:
    single = Distributed()
    assert (single.rank, single.world_size, single.is_main) == (0, 1, True)
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.tensor([1.0, 2.0, 3.0])
    grad = param.grad
    single.average_gradients([param])
    assert param.grad is grad and torch.equal(grad, torch.tensor([1.0, 2.0, 3.0]))
    assert single.broadcast_flag(True) is True and single.broadcast_object("x") == "x"
    assert single.check_replicas({"actor": {}}) == []
    marker = object()
    assert single.discover_on_main({}, lambda trajectories: marker) is marker  # type: ignore[arg-type]


def test_each_rank_gets_its_own_trajectories_of_a_global_round() -> None:
    stride = RANK_ID_STRIDE
    found = Discovery(
        plan=ModePlan([0, 0], [False, True], [False, True], [0, 1]),
        ids=torch.tensor([0, 8, stride + 0, stride + 3]),
        groups=torch.tensor([1, 0, 1, 1]),
        evict_ids=torch.tensor([16, stride + 11]),
        success_labels={0: 1, stride + 0: 1},
        new_route_ids=torch.tensor([8, stride + 3]),
    )
    rank1 = Distributed()
    rank1.rank, rank1.world_size = 1, 2
    mine = rank1.local_view(found)
    assert mine.ids.tolist() == [0, 3] and mine.groups.tolist() == [1, 1]
    assert mine.evict_ids.tolist() == [11] and mine.new_route_ids.tolist() == [3]
    assert mine.plan == found.plan and mine.success_labels == found.success_labels
    rank0 = Distributed()
    rank0.world_size = 2
    assert rank0.local_view(found).ids.tolist() == [0, 8]
    assert rank0.local_view(found).evict_ids.tolist() == [16]
    assert rank0.local_view(found).new_route_ids.tolist() == [8]

    parts = [
        {"ids": torch.tensor([2]), "paths": torch.ones(1, 3, 2)},
        {"ids": torch.tensor([stride + 1]), "paths": torch.ones(1, 5, 2)},
    ]
    union = concat_trajectories(parts, torch.device("cpu"))
    assert union["paths"].shape == (2, 5, 2) and union["paths"][0, 3:].abs().sum() == 0
    assert union["ids"].tolist() == [2, stride + 1]


def test_digest_and_local_state(tmp_path: Path) -> None:
    state = {"actor": {"w": torch.zeros(2)}, "num_groups": 2, "replay": {"obs": torch.ones(1)}}
    same = {"num_groups": 2, "actor": {"w": torch.zeros(2)}, "replay": {"obs": torch.zeros(1)}}
    assert state_digest(replicated_state(state)) == state_digest(replicated_state(same))
    moved = {**state, "actor": {"w": torch.tensor([0.0, 1e-7])}}
    assert state_digest(replicated_state(moved)) != state_digest(replicated_state(state))

    trainer = make_trainer(tmp_path, max_iterations=1)
    own = trainer.state_dict()
    loaded = {**own, "iteration": 7, "obs": own["obs"] + 1, "algo": dict(own["algo"])}
    loaded["algo"]["actor"] = {k: v + 1 for k, v in own["algo"]["actor"].items()}
    merged = keep_local_state(loaded, own)
    assert merged["iteration"] == 7 and merged["obs"] is own["obs"]
    assert merged["algo"]["actor"] is loaded["algo"]["actor"]
    assert merged["algo"]["replay"] is own["algo"]["replay"]
    assert merged["algo"]["generator"] is own["algo"]["generator"]


def ddiffpg_overrides() -> list[str]:
    """The tiny DDiffPG settings of test_trainer, as train.py overrides (no eval at 20 its)."""
    config = tiny_config(warm_up_steps=20, eval_interval=10, save_interval=30)
    keys = ("actor_hidden", "time_dim", "critic_hidden", "num_atoms", "novelty_hidden")
    keys += ("novelty_out_dim", "batch_size", "updates_per_step", "action_steps")
    keys += ("warm_up_steps", "eval_interval", "cluster_threshold", "memory_size")
    keys += ("eval_envs", "log_interval", "save_interval")
    overrides = []
    for key in keys:
        value = getattr(config, key)
        text = f"[{','.join(map(str, value))}]" if isinstance(value, list) else str(value)
        overrides.append(f"train.params.config.ddiffpg.{key}={text}")
    return overrides


# The easy maze of test_trainer with 20-step episodes and a wider goal: random warm-up actions
# reach a goal on both ranks, so rank 0 clusters successes gathered from both.
MAZE = {**EASY, "episode_length": 20, "goal_radius": 3.5, "start_noise": 0.0}


@pytest.mark.slow
def test_two_gloo_ranks_train_as_replicas_and_resume_in_one_process(tmp_path: Path) -> None:
    task = [f"task.env.{key}={MAZE[key]}" for key in ("layout", "episode_length", "goal_radius")]
    args = [
        "task=PointMazeV1",
        "train=DDiffPGSmall",
        "num_envs=8",
        "num_threads=1",
        "task.env.start_noise=0.0",
        *task,
        *ddiffpg_overrides(),
        "max_iterations=30",
        "experiment=two_ranks",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID"):
        env.pop(name, None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    done = subprocess.run(
        [*launch, str(REPO / "train.py"), "multi_gpu=True", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    run = tmp_path / "runs" / "two_ranks"
    assert (run / "config.yaml").is_file()
    assert len(list((run / "summaries").glob("events.*"))) == 1, "only rank 0 logs"
    events = EventAccumulator(str(run / "summaries")).Reload()
    assert "perf/env_steps_per_s" in events.Tags()["scalars"]
    state = load_checkpoint(run / "nn" / "last.pth")
    assert state["iteration"] == 30 and state["env_steps"] == 30 * 8 * 2  # steps of both ranks

    # Every rank digested its networks, optimisers and modes before rank 0 saved: the two are
    # equal, and equal to the digest of the saved state, so rank 1 held exactly these weights.
    digests = state["replica_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert state_digest(replicated_state(state["algo"])) == digests[0]
    algo = state["algo"]
    assert len(algo["embeddings"]["mode_ids"]) >= 2, "the easy maze should give a mode"
    ranks = {trajectory // RANK_ID_STRIDE for trajectory in algo["success_labels"]}
    assert ranks == {0, 1}, "rank 0 should cluster successes of both ranks"

    resumed = Trainer(
        tiny_config(warm_up_steps=20, eval_interval=10),
        RlGamesVecEnv(make_task("PointMazeV1", num_envs=8, env=MAZE, seed=0)),
        tmp_path / "resumed",
        "cpu",
        seed=0,
        max_iterations=32,
        task_name="PointMazeV1",
    )
    resumed.restore(run / "nn" / "last.pth")
    assert resumed.iteration == 30 and resumed.algo.mode_ids == algo["embeddings"]["mode_ids"][1:]
    resumed.train()
    assert resumed.iteration == 32 and (tmp_path / "resumed" / "nn" / "last.pth").is_file()
