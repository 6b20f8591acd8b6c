"""Baselines of the DDiffPG paper (TD3, SAC, DIPO) on the same critic, replay and novelty code."""

from isaacgymenvs_ddiffpg.learning.baselines.config import (
    BaselineConfig,
    DIPOConfig,
    SACConfig,
    TD3Config,
)
from isaacgymenvs_ddiffpg.learning.baselines.dipo import DIPO
from isaacgymenvs_ddiffpg.learning.baselines.sac import SAC
from isaacgymenvs_ddiffpg.learning.baselines.td3 import TD3

__all__ = ["DIPO", "SAC", "TD3", "BaselineConfig", "DIPOConfig", "SACConfig", "TD3Config"]
