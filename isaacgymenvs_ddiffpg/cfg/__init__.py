"""Packaged hydra configs."""
