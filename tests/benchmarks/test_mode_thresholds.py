"""benchmarks/mode_thresholds.py: each Franka task's configured clustering (region, resampling,
threshold) recovers the modes its scripted controllers play, under action noise; and
benchmarks/learn.py's reading of where a FrankaReach path passes the cross, and of how close a
failed maze episode came to a goal."""

import numpy as np
import pytest

from tests.benchmarks.test_compare_and_update_cost import load

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["FrankaReach", "FrankaCabinet"])
def test_configured_clustering_recovers_the_scripted_modes(name: str) -> None:
    result = load("mode_thresholds").measure(name, repeats=6, noise_std=0.2, seed=0)
    assert min(result["success_per_mode"]) >= 0.5
    assert result["rand_index_at_configured"] == pytest.approx(1.0)
    spread = max(mode["max"] for mode in result["within"].values())
    assert spread < result["configured_threshold"] < result["between_min_average"]


def test_cross_route_names_quadrants_between_the_arms_and_passes_around_their_ends() -> None:
    cross_route = load("learn").cross_route

    def route(y: float, z: float) -> str:  # straight through the plane x = 0.45 at (y, z)
        path = np.array([[0.35, y, 0.5 + z], [0.55, y, 0.5 + z], [0.6, 0.0, 0.48]])
        return cross_route(path, [0.45, 0.0, 0.5], 0.2, 0.2)

    assert [route(0.1, 0.1), route(-0.1, 0.1), route(0.1, -0.1), route(-0.1, -0.1)] == [
        "upper left", "upper right", "lower left", "lower right",
    ]  # fmt: skip
    assert route(0.05, 0.3) == route(-0.05, 0.3) == "over the top"
    assert route(0.0, -0.3) == "under the bottom"
    assert route(0.3, 0.0) == "past the left end" and route(-0.3, 0.1) == "past the right end"
    assert route(0.3, 0.3) == "outside upper left"


def test_cross_quadrant_divides_the_plane_by_the_arms_lines() -> None:
    cross_quadrant = load("learn").cross_quadrant

    def quadrant(y: float, z: float) -> str:
        path = np.array([[0.35, y, 0.5 + z], [0.55, y, 0.5 + z], [0.6, 0.0, 0.48]])
        return cross_quadrant(path, [0.45, 0.0, 0.5])

    assert quadrant(0.1, 0.1) == quadrant(0.3, 0.05) == quadrant(0.05, 0.3) == "upper left"
    assert quadrant(-0.3, 0.05) == quadrant(-0.1, 0.1) == "upper right"
    assert quadrant(-0.3, -0.05) == quadrant(-0.05, -0.3) == "lower right"
    assert quadrant(0.3, -0.01) == "lower left"


def test_closest_to_goal_lists_each_failures_nearest_approach_within_its_length() -> None:
    closest_to_goal = load("learn").closest_to_goal
    goals = np.array([[-8.0, 0.0], [8.0, 0.0]])
    paths = np.zeros((3, 4, 3))
    paths[0, :, 0] = [0.0, -4.0, -7.0, -7.0]  # failed: 1 m short of goal 1 at its closest
    paths[1, :, 0] = [0.0, -4.0, -8.0, -8.0]  # reached goal 1
    paths[2, :, 0] = [0.0, 3.0, 5.0, 7.5]  # failed after 2 steps: 7.5 is past its end
    lengths = np.array([3, 2, 2])
    success = np.array([0, 1, 0])
    assert closest_to_goal(paths, lengths, success, goals) == [1.0, 3.0]


def test_turned_over_marks_episodes_whose_torso_went_upside_down_within_their_length() -> None:
    learn = load("learn")
    paths = np.zeros((3, 4, 7))
    paths[:, :, 3] = 1.0  # upright: the identity quaternion
    paths[0, 2, 3:7] = [0.0, 1.0, 0.0, 0.0]  # on its back at step 2
    tilted = np.sin(np.pi / 6)  # 60 degrees about x: still above the horizon
    paths[1, 1, 3:7] = [np.cos(np.pi / 6), tilted, 0.0, 0.0]
    paths[2, 1, 3:7] = [np.cos(np.pi / 6), tilted, 0.0, 0.0]
    paths[2, 3, 3:7] = [0.0, 0.0, 1.0, 0.0]  # on its back only past the end of its episode
    lengths = np.array([3, 2, 2])
    assert learn.turned_over(paths, lengths).tolist() == [True, False, False]
    lengths[2] = 3
    assert learn.turned_over(paths, lengths).tolist() == [True, False, True]
    # the closest approaches of the failures that turned over: episode 1 reached the goal
    goals = np.array([[-8.0, 0.0]])
    paths[:, :, 0] = [[0.0, -2.0, -4.0, -4.0], [0.0, -8.0, -8.0, -8.0], [0.0, -1.0, -5.0, -6.0]]
    success = np.array([0, 1, 0])
    only = learn.turned_over(paths, lengths)
    assert learn.closest_to_goal(paths, lengths, success, goals, only=only) == [2.0, 4.0]
    only[2] = False
    assert learn.closest_to_goal(paths, lengths, success, goals, only=only) == [4.0]
