"""Scripted Panda controllers for tests: damped least-squares IK turned into task actions."""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
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
            jacr_arm = torch.from_numpy(jacr[:, :, :NUM_ARM_JOINTS])
            jac = torch.cat((jac, self.rot_weight * jacr_arm), dim=1)
        eye = torch.eye(jac.shape[1], dtype=jac.dtype)
        jjt = jac @ jac.transpose(1, 2) + self.damping**2 * eye
        dq = (jac.transpose(1, 2) @ torch.linalg.solve(jjt, err[..., None]))[..., 0]
        q = task.sim.qpos[:, :NUM_ARM_JOINTS].clone()
        pinv = jac.transpose(1, 2) @ torch.linalg.inv(jjt)
        null = torch.eye(NUM_ARM_JOINTS, dtype=jac.dtype) - pinv @ jac
        dq = dq + (null @ (self.posture_gain * (self.home - q))[..., None])[..., 0]
        action = dq / task.cfg.action_scale  # the task's target is q + action * action_scale
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
            distance = float(torch.linalg.vector_norm(ee_pos[env].double() - torch.tensor(pos)))
            self.age[env] += 1
            done = distance < self.tolerance or self.age[env] > self.patience
            if done and self.index[env] < len(path) - 1:
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
            if low and along < -self.half and abs(lateral) < 0.015:
                xy, z = cube + 0.03 * u, self.push_height  # in place: push through the centre
            elif low and along > -self.half - 0.01:
                xy, z = ee[:2], self.travel_height  # beside or ahead of the cube: lift
            elif torch.linalg.vector_norm(ee[:2] - behind) < 0.015:
                xy, z = behind, self.push_height  # above the point behind the cube: descend
            else:
                xy, z = behind, self.push_height if low else self.travel_height  # go there
            out.append(torch.cat((xy, torch.tensor([z], dtype=torch.float64))))
        return torch.stack(out)


class DoorScript:
    """Opens a hinged door: approach points, then a point that turns ahead of the door.

    Points are given in the closed door's frame: (distance in front of/behind the door's front
    face along +x, distance from the hinge along the door) and a world height. After the last
    approach point the target is the `follow` point turned by the door angle plus `lead`.

    Args:
        hinge: (x, y) of the hinge axis at the door's front face.
        plans: for each env, (approach points, follow point); a point is ((dx, dr), z).
        lead: how far (rad) the follow target runs ahead of the door.
    """

    def __init__(
        self,
        hinge: Sequence[float],
        plans: Sequence[
            tuple[Sequence[tuple[Sequence[float], float]], tuple[Sequence[float], float]]
        ],
        lead: float = 0.3,
        tolerance: float = 0.02,
    ) -> None:
        self.hinge = np.asarray(hinge, dtype=np.float64)
        self.plans, self.lead, self.tolerance = plans, lead, tolerance
        self.phase = [0] * len(plans)

    def door_point(self, point: Sequence[float], angle: float) -> np.ndarray:
        """World (x, y) of a door-frame point with the door open by `angle`."""
        c, s = np.cos(angle), np.sin(angle)
        return self.hinge + np.array([c * point[0] - s * point[1], s * point[0] + c * point[1]])

    def targets(self, ee_pos: Tensor, angles: Tensor) -> tuple[Tensor, Tensor]:
        """Targets (N, 3) and hand orientations (N, 3, 3) turning with the door."""
        positions, rotations = [], []
        for env, (approach, follow) in enumerate(self.plans):
            angle = float(angles[env])
            if self.phase[env] < len(approach):
                point, z = approach[self.phase[env]]
                target = np.array([*self.door_point(point, angle), z])
                if np.linalg.norm(ee_pos[env].numpy() - target) < self.tolerance:
                    self.phase[env] += 1
            else:
                point, z = follow
                target = np.array([*self.door_point(point, angle + self.lead), z])
            positions.append(torch.from_numpy(target))
            rotations.append(rot_z(angle) @ DOWN)
        return torch.stack(positions), torch.stack(rotations)


def solve_ik(
    task: FrankaTask,
    seed: Sequence[float],
    targets: Sequence[Sequence[float]],
    rot: Tensor,
    iters: int = 100,
) -> list[np.ndarray]:
    """Kinematic IK along a sequence of end-effector positions, each solution seeding the next.

    Args:
        task: the task whose model to use (its state is untouched).
        seed: (7,) arm joints to start the first solve from.
        targets: end-effector positions (3,) in order.
        rot: (3, 3) end-effector orientation for all of them.

    Returns:
        One (7,) arm configuration per target, within the joint limits.
    """
    model = task.model
    data = mujoco.MjData(model)
    site = model.site(task.ee_site).id
    low, high = model.jnt_range[:NUM_ARM_JOINTS].T
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    q, out = np.asarray(seed, dtype=np.float64), []
    for target in targets:
        for _ in range(iters):
            data.qpos[:NUM_ARM_JOINTS] = q
            mujoco.mj_kinematics(model, data)
            mujoco.mj_comPos(model, data)
            current = data.site_xmat[site].reshape(3, 3)
            rot_err = 0.5 * np.cross(current.T, rot.numpy().T).sum(axis=0)
            err = np.concatenate((np.asarray(target) - data.site_xpos[site], rot_err))
            mujoco.mj_jacSite(model, data, jacp, jacr, site)
            jac = np.concatenate((jacp, jacr))[:, :NUM_ARM_JOINTS]
            step = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(6), err)
            q = np.clip(q + 0.5 * step, low, high)
        out.append(q.copy())
    return out


class JointPath:
    """Per-env sequences of arm configurations, followed in joint space at full speed.

    Args:
        paths: for each env, a list of (7,) configurations.
        tolerance: largest joint error (rad) at which a configuration counts as reached.
    """

    def __init__(self, paths: Sequence[Sequence[np.ndarray]], tolerance: float = 0.03) -> None:
        self.paths = [torch.as_tensor(np.stack(p)) for p in paths]
        self.index = [0] * len(paths)
        self.tolerance = tolerance

    def action(self, task: FrankaTask) -> Tensor:
        """(N, 7) actions moving each joint target towards the current configuration."""
        q = task.sim.qpos[:, :NUM_ARM_JOINTS]
        goals = []
        for env, path in enumerate(self.paths):
            if (q[env] - path[self.index[env]]).abs().max() < self.tolerance:
                self.index[env] = min(self.index[env] + 1, len(path) - 1)
            goals.append(path[self.index[env]])
        action = (torch.stack(goals) - q) / task.cfg.action_scale
        largest = action.abs().amax(dim=1, keepdim=True).clamp_min(1.0)
        return (action / largest).float()


def place_ee(task: FrankaTask, env_ids: Sequence[int], targets: Tensor) -> None:
    """Teleport the arms of envs `env_ids` so that their end effectors are at `targets` (n, 3),
    hand pointing down (kinematic IK, no physics); the actuators' targets follow, so the arms
    stay."""
    qpos = task.sim.qpos
    for env, target in zip(env_ids, targets, strict=True):
        seed = qpos[env, :NUM_ARM_JOINTS].numpy()
        q = torch.from_numpy(solve_ik(task, seed, [target.tolist()], DOWN, iters=200)[0])
        qpos[env, :NUM_ARM_JOINTS] = q
        task.sim.ctrl[env, :NUM_ARM_JOINTS] = q
    task.sim.forward()
