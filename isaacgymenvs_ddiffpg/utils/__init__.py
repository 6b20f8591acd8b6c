"""Shared utilities: error types, seeding and phase timing."""
