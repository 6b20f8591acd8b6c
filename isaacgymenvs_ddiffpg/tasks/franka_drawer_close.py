"""FrankaDrawerClose: close any one of four open drawers of a cabinet (2 x 2 grid)."""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks.franka_base import (
    ROBOT_OBS_DIM,
    SCENE_RGBA,
    FrankaEnvConfig,
    FrankaTask,
    add_box,
)

FRONT_RGBA = (0.35, 0.55, 0.75, 1.0)
PANEL = 0.01  # half thickness of carcass panels and drawer fronts
GAP = 0.005  # clearance between a drawer and the carcass


@dataclass
class FrankaDrawerCloseConfig(FrankaEnvConfig):
    """FrankaDrawerClose settings (positions in the robot base frame, table top at z = 0).

    Attributes:
        drawers: centre (y, z) of each drawer front, in goal-id order; on a grid of cells.
        cell_half: half width (y) and half height (z) of a drawer's cell in the carcass.
        cabinet_front: x of the carcass front face (drawer fronts sit just in front of it).
        cabinet_depth: depth of the carcass along x.
        drawer_open: initial opening of every drawer (m).
        drawer_max_open: slide range of the drawers (m).
        drawer_mass: mass of a drawer (kg).
        drawer_damping: slide damping (N s / m).
        closed_threshold: success when a drawer's opening is at most this (m).
    """

    init_joint_noise: float = 0.1
    gripper_opening: float = 0.0
    drawers: list[list[float]] = field(
        default_factory=lambda: [[0.185, 0.68], [-0.185, 0.68], [0.185, 0.48], [-0.185, 0.48]]
    )
    cell_half: list[float] = field(default_factory=lambda: [0.185, 0.1])
    cabinet_front: float = 0.64
    cabinet_depth: float = 0.3
    drawer_open: float = 0.17
    drawer_max_open: float = 0.2
    drawer_mass: float = 1.0
    drawer_damping: float = 5.0
    closed_threshold: float = 0.03


class FrankaDrawerClose(FrankaTask[FrankaDrawerCloseConfig]):
    """Close a drawer: all four start open at `drawer_open`; pushing any one in to at most
    `closed_threshold` succeeds, and which drawer it is is the mode. Random initial arm pose.

    Each drawer is a front panel and a solid body on a slide joint whose value is the opening
    (0 closed). Observation (13 + 2 x 4 drawers = 21): end-effector position and velocity, arm
    joint positions, the drawers' openings (m) and their velocities (m/s). Goal k: drawer k.
    """

    Config = FrankaDrawerCloseConfig
    obs_dim = ROBOT_OBS_DIM + 8

    def add_scene(self, spec: mujoco.MjSpec) -> None:
        cfg = self.cfg
        front, depth = cfg.cabinet_front, cfg.cabinet_depth
        half_y, half_z = cfg.cell_half
        for k, (y, z) in enumerate(cfg.drawers, start=1):
            body = spec.worldbody.add_body(name=f"drawer_{k}", pos=[front, y, z])
            body.add_joint(
                name=f"drawer_{k}",
                type=mujoco.mjtJoint.mjJNT_SLIDE,
                axis=[-1, 0, 0],
                range=[0, cfg.drawer_max_open],
                damping=cfg.drawer_damping,
            )
            panel = add_box(
                body,
                f"drawer_{k}_front",
                (-PANEL - GAP, 0, 0),
                (PANEL, half_y - GAP, half_z - GAP),
                FRONT_RGBA,
            )
            panel.mass = 0.3 * cfg.drawer_mass
            tray_half = (depth / 2 - GAP, half_y - PANEL - GAP, half_z - PANEL - GAP)
            tray = add_box(body, f"drawer_{k}_body", (depth / 2, 0, 0), tray_half, SCENE_RGBA)
            tray.mass = 0.7 * cfg.drawer_mass
            body.add_geom(
                name=f"drawer_{k}_handle",
                type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                fromto=[-2 * PANEL - GAP, -0.05, 0.0, -2 * PANEL - GAP, 0.05, 0.0],
                size=[0.008, 0, 0],
                rgba=[0.2, 0.2, 0.2, 1],
                contype=0,
                conaffinity=0,
                mass=0.0,
            )
        self._add_carcass(spec)

    def _add_carcass(self, spec: mujoco.MjSpec) -> None:
        """Panels around and between the drawers' cells, a back, and a plinth down to the table."""
        cfg = self.cfg
        front, depth = cfg.cabinet_front, cfg.cabinet_depth
        half_y, half_z = cfg.cell_half
        ys = sorted({y for y, _ in cfg.drawers})
        zs = sorted({z for _, z in cfg.drawers})
        y_lo, y_hi = ys[0] - half_y, ys[-1] + half_y
        z_lo, z_hi = zs[0] - half_z, zs[-1] + half_z
        x_mid, x_half = front + depth / 2 + PANEL, depth / 2 + PANEL
        y_mid, y_half = (y_lo + y_hi) / 2, (y_hi - y_lo) / 2 + PANEL
        z_mid, z_half = (z_lo + z_hi) / 2, (z_hi - z_lo) / 2 + PANEL
        walls = spec.worldbody
        for k, y in enumerate(
            [y_lo, *[(a + b) / 2 for a, b in zip(ys, ys[1:], strict=False)], y_hi]
        ):
            add_box(walls, f"cabinet_side_{k}", (x_mid, y, z_mid), (x_half, PANEL, z_half))
        for k, z in enumerate(
            [z_lo, *[(a + b) / 2 for a, b in zip(zs, zs[1:], strict=False)], z_hi]
        ):
            add_box(walls, f"cabinet_shelf_{k}", (x_mid, y_mid, z), (x_half, y_half, PANEL))
        add_box(
            walls,
            "cabinet_back",
            (front + depth + 3 * PANEL, y_mid, z_mid),
            (PANEL, y_half, z_half),
        )
        plinth_half_z = (z_lo - PANEL) / 2
        add_box(
            walls, "cabinet_plinth", (x_mid, y_mid, plinth_half_z), (x_half, y_half, plinth_half_z)
        )

    def bind_scene(self) -> None:
        self.num_goals = len(self.cfg.drawers)
        self.obs_dim = ROBOT_OBS_DIM + 2 * self.num_goals
        first = self.model.joint("drawer_1")  # the drawers' slide joints follow one another
        qpos_adr, dof_adr = int(first.qposadr[0]), int(first.dofadr[0])
        self.drawer_pos = self.sim.qpos[:, qpos_adr : qpos_adr + self.num_goals]
        self.drawer_vel = self.sim.qvel[:, dof_adr : dof_adr + self.num_goals]

    def reset_scene(self, env_mask: Tensor) -> None:
        self.drawer_pos[env_mask] = self.cfg.drawer_open

    def task_observations(self, out: Tensor) -> None:
        out[:, : self.num_goals] = self.drawer_pos
        out[:, self.num_goals :] = self.drawer_vel

    def goal_id(self) -> Tensor:
        openings = self.obs_buf[:, ROBOT_OBS_DIM : ROBOT_OBS_DIM + self.num_goals]
        closed = openings <= self.cfg.closed_threshold
        first = torch.argmax(closed.to(torch.uint8), dim=1) + 1
        return first * closed.any(dim=1)
