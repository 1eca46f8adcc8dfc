"""Errors a user can cause. Each carries a one-line message that names the file and the fix;
the CLI prints it and exits non-zero, the dashboard shows it on the page."""


class ColorizationError(Exception):
    """Base class of every user-facing error of the project."""


class ImageError(ColorizationError):
    """An input image that cannot be used (not an image, truncated, empty, too large)."""

    def __init__(self, name, reason: str):
        self.name = str(name)
        self.reason = reason
        super().__init__(f"{self.name}: {reason}")


class CheckpointError(ColorizationError):
    """A checkpoint that is missing, corrupt or made for another model."""


class WeightsUnavailable(ColorizationError):
    """Pretrained weights that cannot be found; the message says how to get them."""


class BackendUnavailable(ColorizationError):
    """A method that cannot run here (missing checkpoint, weights or optional dependency)."""


class ReferenceRequired(ColorizationError):
    """A method that needs a colour reference photo was given none and could not pick one."""
