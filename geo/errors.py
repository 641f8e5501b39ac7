"""Exception root of the service and the geographic errors.

Domain errors know nothing of HTTP; ``api/errors.py`` maps them to status codes.
"""


class DoorstepError(Exception):
    """Root of every error raised on purpose by Doorstep Jobs."""


# Longest rejected value repeated in an error message, in characters. Clients need to see
# which value failed, not a 5,000-character query parameter echoed back.
MAX_ECHO_CHARS = 40


def clip_echo(value: object) -> str:
    """Return ``str(value)``, cut to :data:`MAX_ECHO_CHARS` with an ellipsis when longer."""
    text = str(value)
    if len(text) <= MAX_ECHO_CHARS:
        return text
    return text[: MAX_ECHO_CHARS - 1] + "…"


class RuleError(DoorstepError):
    """Error of an input field that breaks a named validation rule.

    ``field`` names the input field, ``rule`` is a code of
    :data:`geo.anchor_rules.RULE_MESSAGES_ZH` and ``rule_params`` the values
    its zh-CN message needs.
    """

    def __init__(
        self,
        message: str,
        field: str,
        *,
        rule: str,
        rule_params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule
        self.rule_params: dict[str, object] = {
            name: clip_echo(value) if isinstance(value, str) else value
            for name, value in (rule_params or {}).items()
        }


class InvalidCoordinateError(RuleError, ValueError):
    """A coordinate is NaN, infinite, out of range, (0, 0), swapped or outside Xi'an."""

    def __init__(
        self,
        message: str,
        field: str = "location",
        *,
        rule: str = "invalid_coordinate",
        rule_params: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message, field, rule=rule, rule_params=rule_params)


class UnknownCoordSysError(RuleError, ValueError):
    """A coordinate system name other than ``wgs84``, ``gcj02`` or ``bd09``."""

    def __init__(self, message: str, field: str = "coord_sys", *, value: str = "") -> None:
        super().__init__(message, field, rule="unknown_coord_sys", rule_params={"value": value})


class InvalidTravelModeError(RuleError, ValueError):
    """A travel mode list is empty or names a mode other than walk, bike, transit or drive."""

    def __init__(self, message: str, field: str = "modes", *, rule: str, value: str = "") -> None:
        super().__init__(message, field, rule=rule, rule_params={"value": value})


class DataSourceError(DoorstepError, OSError):
    """A file in the data folder is missing or does not have the documented shape."""
