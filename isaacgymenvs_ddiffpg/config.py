"""Typed schema of the top-level hydra config: unknown keys and wrong types fail at load."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from isaacgymenvs_ddiffpg.learning.baselines.config import DIPOConfig, SACConfig, TD3Config
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.viz.config import VizConfig


@dataclass
class RootConfig(VizConfig):
    """Top-level keys (IsaacGymEnvs names). `task` and `train` come from cfg/task and cfg/train;
    the keys of videos, viewer, mode atlas and replanning are `VizConfig`'s.

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
        test: play a checkpoint instead of training.
        checkpoint: a .pth to play (test=True) or to resume training from.
        mode: which mode to play: an id k (0: the sampler chooses) or "all".
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
    test: bool = False
    checkpoint: str = ""
    mode: str = "0"
    multi_gpu: bool = False


def viz_config(cfg: DictConfig) -> VizConfig:
    """The `VizConfig` of a composed top-level config (its keys of `VizConfig`'s fields)."""
    return VizConfig(**{field.name: cfg[field.name] for field in dataclasses.fields(VizConfig)})


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
