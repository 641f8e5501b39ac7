"""Itineraries: the legs of a door-to-door trip and their one-line text in zh-CN or English."""

from dataclasses import dataclass, field, replace
from enum import StrEnum


class LegKind(StrEnum):
    """Kind of a trip leg."""

    WALK = "walk"
    METRO = "metro"
    BUS = "bus"
    TRANSFER = "transfer"
    BIKE = "bike"
    DRIVE = "drive"


@dataclass(frozen=True)
class Leg:
    """One leg of a trip with its minutes.

    A walk leg to or from a metro station includes the time between street and
    platform. A metro or bus leg includes the expected wait (``wait_min``) before
    boarding. ``line`` is the metro line id (``"2"``) or the upstream index of a bus
    line. ``stops`` counts the stations, or the derived bus stops, travelled.
    """

    kind: LegKind
    minutes: float
    line: str | None = None
    line_name_zh: str | None = None
    line_name_en: str | None = None
    from_zh: str | None = None
    to_zh: str | None = None
    from_en: str | None = None
    to_en: str | None = None
    stops: int = 0
    wait_min: float = 0.0
    distance_m: float | None = None


@dataclass(frozen=True)
class Route:
    """A door-to-door trip: total minutes, the travel mode and the legs in order.

    ``minutes`` is the value `TransitNetwork.matrix` returns for the pair. The legs'
    minutes add up to it within rounding.
    """

    minutes: float
    mode: str
    legs: tuple[Leg, ...] = field(default_factory=tuple)

    def text(self, lang: str = "zh") -> str:
        """Describe the trip on one line.

        For example ``步行6分钟 → 地铁2号线 小寨→北大街（5站） → 步行4分钟``.

        Parameters
        ----------
        lang
            ``zh`` (default) or ``en``.

        Raises
        ------
        ValueError
            When ``lang`` is neither.
        """
        if lang not in ("zh", "en"):
            raise ValueError(f"lang {lang!r} is not supported; expected 'zh' or 'en'")
        if lang == "en":
            return " → ".join(_leg_text_en(leg) for leg in self.legs)
        # A full-width bracket carries its own spacing, so no space follows it.
        return " → ".join(_leg_text_zh(leg) for leg in self.legs).replace("） → ", "）→ ")


def merge_walks(legs: list[Leg]) -> tuple[Leg, ...]:
    """Join consecutive walk legs and drop walk legs of zero minutes."""
    merged: list[Leg] = []
    for leg in legs:
        if leg.kind is LegKind.WALK and merged and merged[-1].kind is LegKind.WALK:
            merged[-1] = replace(merged[-1], minutes=merged[-1].minutes + leg.minutes)
        else:
            merged.append(leg)
    return tuple(leg for leg in merged if not (leg.kind is LegKind.WALK and leg.minutes <= 0))


def whole_minutes(minutes: float) -> int:
    """Return ``minutes`` rounded to the nearest whole minute (half to even), at least 1."""
    return max(1, round(minutes))


def _leg_text_zh(leg: Leg) -> str:
    minutes = whole_minutes(leg.minutes)
    if leg.kind is LegKind.METRO:
        return f"{leg.line_name_zh} {leg.from_zh}→{leg.to_zh}（{leg.stops}站）"
    if leg.kind is LegKind.BUS:
        return f"公交（线路#{leg.line}，推算{leg.stops}站，{minutes}分钟）"
    labels = {
        LegKind.WALK: "步行",
        LegKind.TRANSFER: "站内换乘",
        LegKind.BIKE: "骑行",
        LegKind.DRIVE: "驾车",
    }
    return f"{labels[leg.kind]}{minutes}分钟"


def _leg_text_en(leg: Leg) -> str:
    minutes = whole_minutes(leg.minutes)
    if leg.kind is LegKind.METRO:
        stops = "stop" if leg.stops == 1 else "stops"
        return f"Metro {leg.line_name_en} {leg.from_en}→{leg.to_en} ({leg.stops} {stops})"
    if leg.kind is LegKind.BUS:
        return f"Bus (line #{leg.line}, {leg.stops} derived stops, {minutes} min)"
    labels = {
        LegKind.WALK: "Walk",
        LegKind.TRANSFER: "Change lines",
        LegKind.BIKE: "Cycle",
        LegKind.DRIVE: "Drive",
    }
    return f"{labels[leg.kind]} {minutes} min"
