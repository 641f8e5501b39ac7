"""Employer map anchors (用人单位地图锚点) built from located postings.

An anchor is one employer at one place. Postings of the same employer that
were located to the same point with the same precision share an anchor; the
same employer at two places (two districts, or a POI and a district guess)
gets two anchors, because station staff curate each place separately.
"""

import hashlib
import logging
import re
import unicodedata

import pandas as pd

from geo.location import Precision

logger = logging.getLogger(__name__)

# Points closer than this share an anchor key: 1e-5 degrees is about 1 m in Xi'an.
COORD_KEY_DECIMALS = 5

_SPACE = re.compile(r"\s+")

ANCHOR_COLUMNS = [
    "anchor_id",
    "name",
    "lon",
    "lat",
    "precision",
    "source",
    "location_label",
    "district_code",
    "state",
    "n_postings",
]


def employer_key(name: str) -> str:
    """Return the comparison key of an employer name: NFKC, no spaces, lower case."""
    folded = unicodedata.normalize("NFKC", name or "")
    return _SPACE.sub("", folded).lower()


def build_anchors(located: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Group located postings into employer anchors.

    Parameters
    ----------
    located : pandas.DataFrame
        One row per posting with columns ``company``, ``lon``, ``lat`` (WGS84,
        degrees), ``precision`` (a :class:`Precision` value), ``location_source``,
        ``location_label`` and ``district_code``.

    Returns
    -------
    anchors : pandas.DataFrame
        Columns :data:`ANCHOR_COLUMNS`; ``state`` is ``draft`` for every anchor
        built from postings (station staff verify them later).
    anchor_ids : pandas.Series
        The anchor id of each posting, aligned with ``located.index``.
    """
    keys = _anchor_keys(located)
    anchor_ids = keys.map(_anchor_id)

    grouped = located.assign(anchor_id=anchor_ids).groupby("anchor_id", sort=False)
    anchors = grouped.agg(
        name=("company", "first"),
        lon=("lon", "first"),
        lat=("lat", "first"),
        precision=("precision", "first"),
        source=("location_source", "first"),
        location_label=("location_label", "first"),
        district_code=("district_code", "first"),
        n_postings=("company", "size"),
    ).reset_index()
    anchors["state"] = "draft"

    logger.info("built %d anchors from %d postings", len(anchors), len(located))
    return anchors[ANCHOR_COLUMNS], anchor_ids


def precision_counts(anchors: pd.DataFrame) -> dict[str, int]:
    """Count anchors per precision level, best level first, zeros included."""
    counts = anchors["precision"].value_counts()
    return {level.value: int(counts.get(level.value, 0)) for level in Precision}


def _anchor_keys(located: pd.DataFrame) -> pd.Series:
    employer = located["company"].fillna("").map(employer_key)
    lon = located["lon"].round(COORD_KEY_DECIMALS).astype(str)
    lat = located["lat"].round(COORD_KEY_DECIMALS).astype(str)
    precision = located["precision"].astype(str)
    return employer + "|" + precision + "|" + lon + "|" + lat


def _anchor_id(key: str) -> str:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).hexdigest()
    return f"anc-{digest}"
