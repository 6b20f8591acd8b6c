"""Train one configuration, then play z = 0 and every learned mode; prints one JSON line.

    python benchmarks/learn.py PointMazeV1 DDiffPGSmall [hydra overrides ...]
    python benchmarks/learn.py AntMazeV1 DDiffPGSmall num_envs=256 max_iterations=2000
    python benchmarks/learn.py --checkpoint runs/bench/<run>/nn/last.pth   # evaluate only
    python benchmarks/learn.py PointMazeV1 DDiffPGSmall num_envs=64 --seeds 0 1 2 3 4 --parallel 2

Training runs `train.py` exactly as a user would (a subprocess, its own run folder under
runs/bench/). The evaluation task is built from the run's own config.yaml (the trained layout
and settings, overrides included), with `--eval-envs` envs: one episode per env under z = 0 and
under each mode's embedding, no added noise. Each successful episode's route is read off its
path (`route_of`): above or below the wall on V1 mazes, where the path passes the cross on
FrankaReach (a quadrant between its arms, or around an arm's end: `cross_route`; each mode's
successes are also counted by the quadrant of the plane the arms' lines divide:
`cross_quadrant`), the side of the wall on FrankaPush, pulled or pushed on FrankaCabinet, the
goal reached elsewhere; a mode "plays its route" when most of its successes share one. On the
mazes each failed episode's closest approach to a goal is listed too (`failed_closest_to_goal`,
m): a near miss of the goal's radius, or a way lost further back; on AntMaze also those of the
failures whose ant turned over onto its back (`failed_turned_over_closest`). The run's learning
curves are in `modes/<task>_curves.png` (their path is printed).

With `--seeds` every seed is trained (`--parallel` at once, each on one thread) and evaluated,
one JSON line each, then a summary line: per seed the modes that play their own route (success
>= `--success` under their embedding, >= 90% of their successes on one route) and the distinct
routes they play, and the number of seeds where every mode does and where at least two
distinct routes are played.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from isaacgymenvs_ddiffpg.learning.agents import config_from_dict, make_agent
from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.evaluation import run_episodes, share
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.tasks.ant_maze import AntMaze
from isaacgymenvs_ddiffpg.utils.errors import CheckpointError, ConfigError

REPO = Path(__file__).resolve().parent.parent


def route_of(task: Any, name: str, path: np.ndarray, goal: int) -> str:
    """The route of one successful episode from its (T, F) mode-feature path."""
    cfg = task.cfg
    if "Maze" in name and name.endswith("V1"):  # around the wall cell at (-4, 0)
        scale = task.maze.scaling
        beside = (path[:, 0] < -scale / 2) & (path[:, 0] > -1.5 * scale)
        return "above" if path[beside, 1].mean() > 0 else "below"
    if name == "FrankaReach":
        return cross_route(path, cfg.cross_center, cfg.horizontal_half[1], cfg.vertical_half[2])
    if name == "FrankaPush":
        ox = cfg.obstacle_pos[0]
        near = np.abs(path[:, 0] - ox) < 0.1
        side = path[near, 1].mean() if near.any() else path[:, 1].mean()
        return "left" if side > 0 else "right"
    if name == "FrankaCabinet":
        return "pushed from behind" if (path[:, 0] > cfg.door_front).any() else "pulled"
    return f"goal {goal}"


def cross_point(path: np.ndarray, center: list[float]) -> tuple[float, float]:
    """(y, z) of the point where a path first reaches the cross's plane, from the centre."""
    cx, cy, cz = center
    beyond = np.flatnonzero(path[:, 0] >= cx)
    k = int(beyond[0]) if len(beyond) else len(path) - 1
    if k > 0 and path[k, 0] != path[k - 1, 0]:  # the point on the plane, between two steps
        w = (cx - path[k - 1, 0]) / (path[k, 0] - path[k - 1, 0])
        y, z = (1 - w) * path[k - 1, 1:3] + w * path[k, 1:3]
    else:
        y, z = path[k, 1:3]
    return float(y - cy), float(z - cz)


def cross_quadrant(path: np.ndarray, center: list[float]) -> str:
    """Which quadrant of the cross's plane a path passes, the arms' lines extended to divide it:
    "upper left", ... (left is +y, as seen from the robot). A pass around an arm's end falls in
    the quadrant on its side of the other arm's line; `cross_route` tells the two apart."""
    y, z = cross_point(path, center)
    return f"{'upper' if z > 0 else 'lower'} {'left' if y > 0 else 'right'}"


def cross_route(
    path: np.ndarray, center: list[float], half_width: float, half_height: float
) -> str:
    """Where a FrankaReach path passes the cross's plane (x = center[0]), seen from the robot.

    Inside the square the two slabs span: the quadrant between the arms ("upper left", ...).
    Outside it the path goes around an arm's end, whatever side of the other arm's line it is
    on: "over the top", "under the bottom", "past the left end", "past the right end", or
    "outside upper left" (and the other corners) when beyond both arms' ends.
    """
    y, z = cross_point(path, center)
    vertical, side = cross_quadrant(path, center).split()
    out_y, out_z = abs(y) > half_width, abs(z) > half_height
    if out_y and out_z:
        return f"outside {vertical} {side}"
    if out_z:
        return "over the top" if z > 0 else "under the bottom"
    if out_y:
        return f"past the {side} end"
    return f"{vertical} {side}"


def closest_to_goal(
    paths: np.ndarray,
    lengths: np.ndarray,
    success: np.ndarray,
    goals: np.ndarray,
    only: np.ndarray | None = None,
) -> list[float]:
    """Each failed episode's closest approach (m) to any goal, from its (T, 2+) xy path: a
    failure that came near a goal missed its radius, one that stayed far missed the route.

    Args:
        paths: (N, T, F) mode features (or observations) per step, xy first.
        lengths: (N,) episode lengths (steps; the path has length + 1 rows).
        success: (N,) goal id reached (0 = none).
        goals: (G, 2) goal centres.
        only: (N,) bool, the episodes to consider (default: all).
    """
    closest = []
    only = np.ones(len(paths), dtype=bool) if only is None else only
    for path, length, won, take in zip(paths, lengths, success, only, strict=True):
        if won == 0 and take:
            xy = path[: int(length) + 1, :2]
            gaps = np.linalg.norm(xy[:, None, :] - goals[None, :, :], axis=-1)
            closest.append(round(float(gaps.min()), 2))
    return sorted(closest)


def turned_over(paths: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each episode's torso turned upside down (its up axis below the horizon) at some
    step: an ant on its back cannot walk on.

    Args:
        paths: (N, T, 7+) observations per step with the torso quaternion (w, x, y, z) in
            columns 3 to 6, as AntMaze observes it.
        lengths: (N,) episode lengths (steps; the path has length + 1 rows).

    Returns:
        (N,) bool.
    """
    x, y = paths[:, :, 4], paths[:, :, 5]
    down = 1.0 - 2.0 * (x * x + y * y) < 0.0  # (N, T) world z of the body's z axis below 0
    within = np.arange(paths.shape[1])[None, :] <= lengths[:, None]
    return (down & within).any(axis=1)


@dataclass
class Run:
    """A checkpoint loaded on its run's own task (`config.yaml` beside `nn/`)."""

    folder: Path
    name: str
    task: Any
    env: RlGamesVecEnv
    state: dict[str, Any]
    agent: Any

    @property
    def feature_dim(self) -> int:
        """Mode-feature size of the task's observations (the paths' columns)."""
        return int(self.env.get_env_info()["mode_feature_dim"])


def load_run(
    checkpoint: Path, num_envs: int | None = None, seed: int = 12345, with_replay: bool = False
) -> Run:
    """Builds the checkpoint's task from its run's config (the trained layout and settings) with
    `num_envs` envs (None: the run's own, which a stored replay needs) and restores the agent.

    Raises:
        CheckpointError: the checkpoint is missing or unreadable, or its run's config.yaml is not
            two folders up (the layout a run writes: <run>/nn/<file>.pth, <run>/config.yaml).
    """
    state = load_checkpoint(checkpoint)
    folder = checkpoint.parent.parent
    if not (folder / "config.yaml").is_file():
        raise CheckpointError(
            f"No run config for checkpoint {str(checkpoint)!r}: {str(folder / 'config.yaml')!r} "
            f"does not exist. Evaluation builds the trained task from the run's own config, so "
            f"pass the checkpoint inside its run folder (runs/<experiment>/nn/<file>.pth), or "
            f"copy config.yaml from that run folder two levels above the copied checkpoint."
        )
    cfg = OmegaConf.load(folder / "config.yaml")
    name = str(cfg.task.name)
    num_envs = int(cfg.task.env.num_envs) if num_envs is None else num_envs
    task = make_task(name, env=cfg.task.env, num_envs=num_envs, seed=seed)
    env = RlGamesVecEnv(task)
    spec = EnvSpec.from_env_info(env.get_env_info(), num_envs)
    agent = make_agent(config_from_dict(state["config"]), spec, "cpu", seed=0)
    agent.load_state_dict(state["algo"], with_replay=with_replay)
    return Run(folder, name, task, env, state, agent)


def evaluate(checkpoint: Path, eval_envs: int, seed: int = 12345) -> dict[str, Any]:
    """Play z = 0 and each mode on the checkpoint's own task; success and routes per mode."""
    run = load_run(checkpoint, eval_envs, seed)
    task, agent = run.task, run.agent
    center = list(getattr(task.cfg, "cross_center", [0.0, 0.0, 0.0]))
    ant = isinstance(task, AntMaze)
    columns = max(run.feature_dim, 7) if ant else run.feature_dim  # xy .. the torso quaternion
    per_mode: dict[str, Any] = {}
    with torch.no_grad():
        for mode in (0, *agent.mode_ids):
            z = agent.mode_embedding(mode).expand(eval_envs, -1)
            played = run_episodes(agent, run.env, z, task.max_episode_length, columns)
            success, lengths = played["success"], played["length"]
            routes = Counter(
                route_of(task, run.name, played["paths"][k, : int(lengths[k]) + 1].numpy(), int(g))
                for k, g in enumerate(success.tolist())
                if g > 0
            )
            top = routes.most_common(1)[0] if routes else ("-", 0)
            per_mode[str(mode)] = {
                "success": share(success > 0),
                "routes": dict(routes),
                "main_route": top[0],
                "main_route_share": top[1] / max(sum(routes.values()), 1),
                "success_per_goal": [share(success == g) for g in range(1, task.num_goals + 1)],
                "episode_length": float(lengths.float().mean()),
            }
            if hasattr(task, "maze"):  # near misses and lost ways
                paths, ends = played["paths"].numpy(), lengths.numpy()
                episodes = (paths, ends, success.numpy())
                goals = np.asarray(task.maze.goals, dtype=np.float64)
                per_mode[str(mode)]["failed_closest_to_goal"] = closest_to_goal(*episodes, goals)
                if ant:  # those of the failures whose ant turned over
                    per_mode[str(mode)]["failed_turned_over_closest"] = closest_to_goal(
                        *episodes, goals, only=turned_over(paths, ends)
                    )
            if run.name == "FrankaReach":  # the plane's quadrant, around the ends included
                quadrants = Counter(
                    cross_quadrant(played["paths"][k, : int(lengths[k]) + 1].numpy(), center)
                    for k, g in enumerate(success.tolist())
                    if g > 0
                )
                first = quadrants.most_common(1)[0] if quadrants else ("-", 0)
                per_mode[str(mode)] |= {
                    "quadrants": dict(quadrants),
                    "main_quadrant": first[0],
                    "main_quadrant_share": first[1] / max(sum(quadrants.values()), 1),
                }
    return {
        "task": run.name,
        "env_steps": int(run.state["env_steps"]),
        "iteration": int(run.state["iteration"]),
        "modes": [int(m) for m in agent.mode_ids],
        "eval_episodes_per_mode": eval_envs,
        "per_mode": per_mode,
        "curves": str(run.folder / "modes" / f"{run.name}_curves.png"),
        "run": str(run.folder),
    }


def plays_route(mode: dict[str, Any], success: float) -> bool:
    """A mode's evaluation meets `success` and >= 90% of its successes share one route."""
    return mode["success"] >= success and mode["main_route_share"] >= 0.9


def summary(results: dict[int, dict[str, Any]], success: float) -> dict[str, Any]:
    """Per seed: modes found, those that play their own route, the distinct routes they play."""
    seeds = {}
    for seed, result in results.items():
        modes = {k: v for k, v in result["per_mode"].items() if k != "0"}
        good = {k: v["main_route"] for k, v in modes.items() if plays_route(v, success)}
        seeds[str(seed)] = {
            "modes": len(modes),
            "modes_playing_their_route": len(good),
            "routes": sorted(set(good.values())),
            "success_z0": result["per_mode"]["0"]["success"],
        }
    return {
        "success_threshold": success,
        "seeds": seeds,
        "seeds_all_modes_play_their_route": sum(
            1 for v in seeds.values() if v["modes"] and v["modes_playing_their_route"] == v["modes"]
        ),
        "seeds_two_routes_played": sum(1 for v in seeds.values() if len(v["routes"]) >= 2),
        "num_seeds": len(seeds),
    }


def train(
    task: str, algo: str, overrides: list[str], seed: int | None
) -> tuple[Path, subprocess.Popen[str]]:
    """Starts `train.py` for one run; returns its run folder and the process."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"bench/{task}_{algo}_{stamp}" + ("" if seed is None else f"_seed{seed}")
    command = [sys.executable, str(REPO / "train.py"), f"task={task}", f"train={algo}"]
    command += [f"experiment={name}", *overrides]
    if seed is not None:
        command += [f"seed={seed}", "num_threads=1", "+train.params.torch_threads=1"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "text": True}
    return Path("runs") / name, subprocess.Popen(command, **quiet)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("task", nargs="?")
    parser.add_argument("algo", nargs="?")
    parser.add_argument("overrides", nargs="*")
    parser.add_argument("--eval-envs", type=int, default=40)
    parser.add_argument("--checkpoint", type=Path, default=None, help="evaluate only")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="train each seed")
    parser.add_argument("--parallel", type=int, default=1, help="seeds trained at once")
    parser.add_argument("--success", type=float, default=0.9, help="a mode's success target")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.checkpoint is not None:
        try:
            print(json.dumps(evaluate(args.checkpoint, args.eval_envs)))
        except (CheckpointError, ConfigError) as err:
            sys.exit(f"error: {err}")
        return
    if not (args.task and args.algo):
        parser.error("give a task and a train config, or --checkpoint")
    results: dict[int, dict[str, Any]] = {}
    pending = list(args.seeds) if args.seeds is not None else [None]
    while pending:
        batch, pending = pending[: args.parallel], pending[args.parallel :]
        start = time.perf_counter()
        runs = [(seed, *train(args.task, args.algo, args.overrides, seed)) for seed in batch]
        for seed, run, process in runs:
            _, stderr = process.communicate()
            wall_clock = time.perf_counter() - start
            if process.returncode != 0:
                sys.exit(f"training failed (seed {seed}):\n{stderr[-3000:]}")
            result = evaluate(run / "nn" / "last.pth", args.eval_envs)
            result |= {"algo": args.algo, "overrides": args.overrides, "seed": seed}
            result["wall_clock_s"] = wall_clock
            print(json.dumps(result), flush=True)
            if seed is not None:
                results[seed] = result
    if results:
        print(json.dumps({"summary": summary(results, args.success)}))


if __name__ == "__main__":
    main()
