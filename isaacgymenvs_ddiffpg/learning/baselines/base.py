"""What the TD3, SAC and DIPO baselines share: one critic group, a uniform batch, no modes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor, nn

from isaacgymenvs_ddiffpg.learning.baselines.config import BaselineConfig
from isaacgymenvs_ddiffpg.learning.core import ActorT, AgentCore
from isaacgymenvs_ddiffpg.learning.discovery import Discovery
from isaacgymenvs_ddiffpg.learning.group_adamw import guarded_step
from isaacgymenvs_ddiffpg.learning.modes import ModePlan

BaselineConfigT = TypeVar("BaselineConfigT", bound=BaselineConfig)


def mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    """An ELU MLP ``in_dim -> hidden -> out_dim`` with a linear output layer."""
    dims = (in_dim, *hidden)
    layers: list[nn.Module] = []
    for dim_in, dim_out in zip(dims[:-1], dims[1:], strict=True):
        layers += [nn.Linear(dim_in, dim_out), nn.ELU()]
    layers.append(nn.Linear(dims[-1], out_dim))
    return nn.Sequential(*layers)


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Within the block `module`'s parameters do not require gradients (an actor's loss through
    the critic then differentiates the actions only, compiled or not)."""
    params = [param for param in module.parameters() if param.requires_grad]
    for param in params:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in params:
            param.requires_grad_(True)


class BaselineAgent(AgentCore[BaselineConfigT, ActorT]):
    """Base of the single-policy baselines: one critic group, no modes, no mode discovery.

    The critic is the shared C51 clipped double-Q with a single group (the released baselines
    use the same distributional double-Q), trained on extrinsic + intrinsic reward. There is
    one group (exploration), an empty mode embedding (`group_z` is (1, 0)) and no mode
    discovery. Subclasses build an `actor` module and implement `actor_action` (or `act`),
    `update`, `_extra_state` and `_load_extra`. Arguments as for `AgentCore`.
    """

    learns_modes = False

    def __init__(self, cfg: BaselineConfigT, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        self.group_z = torch.zeros(1, 0, device=self.device)
        self.num_updates = 0
        self.begin_update()

    @property
    def num_groups(self) -> int:
        """Always 1: the baselines have no modes."""
        return 1

    @property
    def mode_ids(self) -> list[int]:
        """Empty: the baselines have no modes."""
        return []

    def mode_embedding(self, mode_id: int) -> Tensor:
        """(0,) the empty embedding of mode 0, the only mode a baseline has."""
        if mode_id != 0:
            raise KeyError(mode_id)
        return self.group_z[0]

    def discover_modes(self) -> Discovery:
        """No mode discovery: an identity plan, nothing labelled or evicted."""
        empty = torch.zeros(0, dtype=torch.long)
        plan = ModePlan(source=[0], fresh_optimizer=[False], fresh_embedding=[False], mode_ids=[0])
        return Discovery(plan=plan, ids=empty, groups=empty, evict_ids=empty, success_labels={})

    def exploit_share(self, env_steps: int, first_mode_steps: int | None) -> float:
        """0: without modes every env explores."""
        return 0.0

    # ------------------------------------------------------------------ update pieces
    def sample(self) -> dict[str, Tensor]:
        """A uniform batch of `batch_size` stored transitions with its training reward.

        Returns:
            `TrajectoryReplay.sample` output with a group axis of 1 (e.g. ``obs`` (1, B,
            obs_dim)) plus ``intrinsic`` (1, B) and ``total_reward`` (1, B) = extrinsic +
            intrinsic (intrinsic = 0 when `use_intrinsic` is off), and with the bonus its
            ``novelty_loss`` (0-d, from the same pass; `novelty_step` backpropagates it).
        """
        self.compiler.begin_step()
        batch = self.replay.sample(self.cfg.batch_size, 1, self.generator)
        if self.cfg.use_intrinsic:
            intrinsic, batch["novelty_loss"] = self.novelty_reward_and_loss(
                self.novelty, batch["obs"][0], batch["next_obs"][0]
            )
            intrinsic = intrinsic[None]
        else:
            intrinsic = torch.zeros_like(batch["reward"])
        batch["intrinsic"] = intrinsic
        batch["total_reward"] = batch["reward"] + intrinsic
        return batch

    def critic_step(
        self, batch: dict[str, Tensor], next_action: Tensor, reward: Tensor | None = None
    ) -> Tensor:
        """One C51 double-Q step and a Polyak update of the target critic.

        Args:
            batch: `sample` output.
            next_action: (1, B, act_dim) a' for the target.
            reward: (1, B) reward of the Bellman target (default: ``total_reward``).

        Returns:
            The detached loss.
        """
        loss, _ = self.critic_loss(
            self.critic,
            self.critic_target,
            batch["obs"],
            batch["action"],
            batch["total_reward"] if reward is None else reward,
            batch["next_obs"],
            next_action,
            (~batch["terminated"]).to(batch["reward"].dtype),
            self.cfg.gamma,
        )
        self.critic_opt.zero_grad()
        loss.backward()
        self.critic_opt.step(skip=~torch.isfinite(loss))
        self.skipped |= self.critic_opt.skipped
        self.soft_update(self.critic_target, self.critic, self.cfg.tau)
        return loss.detach()

    def novelty_step(self, batch: dict[str, Tensor]) -> Tensor:
        """One RND predictor step on the batch's obs and next obs (skipped without novelty)."""
        if not self.cfg.use_intrinsic:
            return torch.zeros((), device=self.device)
        loss = batch["novelty_loss"]
        self.novelty_opt.zero_grad()
        loss.backward()
        predictor = list(self.novelty.rnd.predictor.parameters())
        self.skipped |= guarded_step(self.novelty_opt, predictor, loss, self.cfg.max_grad_norm)
        return loss.detach()

    def step_actor(
        self,
        loss: Tensor,
        optimizer: torch.optim.Optimizer,
        max_grad_norm: float | None | Literal["config"] = "config",
    ) -> None:
        """Backpropagate `loss` into `optimizer`'s parameters only, clip and step it (a step
        with a non-finite loss or gradient is skipped and remembered in `skipped`).

        Args:
            loss: 0-d loss.
            optimizer: a fused torch optimizer (`make_adamw`).
            max_grad_norm: gradient clipping ("config": the settings' `max_grad_norm`).
        """
        params = [param for group in optimizer.param_groups for param in group["params"]]
        optimizer.zero_grad()
        loss.backward(inputs=params)
        clip = self.cfg.max_grad_norm if max_grad_norm == "config" else max_grad_norm
        self.skipped |= guarded_step(optimizer, params, loss, clip)

    def begin_update(self) -> None:
        """Start an update: no step of it has been skipped yet."""
        self.skipped = torch.zeros((), dtype=torch.bool, device=self.device)

    def health(self) -> dict[str, Tensor]:
        """The update's health statistics: 1 if any of its steps was skipped."""
        return {"health/skipped_updates": self.skipped.float()}

    def update(self) -> dict[str, Tensor]:
        """One learner update; see the subclass."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checkpoints
    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training bit-identically."""
        return {
            **self.core_state_dict(),
            "algorithm": self.cfg.algorithm,
            "num_updates": self.num_updates,
            **self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any], with_replay: bool = True) -> None:
        """Restore `state_dict` output (sizes must match this instance's settings)."""
        if state.get("algorithm") != self.cfg.algorithm:
            raise ValueError(
                f"state of {state.get('algorithm')!r}, this agent is {self.cfg.algorithm!r}"
            )
        self.load_core_state_dict(state, with_replay=with_replay)
        self.num_updates = int(state["num_updates"])
        self._load_extra(state)
