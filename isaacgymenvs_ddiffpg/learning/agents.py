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

    The networks' initial weights come from torch's CPU generator seeded with `seed` inside a
    forked RNG state, so an agent depends on its settings and seed alone (not on what drew from
    the global generator before) and the caller's random state is left as it was.
    """
    args = (obs_dim, act_dim, mode_feature_dim, max_episode_length, num_envs, max_reward, device)
    agent_type = DDiffPG
    if isinstance(cfg, TD3Config):
        agent_type = TD3
    elif isinstance(cfg, SACConfig):
        agent_type = SAC
    elif isinstance(cfg, DIPOConfig):
        agent_type = DIPO
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return agent_type(cfg, *args, seed=seed)  # type: ignore[arg-type]
