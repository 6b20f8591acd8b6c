"""Task registry: task name -> class, and `make_task` to build a task from its packaged config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from isaacgymenvs_ddiffpg.tasks.ant_maze import AntMaze
from isaacgymenvs_ddiffpg.tasks.base.vec_task import SimConfig, TaskEnvConfig, VecTask
from isaacgymenvs_ddiffpg.tasks.franka_cabinet import FrankaCabinet
from isaacgymenvs_ddiffpg.tasks.franka_drawer_close import FrankaDrawerClose
from isaacgymenvs_ddiffpg.tasks.franka_peg_insertion import FrankaPegInsertion
from isaacgymenvs_ddiffpg.tasks.franka_push import FrankaPush
from isaacgymenvs_ddiffpg.tasks.franka_reach import FrankaReach
from isaacgymenvs_ddiffpg.tasks.point_maze import PointMaze
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

TASK_CONFIG_DIR = Path(__file__).resolve().parent.parent / "cfg" / "task"

TASK_REGISTRY: dict[str, type[VecTask]] = {
    **{f"AntMaze{v}": AntMaze for v in ("V1", "V2", "V3", "V4", "V3_1", "V3_2", "V3_3")},
    **{f"PointMaze{v}": PointMaze for v in ("V1", "V2", "V3", "V4")},
    "FrankaReach": FrankaReach,
    "FrankaPush": FrankaPush,
    "FrankaPegInsertion": FrankaPegInsertion,
    "FrankaDrawerClose": FrankaDrawerClose,
    "FrankaCabinet": FrankaCabinet,
}


def register_task(name: str, task_class: type[VecTask]) -> None:
    """Register `task_class` under `name`; its config is `cfg/task/<name>.yaml`."""
    TASK_REGISTRY[name] = task_class


def task_names() -> list[str]:
    """Every registered task name, sorted."""
    return sorted(TASK_REGISTRY)


def _check_name(name: str) -> type[VecTask]:
    if name not in TASK_REGISTRY:
        raise ConfigError(
            f"Unknown task {name!r}. Valid tasks: {', '.join(task_names())}. Pass one of them, "
            f"e.g. task=AntMazeV1."
        )
    return TASK_REGISTRY[name]


def load_task_config(name: str) -> DictConfig:
    """The packaged `cfg/task/<name>.yaml` of a registered task."""
    _check_name(name)
    cfg = OmegaConf.load(TASK_CONFIG_DIR / f"{name}.yaml")
    assert isinstance(cfg, DictConfig)
    return cfg


def mode_region(cfg: DictConfig) -> tuple[list[float], list[float]] | None:
    """A task config's clustering region, (`mode_region_low`, `mode_region_high`), or None."""
    low, high = cfg.get("mode_region_low"), cfg.get("mode_region_high")
    if low is None or high is None:
        return None
    return [float(v) for v in low], [float(v) for v in high]


def build_env_config(
    task_class: type[VecTask], env: DictConfig | dict[str, Any], task_name: str
) -> TaskEnvConfig:
    """Validate `task.env` against the task's typed schema (unknown keys and wrong types fail)."""
    schema = OmegaConf.structured(task_class.Config)
    try:
        merged = OmegaConf.merge(schema, env)
    except OmegaConfBaseException as err:
        keys = ", ".join(f.name for f in dataclasses.fields(task_class.Config))
        raise ConfigError(
            f"Invalid task.env for {task_name}: {err.msg if hasattr(err, 'msg') else err}. "
            f"Valid keys for {task_class.__name__} (with types from its config class "
            f"{task_class.Config.__name__}): {keys}."
        ) from None
    return OmegaConf.to_object(merged)  # type: ignore[return-value]


def make_task(
    name: str,
    *,
    num_envs: int | None = None,
    seed: int = 0,
    rl_device: str = "cpu",
    sim: SimConfig | None = None,
    env: DictConfig | dict[str, Any] | None = None,
) -> VecTask:
    """Build the registered task `name`.

    Args:
        name: a registered task name (see `task_names()`).
        num_envs: overrides `task.env.num_envs`.
        seed: seed of the task's random stream.
        rl_device: device of the task's tensors.
        sim: physics backend settings.
        env: the task's `env` section; None loads the packaged `cfg/task/<name>.yaml`.
    """
    task_class = _check_name(name)
    env_section = load_task_config(name).env if env is None else env
    env_cfg = build_env_config(task_class, env_section, name)
    if num_envs is not None:
        env_cfg.num_envs = num_envs
    if env_cfg.num_envs < 1:
        raise ConfigError(f"num_envs must be >= 1, got {env_cfg.num_envs}.")
    return task_class(env_cfg, sim or SimConfig(), rl_device=rl_device, seed=seed)


__all__ = [
    "TASK_REGISTRY",
    "SimConfig",
    "VecTask",
    "build_env_config",
    "load_task_config",
    "make_task",
    "register_task",
    "task_names",
]
