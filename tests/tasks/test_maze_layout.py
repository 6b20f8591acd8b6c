"""Layout parsing: goal coordinates (docs/tasks.md) and the errors for malformed layouts."""

import pytest

from isaacgymenvs_ddiffpg.tasks import load_task_config
from isaacgymenvs_ddiffpg.tasks.maze_layout import parse_layout
from isaacgymenvs_ddiffpg.utils.errors import ConfigError

# Goal centres and rewards, in goal-id order, as docs/tasks.md lists them.
EXPECTED_GOALS = {
    "V1": {(-8.0, 0.0): 10.0},
    "V2": {(-8.0, 8.0): 20.0, (8.0, 0.0): 10.0},
    "V3": {(-12.0, 12.0): 10.0, (12.0, -12.0): 10.0},
    "V4": {(-16.0, 4.0): 10.0, (-16.0, -4.0): 10.0},
}


@pytest.mark.parametrize("robot", ["AntMaze", "PointMaze"])
@pytest.mark.parametrize("version", sorted(EXPECTED_GOALS))
def test_goals_follow_from_layouts(robot: str, version: str) -> None:
    env = load_task_config(f"{robot}{version}").env
    maze = parse_layout(env.layout, env.maze_size_scaling)
    expected = EXPECTED_GOALS[version]
    assert maze.goals == tuple(expected)
    rewards = list(env.goal_rewards) * (len(expected) if len(env.goal_rewards) == 1 else 1)
    assert dict(zip(maze.goals, rewards, strict=True)) == expected
    assert maze.cell_center(*maze.start) == (0.0, 0.0)


def test_cell_formula_row_grows_with_y() -> None:
    maze = parse_layout("111/1G1/1R1/111")
    assert maze.start == (2, 1)
    assert maze.goals == ((0.0, -4.0),)  # the row above R in the string is -y
    assert maze.cell_of(0.0, -4.0) == (1, 1)


@pytest.mark.parametrize(
    ("name", "walls"),
    [
        ("AntMazeV3_1", [(-8, 4), (-4, 12)]),
        ("AntMazeV3_2", [(8, -8), (-12, 4)]),
        ("AntMazeV3_3", [(8, 0), (-4, 4)]),
    ],
)
def test_replanning_blocks(name: str, walls: list[tuple[int, int]]) -> None:
    env = load_task_config(name).env
    base = parse_layout(env.layout, env.maze_size_scaling)
    blocked = parse_layout(env.layout, env.maze_size_scaling, env.extra_walls)
    added = set(blocked.walls) - set(base.walls)
    assert added == {(float(x), float(y)) for x, y in walls}
    assert blocked.goals == base.goals


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("111/1R0G/111", "different lengths"),
        ("111/1RX/1G1", "unknown character"),
        ("111/1G1/111", "0 start cells"),
        ("1111/1RR1/1G01/1111", "2 start cells"),
        ("111/1R1/101/111", "no goal"),
        ("11111/11R11/11111/1G001", "no free neighbour"),
        ("", "empty"),
    ],
)
def test_malformed_layouts_name_the_problem(layout: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_layout(layout)
    assert "task.env.layout" in str(err.value)


def test_extra_wall_must_be_on_a_free_cell() -> None:
    with pytest.raises(ConfigError, match="extra wall"):
        parse_layout("11111/10001/1G1R1/10001/11111", 4.0, [[-4.0, 0.0]])


@pytest.mark.parametrize(
    ("layout", "extra_walls", "goal"),
    [
        ("1111111/1G1R001/1111111", [], "row 1, col 1 (x = -8, y = 0)"),
        ("1111111/1G00R01/1111111", [[-4.0, 0.0]], "row 1, col 1 (x = -12, y = 0)"),
        ("111111/1G0R01/111111/1G1111/111111", [], "row 3, col 1 (x = -8, y = 8)"),
    ],
)
def test_goal_no_path_reaches_is_refused(layout: str, extra_walls: list, goal: str) -> None:
    with pytest.raises(ConfigError, match="cannot be reached") as err:
        parse_layout(layout, 4.0, extra_walls)
    assert goal in str(err.value) and "task.env.layout" in str(err.value)


def test_every_packaged_goal_is_reachable_and_routes_avoid_walls() -> None:
    for name in ("AntMazeV1", "AntMazeV2", "AntMazeV3", "AntMazeV4", "AntMazeV3_1"):
        env = load_task_config(name).env
        maze = parse_layout(env.layout, env.maze_size_scaling, env.get("extra_walls", []))
        for x, y in maze.goals:
            path = maze.cell_path(maze.start, maze.cell_of(x, y))
            assert path[0] == maze.start and path[-1] == maze.cell_of(x, y)
            assert all(maze.is_free(*cell) for cell in path)
            moves = zip(path[:-1], path[1:], strict=True)
            steps = [abs(a[0] - b[0]) + abs(a[1] - b[1]) for a, b in moves]
            assert steps == [1] * (len(path) - 1)  # edge-adjacent moves only
