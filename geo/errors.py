"""Exception root of the service and the geographic errors.

Domain errors know nothing of HTTP; ``api/errors.py`` maps them to status codes.
"""


class DoorstepError(Exception):
    """Root of every error raised on purpose by Doorstep Jobs."""


class InvalidCoordinateError(DoorstepError, ValueError):
    """A coordinate is NaN, infinite, out of range, (0, 0), swapped or outside Xi'an."""

    def __init__(self, message: str, field: str = "location") -> None:
        super().__init__(message)
        self.field = field


class UnknownCoordSysError(DoorstepError, ValueError):
    """A coordinate system name other than ``wgs84``, ``gcj02`` or ``bd09``."""

    def __init__(self, message: str, field: str = "coord_sys") -> None:
        super().__init__(message)
        self.field = field


class DataSourceError(DoorstepError, OSError):
    """A file in the data folder is missing or does not have the documented shape."""
