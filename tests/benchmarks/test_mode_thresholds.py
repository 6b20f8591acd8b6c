"""benchmarks/mode_thresholds.py: each Franka task's configured clustering (region, resampling,
threshold) recovers the modes its scripted controllers play, under action noise."""

import pytest

from tests.benchmarks.test_compare_and_update_cost import load

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["FrankaReach", "FrankaCabinet"])
def test_configured_clustering_recovers_the_scripted_modes(name: str) -> None:
    result = load("mode_thresholds").measure(name, repeats=6, noise_std=0.2, seed=0)
    assert min(result["success_per_mode"]) >= 0.5
    assert result["rand_index_at_configured"] == pytest.approx(1.0)
    spread = max(mode["max"] for mode in result["within"].values())
    assert spread < result["configured_threshold"] < result["between_min_average"]
