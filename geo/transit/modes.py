"""Travel mode names shared by the transit model and candidate retrieval."""

from collections.abc import Iterable

from geo.errors import InvalidTravelModeError

TRAVEL_MODES: tuple[str, ...] = ("walk", "bike", "transit", "drive")
"""Every travel mode, in the order used to break ties between equally fast modes."""


def parse_travel_modes(modes: str | Iterable[str]) -> tuple[str, ...]:
    """Parse travel modes given as ``"walk;transit"`` or a list, in `TRAVEL_MODES` order.

    Parameters
    ----------
    modes
        Mode names separated by ``;``, or an iterable of names. Case and surrounding
        spaces are ignored, and repeats are dropped.

    Returns
    -------
    tuple of str
        The distinct modes, ordered as in `TRAVEL_MODES`.

    Raises
    ------
    InvalidTravelModeError
        With field ``modes`` when no mode is given or a name is not in `TRAVEL_MODES`.
    """
    items = modes.split(";") if isinstance(modes, str) else [str(item) for item in modes]
    cleaned = {item.strip().lower() for item in items if item.strip()}
    if not cleaned:
        raise InvalidTravelModeError(
            f"modes {modes!r} is empty; expected one or more of {', '.join(TRAVEL_MODES)}",
            rule="no_travel_mode",
        )

    unknown = sorted(cleaned - set(TRAVEL_MODES))
    if unknown:
        raise InvalidTravelModeError(
            f"modes: {unknown[0]!r} is not a travel mode; expected one of "
            f"{', '.join(TRAVEL_MODES)}",
            rule="unknown_travel_mode",
            value=unknown[0],
        )
    return tuple(mode for mode in TRAVEL_MODES if mode in cleaned)
