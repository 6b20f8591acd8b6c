"""Choose MuJoCo's offscreen OpenGL backend before `mujoco` is first imported.

MuJoCo reads `MUJOCO_GL` once, when it is imported. A value the user set is always kept.
Otherwise, on Linux: EGL when libEGL is installed (an NVIDIA driver's EGL on GPU machines,
Mesa's software EGL on CPU-only machines; faster than OSMesa there: about 90 against 150 ms
for a 320x240 maze frame on one CPU core), else OSMesa when libOSMesa is installed, else
MuJoCo's default (GLFW, which needs a display). The interactive viewer does not use this setting.
"""

from __future__ import annotations

import ctypes.util
import os
import platform
import sys


def choose_offscreen_gl() -> str:
    """Set `MUJOCO_GL` for headless rendering unless it is set; returns the value in force."""
    chosen = os.environ.get("MUJOCO_GL", "")
    if chosen or platform.system() != "Linux":
        return chosen
    if "mujoco" in sys.modules:  # too late to choose: keep what mujoco picked
        return chosen
    for backend, library in (("egl", "EGL"), ("osmesa", "OSMesa")):
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            return backend
    return chosen


choose_offscreen_gl()
