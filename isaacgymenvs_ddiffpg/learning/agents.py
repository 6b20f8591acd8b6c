"""Which agent a train config asks for: DDiffPG or one of the baselines, built by one factory."""

from __future__ import annotations

from typing import Any

import torch

from isaacgymenvs_ddiffpg.learning.baselines import (
    DIPO,
    SAC,
    TD3,
    DIPOConfig,
    SACConfig,
    TD3Config,
)
from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG

Agent = DDiffPG | TD3 | SAC | DIPO

# rl-games algorithm name (= the train config's section holding the typed settings) -> schema
AGENT_CONFIGS: dict[str, type[DDiffPGConfig]] = {
    "ddiffpg": DDiffPGConfig,
    "td3": TD3Config,
    "sac": SACConfig,
    "dipo": DIPOConfig,
}


def algorithm_name(cfg: DDiffPGConfig) -> str:
    """The algorithm a settings object configures ("ddiffpg", "td3", "sac" or "dipo")."""
    return str(getattr(cfg, "algorithm", "ddiffpg"))


def config_from_dict(values: dict[str, Any]) -> DDiffPGConfig:
    """Settings from a checkpoint's saved `config` (its `algorithm` key picks the class)."""
    schema = AGENT_CONFIGS[str(values.get("algorithm", "ddiffpg"))]
    return schema(**values)


def make_agent(
    cfg: DDiffPGConfig,
    obs_dim: int,
    act_dim: int,
    mode_feature_dim: int,
    max_episode_length: int,
    num_envs: int,
    max_reward: float,
    device: str | torch.device,
    seed: int,
) -> Agent:
    """Build the agent `cfg` configures; arguments as for `DDiffPG`.

    Every agent has the interface the Trainer uses: `act`, `update`, `discover_modes`,
    `replay`, `group_z`, `num_groups`, `mode_ids`, `mode_embedding`, `state_dict`,
    `load_state_dict`, `actor`, `generator`.
    """
    args = (obs_dim, act_dim, mode_feature_dim, max_episode_length, num_envs, max_reward, device)
    if isinstance(cfg, TD3Config):
        return TD3(cfg, *args, seed=seed)
    if isinstance(cfg, SACConfig):
        return SAC(cfg, *args, seed=seed)
    if isinstance(cfg, DIPOConfig):
        return DIPO(cfg, *args, seed=seed)
    return DDiffPG(cfg, *args, seed=seed)
