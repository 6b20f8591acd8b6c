"""Model files (MJCF) shipped with the package."""

import pathlib

ASSET_DIR = pathlib.Path(__file__).parent


def asset_path(name: str) -> pathlib.Path:
    """Absolute path of the asset file `name` (e.g. "ant.xml")."""
    return ASSET_DIR / name
