"""Typed agent settings: what every algorithm has, the diffusion actor's, and DDiffPG's own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass
class AgentConfig:
    """Settings every agent has (the Trainer reads only these); see docs/algorithm.md.

    Each algorithm's settings extend this class with the fields its agent uses, and nothing
    else: a key of another algorithm fails at load. Defaults are the authors' released DDiffPG
    settings unless a comment says otherwise.

    Attributes (critic):
        critic_hidden: critic MLP widths (two heads each).
        num_atoms: C51 atoms.
        v_min: bottom of the value support; None: -v_max (SAC's soft values are negative where
            its policy is confident).
        v_max: top of the value support; None: 1.2 x the task's largest success reward (the
            released [0, 5] clipped rewards of 10 and 20 to the same value).
    Attributes (optimisation):
        actor_lr, critic_lr, novelty_lr: AdamW learning rates.
        gamma, tau: discount and Polyak rate.
        max_grad_norm: gradient clipping of the networks (and of DDiffPG's target actions).
        batch_size: transitions per update (DDiffPG splits them equally over its groups).
        updates_per_step: learner updates per vector step (8 at 256 envs; with thousands of
            envs keep updates x batch per new transition in mind).
    Attributes (rollout):
        warm_up_steps: vector steps of uniform random actions before learning.
        noise_std_min, noise_std_max: per-env Gaussian action noise, linearly spaced over envs.
        noise_correlation: 0 (released): white noise, and uniform random warm-up actions. rho in
            (0, 1): the noise is an AR(1) process n_t = rho n_{t-1} + sqrt(1 - rho^2) eps_t per
            env (same per-step std, correlation time about 1 / (1 - rho) steps), and the warm-up
            plays clamp(n_t). White noise on a fine control step is a random walk that stays
            near the start; correlated noise travels (on PointMazeV1 at rho = 0.9 it alone
            reaches the goal in about 5% of episodes, white noise in none of 768).
        memory_size: replay capacity in trajectories.
    Attributes (novelty):
        intrinsic_type: "noveld" or "rnd".
        intrinsic_scale, intrinsic_alpha: r = scale * max(N(s') - alpha N(s), 0).
        pos_enc, pos_enc_frequencies: NeRF encoding of the mode-feature dims.
        novelty_hidden, novelty_out_dim: RND network sizes.
    Attributes (run):
        max_env_steps: training budget in env steps (all envs).
        eval_interval: iterations between evaluations (DDiffPG discovers modes just before).
        eval_envs: envs of the evaluation task (env j plays mode j mod (K + 1); 0 = z = 0).
        save_interval: iterations between checkpoints (nn/last.pth is always refreshed).
        log_interval: iterations between scalar logs.
        compile: `torch.compile` the pieces every update and every rollout step run (the
            samplers, the critic step, the target-action ascent, the actor and novelty steps;
            `learning/compiled.py`): one graph per shape, compiled on first use and again
            only when mode discovery changes the number of groups; CUDA graphs on CUDA. The
            same function up to float rounding, with the same checkpoints; off by default
            (compiling takes a minute or more on a CPU: docs/results.md says when it pays).
    """

    algorithm: ClassVar[str]  # the algorithm's name: train config section, saved in checkpoints

    critic_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    num_atoms: int = 51
    v_min: float | None = 0.0
    v_max: float | None = None

    actor_lr: float = 3e-4
    critic_lr: float = 5e-4
    novelty_lr: float = 1e-4
    gamma: float = 0.99
    tau: float = 0.05
    max_grad_norm: float = 1.0
    batch_size: int = 4096
    updates_per_step: int = 8

    warm_up_steps: int = 500
    noise_std_min: float = 0.05
    noise_std_max: float = 0.6
    noise_correlation: float = 0.0
    memory_size: int = 2000

    intrinsic_type: str = "noveld"
    intrinsic_scale: float = 0.01
    intrinsic_alpha: float = 0.5
    pos_enc: bool = True
    pos_enc_frequencies: int = 10
    novelty_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])
    novelty_out_dim: int = 128

    max_env_steps: int = 3_000_000
    eval_interval: int = 100
    eval_envs: int = 20
    save_interval: int = 500
    log_interval: int = 10
    compile: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.noise_correlation < 1.0:
            raise ValueError(f"noise_correlation must be in [0, 1), got {self.noise_correlation}")
        if self.intrinsic_type not in ("noveld", "rnd"):
            raise ValueError(f"intrinsic_type must be noveld or rnd, got {self.intrinsic_type!r}")

    # the settings that fix the shapes of the saved state (each class lists its own)
    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = (
        "critic_hidden",
        "num_atoms",
        "memory_size",
        "pos_enc",
        "pos_enc_frequencies",
        "novelty_hidden",
        "novelty_out_dim",
    )

    def state_shape(self) -> dict[str, Any]:
        """The settings that fix the shapes of the saved state (networks, replay, modes): a
        checkpoint resumes only into a run with the same values."""
        names = [n for cls in type(self).__mro__ for n in vars(cls).get("SHAPE_FIELDS", ())]
        return {name: getattr(self, name) for name in dict.fromkeys(names)}


@dataclass
class TargetSmoothingConfig(AgentConfig):
    """TD3's target policy smoothing of the critic's next action a' (`smooth_target_action`).

    Attributes:
        target_noise_std, target_noise_clip: a' + clip(N(0, std^2), -clip, clip).
    """

    target_noise_std: float = 0.8
    target_noise_clip: float = 0.2


@dataclass
class DiffusionActorConfig(TargetSmoothingConfig):
    """The diffusion actor and the action-gradient target actions it is cloned onto.

    Attributes:
        denoising_steps: K, DDPM steps of the diffusion actor.
        time_dim: sinusoidal timestep feature size.
        actor_hidden: diffusion MLP widths.
        action_steps, action_lr: Adam ascent steps and step size of the target actions.
        action_flat_grad: slope |dQ/da| below which the ascent barely moves an action (added to
            Adam's epsilon per sample; 0 as released: every step has size action_lr, so actions
            drift to the bounds wherever the critic is flat, e.g. when pushing into a wall).
            DDiffPG applies it to the mode critics' ascent only: Q_explore, which learns only
            the intrinsic reward, has slopes about as small everywhere (~0.002 on PointMazeV1);
            its floor is `DDiffPGConfig.explore_flat_grad`.
    """

    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("denoising_steps", "time_dim", "actor_hidden")

    denoising_steps: int = 5
    time_dim: int = 256
    actor_hidden: list[int] = field(default_factory=lambda: [1024, 512, 256])
    action_steps: int = 20
    action_lr: float = 0.03
    action_flat_grad: float = 0.0


@dataclass(frozen=True)
class ClusterSettings:
    """How one mode-discovery round clusters the successful trajectories, as
    `DDiffPGConfig.cluster_settings` builds it; the `DDiffPGConfig` attribute each comes from
    says more.

    Attributes:
        threshold: DTW threshold of average linkage (None: 0.7 x the largest merge height);
            from `cluster_threshold`.
        resample_len: resample every path to this many points first (None: full length).
        max_clusters: at most this many clusters become modes (the largest); `max_modes`.
        min_mode_size: a cluster becomes a mode only with at least this many successes.
        region: (low, high) box of mode-feature space the successes are clustered in (None:
            whole paths); `mode_region_low`, `mode_region_high`.
        keep_modes: clusters holding the previous round's modes are kept first.
        spread: of more clusters than `max_clusters`, keep the largest and then, one at a
            time, the one farthest from those kept (`mode_choice: spread`), instead of the
            largest.
        seeded: clustering starts from the previous round's modes; `clustering: seeded`.
    """

    threshold: float | None = None
    resample_len: int | None = None
    max_clusters: int = 10
    min_mode_size: int = 1
    region: tuple[Sequence[float], Sequence[float]] | None = None
    keep_modes: bool = False
    spread: bool = False
    seeded: bool = False


@dataclass
class DDiffPGConfig(DiffusionActorConfig):
    """DDiffPG settings (cfg/train/DDiffPG.yaml, `params.config.ddiffpg`).

    Attributes (modes):
        embedding_dim: size of a mode embedding z.
        use_embedding: condition each mode on its own z (on by default here: playing a chosen
            mode needs it; the released default was off).
        zero_embedding_prob: share of each mode's actor samples trained under z = 0 instead of
            z_k, so that z = 0 stays the multimodal "sampler chooses" policy (mode=0 in play).
        exploration: "prop" (exploit share = K / (K + 1)), "fixed" or "linear".
        exploration_stop_ratio: after this share of `max_env_steps` every env exploits.
        exploration_stop_steps: after this many env steps every env exploits; overrides
            `exploration_stop_ratio` (None: use the ratio). Set it when a run is resumed with a
            larger `max_env_steps` and its exploration should still stop where it did.
        exploration_fix_ratio: exploit share of "fixed".
        exploit_batch_size, exploit_updates_per_step: from the exploration stop on, each
            iteration runs this many updates of this many transitions (None: `batch_size`,
            `updates_per_step`). Then every env plays a mode, the modes' data grows fastest
            and only the modes are left to learn; spending the learner there and not while the
            envs explore keeps the exploration phase as fast as it was.
        cluster_threshold: DTW threshold of average linkage (None: 0.7 x largest merge).
        max_modes: at most this many clusters, the largest of those that hold
            `min_mode_size` successes, become modes (released: more clusters than this,
            small ones included, were merged into one).
        min_mode_size: a cluster becomes a mode (a critic, an embedding, a share of the batch
            and of the envs) only once it holds this many successful trajectories; smaller ones
            stay exploration data. The released settings made every cluster a mode, so two
            chance successes became two "modes" that split the batch and the envs.
        keep_modes: when more clusters qualify than `max_modes`, those that hold successes of
            the current modes keep their place before larger new ones, so a learned route is
            not dropped for several clusters of another (off as released: the largest).
        mode_choice: which clusters become modes when more than `max_modes` qualify:
            "largest" (as released) or "spread": the largest, then one at a time the cluster
            whose mean DTW distance to the nearest one already chosen is largest. The
            threshold can split one well-learned route into several clusters, each larger
            than the first cluster of another route; by size those take every mode slot and
            the other route stays exploration data, however long it is found. On
            FrankaReach small clusters of odd paths lie farther still, and "spread" chose
            those (docs/results.md).
        explore_data: what the exploration group's batch draws from: "all" (as released:
            every stored transition) or "own": the trajectories of the exploring envs only.
            Under "all" the explorer clones Q_explore's targets at the modes' states,
            starting from the modes' own actions; under "own" it clones only what exploring
            envs did. On FrankaReach "own" tried the other side of the cross more often but
            did not learn it (docs/results.md).
        clustering: "fresh" (as released: every discovery round clusters all stored
            successes anew, so a mode's successes can be split between two clusters or joined
            to another's, and the mode's embedding moves to another route) or "seeded" (each
            round starts from the previous round's modes: new successes join a mode or form
            clusters of their own, and two modes merge only within the threshold).
        resample_len: resample paths to this many points before DTW (None: full length; the
            released settings resample non-maze tasks to the mean success length).
        mode_region_low, mode_region_high: a box of mode-feature space (one bound per
            feature, +-inf for none); successes are clustered on the part of their paths
            inside it, where the task's routes differ (None: whole paths).
        mode_success_share: share of each mode's batch drawn from its successful trajectories;
            when > 0 the actor clones only a mode's samples from successes (its critic still
            learns from all). 0 as released: failures assigned to a mode make most of its
            transitions, and cloning them teaches it to stop where they stopped.
        explore_flat_grad: the flat slope of Q_explore's target-action ascent as a share of
            its mean |dQ/da| over the batch (0 as released; see `action_flat_grad`).
        target_radius: a mode's target actions stay within this distance of the stored
            action in every dimension (None: unbounded, as released). The ascent is repeated
            each time a transition is sampled, and a young mode's critic, fitted on few paths,
            can carry its targets, and with them the actor, off the route its successes took.
            Q_explore's targets are not bounded.
        explorers: exploration groups, each with its own critic on the intrinsic reward and
            its own z; an exploring env plays one of them, drawn per episode (1 as released).
            The first one is Q_explore and z_explore; the others follow the modes in the
            group order. They share the batch, the data and the actor, so they differ only
            by their critics' initial weights and their embeddings.
        route_bonus: the exploration groups' critics also learn this share of the extrinsic
            reward on the successful trajectories whose route no mode takes (`new_routes` in
            learning/discovery.py: every success before the first mode; later those farther
            than `cluster_threshold` from every mode's successes), so exploration is drawn to
            the goal by routes not yet learned (0 as released: Q_explore learns the intrinsic
            reward only).
    """

    algorithm: ClassVar[str] = "ddiffpg"
    SHAPE_FIELDS: ClassVar[tuple[str, ...]] = ("max_modes", "embedding_dim", "explorers")

    embedding_dim: int = 5
    use_embedding: bool = True
    zero_embedding_prob: float = 0.25
    exploration: str = "prop"
    exploration_stop_ratio: float = 0.7
    exploration_stop_steps: int | None = None
    exploration_fix_ratio: float = 0.5
    exploit_batch_size: int | None = None
    exploit_updates_per_step: int | None = None
    cluster_threshold: float | None = None
    max_modes: int = 10
    min_mode_size: int = 5
    keep_modes: bool = False
    mode_choice: str = "largest"
    explore_data: str = "all"
    clustering: str = "fresh"
    resample_len: int | None = None
    mode_region_low: list[float] | None = None
    mode_region_high: list[float] | None = None
    mode_success_share: float = 0.0
    explore_flat_grad: float = 0.0
    target_radius: float | None = None
    explorers: int = 1
    route_bonus: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.exploration not in ("prop", "fixed", "linear"):
            raise ValueError(f"exploration must be prop, fixed or linear, got {self.exploration!r}")
        if self.mode_choice not in ("largest", "spread"):
            raise ValueError(f"mode_choice must be largest or spread, got {self.mode_choice!r}")
        if self.explore_data not in ("all", "own"):
            raise ValueError(f"explore_data must be all or own, got {self.explore_data!r}")
        if self.clustering not in ("fresh", "seeded"):
            raise ValueError(f"clustering must be fresh or seeded, got {self.clustering!r}")
        if not 0.0 <= self.mode_success_share <= 1.0:
            raise ValueError(f"mode_success_share must be in [0, 1], got {self.mode_success_share}")
        if self.explore_flat_grad < 0.0:
            raise ValueError(f"explore_flat_grad must be >= 0, got {self.explore_flat_grad}")
        if self.exploration_stop_steps is not None and self.exploration_stop_steps < 0:
            raise ValueError(
                f"exploration_stop_steps must be null or >= 0, got {self.exploration_stop_steps}"
            )
        if self.route_bonus < 0.0:
            raise ValueError(f"route_bonus must be >= 0, got {self.route_bonus}")
        if self.explorers < 1:
            raise ValueError(f"explorers must be >= 1, got {self.explorers}")
        if self.target_radius is not None and self.target_radius <= 0.0:
            raise ValueError(f"target_radius must be null or > 0, got {self.target_radius}")
        low, high = self.mode_region_low, self.mode_region_high
        if (low is None) != (high is None) or (
            low is not None
            and high is not None
            and (len(low) != len(high) or any(a >= b for a, b in zip(low, high, strict=True)))
        ):
            raise ValueError(
                "mode_region_low and mode_region_high must both be null or both lists of one "
                f"bound per mode feature with low < high, got {low} and {high}"
            )
        for key in ("batch_size", "exploit_batch_size"):
            size = getattr(self, key)
            if size is not None and size < self.max_modes + self.explorers:
                raise ValueError(
                    f"{key} must hold at least one sample per group (max_modes + explorers = "
                    f"{self.max_modes + self.explorers}), got {size}"
                )
        if self.exploit_updates_per_step is not None and self.exploit_updates_per_step < 1:
            raise ValueError(
                "exploit_updates_per_step must be null or >= 1, got "
                f"{self.exploit_updates_per_step}"
            )

    @property
    def mode_region(self) -> tuple[list[float], list[float]] | None:
        """(low, high) of the box successes are clustered in, or None (whole paths)."""
        if self.mode_region_low is None or self.mode_region_high is None:
            return None
        return list(self.mode_region_low), list(self.mode_region_high)

    @property
    def cluster_settings(self) -> ClusterSettings:
        """The clustering keys, as one mode-discovery round reads them."""
        return ClusterSettings(
            threshold=self.cluster_threshold,
            resample_len=self.resample_len,
            max_clusters=self.max_modes,
            min_mode_size=self.min_mode_size,
            region=self.mode_region,
            keep_modes=self.keep_modes,
            spread=self.mode_choice == "spread",
            seeded=self.clustering == "seeded",
        )
