"""Episode videos: offscreen MuJoCo frames of one env, written as mp4 and to tensorboard."""

from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import mujoco
import numpy as np
from torch import Tensor

from isaacgymenvs_ddiffpg.utils.errors import ConfigError

FREE_CAMERA = "free"


@dataclass
class VideoConfig:
    """What to record and how.

    Attributes:
        capture: record videos (`capture_video`).
        freq: while training, iterations between recorded evaluation episodes.
        camera: a camera of the task's model; every task has `overview` (the whole maze or
            workspace); `free` is MuJoCo's default free camera.
        width: frame width in pixels (at most the model's offscreen buffer, 640 by default).
        height: frame height in pixels (at most 480 by default).
        shadow_size: cap on the model's shadow-map size: a 4096-pixel map costs more than the
            frame itself in software rendering; 1024 looks the same from the overview cameras.
    """

    capture: bool = False
    freq: int = 500
    camera: str = "overview"
    width: int = 480
    height: int = 480
    shadow_size: int = 1024


def resolve_camera(model: mujoco.MjModel, camera: str) -> str | int:
    """The `camera` argument of `mujoco.Renderer.update_scene` for a camera name.

    Raises:
        ConfigError: the model has no camera of that name (the message lists the ones it has).
    """
    if camera == FREE_CAMERA:
        return -1
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
    if camera not in names:
        choices = ", ".join(repr(n) for n in [*names, FREE_CAMERA] if n)
        raise ConfigError(
            f"camera={camera!r} is not a camera of this task's model. Cameras it has: "
            f"{choices}. Pass one of them, e.g. camera=overview (the whole maze or workspace)."
        )
    return camera


def render_frame(task: Any, env_id: int, config: VideoConfig) -> np.ndarray:
    """One RGB frame (height, width, 3) uint8 of env `env_id` of a `VecTask`.

    Raises:
        RuntimeError: no offscreen OpenGL context could be created (says how to fix it).
    """
    camera = resolve_camera(task.model, config.camera)
    quality = task.model.vis.quality  # visual-only; read when the renderer is first created
    quality.shadowsize = min(int(quality.shadowsize), config.shadow_size)
    try:
        return task.render(env_id, width=config.width, height=config.height, camera=camera)
    except Exception as err:  # MuJoCo reports a missing GL backend with several error types
        if "framebuffer" in str(err):
            raise ConfigError(f"Video size {config.width}x{config.height}: {err}") from None
        backend = os.environ.get("MUJOCO_GL", "(unset)")
        raise RuntimeError(
            f"Offscreen rendering failed with MUJOCO_GL={backend}: {err}. On a machine without "
            f"a display, install EGL (apt-get install libegl1 libgl1-mesa-dri) or OSMesa "
            f"(apt-get install libosmesa6) and set MUJOCO_GL=egl or MUJOCO_GL=osmesa before "
            f"starting Python."
        ) from err


def mode_label(mode: int, replan: bool = False) -> str:
    """What a video or the viewer says is being played: "mode 2", "z = 0 (the policy picks)"."""
    name = "z = 0 (the policy picks)" if mode == 0 else f"mode {mode}"
    return f"{name}, replanning" if replan else name


def draw_label(frame: np.ndarray, text: str) -> np.ndarray:
    """Write `text` in white on a dark box in the top-left corner of a frame.

    Args:
        frame: (height, width, 3) uint8 picture.
        text: the label (one line).

    Returns:
        A (height, width, 3) uint8 copy with the label.
    """
    from PIL import Image, ImageDraw

    height = frame.shape[0]
    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = _font(max(9, height // 30))
    pad = max(2, height // 120)
    left, top, right, bottom = draw.textbbox((2 * pad, 2 * pad), text, font=font)
    draw.rectangle((pad, pad, right + pad, bottom + pad), fill=(20, 20, 20))
    draw.text((2 * pad, 2 * pad), text, fill=(255, 255, 255), font=font)
    return np.asarray(image)


@functools.cache
def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


class EpisodeRecorder:
    """Collects the frames of env `env_id` while its first episode runs (a `run_episodes` hook),
    each with a label of what is played and the episode's step.

    Args:
        task: the `VecTask` being played (its env `env_id` is rendered).
        env_id: which env to film.
        config: camera and frame size.
        label: what is played, e.g. `mode_label(2)` ("mode 2"); None: "env <env_id>".
    """

    def __init__(
        self, task: Any, env_id: int, config: VideoConfig, label: str | None = None
    ) -> None:
        if not 0 <= env_id < task.num_envs:
            raise ConfigError(
                f"Cannot film env {env_id}: the task has envs 0..{task.num_envs - 1}."
            )
        self.task, self.env_id, self.config = task, env_id, config
        self.label = label if label is not None else f"env {env_id}"
        self.fps = max(1, round(1.0 / float(task.dt)))
        self.frames: list[np.ndarray] = []

    def __call__(self, step: int, finished: Tensor) -> None:
        """Add a frame (step 0: the reset state) while the filmed env's episode runs."""
        if step == 0:
            self.frames = []
        if not bool(finished[self.env_id]):
            frame = render_frame(self.task, self.env_id, self.config)
            self.frames.append(draw_label(frame, f"{self.label} | step {step}"))

    def write(self, path: Path) -> Path:
        """Write the frames as an H.264 mp4 at the task's real-time rate."""
        return write_mp4(self.frames, path, self.fps)

    def add_to_tensorboard(self, writer: Any, tag: str, step: int) -> None:
        """Log the episode as an animated image (the tensorboard video format)."""
        add_video(writer, tag, self.frames, self.fps, step)


def write_mp4(frames: list[np.ndarray], path: Path, fps: int) -> Path:
    """Encode (height, width, 3) uint8 frames to an mp4 (H.264 through imageio-ffmpeg)."""
    if not frames:
        raise ValueError("write_mp4: no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as out:
        for frame in frames:
            out.append_data(frame)  # pyright: ignore[reportAttributeAccessIssue]
    return path


def add_video(writer: Any, tag: str, frames: list[np.ndarray], fps: int, step: int) -> None:
    """Add frames to a `SummaryWriter` as an animated GIF image, which tensorboard plays.

    (torch's `add_video` needs moviepy; this writes the same summary with Pillow.)
    """
    from PIL import Image
    from tensorboard.compat.proto.summary_pb2 import Summary

    images = [Image.fromarray(f) for f in frames[:: max(1, len(frames) // 150)]]
    buffer = io.BytesIO()
    images[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=max(20, round(1000 * len(frames) / (fps * len(images)))),
        loop=0,
    )
    height, width = frames[0].shape[:2]
    image = Summary.Image(
        height=height, width=width, colorspace=3, encoded_image_string=buffer.getvalue()
    )
    summary = Summary(value=[Summary.Value(tag=tag, image=image)])
    writer._get_file_writer().add_summary(summary, step)  # as SummaryWriter.add_video does
