"""The errors soravid raises on purpose; the CLI maps each to its exit code in one place."""


class SoravidError(Exception):
    """A failure with a message meant for the user (exit code 1)."""

    exit_code = 1


class BadInputError(SoravidError):
    """Bad input from the user: preset, flag, file or prompt (exit code 2, nothing generated)."""

    exit_code = 2


class VideoReadError(BadInputError):
    """A video file that cannot be read: missing, not a video, truncated, no frames."""


class GenerationError(SoravidError):
    """Something went wrong while generating (exit code 1)."""
