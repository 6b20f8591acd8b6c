"""Typed schema of the top-level hydra config: unknown keys and wrong types fail at load."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore

from isaacgymenvs_ddiffpg.learning.baselines.config import DIPOConfig, SACConfig, TD3Config
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig


@dataclass
class RootConfig:
    """Top-level keys (IsaacGymEnvs names). `task` and `train` come from cfg/task and cfg/train.

    Attributes:
        task: the task config group (cfg/task/<Name>.yaml).
        train: the algorithm config group (cfg/train/<Name>.yaml, rl-games format).
        task_name: the task's name (read-only mirror of task.name).
        experiment: run name; the run folder is runs/<experiment>.
        num_envs: overrides task.env.num_envs when set.
        seed: global seed (-1: random).
        torch_deterministic: ask torch for deterministic kernels.
        max_iterations: overrides the algorithm's iteration budget when set.
        sim: physics backend, "mujoco" (CPU, embedded default) or "warp".
        sim_device: where the physics runs.
        rl_device: where observations, replay and networks live.
        num_threads: CPU physics threads (0: all cores).
        headless: no viewer.
        test: play a checkpoint instead of training.
        checkpoint: a .pth to play (test=True) or to resume training from.
        mode: which mode to play: an id k (0: the sampler chooses) or "all".
        capture_video: record mp4 videos (runs/<experiment>/videos/, and tensorboard).
        capture_video_freq: iterations between recorded episodes while training.
        camera: camera of the videos; `overview` frames the whole maze or workspace, `free` is
            MuJoCo's free camera, or any camera name of the task's model.
        viewer_env: the env the viewer shows and the videos film.
        replan: in play, compare each mode with and without online replanning.
        replan_window: steps over which replanning measures progress.
        replan_min_progress: distance the mode features must move over the window (null: the
            task's coverage cell, 1 m for the standard mazes).
        mode_atlas: draw the mode atlas (runs/<experiment>/modes/*.png, and tensorboard).
        multi_gpu: set under torchrun.
    """

    task: Any = None
    train: Any = None
    task_name: str = "${task.name}"
    experiment: str = "${task.name}_${train.name}_${now:%Y-%m-%d_%H-%M-%S}"
    num_envs: int | None = None
    seed: int = 42
    torch_deterministic: bool = False
    max_iterations: int | None = None
    sim: str = "mujoco"
    sim_device: str = "cpu"
    rl_device: str = "cpu"
    num_threads: int = 0
    headless: bool = True
    test: bool = False
    checkpoint: str = ""
    mode: str = "0"
    capture_video: bool = False
    capture_video_freq: int = 500
    camera: str = "overview"
    viewer_env: int = 0
    replan: bool = False
    replan_window: int = 50
    replan_min_progress: float | None = None
    mode_atlas: bool = True
    multi_gpu: bool = False


def register_configs() -> None:
    """Register the typed schemas: `base_config` (cfg/config.yaml's defaults) and
    `ddiffpg_schema` (every key of cfg/train/DDiffPG.yaml's `ddiffpg` section, with its type),
    and `td3_schema`, `sac_schema`, `dipo_schema` for the baselines' sections."""
    store = ConfigStore.instance()
    store.store(name="base_config", node=RootConfig)
    store.store(name="ddiffpg_schema", node=DDiffPGConfig)
    store.store(name="td3_schema", node=TD3Config)
    store.store(name="sac_schema", node=SACConfig)
    store.store(name="dipo_schema", node=DIPOConfig)
