"""Figures of the analyst dashboard, computed once and stored as one JSON document.

The service circle takes a few seconds and accessibility needs the transit network,
so `doorstep coverage dashboard` computes both and writes :func:`dashboard_figures`
to a file that the analyst routes read. The document contains plain numbers and
strings only (no NaN), and the gap map as a GeoJSON FeatureCollection in WGS84.
"""

import json
import math
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo.coverage.access import Accessibility, scores_by_group
from geo.coverage.circle import ServiceCircle
from geo.regions import Regions

SCHEMA_VERSION = 1
CITY_CODE = "all"
COORDINATE_DECIMALS = 5
"""Decimals of the gap map's degrees: 1e-5 degrees is about 1 m in Xi'an."""


def dashboard_figures(
    circle: ServiceCircle,
    access: Accessibility,
    regions: Regions,
    *,
    simulated_seekers: bool,
) -> dict[str, Any]:
    """Collect the coverage and accessibility figures of the analyst dashboard.

    Parameters
    ----------
    circle
        The computed 15-minute service circle.
    access
        Accessibility of the stored seekers' home areas (`measure_accessibility`).
    regions
        For district names.
    simulated_seekers
        Whether any seeker behind ``access`` is simulated, which the page shows.

    Returns
    -------
    dict
        ``circle`` (district and street shares), ``access`` (jobs reachable by
        district), ``scores`` (2SFCA by group, per catchment), ``gaps`` (GeoJSON)
        and the inputs' sizes. Shares are 0..1, minutes are minutes.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "simulated_seekers": simulated_seekers,
        "circle": _circle_figures(circle, regions),
        "access": _access_by_district(access, regions),
        "scores": {
            f"{catchment:.0f}": _scores(access, catchment, regions)
            for catchment in access.catchments_min
        },
        "gaps": gap_features(circle),
    }


def _circle_figures(circle: ServiceCircle, regions: Regions) -> dict[str, Any]:
    places = circle.places
    covered = int(places["covered"].sum())
    return {
        "threshold_min": circle.threshold_min,
        "places": len(places),
        "covered": covered,
        "share": covered / len(places) if len(places) else 0.0,
        "stations": len(circle.stations),
        "districts": _records(circle.shares("district", regions)),
        "streets": _records(circle.shares("street", regions)),
    }


def _access_by_district(access: Accessibility, regions: Regions) -> dict[str, Any]:
    """Seeker-weighted mean postings reachable per catchment, by district and for the city."""
    areas = access.areas
    labels = [f"{catchment:.0f}" for catchment in access.catchments_min]
    rows = []
    groups = [*areas.groupby("district_code"), (CITY_CODE, areas)]
    for code, group in groups:
        weights = group["seekers"].to_numpy(np.float64)
        row: dict[str, Any] = {
            "code": str(code),
            "name": _district_name(regions, str(code)),
            "seekers": int(weights.sum()),
        }
        for label in labels:
            values = group[f"jobs_{label}"].to_numpy(np.float64)
            row[f"jobs_{label}"] = float(np.average(values, weights=weights))
        rows.append(row)
    return {
        "catchments_min": list(access.catchments_min),
        "postings_used": access.postings_used,
        "postings_skipped": access.postings_skipped,
        "job_cells": access.job_cells,
        "areas": len(areas),
        "districts": rows,
    }


def _scores(access: Accessibility, catchment: float, regions: Regions) -> list[dict[str, Any]]:
    table = scores_by_group(access, catchment)
    table["name"] = [_district_name(regions, str(code)) for code in table["district_code"]]
    return _records(table)


def gap_features(circle: ServiceCircle) -> dict[str, Any]:
    """Return the service circle's places and stations as a GeoJSON FeatureCollection.

    Places carry ``kind`` "place", ``covered`` and walking ``minutes``; stations carry
    ``kind`` "station". Coordinates are WGS84 longitude, latitude, rounded to
    `COORDINATE_DECIMALS`. Names are plain text for the page to show as text.
    """
    features = []
    places = circle.places
    rows = zip(
        places["name"].astype(str),
        places["lon"].to_numpy(float),
        places["lat"].to_numpy(float),
        places["minutes"].to_numpy(float),
        places["covered"].to_numpy(bool),
        places["district_code"].astype(str),
        strict=True,
    )
    for name, lon, lat, minutes, covered, district in rows:
        properties = {
            "kind": "place",
            "name": name,
            "minutes": round(float(minutes), 1) if math.isfinite(minutes) else None,
            "covered": bool(covered),
            "district_code": district,
        }
        features.append(_point(lon, lat, properties))
    stations = circle.stations
    for name, lon, lat in zip(
        stations["name"].astype(str), stations["lon"], stations["lat"], strict=True
    ):
        features.append(_point(float(lon), float(lat), {"kind": "station", "name": name}))
    return {"type": "FeatureCollection", "features": features}


def _point(lon: float, lat: float, properties: dict[str, Any]) -> dict[str, Any]:
    coordinates = [round(lon, COORDINATE_DECIMALS), round(lat, COORDINATE_DECIMALS)]
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": coordinates},
        "properties": properties,
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Convert a table to JSON-ready records, NaN to None and numpy scalars to Python."""
    records = []
    for row in table.to_dict("records"):
        records.append({str(key): _plain(value) for key, value in row.items()})
    return records


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _district_name(regions: Regions, code: str) -> str | None:
    if code == CITY_CODE:
        return None
    district = regions.district(code)
    return district.name if district else None


def dashboard_path(store_path: Path) -> Path:
    """Return where the dashboard figures of the store at ``store_path`` are kept."""
    return store_path.parent / "analyst" / "coverage.json"


def write_dashboard(figures: dict[str, Any], path: Path) -> int:
    """Write the figures to ``path`` atomically and return its size in bytes.

    The document goes to a temporary file in the same folder first and replaces
    ``path`` in one rename, so a reader sees the old figures or the new ones, never
    half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(figures, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=".coverage-", delete=False
    ) as handle:
        handle.write(text)
        temporary = Path(handle.name)
    os.replace(temporary, path)
    return path.stat().st_size


def read_dashboard(path: Path) -> dict[str, Any]:
    """Read the figures written by :func:`write_dashboard`.

    Raises
    ------
    FileNotFoundError
        When the figures have not been computed.
    ValueError
        When the file is not a dashboard document of `SCHEMA_VERSION`.
    """
    figures = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(figures, dict) or figures.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"{path} is not a dashboard document of schema version {SCHEMA_VERSION};"
            " run `doorstep coverage dashboard` again"
        )
    return figures
