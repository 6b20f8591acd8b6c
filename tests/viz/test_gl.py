"""The offscreen OpenGL backend choice: the user's MUJOCO_GL wins, else EGL, else OSMesa."""

import sys
import types

import pytest

from isaacgymenvs_ddiffpg.viz import gl


@pytest.mark.parametrize(
    ("libraries", "expected"),
    [({"EGL", "OSMesa"}, "egl"), ({"OSMesa"}, "osmesa"), (set(), "")],
)
def test_choice_follows_the_installed_libraries(monkeypatch, libraries, expected) -> None:
    monkeypatch.setenv("MUJOCO_GL", "unset below; restored afterwards")
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.delitem(sys.modules, "mujoco", raising=False)  # as before mujoco's first import
    monkeypatch.setattr(gl.platform, "system", lambda: "Linux")
    monkeypatch.setattr(
        gl.ctypes.util, "find_library", lambda name: name if name in libraries else None
    )
    assert gl.choose_offscreen_gl() == expected
    assert (gl.os.environ.get("MUJOCO_GL") or "") == expected


def test_a_set_value_or_an_imported_mujoco_is_left_alone(monkeypatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    assert gl.choose_offscreen_gl() == "osmesa"
    monkeypatch.delenv("MUJOCO_GL")
    monkeypatch.setitem(sys.modules, "mujoco", types.ModuleType("mujoco"))  # already imported
    assert gl.choose_offscreen_gl() == ""
