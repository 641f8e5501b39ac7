"""The map's anchor layer built in PostgreSQL (see :mod:`store.anchor_map` for the body).

The common case, at most ``max_features`` anchors in view, is one statement that
concatenates the GeoJSON fragment stored with each anchor and appends the labels of
the request's language. A trigger keeps the fragment up to date (migration 0005;
migration 0015 adds the enterprise flags to it). Above that, a second statement
groups the anchors into grid cells.
"""

from collections.abc import Collection
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Loader

from store.anchor_map import NO_FLAG_FILTER, ClusterGrid, FlagFilter, MapLabels


class _Utf8BytesLoader(Loader):
    """Loads a ``text`` value as its UTF-8 bytes (the database encoding), without decoding.

    The map body goes to the HTTP response as bytes, so decoding it into ``str`` here
    and encoding it again in the route would copy about 0.5 MB twice per viewport.
    """

    def load(self, data: Buffer) -> bytes:
        return bytes(data)


# The anchors of a viewport as one GeoJSON text: the stored fragment of each anchor
# (migrations 0005 and 0015) with the labels of the request's language appended. The
# text is NULL when more than %(max_features)s anchors are in view, and the caller then
# requests clusters. A flag parameter that is NULL matches every anchor. `hits` takes
# any max_features + 1 rows without sorting, because only their count matters there;
# string_agg sorts the rows it keeps by n_postings alone. Ties stay in scan order:
# breaking them by anchor_id took about 0.9 ms of the 3 ms a 2,000-anchor view costs
# in the viewport benchmark.
_ANCHOR_MAP_SQL = """
WITH hits AS (
    SELECT map_feature, "precision", district_code, n_postings, anchor_id
    FROM anchors
    WHERE geom && ST_MakeEnvelope(%(min_lon)s, %(min_lat)s, %(max_lon)s, %(max_lat)s, 4326)
      AND "precision" <> ALL(%(excluded)s::text[])
      AND (%(key_enterprise)s::boolean IS NULL OR key_enterprise = %(key_enterprise)s::boolean)
      AND (%(above_scale_industrial)s::boolean IS NULL
           OR above_scale_industrial = %(above_scale_industrial)s::boolean)
    LIMIT %(max_features)s + 1
), labels AS (
    SELECT %(precision_suffixes)s::jsonb AS precision_suffixes,
           %(district_suffixes)s::jsonb AS district_suffixes
)
SELECT CASE WHEN count(*) > %(max_features)s THEN NULL ELSE
    '{"type":"FeatureCollection","clustered":false,"total":' || count(*)
    || ',"features":[' || coalesce(string_agg(
        h.map_feature
        || coalesce(l.precision_suffixes ->> h."precision",
                    ',"approximate":null,"precision_label":null')
        || coalesce(l.district_suffixes ->> h.district_code, ',"district_name":null}}'),
        ',' ORDER BY h.n_postings DESC), '') || ']}'
    END
FROM hits AS h CROSS JOIN labels AS l
"""

# Grid clusters of a viewport (see store.anchor_map.ClusterGrid for the cell formula), of
# the anchors that the statement above selects.
_CLUSTER_MAP_SQL = """
WITH cells AS (
    SELECT least(greatest(floor((lon - %(grid_min_lon)s) / %(cell_lon)s)::bigint, 0), %(cols)s - 1)
               AS col,
           least(greatest(floor((lat - %(grid_min_lat)s) / %(cell_lat)s)::bigint, 0), %(rows)s - 1)
               AS row,
           lon, lat, n_postings, key_enterprise, above_scale_industrial
    FROM anchors
    WHERE geom && ST_MakeEnvelope(%(min_lon)s, %(min_lat)s, %(max_lon)s, %(max_lat)s, 4326)
      AND "precision" <> ALL(%(excluded)s::text[])
      AND (%(key_enterprise)s::boolean IS NULL OR key_enterprise = %(key_enterprise)s::boolean)
      AND (%(above_scale_industrial)s::boolean IS NULL
           OR above_scale_industrial = %(above_scale_industrial)s::boolean)
), clusters AS (
    SELECT row, col, count(*) AS n, sum(n_postings) AS postings,
           count(*) FILTER (WHERE key_enterprise) AS n_key,
           count(*) FILTER (WHERE above_scale_industrial) AS n_above_scale,
           avg(lon) AS lon, avg(lat) AS lat,
           min(lon) AS min_lon, min(lat) AS min_lat, max(lon) AS max_lon, max(lat) AS max_lat
    FROM cells GROUP BY row, col
)
SELECT '{"type":"FeatureCollection","clustered":true,"total":' || coalesce(sum(n), 0)
    || ',"features":' || coalesce(json_agg(json_build_object(
        'type', 'Feature',
        'geometry', json_build_object('type', 'Point', 'coordinates', json_build_array(lon, lat)),
        'properties', json_build_object(
            'cluster', true, 'count', n, 'n_postings', postings,
            'n_key_enterprise', n_key, 'n_above_scale_industrial', n_above_scale,
            'bbox', json_build_array(min_lon, min_lat, max_lon, max_lat)))
        ORDER BY n DESC, row, col)::text, '[]') || '}'
FROM clusters
"""


def anchor_map_body(
    connection: psycopg.Connection[tuple[Any, ...]],
    bbox: tuple[float, float, float, float],
    max_features: int,
    labels: MapLabels,
    exclude_precisions: Collection[str] = (),
    flags: FlagFilter = NO_FLAG_FILTER,
) -> bytes:
    """Return the anchors inside a WGS84 bbox as the map's GeoJSON body, UTF-8 encoded.

    Only anchors that pass ``flags`` are listed or clustered.

    The two statements need no common snapshot, so the caller may run them in
    autocommit mode: when anchors change between them, the clusters simply show the
    newer data.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    params: dict[str, Any] = {
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
        "excluded": sorted(exclude_precisions),
        "max_features": max_features,
        **flags.as_params(),
        **labels.as_sql_params(),
    }
    cursor = connection.cursor()
    cursor.adapters.register_loader("text", _Utf8BytesLoader)
    # Not prepared: a generic plan does not know the bbox and, with LIMIT and no
    # ORDER BY, may pick a sequential scan.
    row = cursor.execute(_ANCHOR_MAP_SQL, params, prepare=False).fetchone()
    if row is not None and row[0] is not None:
        return bytes(row[0])

    grid = ClusterGrid.for_bbox(bbox, max_features)
    row = cursor.execute(_CLUSTER_MAP_SQL, {**params, **grid.as_params()}).fetchone()
    if row is None:
        raise RuntimeError("the cluster query returned no row")
    return bytes(row[0])
