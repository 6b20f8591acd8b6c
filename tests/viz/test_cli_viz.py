"""`python train.py` with bad video or viewer settings stops at start-up with a one-line error."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("capture_video=True", "camera=top"), "camera='top' is not a camera of this task's model"),
        (("headless=False", "viewer_env=9"), "viewer_env=9 is not an env of this run"),
    ],
)
def test_bad_settings_fail_before_training(tmp_path: Path, overrides: tuple, message: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "task=PointMazeV1", "num_envs=4", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("runs/*/nn"))  # nothing was trained
