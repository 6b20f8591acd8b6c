"""Typed settings of the TD3, SAC and DIPO baselines (cfg/train/TD3.yaml, SAC.yaml, DIPO.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field

from isaacgymenvs_ddiffpg.learning.config import DDiffPGConfig


@dataclass
class BaselineConfig(DDiffPGConfig):
    """Settings shared by the baselines; inherits every `DDiffPGConfig` field with its meaning.

    The Trainer reads the rollout, budget, logging and checkpoint fields (`warm_up_steps`,
    `updates_per_step`, `noise_std_min`/`noise_std_max`, `max_env_steps`, `cluster_interval` as
    the evaluation interval, `eval_envs`, `memory_size`, ...) the same way for every algorithm.
    Fields about modes (`embedding_dim` aside, which sizes the unused z), exploration groups
    and clustering are ignored: the baselines have one group and no mode discovery. Defaults
    follow the authors' released baseline settings (DDIFFPG.md section 4): batch 4096, 8
    updates per step, tau 0.05, gamma 0.99, a warm-up of 32 vector steps. The replay is
    DDiffPG's trajectory replay, so `memory_size` counts trajectories (2000 AntMaze episodes of
    500 steps hold the released 1 M transitions); like DDiffPG's, it overwrites failed
    trajectories before successful ones, and the baselines sample it uniformly.

    Attributes:
        algorithm: which baseline the section configures (fixed per subclass; it is saved in
            checkpoints so that a run can be played and resumed with the right agent).
        use_intrinsic: add the NovelD (or RND, `intrinsic_type`) bonus to the extrinsic
            reward, as the released baselines do; off: extrinsic reward only.
    """

    algorithm: str = "baseline"
    use_intrinsic: bool = True
    warm_up_steps: int = 32


@dataclass
class TD3Config(BaselineConfig):
    """TD3 settings: a tanh MLP actor, the distributional double-Q of DDiffPG, mixed noise.

    Attributes:
        actor_hidden: actor MLP widths (ELU), [512, 256, 128] as released.
        policy_delay: critic updates per actor and target update (TD3's delayed update).
    """

    algorithm: str = "td3"
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
    """

    algorithm: str = "sac"
    actor_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    alpha_lr: float = 0.005
    init_alpha: float = 0.1
    target_entropy: float | None = None
    log_std_min: float = -5.0
    log_std_max: float = 2.0


@dataclass
class DIPOConfig(BaselineConfig):
    """DIPO settings: DDiffPG's diffusion actor and action-gradient target actions with one
    critic and no modes (`denoising_steps`, `time_dim`, `actor_hidden`, `action_steps`,
    `action_lr`, `action_flat_grad`, `target_noise_std`, `target_noise_clip` mean what they
    mean for DDiffPG)."""

    algorithm: str = "dipo"
