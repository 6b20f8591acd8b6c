"""No task is solved by a route it does not claim.

Many envs of every task are driven for whole episodes by temporally correlated random actions
(several noise scales and correlation times), and the maze robots also by drivers that push
straight into walls. Every step is checked, on the state before any same-step reset:
- mazes: no robot's centre enters a wall cell or leaves the map, and no ant torso rises above
  the walls;
- Franka: no part of the arm sinks more than a few millimetres into anything, the end effector
  never enters an obstacle, the cube never enters the FrankaPush wall, the peg tip never enters
  the block and only scores inside a hole's opening, and drawers and the door move only while
  the arm is at them.
"""

from __future__ import annotations

import math

import mujoco
import pytest
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.tasks import load_task_config, make_task, task_names
from isaacgymenvs_ddiffpg.tasks.ant_gait import AntGait
from isaacgymenvs_ddiffpg.tasks.base.vec_task import VecTask
from isaacgymenvs_ddiffpg.tasks.franka_base import ROBOT_OBS_DIM

pytestmark = pytest.mark.slow

MAZES = [name for name in task_names() if "Maze" in name]
FRANKA = [name for name in task_names() if name.startswith("Franka")]
OPEN_FIELD = "/".join(
    ["111111111", "1G0000001", *["100000001"] * 2, "1000R0001", *["100000001"] * 3, "111111111"]
)


class CorrelatedNoise:
    """AR(1) action noise n_t = rho n_{t-1} + sqrt(1 - rho^2) eps_t, scaled and clamped to the
    action box; envs cycle through every (rho, scale) pair so each setting gets its share."""

    def __init__(self, num_envs: int, act_dim: int, seed: int) -> None:
        settings = [(rho, scale) for rho in (0.9, 0.98) for scale in (0.5, 1.0, 3.0)]
        pairs = torch.tensor([settings[k % len(settings)] for k in range(num_envs)])
        self.rho, self.scale = pairs[:, :1], pairs[:, 1:]
        self.noise = torch.zeros(num_envs, act_dim)
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self) -> Tensor:
        fresh = torch.randn(self.noise.shape, generator=self.gen)
        self.noise = self.rho * self.noise + (1 - self.rho**2).sqrt() * fresh
        return (self.scale * self.noise).clamp(-1.0, 1.0)


def run_episode(task: VecTask, policy, check) -> None:
    """Steps `task` for one episode length; `check(extras, step)` sees every step's extras."""
    for step in range(task.max_episode_length):
        _, _, _, _, extras = task.step(policy(step))
        check(extras, step)


# ---------------------------------------------------------------------------------- mazes
def maze_drivers(task: VecTask, seed: int):
    """Half the envs random, half pushing straight along one of 8 compass directions."""
    n = task.num_envs
    noise = CorrelatedNoise(n, task.act_dim, seed)
    angles = torch.arange(n) * (2 * math.pi / 8)
    heading = torch.stack((angles.cos(), angles.sin()), dim=1)
    runner = torch.arange(n) % 2 == 1
    gait = AntGait() if task.act_dim == 8 else None

    def policy(step: int) -> Tensor:
        random = noise()
        if gait is not None:
            push = gait.action(task.obs_buf, heading)
        else:
            push = heading
        return torch.where(runner[:, None], push, random)

    return policy


@pytest.mark.parametrize("name", MAZES)
def test_maze_robots_stay_out_of_walls_and_below_their_tops(name: str) -> None:
    ant = name.startswith("Ant")
    task = make_task(name, num_envs=48 if ant else 96, seed=1)
    maze = task.maze
    walls = torch.tensor(maze.walls)  # (W, 2)
    half = maze.scaling / 2
    x0, x1, y0, y1 = maze.bounds
    closest = torch.full((task.num_envs,), math.inf)
    highest = torch.zeros(task.num_envs)

    def check(extras: dict, step: int) -> None:
        state = extras["final_obs"]
        xy = state[:, :2]
        gap = ((xy[:, None, :] - walls[None]).abs() - half).amax(dim=2)  # (N, W), < 0: inside
        assert (gap >= 0).all(), f"{name}: a robot's centre entered a wall cell at step {step}"
        assert ((xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)).all()
        closest.copy_(torch.minimum(closest, gap.amin(dim=1)))
        if ant:
            highest.copy_(torch.maximum(highest, state[:, 2]))
            assert (state[:, 2] < task.wall_height).all(), f"{name}: an ant rose above the walls"

    run_episode(task, maze_drivers(task, seed=2), check)
    # the pushing drivers really pressed against walls: their centres came within a body of a
    # wall face (the ball's radius is 0.5 m; the ant's legs hold its torso about 0.4 m off)
    runners = closest[1::2]
    assert runners.min() < (0.55 if not ant else 1.0), f"{name}: no driver reached a wall"
    if ant:
        assert highest.max() < 1.5  # the ant stays on the ground, far below the 2 m walls


def test_ant_settles_upright_under_zero_action() -> None:
    """Dropped from its standing pose with D4RL's reset noise and left without torques for
    30 s, the ant lands and its legs splay slowly under the torso's weight; nearly every ant
    ends upright and at rest (on 1024 such ants, 3 tipped over)."""
    task = make_task("AntMazeV1", num_envs=128, seed=0)
    for _ in range(300):
        obs = task.step(torch.zeros(128, 8))[0]
    qx, qy = obs[:, 4], obs[:, 5]
    up = 1 - 2 * (qx**2 + qy**2)  # z component of the torso's up axis
    upright = up > 0.85  # tilted by at most ~30 degrees
    assert upright.float().mean() >= 0.97
    assert ((obs[upright, 2] > 0.25) & (obs[upright, 2] < 0.9)).all()  # on its legs
    assert obs[upright, 15:21].abs().max() < 0.05  # at rest


def test_the_gait_walks_the_ant_where_it_is_told() -> None:
    task = make_task(
        "AntMazeV1",
        num_envs=8,
        seed=0,
        env={
            **load_task_config("AntMazeV1").env,
            "layout": OPEN_FIELD,
        },
    )
    angles = torch.arange(8) * (2 * math.pi / 8)
    heading = torch.stack((angles.cos(), angles.sin()), dim=1)
    gait, start = AntGait(), task.obs_buf[:, :2].clone()
    for _ in range(100):  # 10 s
        obs = task.step(gait.action(task.obs_buf, heading))[0]
    along = ((obs[:, :2] - start) * heading).sum(dim=1)
    assert (along > 4.0).all(), along  # > 0.4 m/s in every direction


# ---------------------------------------------------------------------------------- Franka
def robot_geoms(model: mujoco.MjModel) -> list[int]:
    """Ids of the geoms of the arm, the hand and what the hand holds (bodies under link0)."""
    root = model.body("link0").id
    ids = []
    for geom in range(model.ngeom):
        body = int(model.geom_bodyid[geom])
        while body not in (0, root):
            body = int(model.body_parentid[body])
        if body == root:
            ids.append(geom)
    return ids


def body_geoms(model: mujoco.MjModel, prefix: str) -> list[int]:
    """Colliding geoms of the bodies whose names start with `prefix`."""
    return [
        g
        for g in range(model.ngeom)
        if model.body(int(model.geom_bodyid[g])).name.startswith(prefix)
        and model.geom_contype[g] | model.geom_conaffinity[g]
    ]


def inside_box(point: Tensor, center, half) -> Tensor:
    """(N,) whether points (N, 3) lie strictly inside an axis-aligned box."""
    offset = (point - torch.tensor(center, dtype=point.dtype)).abs()
    return (offset < torch.tensor(half, dtype=point.dtype)).all(dim=1)


class FrankaWatch:
    """What every Franka check looks at: a forwarded copy of each env's MuJoCo data per step,
    and how deep any robot geom sank into a scene geom."""

    def __init__(self, task: VecTask) -> None:
        self.task, self.model = task, task.model
        self.robot = robot_geoms(self.model)
        self.robot_set = set(self.robot)
        self.deepest = 0.0
        self.datas: list[mujoco.MjData] = []

    def snapshot(self) -> None:
        batch = self.task.sim.batch  # type: ignore[attr-defined]
        self.datas = []
        for env in range(self.task.num_envs):
            data = batch.get_data(env)
            mujoco.mj_forward(self.model, data)
            self.datas.append(data)

    def contacts(self) -> None:
        """No robot geom is more than 3 mm inside a scene geom."""
        for data in self.datas:
            for contact in data.contact[: data.ncon]:
                a, b = int(contact.geom1), int(contact.geom2)
                if (a in self.robot_set) != (b in self.robot_set):
                    self.deepest = max(self.deepest, -float(contact.dist))
        assert self.deepest < 0.003, f"the arm sank {self.deepest * 1000:.1f} mm into the scene"


class MoverWatch:
    """Each movable part (a drawer, the door) moves only because the arm pushes it: with the arm
    more than 5 cm away at the end of a step and of the one before, a part's speed never grows
    by more than 0.01 (m/s or rad/s); its damping only slows it down, and a stop only turns it
    back slower. A part at rest thus stays at rest until the arm comes to it.

    Args:
        watch: the task's `FrankaWatch` (its snapshots are used).
        parts: per part, its colliding geom ids.
        speeds: () -> (N, P) the parts' joint velocities.
    """

    def __init__(self, watch: FrankaWatch, parts: list[list[int]], speeds) -> None:
        self.watch, self.parts, self.speeds = watch, parts, speeds
        self.speed = speeds().abs()
        self.near_before = torch.ones(self.speed.shape, dtype=torch.bool)
        self.pushes = 0  # steps in which a part sped up, the arm at it

    def near(self, data: mujoco.MjData, part: int) -> bool:
        model = self.watch.model
        pairs = ((a, b) for a in self.watch.robot for b in self.parts[part])
        return min(mujoco.mj_geomDistance(model, data, a, b, 0.1, None) for a, b in pairs) < 0.05

    def check(self, reset: Tensor) -> None:
        parts = range(len(self.parts))
        near = torch.tensor([[self.near(data, p) for p in parts] for data in self.watch.datas])
        speed = self.speeds().abs().float()
        faster = (speed > self.speed + 0.01) & ~reset[:, None]
        alone = faster & ~(near | self.near_before)
        assert not alone.any(), f"parts sped up with the arm away (env, part): {alone.nonzero()}"
        self.pushes += int((faster & near).sum())
        self.speed, self.near_before = speed, near


def reach_check(task: VecTask):
    """The end effector never enters either slab of the cross."""
    cfg = task.cfg
    center = tuple(cfg.cross_center)

    def check(extras: dict) -> None:
        ee = extras["final_obs"][:, :3].double()
        for half in (cfg.vertical_half, cfg.horizontal_half):
            assert not inside_box(ee, center, half).any(), "the hand is in the cross"

    return check


def push_check(task: VecTask):
    """The cube's centre stays a cube's half-width (less 3 mm) out of the wall."""
    cfg = task.cfg
    ox, oy = cfg.obstacle_pos
    oh = cfg.obstacle_half
    grown = (oh[0] + cfg.cube_half - 0.003, oh[1] + cfg.cube_half - 0.003, 1.0)

    def check(extras: dict) -> None:
        cube = extras["final_obs"][:, ROBOT_OBS_DIM : ROBOT_OBS_DIM + 3].double()
        assert not inside_box(cube, (ox, oy, 0.0), grown).any(), "the cube is in the wall"

    return check


def peg_check(task: VecTask):
    """The peg tip never enters the block, and scores only inside a hole's opening."""
    cfg, model = task.cfg, task.model
    blocks = [
        (model.geom(g).pos.copy(), model.geom(g).size.copy() - 0.002)
        for g in range(model.ngeom)
        if model.geom(g).name.startswith("block_")
    ]
    holes = torch.tensor(cfg.holes, dtype=torch.float64)

    def check(extras: dict) -> None:
        tip = extras["final_obs"][:, :3].double()
        for pos, size in blocks:
            assert not inside_box(tip, pos, size).any(), "the peg is in the block"
        for env in (extras["success"] > 0).nonzero().flatten().tolist():
            hole = holes[int(extras["success"][env]) - 1]
            opening = float((tip[env, :2] - hole[:2]).abs().max())
            assert opening < cfg.hole_half, "the peg scored outside the hole's opening"

    return check


def franka_check(name: str, task: VecTask):
    """The per-step check of a Franka task on its pre-reset state, and its `MoverWatch`."""
    watch = FrankaWatch(task)
    movers: MoverWatch | None = None
    if name == "FrankaDrawerClose":
        drawers = [body_geoms(task.model, f"drawer_{k}") for k in range(1, task.num_goals + 1)]
        movers = MoverWatch(watch, drawers, lambda: task.drawer_vel)
    elif name == "FrankaCabinet":
        door = [body_geoms(task.model, "door")]
        movers = MoverWatch(watch, door, lambda: task.door_speed[:, None])
    checks = {"FrankaReach": reach_check, "FrankaPush": push_check, "FrankaPegInsertion": peg_check}
    own = checks[name](task) if name in checks else None

    def check(extras: dict, step: int) -> None:
        watch.snapshot()
        watch.contacts()
        if own is not None:
            own(extras)
        if movers is not None:
            movers.check(task.reset_buf.clone())

    return check, movers


@pytest.mark.parametrize("name", FRANKA)
def test_franka_random_arms_take_no_impossible_route(name: str) -> None:
    task = make_task(name, num_envs=24, seed=3)
    noise = CorrelatedNoise(task.num_envs, task.act_dim, seed=4)
    check, movers = franka_check(name, task)
    run_episode(task, lambda step: noise(), check)
    if movers is not None:  # the arm did push drawers or the door, so the check had work
        assert movers.pushes > 0


@pytest.mark.parametrize("name", FRANKA)
def test_franka_scene_is_still_without_the_arm(name: str) -> None:
    """Zero actions for a whole episode: the arm holds its pose and nothing else moves."""
    task = make_task(name, num_envs=4, seed=0)
    first = task.obs_buf.clone()
    for _ in range(task.max_episode_length - 1):
        obs, _, terminated, truncated, _ = task.step(torch.zeros(4, 7))
        assert not (terminated | truncated).any()
    dims = [d for d in range(task.obs_dim) if not 3 <= d < 6]  # all but the ee velocity
    assert (obs[:, dims] - first[:, dims]).abs().max() < 2e-3
