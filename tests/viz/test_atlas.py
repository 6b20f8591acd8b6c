"""The mode atlas: one colour per mode, failures drawn faintly, start and goals in the legend, every
label inside the figure; the maze map, or the Franka scene's geoms in each projection."""

from pathlib import Path

import mujoco
import numpy as np
import pytest
import torch
from matplotlib.patches import Circle, Rectangle
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.viz.atlas import (
    FAILURE_ALPHA,
    PAD_INCHES,
    SUCCESS_ALPHA,
    MazeMap,
    ModeTrajectories,
    WorkspaceMap,
    atlas_figure,
    draw_atlas,
    mode_color,
    task_map,
    write_atlas,
)
from isaacgymenvs_ddiffpg.viz.scene import SceneGeom, convex_hull


def synthetic_clustering(feature_dim: int = 2) -> ModeTrajectories:
    """Three modes of straight paths from the origin: left (mode 1), up (2), down (5)."""
    steps = torch.linspace(0, 1, 20)[:, None]
    paths, modes = [], []
    for mode, direction in ((1, (-8.0, 0.0)), (2, (0.0, 4.0)), (5, (0.0, -4.0))):
        for k in range(4):
            target = torch.tensor([*direction, 0.5][:feature_dim]) + 0.2 * k
            paths.append(steps * target)
            modes.append(mode)
    return ModeTrajectories(
        paths=torch.stack(paths),
        lengths=torch.full((12,), 20),
        modes=torch.tensor(modes),
        success_rate={1: 0.9, 2: 0.5},
    )


def played(feature_dim: int = 2, scale: float = 1.0) -> ModeTrajectories:
    """Played episodes: modes 1 and 2 reach the goal 3 times in 4; every mode-3 episode fails."""
    trajectories = synthetic_clustering(feature_dim)
    trajectories.paths = trajectories.paths * scale
    trajectories.modes = torch.tensor([1] * 4 + [2] * 4 + [3] * 4)
    trajectories.success = torch.tensor([True, True, True, False] * 2 + [False] * 4)
    trajectories.success_rate = {1: 0.75, 2: 0.75, 3: 0.0}
    return trajectories


def pixels_near(image: np.ndarray, rgb: tuple[float, float, float]) -> int:
    target = np.array(rgb) * 255
    return int((np.abs(image.astype(float) - target).max(axis=-1) < 40).sum())


def legend_labels(figure) -> list[str]:
    (legend,) = figure.legends
    return [text.get_text() for text in legend.get_texts()]


def assert_everything_inside(image: np.ndarray) -> None:
    """Nothing drawn touches the picture's edge: labels, tick labels (with their minus signs),
    legend and title lie whole inside its white margin."""
    margin = round(PAD_INCHES * 100 / 2)  # half the pad, at 100 dpi
    for edge in (image[:margin], image[-margin:], image[:, :margin], image[:, -margin:]):
        assert (edge == 255).all()


def test_one_colour_per_mode_over_the_maze_map(tmp_path: Path) -> None:
    task = make_task("PointMazeV1", num_envs=1)
    maze = task_map(task)
    assert isinstance(maze, MazeMap) and maze == MazeMap.of_task(task)
    assert len(maze.walls) == 17 and maze.goals == ((-8.0, 0.0),)
    writer = SummaryWriter(str(tmp_path / "summaries"))
    colors = write_atlas(
        synthetic_clustering(), maze, tmp_path / "modes" / "atlas.png", "test", writer, 3
    )
    writer.close()
    assert sorted(colors) == [1, 2, 5]
    assert len(set(colors.values())) == 3  # distinct colours
    image = np.asarray(Image.open(tmp_path / "modes" / "atlas.png").convert("RGB"))
    for rgb in colors.values():
        assert pixels_near(image, rgb) > 50  # every mode's paths (and legend patch) are drawn
    (logged,) = EventAccumulator(str(tmp_path / "summaries")).Reload().Images("modes/atlas")
    assert logged.step == 3 and (logged.height, logged.width) == image.shape[:2]


def test_maze_atlas_shows_failed_modes_start_goal_and_every_label() -> None:
    maze = task_map(make_task("PointMazeV1", num_envs=1))
    figure, colors = atlas_figure(played(), maze, "PointMazeV1: played modes")
    assert legend_labels(figure) == [
        "start",
        "goal",
        "mode 1: 4 traj. (1 failed), success 75%",
        "mode 2: 4 traj. (1 failed), success 75%",
        "mode 3: 4 traj. (4 failed), success 0%",
    ]
    (axis,) = figure.axes
    paths = [line for line in axis.get_lines() if np.size(line.get_xdata()) == 20]
    faint = [line for line in paths if line.get_alpha() == FAILURE_ALPHA]
    assert len(paths) == 12 and len(faint) == 6 and FAILURE_ALPHA < SUCCESS_ALPHA
    failed_colors = {tuple(line.get_color()) for line in faint}
    assert failed_colors == {colors[1], colors[2], colors[3]}  # mode 3 shows, in its colour
    assert any(isinstance(p, Circle) and p.center == (-8.0, 0.0) for p in axis.patches)  # goal
    assert "\N{MINUS SIGN}" in "".join(t.get_text() for t in axis.get_yticklabels())
    image, _ = draw_atlas(played(), maze, "PointMazeV1: played modes")
    assert_everything_inside(image)
    assert pixels_near(image, colors[3]) > 20  # the failed mode is visible in the picture


def test_legend_counts_and_rates_and_franka_projections() -> None:
    from isaacgymenvs_ddiffpg.viz import atlas

    labels = [atlas._legend_label(m, synthetic_clustering()) for m in (1, 2, 5)]
    assert labels == [
        "mode 1: 4 traj., success 90%",
        "mode 2: 4 traj., success 50%",
        "mode 5: 4 traj., not evaluated",
    ]
    flat, _ = draw_atlas(synthetic_clustering(2), None, "xy")
    projections, colors = draw_atlas(synthetic_clustering(3), None, "xyz")
    assert projections.shape[1] > 2 * flat.shape[1]  # three panels: xy, xz, yz
    assert len(colors) == 3


def rectangles(axis) -> list[tuple[float, float, float, float]]:
    """(x0, y0, x1, y1) of an axis's rectangles, rounded to the millimetre."""
    out = []
    for patch in axis.patches:
        if isinstance(patch, Rectangle):
            x, y = patch.get_xy()
            box = (x, y, x + patch.get_width(), y + patch.get_height())
            out.append(tuple(round(float(v), 3) for v in box))
    return out


def test_franka_reach_atlas_draws_the_cross_goal_and_table_in_each_projection() -> None:
    task = make_task("FrankaReach", num_envs=1)
    scene = task_map(task)
    assert isinstance(scene, WorkspaceMap)
    roles = {geom.name: geom.role for geom in scene.geoms}
    assert roles == {
        "table": "backdrop",
        "cross_vertical": "obstacle",
        "cross_horizontal": "obstacle",
        "goal": "goal",
    }  # the robot's own geoms are left out
    data = mujoco.MjData(task.model)
    mujoco.mj_resetDataKeyframe(task.model, data, 0)
    mujoco.mj_forward(task.model, data)
    assert scene.start == pytest.approx(tuple(data.site("ee_site").xpos))

    figure, _ = atlas_figure(played(3, scale=0.05), scene, "FrankaReach")
    xy, xz, yz = figure.axes
    # the cross: slabs 0.4 m long, 1 cm thin, 4 cm deep, centred at (0.45, 0, 0.5)
    assert {(0.43, -0.2, 0.47, 0.2), (0.43, -0.005, 0.47, 0.005)} <= set(rectangles(xy))
    assert {(0.43, 0.3, 0.47, 0.7), (0.43, 0.495, 0.47, 0.505)} <= set(rectangles(xz))
    assert {(-0.005, 0.3, 0.005, 0.7), (-0.2, 0.495, 0.2, 0.505)} <= set(rectangles(yz))
    assert (-0.4, -0.04, 1.0, 0.0) in rectangles(xz)  # the table top's edge
    goals = [p for p in xz.patches if isinstance(p, Circle)]
    assert [(g.center, g.radius) for g in goals] == [((0.62, 0.48), 0.1)]
    stars = [line for line in xz.get_lines() if line.get_marker() == "*"]
    assert [tuple(np.asarray(s.get_xydata())[0]) for s in stars] == [
        pytest.approx(scene.start[::2])
    ]
    assert legend_labels(figure)[:3] == ["start", "goal", "obstacle"]
    assert legend_labels(figure)[3:] == [
        "mode 1: 4 traj. (1 failed), success 75%",
        "mode 2: 4 traj. (1 failed), success 75%",
        "mode 3: 4 traj. (4 failed), success 0%",
    ]
    for axis in figure.axes:  # the view holds the cross and the goal
        (x0, x1), (y0, y1) = axis.get_xlim(), axis.get_ylim()
        assert x1 - x0 == pytest.approx(y1 - y0)  # square panels, equal scales
    assert xz.get_xlim()[1] > 0.72 and xz.get_ylim()[1] > 0.7
    assert_everything_inside(draw_atlas(played(3, scale=0.05), scene, "FrankaReach")[0])


def test_other_franka_scenes_show_their_objects_and_goal_sites() -> None:
    push = task_map(make_task("FrankaPush", num_envs=1))
    assert isinstance(push, WorkspaceMap)
    assert {(g.name, g.role) for g in push.geoms} >= {
        ("obstacle", "obstacle"),
        ("goal", "goal"),
        ("cube", "object"),
    }
    peg = task_map(make_task("FrankaPegInsertion", num_envs=1))
    assert isinstance(peg, WorkspaceMap)
    assert [name for name, _ in peg.goal_sites] == ["hole_1", "hole_2"]
    figure, _ = atlas_figure(played(3, scale=0.05), peg, "FrankaPegInsertion")
    markers = [line for line in figure.axes[0].get_lines() if line.get_marker() == "X"]
    assert len(markers) == 2 and "goal (site)" in legend_labels(figure)
    drawers = task_map(make_task("FrankaDrawerClose", num_envs=1))
    assert isinstance(drawers, WorkspaceMap)
    fronts = [g for g in drawers.geoms if g.name.endswith("_front")]
    assert len(fronts) == 4 and {g.role for g in fronts} == {"object"}
    assert task_map(object()) is None


def test_a_rotated_box_projects_to_its_hull() -> None:
    c = np.sqrt(0.5)
    box = SceneGeom(
        "turned", "box", (0.0, 0.0, 0.0), ((c, -c, 0.0), (c, c, 0.0), (0.0, 0.0, 1.0)),
        (1.0, 1.0, 0.5), (1.0, 0.0, 0.0, 1.0), "obstacle",
    )  # fmt: skip
    assert not box.axis_aligned and box.circle_in(0, 1) is None
    hull = box.outline_in(0, 1)
    assert len(hull) == 4  # a diamond
    assert sorted(np.round(np.abs(hull).max(axis=0), 6).tolist()) == [1.414214, 1.414214]
    square = convex_hull(np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]]))
    assert len(square) == 4
    assert mode_color(0) != mode_color(1)
