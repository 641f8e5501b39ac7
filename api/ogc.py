"""The HR map layers as OGC API - Features Part 1 (Core, GeoJSON) under ``/ogc``.

GIS clients such as QGIS add the collections from the landing page ``/ogc``. Every
layer of the store is a collection, and so are the employer anchors and the anchors
that staff flagged as key enterprises (``key_enterprises``). Features are
GeoJSON in CRS84. Layer feature ids are 1-based positions in the layer as built,
so they are stable until the next ``doorstep build``. Anchor feature ids are anchor ids.

Above ``max_bbox_features`` anchors in the requested bbox the anchors collection
returns grid clusters, built by the store exactly as for the city map
(:mod:`store.anchor_map`). Cluster features have no id, carry ``cluster: true``,
``count`` and the counts of flagged anchors, and the collection has ``clustered: true``,
with ``anchorsMatched`` for the number of anchors behind them. Single anchors carry the
``key_enterprise`` and ``above_scale_industrial`` flags of the store's map body.

Both flags are the anchor collections' queryables (``/collections/{id}/queryables``,
OGC API - Features Part 3): ``key_enterprise=true`` or ``false`` and
``above_scale_industrial=true`` or ``false`` on the items request filter the anchors
before they are counted, paged or clustered. The HR map layers have no queryables.
"""

import json
import logging
import math
from typing import Annotated, Any

import numpy as np
import shapely
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from api import presenters
from api.auth import require
from api.docs import OPENAPI_URL
from api.ogc_documents import (
    ANCHOR_ITEMS_PARAMETERS,
    ANCHOR_QUERYABLES,
    COMMON_PARAMETERS,
    CONFORMANCE_CLASSES,
    GEOJSON,
    ITEMS_PARAMETERS,
    JSON,
    OPENAPI_JSON,
    SCHEMA_JSON,
    OgcNotFoundError,
    OgcRequestError,
    Page,
    check_format,
    check_parameters,
    collection_document,
    feature_collection,
    link,
    page_offsets,
    parse_bbox,
    parse_flag,
    parse_optional_flag,
    parse_page,
    queryables_document,
)
from api.permissions import Permission
from api.settings import Settings
from geo.crs import XIAN_BOUNDS_WGS84
from geo.layer_catalog import (
    ANCHORS_LAYER_INFO,
    KEY_ENTERPRISES_LAYER_INFO,
    LAYER_INFOS,
    LayerInfo,
)
from geo.layers import layer_geojson
from geo.location import Precision
from matching.recommend import Recommender
from store.anchor_map import NO_FLAG_FILTER, FlagFilter
from store.base import Store

logger = logging.getLogger(__name__)

OGC_PREFIX = "/ogc"
ANCHORS = ANCHORS_LAYER_INFO.name
ANCHOR_COLLECTIONS: dict[str, tuple[LayerInfo, FlagFilter]] = {
    ANCHORS: (ANCHORS_LAYER_INFO, NO_FLAG_FILTER),
    KEY_ENTERPRISES_LAYER_INFO.name: (
        KEY_ENTERPRISES_LAYER_INFO,
        FlagFilter(key_enterprise=True),
    ),
}
"""Collections of employer anchors, each with the enterprise flags its anchors need."""

router = APIRouter(prefix=OGC_PREFIX, tags=["ogc"], dependencies=[require(Permission.PUBLIC)])

FormatParam = Annotated[str | None, Query(description="Output format: only json is served.")]
BBoxParam = Annotated[
    str | None,
    Query(description="min_lon,min_lat,max_lon,max_lat in CRS84 degrees (WGS84 lon/lat)."),
]
LimitParam = Annotated[
    str | None,
    Query(description="Features per page: default 100, maximum 2000 (larger values get 2000)."),
]
OffsetParam = Annotated[str | None, Query(description="Features to skip, for paging; default 0.")]


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(_store)]


def _api_root(request: Request) -> str:
    return str(request.base_url).rstrip("/") + OGC_PREFIX


def _check_query(request: Request, allowed: frozenset[str]) -> None:
    check_parameters(request.query_params.keys(), allowed)
    check_format(request.query_params.get("f"))


@router.get("", summary="OGC API landing page")
def landing_page(request: Request, f: FormatParam = None) -> JSONResponse:
    """Return the OGC API landing page with links to the API definition, conformance and data."""
    _check_query(request, COMMON_PARAMETERS)
    root = _api_root(request)
    service = str(request.base_url).rstrip("/")
    body = {
        "title": "家门口就业 · 人社地图 OGC API",
        "description": "西安市人社地图图层（OGC API - Features）· HR map layers of Xi'an",
        "links": [
            link(root, "self", JSON, "本页 · this document"),
            link(service + OPENAPI_URL, "service-desc", OPENAPI_JSON, "API 定义 · API definition"),
            link(service + "/docs", "service-doc", "text/html", "API 文档 · API documentation"),
            link(root + "/conformance", "conformance", JSON, "符合的标准 · conformance"),
            link(root + "/collections", "data", JSON, "图层集合 · collections"),
        ],
    }
    return JSONResponse(body)


@router.get("/conformance", summary="OGC API conformance classes")
def conformance(request: Request, f: FormatParam = None) -> JSONResponse:
    """List the conformance classes this API implements: Core and GeoJSON of Part 1."""
    _check_query(request, COMMON_PARAMETERS)
    return JSONResponse({"conformsTo": list(CONFORMANCE_CLASSES)})


@router.get("/collections", summary="OGC API collections")
def collections(request: Request, store: StoreDep, f: FormatParam = None) -> JSONResponse:
    """List every HR map layer and the employer anchors as feature collections."""
    _check_query(request, COMMON_PARAMETERS)
    root = _api_root(request)
    built_at = _built_at(store)
    infos = [*_layer_infos(store), *(info for info, _ in ANCHOR_COLLECTIONS.values())]
    documents = [_collection(request, store, info, root, built_at) for info in infos]
    body = {
        "links": [link(root + "/collections", "self", JSON, "本页 · this document")],
        "collections": documents,
    }
    return JSONResponse(body)


@router.get("/collections/{collection_id}", summary="OGC API collection")
def collection(
    request: Request, store: StoreDep, collection_id: str, f: FormatParam = None
) -> JSONResponse:
    """Describe one collection: title, links, extent in CRS84, source, date and owner."""
    _check_query(request, COMMON_PARAMETERS)
    info = _find_collection(store, collection_id)
    document = _collection(request, store, info, _api_root(request), _built_at(store))
    return JSONResponse(document)


@router.get("/collections/{collection_id}/items", summary="OGC API features of a collection")
def items(
    request: Request,
    store: StoreDep,
    collection_id: str,
    bbox: BBoxParam = None,
    limit: LimitParam = None,
    offset: OffsetParam = None,
    include_city: Annotated[
        str | None,
        Query(description="Anchors only: true adds anchors known only as 西安 (one point)."),
    ] = None,
    key_enterprise: Annotated[
        str | None,
        Query(description="Anchors only: true keeps key enterprises (重点企业), false the others."),
    ] = None,
    above_scale_industrial: Annotated[
        str | None,
        Query(
            description="Anchors only: true keeps industrial enterprises above designated size "
            "(规上工业企业), false the others."
        ),
    ] = None,
    f: FormatParam = None,
) -> JSONResponse:
    """Return a page of features of one collection as GeoJSON, optionally inside a bbox.

    The anchor collections also filter on their queryables, ``key_enterprise`` and
    ``above_scale_industrial``.
    """
    info = _find_collection(store, collection_id)
    anchors = ANCHOR_COLLECTIONS.get(info.name)
    _check_query(request, ITEMS_PARAMETERS if anchors is None else ANCHOR_ITEMS_PARAMETERS)
    box = parse_bbox(bbox)
    page = parse_page(limit, offset)
    if anchors is not None:
        city = parse_flag("include_city", include_city)
        requested = FlagFilter(
            parse_optional_flag("key_enterprise", key_enterprise),
            parse_optional_flag("above_scale_industrial", above_scale_industrial),
        )
        flags = _combine(anchors[1], requested)
        if flags is None:
            body = _page_body(request, [], 0, page) | {"clustered": False, "anchorsMatched": 0}
        else:
            body = _anchor_items(request, store, box, page, city, flags)
    else:
        body = _layer_items(request, store, info.name, box, page)
    return _geojson_response(request, body)


@router.get("/collections/{collection_id}/queryables", summary="OGC API queryables of a collection")
def queryables(
    request: Request, store: StoreDep, collection_id: str, f: FormatParam = None
) -> JSONResponse:
    """Return the properties that the items request of a collection filters on, as JSON Schema."""
    _check_query(request, COMMON_PARAMETERS)
    info = _find_collection(store, collection_id)
    properties = ANCHOR_QUERYABLES if info.name in ANCHOR_COLLECTIONS else {}
    body = queryables_document(info, _api_root(request), properties)
    return JSONResponse(body, media_type=SCHEMA_JSON)


@router.get(
    "/collections/{collection_id}/items/{feature_id}", summary="OGC API feature of a collection"
)
def item(
    request: Request, store: StoreDep, collection_id: str, feature_id: str, f: FormatParam = None
) -> JSONResponse:
    """Return one feature of a collection as GeoJSON."""
    _check_query(request, COMMON_PARAMETERS)
    info = _find_collection(store, collection_id)
    if info.name in ANCHOR_COLLECTIONS:
        feature = _anchor_feature(request, store, info.name, feature_id)
    else:
        feature = _layer_feature(store, info.name, feature_id)
    url = f"{_api_root(request)}/collections/{info.name}"
    feature["links"] = [
        link(f"{url}/items/{feature_id}", "self", GEOJSON, "本要素 · this feature"),
        link(url, "collection", JSON, f"{info.title_zh} · collection"),
    ]
    return _geojson_response(request, feature)


def install_ogc_error_handler(app: FastAPI) -> None:
    """Register the handler that returns OgcRequestError as an OGC exception body.

    The body has ``code`` and ``description``, and the status is the error's ``status_code``.

    The body also has the service's usual ``detail`` list, with the parameter in ``loc``.
    """

    async def handle(request: Request, error: Exception) -> JSONResponse:
        if not isinstance(error, OgcRequestError):
            raise error
        detail = {
            "loc": ["query", error.field] if error.field else ["path"],
            "msg": str(error),
            "msg_zh": error.message_zh,
            "type": type(error).__name__,
        }
        body = {"code": error.code, "description": str(error), "detail": [detail]}
        return JSONResponse(status_code=error.status_code, content=body)

    app.add_exception_handler(OgcRequestError, handle)


def _layer_infos(store: Store) -> list[LayerInfo]:
    """Return the catalogue entry of every layer in the store, in name order."""
    infos = []
    for row in store.layer_infos():
        known = LAYER_INFOS.get(row["name"])
        if known is None:
            # A layer the catalogue does not describe: the store's own columns only.
            known = LayerInfo(
                row["name"],
                row["title_zh"],
                row["title_en"],
                row["source"],
                row["updated"],
                row["geometry_type"],
            )
        infos.append(known)
    return infos


def _find_collection(store: Store, collection_id: str) -> LayerInfo:
    if collection_id in ANCHOR_COLLECTIONS:
        return ANCHOR_COLLECTIONS[collection_id][0]
    for info in _layer_infos(store):
        if info.name == collection_id:
            return info
    raise OgcNotFoundError(
        f"collection {collection_id[:40]!r} does not exist;"
        f" GET {OGC_PREFIX}/collections lists the collections",
        "图层集合不存在",
    )


def _built_at(store: Store) -> str:
    """Return the UTC time of the store's build, or "" for a store built before it was kept."""
    return str(store.meta().get("built_at", ""))


def _collection(
    request: Request, store: Store, info: LayerInfo, root: str, built_at: str
) -> dict[str, Any]:
    if info.name in ANCHOR_COLLECTIONS:
        # NOTE: curation moves anchors after the build, so the build time is a lower bound.
        return collection_document(info, root, XIAN_BOUNDS_WGS84, built_at)
    extent = _layer_extent(request, store, info.name, built_at)
    return collection_document(info, root, extent, info.updated)


def _layer_extent(
    request: Request, store: Store, name: str, built_at: str
) -> tuple[float, float, float, float]:
    """Return the CRS84 bounds of a layer, computed once per build and layer.

    Layers change only with a rebuild, and ``built_at`` differs between builds.
    """
    extents: dict[tuple[str, str], tuple[float, float, float, float]] | None = getattr(
        request.app.state, "ogc_layer_extents", None
    )
    if extents is None:
        extents = {}
        request.app.state.ogc_layer_extents = extents
    key = (built_at, name)
    if key not in extents:
        bounds = [float(value) for value in store.layer_frame(name).total_bounds]
        if all(math.isfinite(value) for value in bounds):
            extents[key] = (bounds[0], bounds[1], bounds[2], bounds[3])
        else:
            # An empty layer has no bounds; the Xi'an area is a true, if loose, extent.
            extents[key] = XIAN_BOUNDS_WGS84
    return extents[key]


def _layer_items(
    request: Request,
    store: Store,
    name: str,
    bbox: tuple[float, float, float, float] | None,
    page: Page,
) -> dict[str, Any]:
    frame = store.layer_frame(name)
    if bbox is None:
        positions = np.arange(len(frame))
    else:
        positions = np.sort(frame.sindex.query(shapely.box(*bbox), predicate="intersects"))
    page_positions = positions[page.offset : page.offset + page.limit]
    features = layer_geojson(frame.iloc[page_positions])["features"]
    for position, feature in zip(page_positions.tolist(), features, strict=True):
        feature["id"] = position + 1
    return _page_body(request, features, len(positions), page)


def _layer_feature(store: Store, name: str, feature_id: str) -> dict[str, Any]:
    frame = store.layer_frame(name)
    position = int(feature_id) - 1 if feature_id.isdigit() else -1
    if not 0 <= position < len(frame):
        raise OgcNotFoundError(
            f"feature {feature_id[:40]!r} does not exist in collection {name!r};"
            f" ids are 1 to {len(frame)}",
            "要素不存在",
        )
    feature: dict[str, Any] = layer_geojson(frame.iloc[[position]])["features"][0]
    feature["id"] = position + 1
    return feature


def _anchor_items(
    request: Request,
    store: Store,
    bbox: tuple[float, float, float, float] | None,
    page: Page,
    include_city: bool,
    flags: FlagFilter,
) -> dict[str, Any]:
    """Return a page of anchors in view, or of their clusters when too many are in view.

    Only anchors that pass ``flags`` are returned or counted in clusters.
    """
    settings: Settings = request.app.state.settings
    recommender: Recommender = request.app.state.recommender
    excluded = () if include_city else (Precision.CITY.value,)
    labels = presenters.map_labels(recommender, "zh")
    view = bbox or XIAN_BOUNDS_WGS84
    text = store.anchor_map(view, settings.query.max_bbox_features, labels, excluded, flags)
    collection = json.loads(text)
    features: list[dict[str, Any]] = collection["features"]

    if not collection["clustered"]:
        # The store leaves anchors with equal n_postings in any order; paging needs one.
        features.sort(key=lambda f: (-f["properties"]["n_postings"], f["properties"]["anchor_id"]))
        for feature in features:
            feature["id"] = feature["properties"]["anchor_id"]

    page_features = features[page.offset : page.offset + page.limit]
    body = _page_body(request, page_features, len(features), page)
    body["clustered"] = collection["clustered"]
    body["anchorsMatched"] = collection["total"]
    return body


def _anchor_feature(
    request: Request, store: Store, collection_id: str, anchor_id: str
) -> dict[str, Any]:
    record = store.get_anchor(anchor_id)
    flags = ANCHOR_COLLECTIONS[collection_id][1]
    if record is None or not _passes(flags, record.key_enterprise, record.above_scale_industrial):
        raise OgcNotFoundError(
            f"feature {anchor_id[:40]!r} does not exist in collection {collection_id!r}",
            "锚点不存在",
        )
    recommender: Recommender = request.app.state.recommender
    labels = presenters.map_labels(recommender, "zh")
    precision = record.precision.value
    district = record.district_code
    properties = {
        "anchor_id": record.anchor_id,
        "name": record.name,
        "precision": precision,
        "state": record.state.value,
        "n_postings": store.posting_counts([anchor_id]).get(anchor_id, 0),
        "district_code": district,
        "key_enterprise": record.key_enterprise,
        "above_scale_industrial": record.above_scale_industrial,
        "approximate": labels.approximate.get(precision),
        "precision_label": labels.precision_labels.get(precision),
        "district_name": labels.district_names.get(district) if district else None,
    }
    return {
        "type": "Feature",
        "id": record.anchor_id,
        "geometry": {"type": "Point", "coordinates": [record.lon, record.lat]},
        "properties": properties,
    }


def _combine(collection: FlagFilter, requested: FlagFilter) -> FlagFilter | None:
    """Return the filter of both, or None when they need opposite values of one flag."""
    values = {}
    for name, own in collection.as_params().items():
        requested_value = requested.as_params()[name]
        if own is not None and requested_value is not None and own != requested_value:
            return None
        values[name] = own if own is not None else requested_value
    return FlagFilter(**values)


def _passes(flags: FlagFilter, key_enterprise: bool, above_scale_industrial: bool) -> bool:
    """Return whether an anchor with these flags belongs to a collection with ``flags``."""
    return (flags.key_enterprise is None or key_enterprise == flags.key_enterprise) and (
        flags.above_scale_industrial is None
        or above_scale_industrial == flags.above_scale_industrial
    )


def _page_body(
    request: Request, features: list[dict[str, Any]], number_matched: int, page: Page
) -> dict[str, Any]:
    page_urls = {
        rel: str(request.url.include_query_params(offset=offset, limit=page.limit))
        for rel, offset in page_offsets(page, number_matched).items()
    }
    return feature_collection(features, number_matched, page, str(request.url), page_urls)


def _geojson_response(request: Request, body: dict[str, Any]) -> JSONResponse:
    """Send GeoJSON as application/geo+json, or as application/json if only that is accepted."""
    accept = request.headers.get("accept", "")
    media_type = JSON if JSON in accept and GEOJSON not in accept else GEOJSON
    return JSONResponse(body, media_type=media_type)
