"""A 10,000-anchor map layer: the service's clustered GeoJSON body against folium MarkerCluster.

The subject is what `SqliteStore.anchor_map` does after its query when more anchors
than ``MAX_MAP_FEATURES`` are in view: grid clusters of `store.anchor_map`, encoded
as UTF-8. The SQLite R*Tree query is not timed here; the viewport benchmark times
the PostgreSQL query path. The baseline is the usual notebook way to draw many
points: a `folium.Map` without tiles and a `folium.plugins.MarkerCluster` with one
`folium.Marker` per anchor whose tooltip is its escaped name, rendered to HTML.

Both draw the same anchors. Before timing, the cluster counts must add up to the
anchors and the HTML must hold one marker per anchor.
"""

import html
import logging

import folium
import numpy as np
import pandas as pd
from folium.plugins import MarkerCluster

from bench.inputs import FloatArray, random_points_in
from bench.result import SPEED_UP, Comparison, ResultMismatchError, latency_comparison
from bench.timing import median, time_repeats
from geo.crs import XIAN_BOUNDS_WGS84
from geo.regions import Regions
from store.anchor_map import MAX_MAP_FEATURES, ClusterGrid, clusters_collection

logger = logging.getLogger(__name__)

SUBJECT = "store.anchor_map grid clusters (GeoJSON bytes)"
BASELINE = "folium MarkerCluster, one Marker each (HTML bytes)"
TARGET_SPEED_UP = 40.0
TARGET_MAX_BYTES = 500_000
"""Target size of the subject's body: 0.5 MB, small enough for a phone on 4G."""


def bench_anchor_layer(
    regions: Regions, names: pd.Series, *, count: int, seed: int, repeats: int
) -> list[Comparison]:
    """Time and size the 10,000-anchor layer of the subject and of folium.

    Parameters
    ----------
    regions
        For the city outline the synthetic points are drawn in (WGS84 degrees).
    names
        Real employer names, drawn with replacement as the anchors' names.
    count
        Anchors in the layer.
    seed
        Seed of the points, names and posting counts.
    repeats
        Timed runs per side; the median counts.

    Raises
    ------
    ResultMismatchError
        When the clusters do not add up to ``count`` or the HTML has another number of
        markers.
    """
    lons, lats = random_points_in(regions.city_outline, count, seed)
    rng = np.random.default_rng(seed)
    labels = names.sample(count, replace=True, random_state=seed).astype(str).tolist()
    postings = rng.integers(1, 30, size=count).astype(np.int64)

    subject_body = _subject(lons, lats, postings)
    baseline_body = _folium(lons, lats, labels)
    _check(subject_body, baseline_body, count)

    subject_s = time_repeats(lambda: _subject(lons, lats, postings), repeats=repeats)
    baseline_s = time_repeats(lambda: _folium(lons, lats, labels), repeats=max(1, repeats // 2))
    details = {
        "anchors": count,
        "subject_bytes": len(subject_body),
        "baseline_bytes": len(baseline_body),
        "size_ratio": len(baseline_body) / len(subject_body),
        "target_speed_up": TARGET_SPEED_UP,
        "target_max_bytes": TARGET_MAX_BYTES,
        "subject_seconds": subject_s,
        "baseline_seconds": baseline_s,
    }
    logger.info(
        "anchor layer: subject %d bytes in %.1f ms, folium %d bytes in %.0f ms",
        len(subject_body),
        median(subject_s) * 1000,
        len(baseline_body),
        median(baseline_s) * 1000,
    )
    return [
        latency_comparison(
            "anchor_layer",
            f"{count:,} anchors",
            subject=SUBJECT,
            baseline=BASELINE,
            subject_s=median(subject_s),
            baseline_s=median(baseline_s),
            ratio_meaning=SPEED_UP,
            details=details,
        )
    ]


def target_verdict(comparison: Comparison) -> str:
    """Return whether the speed-up and size targets are met, as one line."""
    size = comparison.details["subject_bytes"]
    met = comparison.ratio >= TARGET_SPEED_UP and size <= TARGET_MAX_BYTES
    return (
        f"anchor layer: {comparison.ratio:.0f}x folium (target >= {TARGET_SPEED_UP:.0f}x),"
        f" {size / 1e6:.2f} MB (target <= {TARGET_MAX_BYTES / 1e6:.1f} MB):"
        f" {'met' if met else 'missed'}"
    )


def _subject(lons: FloatArray, lats: FloatArray, postings: np.ndarray) -> bytes:
    grid = ClusterGrid.for_bbox(XIAN_BOUNDS_WGS84, MAX_MAP_FEATURES)
    return clusters_collection(lons, lats, postings, grid).encode()


def _folium(lons: FloatArray, lats: FloatArray, names: list[str]) -> bytes:
    figure = folium.Map(location=[34.26, 108.94], zoom_start=10, tiles=None)
    cluster = MarkerCluster().add_to(figure)  # type: ignore[no-untyped-call]
    for lon, lat, name in zip(lons.tolist(), lats.tolist(), names, strict=True):
        folium.Marker([lat, lon], tooltip=html.escape(name)).add_to(cluster)
    return figure.get_root().render().encode()


def _check(subject: bytes, baseline: bytes, count: int) -> None:
    import json

    clusters = json.loads(subject)["features"]
    counted = sum(feature["properties"]["count"] for feature in clusters)
    markers = baseline.count(b"L.marker(")
    if counted != count or markers != count:
        raise ResultMismatchError(
            f"anchor layer: clusters hold {counted} and the folium HTML {markers} markers;"
            f" expected {count} each"
        )
