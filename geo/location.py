"""Located points with their precision and source."""

from dataclasses import dataclass
from enum import StrEnum


class Precision(StrEnum):
    """Precision of a location, from best to worst.

    ``exact`` is a surveyed or staff-verified pin, ``poi`` a named map POI of the
    employer itself, ``building`` an office building or park, ``business_area`` a
    named commercial area (商圈), ``zone`` a development zone, ``district`` a
    district or county, ``city`` only "西安".
    """

    EXACT = "exact"
    POI = "poi"
    BUILDING = "building"
    BUSINESS_AREA = "business_area"
    ZONE = "zone"
    DISTRICT = "district"
    CITY = "city"

    @property
    def is_approximate(self) -> bool:
        """True when the point stands for an area, so maps and reasons show 约."""
        return self in APPROXIMATE_PRECISIONS

    @property
    def rank(self) -> int:
        """Position from best (0, ``exact``) to worst (6, ``city``)."""
        return list(Precision).index(self)


APPROXIMATE_PRECISIONS = frozenset(
    {Precision.BUSINESS_AREA, Precision.ZONE, Precision.DISTRICT, Precision.CITY}
)

PRECISION_LABELS_ZH: dict[Precision, str] = {
    Precision.EXACT: "精确位置",
    Precision.POI: "地图兴趣点",
    Precision.BUILDING: "楼宇/园区",
    Precision.BUSINESS_AREA: "商圈级估计",
    Precision.ZONE: "开发区级估计",
    Precision.DISTRICT: "区县级估计",
    Precision.CITY: "仅知在西安",
}


@dataclass(frozen=True, slots=True)
class Location:
    """A WGS84 point (EPSG:4326, degrees) with its precision and where it came from.

    ``district_code`` is the 6-digit NBS/adcode of the district containing the
    point (or named by the text), ``None`` when unknown. ``label`` is the
    place name the point stands for, e.g. ``雁塔区`` or ``高新软件园``.
    """

    lon: float
    lat: float
    precision: Precision
    source: str
    label: str
    district_code: str | None = None
