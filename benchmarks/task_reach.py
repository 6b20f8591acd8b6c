"""How far random and scripted robots get in one episode of each task; prints JSON.

    python benchmarks/task_reach.py                          # every task, 256 envs
    python benchmarks/task_reach.py --tasks AntMazeV1 --num-envs 64
    python benchmarks/task_reach.py --tasks FrankaReach --episodes 16   # routes of successes

Random: the actions DDiffPG's warm-up plays with `noise_correlation` 0.9, i.e. AR(1) noise
n_t = 0.9 n_{t-1} + sqrt(1 - 0.81) eps_t clamped to [-1, 1], for `--episodes` whole episodes
per env.
Reported: the share of episodes that reach a goal (per goal), the routes of those that do (read
off their paths as `benchmarks/learn.py` reads a learned mode's: a quadrant of FrankaReach's
cross or around an arm's end, above or below the V1 wall, ...), and how far the robot got from
its start (the largest distance of the maze robot's xy, or of the end effector, over the
episode): median, 90th percentile and maximum; for the ant also the highest torso.

Scripted (mazes): the robot follows a shortest route of cell centres to each goal (and, on
AntMazeV1 and PointMazeV1, one route above and one below the wall): the ant with the trot gait
of `isaacgymenvs_ddiffpg.tasks.ant_gait`, the point mass at full speed towards the next cell
centre. Reported per route: the share of envs that reach its goal and the median steps taken.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from isaacgymenvs_ddiffpg.learning.evaluation import share
from isaacgymenvs_ddiffpg.tasks import make_task, task_names
from isaacgymenvs_ddiffpg.tasks.ant_gait import RouteFollower, maze_route
from isaacgymenvs_ddiffpg.tasks.base.vec_task import VecTask

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learn.py, beside this file

from learn import route_of  # noqa: E402


def random_reach(task: VecTask, name: str, seed: int, episodes: int = 1) -> dict[str, object]:
    """`episodes` episodes per env of clamped AR(1) actions (rho 0.9); success, routes, reach."""
    gen = torch.Generator().manual_seed(seed)
    played = []
    for k in range(episodes):
        if k:  # envs that reached a goal have run on into a new episode
            task.reset()
        played.append(random_episode(task, gen))
    goal = torch.cat([p["goal"] for p in played])
    reach = torch.cat([p["reach"] for p in played])
    paths = [path for p in played for path in p["paths"]]
    won = Counter(
        route_of(task, name, path, int(g))
        for path, g in zip(paths, goal.tolist(), strict=True)
        if g > 0
    )
    out: dict[str, object] = {
        "episodes": len(goal),
        "success": share(goal > 0),
        "success_per_goal": [share(goal == k) for k in range(1, task.num_goals + 1)],
        "success_routes": dict(won.most_common()),
        "reach_median_m": float(reach.median()),
        "reach_p90_m": float(reach.quantile(0.9)),
        "reach_max_m": float(reach.max()),
    }
    if task.act_dim == 8:
        out["torso_height_max_m"] = float(torch.cat([p["highest"] for p in played]).max())
    return out


def random_episode(task: VecTask, gen: torch.Generator) -> dict:
    """One episode per env from the current (fresh) state: goal reached (0 = none), reach,
    highest torso and each env's mode-feature path up to its end."""
    n = task.num_envs
    noise = torch.zeros(n, task.act_dim)
    start = task.mode_features(task.obs_buf).clone()
    trace = [start]
    reach = torch.zeros(n)
    highest = task.obs_buf[:, 2].clone()
    goal = torch.zeros(n, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    length = torch.full((n,), task.max_episode_length)
    for step in range(1, task.max_episode_length + 1):
        noise = 0.9 * noise + (1 - 0.81) ** 0.5 * torch.randn(n, task.act_dim, generator=gen)
        _, _, terminated, truncated, extras = task.step(noise.clamp(-1.0, 1.0))
        live = ~done
        features = task.mode_features(extras["final_obs"])
        trace.append(features)
        distance = torch.linalg.vector_norm(features - start, dim=1)
        reach = torch.where(live, torch.maximum(reach, distance), reach)
        highest = torch.where(live, torch.maximum(highest, extras["final_obs"][:, 2]), highest)
        goal = torch.where(live & terminated, extras["success"], goal)
        ended = live & (terminated | truncated)
        length = torch.where(ended, step, length)
        done |= ended
        if bool(done.all()):
            break
    path = torch.stack(trace, dim=1).numpy()
    paths = [path[k, : int(length[k]) + 1] for k in range(n)]
    return {"goal": goal, "reach": reach, "highest": highest, "paths": paths}


def maze_routes(task: VecTask, name: str) -> dict[str, list[tuple[float, float]]]:
    """Named routes: a shortest one to each goal, and above/below the wall on the V1 layout."""
    maze = task.maze  # type: ignore[attr-defined]
    routes = {f"goal {k}": maze_route(maze, goal) for k, goal in enumerate(maze.goals, start=1)}
    if name.endswith("V1"):
        scale = maze.scaling
        routes = {
            "above the wall": maze_route(maze, maze.goals[0], via=[(0.0, scale)]),
            "below the wall": maze_route(maze, maze.goals[0], via=[(0.0, -scale)]),
        }
    return routes


def scripted_reach(task: VecTask, name: str) -> dict[str, object]:
    """Each route followed by an equal share of the envs for one episode."""
    routes = maze_routes(task, name)
    names = list(routes)
    n = task.num_envs
    assigned = [names[k % len(names)] for k in range(n)]
    follower = RouteFollower([routes[r] for r in assigned])
    steps = torch.full((n,), -1)
    goal = torch.zeros(n, dtype=torch.long)
    obs = task.obs_buf.clone()
    for step in range(1, task.max_episode_length + 1):
        if task.act_dim == 8:
            actions = follower.action(obs)
        else:  # the point mass: the same waypoints, straight at full speed
            actions = follower.direction(obs[:, :2])
        obs, _, terminated, _, extras = task.step(actions)
        first = terminated & (steps < 0)
        steps = torch.where(first, step, steps)
        goal = torch.where(first, extras["success"], goal)
    out: dict[str, object] = {}
    for route in names:
        mine = torch.tensor([r == route for r in assigned])
        reached = mine & (steps > 0)
        taken = steps[reached].tolist()
        out[route] = {
            "success": float(reached.sum() / mine.sum()),
            "goals": sorted(set(goal[reached].tolist())),
            "median_steps": statistics.median(taken) if taken else None,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=task_names())
    parser.add_argument("--num-envs", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--episodes", type=int, default=1, help="random episodes per env")
    args = parser.parse_args()
    results: dict[str, object] = {
        "machine": platform.processor() or platform.machine(),
        "num_envs": args.num_envs,
        "tasks": {},
    }
    for name in args.tasks:
        start = time.perf_counter()
        task = make_task(name, num_envs=args.num_envs, seed=args.seed)
        entry: dict[str, object] = {
            "episode_steps": task.max_episode_length,
            "step_s": task.dt,
            "episode_s": task.dt * task.max_episode_length,
            "random": random_reach(task, name, args.seed, args.episodes),
        }
        if "Maze" in name:
            task = make_task(name, num_envs=min(args.num_envs, 32), seed=args.seed)
            entry["scripted"] = scripted_reach(task, name)
        entry["wall_clock_s"] = time.perf_counter() - start
        results["tasks"][name] = entry  # type: ignore[index]
        print(json.dumps({name: entry}), flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
