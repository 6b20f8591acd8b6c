"""The mode atlas: one colour per mode, drawn over the maze map or as end-effector projections."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.viz.atlas import MazeMap, ModeTrajectories, draw_atlas, write_atlas


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


def pixels_near(image: np.ndarray, rgb: tuple[float, float, float]) -> int:
    target = np.array(rgb) * 255
    return int((np.abs(image.astype(float) - target).max(axis=-1) < 40).sum())


def test_one_colour_per_mode_over_the_maze_map(tmp_path: Path) -> None:
    task = make_task("PointMazeV1", num_envs=1)
    maze = MazeMap.of_task(task)
    assert maze is not None and len(maze.walls) == 17 and maze.goals == ((-8.0, 0.0),)
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
