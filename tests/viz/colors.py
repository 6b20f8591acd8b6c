"""Pixel counting for rendered frames and screenshots: which share shows a material's colour."""

import mujoco
import numpy as np
from PIL import Image


def material_rgb(model: mujoco.MjModel, name: str) -> tuple[float, float, float]:
    """RGB in [0, 1] of a material of the model (e.g. the maze's `wall`, 0.7 0.5 0.3)."""
    r, g, b, _ = model.mat_rgba[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MATERIAL, name)]
    return float(r), float(g), float(b)


def hue_share(frame: np.ndarray, rgb: tuple[float, float, float], hue_tol: float = 15.0) -> float:
    """Share of the (H, W, 3) uint8 frame's pixels whose hue is within `hue_tol` degrees of
    `rgb`'s, with some saturation and light (shading changes brightness and saturation, not
    hue)."""
    hsv = np.asarray(Image.fromarray(frame).convert("HSV")).astype(float) / 255.0
    (target,) = (
        np.asarray(Image.new("RGB", (1, 1), tuple(round(255 * c) for c in rgb)).convert("HSV"))
        .reshape(-1, 3)
        .astype(float)
        / 255.0
    )
    gap = np.abs(hsv[..., 0] - target[0]) * 360.0
    gap = np.minimum(gap, 360.0 - gap)
    return float(((gap < hue_tol) & (hsv[..., 1] > 0.25) & (hsv[..., 2] > 0.35)).mean())


def wall_share(frame: np.ndarray) -> float:
    """Share of a PointMaze frame showing the wall material (rgba 0.7 0.5 0.3 in point.xml)."""
    return hue_share(frame, (0.7, 0.5, 0.3))


def panel_share(frame: np.ndarray) -> float:
    """Share of dark grey pixels, the colour of MuJoCo's UI panels (none in a maze scene)."""
    hsv = np.asarray(Image.fromarray(frame).convert("HSV")).astype(float) / 255.0
    return float(((hsv[..., 1] < 0.15) & (hsv[..., 2] < 0.35)).mean())
