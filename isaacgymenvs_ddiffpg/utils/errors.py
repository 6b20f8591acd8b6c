"""User-facing error types: one clear paragraph naming the problem and the fix."""


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type, or malformed."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or incompatible with the run."""
