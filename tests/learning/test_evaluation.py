"""Tests of the evaluation tables' rates."""

import torch

from isaacgymenvs_ddiffpg.learning.evaluation import share, success_table


def test_36_of_40_successes_count_as_90_percent() -> None:
    success = torch.tensor([1] * 36 + [0] * 4)
    assert float((success > 0).float().mean()) < 0.9  # the float32 mean falls short of 0.9
    assert share(success > 0) == 0.9
    table = success_table(success, torch.zeros(40, dtype=torch.long), num_goals=1)
    assert table["success_rate"] == table["goal_1"] == table["mode_0"] == 0.9
    assert share(torch.zeros(0, dtype=torch.bool)) == 0.0
