"""JSON routes of the API (``/v1``) and the health check."""

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from api import presenters
from api.auth import require
from api.errors import QueryLimitError, RateLimitedError
from api.permissions import Permission
from api.ranking import RankerStatus
from api.schemas import (
    DistrictCount,
    DistrictCounts,
    Health,
    Job,
    JobPage,
    LayerList,
    RankerHealth,
    Stats,
)
from api.settings import Settings
from geo.anchor_states import AnchorState
from geo.crs import XIAN_BOUNDS_WGS84, CoordSys, parse_coord_sys, to_wgs84, validate_and_convert
from geo.layer_catalog import LAYER_INFOS
from geo.layers import layer_geojson
from geo.location import Precision
from matching.recommend import Recommender
from store.anchor_map import FlagFilter
from store.base import PostingNotFoundError, Store
from store.cache import ResponseCache, cache_key, fetch_or_compute
from store.rate_limit import RateLimiter

# Decimal places of WGS84 degrees kept in cache keys and queries, about 0.1 m.
CACHE_COORD_DECIMALS = 6


def enforce_rate_limit(request: Request) -> None:
    """Raise RateLimitedError when the client address is over the per-minute limit on /v1."""
    limiter: RateLimiter | None = request.app.state.rate_limiter
    if limiter is None or not request.url.path.startswith("/v1/"):
        return
    address = request.client.host if request.client else "unknown"
    decision = limiter.hit(address)
    if not decision.allowed:
        raise RateLimitedError(decision.limit, decision.retry_after_s)


router = APIRouter(dependencies=[require(Permission.PUBLIC)])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _recommender(request: Request) -> Recommender:
    # The cache build id is read first, because a reload of the job index replaces the
    # recommender before the build id. So this request's body is never cached under the
    # build id of an index newer than the one that computed it.
    request.state.cache_build_id = request.app.state.build_id
    recommender: Recommender = request.app.state.recommender
    return recommender


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _coord_sys(
    coord_sys: Annotated[str, Query(description="wgs84, gcj02 or bd09")] = "wgs84",
) -> CoordSys:
    return parse_coord_sys(coord_sys)


SettingsDep = Annotated[Settings, Depends(_settings)]
RecommenderDep = Annotated[Recommender, Depends(_recommender)]
StoreDep = Annotated[Store, Depends(_store)]
CoordSysDep = Annotated[CoordSys, Depends(_coord_sys)]
Lang = Annotated[str, Query(pattern="^(zh|en)$", description="Language of reasons: zh or en.")]


@router.get("/health", response_model=Health, tags=["service"])
def health(request: Request, response: Response, recommender: RecommenderDep) -> Health:
    """Report liveness, loaded counts, library versions and the ranker in use.

    Returns 503 with status ``stale_index`` while the job index is behind the store and
    could not be loaded again (:attr:`api.index_sync.IndexSync.stale_reason`).
    """
    status: RankerStatus = request.app.state.ranker_status
    push: RankerStatus | None = getattr(request.app.state, "push_ranker_status", None)
    sync = getattr(request.app.state, "index_sync", None)
    stale: str | None = None if sync is None else sync.stale_reason
    if stale is not None:
        response.status_code = 503
    return Health(
        status="ok" if stale is None else "stale_index",
        stale_index=stale,
        postings=recommender.n_postings,
        seekers=recommender.n_seekers,
        versions=presenters.versions(),
        ranker=RankerHealth(kind=status.kind, model_id=status.model_id, reason=status.reason),
        push_ranker=None
        if push is None
        else RankerHealth(
            kind=push.kind,
            model_id=push.model_id,
            reason=f"{push.reason}; {request.app.state.push_service.threshold_note}",
        ),
    )


@router.get("/v1/jobs/nearby", response_model=JobPage, tags=["jobs"])
def jobs_nearby(
    request: Request,
    recommender: RecommenderDep,
    settings: SettingsDep,
    coord_sys: CoordSysDep,
    lon: Annotated[float, Query(description="Longitude of the point, in coord_sys.")],
    lat: Annotated[float, Query(description="Latitude of the point, in coord_sys.")],
    radius_m: Annotated[float, Query(description="Search radius in metres.")] = 3_000,
    page: Annotated[int, Query(ge=1, description="1-based page number.")] = 1,
    page_size: Annotated[int, Query(ge=1, description="Jobs per page.")] = 20,
    lang: Lang = "zh",
) -> Response:
    """List active jobs within radius_m of a point, nearest first, with reasons."""
    _check_radius(radius_m, settings.query.max_radius_m)
    check_page_size(page_size, settings.query.max_page_size)
    wgs_lon, wgs_lat = validate_and_convert(lon, lat, coord_sys)
    wgs_lon = round(wgs_lon, CACHE_COORD_DECIMALS)
    wgs_lat = round(wgs_lat, CACHE_COORD_DECIMALS)

    def job_page() -> JobPage:
        found = recommender.nearby(wgs_lon, wgs_lat, radius_m, lang=lang)
        start = (page - 1) * page_size
        shown = found.iloc[start : start + page_size]
        return JobPage(
            items=presenters.jobs(shown, coord_sys, recommender, lang),
            total=len(found),
            page=page,
            page_size=page_size,
        )

    query: dict[str, object] = {"lon": wgs_lon, "lat": wgs_lat, "radius_m": radius_m}
    query |= {"page": page, "page_size": page_size, "coord_sys": coord_sys.value, "lang": lang}
    return cached_json(request, "jobs_nearby", query, job_page)


@router.get("/v1/jobs/{posting_id}", response_model=Job, tags=["jobs"])
def job_detail(
    recommender: RecommenderDep,
    coord_sys: CoordSysDep,
    posting_id: Annotated[
        str, Path(min_length=1, max_length=64, description="Posting id, as in a push link.")
    ],
    lang: Lang = "zh",
) -> Job:
    """Return one active job, as a push link opens it: no distance, score or reasons.

    A posting that was deactivated since the push, or was never loaded, is a 404.
    """
    postings = recommender.postings
    rows = postings.loc[postings["posting_id"].astype(str) == posting_id]
    if rows.empty:
        raise PostingNotFoundError(
            f"job {posting_id[:40]!r} is not open or does not exist; it may have closed"
        )
    return presenters.jobs(rows.head(1), coord_sys, recommender, lang)[0]


@router.get("/v1/anchors", tags=["map"])
def anchors(
    store: StoreDep,
    settings: SettingsDep,
    recommender: RecommenderDep,
    coord_sys: CoordSysDep,
    bbox: Annotated[
        str, Query(description="min_lon,min_lat,max_lon,max_lat in coord_sys.")
    ] = "107.6,33.6,109.9,34.8",
    include_city: Annotated[
        bool, Query(description="Also return anchors known only as 西安 (all on one point).")
    ] = False,
    key_enterprise: Annotated[
        bool | None,
        Query(description="true keeps only key enterprises (重点企业), false only the others."),
    ] = None,
    above_scale_industrial: Annotated[
        bool | None,
        Query(
            description="true keeps only above-scale industrial firms (规上工业企业),"
            " false only the others."
        ),
    ] = None,
    lang: Lang = "zh",
) -> Response:
    """Return employer anchors inside a bbox as GeoJSON, most postings first.

    Each anchor carries its ``key_enterprise`` and ``above_scale_industrial`` flags.
    Above the configured number of anchors in view the features are grid clusters
    (``clustered`` true) with a ``count`` each and the counts of flagged anchors
    (``n_key_enterprise``, ``n_above_scale_industrial``), so no response exceeds that
    number of features; ``total`` is the number of anchors in view either way.
    """
    wgs_bbox = _parse_bbox(bbox, coord_sys)
    excluded = () if include_city else (Precision.CITY.value,)
    flags = FlagFilter(key_enterprise, above_scale_industrial)
    labels = presenters.map_labels(recommender, lang)
    body = store.anchor_map(wgs_bbox, settings.query.max_bbox_features, labels, excluded, flags)
    if coord_sys is not CoordSys.WGS84:
        body = _json_text(presenters.anchor_map_in(body, coord_sys)).encode()
    return Response(content=body, media_type="application/json")


@router.get("/v1/layers", response_model=LayerList, tags=["map"])
def layers(store: StoreDep) -> LayerList:
    """List the HR map layers (人社地图) with sources, update date and owner organisation."""
    items: list[dict[str, Any]] = []
    for row in store.layer_infos():
        item: dict[str, Any] = dict(row)
        known = LAYER_INFOS.get(row["name"])
        if known is not None:
            item["owner_org_id"] = known.owner_org_id
            item["sources"] = [dataclasses.asdict(source) for source in known.sources]
        items.append(item)
    return LayerList.model_validate({"items": items})


@router.get("/v1/layers/{name}", tags=["map"])
def layer(
    store: StoreDep,
    coord_sys: CoordSysDep,
    name: Annotated[str, Path(pattern="^[a-z_]{1,40}$", description="Layer name.")],
    bbox: Annotated[str | None, Query(description="Optional bbox in coord_sys.")] = None,
) -> dict[str, Any]:
    """Return one HR map layer as GeoJSON in the requested coord_sys."""
    frame = store.layer_frame(name)
    wgs_bbox = _parse_bbox(bbox, coord_sys) if bbox else None
    return layer_geojson(frame, coord_sys, wgs_bbox)


@router.get("/v1/stats", response_model=Stats, tags=["map"])
def stats(store: StoreDep, recommender: RecommenderDep) -> Stats:
    """Return counts of postings and anchors by precision and state, and of seekers."""
    counts = store.precision_state_counts(by="district")
    postings = recommender.postings["precision"].astype(str).value_counts()
    return Stats(
        postings=recommender.n_postings,
        anchors=int(counts["n"].sum()),
        seekers=recommender.n_seekers,
        simulated_seekers=bool(recommender.seekers["simulated"].any()),
        anchors_by_precision=_totals(counts, "precision", [p.value for p in Precision]),
        anchors_by_state=_totals(counts, "state", [s.value for s in AnchorState]),
        postings_by_precision={p.value: int(postings.get(p.value, 0)) for p in Precision},
    )


@router.get("/v1/stats/districts", response_model=DistrictCounts, tags=["map"])
def district_stats(
    store: StoreDep, recommender: RecommenderDep, lang: Lang = "zh"
) -> DistrictCounts:
    """Count anchors by district, location precision and curation state (锚点完善进度)."""
    counts = store.precision_state_counts(by="district")
    columns = ["district_code", "precision", "state", "n"]
    items = []
    for code, precision, state, n in zip(*(counts[c].tolist() for c in columns), strict=True):
        known = isinstance(code, str)
        items.append(
            DistrictCount(
                district_code=code if known else None,
                district_name=recommender.district_name(code) if known else None,
                precision=str(precision),
                precision_label=presenters.precision_label(str(precision), lang),
                state=str(state),
                state_label=presenters.state_label(str(state), lang),
                n=int(n),
            )
        )
    return DistrictCounts(items=items)


def _totals(counts: pd.DataFrame, column: str, levels: list[str]) -> dict[str, int]:
    """Sum ``n`` per value of ``column``, listing every level, zeros included, in order."""
    sums = counts.groupby(column)["n"].sum()
    return {level: int(sums.get(level, 0)) for level in levels}


def seeker_cache_prefix(seeker_id: str) -> str:
    """Return the prefix of every response-cache key that holds data of one seeker."""
    return f"seeker_recommendations:{seeker_id}:"


def cached_json(
    request: Request, kind: str, query: Mapping[str, object], compute: Callable[[], BaseModel]
) -> Response:
    """Return the JSON body of a normalised query from the response cache, computing it on a miss.

    The key includes a hash of the store's build metadata, so a rebuild gets new keys.
    It uses the build id read before the route took its recommender (see
    ``_recommender``), because ``compute`` runs on that recommender.
    """
    cache: ResponseCache = request.app.state.cache
    build_id = getattr(request.state, "cache_build_id", None) or request.app.state.build_id
    key = cache_key(kind, build_id, query)
    body = fetch_or_compute(cache, key, lambda: compute().model_dump_json(by_alias=True).encode())
    return Response(content=body, media_type="application/json")


def _json_text(body: object) -> str:
    """Encode a body as compact JSON, as FastAPI's JSONResponse does."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _check_radius(radius_m: float, limit: float) -> None:
    if not math.isfinite(radius_m) or radius_m <= 0 or radius_m > limit:
        raise QueryLimitError(
            f"radius_m {radius_m} is invalid; expected a number above 0 and at most {limit:g}",
            field="radius_m",
            message_zh=f"搜索半径 radius_m 须大于 0 且不超过 {limit:g} 米",
        )


def check_page_size(size: int, limit: int, field: str = "page_size") -> None:
    if size > limit:
        raise QueryLimitError(
            f"{field} {size} is over the limit of {limit}",
            field=field,
            message_zh=f"{field} 不能超过 {limit}",
        )


def _parse_bbox(text: str, coord_sys: CoordSys) -> tuple[float, float, float, float]:
    parts = text.split(",")
    try:
        values = [float(part) for part in parts]
    except ValueError as err:
        raise _bbox_error(text) from err
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise _bbox_error(text)
    min_lon, min_lat, max_lon, max_lat = values
    if min_lon >= max_lon or min_lat >= max_lat:
        raise _bbox_error(text)
    if _looks_swapped(min_lon, min_lat, max_lon, max_lat):
        raise QueryLimitError(
            f"bbox {text[:80]!r} looks swapped: Xi'an is near longitude 108.9, latitude 34.3;"
            " give min_lon,min_lat,max_lon,max_lat",
            field="bbox",
            message_zh="bbox 的经纬度疑似颠倒：西安约在经度 108.9、纬度 34.3，"
            "请按 最小经度,最小纬度,最大经度,最大纬度 填写",
        )
    if coord_sys is CoordSys.WGS84:
        return min_lon, min_lat, max_lon, max_lat
    corners = [to_wgs84(x, y, coord_sys) for x, y in ((min_lon, min_lat), (max_lon, max_lat))]
    box = shapely.box(corners[0][0], corners[0][1], corners[1][0], corners[1][1])
    bounds = box.bounds
    return bounds[0], bounds[1], bounds[2], bounds[3]


def _looks_swapped(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> bool:
    """Tell whether a bbox misses Xi'an but would cover part of it with the axes swapped."""
    xian = shapely.box(*XIAN_BOUNDS_WGS84)
    given = shapely.box(min_lon, min_lat, max_lon, max_lat)
    swapped = shapely.box(min_lat, min_lon, max_lat, max_lon)
    return not given.intersects(xian) and swapped.intersects(xian)


def _bbox_error(text: str) -> QueryLimitError:
    return QueryLimitError(
        f"bbox {text[:80]!r} is invalid; expected four finite numbers"
        " min_lon,min_lat,max_lon,max_lat with min < max",
        field="bbox",
        message_zh="bbox 须为四个数：最小经度,最小纬度,最大经度,最大纬度，且最小值小于最大值",
    )
