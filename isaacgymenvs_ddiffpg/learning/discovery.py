"""One mode-discovery round: cluster successes, assign failures, match old modes, apply caps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.config import ClusterSettings
from isaacgymenvs_ddiffpg.learning.dtw import DTWCache, mode_paths
from isaacgymenvs_ddiffpg.learning.modes import (
    ModePlan,
    assign_failures,
    cap_clusters,
    cluster_successes,
    linkage_means,
    match_modes,
)


@dataclass
class Discovery:
    """One mode-discovery round: the plan and the new labels to write into the replay.

    Attributes:
        plan: how new groups take over the old groups' critics, slots and embeddings.
        ids: ``(M,)`` long, kept completed trajectories (for `TrajectoryReplay.set_groups`).
        groups: ``(M,)`` long, their new group labels (0 = exploration only).
        evict_ids: ``(E,)`` long, trajectories over the per-cluster caps.
        success_labels: success id -> cluster, the ``old_labels_by_id`` of the next round.
        new_route_ids: ``(R,)`` long, kept successful trajectories on a route no mode takes
            (`new_routes`), for `TrajectoryReplay.set_new_routes`.
    """

    plan: ModePlan
    ids: Tensor
    groups: Tensor
    evict_ids: Tensor
    success_labels: dict[int, int]
    new_route_ids: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))


def discover_modes(
    trajectories: Mapping[str, Tensor],
    cache: DTWCache,
    old_success_labels: Mapping[int, int],
    old_mode_ids: Sequence[int] | None,
    settings: ClusterSettings,
    capacity: int,
    rng: np.random.Generator,
) -> Discovery:
    """Clusters successes, assigns failures, matches clusters to old modes and applies caps.

    Args:
        trajectories: `TrajectoryReplay.completed` output (``ids``, ``success``, ``lengths``,
            ``paths`` (M, L + 1, F)).
        cache: DTW cache of the success-success distances.
        old_success_labels: previous round's ``success_labels`` ({} before the first round).
        old_mode_ids: previous plan's ``mode_ids`` (None before the first round).
        settings: how the successes are clustered (`success_clusters`); failures are joined
            to the clusters on whole paths.
        capacity: buffer capacity in trajectories, for the per-cluster caps.
        rng: seeded generator for failure assignment and eviction.

    Returns:
        The round's `Discovery`; overlap matching uses the success labels only.
    """
    ids, paths = trajectories["ids"], trajectories["paths"]
    lengths = trajectories["lengths"].to(paths.device) + 1
    whole, whole_lengths = mode_paths(paths, lengths, settings.resample_len)
    success = (trajectories["success"] > 0).cpu().numpy()
    ids_host = ids.cpu().numpy()
    win = torch.as_tensor(np.flatnonzero(success), device=paths.device)
    lose = torch.as_tensor(np.flatnonzero(~success), device=paths.device)
    labels = np.zeros(len(ids_host), dtype=np.int64)
    dist = success_distances(trajectories, cache, settings)
    won_ids = ids_host[success]
    _, labels[success] = cluster_modes(dist, won_ids, old_success_labels, settings)
    new = new_routes(dist, labels[success], settings.threshold)
    labels[~success] = assign_failures(
        whole[lose], whole_lengths[lose], whole[win], whole_lengths[win], labels[success], rng
    )
    success_labels = {
        int(i): int(k) for i, k in zip(ids_host[success], labels[success], strict=True)
    }
    plan = match_modes(old_success_labels, success_labels, old_mode_ids)
    evict = cap_clusters(ids_host, labels, success, capacity, rng)
    keep = ~np.isin(ids_host, evict)
    return Discovery(
        plan=plan,
        ids=torch.as_tensor(ids_host[keep]),
        groups=torch.as_tensor(labels[keep]),
        evict_ids=torch.as_tensor(evict),
        success_labels={i: k for i, k in success_labels.items() if i not in set(evict.tolist())},
        new_route_ids=torch.as_tensor(won_ids[new & ~np.isin(won_ids, evict)]),
    )


def new_routes(dist: np.ndarray, modes: np.ndarray, threshold: float | None) -> np.ndarray:
    """Which successes take a route no mode takes: in no mode's cluster, and farther than the
    clustering threshold from every success that is (every success, while there is no mode).

    A cluster left out of the modes by `max_clusters` lies within the threshold of a mode's
    members when it is the same route split in two, and farther when it is another route.

    Args:
        dist: ``(n, n)`` distances between the successes, as clustered.
        modes: ``(n,)`` mode labels (0: no mode).
        threshold: the clustering threshold (None: any distance counts as farther).

    Returns:
        ``(n,)`` bool.
    """
    in_mode = modes > 0
    if not in_mode.any():
        return np.ones(len(modes), dtype=bool)
    nearest = dist[:, in_mode].min(axis=1)
    return ~in_mode & (nearest > (threshold or 0.0))


def success_clusters(
    trajectories: Mapping[str, Tensor],
    cache: DTWCache,
    old_success_labels: Mapping[int, int],
    settings: ClusterSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """Every cluster of the successful trajectories at the threshold, and those that become
    modes; arguments as in `discover_modes`.

    Successes are clustered on the part of their paths inside `settings.region`, where the
    task's routes differ. A cluster becomes a mode only with `settings.min_mode_size`
    successes (smaller ones stay exploration data until enough alike ones join them); of
    more than `settings.max_clusters` such clusters the largest become modes, those holding
    the previous round's modes first under `settings.keep_modes`, or under `settings.spread`
    the largest and then those farthest from the ones chosen (`spread_clusters`). Under
    `settings.seeded` average linkage starts from the previous round's modes
    (`merge_from_seeds`), so a mode's stored successes stay together.

    Returns:
        ``(n_s,)`` cluster labels ``1..K`` (numbered by first appearance) and ``(n_s,)`` mode
        labels (0: no mode, else ``1..K'`` in the same order), of the successes in the order of
        ``trajectories``.
    """
    success = (trajectories["success"] > 0).cpu().numpy()
    won_ids = trajectories["ids"].cpu().numpy()[success]
    dist = success_distances(trajectories, cache, settings)
    return cluster_modes(dist, won_ids, old_success_labels, settings)


def success_distances(
    trajectories: Mapping[str, Tensor], cache: DTWCache, settings: ClusterSettings
) -> np.ndarray:
    """``(n_s, n_s)`` DTW distances between the successful trajectories' paths inside
    `settings.region`, in the order of ``trajectories``; arguments as in `discover_modes`."""
    ids, paths = trajectories["ids"], trajectories["paths"]
    success = (trajectories["success"] > 0).cpu().numpy()
    win = torch.as_tensor(np.flatnonzero(success), device=paths.device)
    lengths = trajectories["lengths"].to(paths.device)[win] + 1
    region = settings.region
    win_paths, win_lengths = mode_paths(paths[win], lengths, settings.resample_len, region)
    key = (settings.resample_len, None if region is None else tuple(map(tuple, region)))
    dist = cache.distances(ids[win.to(ids.device)], win_paths, win_lengths, key=key)
    return np.asarray(dist.detach().cpu(), dtype=np.float64)  # one host copy for all uses


def cluster_modes(
    dist: np.ndarray,
    won_ids: np.ndarray,
    old_success_labels: Mapping[int, int],
    settings: ClusterSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """`success_clusters` from the successes' distances ``dist`` and ids ``won_ids``."""
    old = np.array([old_success_labels.get(int(i), 0) for i in won_ids], dtype=np.int64)
    seeds = old if settings.seeded else None
    # capped below, after the clusters too small to be modes are set aside
    clusters = cluster_successes(dist, settings.threshold, max_clusters=None, seeds=seeds)
    held = old > 0 if settings.keep_modes else None
    spread = dist if settings.spread else None
    modes = large_clusters(clusters, settings.min_mode_size, settings.max_clusters, held, spread)
    return clusters, modes


def large_clusters(
    labels: np.ndarray,
    min_size: int,
    max_clusters: int | None = None,
    first: np.ndarray | None = None,
    dist: np.ndarray | None = None,
) -> np.ndarray:
    """Cluster labels (1..K, numbered by first appearance) with every cluster of fewer than
    `min_size` members set to 0 and the others renumbered 1..K' in the same order; of more than
    `max_clusters` such clusters only the largest are kept (the earlier one on a tie), those
    with a member marked in `first` (bool, one per label) before all others. Given `dist`, the
    members' ``(n, n)`` distance matrix, the clusters are chosen by `spread_clusters` instead.

    Many small clusters are what a wide spread of paths gives, and the modes among them are the
    large ones: collapsing them all into one cluster (the released safety valve) lost the modes.
    """
    sizes = np.bincount(labels, minlength=int(labels.max(initial=0)) + 1)
    kept = np.flatnonzero(sizes >= min_size)
    kept = kept[kept > 0]
    if max_clusters is not None and len(kept) > max_clusters:
        marked = np.zeros(len(sizes), dtype=bool)
        if first is not None:
            marked[labels[np.asarray(first, dtype=bool)]] = True
        if dist is None:
            largest = np.lexsort((-sizes[kept], ~marked[kept]))[:max_clusters]
            kept = np.sort(kept[largest])
        else:
            kept = spread_clusters(labels, kept, marked, dist, max_clusters)
    renumber = np.zeros(len(sizes), dtype=np.int64)
    renumber[kept] = np.arange(1, len(kept) + 1)
    return renumber[labels]


def spread_clusters(
    labels: np.ndarray,
    candidates: np.ndarray,
    marked: np.ndarray,
    dist: np.ndarray,
    count: int,
) -> np.ndarray:
    """Chooses `count` of the `candidates` clusters far apart from each other.

    The marked clusters come first (the largest of them, if more than `count`), or else the
    largest cluster; then, one at a time, the candidate whose average-linkage distance (mean
    over all member pairs) to the nearest chosen cluster is largest (the larger on a tie).
    Meant for tasks where clusters of one route, split by the threshold, lie closer to each
    other than to the first cluster of another route, however small; small clusters of odd
    paths may lie farther still.

    Args:
        labels: ``(n,)`` cluster label of each member.
        candidates: cluster labels to choose from, ascending.
        marked: ``(max label + 1,)`` bool, clusters to keep first.
        dist: ``(n, n)`` distances between the members.
        count: how many to choose, fewer than ``len(candidates)``.

    Returns:
        The chosen labels, ascending.
    """
    member = (labels[:, None] == candidates[None, :]).astype(np.float64)
    size = member.sum(axis=0)
    between = linkage_means(dist, member)
    by_size = np.lexsort((-size, ~marked[candidates]))
    held = int(marked[candidates].sum())
    chosen = list(by_size[: min(max(held, 1), count)])
    while len(chosen) < count:
        rest = np.setdiff1d(np.arange(len(candidates)), chosen)
        gap = between[np.ix_(rest, chosen)].min(axis=1)
        chosen.append(int(rest[np.lexsort((-size[rest], -gap))[0]]))
    return np.sort(candidates[chosen])
