"""Batched multivariate dynamic time warping (DTW) in torch, with a pairwise cache."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor


def dtw_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Plain O(T * T') DTW between two multivariate series, for testing.

    Args:
        a: ``(T, D)`` series.
        b: ``(T', D)`` series.

    Returns:
        ``sqrt`` of the smallest sum, over warping paths, of squared Euclidean distances
        between matched points (the quantity `dtw_distance_matrix` computes).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    acc = np.full((len(a) + 1, len(b) + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = float(np.sum((a[i - 1] - b[j - 1]) ** 2))
            acc[i, j] = cost + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return float(np.sqrt(acc[-1, -1]))


def _dtw_pairs(left: Tensor, left_len: Tensor, right: Tensor, right_len: Tensor) -> Tensor:
    """DTW of ``P`` aligned pairs by an anti-diagonal wavefront.

    Args:
        left: ``(P, Ta, D)`` zero-padded series.
        left_len: ``(P,)`` valid lengths (>= 1).
        right: ``(P, Tb, D)`` zero-padded series.
        right_len: ``(P,)`` valid lengths (>= 1).

    Returns:
        ``(P,)`` DTW distances.
    """
    num_pairs, len_a, _ = left.shape
    len_b = right.shape[1]
    # Pairs are the last (contiguous) axis. acc[k % 3, i] holds the accumulated cost of cell
    # (i, k - i) of anti-diagonal k, row 0 being the border; the three rotating buffers hold
    # diagonals k - 2, k - 1 and k. Only cells inside the (len_a x len_b) grid are computed;
    # the border cells that later diagonals read are kept at inf.
    inf = float("inf")
    acc = left.new_full((3, len_a + 1, num_pairs), inf)
    acc[0, 0] = 0.0
    left_t = left.permute(2, 1, 0).contiguous()
    right_rev = right.flip(1).permute(2, 1, 0).contiguous()
    result = left.new_full((num_pairs,), inf)
    end_diag = left_len + right_len
    pair = torch.arange(num_pairs, device=left.device)
    best = torch.empty_like(acc[0])
    cost = torch.empty_like(acc[0])
    for diag in range(2, int(end_diag.max()) + 1):
        prev2, prev1, current = acc[(diag - 2) % 3], acc[(diag - 1) % 3], acc[diag % 3]
        lo, hi = max(1, diag - len_b), min(len_a, diag - 1)
        # cells (i, diag - i), i in [lo, hi], pair left[i - 1] with right[diag - i - 1].
        offset = len_b - diag
        span_cost, span_best = cost[: hi - lo + 1], best[: hi - lo + 1]
        for dim in range(left_t.shape[0]):
            torch.sub(
                left_t[dim, lo - 1 : hi],
                right_rev[dim, offset + lo : offset + hi + 1],
                out=span_best,
            )
            if dim == 0:
                torch.mul(span_best, span_best, out=span_cost)
            else:
                span_cost.addcmul_(span_best, span_best)
        torch.minimum(prev2[lo - 1 : hi], prev1[lo - 1 : hi], out=span_best)
        torch.minimum(span_best, prev1[lo : hi + 1], out=span_best)
        torch.add(span_cost, span_best, out=current[lo : hi + 1])
        current[0] = inf
        if hi + 1 <= len_a:
            current[hi + 1] = inf
        result = torch.where(end_diag == diag, current[left_len, pair], result)
    return result.sqrt()


def dtw_distance_matrix(
    paths: Tensor,
    lengths: Tensor,
    other: tuple[Tensor, Tensor] | None = None,
    max_elements: int = 1 << 25,
) -> Tensor:
    """Pairwise multivariate DTW distances, vectorised over pairs and anti-diagonals.

    Computes what ``dtaidistance.dtw_ndim.distance`` computes (no window, no penalty): the
    local cost of matching points ``x_i`` and ``y_j`` is the squared Euclidean distance
    ``||x_i - y_j||^2``, accumulated with ``acc[i, j] = cost + min(acc[i-1, j-1], acc[i-1, j],
    acc[i, j-1])``, and the distance is ``sqrt(acc[T, T'])``, i.e. the square root of the
    smallest sum of squared Euclidean distances along a warping path. The Python loop runs
    over the ``T + T'`` anti-diagonals of each chunk of pairs; padding beyond a series'
    length never influences its result.

    Args:
        paths: ``(n, T, D)`` zero-padded series.
        lengths: ``(n,)`` valid lengths, each >= 1.
        other: optional ``((m, T', D), (m,))`` second set; without it the symmetric
            ``n x n`` matrix of ``paths`` against itself is returned (zero diagonal).
        max_elements: bound on ``pairs * T * D`` per chunk, to cap memory.

    Returns:
        ``(n, m)`` distances on ``paths``' device.
    """
    device = paths.device
    lengths = lengths.to(device, torch.long)
    if other is None:
        first, second = torch.triu_indices(len(paths), len(paths), 1, device=device)
        right_paths, right_lengths = paths, lengths
        out = torch.zeros(len(paths), len(paths), dtype=paths.dtype, device=device)
    else:
        right_paths, right_lengths = other[0].to(device, paths.dtype), other[1].to(device)
        num_left, num_right = len(paths), len(right_paths)
        first = torch.arange(num_left, device=device).repeat_interleave(num_right)
        second = torch.arange(num_right, device=device).repeat(num_left)
        out = torch.zeros(len(paths), len(right_paths), dtype=paths.dtype, device=device)
    if first.numel() == 0:
        return out
    # Pairs of similar total length share a chunk, which keeps the padding small.
    order = torch.argsort(lengths[first] + right_lengths[second])
    first, second = first[order], second[order]
    per_pair = (paths.shape[1] + right_paths.shape[1]) * max(paths.shape[2], 1)
    chunk = max(1, max_elements // per_pair)
    for begin in range(0, len(first), chunk):
        idx_a, idx_b = first[begin : begin + chunk], second[begin : begin + chunk]
        len_a, len_b = lengths[idx_a], right_lengths[idx_b]
        left = paths[idx_a, : int(len_a.max())]
        right = right_paths[idx_b, : int(len_b.max())]
        out[idx_a, idx_b] = _dtw_pairs(left, len_a, right, len_b)
    if other is None:
        out = out + out.T
    return out


def resample_paths(paths: Tensor, lengths: Tensor, target_len: int) -> Tensor:
    """Resamples each series to ``target_len`` points at linearly spaced indices.

    Point ``k`` of series ``i`` is ``paths[i, round(k * (lengths[i] - 1) / (target_len - 1))]``,
    the length normalisation used before DTW for non-maze tasks.

    Args:
        paths: ``(n, T, D)`` zero-padded series.
        lengths: ``(n,)`` valid lengths, each >= 1.
        target_len: number of points after resampling.

    Returns:
        ``(n, target_len, D)`` series.
    """
    lengths = lengths.to(paths.device)
    fraction = torch.linspace(0.0, 1.0, target_len, device=paths.device, dtype=torch.float64)
    index = torch.round(fraction[None, :] * (lengths[:, None] - 1).to(torch.float64)).long()
    return paths.gather(1, index[..., None].expand(-1, -1, paths.shape[2]))


def clip_to_region(
    paths: Tensor, lengths: Tensor, low: Sequence[float], high: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """The points of each series inside the box ``[low, high]``, in their order.

    A task's routes can differ in one part of the space only (the Panda's quadrants of the
    cross, where the path passes its plane); comparing that part alone keeps the swings
    elsewhere from outweighing it. A series with no point inside keeps its last point.

    Args:
        paths: ``(n, T, D)`` zero-padded series.
        lengths: ``(n,)`` valid lengths, each >= 1.
        low: ``D`` lower bounds (``-inf``: unbounded).
        high: ``D`` upper bounds (``inf``: unbounded).

    Returns:
        ``(n, T, D)`` zero-padded series of the kept points and their ``(n,)`` counts (>= 1).
    """
    lengths = lengths.to(paths.device)
    lo = torch.as_tensor(low, dtype=paths.dtype, device=paths.device)
    hi = torch.as_tensor(high, dtype=paths.dtype, device=paths.device)
    steps = torch.arange(paths.shape[1], device=paths.device)
    inside = (steps[None, :] < lengths[:, None]) & ((paths >= lo) & (paths <= hi)).all(dim=2)
    outside = ~inside.any(dim=1)
    inside[outside, lengths[outside] - 1] = True
    order = torch.sort((~inside).to(torch.uint8), dim=1, stable=True).indices
    kept = paths.gather(1, order[..., None].expand(-1, -1, paths.shape[2]))
    count = inside.sum(dim=1)
    return kept * (steps[None, :, None] < count[:, None, None]), count


def mode_paths(
    paths: Tensor,
    lengths: Tensor,
    resample_len: int | None = None,
    region: tuple[Sequence[float], Sequence[float]] | None = None,
) -> tuple[Tensor, Tensor]:
    """The series mode clustering compares: clipped to `region` (`clip_to_region`), then
    resampled to `resample_len` points (`resample_paths`); either step is skipped when None.

    Returns:
        ``(n, T', D)`` zero-padded series and their ``(n,)`` valid lengths.
    """
    lengths = lengths.to(paths.device)
    if region is not None:
        paths, lengths = clip_to_region(paths, lengths, *region)
    if resample_len is not None:
        paths = resample_paths(paths, lengths, resample_len)
        lengths = torch.full_like(lengths, resample_len)
    return paths, lengths


class DTWCache:
    """Pairwise DTW distances cached by trajectory-id pair, so each pair is computed once.

    Distances are kept for the ids of the last call; the next call computes only the rows of
    ids it has not seen (against all ids) and reuses the rest.
    """

    def __init__(self, max_elements: int = 1 << 25) -> None:
        """Creates an empty cache.

        Args:
            max_elements: chunk bound passed to `dtw_distance_matrix`.
        """
        self.max_elements = max_elements
        self.key: object = None
        self.ids = torch.zeros(0, dtype=torch.long)
        self.matrix = torch.zeros(0, 0)

    def clear(self) -> None:
        """Forgets all cached distances (e.g. after the resampling length changed)."""
        self.ids = torch.zeros(0, dtype=torch.long)
        self.matrix = torch.zeros(0, 0)

    def distances(self, ids: Tensor, paths: Tensor, lengths: Tensor, key: object = None) -> Tensor:
        """Returns the DTW matrix of the given trajectories, using and updating the cache.

        Args:
            ids: ``(n,)`` unique trajectory ids.
            paths: ``(n, T, D)`` zero-padded series.
            lengths: ``(n,)`` valid lengths.
            key: what the paths were computed with (e.g. a resampling length); a key different
                from the previous call's clears the cache.

        Returns:
            ``(n, n)`` distances on ``paths``' device, rows/columns in the order of ``ids``.
        """
        if key != self.key:
            self.clear()
            self.key = key
        device = paths.device
        ids_host = ids.detach().cpu().long()
        old_pos = {int(i): k for k, i in enumerate(self.ids.tolist())}
        pos = torch.tensor([old_pos.get(int(i), -1) for i in ids_host], dtype=torch.long)
        known, fresh = torch.nonzero(pos >= 0).flatten(), torch.nonzero(pos < 0).flatten()
        out = torch.zeros(len(ids_host), len(ids_host), dtype=paths.dtype, device=device)
        if known.numel():
            cached = self.matrix[pos[known]][:, pos[known]].to(device, paths.dtype)
            out[known[:, None].to(device), known[None, :].to(device)] = cached
        if fresh.numel():
            fresh_dev = fresh.to(device)
            rows = dtw_distance_matrix(
                paths[fresh_dev],
                lengths[fresh_dev],
                other=(paths, lengths),
                max_elements=self.max_elements,
            )
            out[fresh_dev] = rows
            out[:, fresh_dev] = rows.T
        self.ids, self.matrix = ids_host, out.detach().cpu()
        return out
