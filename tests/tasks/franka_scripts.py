"""Scripted Panda controllers for tests: damped least-squares IK turned into task actions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.franka_base import NUM_ARM_JOINTS, FrankaTask

DOWN = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
"""Hand pointing down (the `home` orientation): columns are the hand's x, y, z in the world."""


def rot_z(angle: float) -> Tensor:
    """(3, 3) rotation about the world z axis."""
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def rot_y(angle: float) -> Tensor:
    """(3, 3) rotation about the world y axis."""
    c, s = np.cos(angle), np.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], dtype=torch.float64)


class DiffIK:
    """One damped least-squares IK step per task step, returned as joint-delta actions.

    Args:
        task: the Franka task to drive (mujoco backend).
        damping: DLS damping (lambda) of J J^T + lambda^2 I.
        rot_weight: weight of the orientation error against the position error (m per rad).
        max_step: largest end-effector displacement asked for in one step (m).
        posture_gain: pull of the null space towards the `home` joint angles.
    """

    def __init__(
        self,
        task: FrankaTask,
        damping: float = 0.05,
        rot_weight: float = 0.3,
        max_step: float = 0.04,
        posture_gain: float = 0.05,
    ) -> None:
        self.task = task
        self.batch = task.sim.batch  # type: ignore[attr-defined]
        model = task.model
        site = model.site(task.ee_site)
        self.body_id = int(site.bodyid[0])
        self.site_xmat = self.batch.site(task.ee_site).xmat
        self.damping, self.rot_weight = damping, rot_weight
        self.max_step, self.posture_gain = max_step, posture_gain
        self.home = torch.as_tensor(model.key("home").qpos[:NUM_ARM_JOINTS])

    def action(self, target_pos: Tensor, target_rot: Tensor | None = None) -> Tensor:
        """Actions towards a pose.

        Args:
            target_pos: (N, 3) end-effector positions.
            target_rot: (N, 3, 3) end-effector orientations, or None for position only.

        Returns:
            (N, 7) actions in [-1, 1].
        """
        task = self.task
        pos = task.ee_pos.clone()
        jacp, jacr = self.batch.jac(self.body_id, pos.numpy())
        err = target_pos.to(pos) - pos
        norm = torch.linalg.vector_norm(err, dim=1, keepdim=True)
        err = err * torch.clamp(self.max_step / norm.clamp_min(1e-9), max=1.0)
        jac = torch.from_numpy(jacp[:, :, :NUM_ARM_JOINTS])
        if target_rot is not None:
            rot = torch.from_numpy(self.site_xmat.copy()).reshape(-1, 3, 3)
            rot_err = 0.5 * torch.linalg.cross(rot, target_rot.to(rot), dim=1).sum(dim=2)
            rot_err = rot_err.clamp(-0.3, 0.3) * self.rot_weight
            err = torch.cat((err, rot_err), dim=1)
            jac = torch.cat((jac, self.rot_weight * torch.from_numpy(jacr[:, :, :7])), dim=1)
        eye = torch.eye(jac.shape[1], dtype=jac.dtype)
        jjt = jac @ jac.transpose(1, 2) + self.damping**2 * eye
        dq = (jac.transpose(1, 2) @ torch.linalg.solve(jjt, err[..., None]))[..., 0]
        q = task.sim.qpos[:, :NUM_ARM_JOINTS].clone()
        pinv = jac.transpose(1, 2) @ torch.linalg.inv(jjt)
        null = torch.eye(NUM_ARM_JOINTS, dtype=jac.dtype) - pinv @ jac
        dq = dq + (null @ (self.posture_gain * (self.home - q))[..., None])[..., 0]
        action = (q + dq - task.joint_target) / task.cfg.action_scale
        # shrink the whole step rather than clip joints one by one, which would bend its direction
        largest = action.abs().amax(dim=1, keepdim=True).clamp_min(1.0)
        return (action / largest).float()


class Waypoints:
    """Per-env sequences of end-effector waypoints, each held until reached or for a while.

    Args:
        paths: for each env, a list of (position (3,), rotation (3, 3) or None) waypoints.
        tolerance: distance (m) at which a waypoint counts as reached.
        patience: steps after which the next waypoint is taken regardless.
    """

    def __init__(
        self,
        paths: Sequence[Sequence[tuple[Sequence[float], Tensor | None]]],
        tolerance: float = 0.02,
        patience: int = 25,
    ) -> None:
        self.paths = paths
        self.index = [0] * len(paths)
        self.age = [0] * len(paths)
        self.tolerance, self.patience = tolerance, patience

    def targets(self, ee_pos: Tensor) -> tuple[Tensor, Tensor]:
        """Current targets (N, 3) and rotations (N, 3, 3), advancing envs that reached theirs."""
        positions, rotations = [], []
        for env, path in enumerate(self.paths):
            pos, rot = path[self.index[env]]
            close = float(torch.linalg.vector_norm(ee_pos[env].double() - torch.tensor(pos)))
            self.age[env] += 1
            if (close < self.tolerance or self.age[env] > self.patience) and self.index[env] < len(
                path
            ) - 1:
                self.index[env] += 1
                self.age[env] = 0
                pos, rot = path[self.index[env]]
            positions.append(torch.tensor(pos, dtype=torch.float64))
            rotations.append(DOWN if rot is None else rot)
        return torch.stack(positions), torch.stack(rotations)


class CubePusher:
    """Pushes a cube along per-env routes of (x, y) waypoints with a closed-gripper hand.

    Each step it either pushes (the end effector is low, behind the cube along the direction to
    the next waypoint), or goes round: up, over the point behind the cube, and down again.

    Args:
        routes: for each env, the cube's (x, y) waypoints.
        cube_half: half edge of the cube (m).
        push_height: end-effector height while pushing (m).
        travel_height: end-effector height while going round (m).
    """

    def __init__(
        self,
        routes: Sequence[Sequence[Sequence[float]]],
        cube_half: float,
        push_height: float = 0.025,
        travel_height: float = 0.09,
        tolerance: float = 0.025,
    ) -> None:
        self.routes = [torch.tensor(r, dtype=torch.float64) for r in routes]
        self.index = [0] * len(routes)
        self.half, self.tolerance = cube_half, tolerance
        self.push_height, self.travel_height = push_height, travel_height

    def targets(self, ee_pos: Tensor, cube_xy: Tensor) -> Tensor:
        """End-effector targets (N, 3) from positions (N, 3) and cube centres (N, 2)."""
        out = []
        for env, route in enumerate(self.routes):
            ee, cube = ee_pos[env].double(), cube_xy[env].double()
            if (
                torch.linalg.vector_norm(route[self.index[env]] - cube) < self.tolerance
                and self.index[env] < len(route) - 1
            ):
                self.index[env] += 1
            goal = route[self.index[env]]
            u = (goal - cube) / torch.linalg.vector_norm(goal - cube).clamp_min(1e-6)
            normal = torch.stack((-u[1], u[0]))
            rel = ee[:2] - cube
            along, lateral = float(rel @ u), float(rel @ normal)
            behind = cube - (self.half + 0.03) * u
            low = float(ee[2]) < self.push_height + 0.02
            in_place = along < -self.half and abs(lateral) < 0.015
            if low and in_place:
                xy = cube + 0.03 * u
                z = self.push_height
            elif low and along > -self.half - 0.01:
                xy, z = ee[:2], self.travel_height
            elif torch.linalg.vector_norm(ee[:2] - behind) < 0.015:
                xy, z = behind, self.push_height
            else:
                xy, z = behind, self.travel_height if not low else self.push_height
            out.append(torch.cat((xy, torch.tensor([z], dtype=torch.float64))))
        return torch.stack(out)


def place_ee(task: FrankaTask, env_ids: Sequence[int], targets: Tensor, iters: int = 100) -> None:
    """Teleport the arm of envs `env_ids` so that the end effector is at `targets` (n, 3), hand
    pointing down (kinematic IK, no physics); joint targets follow so the arm stays there."""
    ik = DiffIK(task, damping=0.02, rot_weight=0.5, max_step=0.05, posture_gain=0.0)
    ids = np.asarray(env_ids, dtype=np.int32)
    mask = torch.zeros(task.num_envs, dtype=torch.bool)
    mask[torch.as_tensor(env_ids)] = True
    qpos = task.sim.qpos
    for _ in range(iters):
        task.sim.forward(mask)
        pos = task.ee_pos[ids].clone()
        jacp, jacr = ik.batch.jac(ik.body_id, pos.numpy(), ids=ids)
        rot = torch.from_numpy(ik.site_xmat[ids].copy()).reshape(-1, 3, 3)
        rot_err = 0.5 * torch.linalg.cross(rot, DOWN.expand_as(rot), dim=1).sum(dim=2)
        err = torch.cat((targets.double() - pos, rot_err), dim=1)
        if err.abs().max() < 1e-6:
            break
        jac = torch.from_numpy(np.concatenate((jacp, jacr), axis=1)[:, :, :NUM_ARM_JOINTS])
        jjt = jac @ jac.transpose(1, 2) + 1e-4 * torch.eye(6, dtype=jac.dtype)
        dq = (jac.transpose(1, 2) @ torch.linalg.solve(jjt, err[..., None]))[..., 0]
        qpos[ids, :NUM_ARM_JOINTS] += dq
    task.sim.forward(mask)
    task.joint_target[ids] = qpos[ids, :NUM_ARM_JOINTS]
    task.sim.ctrl[ids, :NUM_ARM_JOINTS] = qpos[ids, :NUM_ARM_JOINTS]
