"""Where a checkpoint's stored successes go, and which of their clusters are modes; JSON lines.

    python benchmarks/replay_modes.py runs/<experiment>/nn/FrankaReach_iter12000.pth [...]

Mode discovery clusters the successful trajectories in the replay and makes modes of the
largest clusters (at most `max_modes`) that hold at least `min_mode_size` successes. This reads
that step back from a checkpoint's stored replay, with the run's own settings and task: the
route of every stored success (`route_of` in benchmarks/learn.py), the routes of those that
belong to no mode, and every cluster of at least `min_mode_size` successes at the task's
threshold, largest first, with its routes and whether the cap on modes keeps it. It tells a
route that exploration seldom finds (few stored successes take it) from one that is found but
not kept (its clusters outranked by larger ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from isaacgymenvs_ddiffpg.learning.discovery import success_clusters
from isaacgymenvs_ddiffpg.learning.dtw import DTWCache
from isaacgymenvs_ddiffpg.utils.errors import CheckpointError, ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parent))  # learn.py, beside this file

from learn import load_run, route_of  # noqa: E402


def counts(routes: Iterable[str]) -> dict[str, int]:
    """Route -> number of paths, most common first."""
    return dict(Counter(routes).most_common())


def replay_modes(agent: Any, task: Any, name: str, feature_dim: int) -> dict[str, Any]:
    """The stored successes of a DDiffPG agent's replay by route, and their clusters.

    Args:
        agent: a DDiffPG agent with its replay.
        task: the task it was trained on (`route_of` reads its geometry).
        name: the task's name (picks the route reading of `route_of`).
        feature_dim: leading observation dims that form the paths (`mode_feature_dim`).

    Returns:
        ``successes``, ``routes`` and ``routes_outside_modes`` (stored successes in no mode),
        ``modes`` (the agent's), and ``clusters``: for each cluster of >= `min_mode_size`
        successes, largest first, its ``size``, ``routes``, ``in_modes`` (members in a mode
        now) and ``mode`` (whether the cap on modes keeps it, with the run's `keep_modes`
        and `mode_choice`: a mode if discovery ran now).
    """
    cfg = agent.cfg
    stored = agent.replay.completed(feature_dim, device="cpu")
    won = torch.nonzero(stored["success"] > 0).flatten()
    lengths = stored["lengths"][won] + 1
    routes = [
        route_of(task, name, stored["paths"][k, :n].numpy(), int(stored["success"][k]))
        for k, n in zip(won.tolist(), lengths.tolist(), strict=True)
    ]
    in_mode = (stored["groups"][won] > 0).numpy()
    out: dict[str, Any] = {
        "successes": len(routes),
        "routes": counts(routes),
        "routes_outside_modes": counts(r for r, m in zip(routes, in_mode, strict=True) if not m),
        "modes": len(agent.mode_ids),
        "clusters": [],
    }
    if len(routes) < 2:
        return out
    labels, modes = success_clusters(stored, DTWCache(), agent.success_labels, cfg.cluster_settings)
    sizes = np.bincount(labels)
    order = sorted(np.flatnonzero(sizes >= cfg.min_mode_size), key=lambda k: (-sizes[k], k))
    for label in (k for k in order if k > 0):
        members = np.flatnonzero(labels == label)
        out["clusters"].append(
            {
                "size": len(members),
                "mode": bool(modes[members[0]] > 0),
                "in_modes": int(in_mode[members].sum()),
                "routes": counts(routes[i] for i in members),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for checkpoint in args.checkpoints:
        try:
            run = load_run(checkpoint, with_replay=True)
        except (CheckpointError, ConfigError) as err:
            sys.exit(f"error: {err}")
        result = replay_modes(run.agent, run.task, run.name, run.feature_dim)
        head = {"checkpoint": str(checkpoint), "env_steps": int(run.state["env_steps"])}
        print(json.dumps(head | result), flush=True)


if __name__ == "__main__":
    main()
