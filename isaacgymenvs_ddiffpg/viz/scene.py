"""What the mode atlas draws under the paths: a maze's map, or a workspace's geoms and goals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import mujoco
import numpy as np

BACKDROP_HALF_SIZE = 0.5  # m: a geom this large (the table) is drawn but does not set the view


@dataclass(frozen=True)
class MazeMap:
    """A maze's wall cells, goal regions (in goal-id order) and its start, at the origin."""

    walls: tuple[tuple[float, float], ...]
    goals: tuple[tuple[float, float], ...]
    scaling: float
    goal_radius: float

    @property
    def aspect(self) -> float:
        """Height over width of the map."""
        xs = [x for x, _ in self.walls]
        ys = [y for _, y in self.walls]
        return (max(ys) - min(ys) + self.scaling) / (max(xs) - min(xs) + self.scaling)

    @classmethod
    def of_task(cls, task: Any) -> MazeMap | WorkspaceMap | None:
        """The atlas map of a task: the same as `task_map` (mazes and workspaces alike)."""
        return task_map(task)


GeomRole = Literal["goal", "obstacle", "object", "backdrop"]


@dataclass(frozen=True)
class SceneGeom:
    """One geom of a task's scene, as an oriented box (or a sphere) in world coordinates.

    Attributes:
        name: the geom's name in the model ("" when unnamed).
        shape: "sphere" (radius `half[0]`), "cylinder" (radius `half[0]`, half-length
            `half[2]` along the local z) or "box" (any other geom, by its half extents).
        pos: (3,) centre.
        rot: (3, 3) orientation (columns: the geom's local axes in world coordinates).
        half: (3,) half extents along the local axes.
        rgba: colour of the geom in the model.
        role: "goal" (a visual-only world geom: a success region), "obstacle" (a colliding
            world geom), "object" (a geom of a body that moves: cube, drawer, door) or
            "backdrop" (a geom larger than `BACKDROP_HALF_SIZE`, e.g. the table).
    """

    name: str
    shape: Literal["sphere", "cylinder", "box"]
    pos: tuple[float, float, float]
    rot: tuple[tuple[float, float, float], ...]
    half: tuple[float, float, float]
    rgba: tuple[float, float, float, float]
    role: GeomRole

    def corners(self) -> np.ndarray:
        """(8, 3) corners of the geom's bounding box in world coordinates."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return np.asarray(self.pos) + (signs * np.asarray(self.half)) @ np.asarray(self.rot).T

    def circle_in(self, i: int, j: int) -> float | None:
        """The radius of the geom's outline in the (i, j) projection when that outline is a
        circle (a sphere, or a cylinder seen along its axis); else None."""
        axis = np.asarray(self.rot)[3 - i - j, 2]  # the cylinder axis along the unseen dim
        if self.shape == "sphere" or (self.shape == "cylinder" and abs(axis) > 0.99):
            return self.half[0]
        return None

    def outline_in(self, i: int, j: int) -> np.ndarray:
        """(H, 2) outline of the geom in the (i, j) projection: the hull of its box's corners,
        counter-clockwise (four corners for a box aligned with the world axes)."""
        return convex_hull(self.corners()[:, [i, j]])

    @property
    def axis_aligned(self) -> bool:
        """Whether the geom's axes are the world's (up to order and sign)."""
        rot = np.abs(np.asarray(self.rot))
        return bool(np.all(np.isclose(rot, 0.0, atol=1e-6) | np.isclose(rot, 1.0)))


@dataclass(frozen=True)
class WorkspaceMap:
    """A robot's workspace read from the task's MuJoCo model: every geom that is not the robot's,
    the goal sites, and where the end effector starts.

    Attributes:
        geoms: the scene's geoms, largest first.
        goal_sites: (name, (3,) position) of the world sites that are not the robot's (e.g. the
            peg-insertion holes).
        start: (3,) end-effector position in the model's first keyframe (or its default pose).
    """

    geoms: tuple[SceneGeom, ...]
    goal_sites: tuple[tuple[str, tuple[float, float, float]], ...]
    start: tuple[float, float, float]

    @classmethod
    def of_task(cls, task: Any) -> WorkspaceMap | None:
        """The workspace of a task with a `model` and an `ee_site` (a Franka task); else None."""
        model: Any = getattr(task, "model", None)
        site = getattr(task, "ee_site", None)
        if not isinstance(model, mujoco.MjModel) or not isinstance(site, str):
            return None
        data = mujoco.MjData(model)
        if model.nkey > 0:
            mujoco.mj_resetDataKeyframe(model, data, 0)
        mujoco.mj_forward(model, data)
        site_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if site_id < 0:
            return None
        robot = int(model.body_rootid[model.site_bodyid[site_id]])
        geoms = [
            geom
            for g in range(model.ngeom)
            if int(model.body_rootid[model.geom_bodyid[g]]) != robot
            and (geom := _scene_geom(model, data, g)) is not None
        ]
        geoms.sort(key=lambda geom: -float(np.prod(geom.half)))
        sites = tuple(
            (_name(model, mujoco.mjtObj.mjOBJ_SITE, s), _point(data.site_xpos[s]))
            for s in range(model.nsite)
            if int(model.body_rootid[model.site_bodyid[s]]) != robot
        )
        return cls(tuple(geoms), sites, _point(data.site_xpos[site_id]))

    def view_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """(3,) lower and upper corners of the start, goal sites and every geom but backdrops."""
        points = [np.asarray(self.start)[None], *(np.asarray(p)[None] for _, p in self.goal_sites)]
        points += [geom.corners() for geom in self.geoms if geom.role != "backdrop"]
        stacked = np.concatenate(points)
        return stacked.min(axis=0), stacked.max(axis=0)


def task_map(task: Any) -> MazeMap | WorkspaceMap | None:
    """What the atlas draws under a task's paths: its maze map (anything with `maze` and
    `cfg.goal_radius`), its workspace (a model and an `ee_site`), or None."""
    maze = getattr(task, "maze", None)
    if maze is not None:
        return MazeMap(maze.walls, maze.goals, maze.scaling, float(task.cfg.goal_radius))
    return WorkspaceMap.of_task(task)


def _name(model: mujoco.MjModel, kind: mujoco.mjtObj, index: int) -> str:
    return mujoco.mj_id2name(model, kind, index) or ""


def _point(values: Any) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in values)
    return x, y, z


def _scene_geom(model: mujoco.MjModel, data: mujoco.MjData, g: int) -> SceneGeom | None:
    """The geom `g` as drawn in the atlas; None for planes, meshes and hidden groups."""
    kind, size = int(model.geom_type[g]), model.geom_size[g]
    types = mujoco.mjtGeom
    if kind == types.mjGEOM_SPHERE:
        shape, half = "sphere", (size[0], size[0], size[0])
    elif kind in (types.mjGEOM_CYLINDER, types.mjGEOM_CAPSULE):
        cap = size[0] if kind == types.mjGEOM_CAPSULE else 0.0
        shape, half = "cylinder", (size[0], size[0], size[1] + cap)
    elif kind in (types.mjGEOM_BOX, types.mjGEOM_ELLIPSOID):
        shape, half = "box", (size[0], size[1], size[2])
    else:
        return None
    if int(model.geom_group[g]) > 2:  # groups 3..5 are hidden in MuJoCo's default view
        return None
    material = int(model.geom_matid[g])
    rgba = model.mat_rgba[material] if material >= 0 else model.geom_rgba[g]
    world = int(model.geom_bodyid[g]) == 0
    collides = bool(model.geom_contype[g] or model.geom_conaffinity[g])
    role: GeomRole
    if max(half) >= BACKDROP_HALF_SIZE:
        role = "backdrop"
    elif not world:
        role = "object"
    else:
        role = "obstacle" if collides else "goal"
    rot = data.geom_xmat[g].reshape(3, 3)
    r, gr, b, a = (float(c) for c in rgba)
    return SceneGeom(
        name=_name(model, mujoco.mjtObj.mjOBJ_GEOM, g),
        shape=shape,
        pos=_point(data.geom_xpos[g]),
        rot=tuple(_point(row) for row in rot),
        half=_point(half),
        rgba=(r, gr, b, a),
        role=role,
    )


def convex_hull(points: np.ndarray) -> np.ndarray:
    """(H, 2) convex hull of (P, 2) points, counter-clockwise (Andrew's monotone chain)."""
    ordered = sorted({(float(x), float(y)) for x, y in points})

    def chain(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while (
                len(out) >= 2
                and (
                    (out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                    - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])
                )
                <= 0
            ):
                out.pop()
            out.append(p)
        return out[:-1]

    return np.array(chain(ordered) + chain(ordered[::-1]))
