"""Map viewport: `PostgresStore.anchors_in_bbox` and the API's GeoJSON body, against two encoders.

The benchmark creates a throwaway database ``doorstep_bench_<random>`` on the server,
migrates it, writes synthetic anchors and drops the database at the end, also after
an error. The anchors are synthetic: their precision, posting count and district are
drawn jointly from the real store's anchors, and each point is uniform in degrees
inside its district polygon (city-level ones inside the Xi'an outline).

The subject is what the ``/v1/anchors`` route calls: `PostgresStore.anchor_map`,
which has PostgreSQL concatenate the stored GeoJSON fragment of each anchor in view
into the response body. The two baselines run `PostgresStore.anchors_in_bbox` with
the same bbox and limit into a DataFrame, then encode it, one with
``geopandas.GeoDataFrame.to_json`` and one with ``json.dumps`` of a
FeatureCollection built from plain column lists. Every path ends with the UTF-8
bytes the route sends. All three emit the same features and properties; before
timing, every viewport's anchor ids and properties are compared.

The map body carries each anchor's enterprise flags, which `anchors_in_bbox` does not
return, so the baselines read them with `PostgresStore.enterprise_flags`, a second
query by anchor id, as the OGC anchor items did before the body had them. One
synthetic anchor in 20 is a key enterprise and one in 7 above-scale industrial, so
the comparison covers both values.

The subject orders anchors by ``n_postings`` alone, and `anchors_in_bbox` also breaks
ties by ``anchor_id``, so the comparison sorts ties by id first. That extra sort key
costs the baselines under 1 ms per viewport.
"""

import itertools
import json
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from api.presenters import map_labels
from bench.inputs import FloatArray, random_points_in
from bench.result import SPEED_UP, Comparison, ResultMismatchError, latency_comparison
from bench.timing import percentile
from geo.crs import XIAN_BOUNDS_WGS84
from geo.regions import Regions
from matching.recommend import Recommender
from store.migrations import apply_migrations
from store.postgres import PoolOptions, PostgresStore, mask_url, open_pool

logger = logging.getLogger(__name__)

VIEWPORT_LIMIT = 2_000
MIN_TARGET_ANCHORS = 200
SUBJECT = "PostgresStore.anchor_map (GeoJSON text built in PostgreSQL)"
GEODATAFRAME = "anchors_in_bbox + GeoDataFrame.to_json"
STDLIB = "anchors_in_bbox + hand-built FeatureCollection + json.dumps"

# The performance target of the viewport endpoint: p99 latency and speed-up over the
# GeoDataFrame path, both at p50 and at p99.
TARGET_P99_MS = 5.0
TARGET_SPEED_UP = 10.0

BBox = tuple[float, float, float, float]
Encoder = Callable[[pd.DataFrame], bytes]
Path = Callable[[PostgresStore, BBox], bytes]

# The separators and flags of FastAPI's JSONResponse.
_dumps = partial(json.dumps, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def postgres_unreachable_reason(admin_url: str) -> str | None:
    """Return why PostgreSQL at ``admin_url`` cannot be used, or None when a connection opens."""
    try:
        with psycopg.connect(admin_url, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as err:
        return f"PostgreSQL at {mask_url(admin_url)} is unreachable: {err}".strip()
    return None


@contextmanager
def throwaway_database(admin_url: str) -> Iterator[str]:
    """Create an empty ``doorstep_bench_<random>`` database, yield its URL, then drop it."""
    name = f"doorstep_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    logger.info("created benchmark database %r", name)
    try:
        yield f"{admin_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as admin:
            statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(statement.format(sql.Identifier(name)))
        logger.info("dropped benchmark database %r", name)


def synthetic_anchors(
    real_anchors: pd.DataFrame, regions: Regions, count: int, seed: int
) -> pd.DataFrame:
    """Draw synthetic anchors whose precision, posting count and district follow the real ones.

    Parameters
    ----------
    real_anchors
        Anchors of a real store, with ``precision``, ``n_postings`` and ``district_code``.
    regions
        The Xi'an districts and outline, WGS84.
    count
        Number of anchors to draw.
    seed
        Seed of `numpy.random.default_rng` and of the point draws.

    Returns
    -------
    pandas.DataFrame
        The anchor columns `PostgresStore.replace_all` writes, WGS84 ``lon``/``lat`` in
        degrees, ids ``syn-000000`` onwards and source ``synthetic``.
    """
    rng = np.random.default_rng(seed)
    rows = real_anchors.iloc[rng.integers(0, len(real_anchors), count)]
    codes = [None if pd.isna(code) else str(code) for code in rows["district_code"]]
    keys = np.array([code or "" for code in codes])
    names = dict(zip(regions.districts["code"], regions.districts["name"], strict=True))
    polygons = dict(zip(regions.districts["code"], regions.districts.geometry, strict=True))

    # Anchors without a district, or with a code outside the regions, go anywhere in Xi'an.
    lons = np.empty(count, dtype=np.float64)
    lats = np.empty(count, dtype=np.float64)
    for offset, key in enumerate(sorted(set(keys.tolist()))):
        positions = np.flatnonzero(keys == key)
        area = polygons.get(key, regions.city_outline)
        lons[positions], lats[positions] = random_points_in(area, len(positions), seed + offset)

    return pd.DataFrame(
        {
            "anchor_id": [f"syn-{i:06d}" for i in range(count)],
            "name": [f"合成单位{i:06d}" for i in range(count)],
            "lon": lons,
            "lat": lats,
            "precision": rows["precision"].astype(str).to_numpy(),
            "source": "synthetic",
            "location_label": [names.get(str(code), "西安市") for code in codes],
            "district_code": codes,
            "state": "draft",
            "n_postings": rows["n_postings"].astype(int).to_numpy(),
        }
    )


def viewport_boxes(
    lons: FloatArray, lats: FloatArray, count: int, seed: int, limit: int = VIEWPORT_LIMIT
) -> list[BBox]:
    """Draw square WGS84 bboxes around random anchors holding about 200 to ``limit`` anchors.

    Each box is centred on a random anchor and its half-width in degrees is the
    Chebyshev distance to the k-th nearest anchor, with k uniform in 200..``limit``
    (capped at the number of anchors). Ties on the edge can add a few anchors. The
    boxes are square in degrees, so about 17 % narrower than tall in metres at 34° N.
    """
    rng = np.random.default_rng(seed)
    high = min(limit, len(lons))
    boxes = []
    for center in rng.integers(0, len(lons), count):
        k = int(rng.integers(min(MIN_TARGET_ANCHORS, high), high + 1))
        distances = np.maximum(np.abs(lons - lons[center]), np.abs(lats - lats[center]))
        half = float(np.partition(distances, k - 1)[k - 1])
        lon, lat = float(lons[center]), float(lats[center])
        boxes.append((lon - half, lat - half, lon + half, lat + half))
    return boxes


def bench_viewport(
    admin_url: str,
    real_anchors: pd.DataFrame,
    regions: Regions,
    recommender: Recommender,
    *,
    n_anchors: int,
    n_viewports: int,
    seed: int,
) -> list[Comparison]:
    """Time viewport queries plus GeoJSON encoding on a throwaway, migrated database.

    Parameters
    ----------
    admin_url
        URL of a PostgreSQL + PostGIS server database that may create databases.
    real_anchors
        Anchors of the real store, whose distribution the synthetic ones follow.
    regions
        The Xi'an districts and outline, WGS84.
    recommender
        Provides the district names the API's GeoJSON body carries.
    n_anchors, n_viewports
        Synthetic anchors written, and viewports timed.
    seed
        Seed of the anchors and of the viewports.

    Returns
    -------
    list of Comparison
        Latency in ms at p50 and p99, against the GeoDataFrame path, then against the
        stdlib path. Ratios are speed-ups.

    Raises
    ------
    ResultMismatchError
        When the paths return different anchor ids for any viewport.
    """
    anchors = synthetic_anchors(real_anchors, regions, n_anchors, seed)
    boxes = viewport_boxes(
        anchors["lon"].to_numpy(np.float64), anchors["lat"].to_numpy(np.float64), n_viewports, seed
    )

    with throwaway_database(admin_url) as url:
        apply_migrations(url)
        pool = open_pool(url, PoolOptions(min_size=1, max_size=1, name="bench"))
        try:
            store = PostgresStore(pool)
            _write_anchors(store, anchors)
            paths = viewport_paths(recommender)
            counts = _check_same_bodies(store, paths, boxes)
            seconds = _time_paths(store, paths, boxes)
            cluster_seconds = _time_clusters(store, recommender, n_viewports)
            server = store.server_versions()
        finally:
            pool.close()

    sizes = {"anchors": n_anchors, "viewports": n_viewports, "limit": VIEWPORT_LIMIT}
    details = {**sizes, "mean_anchors_per_viewport": float(np.mean(counts)), "server": server}
    details["min_anchors_per_viewport"] = int(np.min(counts))
    details["max_anchors_per_viewport"] = int(np.max(counts))
    details["city_view_cluster_ms"] = {
        f"p{q}": percentile(cluster_seconds, q) * 1000 for q in (50, 99)
    }
    return _comparisons(seconds, details)


def target_verdict(comparisons: list[Comparison]) -> str:
    """State whether the subject meets p99 <= 5 ms and a 10x speed-up over the GeoDataFrame path."""
    frame = {(c.case, c.baseline): c for c in comparisons if c.benchmark == "viewport"}
    p50 = frame[("p50", GEODATAFRAME)]
    p99 = frame[("p99", GEODATAFRAME)]
    latency = "met" if p99.subject_value <= TARGET_P99_MS else "NOT met"
    speed_up = "met" if min(p50.ratio, p99.ratio) >= TARGET_SPEED_UP else "NOT met"
    clusters = p50.details["city_view_cluster_ms"]
    return (
        f"Viewport target p99 <= {TARGET_P99_MS:g} ms: {latency} "
        f"(p99 {p99.subject_value:.2f} ms, {p99.subject_value / TARGET_P99_MS:.1f}x the target).\n"
        f"Viewport target >= {TARGET_SPEED_UP:g}x the GeoDataFrame path: {speed_up} "
        f"({p50.ratio:.2f}x at p50, {p99.ratio:.2f}x at p99).\n"
        f"Whole-city view as grid clusters: p50 {clusters['p50']:.1f} ms,"
        f" p99 {clusters['p99']:.1f} ms."
    )


def _write_anchors(store: PostgresStore, anchors: pd.DataFrame) -> None:
    started = time.perf_counter()
    store.replace_all(
        postings=pd.DataFrame({"posting_id": pd.Series(dtype=str), "anchor_id": ""}),
        anchors=anchors,
        seekers=pd.DataFrame({"seeker_id": pd.Series(dtype=str), "simulated": False}),
        layers={},
        meta={"note": "synthetic anchors for the viewport benchmark"},
    )
    with store.pool.connection() as connection:
        connection.execute(
            "UPDATE anchors SET key_enterprise = (anchor_row % 20 = 0),"
            " above_scale_industrial = (anchor_row % 7 = 0)"
        )
    logger.info("wrote %d synthetic anchors in %.1f s", len(anchors), time.perf_counter() - started)


def viewport_paths(recommender: Recommender) -> dict[str, Path]:
    """Return the subject and the two baselines: bbox in, GeoJSON body (UTF-8) out."""
    labels = map_labels(recommender, "zh")

    def subject(store: PostgresStore, bbox: BBox) -> bytes:
        return store.anchor_map(bbox, VIEWPORT_LIMIT, labels)

    def queried(encode: Encoder) -> Path:
        def path(store: PostgresStore, bbox: BBox) -> bytes:
            return encode(_with_flags(store, store.anchors_in_bbox(bbox, VIEWPORT_LIMIT)))

        return path

    encode = encoders(recommender)
    return {
        SUBJECT: subject,
        GEODATAFRAME: queried(encode[GEODATAFRAME]),
        STDLIB: queried(encode[STDLIB]),
    }


def _with_flags(store: PostgresStore, frame: pd.DataFrame) -> pd.DataFrame:
    """Add the ``key_enterprise`` and ``above_scale_industrial`` columns of the stored anchors."""
    flags = store.enterprise_flags(frame["anchor_id"].tolist())
    pairs = [flags.get(anchor_id, (False, False)) for anchor_id in frame["anchor_id"]]
    return frame.assign(
        key_enterprise=[key for key, _ in pairs],
        above_scale_industrial=[above_scale for _, above_scale in pairs],
    )


def encoders(recommender: Recommender) -> dict[str, Encoder]:
    """Return the two baselines' GeoJSON encoders of `anchors_in_bbox` rows with flag columns."""

    def geodataframe(frame: pd.DataFrame) -> bytes:
        properties = pd.DataFrame(_property_lists(frame, recommender))
        geometry = gpd.points_from_xy(frame["lon"], frame["lat"], crs="EPSG:4326")
        body = gpd.GeoDataFrame(properties, geometry=geometry).to_json(drop_id=True)
        return _collection(json.loads(body)["features"], frame)

    def stdlib(frame: pd.DataFrame) -> bytes:
        columns = _property_lists(frame, recommender)
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": dict(zip(columns, values, strict=True)),
            }
            for lon, lat, *values in zip(
                frame["lon"].tolist(), frame["lat"].tolist(), *columns.values(), strict=True
            )
        ]
        return _collection(features, frame)

    return {GEODATAFRAME: geodataframe, STDLIB: stdlib}


def _collection(features: list[Any], frame: pd.DataFrame) -> bytes:
    """Wrap features as the route's body: not clustered, with the anchor total, UTF-8 encoded."""
    body = {"type": "FeatureCollection", "clustered": False, "total": len(frame)}
    return _dumps({**body, "features": features}).encode()


def _property_lists(frame: pd.DataFrame, recommender: Recommender) -> dict[str, list[Any]]:
    """Build the properties `PostgresStore.anchor_map` emits as plain lists, column by column.

    Missing values are None, not NaN, because ``json.dumps(allow_nan=False)`` rejects NaN.
    """
    labels = map_labels(recommender, "zh")
    precision = frame["precision"].astype(str).tolist()
    districts = [_text_or_none(code) for code in frame["district_code"]]
    return {
        "anchor_id": frame["anchor_id"].astype(str).tolist(),
        "name": frame["name"].astype(str).tolist(),
        "precision": precision,
        "state": frame["state"].astype(str).tolist(),
        "n_postings": frame["n_postings"].astype(int).tolist(),
        "location_label": [_text_or_none(value) for value in frame["location_label"]],
        "district_code": districts,
        "key_enterprise": frame["key_enterprise"].astype(bool).tolist(),
        "above_scale_industrial": frame["above_scale_industrial"].astype(bool).tolist(),
        "approximate": [labels.approximate[value] for value in precision],
        "precision_label": [labels.precision_labels[value] for value in precision],
        "district_name": [labels.district_names.get(code or "") for code in districts],
    }


def _text_or_none(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)  # type: ignore[call-overload]


def _check_same_bodies(
    store: PostgresStore, paths: dict[str, Path], boxes: list[BBox]
) -> list[int]:
    """Run every path on every box and compare the features; return the result sizes.

    Coordinates are compared to 1e-12 degrees, everything else exactly.
    """
    counts = []
    for bbox in boxes:
        bodies = {name: json.loads(path(store, bbox)) for name, path in paths.items()}
        expected = bodies[SUBJECT]
        if expected["clustered"]:
            raise ResultMismatchError(
                f"viewport {bbox!r}: the subject sent clusters; every viewport must hold at"
                f" most {VIEWPORT_LIMIT} anchors"
            )
        for name, body in bodies.items():
            _compare_features(bbox, name, body["features"], expected["features"])
        counts.append(len(expected["features"]))
    return counts


def _compare_features(bbox: BBox, name: str, features: list[Any], expected: list[Any]) -> None:
    """Raise unless both lists hold equal features, most postings first, ties in any order."""
    for found in (features, expected):
        postings = [feature["properties"]["n_postings"] for feature in found]
        if any(later > earlier for earlier, later in itertools.pairwise(postings)):
            raise ResultMismatchError(
                f"viewport {bbox!r}: {name} or the subject does not put the most postings first"
            )
    features, expected = _ties_by_id(features), _ties_by_id(expected)
    ids = [feature["properties"]["anchor_id"] for feature in features]
    expected_ids = [feature["properties"]["anchor_id"] for feature in expected]
    if ids != expected_ids:
        raise ResultMismatchError(
            f"viewport {bbox!r}: {name} returned {len(ids)} anchor ids, the subject "
            f"{len(expected_ids)}; {len(set(ids) ^ set(expected_ids))} differ, "
            "expected the same ids in the same order"
        )
    for feature, reference in zip(features, expected, strict=True):
        points = np.array(
            [feature["geometry"]["coordinates"], reference["geometry"]["coordinates"]]
        )
        if feature["properties"] != reference["properties"] or np.ptp(points, axis=0).max() > 1e-12:
            raise ResultMismatchError(
                f"viewport {bbox!r}: {name} differs from the subject on anchor"
                f" {reference['properties']['anchor_id']!r}"
            )


def _ties_by_id(features: list[Any]) -> list[Any]:
    def key(feature: Any) -> tuple[int, str]:
        return -feature["properties"]["n_postings"], feature["properties"]["anchor_id"]

    return sorted(features, key=key)


def _time_paths(
    store: PostgresStore, paths: dict[str, Path], boxes: list[BBox]
) -> dict[str, dict[str, list[float]]]:
    """Time each path once per box, rotating which path goes first."""
    seconds: dict[str, dict[str, list[float]]] = {name: {"total": []} for name in paths}
    names = list(paths)
    for position, bbox in enumerate(boxes):
        shift = position % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            paths[name](store, bbox)
            seconds[name]["total"].append(time.perf_counter() - started)
    return seconds


def _time_clusters(store: PostgresStore, recommender: Recommender, count: int) -> list[float]:
    """Time `PostgresStore.anchor_map` on the whole of Xi'an, where every anchor is in view.

    With more than `VIEWPORT_LIMIT` anchors the response is grid clusters. No baseline
    sends the same body, so these timings go into the details, not into a ratio.
    """
    labels = map_labels(recommender, "zh")
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        store.anchor_map(XIAN_BOUNDS_WGS84, VIEWPORT_LIMIT, labels)
        seconds.append(time.perf_counter() - started)
    return seconds


def _comparisons(
    seconds: dict[str, dict[str, list[float]]], details: dict[str, Any]
) -> list[Comparison]:
    shared = {**details, "seconds": seconds}
    comparisons = []
    for baseline in (GEODATAFRAME, STDLIB):
        for q in (50, 99):
            comparisons.append(
                latency_comparison(
                    "viewport",
                    f"p{q}",
                    subject=SUBJECT,
                    baseline=baseline,
                    subject_s=percentile(seconds[SUBJECT]["total"], q),
                    baseline_s=percentile(seconds[baseline]["total"], q),
                    ratio_meaning=SPEED_UP,
                    details=shared,
                )
            )
    return comparisons
