"""Typed settings of the TD3, SAC and DIPO baselines (cfg/train/TD3.yaml, SAC.yaml, DIPO.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from isaacgymenvs_ddiffpg.learning.config import (
    AgentConfig,
    DiffusionActorConfig,
    TargetSmoothingConfig,
)


@dataclass
class BaselineConfig(AgentConfig):
    """Settings every baseline adds to `AgentConfig`'s (no modes, so no mode settings).

    Defaults follow the authors' released baseline settings (docs/algorithm.md, Baselines):
    batch 4096, 8 updates per step, tau 0.05, gamma 0.99, a warm-up of 32 vector steps. The
    replay is DDiffPG's trajectory replay, so `memory_size` counts trajectories (2000 AntMaze
    episodes of 500 steps hold the released 1 M transitions); like DDiffPG's, it overwrites
    failed trajectories before successful ones, and the baselines sample it uniformly.

    Attributes:
        use_intrinsic: add the NovelD (or RND, `intrinsic_type`) bonus to the extrinsic
            reward, as the released baselines do; off: extrinsic reward only.
        warm_up_steps: as for every agent, 32 by default.
    """

    use_intrinsic: bool = True
    warm_up_steps: int = 32


@dataclass
class TD3Config(BaselineConfig, TargetSmoothingConfig):
    """TD3 settings: a tanh MLP actor, the distributional double-Q of DDiffPG, mixed noise.

    Attributes:
        actor_hidden: actor MLP widths (ELU), [512, 256, 128] as released.
        policy_delay: critic updates per actor and target update (TD3's delayed update).
    """

    algorithm: ClassVar[str] = "td3"

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("actor_hidden",)
    actor_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    policy_delay: int = 2


@dataclass
class SACConfig(BaselineConfig):
    """SAC settings: a tanh-Gaussian actor, the distributional double-Q, a learned temperature.

    Attributes:
        actor_hidden: actor trunk widths (ELU) before the mean and log-std heads.
        alpha_lr: Adam learning rate of log(alpha), 0.005 as released.
        init_alpha: starting entropy temperature.
        target_entropy: entropy the temperature steers to (None: -act_dim, as released).
        log_std_min, log_std_max: bounds of the Gaussian's log standard deviation.
        v_min: None (here the default): -v_max. The soft target r - gamma alpha log pi(a'|s')
            is negative where the policy is confident (log pi > 0); a support starting at 0
            clipped those values to 0.
    """

    algorithm: ClassVar[str] = "sac"
    v_min: float | None = None

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("actor_hidden",)
    actor_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    alpha_lr: float = 0.005
    init_alpha: float = 0.1
    target_entropy: float | None = None
    log_std_min: float = -5.0
    log_std_max: float = 2.0


@dataclass
class DIPOConfig(BaselineConfig, DiffusionActorConfig):
    """DIPO settings: DDiffPG's diffusion actor and action-gradient target actions
    (`DiffusionActorConfig`) with one critic and no modes."""

    algorithm: ClassVar[str] = "dipo"
