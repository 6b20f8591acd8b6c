"""Opens the viewer on PointMazeV1 under the X display in $DISPLAY, plays mode 2 for a few
steps, and writes a screenshot of the screen (`python -m tests.viz.viewer_screenshot OUT.png`).

Run in its own process by `test_viewer_screen.py`: GLFW keeps the display open until exit.
"""

import json
import os
import sys
import time

import torch
from PIL import ImageGrab

from isaacgymenvs_ddiffpg.rlgames import RlGamesVecEnv
from isaacgymenvs_ddiffpg.tasks import make_task
from isaacgymenvs_ddiffpg.viz.viewer import EnvViewer, play_in_viewer

STEPS = 10


class Left:
    """Moves every env left at half speed, whatever the mode."""

    def act(self, obs, mode_embedding, noise_std=None):
        return torch.tensor([[-0.5, 0.0]]).expand(obs.shape[0], -1)


def main(out: str) -> None:
    started = time.perf_counter()
    env = RlGamesVecEnv(make_task("PointMazeV1", num_envs=2, seed=0))
    viewer = EnvViewer.open(env.task, 0)
    assert viewer is not None, "no display"
    opened = time.perf_counter()
    embeddings = {0: torch.zeros(2), 1: torch.ones(2), 2: -torch.ones(2)}
    steps = play_in_viewer(viewer, Left(), env, [1, 2], embeddings.__getitem__, 2, STEPS)
    time.sleep(1.0)  # the render thread draws the last synced state
    ImageGrab.grab(xdisplay=os.environ["DISPLAY"]).save(out)
    viewport = viewer.handle.viewport
    report = {
        "steps": steps,
        "label": viewer.label,
        "viewport": [viewport.left, viewport.bottom, viewport.width, viewport.height],
        "open_s": opened - started,
        "total_s": time.perf_counter() - started,
    }
    print(json.dumps(report))
    viewer.close()


if __name__ == "__main__":
    main(sys.argv[1])
