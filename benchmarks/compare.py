"""Tasks x algorithms x seeds under one budget: success, modes among successes, cost; JSON + table.

    python benchmarks/compare.py                       # the docs/results.md comparison
    python benchmarks/compare.py --tasks PointMazeV1 --algos DDiffPGSmall TD3Small --seeds 0 \
        --env-steps 20000 --out runs/compare/quick

Each run trains with `train.py` exactly as a user would (a subprocess, in sequence, one torch and
one physics thread), for `--env-steps` env steps (as `max_iterations`: the task's own
`max_env_steps` still sets the schedule, e.g. when exploration stops) and optionally a
wall-clock budget (`--wall-clock-s`: training is stopped then and the newest checkpoint
evaluated). Evaluation is the same for every algorithm: a fresh task
with `--eval-envs` envs, one episode each, z = 0 (DDiffPG's sampler picks the mode; the
baselines ignore z), no added noise. The successful episodes' mode-feature paths are clustered
with the DTW + average linkage of mode discovery (`learning/mode_count.py`) at the task's
threshold measured for noise-free evaluation paths (`EVAL_THRESHOLDS`; else the task's
`cluster_threshold`; `--threshold` overrides both). Writes
`<out>/compare.json` (every run, and the aggregate per task and algorithm) and
`<out>/compare.md` (the table), and prints the JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from isaacgymenvs_ddiffpg.learning.agents import config_from_dict, make_agent
from isaacgymenvs_ddiffpg.learning.checkpoint import load_checkpoint
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.evaluation import run_episodes, share
from isaacgymenvs_ddiffpg.learning.mode_count import count_modes
from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import load_task_config, make_task, mode_region

REPO = Path(__file__).resolve().parent.parent
SECTIONS = {"DDiffPG": "ddiffpg", "TD3": "td3", "SAC": "sac", "DIPO": "dipo"}
# DTW thresholds for counting the modes of evaluation episodes. They are played without
# exploration noise, so their paths lie closer together than the noisy training trajectories
# that a task's `cluster_threshold` is set for. PointMaze: successful evaluation paths of one
# route lie about 5 apart, paths around the wall above and below about 32 (measured on
# PointMazeV1 checkpoints), under the training threshold of 35, which would merge the routes.
# Elsewhere the task's threshold, measured on scripted modes with action noise, holds.
EVAL_THRESHOLDS = {
    "PointMazeV1": 15.0,
    "PointMazeV2": 15.0,
    "PointMazeV3": 15.0,
    "PointMazeV4": 15.0,
}


def section_of(algo: str) -> str:
    """The typed settings section of a train config name (TD3Small -> td3)."""
    for prefix, section in SECTIONS.items():
        if algo.startswith(prefix):
            return section
    raise SystemExit(f"unknown algorithm {algo!r}: names start with one of {list(SECTIONS)}")


def train(
    task: str, algo: str, seed: int, args: argparse.Namespace, run: Path
) -> tuple[Path, float]:
    """Train one run; returns its newest checkpoint and the wall-clock seconds spent."""
    section = section_of(algo)
    command = [
        sys.executable,
        str(REPO / "train.py"),
        f"task={task}",
        f"train={algo}",
        f"seed={seed}",
        f"num_envs={args.num_envs}",
        "num_threads=1",
        "+train.params.torch_threads=1",
        f"max_iterations={-(-args.env_steps // args.num_envs)}",
        f"experiment={run.relative_to(Path('runs'))}",
        *args.overrides,
    ]
    command += [f"train.params.config.{section}.{item}" for item in args.algo_overrides]
    if args.wall_clock_s:
        command.append(f"train.params.config.{section}.save_interval=20")
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=args.wall_clock_s or None
        )
        if done.returncode != 0:
            raise SystemExit(f"training {task} {algo} {seed} failed:\n{done.stderr[-3000:]}")
    except subprocess.TimeoutExpired:
        pass  # the wall-clock budget is spent: evaluate the newest checkpoint
    wall_clock = time.perf_counter() - start
    last = run / "nn" / "last.pth"
    if last.is_file():
        return last, wall_clock
    saved = sorted((run / "nn").glob("*.pth"), key=lambda p: p.stat().st_mtime)
    if not saved:
        raise SystemExit(f"{run}: no checkpoint within the wall-clock budget")
    return saved[-1], wall_clock


@torch.no_grad()
def evaluate(task: str, checkpoint: Path, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Success, goals, episode length and modes among successes of z = 0 episodes; for an
    agent with learned modes also the success under each mode's own z_k and the modes counted
    over the z = 0 and all z_k episodes together."""
    env = RlGamesVecEnv(make_task(task, num_envs=args.eval_envs, seed=10_000 + seed))
    info = env.get_env_info()
    state = load_checkpoint(checkpoint)
    cfg = dataclasses.replace(config_from_dict(state["config"]), memory_size=1)
    agent = make_agent(cfg, EnvSpec.from_env_info(info, args.eval_envs), "cpu", seed=seed)
    agent.load_state_dict(state["algo"], with_replay=False)
    z = agent.mode_embedding(0).expand(args.eval_envs, -1)
    feature_dim = int(info["mode_feature_dim"])
    result = run_episodes(agent, env, z, int(info["max_episode_length"]), feature_dim)
    task_cfg = load_task_config(task)
    threshold = args.threshold or EVAL_THRESHOLDS.get(task) or task_cfg.cluster_threshold
    modes = count_modes(
        result["paths"],
        result["length"],
        result["success"],
        threshold,
        task_cfg.mode_resample_len,
        args.min_share,
        min_successes=args.min_successes,
        region=mode_region(task_cfg),
    )
    success = result["success"]
    under_z, episodes = {}, [result]
    for mode_id in agent.mode_ids:
        z_k = agent.mode_embedding(mode_id).expand(args.eval_envs, -1)
        episodes.append(run_episodes(agent, env, z_k, int(info["max_episode_length"]), feature_dim))
        under_z[str(mode_id)] = share(episodes[-1]["success"] > 0)
    horizon = max(part["paths"].shape[1] for part in episodes)
    paths = torch.cat(
        [  # episodes that all ended early are shorter: repeat their last row
            torch.cat([p, p[:, -1:].expand(-1, horizon - p.shape[1], -1)], dim=1)
            for p in (part["paths"] for part in episodes)
        ]
    )
    all_z = count_modes(
        paths,
        torch.cat([part["length"] for part in episodes]),
        torch.cat([part["success"] for part in episodes]),
        threshold,
        task_cfg.mode_resample_len,
        args.min_share,
        min_successes=args.min_successes,
        region=mode_region(task_cfg),
    )
    return {
        "success_rate": share(success > 0),
        "success_per_goal": [
            share(success == goal) for goal in range(1, int(info["num_goals"]) + 1)
        ],
        "num_modes": modes["num_modes"],
        "success_per_mode": modes["mode_shares"],
        "episode_length": float(result["length"].float().mean()),
        "env_steps": int(state["env_steps"]),
        "train_modes": len(agent.mode_ids),
        "success_under_mode_z": under_z,
        "num_modes_all_z": all_z["num_modes"],
        "threshold": threshold,
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and spread) over seeds of one task and algorithm."""

    def mean(key: str) -> float:
        return statistics.fmean(run[key] for run in runs)

    success = [run["success_rate"] for run in runs]
    counted = [run["num_modes"] for run in runs if run["num_modes"] is not None]
    num_modes = max((len(run["success_per_mode"]) for run in runs), default=0)
    per_mode = [
        statistics.fmean(
            run["success_per_mode"][k] if k < len(run["success_per_mode"]) else 0.0 for run in runs
        )
        for k in range(num_modes)
    ]
    return {
        "task": runs[0]["task"],
        "algo": runs[0]["algo"],
        "seeds": [run["seed"] for run in runs],
        "success_rate": mean("success_rate"),
        "success_rate_std": statistics.pstdev(success),
        "num_modes": statistics.fmean(counted) if counted else None,
        "num_modes_per_seed": [run["num_modes"] for run in runs],
        "success_per_mode": per_mode,
        "episode_length": mean("episode_length"),
        "train_modes_per_seed": [run.get("train_modes", 0) for run in runs],
        "num_modes_all_z_per_seed": [run.get("num_modes_all_z", run["num_modes"]) for run in runs],
        "success_under_mode_z_per_seed": [run.get("success_under_mode_z", {}) for run in runs],
        "env_steps": mean("env_steps"),
        "wall_clock_s": mean("wall_clock_s"),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results table, one row per task and algorithm."""
    lines = [
        "| task | algorithm | success | modes at z = 0 (per seed) | success per mode "
        "| modes learned / over all z_k (per seed) | episode length | env-steps | wall-clock s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        per_mode = " / ".join(f"{share:.2f}" for share in row["success_per_mode"]) or "-"
        seeds = ", ".join("n/a" if n is None else str(n) for n in row["num_modes_per_seed"])
        modes = "n/a" if row["num_modes"] is None else f"{row['num_modes']:.1f}"
        learned = ", ".join(
            f"{trained}/{'n/a' if found is None else found}"
            for trained, found in zip(
                row.get("train_modes_per_seed", []),
                row.get("num_modes_all_z_per_seed", []),
                strict=True,
            )
        )
        lines.append(
            f"| {row['task']} | {row['algo']} | {row['success_rate']:.2f} "
            f"± {row['success_rate_std']:.2f} | {modes} ({seeds}) | {per_mode} "
            f"| {learned or '-'} | {row['episode_length']:.0f} | {row['env_steps']:.0f} "
            f"| {row['wall_clock_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=["PointMazeV1", "PointMazeV2", "FrankaReach"])
    parser.add_argument(
        "--algos", nargs="+", default=["DDiffPGSmall", "TD3Small", "SACSmall", "DIPOSmall"]
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--env-steps", type=int, default=80_000)
    parser.add_argument("--wall-clock-s", type=float, default=0.0, help="0: no wall-clock cap")
    parser.add_argument("--num-envs", type=int, default=32)
    parser.add_argument("--eval-envs", type=int, default=40)
    parser.add_argument("--threshold", type=float, default=None, help="DTW threshold override")
    parser.add_argument("--min-share", type=float, default=0.1, help="of successful episodes")
    parser.add_argument(
        "--min-successes",
        type=int,
        default=10,
        help="fewer successful evaluation episodes than this: modes are not counted (n/a)",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/compare/latest"))
    parser.add_argument(
        "--algo-overrides",
        nargs="*",
        default=[],
        help="KEY=VALUE settings of every algorithm's section, e.g. warm_up_steps=50",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=[],
        help="combine these compare.json files (e.g. one per task, run side by side) into --out",
    )
    parser.add_argument(
        "--reevaluate",
        type=Path,
        default=None,
        help="evaluate the runs of this compare.json again (no training) and write --out",
    )
    parser.add_argument("overrides", nargs="*", help="hydra overrides passed to every run")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.reevaluate is not None:
        old = json.loads(args.reevaluate.read_text())
        runs = [
            run | evaluate(run["task"], Path(run["run"]) / "nn" / "last.pth", args, run["seed"])
            for run in old["runs"]
        ]
        write_summary(args.out, {**old, "runs": runs})
        return
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        write_summary(args.out, {**parts[0], "runs": [run for p in parts for run in p["runs"]]})
        return

    stamp = time.strftime("%Y%m%d-%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for task in args.tasks:
        for algo in args.algos:
            group = []
            for seed in args.seeds:
                run_dir = Path("runs") / "compare" / stamp / f"{task}_{algo}_s{seed}"
                checkpoint, wall_clock = train(task, algo, seed, args, run_dir)
                result = {"task": task, "algo": algo, "seed": seed, "wall_clock_s": wall_clock}
                result |= evaluate(task, checkpoint, args, seed)
                result["run"] = str(run_dir)
                print(json.dumps(result), file=sys.stderr, flush=True)
                group.append(result)
                write(args, [*runs, *group], [*rows, aggregate(group)])
            runs.extend(group)
            rows.append(aggregate(group))
    print(json.dumps({"summary": rows}))


def write_summary(out_dir: Path, results: dict[str, Any]) -> None:
    """Aggregate `results["runs"]` per task and algorithm (in order of appearance) and write
    compare.json and compare.md into `out_dir`."""
    cells: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in results["runs"]:
        cells.setdefault((run["task"], run["algo"]), []).append(run)
    results = {**results, "summary": [aggregate(group) for group in cells.values()]}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.json").write_text(json.dumps(results, indent=1))
    (out_dir / "compare.md").write_text(markdown(results["summary"]))


def write(args: argparse.Namespace, runs: list[dict[str, Any]], rows: list[dict[str, Any]]) -> None:
    """Write compare.json and compare.md (after every run, so a partial comparison is kept)."""
    machine = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "torch_threads": 1,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    budget = {
        "env_steps": args.env_steps,
        "wall_clock_s": args.wall_clock_s or None,
        "num_envs": args.num_envs,
        "eval_envs": args.eval_envs,
        "min_share": args.min_share,
        "min_successes": args.min_successes,
        "algo_overrides": args.algo_overrides,
        "overrides": args.overrides,
    }
    out = {"budget": budget, "machine": machine, "summary": rows, "runs": runs}
    (args.out / "compare.json").write_text(json.dumps(out, indent=1))
    (args.out / "compare.md").write_text(markdown(rows))


if __name__ == "__main__":
    main()
