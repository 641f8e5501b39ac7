"""Exception root of the service and the geographic errors.

Domain errors know nothing of HTTP; ``api/errors.py`` maps them to status codes.
"""


class DoorstepError(Exception):
    """Root of every error raised on purpose by Doorstep Jobs."""


class InvalidCoordinateError(DoorstepError, ValueError):
    """A coordinate is NaN, infinite, out of range, (0, 0), swapped or outside Xi'an.

    ``rule`` is the code of the broken rule and ``rule_params`` the values its
    zh-CN message needs (see :mod:`geo.anchor_rules`).
    """

    def __init__(
        self,
        message: str,
        field: str = "location",
        *,
        rule: str = "invalid_coordinate",
        rule_params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.rule_params = rule_params or {}


class UnknownCoordSysError(DoorstepError, ValueError):
    """A coordinate system name other than ``wgs84``, ``gcj02`` or ``bd09``."""

    def __init__(self, message: str, field: str = "coord_sys", *, value: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.rule = "unknown_coord_sys"
        self.rule_params: dict[str, object] = {"value": value}


class DataSourceError(DoorstepError, OSError):
    """A file in the data folder is missing or does not have the documented shape."""
