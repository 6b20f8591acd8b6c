"""Seeing the modes: episode videos, the mode atlas, the interactive viewer."""
