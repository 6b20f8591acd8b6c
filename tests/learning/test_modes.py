"""Tests of failure assignment, overlap matching, stable mode ids, embeddings and caps."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.learning.agents import make_agent
from isaacgymenvs_ddiffpg.learning.config import ClusterSettings, DDiffPGConfig
from isaacgymenvs_ddiffpg.learning.core import EnvSpec
from isaacgymenvs_ddiffpg.learning.discovery import discover_modes, large_clusters, new_routes
from isaacgymenvs_ddiffpg.learning.dtw import DTWCache, dtw_distance_matrix
from isaacgymenvs_ddiffpg.learning.modes import (
    ModeEmbeddings,
    assign_failures,
    cap_clusters,
    cluster_successes,
    match_modes,
    merge_from_seeds,
)

AT_50 = ClusterSettings(threshold=50.0)  # the maze paths' DTW threshold


def maze_path(side: float, num_points: int, rng: np.random.Generator, stop: float = 16.0):
    """AntMaze-v1-like xy path from (0, 0) towards (-8, 0) above (+1) or below (-1) the wall."""
    corners = np.array([[0.0, 0.0], [0.0, 4.0 * side], [-8.0, 4.0 * side], [-8.0, 0.0]])
    arc = np.linspace(0.0, stop, num_points)
    points = np.stack([np.interp(arc, [0, 4, 12, 16], corners[:, k]) for k in range(2)], axis=1)
    return points + 0.1 * rng.standard_normal(points.shape)


def pad(paths: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(p) for p in paths])
    out = torch.zeros(len(paths), int(lengths.max()), 2, dtype=torch.float64)
    for k, path in enumerate(paths):
        out[k, : len(path)] = torch.as_tensor(path)
    return out, lengths


def stored(paths: list[np.ndarray], success: list[int]) -> dict[str, torch.Tensor]:
    """The paths as `TrajectoryReplay.completed` gives them: ids 0..n-1, each one's success."""
    padded, lengths = pad(paths)
    return {
        "ids": torch.arange(len(paths)),
        "success": torch.tensor(success, dtype=torch.long),
        "lengths": lengths - 1,
        "paths": padded,
    }


def test_failures_go_to_the_cluster_of_their_route() -> None:
    rng = np.random.default_rng(0)
    sides = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0]
    success = pad([maze_path(side, 120, rng) for side in sides])
    fail_sides = [-1.0, 1.0, -1.0]
    failures = pad([maze_path(side, 70, rng, stop=9.0) for side in fail_sides])
    labels = np.array([1, 1, 1, 1, 2, 2, 2, 2])
    got = assign_failures(*failures, *success, labels, np.random.default_rng(1))
    assert got.tolist() == [2, 1, 2]
    none = assign_failures(*failures, *success, np.zeros(0, dtype=np.int64), rng)
    assert none.tolist() == [0, 0, 0]


def test_overlap_matching_keeps_identity_when_most_ids_are_unchanged() -> None:
    old = {i: 1 if i < 50 else 2 for i in range(100)}
    # 90 % of ids stay, cluster numbers swap, 10 new ids join
    new = {i: 2 if i < 50 else 1 for i in range(10, 100)}
    new.update({i: 2 for i in range(100, 110)})
    plan = match_modes(old, new, old_mode_ids=[0, 4, 7])
    assert plan.source == [0, 2, 1]
    assert plan.fresh_optimizer == [False, False, False]
    assert plan.fresh_embedding == [False, False, False]
    assert plan.mode_ids == [0, 7, 4]
    embeddings = ModeEmbeddings(seed=0)
    embeddings.apply_plan(match_modes({}, old))
    before = {mode: embeddings.for_mode(mode) for mode in (1, 2)}
    embeddings.apply_plan(match_modes(old, new))
    assert embeddings.mode_ids == [0, 2, 1]
    assert torch.equal(embeddings.for_mode(1), before[1])
    assert torch.equal(embeddings.group_embeddings()[1], before[2])


def test_split_children_copy_the_parent_critic_and_get_distinct_embeddings() -> None:
    old = {i: 1 for i in range(60)}
    new = {i: 1 if i < 40 else 2 for i in range(60)}
    plan = match_modes(old, new, old_mode_ids=[0, 3])
    assert plan.source == [0, 1, 1]
    assert plan.fresh_optimizer == [False, False, True]
    assert plan.fresh_embedding == [False, False, True]
    assert plan.mode_ids == [0, 3, 1]
    embeddings = ModeEmbeddings(seed=0)
    embeddings.apply_plan(match_modes({}, old, [0]))
    parent = embeddings.group_embeddings()[1]
    embeddings.apply_plan(match_modes(old, new))
    rows = embeddings.group_embeddings()
    assert torch.equal(rows[1], parent)
    assert not torch.allclose(rows[2], parent) and not torch.allclose(rows[2], rows[0])


def test_larger_overlap_inherits_when_the_larger_child_comes_second() -> None:
    old = {i: 1 for i in range(60)}
    new = {i: 2 if i < 40 else 1 for i in range(60)}
    plan = match_modes(old, new)
    assert plan.source == [0, 1, 1] and plan.fresh_embedding == [False, True, False]
    assert plan.mode_ids == [0, 2, 1]


def test_cluster_without_overlap_copies_exploration_and_gets_smallest_unused_id() -> None:
    old = {i: 1 if i < 20 else 2 for i in range(40)}
    new = {i: 1 for i in range(20, 40)}
    new.update({i: 2 for i in range(100, 120)})
    plan = match_modes(old, new, old_mode_ids=[0, 1, 2])  # mode 1 (group 1) disappeared
    assert plan.source == [0, 2, 0]
    assert plan.fresh_optimizer == [False, False, True]
    assert plan.fresh_embedding == [False, False, True]
    assert plan.mode_ids == [0, 2, 1]
    plan = match_modes(old, {i: 1 for i in range(100, 120)}, old_mode_ids=[0, 1, 5])
    assert plan.source == [0, 0] and plan.mode_ids == [0, 1]


def test_embeddings_zero_without_use_embedding_and_state_dict_round_trip() -> None:
    plan = match_modes({}, {1: 1, 2: 2})
    embeddings = ModeEmbeddings(seed=3)
    embeddings.apply_plan(plan)
    assert embeddings.for_mode(None).abs().sum() == 0
    restored = ModeEmbeddings(seed=99)
    restored.load_state_dict(embeddings.state_dict())
    assert torch.equal(restored.group_embeddings(), embeddings.group_embeddings())
    split = match_modes({1: 1, 2: 2}, {1: 1, 2: 2, 3: 3})
    embeddings.apply_plan(split)
    restored.apply_plan(split)
    assert torch.equal(restored.group_embeddings(), embeddings.group_embeddings())
    plain = ModeEmbeddings(seed=3, use_embedding=False)
    plain.apply_plan(plan)
    rows = plain.group_embeddings()
    assert rows[1:].abs().sum() == 0 and rows[0].abs().sum() > 0


def test_caps_keep_capacity_over_two_k_per_cluster_and_kind() -> None:
    ids = np.arange(100)
    labels = np.repeat([1, 2], 50)
    success = np.tile(np.arange(50) < 30, 2)
    evict = cap_clusters(ids, labels, success, capacity=80, rng=np.random.default_rng(0))
    kept = ~np.isin(ids, evict)
    for label in (1, 2):
        assert np.sum(kept & (labels == label) & success) == 20
        assert np.sum(kept & (labels == label) & ~success) == 20
    none = cap_clusters(ids, np.zeros(100), np.zeros(100, bool), 60, np.random.default_rng(0))
    assert len(none) == 40


def test_discover_modes_labels_both_routes_and_keeps_ids_stable() -> None:
    rng = np.random.default_rng(4)
    sides = [1.0, -1.0] * 6
    paths = [maze_path(side, int(rng.integers(100, 140)), rng) for side in sides]
    paths += [maze_path(-1.0, 80, rng, stop=9.0), maze_path(1.0, 80, rng, stop=9.0)]
    trajectories = stored(paths, [1] * 12 + [0, 0])
    cache = DTWCache()
    first = discover_modes(trajectories, cache, {}, None, AT_50, 100, np.random.default_rng(0))
    assert first.plan.mode_ids == [0, 1, 2] and first.plan.source == [0, 0, 0]
    groups = dict(zip(first.ids.tolist(), first.groups.tolist(), strict=True))
    assert groups[12] == groups[1] != groups[13] == groups[0]
    assert len(first.evict_ids) == 0
    order = torch.tensor([1, 0, *range(2, 14)])
    swapped = {k: v[order] for k, v in trajectories.items()}
    labels, mode_ids = first.success_labels, first.plan.mode_ids
    second = discover_modes(swapped, cache, labels, mode_ids, AT_50, 8, np.random.default_rng(0))
    assert second.plan.source == [0, 2, 1] and second.plan.mode_ids == [0, 2, 1]
    assert len(second.evict_ids) == 8  # 6 successes per route, cap 8 // 4 = 2


def test_discover_modes_without_successes_keeps_only_exploration() -> None:
    rng = np.random.default_rng(5)
    trajectories = stored([maze_path(1.0, 50, rng, stop=6.0) for _ in range(5)], [0] * 5)
    found = discover_modes(
        trajectories, DTWCache(), {}, None, ClusterSettings(), 3, np.random.default_rng(0)
    )
    assert found.plan.source == [0] and found.plan.mode_ids == [0]
    assert found.groups.tolist() == [0, 0, 0] and len(found.evict_ids) == 2


def test_a_cluster_becomes_a_mode_only_with_enough_successes() -> None:
    rng = np.random.default_rng(6)
    # 6 successes above the wall, 2 below: the 2 stay exploration data at a minimum of 3
    sides = [1.0] * 6 + [-1.0] * 2
    paths = [maze_path(side, int(rng.integers(100, 140)), rng) for side in sides]
    trajectories = stored(paths, [1] * 8)
    at_least_3 = ClusterSettings(threshold=50.0, min_mode_size=3)
    found = discover_modes(
        trajectories, DTWCache(), {}, None, at_least_3, 100, np.random.default_rng(0)
    )
    assert found.plan.mode_ids == [0, 1]
    assert found.groups.tolist() == [1] * 6 + [0] * 2
    assert set(found.success_labels.values()) == {0, 1}
    every = discover_modes(trajectories, DTWCache(), {}, None, AT_50, 100, np.random.default_rng(0))
    assert every.plan.mode_ids == [0, 1, 2]  # without a minimum both clusters are modes


def test_new_routes_are_the_successes_far_from_every_mode() -> None:
    rng = np.random.default_rng(6)
    # 6 successes above the wall and 2 below, then 2 more above split off by a tight cap
    sides = [1.0] * 6 + [-1.0] * 2
    paths = [maze_path(side, int(rng.integers(100, 140)), rng) for side in sides]
    trajectories = stored(paths, [1] * 7 + [0])
    at_least_3 = ClusterSettings(threshold=50.0, min_mode_size=3)
    found = discover_modes(
        trajectories, DTWCache(), {}, None, at_least_3, 100, np.random.default_rng(0)
    )
    assert found.plan.mode_ids == [0, 1]
    assert found.new_route_ids.tolist() == [6]  # the one success below; never a failure
    none = discover_modes(
        trajectories,
        DTWCache(),
        {},
        None,
        replace(at_least_3, min_mode_size=9),
        100,
        np.random.default_rng(0),
    )
    assert none.plan.mode_ids == [0] and none.new_route_ids.tolist() == list(range(7))
    # a success outside the modes but within the threshold of one is the same route
    dist = np.array([[0.0, 0.2, 0.4, 2.0], [0.2, 0.0, 0.3, 2.0], [0.4, 0.3, 0.0, 2.0]])
    dist = np.vstack([dist, [2.0, 2.0, 2.0, 0.0]])
    modes = np.array([1, 1, 0, 0])
    assert new_routes(dist, modes, 0.5).tolist() == [False, False, False, True]
    assert new_routes(dist, modes, 0.1).tolist() == [False, False, True, True]
    assert new_routes(dist, np.zeros(4, dtype=np.int64), 0.5).all()


def test_many_small_clusters_leave_the_largest_as_modes_instead_of_one() -> None:
    rng = np.random.default_rng(7)
    # 5 paths above, 4 below, and 12 straight runs in 12 directions: 14 clusters
    sides = [1.0] * 5 + [-1.0] * 4
    paths = [maze_path(side, int(rng.integers(100, 140)), rng) for side in sides]
    for k in range(12):
        angle = 2 * np.pi * k / 12
        paths.append(np.linspace(0.0, 20.0, 80)[:, None] * [np.cos(angle), np.sin(angle)])
    trajectories = stored(paths, [1] * len(paths))
    padded, lengths = trajectories["paths"], trajectories["lengths"] + 1
    labels = cluster_successes(dtw_distance_matrix(padded, lengths), 50.0, len(paths))
    assert labels.max() == 14
    rng = np.random.default_rng(0)
    at_least_2 = ClusterSettings(threshold=50.0, min_mode_size=2)
    found = discover_modes(trajectories, DTWCache(), {}, None, at_least_2, 100, rng)
    groups = found.groups.tolist()
    assert found.plan.mode_ids == [0, 1, 2]  # the released valve made all of them one mode
    assert len(set(groups[:5])) == 1 and len(set(groups[5:9])) == 1 and groups[0] != groups[5]
    assert set(groups[9:]) == {0}
    # of more than max_clusters, the largest (the earlier on a tie)
    kept = large_clusters(np.array([1, 2, 2, 3, 3, 3, 4, 4]), 2, 2)
    assert kept.tolist() == [0, 1, 1, 2, 2, 2, 0, 0]
    # clusters holding a current mode's success come first, then the largest new ones
    held = np.array([False, False, False, False, False, False, False, True])
    kept = large_clusters(np.array([1, 2, 2, 3, 3, 3, 4, 4]), 2, 2, held)
    assert kept.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_keep_modes_keeps_a_learned_route_beside_larger_new_clusters() -> None:
    """Round one: routes A and B are modes. Round two: three larger clusters have come (paths
    that end near A's); by size B would lose its mode to them, with keep_modes it keeps it."""
    rng = np.random.default_rng(3)

    def path(end_y: float) -> np.ndarray:
        line = np.linspace(0.0, 1.0, 30)[:, None] * [20.0, end_y]
        return line + 0.05 * rng.standard_normal(line.shape)

    first = [path(-20.0)] * 6 + [path(20.0)] * 5  # A below (6), B above (5)
    two_modes = ClusterSettings(threshold=5.0, max_clusters=2, min_mode_size=5)
    round_one = discover_modes(
        stored(first, [1] * 11), DTWCache(), {}, None, two_modes, 100, np.random.default_rng(0)
    )
    assert len(round_one.plan.mode_ids) == 3
    more_a = [path(y) for y in (-5.0, -12.0, -40.0) for _ in range(7)]  # three larger clusters
    trajectories = stored(first + more_a, [1] * (11 + 21))

    def round_two(keep: bool) -> set[int]:
        found = discover_modes(
            trajectories, DTWCache(), round_one.success_labels, round_one.plan.mode_ids,
            replace(two_modes, keep_modes=keep), 1000, np.random.default_rng(0),
        )  # fmt: skip
        return set(found.groups.numpy()[6:11].tolist())  # B's group

    assert round_two(keep=False) == {0}  # B dropped for two of A's new clusters
    assert round_two(keep=True) != {0} and len(round_two(keep=True)) == 1


def test_spread_choice_makes_a_small_far_cluster_a_mode_beside_a_split_route() -> None:
    """Route A's successes end at three heights below the start (clusters of 8, 7 and 6),
    route B's five above it. By size A's clusters take both mode slots and B stays
    exploration data; with mode_choice spread the largest of A and B are the modes."""
    rng = np.random.default_rng(4)

    def path(end_y: float) -> np.ndarray:
        line = np.linspace(0.0, 1.0, 30)[:, None] * [20.0, end_y]
        return line + 0.05 * rng.standard_normal(line.shape)

    ends = [-20.0] * 8 + [-12.0] * 7 + [-28.0] * 6 + [20.0] * 5
    trajectories = stored([path(y) for y in ends], [1] * len(ends))
    two_modes = ClusterSettings(threshold=5.0, max_clusters=2, min_mode_size=5)

    def modes(spread: bool) -> list[set[int]]:
        found = discover_modes(
            trajectories, DTWCache(), {}, None, replace(two_modes, spread=spread), 1000,
            np.random.default_rng(0),
        )  # fmt: skip
        groups = found.groups.numpy()
        return [set(groups[a:b].tolist()) for a, b in ((0, 8), (8, 15), (15, 21), (21, 26))]

    assert modes(spread=False) == [{1}, {2}, {0}, {0}]  # both slots go to route A
    spread = modes(spread=True)
    assert spread[0] != {0} and spread[3] != {0} and spread[0] != spread[3]
    assert spread[1] == spread[2] == {0}
    # the marked clusters come first, then the farthest from them
    labels = np.array([1, 1, 1, 2, 2, 2, 2, 3, 3, 4, 4])
    points = np.array([0, 0, 0, 2, 2, 2, 2, 4, 4, 9, 9], dtype=np.float64)
    dist = np.abs(points[:, None] - points[None])
    kept = large_clusters(labels, 2, 2, None, dist)
    assert kept.tolist() == [0] * 3 + [1] * 4 + [0] * 2 + [2] * 2
    kept = large_clusters(labels, 2, 2, labels == 4, dist)
    assert kept.tolist() == [1] * 3 + [0] * 4 + [0] * 2 + [2] * 2
    assert DDiffPGConfig(mode_choice="spread").cluster_settings.spread
    with pytest.raises(ValueError, match="mode_choice"):
        DDiffPGConfig(mode_choice="farthest")


def test_seeded_linkage_is_plain_linkage_from_the_seeds_and_never_splits_one() -> None:
    rng = np.random.default_rng(8)
    for _ in range(10):
        centres = rng.normal(0.0, 2.0, (4, 2))
        points = np.concatenate(
            [rng.normal(c, 0.3, (int(rng.integers(3, 20)), 2)) for c in centres]
        )
        dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
        plain = cluster_successes(dist, 1.0, None)
        loose = merge_from_seeds(dist, np.zeros(len(dist), dtype=np.int64), 1.0)
        assert np.array_equal(plain[:, None] == plain[None], loose[:, None] == loose[None])
    # two groups 10 apart: plain linkage keeps them apart, one seed holds them together
    points = np.concatenate([np.zeros((4, 1)), np.full((4, 1), 10.0), np.full((3, 1), 30.0)])
    dist = np.abs(points - points.T)
    assert len(set(cluster_successes(dist, 1.0, None)[:8].tolist())) == 2
    seeded = cluster_successes(dist, 1.0, None, seeds=np.array([7] * 8 + [0] * 3))
    assert seeded.tolist() == [1] * 8 + [2] * 3
    # labels stay 1..K when merges leave gaps among the starting clusters
    points = np.array([[0.0], [0.1], [5.0], [5.1], [5.2], [9.0]])
    seeded = cluster_successes(
        np.abs(points - points.T), 1.0, None, seeds=np.array([0, 0, 2, 0, 0, 0])
    )
    assert seeded.tolist() == [1, 1, 2, 2, 2, 3]


def test_seeded_clustering_keeps_a_mode_whole_when_new_successes_would_split_it() -> None:
    """Round one: mode A holds paths ending at y = -20 and -26, mode B at +20. Round two: 15 new
    paths end at y = -30. Clustered anew, A's -26 half leaves with them for a new mode (a fresh
    embedding); started from the modes, A keeps all its paths and its embedding."""
    rng = np.random.default_rng(3)

    def path(end_y: float) -> np.ndarray:
        line = np.linspace(0.0, 1.0, 30)[:, None] * [20.0, end_y]
        return line + 0.05 * rng.standard_normal(line.shape)

    first = [path(y) for y in (-20.0, -26.0) for _ in range(5)] + [path(20.0) for _ in range(5)]
    settings = ClusterSettings(threshold=20.0, min_mode_size=5)
    round_one = discover_modes(
        stored(first, [1] * 15), DTWCache(), {}, None, settings, 1000, np.random.default_rng(0)
    )
    assert round_one.plan.mode_ids == [0, 1, 2] and len(set(round_one.groups[:10].tolist())) == 1
    trajectories = stored(first + [path(-30.0) for _ in range(15)], [1] * 30)

    def round_two(seeded: bool):
        return discover_modes(
            trajectories, DTWCache(), round_one.success_labels, round_one.plan.mode_ids,
            replace(settings, seeded=seeded), 1000, np.random.default_rng(0),
        )  # fmt: skip

    anew = round_two(seeded=False)
    assert len(set(anew.groups[:10].tolist())) == 2 and any(anew.plan.fresh_embedding)
    kept = round_two(seeded=True)
    assert len(set(kept.groups[:10].tolist())) == 1
    assert kept.plan.mode_ids == [0, 1, 2] and not any(kept.plan.fresh_embedding)


def crossing_path(side: float, swing: float, rng: np.random.Generator) -> np.ndarray:
    """A path from (-1, 0) to a goal at (0.3, 0) behind the plane x = 0: it swings out to
    y = `swing` on the way, then passes the plane at y = 0.1 x `side` (its route)."""
    corners = np.array(
        [[-1.0, 0.0], [-0.6, swing], [-0.1, 0.1 * side], [0.1, 0.1 * side], [0.3, 0.0]]
    )
    arc = np.linspace(0.0, 4.0, 41)
    points = np.stack([np.interp(arc, np.arange(5), corners[:, k]) for k in range(2)], axis=1)
    return points + 0.005 * rng.standard_normal(points.shape)


def test_a_region_clusters_paths_by_where_they_cross_not_by_how_they_swing() -> None:
    rng = np.random.default_rng(8)
    sides = np.array([1.0, -1.0] * 6)
    paths = [crossing_path(side, rng.uniform(-0.6, 0.6), rng) for side in sides]
    paths.append(crossing_path(1.0, 0.3, rng)[:15])  # failures: they stop before the plane
    paths.append(crossing_path(-1.0, -0.3, rng)[:15])
    trajectories = stored(paths, [1] * 12 + [0, 0])

    def found(region):
        rng = np.random.default_rng(0)
        settings = ClusterSettings(0.2, resample_len=5, min_mode_size=2, region=region)
        return discover_modes(trajectories, DTWCache(), {}, None, settings, 100, rng)

    clipped = found(([-0.1, -np.inf], [0.1, np.inf]))
    groups = clipped.groups.numpy()
    assert clipped.plan.mode_ids == [0, 1, 2]
    assert len(set(groups[:12][sides > 0])) == 1 and len(set(groups[:12][sides < 0])) == 1
    assert groups[0] != groups[1] and set(groups[12:]) <= {1, 2}
    whole = found(None).groups.numpy()[:12]  # whole paths: the swings split and mix the routes
    assert not (len(set(whole[sides > 0])) == 1 and len(set(whole[sides < 0])) == 1)


def test_a_region_must_have_one_bound_per_mode_feature() -> None:
    with pytest.raises(ValueError, match="mode_region_low and mode_region_high"):
        DDiffPGConfig(mode_region_low=[0.0, 0.0], mode_region_high=None)
    with pytest.raises(ValueError, match="low < high"):
        DDiffPGConfig(mode_region_low=[0.0, 1.0], mode_region_high=[1.0, 0.5])
    cfg = DDiffPGConfig(
        actor_hidden=[8], critic_hidden=[8], novelty_hidden=[8], batch_size=16, memory_size=4,
        mode_region_low=[0.0, 0.0, 0.0], mode_region_high=[1.0, 1.0, 1.0],
    )  # fmt: skip
    with pytest.raises(ValueError, match="3 bounds but the task has 2 mode features"):
        make_agent(cfg, EnvSpec(2, 1, 2, 4, 2, 10.0), "cpu", seed=0)
