"""Tests of the batched torch DTW against a plain implementation, and of route clustering."""

import numpy as np
import pytest
import torch

from isaacgymenvs_ddiffpg.learning.dtw import (
    DTWCache,
    clip_to_region,
    dtw_distance_matrix,
    dtw_reference,
    mode_paths,
    resample_paths,
)
from isaacgymenvs_ddiffpg.learning.modes import cluster_successes


def maze_path(side: float, num_points: int, rng: np.random.Generator, noise: float = 0.1):
    """AntMaze-v1-like xy path from (0, 0) to (-8, 0) around the wall cell at (-4, 0)."""
    corners = np.array([[0.0, 0.0], [0.0, 4.0 * side], [-8.0, 4.0 * side], [-8.0, 0.0]])
    arc = np.linspace(0.0, 16.0, num_points)
    points = np.stack([np.interp(arc, [0, 4, 12, 16], corners[:, k]) for k in range(2)], axis=1)
    return points + noise * rng.standard_normal(points.shape)


def pad(paths: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(p) for p in paths])
    out = torch.zeros(len(paths), int(lengths.max()), paths[0].shape[1], dtype=torch.float64)
    for k, path in enumerate(paths):
        out[k, : len(path)] = torch.as_tensor(path)
    return out, lengths


@pytest.mark.parametrize("max_elements", [1 << 25, 64])
def test_torch_dtw_matches_reference_on_different_lengths(max_elements: int) -> None:
    rng = np.random.default_rng(0)
    series = [rng.standard_normal((rng.integers(1, 17), 3)) for _ in range(9)]
    others = [rng.standard_normal((rng.integers(1, 12), 3)) for _ in range(4)]
    paths, lengths = pad(series)
    other = pad(others)
    square = dtw_distance_matrix(paths, lengths, max_elements=max_elements).numpy()
    cross = dtw_distance_matrix(paths, lengths, other=other, max_elements=max_elements).numpy()
    want_square = np.array([[dtw_reference(a, b) for b in series] for a in series])
    want_cross = np.array([[dtw_reference(a, b) for b in others] for a in series])
    np.testing.assert_allclose(square, want_square, atol=1e-5)
    np.testing.assert_allclose(cross, want_cross, atol=1e-5)
    assert square.shape == (9, 9) and cross.shape == (9, 4)


def test_reference_matches_a_hand_computed_value() -> None:
    # a = [0, 1, 2, 3], b = [0, 3]: best path (0,0) (1,0) (2,1) (3,1) with squared costs
    # 0 + 1 + 1 + 0 = 2, so the distance is sqrt(2) (a sum of Euclidean costs would give 2).
    a, b = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([[0.0], [3.0]])
    assert dtw_reference(a, b) == pytest.approx(np.sqrt(2.0))
    got = dtw_distance_matrix(*pad([a]), other=pad([b]))
    assert got.item() == pytest.approx(np.sqrt(2.0))


def test_cache_reuses_known_pairs_and_matches_direct_computation() -> None:
    rng = np.random.default_rng(1)
    paths, lengths = pad([rng.standard_normal((rng.integers(2, 10), 2)) for _ in range(6)])
    cache, ids = DTWCache(), torch.arange(10, 16)
    cache.distances(ids[:4], paths[:4], lengths[:4])
    cache.matrix[0, 1] = cache.matrix[1, 0] = 123.0  # a poisoned entry must be reused
    order = torch.tensor([5, 1, 0, 3])
    got = cache.distances(ids[order], paths[order], lengths[order])
    want = dtw_distance_matrix(paths[order], lengths[order])
    assert got[1, 2] == 123.0
    mask = torch.ones_like(want, dtype=torch.bool)
    mask[1, 2] = mask[2, 1] = False
    torch.testing.assert_close(got[mask], want[mask])
    fresh = cache.distances(ids[order], paths[order], lengths[order], key=7)
    torch.testing.assert_close(fresh, want)


def test_resample_paths_picks_linearly_spaced_indices() -> None:
    paths = torch.arange(10.0).view(1, 10, 1).repeat(2, 1, 1)
    out = resample_paths(paths, torch.tensor([10, 3]), 4)
    assert out[..., 0].tolist() == [[0.0, 3.0, 6.0, 9.0], [0.0, 1.0, 1.0, 2.0]]


def test_clip_to_region_keeps_the_points_inside_in_their_order() -> None:
    x = [[0.0, 1.0, 9.0, 2.0, 1.5], [5.0, 6.0, 1.0, 0.0, 0.0]]
    paths = torch.stack([torch.tensor(x), torch.arange(10.0).view(2, 5)], dim=2)
    lengths = torch.tensor([4, 2])  # the 1.5 and the 1.0 are padding, not path points
    region = ([0.5, -np.inf], [2.5, np.inf])
    kept, count = clip_to_region(paths, lengths, *region)
    assert count.tolist() == [2, 1]
    assert kept[0, :2].tolist() == [[1.0, 1.0], [2.0, 3.0]]
    assert kept[1, :1].tolist() == [[6.0, 6.0]]  # nothing inside: the last point
    assert kept[0, 2:].abs().sum() == 0 and kept[1, 1:].abs().sum() == 0
    resampled, full = mode_paths(paths, lengths, 3, region)
    assert full.tolist() == [3, 3] and resampled[0, :, 0].tolist() == [1.0, 1.0, 2.0]
    assert torch.equal(mode_paths(paths, lengths)[0], paths)


def test_dtw_and_average_linkage_split_routes_above_and_below_the_wall() -> None:
    rng = np.random.default_rng(2)
    sides = [1.0, -1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0]
    paths = pad([maze_path(side, int(rng.integers(150, 250)), rng) for side in sides])
    dist = dtw_distance_matrix(*paths)
    labels = cluster_successes(dist, threshold=50.0)
    assert labels.max() == 2
    above = labels[np.array(sides) > 0]
    below = labels[np.array(sides) < 0]
    assert len(set(above)) == 1 and len(set(below)) == 1 and above[0] != below[0]
    assert np.array_equal(cluster_successes(dist, threshold=None), labels)


def test_near_identical_paths_form_one_cluster() -> None:
    rng = np.random.default_rng(3)
    paths = pad([maze_path(1.0, int(rng.integers(150, 250)), rng, 0.05) for _ in range(6)])
    assert cluster_successes(dtw_distance_matrix(*paths), threshold=50.0).tolist() == [1] * 6


def test_more_than_max_clusters_collapse_into_one() -> None:
    dist = 100.0 * (1.0 - np.eye(12))
    assert cluster_successes(dist, threshold=50.0).tolist() == [1] * 12
    assert cluster_successes(dist, threshold=50.0, max_clusters=12).max() == 12
    assert cluster_successes(np.zeros((1, 1)), threshold=50.0).tolist() == [1]
