"""User-facing error types: one clear paragraph naming the problem and the fix."""


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type, or malformed."""


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or incompatible with the run."""


class TrainingDivergedError(RuntimeError):
    """Training cannot go on: its updates stay non-finite, or its weights are no longer finite."""


class TrainingInterrupted(Exception):  # noqa: N818  (a stop the user asked for, not an error)
    """A stop signal ended training after a final checkpoint was written.

    Attributes:
        signum: the signal (SIGINT, SIGTERM or SIGUSR2).
        checkpoint: the checkpoint written on the way out.
    """

    def __init__(self, signum: int, checkpoint: str) -> None:
        super().__init__(signum, checkpoint)
        self.signum, self.checkpoint = signum, checkpoint
