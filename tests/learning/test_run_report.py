"""What a run reports: state coverage as a share of the reachable cells, evaluation of z = 0 and
of each mode on their own episodes, progress lines in train.log and the final summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.learning.coverage import Coverage
from isaacgymenvs_ddiffpg.learning.run_log import duration, eval_summary
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.tasks.coverage import CoverageGrid
from tests.learning.test_trainer import make_trainer


def test_coverage_is_the_cumulative_share_of_reachable_cells() -> None:
    reachable = np.ones((4, 2), dtype=bool)
    reachable[0, 0] = False  # 7 reachable cells
    coverage = Coverage(CoverageGrid((0.0, 0.0), 1.0, reachable), torch.device("cpu"))
    coverage.visit(torch.tensor([[0.5, 0.5], [1.5, 0.5], [1.2, 0.9], [9.0, 9.0], [-1.0, 0.0]]))
    assert coverage.share() == pytest.approx(1 / 7)  # (0, 0) is not reachable; (9, 9) outside
    coverage.visit(torch.tensor([[3.5, 1.5]]))
    assert coverage.share() == pytest.approx(2 / 7)  # cumulative
    again = Coverage(CoverageGrid((0.0, 0.0), 1.0, reachable), torch.device("cpu"))
    again.load_state_dict(coverage.state_dict())
    assert again.share() == coverage.share()


def test_tasks_give_grids_of_their_reachable_cells() -> None:
    maze = make_task("PointMazeV1", num_envs=1).coverage_grid()
    assert maze.cell == 1.0 and maze.reachable.sum() == 8 * 16  # 8 free cells of 4 m
    franka = make_task("FrankaReach", num_envs=1)
    grid = franka.coverage_grid()
    assert grid.cell == 0.05 and 5_000 < grid.reachable.sum() < grid.reachable.size
    home = np.floor((franka.obs_buf[0, :3].numpy() - np.array(grid.origin)) / grid.cell)
    assert grid.reachable[tuple(home.astype(int))]


def test_each_mode_and_z0_are_evaluated_on_their_own_episodes(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=80)
    trainer.train()
    assert trainer.algo.mode_ids, "the easy maze gives modes"
    table = trainer.evaluate()
    keys = {"success_z0", "success_goal_1", "success_goal_2", "episode_length"}
    keys |= {f"success_mode_{k}" for k in trainer.algo.mode_ids}
    assert set(table) == keys
    for key, value in table.items():  # 4 eval envs: every rate is a share of 4 episodes
        if key.startswith("success"):
            assert value * 4 == pytest.approx(round(value * 4))
    assert table["success_z0"] == pytest.approx(table["success_goal_1"] + table["success_goal_2"])


def test_a_run_logs_progress_and_ends_with_what_it_learned(tmp_path: Path, capsys) -> None:
    trainer = make_trainer(tmp_path / "run", max_iterations=60)
    trainer.train()
    out = capsys.readouterr().out
    log = (tmp_path / "run" / "train.log").read_text()
    assert "the run stops at iteration 60" in log
    assert "iteration 50/60 |" in log and "env-steps/s" in log and "to go" in log
    for text in ("Finished at iteration 60", "Modes (group 0 is exploration):", "Checkpoint:"):
        assert text in log and text in out
    assert "Success at iteration 60 (4 episodes each): z = 0 (the policy picks):" in out


def test_progress_texts() -> None:
    table = {"success_z0": 0.5, "success_mode_2": 0.25, "success_mode_1": 1.0, "episode_length": 7}
    assert eval_summary(table) == "z0 0.50 | m1 1.00 m2 0.25"
    assert [duration(s) for s in (30, 600, 7200, 9 * 86400)] == [
        "30 s",
        "10 min",
        "2.0 h",
        "9.0 days",
    ]
