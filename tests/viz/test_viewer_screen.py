"""The real viewer under a virtual X display (Xvfb): a screenshot shows the maze's walls, no side
panels, and the mode being played."""

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.viz.colors import panel_share, wall_share

REPO = Path(__file__).resolve().parent.parent.parent
XVFB = ["Xvfb", "-screen", "0", "1024x768x24", "-br", "-nolisten", "tcp"]  # black root window


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    """A fresh X display served by Xvfb (1024 x 768), on the first free display number."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed: apt-get install -y xvfb (.ci/run installs it)")
    read, write = os.pipe()
    server = subprocess.Popen(
        [*XVFB, "-displayfd", str(write)],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as answer:
            number = answer.readline().strip()  # written once the server accepts clients
        assert number, "Xvfb did not start"
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_the_viewer_opens_on_the_maze_without_panels_saying_the_mode(
    xvfb_display: str, tmp_path: Path
) -> None:
    started = time.perf_counter()
    shot = tmp_path / "screen.png"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.viz.viewer_screenshot", str(shot)],
            cwd=REPO,
            env={**os.environ, "DISPLAY": xvfb_display},
            capture_output=True,
            text=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired as stuck:
        pytest.fail(f"the viewer did not close within 90 s: {stuck.stdout!r} {stuck.stderr!r}")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["steps"] == 10 and report["label"] == "mode 2"
    left, bottom, width, height = report["viewport"]
    assert (left, bottom) == (0, 0)  # the scene starts at the window's left edge: no left panel
    screen = np.asarray(Image.open(shot).convert("RGB"))
    window = screen[:height, :width]  # no window manager: the window sits at the top left
    assert not screen[:height, width:].any()  # and the scene fills it: no right panel past it
    assert wall_share(window) > 0.2  # the walls, not a close-up of floor tiles
    strip = width // 5
    assert panel_share(window[:, :strip]) < 0.02 and panel_share(window[:, -strip:]) < 0.02
    label_box = window[:40, :200].astype(int)
    white = (label_box.min(axis=-1) > 200) & (np.ptp(label_box, axis=-1) < 30)
    rest = window[40:].astype(int)
    assert white.sum() > 30  # "mode 2" written at the top left
    assert ((rest.min(axis=-1) > 200) & (np.ptp(rest, axis=-1) < 30)).sum() < white.sum()
    print(f"viewer test: {time.perf_counter() - started:.1f} s, viewer opened in "
          f"{report['open_s']:.1f} s")  # fmt: skip
