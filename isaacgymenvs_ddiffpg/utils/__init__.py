"""Shared utilities: errors, seeding, logging helpers."""
