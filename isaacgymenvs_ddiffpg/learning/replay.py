"""Trajectory-aware replay buffer stored per environment on the training device."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


class TrajectoryReplay:
    """Whole-trajectory replay laid out per env so that `add` needs no host round-trip.

    Storage is indexed ``(env, slot, step)``. Each env writes its running episode into its current
    slot; when the episode ends the slot is closed (length, success goal id, trajectory id are
    kept) and the env moves on to the slot of its oldest trajectory that is not a kept success.
    Successful trajectories are only overwritten when every other slot of the env holds one too;
    otherwise they leave through the per-mode caps (`evict`), as in the released settings where
    successes stay until their cluster is full. Trajectory ``id = env + num_envs *
    episode_index_of_env``, so ``env = id % num_envs``; its slot is found among the env's slots.

    Observations are kept as a ``(max_episode_length + 1)``-long sequence per slot: the
    next observation of step ``t`` is ``obs[t + 1]``, and the last one is the env's final
    observation (never the reset observation). Every transition carries ``num_target_slots``
    target actions (slot ``g`` belongs to the critic of group ``g``), initialised to the
    executed action.

    Attributes:
        group_of: ``(num_envs, slots_per_env)`` long, the multimodal-batch group of each stored
            trajectory: 0 = exploration only / unassigned, ``k`` = mode group ``k``. Set by mode
            discovery through `set_groups`; reset to 0 when a slot is reused.
        explorer: ``(num_envs, slots_per_env)`` long, which exploration group collected the
            trajectory: ``e >= 1`` the e-th (its episode acted under that group's z; 1, the
            first, for every trajectory when `add` is not told), 0 an env exploiting a mode.
        new_route: ``(num_envs, slots_per_env)`` bool, a successful trajectory on a route no
            mode takes; set by mode discovery through `set_new_routes`, false when a slot is
            reused.
    """

    def __init__(
        self,
        num_envs: int,
        memory_size: int,
        max_episode_length: int,
        obs_dim: int,
        act_dim: int,
        num_target_slots: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        """Allocates the buffer.

        Args:
            num_envs: number of parallel envs ``N`` writing into the buffer.
            memory_size: capacity in trajectories (``num_envs * slots_per_env`` is kept, with
                ``slots_per_env = max(2, ceil(memory_size / num_envs))``).
            max_episode_length: ``T``, the most transitions one slot holds; a longer episode
                is closed at ``T`` and continues as a new trajectory.
            obs_dim: observation size.
            act_dim: action size.
            num_target_slots: ``G_max``, target-action slots per transition (max modes + 1).
            device: storage device.
            dtype: float dtype of observations, actions, rewards and target actions.
        """
        self.num_envs = num_envs
        self.slots_per_env = max(2, math.ceil(memory_size / num_envs))
        self.capacity = num_envs * self.slots_per_env
        self.max_episode_length = max_episode_length
        self.num_target_slots = num_target_slots
        self.device = torch.device(device)
        n, s, t = num_envs, self.slots_per_env, max_episode_length
        dev = self.device
        self.obs = torch.zeros(n, s, t + 1, obs_dim, dtype=dtype, device=dev)
        self.action = torch.zeros(n, s, t, act_dim, dtype=dtype, device=dev)
        self.reward = torch.zeros(n, s, t, dtype=dtype, device=dev)
        self.terminated = torch.zeros(n, s, t, dtype=torch.bool, device=dev)
        self.target_action = torch.zeros(
            num_target_slots, n, s, t, act_dim, dtype=dtype, device=dev
        )
        self.length = torch.zeros(n, s, dtype=torch.long, device=dev)
        self.success = torch.zeros(n, s, dtype=torch.long, device=dev)
        self.closed = torch.zeros(n, s, dtype=torch.bool, device=dev)
        self.valid = torch.ones(n, s, dtype=torch.bool, device=dev)
        self.group_of = torch.zeros(n, s, dtype=torch.long, device=dev)
        self.explorer = torch.ones(n, s, dtype=torch.long, device=dev)
        self.new_route = torch.zeros(n, s, dtype=torch.bool, device=dev)
        self.traj_id = torch.full((n, s), -1, dtype=torch.long, device=dev)
        self.episode_count = torch.zeros(n, dtype=torch.long, device=dev)
        self.current_slot = torch.zeros(n, dtype=torch.long, device=dev)
        self._env = torch.arange(n, device=dev)
        self.traj_id[:, 0] = self._env

    def _tensors(self) -> dict[str, Tensor]:
        names = ("obs", "action", "reward", "terminated", "target_action", "length", "success")
        names += ("closed", "valid", "group_of", "traj_id", "episode_count", "current_slot")
        names += ("explorer", "new_route")
        return {name: getattr(self, name) for name in names}

    @torch.no_grad()
    def add(
        self,
        obs: Tensor,
        action: Tensor,
        reward: Tensor,
        next_obs: Tensor,
        terminated: Tensor,
        done: Tensor,
        success: Tensor,
        broken: Tensor | None = None,
        explorer: Tensor | None = None,
    ) -> Tensor:
        """Appends one vector step to every env's running trajectory (tensor ops only).

        A transition with a non-finite observation, action, reward or next observation, or one
        marked `broken` (e.g. the physics blew up during it), is not stored: the env's stored
        trajectory ends before it, as at a time-out, and its next stored step starts a new one.

        Args:
            obs: ``(N, obs_dim)`` observations the actions were taken in.
            action: ``(N, act_dim)`` executed actions.
            reward: ``(N,)`` extrinsic rewards.
            next_obs: ``(N, obs_dim)`` true next observations: for envs whose episode ended
                this must be the env's ``final_obs``, not the observation after the reset.
            terminated: ``(N,)`` bool, goal reached (timeouts are not terminal).
            done: ``(N,)`` bool, the episode ended (terminated or timed out).
            success: ``(N,)`` long goal id reached (0 = failure); read where ``done``.
            broken: ``(N,)`` bool, transitions to leave out (None: none).
            explorer: ``(N,)`` long, the exploration group the env's episode plays, from 1
                (0: it exploits a mode; a bool True counts as 1; None: every one plays 1).

        Returns:
            dropped: ``(N,)`` bool, the transitions left out.
        """
        env, slot = self._env, self.current_slot
        step = self.length[env, slot]
        keep = torch.isfinite(obs).all(dim=1) & torch.isfinite(next_obs).all(dim=1)
        keep &= torch.isfinite(action).all(dim=1) & torch.isfinite(reward)
        if broken is not None:
            keep &= ~broken.bool()
        rows = keep[:, None]

        def write(store: Tensor, index: tuple[Any, ...], value: Tensor, mask: Tensor) -> None:
            store[index] = torch.where(mask, value.to(store.dtype), store[index])

        write(self.obs, (env, slot, step), obs, rows)
        write(self.obs, (env, slot, step + 1), next_obs, rows)
        write(self.action, (env, slot, step), action, rows)
        write(self.target_action, (slice(None), env, slot, step), action, rows)
        write(self.reward, (env, slot, step), reward, keep)
        write(self.terminated, (env, slot, step), terminated.bool(), keep)
        self.length[env, slot] = step + keep.long()
        if explorer is not None:
            self.explorer[env, slot] = explorer.long()
        done = done.bool() & keep
        # A slot that is full closes too, and the episode continues as a new trajectory; so does
        # a stored trajectory whose next transition was left out.
        close = done | (keep & (step + 1 >= self.max_episode_length)) | (~keep & (step > 0))
        self.closed[env, slot] = close
        self.success[env, slot] = torch.where(done, success.long(), 0)
        self.episode_count += close.long()
        # next slot: the oldest trajectory that is not a kept success (never the one just closed)
        kept = (self.success > 0) & self.valid & self.closed
        age = self.traj_id.to(torch.float64) + kept.to(torch.float64) * 2.0**60
        age[env, slot] = torch.inf
        new_slot = torch.where(close, age.argmin(dim=1), slot)
        self.current_slot = new_slot
        new_id = env + self.num_envs * self.episode_count

        def reopen(store: Tensor, value: Tensor | int) -> None:
            store[env, new_slot] = torch.where(close, value, store[env, new_slot])

        reopen(self.length, 0)
        reopen(self.closed, False)
        reopen(self.valid, True)
        reopen(self.success, 0)
        reopen(self.group_of, 0)
        reopen(self.explorer, 1)
        reopen(self.new_route, False)
        reopen(self.traj_id, new_id)
        return ~keep

    @torch.no_grad()
    def sample(
        self,
        batch_per_group: int,
        num_groups: int,
        generator: torch.Generator | None = None,
        success_share: float = 0.0,
        explore_own: bool = False,
        explorers: int = 1,
    ) -> dict[str, Tensor]:
        """Samples a multimodal batch, ``B = batch_per_group`` transitions for each group.

        Group 0 draws uniformly over all stored transitions, including those of the running
        (unfinished) episodes; with `explore_own`, over those of the trajectories its own envs
        collected (`explorer`), or over all while there are none. Group ``k >= 1`` draws
        uniformly over the transitions of the trajectories labelled ``k`` (a trajectory with
        probability proportional to its length, then a step); with `success_share` > 0 the
        first ``round(success_share * B)`` of them come from its successful trajectories only.
        A group without data uses group 0's distribution. The last ``explorers - 1`` groups
        are further exploration groups and draw as group 0 does (with `explore_own`, each from
        its own envs' trajectories). Needs at least one `add` before the first call.

        Args:
            batch_per_group: ``B``.
            num_groups: ``G`` (exploration + modes), at most ``num_target_slots``.
            generator: random generator on the buffer's device.
            success_share: share of each mode's samples drawn from its successful
                trajectories (0: none; the draws are then those of a plain uniform batch).
            explore_own: each exploration group draws from its own envs' trajectories only.
            explorers: exploration groups: group 0 and the last ``explorers - 1``.

        Returns:
            ``obs`` (G, B, obs_dim), ``action`` (G, B, act_dim), ``reward`` (G, B),
            ``next_obs`` (G, B, obs_dim), ``terminated`` (G, B) bool, ``target_action``
            (G, B, act_dim) (group ``g``'s slot ``g``), ``indices`` (G, B) flat transition
            indices for `write_target_actions`, ``has_data`` (G,) bool: false for a group that
            had no trajectories and drew from group 0's distribution instead, ``success``
            (G, B) bool: the sample's trajectory reached a goal (true throughout the
            exploration groups and any group without a successful trajectory, whose samples
            all count), ``new_route`` (G, B) bool: the sample's trajectory is a success on a
            route no mode takes (`new_route`).
        """
        groups = torch.arange(num_groups, device=self.device)
        weight = (self.length * self.valid).flatten()
        member = self.group_of.flatten()[None, :] == groups[:, None]
        member[0] = True
        num_modes = num_groups - explorers
        member[num_modes + 1 :] = member[0]
        if explore_own:  # exploration group e (rows 0, K + 1, ...) collected as explorer e
            rows = torch.cat((groups[:1], groups[num_modes + 1 :]))
            numbers = torch.arange(1, explorers + 1, device=self.device)
            own = (self.explorer.flatten()[None, :] == numbers[:, None]) & (weight > 0)
            member[rows] = own | ~own.any(dim=1, keepdim=True)
        per_group = weight[None, :] * member
        has_data = per_group.sum(1) > 0
        per_group = torch.where(has_data[:, None], per_group, weight[None, :])
        is_mode = (groups > 0) & (groups <= num_modes)
        winners = per_group * ((self.success > 0).flatten()[None, :] & is_mode[:, None])
        has_win = winners.sum(1) > 0
        num_win = round(success_share * batch_per_group)
        if num_win == 0:
            traj, step = _draw(per_group, batch_per_group, generator)
        else:  # successes first, then the rest of the group's batch
            winners = torch.where(has_win[:, None], winners, per_group)
            rows = torch.cat((winners, per_group))
            rest = batch_per_group - num_win
            traj, step = _draw(rows, max(num_win, rest), generator)
            traj = torch.cat((traj[:num_groups, :num_win], traj[num_groups:, :rest]), dim=1)
            step = torch.cat((step[:num_groups, :num_win], step[num_groups:, :rest]), dim=1)
        indices = traj * self.max_episode_length + step
        obs_index = traj * (self.max_episode_length + 1) + step
        obs = self.obs.flatten(0, 2)
        target = self.target_action.flatten(1, 3)
        return {
            "obs": obs[obs_index],
            "action": self.action.flatten(0, 2)[indices],
            "reward": self.reward.flatten()[indices],
            "next_obs": obs[obs_index + 1],
            "terminated": self.terminated.flatten()[indices],
            "target_action": target[groups[:, None], indices],
            "indices": indices,
            "has_data": has_data,
            "success": (self.success.flatten()[traj] > 0) | ~has_win[:, None],
            "new_route": self.new_route.flatten()[traj],
        }

    @torch.no_grad()
    def write_target_actions(self, indices: Tensor, new: Tensor) -> None:
        """Writes improved target actions back; group ``g`` writes its slot ``g``.

        Args:
            indices: ``(G, B)`` flat transition indices from `sample`.
            new: ``(G, B, act_dim)`` target actions.
        """
        groups = torch.arange(indices.shape[0], device=self.device)
        self.target_action.flatten(1, 3)[groups[:, None], indices] = new.to(
            self.target_action.dtype
        )

    @torch.no_grad()
    def remap_slots(self, source: Tensor) -> None:
        """Permutes/copies target-action slots after a mode re-mapping.

        Args:
            source: ``(G_new,)`` long, new slot ``j`` takes old slot ``source[j]``.
        """
        source = source.to(self.device, torch.long)
        self.target_action[: source.numel()] = self.target_action[source]

    def _locate(self, ids: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        ids = ids.to(self.device, torch.long)
        env = ids % self.num_envs
        slot = (self.traj_id[env] == ids[:, None]).to(torch.uint8).argmax(dim=1)
        present = (ids >= 0) & (self.traj_id[env, slot] == ids)
        return env, slot, present

    @torch.no_grad()
    def completed(
        self, feature_dim: int, device: str | torch.device | None = None
    ) -> dict[str, Tensor]:
        """Returns the completed, non-evicted trajectories, sorted by id (host sync).

        Args:
            feature_dim: ``F``, the leading observation dims used as path features.
            device: where to put the results (the buffer's device by default).

        Returns:
            ``ids`` (M,), ``success`` (M,) goal ids (0 = failure), ``lengths`` (M,) transitions,
            ``groups`` (M,) labels, ``paths`` (M, L_max + 1, F) zero-padded state sequences
            whose first ``lengths + 1`` rows hold ``obs[0..length]`` (final obs included).
        """
        keep = self.closed & self.valid & (self.length > 0)
        ids = self.traj_id[keep]
        order = torch.argsort(ids)
        env, slot = (index[order] for index in torch.nonzero(keep, as_tuple=True))
        lengths = self.length[env, slot]
        horizon = int(lengths.max().item()) + 1 if lengths.numel() else 1
        paths = self.obs[env, slot, :horizon, :feature_dim].clone()
        steps = torch.arange(horizon, device=self.device)
        paths[steps[None, :] > lengths[:, None]] = 0
        out = {
            "ids": ids[order],
            "success": self.success[env, slot],
            "lengths": lengths,
            "groups": self.group_of[env, slot],
            "paths": paths,
        }
        return {key: value.to(device or self.device) for key, value in out.items()}

    @torch.no_grad()
    def set_groups(self, ids: Tensor, groups: Tensor, clear_others: bool = True) -> None:
        """Labels trajectories with their multimodal-batch group.

        Args:
            ids: ``(M,)`` trajectory ids; ids no longer stored are ignored.
            groups: ``(M,)`` long labels (0 = exploration only).
            clear_others: reset every other trajectory's label to 0 first.
        """
        if clear_others:
            self.group_of.zero_()
        env, slot, present = self._locate(ids)
        groups = groups.to(self.device, torch.long)
        self.group_of[env, slot] = torch.where(present, groups, self.group_of[env, slot])

    @torch.no_grad()
    def set_new_routes(self, ids: Tensor) -> None:
        """Marks these trajectories, and no other, as successes on a route no mode takes.

        Args:
            ids: ``(M,)`` trajectory ids; ids no longer stored are ignored.
        """
        self.new_route.zero_()
        env, slot, present = self._locate(ids)
        self.new_route[env[present], slot[present]] = True

    @torch.no_grad()
    def evict(self, ids: Tensor) -> None:
        """Marks trajectories invalid so they are never sampled or returned again.

        Args:
            ids: ``(M,)`` trajectory ids; ids no longer stored are ignored.
        """
        env, slot, present = self._locate(ids)
        self.valid[env, slot] = self.valid[env, slot] & ~present

    def state_dict(self) -> dict[str, Tensor]:
        """Returns the buffer's tensors (shared, not copied) for a checkpoint."""
        return dict(self._tensors())

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restores a checkpoint made by `state_dict` with the same sizes.

        Args:
            state: tensors by name, shaped as this buffer's; without ``explorer`` (a
                checkpoint from before it was kept) every trajectory counts as the first
                explorer's, or as a mode's where a bool ``explored`` says so; without
                ``new_route``, no trajectory is marked until the next mode discovery.
        """
        if "explorer" not in state:
            explored = state.get("explored", torch.ones_like(self.explorer))
            state = {**state, "explorer": explored.long()}
        if "new_route" not in state:
            state = {**state, "new_route": torch.zeros_like(self.new_route)}
        for name, tensor in self._tensors().items():
            if state[name].shape != tensor.shape:
                raise ValueError(
                    f"{name}: shape {tuple(state[name].shape)} != {tuple(tensor.shape)}"
                )
            tensor.copy_(state[name])


def _draw(rows: Tensor, count: int, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """`count` inverse-CDF draws per row of trajectory weights (R, T): a trajectory is hit with
    probability proportional to its weight (its length), and the draw's offset inside it is the
    step. Returns (trajectory, step), each (R, count)."""
    cdf = rows.cumsum(1)
    total = cdf[:, -1:]
    shape = (rows.shape[0], count)
    uniform = torch.rand(shape, device=rows.device, dtype=torch.float64, generator=generator)
    draw = torch.minimum((uniform * total).long(), total - 1)
    traj = torch.searchsorted(cdf, draw, right=True)
    return traj, draw - (cdf.gather(1, traj) - rows.gather(1, traj))
