"""Mode discovery: DTW clustering of trajectories, cluster-to-critic matching, mode embeddings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.cluster import AgglomerativeClustering
from torch import Tensor

from isaacgymenvs_ddiffpg.learning.dtw import dtw_distance_matrix


def cluster_successes(
    dist: np.ndarray | Tensor,
    threshold: float | None,
    max_clusters: int | None = 10,
    seeds: np.ndarray | None = None,
) -> np.ndarray:
    """Average-linkage agglomerative clustering of successful trajectories on a DTW matrix.

    Args:
        dist: ``(n, n)`` symmetric distance matrix.
        threshold: merge distance cut; ``None`` uses 0.7 x the largest merge height.
        max_clusters: more clusters than this collapse into one (a safety valve; None: none).
        seeds: ``(n,)`` int, optional: trajectories with the same positive seed start as one
            cluster, which later merges may grow but never split (`merge_from_seeds`); 0 or
            less: a trajectory of its own. None: every trajectory starts on its own.

    Returns:
        ``(n,)`` int64 labels in ``1..K``, numbered by first appearance. Fewer than 2
        trajectories: each is its own cluster.
    """
    dist = np.asarray(dist.detach().cpu() if isinstance(dist, Tensor) else dist, dtype=np.float64)
    num = dist.shape[0]
    if num < 2:
        return np.arange(1, num + 1, dtype=np.int64)
    if threshold is None:
        tree = AgglomerativeClustering(
            n_clusters=1, metric="precomputed", linkage="average", compute_distances=True
        ).fit(dist)
        threshold = 0.7 * float(np.max(tree.distances_))
    if threshold <= 0.0:
        return np.ones(num, dtype=np.int64)
    if seeds is not None and np.any(np.asarray(seeds) > 0):
        raw = merge_from_seeds(dist, np.asarray(seeds), threshold)
    else:
        raw = AgglomerativeClustering(
            n_clusters=None,  # pyright: ignore[reportArgumentType]
            metric="precomputed",
            linkage="average",
            distance_threshold=threshold,
        ).fit_predict(dist)
    _, first = np.unique(raw, return_index=True)
    if max_clusters is not None and len(first) > max_clusters:
        return np.ones(num, dtype=np.int64)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(1, len(first) + 1)
    return rank[raw]


def merge_from_seeds(dist: np.ndarray, seeds: np.ndarray, threshold: float) -> np.ndarray:
    """Average linkage that starts from given clusters instead of from single trajectories.

    The starting clusters are the trajectories sharing a positive seed, plus every other
    trajectory on its own; the closest two clusters (mean distance over all their pairs)
    merge while that mean is below `threshold`, as in plain average linkage. Started from
    the previous round's modes, a mode keeps its members: new successes join it or form
    clusters of their own, and two modes merge only when they lie within the threshold, so
    a re-clustering no longer splits a learned mode between two clusters.

    Args:
        dist: ``(n, n)`` symmetric distance matrix.
        seeds: ``(n,)`` int; equal positive values start as one cluster.
        threshold: merge distance cut.

    Returns:
        ``(n,)`` int64 cluster index ``0..K-1`` of each trajectory.
    """
    loose = np.flatnonzero(seeds <= 0)
    groups = [np.flatnonzero(seeds == s) for s in np.unique(seeds[seeds > 0])]
    groups += [loose[k : k + 1] for k in range(len(loose))]
    member = np.zeros((len(dist), len(groups)))
    for k, rows in enumerate(groups):
        member[rows, k] = 1.0
    size = member.sum(axis=0)
    mean = linkage_means(dist, member)
    np.fill_diagonal(mean, np.inf)
    owner = np.arange(len(groups))  # the cluster each starting group now belongs to
    for _ in range(len(groups) - 1):  # each merge retires one cluster
        a, b = divmod(int(np.argmin(mean)), len(groups))
        if not mean[a, b] < threshold:
            break
        merged = (size[a] * mean[a] + size[b] * mean[b]) / (size[a] + size[b])
        mean[a], mean[:, a] = merged, merged
        mean[a, a] = np.inf
        mean[b], mean[:, b] = np.inf, np.inf
        size[a] += size[b]
        owner[owner == b] = a
    labels = np.zeros(len(dist), dtype=np.int64)
    for k, rows in enumerate(groups):
        labels[rows] = owner[k]
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def linkage_means(dist: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Average-linkage distances: the mean of `dist` over all member pairs of every two
    clusters, from the ``(n, K)`` 0/1 membership matrix; ``(K, K)``."""
    size = member.sum(axis=0)
    return (member.T @ dist @ member) / np.outer(size, size)


def assign_failures(
    fail_paths: Tensor,
    fail_lengths: Tensor,
    success_paths: Tensor,
    success_lengths: Tensor,
    success_labels: np.ndarray,
    rng: np.random.Generator,
    members_per_cluster: int = 3,
) -> np.ndarray:
    """Assigns each failed trajectory to the cluster of the closest sampled members.

    For each cluster, at most ``members_per_cluster`` members are drawn once per call; a
    failure goes to the cluster whose drawn members have the smallest mean DTW distance to it.

    Args:
        fail_paths: ``(n_f, T, D)`` zero-padded failed paths.
        fail_lengths: ``(n_f,)`` valid lengths.
        success_paths: ``(n_s, T', D)`` zero-padded successful paths.
        success_lengths: ``(n_s,)`` valid lengths.
        success_labels: ``(n_s,)`` cluster labels in ``1..K``.
        rng: seeded generator choosing the members.
        members_per_cluster: members compared per cluster.

    Returns:
        ``(n_f,)`` int64 labels in ``1..K`` (all 0 when there are no clusters).
    """
    labels = np.asarray(success_labels, dtype=np.int64)
    num_clusters = int(labels.max()) if labels.size else 0
    if num_clusters == 0 or len(fail_paths) == 0:
        return np.zeros(len(fail_paths), dtype=np.int64)
    members = [
        rng.permutation(np.flatnonzero(labels == k))[:members_per_cluster]
        for k in range(1, num_clusters + 1)
    ]
    chosen = torch.as_tensor(np.concatenate(members), device=success_paths.device)
    dist = dtw_distance_matrix(
        fail_paths, fail_lengths, other=(success_paths[chosen], success_lengths[chosen])
    )
    owner = torch.as_tensor(labels[chosen.cpu().numpy()] - 1, device=dist.device)
    total = dist.new_zeros(len(fail_paths), num_clusters).index_add_(1, owner, dist)
    count = torch.bincount(owner, minlength=num_clusters).to(dist.dtype)
    return (total / count).argmin(dim=1).cpu().numpy().astype(np.int64) + 1


@dataclass
class ModePlan:
    """How the groups of a new clustering take over the previous groups' state.

    Index ``j`` is the new group (0 = exploration, ``j >= 1`` = cluster ``j``); old groups are
    indexed the same way. Each new group's critic (online + target) and target-action slot come
    from old group ``source[j]``; its optimiser is reset where ``fresh_optimizer[j]`` and its
    embedding is redrawn where ``fresh_embedding[j]``. ``mode_ids[j]`` is the stable,
    user-facing id of the mode: a continuing cluster keeps its mode id (and so its embedding),
    a new one gets the smallest positive id not held by a continuing mode. Group 0 is always
    ``source 0``, id 0, and keeps everything.
    """

    source: list[int]
    fresh_optimizer: list[bool]
    fresh_embedding: list[bool]
    mode_ids: list[int]

    @property
    def num_groups(self) -> int:
        """Exploration plus modes, ``K_new + 1``."""
        return len(self.source)

    def source_tensor(self, device: str | torch.device = "cpu") -> Tensor:
        """Returns ``source`` as a ``(K_new + 1,)`` long tensor, e.g. for `remap_slots`."""
        return torch.tensor(self.source, dtype=torch.long, device=device)


def match_modes(
    old_labels_by_id: Mapping[int, int],
    new_labels_by_id: Mapping[int, int],
    old_mode_ids: Sequence[int] | None = None,
) -> ModePlan:
    """Matches each new cluster to the old cluster with the largest trajectory-id overlap.

    - Old cluster claimed by one new cluster: that cluster continues it (same critic,
      optimiser, embedding and mode id).
    - Old cluster claimed by several: the one with the largest overlap continues it; each other
      gets a copy of its critic with a fresh optimiser, a fresh embedding and a new mode id.
    - No overlap: a copy of the exploration critic (group 0, also its target-action slot) with a
      fresh optimiser, a fresh embedding and a new mode id.

    Args:
        old_labels_by_id: trajectory id -> old cluster ``1..K_old`` (labels < 1 are ignored).
        new_labels_by_id: trajectory id -> new cluster ``1..K_new`` (labels < 1 are ignored).
        old_mode_ids: mode id of each old group (index 0 = exploration); identity by default.

    Returns:
        The plan for groups ``0..K_new``.
    """
    num_old = max(0, max(old_labels_by_id.values(), default=0))
    num_new = max(0, max(new_labels_by_id.values(), default=0))
    old_ids = list(old_mode_ids) if old_mode_ids is not None else list(range(num_old + 1))
    overlap = np.zeros((num_new + 1, num_old + 1), dtype=np.int64)
    for traj, new in new_labels_by_id.items():
        overlap[max(new, 0), max(old_labels_by_id.get(traj, 0), 0)] += 1
    overlap[0, :] = overlap[:, 0] = 0
    # argmax of an all-zero row is 0: no overlap falls back to the exploration group.
    source = [int(old) for old in overlap.argmax(axis=1)]
    heir: dict[int, int] = {}
    for new in range(1, num_new + 1):
        old = source[new]
        if old and (old not in heir or overlap[new, old] > overlap[heir[old], old]):
            heir[old] = new
    fresh = [new not in heir.values() for new in range(num_new + 1)]
    fresh[0] = False
    mode_ids = [0 if new == 0 or fresh[new] else old_ids[source[new]] for new in range(num_new + 1)]
    next_id = 1
    for new in range(1, num_new + 1):
        if fresh[new]:
            while next_id in mode_ids:
                next_id += 1
            mode_ids[new] = next_id
    return ModePlan(source, list(fresh), list(fresh), mode_ids)


class ModeEmbeddings:
    """Fixed random mode embeddings ``z ~ N(0, I)`` keyed by stable mode id.

    ``z_explore`` is drawn once, then the z of each further explorer; ``z = 0`` means "let the
    sampler choose the mode". With ``use_embedding=False`` every exploitation mode is
    conditioned on ``z = 0``.
    """

    def __init__(
        self, embedding_dim: int = 5, use_embedding: bool = True, seed: int = 0, explorers: int = 1
    ) -> None:
        """Draws ``z_explore`` and the further explorers' z; there are no modes yet.

        Args:
            embedding_dim: size of ``z``.
            use_embedding: condition each mode on its own ``z`` (else on 0).
            seed: seed of the generator that draws every embedding.
            explorers: exploration groups (z_explore and ``explorers - 1`` more).
        """
        self.embedding_dim = embedding_dim
        self.use_embedding = use_embedding
        self.generator = torch.Generator().manual_seed(seed)
        self.explore = self._draw()
        more = [self._draw() for _ in range(explorers - 1)]
        self.more_explorers = torch.stack(more) if more else torch.zeros(0, embedding_dim)
        self.by_mode: dict[int, Tensor] = {}
        self.mode_ids: list[int] = [0]

    def _draw(self) -> Tensor:
        return torch.randn(self.embedding_dim, generator=self.generator)

    def apply_plan(self, plan: ModePlan) -> None:
        """Re-maps embeddings to the new groups: continuing modes keep theirs, others redraw."""
        by_mode = {}
        for group in range(1, plan.num_groups):
            mode_id = plan.mode_ids[group]
            by_mode[mode_id] = (
                self._draw() if plan.fresh_embedding[group] else self.by_mode[mode_id]
            )
        self.by_mode, self.mode_ids = by_mode, list(plan.mode_ids)

    def for_mode(self, mode_id: int | None) -> Tensor:
        """Returns ``(embedding_dim,)`` z of a mode id; ``None`` -> zeros (sampler chooses)."""
        if mode_id is None or not self.use_embedding:
            return torch.zeros(self.embedding_dim)
        return self.by_mode[mode_id].clone()

    def group_embeddings(self, device: str | torch.device = "cpu") -> Tensor:
        """Returns ``(num_groups, embedding_dim)``: row 0 ``z_explore``, row j <= K mode j's z,
        then the further explorers' z."""
        rows = [self.explore] + [self.for_mode(mode_id) for mode_id in self.mode_ids[1:]]
        return torch.cat((torch.stack(rows), self.more_explorers)).to(device)

    def state_dict(self) -> dict:
        """Returns the embeddings, group -> mode id table and generator state."""
        return {
            "explore": self.explore.clone(),
            "more_explorers": self.more_explorers.clone(),
            "by_mode": {k: v.clone() for k, v in self.by_mode.items()},
            "mode_ids": list(self.mode_ids),
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restores a `state_dict`."""
        self.explore = state["explore"].clone()
        more = state.get("more_explorers", self.explore.new_zeros(0, self.embedding_dim))
        if len(more) != len(self.more_explorers):
            raise ValueError(
                f"the checkpoint has {len(more) + 1} exploration groups and this run "
                f"{len(self.more_explorers) + 1}; set explorers={len(more) + 1} to load it"
            )
        self.more_explorers = more.clone()
        self.by_mode = {int(k): v.clone() for k, v in state["by_mode"].items()}
        self.mode_ids = list(state["mode_ids"])
        self.generator.set_state(state["generator"])


def cap_clusters(
    ids: np.ndarray,
    labels: np.ndarray,
    success: np.ndarray,
    capacity: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Chooses trajectories to evict so each cluster keeps <= capacity // (2K) of each kind.

    Successes and failures of every cluster are capped separately, at random. Without
    clusters (K = 0) the failures are capped at ``capacity``.

    Args:
        ids: ``(M,)`` trajectory ids.
        labels: ``(M,)`` cluster labels (0 = none).
        success: ``(M,)`` bool, reached a goal.
        capacity: buffer capacity in trajectories.
        rng: seeded generator choosing the evicted ones.

    Returns:
        ``(E,)`` int64 ids to evict.
    """
    ids, labels, success = np.asarray(ids), np.asarray(labels), np.asarray(success, dtype=bool)
    num_clusters = int(labels.max()) if labels.size else 0
    cap = capacity // (2 * num_clusters) if num_clusters else capacity
    groups = range(1, num_clusters + 1) if num_clusters else [0]
    evict = []
    for label in groups:
        for kind in (True, False):
            members = np.flatnonzero((labels == label) & (success == kind))
            if len(members) > cap:
                evict.append(ids[rng.choice(members, size=len(members) - cap, replace=False)])
    return np.concatenate(evict).astype(np.int64) if evict else np.zeros(0, dtype=np.int64)
