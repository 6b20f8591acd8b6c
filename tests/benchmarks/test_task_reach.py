"""benchmarks/task_reach.py: random episodes and the routes of those that reach a goal."""

from __future__ import annotations

from isaacgymenvs_ddiffpg.tasks import make_task
from tests.benchmarks.test_compare_and_update_cost import load


def test_random_reach_reads_the_route_of_every_successful_episode() -> None:
    random_reach = load("task_reach").random_reach
    task = make_task("PointMazeV1", num_envs=32, seed=0)
    out = random_reach(task, "PointMazeV1", seed=0, episodes=3)
    assert out["episodes"] == 96
    routes = out["success_routes"]
    assert sum(routes.values()) == round(out["success"] * 96) > 0
    assert set(routes) <= {"above", "below"}
