"""Documents and query parameters of OGC API - Features Part 1 (OGC 17-069r4) and Part 3.

The routes in :mod:`api.ogc` build their bodies here: links, the collection
description, the paged feature collection, the queryables of a collection
(Part 3, Filtering: the Queryables and Queryables as Query Parameters classes), and
the parsing of ``bbox``, ``limit``, ``offset``, ``f`` and the queryables. Coordinates
are CRS84 (WGS84 longitude, latitude), the only CRS of Part 1.
"""

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from geo.errors import DoorstepError
from geo.layer_catalog import LayerInfo
from store.anchor_map import MAX_MAP_FEATURES

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE_CLASSES = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
)
GEOJSON = "application/geo+json"
JSON = "application/json"
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"

DEFAULT_LIMIT = 100
"""Features in one items response when the request gives no ``limit``."""
MAX_LIMIT = MAX_MAP_FEATURES
"""The largest ``limit``. A larger value is served as this one, not rejected, so clients
that request bigger pages still work."""

# Query parameters of each resource; any other name is rejected with 400.
COMMON_PARAMETERS = frozenset({"f"})
ITEMS_PARAMETERS = frozenset({"f", "bbox", "limit", "offset"})
ANCHOR_QUERYABLES: dict[str, dict[str, str]] = {
    "key_enterprise": {
        "title": "重点企业 · key enterprise",
        "description": "站点工作人员标记的重点企业 · flagged by station staff",
        "type": "boolean",
    },
    "above_scale_industrial": {
        "title": "规上工业企业 · industrial enterprise above designated size",
        "description": "站点工作人员标记 · flagged by station staff",
        "type": "boolean",
    },
}
"""Properties of the anchor collections that items requests filter on, as JSON Schema."""
ANCHOR_ITEMS_PARAMETERS = ITEMS_PARAMETERS | {"include_city"} | ANCHOR_QUERYABLES.keys()


class OgcRequestError(DoorstepError):
    """An OGC API request that cannot be served, with its HTTP status and OGC exception code."""

    status_code = 400
    code = "InvalidParameterValue"

    def __init__(self, message: str, message_zh: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message_zh = message_zh
        self.field = field


class OgcParameterError(OgcRequestError, ValueError):
    """A query parameter is unknown or has an invalid value (HTTP 400)."""


class OgcNotFoundError(OgcRequestError, LookupError):
    """The collection or feature does not exist (HTTP 404)."""

    status_code = 404
    code = "NotFound"


@dataclass(frozen=True, slots=True)
class Page:
    """The ``limit`` and ``offset`` of an items request."""

    limit: int
    offset: int


def check_parameters(query: Iterable[str], allowed: frozenset[str]) -> None:
    """Raise OgcParameterError naming every query parameter outside ``allowed``."""
    unknown = sorted(set(query) - allowed)
    if unknown:
        names = ", ".join(unknown)
        raise OgcParameterError(
            f"unknown query parameter {names}; this resource accepts {', '.join(sorted(allowed))}",
            f"不支持的查询参数 {names}；可用参数：{', '.join(sorted(allowed))}",
            field=unknown[0],
        )


def check_format(value: str | None) -> None:
    """Raise OgcParameterError unless ``f`` is absent or ``json``: only JSON is served."""
    if value is not None and value != "json":
        raise OgcParameterError(
            f"f {value[:20]!r} is not supported; use f=json (GeoJSON for features)",
            "f 参数仅支持 json",
            field="f",
        )


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """Parse an OGC ``bbox`` (4 numbers, or 6 with heights that are ignored) in CRS84 degrees.

    Raises
    ------
    OgcParameterError
        The text is not 4 or 6 finite numbers, a latitude is outside -90..90 (the
        message suggests swapped axes), a longitude is outside
        -180..180, or a minimum is not below its maximum. Boxes across the
        antimeridian are rejected, because no layer lies near it.
    """
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError as err:
        raise _bbox_error(text, "it must be 4 or 6 comma-separated numbers") from err
    if len(values) not in (4, 6) or not all(math.isfinite(v) for v in values):
        raise _bbox_error(text, "it must be 4 or 6 comma-separated finite numbers")
    if len(values) == 6:
        values = [values[0], values[1], values[3], values[4]]
    min_lon, min_lat, max_lon, max_lat = values
    if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        raise _bbox_error(
            text, "a latitude is outside -90..90; give lon,lat order (Xi'an is near 108.9,34.3)"
        )
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise _bbox_error(text, "a longitude is outside -180..180")
    if min_lon >= max_lon or min_lat >= max_lat:
        raise _bbox_error(text, "the minimum must be below the maximum on both axes")
    return min_lon, min_lat, max_lon, max_lat


def _bbox_error(text: str, rule: str) -> OgcParameterError:
    return OgcParameterError(
        f"bbox {text[:80]!r} is invalid: {rule}; expected min_lon,min_lat,max_lon,max_lat in CRS84",
        "bbox 无效：须为 最小经度,最小纬度,最大经度,最大纬度（CRS84），且最小值小于最大值",
        field="bbox",
    )


def parse_page(limit: str | None, offset: str | None) -> Page:
    """Parse ``limit`` (1 or more, default :data:`DEFAULT_LIMIT`, capped at :data:`MAX_LIMIT`)
    and ``offset`` (0 or more, default 0).

    Raises
    ------
    OgcParameterError
        A value is not an integer or is below its minimum.
    """
    return Page(
        limit=min(_parse_int("limit", limit, DEFAULT_LIMIT, minimum=1), MAX_LIMIT),
        offset=_parse_int("offset", offset, 0, minimum=0),
    )


def _parse_int(field: str, text: str | None, default: int, minimum: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as err:
        raise _integer_error(field, text, minimum) from err
    if value < minimum:
        raise _integer_error(field, text, minimum)
    return value


def _integer_error(field: str, text: str, minimum: int) -> OgcParameterError:
    return OgcParameterError(
        f"{field} {text[:20]!r} is invalid; expected an integer of at least {minimum}",
        f"{field} 须为不小于 {minimum} 的整数",
        field=field,
    )


def parse_flag(field: str, text: str | None) -> bool:
    """Parse a boolean query parameter given as ``true`` or ``false`` (default false)."""
    if text is None or text == "false":
        return False
    if text == "true":
        return True
    raise OgcParameterError(
        f"{field} {text[:20]!r} is invalid; expected true or false",
        f"{field} 须为 true 或 false",
        field=field,
    )


def parse_optional_flag(field: str, text: str | None) -> bool | None:
    """Parse a queryable boolean given as ``true`` or ``false``; None when it is absent."""
    return None if text is None else parse_flag(field, text)


def link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    """Return one OGC link object."""
    return {"href": href, "rel": rel, "type": media_type, "title": title}


def time_stamp(now: datetime | None = None) -> str:
    """Return the RFC 3339 UTC time of a response, to the second."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def collection_document(
    info: LayerInfo,
    base_url: str,
    extent: tuple[float, float, float, float],
    updated: str,
) -> dict[str, Any]:
    """Return the description of one collection, with its extent in CRS84 and its metadata.

    ``base_url`` is the OGC API root without a trailing slash. Besides the required
    members, ``source``, ``sources`` (data folder, file and licence note of each),
    ``updated`` and ``ownerOrganisation`` describe the layer.
    """
    url = f"{base_url}/collections/{info.name}"
    return {
        "id": info.name,
        "title": info.title_zh,
        "description": f"{info.title_zh} · {info.title_en}. {info.source}",
        "links": [
            link(url, "self", JSON, "本集合 · this collection"),
            link(f"{url}/items", "items", GEOJSON, f"{info.title_zh}要素 · features"),
            link(f"{url}/queryables", QUERYABLES_REL, SCHEMA_JSON, "可筛选属性 · queryables"),
        ],
        "extent": {"spatial": {"bbox": [list(extent)], "crs": CRS84}},
        "itemType": "feature",
        "crs": [CRS84],
        "geometryType": info.geometry_type,
        "source": info.source,
        "sources": [
            {"folder": item.folder, "file": item.file, "licence": item.licence}
            for item in info.sources
        ],
        "updated": updated,
        "ownerOrganisation": info.owner_org_id,
    }


def queryables_document(
    info: LayerInfo, base_url: str, properties: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """Return the queryables of one collection as a JSON Schema (OGC API - Features Part 3).

    ``additionalProperties`` is false, so a client knows that only ``properties`` can be
    given as query parameters of the items request. A collection without queryables
    gets an empty ``properties``.
    """
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{base_url}/collections/{info.name}/queryables",
        "type": "object",
        "title": f"{info.title_zh} · {info.title_en}",
        "properties": {name: dict(schema) for name, schema in properties.items()},
        "additionalProperties": False,
    }


def feature_collection(
    features: list[dict[str, Any]],
    number_matched: int,
    page: Page,
    self_url: str,
    page_url: Mapping[str, str],
) -> dict[str, Any]:
    """Return a page of features with its counts, time stamp and self/next/prev links.

    ``page_url`` maps ``next`` and ``prev`` to the URL of that page; a relation
    without a page is left out.
    """
    links = [link(self_url, "self", GEOJSON, "本页 · this page")]
    titles = {"next": "下一页 · next page", "prev": "上一页 · previous page"}
    for rel, url in page_url.items():
        links.append(link(url, rel, GEOJSON, titles[rel]))
    return {
        "type": "FeatureCollection",
        "features": features,
        "numberMatched": number_matched,
        "numberReturned": len(features),
        "timeStamp": time_stamp(),
        "links": links,
    }


def page_offsets(page: Page, number_matched: int) -> dict[str, int]:
    """Return the ``offset`` of the next and previous pages that exist."""
    offsets: dict[str, int] = {}
    if page.offset + page.limit < number_matched:
        offsets["next"] = page.offset + page.limit
    if page.offset > 0:
        offsets["prev"] = max(page.offset - page.limit, 0)
    return offsets
