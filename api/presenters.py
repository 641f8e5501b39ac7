"""Turn store and matching frames into response bodies, in the requested language and coord_sys."""

import json
import math
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely

from api.schemas import Job, Point, SeekerDetail, SeekerSummary
from api.security.masking import generalise_home
from geo.anchor_states import ANCHOR_STATE_LABELS_ZH, AnchorState
from geo.crs import CoordSys, from_wgs84, from_wgs84_arrays
from geo.location import PRECISION_LABELS_ZH, Precision
from geo.regions import Regions
from matching.education import EDUCATION_LABELS_ZH, EducationLevel
from matching.recommend import Recommender
from store.anchor_map import MapLabels

GROUP_LABELS = {
    "zh": {
        "graduate": "高校毕业生",
        "talent": "高层次人才",
        "assistance": "就业援助对象",
        "general": "一般求职者",
    },
    "en": {
        "graduate": "graduate",
        "talent": "high-level talent",
        "assistance": "assistance target",
        "general": "general",
    },
}

PRECISION_LABELS_EN = {
    Precision.EXACT: "exact",
    Precision.POI: "map POI",
    Precision.BUILDING: "building or park",
    Precision.BUSINESS_AREA: "approx. business area",
    Precision.ZONE: "approx. development zone",
    Precision.DISTRICT: "approx. district",
    Precision.CITY: "somewhere in Xi'an",
}

EDUCATION_LABELS_EN = {
    EducationLevel.ANY: "any",
    EducationLevel.JUNIOR_HIGH: "junior high or below",
    EducationLevel.SENIOR_HIGH: "senior high / vocational",
    EducationLevel.COLLEGE: "college (dazhuan)",
    EducationLevel.BACHELOR: "bachelor",
    EducationLevel.MASTER: "master",
    EducationLevel.DOCTOR: "doctorate",
}


def precision_label(precision: str, lang: str) -> str:
    """Return the display label of a precision level."""
    level = Precision(precision)
    return PRECISION_LABELS_ZH[level] if lang == "zh" else PRECISION_LABELS_EN[level]


STATE_LABELS_EN = {
    AnchorState.DRAFT: "draft",
    AnchorState.PENDING_REVIEW: "pending review",
    AnchorState.VERIFIED: "verified",
    AnchorState.RETIRED: "retired",
    AnchorState.REJECTED: "rejected",
}


def state_label(state: str, lang: str) -> str:
    """Return the display label of an anchor curation state."""
    level = AnchorState(state)
    return ANCHOR_STATE_LABELS_ZH[level] if lang == "zh" else STATE_LABELS_EN[level]


def jobs(
    frame: pd.DataFrame, coord_sys: CoordSys, recommender: Recommender, lang: str
) -> list[Job]:
    """Convert ranked or nearby postings to :class:`Job` bodies."""
    return [_job(row, coord_sys, recommender, lang) for _, row in frame.iterrows()]


def _job(row: pd.Series, coord_sys: CoordSys, recommender: Recommender, lang: str) -> Job:
    lon, lat = from_wgs84(float(row["lon"]), float(row["lat"]), coord_sys)
    precision = str(row["precision"])
    return Job(
        posting_id=str(row["posting_id"]),
        title=str(row["title"]),
        company=str(row["company"]),
        salary_text=_salary_text(row, lang),
        salary_min_month=_number(row.get("salary_min_month")),
        salary_max_month=_number(row.get("salary_max_month")),
        distance_m=_number(row.get("distance_m")) if precision != Precision.CITY else None,
        estimated_commute_min=_number(row.get("estimated_commute_min")),
        commute_mode=_text(row.get("commute_mode")) or None,
        itinerary=_text(row.get("itinerary")) or None,
        precision=precision,
        precision_label=precision_label(precision, lang),
        approximate=Precision(precision).is_approximate,
        location_label=_text(row.get("location_label")),
        district_name=recommender.district_name(row.get("district_code")),
        lon=lon,
        lat=lat,
        score=_number(row.get("score")),
        reasons=list(row.get("reasons") or []),
        reason_keys=_list(row.get("reason_keys")),
        reason_source=_text(row.get("reason_source")) or None,  # type: ignore[arg-type]
        published_on=_text(row.get("published_on")) or None,
    )


def seeker_summary(
    row: pd.Series, recommender: Recommender, regions: Regions, lang: str
) -> SeekerSummary:
    """Convert a seeker row to the list body, which carries no personal field."""
    return SeekerSummary(**_seeker_fields(row, recommender, regions, lang))


def seeker_detail(
    row: pd.Series, coord_sys: CoordSys, recommender: Recommender, regions: Regions, lang: str
) -> SeekerDetail:
    """Convert a seeker row to the detail body with the home area's point in ``coord_sys``.

    The point is the stored street office point, never the exact home that matching
    decrypted into ``home_lon``/``home_lat``.
    """
    area_lon = row.get("home_area_lon", row["home_lon"])
    area_lat = row.get("home_area_lat", row["home_lat"])
    lon, lat = from_wgs84(float(area_lon), float(area_lat), coord_sys)
    return SeekerDetail(
        **_seeker_fields(row, recommender, regions, lang),
        home=Point(lon=lon, lat=lat),
        salary_wish_min=_number(row.get("salary_wish_min")),
        salary_wish_max=_number(row.get("salary_wish_max")),
    )


def _seeker_fields(
    row: pd.Series, recommender: Recommender, regions: Regions, lang: str
) -> dict[str, Any]:
    education = EducationLevel(int(row["education"]))
    education_labels = EDUCATION_LABELS_ZH if lang == "zh" else EDUCATION_LABELS_EN
    return {
        "seeker_id": str(row["seeker_id"]),
        "group": str(row["group"]),
        "group_label": GROUP_LABELS[lang][str(row["group"])],
        "education_label": education_labels[education],
        "occupation_wish_name": _text(row.get("occupation_wish_name")),
        "home_label": _home_area_label(row, regions),
        "district_name": recommender.district_name(row.get("home_district_code")),
        "max_commute_min": int(row["max_commute_min"]),
        "simulated": bool(row["simulated"]),
    }


def _home_area_label(row: pd.Series, regions: Regions) -> str:
    """Return the home's district, street and community names, never the compound name."""
    code = _text(row.get("home_community_code"))
    area = generalise_home(code, regions) if code else None
    return "" if area is None else area.label()


def map_labels(recommender: Recommender, lang: str) -> MapLabels:
    """Return the labels that the map's anchor features carry in ``lang``."""
    return MapLabels(
        precision_labels={level.value: precision_label(level.value, lang) for level in Precision},
        approximate={level.value: level.is_approximate for level in Precision},
        district_names=dict(recommender.district_names),
    )


def anchor_map_in(text: str | bytes, coord_sys: CoordSys) -> dict[str, Any]:
    """Return the map's GeoJSON body (WGS84) with every point and cluster bbox in ``coord_sys``.

    The conversion runs once over all coordinates as arrays.
    """
    body: dict[str, Any] = json.loads(text)
    features = body["features"]
    corners = [f["properties"]["bbox"] for f in features if "bbox" in f["properties"]]
    points = [f["geometry"]["coordinates"] for f in features]
    points += [corner[:2] for corner in corners] + [corner[2:] for corner in corners]
    if not points:
        return body
    lons, lats = from_wgs84_arrays(
        np.array([p[0] for p in points], dtype=np.float64),
        np.array([p[1] for p in points], dtype=np.float64),
        coord_sys,
    )
    converted = list(zip(lons.tolist(), lats.tolist(), strict=True))
    for feature, (lon, lat) in zip(features, converted, strict=False):
        feature["geometry"]["coordinates"] = [lon, lat]
    low = converted[len(features) : len(features) + len(corners)]
    high = converted[len(features) + len(corners) :]
    clusters = (f for f in features if "bbox" in f["properties"])
    for feature, (x0, y0), (x1, y1) in zip(clusters, low, high, strict=True):
        feature["properties"]["bbox"] = [x0, y0, x1, y1]
    return body


def versions() -> dict[str, str]:
    """Return the versions of GEOS, PROJ and the main libraries."""
    found = {
        "geos": shapely.geos_version_string,
        "proj": pyproj.proj_version_str,
    }
    for package in ("doorstep-jobs", "fastapi", "geopandas", "shapely", "lightgbm", "pandas"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _salary_text(row: pd.Series, lang: str) -> str:
    """Return the posting's salary text; an empty one means 面议 (negotiable)."""
    text = _text(row.get("salary_text")).strip()
    if text:
        return text
    return "面议" if lang == "zh" else "negotiable"


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _list(value: Any) -> list[str] | None:
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    return None


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)
