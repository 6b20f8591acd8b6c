"""Counting the modes of evaluated episodes: DTW + average linkage on successful paths only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.dtw import dtw_distance_matrix, mode_paths
from isaacgymenvs_ddiffpg.learning.modes import cluster_successes


def count_modes(
    paths: Tensor,
    lengths: Tensor,
    success: Tensor,
    threshold: float | None,
    resample_len: int | None = None,
    min_share: float = 0.0,
    max_clusters: int = 10,
    min_successes: int = 10,
    region: tuple[Sequence[float], Sequence[float]] | None = None,
) -> dict[str, object]:
    """Cluster the successful episodes' mode-feature paths exactly as DDiffPG clusters successes.

    The same DTW (`dtw_distance_matrix`), optional length resampling and average-linkage
    clustering (`cluster_successes`) as mode discovery, applied to evaluation episodes, so the
    count means the same thing for every algorithm. Failed episodes are ignored.

    Args:
        paths: (N, T + 1, F) mode-feature paths (`run_episodes(..., feature_dim=F)["paths"]`).
        lengths: (N,) steps of each episode; path i holds lengths[i] + 1 valid points.
        success: (N,) goal id reached (0 = none).
        threshold: DTW merge threshold (None: 0.7 x the largest merge height, which splits any
            two distinct paths, so pass a fixed threshold to count modes).
        resample_len: resample each path to this many points first (None: full length).
        min_share: a cluster counts as a mode only if it holds at least this share of the
            successful episodes (0: every cluster counts).
        max_clusters: the safety valve of `cluster_successes`.
        min_successes: with fewer successful episodes than this, the modes are not counted
            (``num_modes`` None, "n/a"): a handful of successes says nothing about how many
            ways the policy has.
        region: compare only the part of each path inside this box (low, high) of
            mode-feature space, as mode discovery does (None: whole paths).

    Returns:
        ``num_modes`` (int, or None below `min_successes`), ``labels`` (list, cluster 1..K of
        each successful episode),
        ``mode_shares`` (list, share of all N episodes that succeeded through each counted
        cluster, largest first), ``num_success`` (int).
    """
    win = (success > 0).nonzero().flatten()
    num = int(win.numel())
    if num < min_successes:
        return {"num_modes": None, "labels": [], "mode_shares": [], "num_success": num}
    win_paths = paths[win].float()
    win_lengths = lengths[win].to(paths.device) + 1
    win_paths, win_lengths = mode_paths(win_paths, win_lengths, resample_len, region)
    dist = dtw_distance_matrix(win_paths, win_lengths)
    labels = cluster_successes(dist, threshold, max_clusters)
    sizes = np.bincount(labels)[1:]
    kept = sorted((int(s) for s in sizes if s >= min_share * num), reverse=True)
    return {
        "num_modes": len(kept),
        "labels": labels.tolist(),
        "mode_shares": [s / int(success.numel()) for s in kept],
        "num_success": num,
    }
