"""The agent interface the Trainer and the Player use, and the registry of algorithms."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.baselines import DIPO, SAC, TD3, DIPOConfig, SACConfig, TD3Config
from isaacgymenvs_ddiffpg.learning.config import AgentConfig, DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.ddiffpg import DDiffPG
from isaacgymenvs_ddiffpg.learning.discovery import Discovery
from isaacgymenvs_ddiffpg.learning.replay import TrajectoryReplay


class Agent(Protocol):
    """What the Trainer, the Player and the evaluation need of an agent (`AgentCore`'s
    subclasses: `DDiffPG`, `TD3`, `SAC`, `DIPO`)."""

    @property
    def cfg(self) -> AgentConfig:
        """The agent's settings."""
        ...

    @property
    def obs_dim(self) -> int: ...

    @property
    def act_dim(self) -> int: ...

    @property
    def mode_feature_dim(self) -> int:
        """Leading observation dims that are mode features (maze xy, end-effector xyz)."""
        ...

    @property
    def generator(self) -> torch.Generator:
        """The agent's torch generator on its device; rollouts draw from it too."""
        ...

    @property
    def replay(self) -> TrajectoryReplay:
        """The trajectory replay the rollouts write into."""
        ...

    @property
    def actor(self) -> nn.Module:
        """The policy network (what rl-games calls the model)."""
        ...

    @property
    def group_z(self) -> Tensor:
        """(G, embedding_dim) the z each rollout group plays (row 0: exploration)."""
        ...

    @property
    def learns_modes(self) -> bool:
        """Whether the agent discovers modes (the Trainer draws a mode atlas for it)."""
        ...

    @property
    def num_groups(self) -> int:
        """Rollout and critic groups: exploration, the K modes, then any further exploration
        groups."""
        ...

    @property
    def mode_ids(self) -> list[int]:
        """Stable user-facing ids of the modes, group 1..K."""
        ...

    def act(
        self, obs: Tensor, mode_embedding: Tensor, noise_std: Tensor | None = None
    ) -> Tensor: ...

    def plan_updates(self, env_steps: int) -> int:
        """How many updates the iteration at `env_steps` runs (called once, before them)."""
        ...

    def update(self) -> dict[str, Tensor]: ...

    def discover_modes(self) -> Discovery: ...

    def exploit_share(self, env_steps: int, first_mode_steps: int | None) -> float: ...

    def mode_embedding(self, mode_id: int) -> Tensor: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], with_replay: bool = True) -> None: ...


@dataclass(frozen=True)
class Algorithm:
    """An algorithm: its typed settings and the agent they build.

    Attributes:
        config: the settings class (the train config's `params.config.<name>` section).
        agent: called with `make_agent`'s arguments (settings, env spec, device, seed).
    """

    config: type[AgentConfig]
    agent: Callable[..., Agent]


# rl-games algorithm name (= the settings class's `algorithm`) -> algorithm
ALGORITHMS: dict[str, Algorithm] = {
    config.algorithm: Algorithm(config, agent)
    for config, agent in (
        (DDiffPGConfig, DDiffPG),
        (TD3Config, TD3),
        (SACConfig, SAC),
        (DIPOConfig, DIPO),
    )
}


def config_to_dict(cfg: AgentConfig) -> dict[str, Any]:
    """The settings as a checkpoint saves them: every field and the `algorithm`."""
    return {"algorithm": cfg.algorithm, **dataclasses.asdict(cfg)}


def config_from_dict(values: dict[str, Any]) -> AgentConfig:
    """Settings from a checkpoint's saved `config`: its `algorithm` picks the class ("ddiffpg"
    where absent), whose fields are read from `values` (other keys are not settings of it)."""
    schema = ALGORITHMS[str(values.get("algorithm", "ddiffpg"))].config
    names = {field.name for field in dataclasses.fields(schema)}
    return schema(**{key: value for key, value in values.items() if key in names})


def make_agent(cfg: AgentConfig, spec: EnvSpec, device: str | torch.device, seed: int) -> Agent:
    """Build the agent `cfg` configures for the vecenv `spec`, on `device`, seeded with `seed`.

    The networks' initial weights come from torch's CPU generator seeded with `seed` inside a
    forked RNG state, so an agent depends on its settings and seed alone (not on what drew from
    the global generator before) and the caller's random state is left as it was.
    """
    build = ALGORITHMS[cfg.algorithm].agent
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build(cfg, spec, device, seed)
