"""How far apart the modes' paths are, for choosing each task's DTW clustering threshold; JSON.

    python benchmarks/mode_thresholds.py                       # every task with scripted modes
    python benchmarks/mode_thresholds.py --tasks FrankaReach --repeats 16 --noise 0.2

Every mode of a task is played by a scripted controller in `--repeats` envs, with AR(1) noise
(correlation 0.9, std `--noise`) added to its actions so that the paths of one mode spread as a
learner's would. The successful episodes' mode-feature paths (maze xy, end-effector xyz) are
compared by the DTW that mode discovery uses, after the same clipping and resampling (the
task's `mode_region_low`/`high` and `mode_resample_len`). Printed per task: each mode's success
and its within-mode distances (average-linkage height of the mode alone, 90th percentile and
maximum pairwise), the smallest average distance between two modes, a threshold between the
two (their geometric mean) and whether clustering at that threshold, and at the task's
configured one, recovers the modes.

Scripted modes: the ant walks shortest routes with the trot gait of
`isaacgymenvs_ddiffpg/tasks/ant_gait.py` (on V1 above and below the wall; elsewhere to each
goal), the point mass follows the same routes at full speed, the Panda runs the scripts of
`tests/tasks/franka_modes.py` (run from a checkout).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import adjusted_rand_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.tasks.franka_modes

from isaacgymenvs_ddiffpg.learning.dtw import dtw_distance_matrix, mode_paths  # noqa: E402
from isaacgymenvs_ddiffpg.learning.modes import cluster_successes  # noqa: E402
from isaacgymenvs_ddiffpg.tasks import load_task_config, make_task, mode_region  # noqa: E402
from isaacgymenvs_ddiffpg.tasks.ant_gait import RouteFollower, maze_route  # noqa: E402
from isaacgymenvs_ddiffpg.tasks.base.vec_task import VecTask  # noqa: E402

TASKS = [
    "PointMazeV1", "PointMazeV2", "PointMazeV3", "PointMazeV4",
    "AntMazeV1", "AntMazeV2", "AntMazeV3", "AntMazeV4",
    "FrankaReach", "FrankaPush", "FrankaPegInsertion", "FrankaDrawerClose", "FrankaCabinet",
]  # fmt: skip


def maze_policy(task: VecTask, name: str, repeats: int):
    """(mode of each env, policy) for the scripted routes of a maze."""
    maze = task.maze  # type: ignore[attr-defined]
    if name.endswith("V1"):
        routes = [maze_route(maze, maze.goals[0], via=[(0.0, s * maze.scaling)]) for s in (1, -1)]
    else:
        routes = [maze_route(maze, goal) for goal in maze.goals]
    modes = [k % len(routes) for k in range(len(routes) * repeats)]
    follower = RouteFollower([routes[m] for m in modes])
    if task.act_dim == 8:
        return modes, lambda t: follower.action(t.obs_buf)
    return modes, lambda t: follower.direction(t.obs_buf[:, :2])


def franka_policy(task: VecTask, name: str, repeats: int):
    from tests.tasks.franka_modes import NUM_MODES, scripted_modes

    modes = [k % NUM_MODES[name] for k in range(NUM_MODES[name] * repeats)]
    return modes, scripted_modes(name, task, modes)  # type: ignore[arg-type]


def num_modes(name: str) -> int:
    """How many scripted modes the task has."""
    if "Maze" in name:
        return len(maze_policy(make_task(name, num_envs=1), name, 1)[0])
    from tests.tasks.franka_modes import NUM_MODES

    return NUM_MODES[name]


def episodes(name: str, repeats: int, noise_std: float, seed: int):
    """Successful paths (list of (T, F) arrays) and their modes, and each mode's success."""
    count = num_modes(name)
    task = make_task(name, num_envs=count * repeats, seed=seed)
    make = maze_policy if "Maze" in name else franka_policy
    modes, policy = make(task, name, repeats)
    n, gen = task.num_envs, torch.Generator().manual_seed(seed)
    noise = torch.zeros(n, task.act_dim)
    path = [task.obs_buf[:, : task.mode_feature_dim].clone()]
    end = torch.full((n,), -1)
    for step in range(task.max_episode_length):
        noise = 0.9 * noise + (1 - 0.81) ** 0.5 * torch.randn(n, task.act_dim, generator=gen)
        actions = (policy(task).float() + noise_std * noise).clamp(-1.0, 1.0)
        _, _, terminated, truncated, extras = task.step(actions)
        path.append(extras["final_obs"][:, : task.mode_feature_dim].clone())
        end = torch.where((end < 0) & terminated, step + 1, end)
        end = torch.where((end < 0) & truncated, 0, end)  # timed out: no success
        if bool((end >= 0).all()):
            break
    paths = torch.stack(path, dim=1)
    won = [k for k in range(n) if end[k] > 0]
    success = [
        float(np.mean([end[k] > 0 for k in range(n) if modes[k] == m])) for m in range(count)
    ]
    return [paths[k, : int(end[k]) + 1].numpy() for k in won], [modes[k] for k in won], success


def distances(
    paths: list[np.ndarray],
    resample: int | None,
    region: tuple[list[float], list[float]] | None = None,
) -> np.ndarray:
    lengths = torch.tensor([len(p) for p in paths])
    padded = torch.zeros(len(paths), int(lengths.max()), paths[0].shape[1])
    for k, p in enumerate(paths):
        padded[k, : len(p)] = torch.from_numpy(p)
    padded, lengths = mode_paths(padded, lengths, resample, region)
    return dtw_distance_matrix(padded, lengths).numpy()


def measure(name: str, repeats: int, noise_std: float, seed: int) -> dict[str, object]:
    cfg = load_task_config(name)
    paths, modes, success = episodes(name, repeats, noise_std, seed)
    if len(set(modes)) < 2:  # too few successes to compare modes (too much noise?)
        return {"task": name, "success_per_mode": success, "note": "fewer than 2 modes succeeded"}
    modes_arr = np.array(modes)
    dist = distances(paths, cfg.mode_resample_len, mode_region(cfg))
    within, between = {}, []
    present = sorted(set(modes))
    for m in present:
        own = dist[np.ix_(modes_arr == m, modes_arr == m)]
        pairs = own[np.triu_indices(len(own), 1)]
        within[m] = {
            "episodes": int((modes_arr == m).sum()),
            "average": float(pairs.mean()) if len(pairs) else 0.0,
            "p90": float(np.quantile(pairs, 0.9)) if len(pairs) else 0.0,
            "max": float(pairs.max()) if len(pairs) else 0.0,
        }
    for i, a in enumerate(present):
        for b in present[i + 1 :]:
            between.append(float(dist[np.ix_(modes_arr == a, modes_arr == b)].mean()))
    spread = max(w["average"] for w in within.values())
    closest = min(between) if between else float("inf")
    threshold = float(np.sqrt(spread * closest)) if between else None

    def recovered(t: float | None) -> float:
        return float(adjusted_rand_score(modes_arr, cluster_successes(dist, t)))

    return {
        "task": name,
        "resample_len": cfg.mode_resample_len,
        "region": mode_region(cfg),
        "success_per_mode": success,
        "within": within,
        "between_min_average": closest,
        "between_averages": between,
        "threshold_geometric_mean": threshold,
        "rand_index_at_that_threshold": recovered(threshold) if threshold else None,
        "configured_threshold": cfg.cluster_threshold,
        "rand_index_at_configured": recovered(cfg.cluster_threshold),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=TASKS)
    parser.add_argument("--repeats", type=int, default=12, help="envs per mode")
    parser.add_argument("--noise", type=float, default=0.2, help="std of the AR(1) action noise")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = []
    for name in args.tasks:
        result = measure(name, args.repeats, args.noise, args.seed)
        print(json.dumps(result), flush=True)
        results.append(result)
    print(json.dumps({"benchmark": "mode_thresholds", "noise": args.noise, "tasks": results}))


if __name__ == "__main__":
    main()
