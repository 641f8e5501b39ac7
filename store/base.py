"""The read interface that both stores implement: SQLite (embedded) and PostgreSQL.

The service, the recommender and the command line depend on :class:`ReadStore`
only, so the store behind them is a setting. Both implementations pass the
contract suite in ``tests/store/test_contract.py``.
"""

from collections.abc import Collection
from typing import Any, Protocol, runtime_checkable

import geopandas as gpd
import pandas as pd


@runtime_checkable
class ReadStore(Protocol):
    """Read access to the postings, anchors, seekers, map layers and build metadata."""

    def describe(self) -> str:
        """Return a one-line description of the store for logs, without any secret."""
        ...

    def meta(self) -> dict[str, Any]:
        """Return the build metadata (counts, reports, timings) stored with the data."""
        ...

    def postings_frame(self) -> pd.DataFrame:
        """Return active postings joined with their anchor's point, precision and district."""
        ...

    def seekers_frame(self) -> pd.DataFrame:
        """Return every seeker, with a boolean ``simulated`` column."""
        ...

    def anchors_in_bbox(
        self,
        bbox: tuple[float, float, float, float],
        limit: int,
        exclude_precisions: Collection[str] = (),
    ) -> pd.DataFrame:
        """Return up to ``limit`` anchors inside a WGS84 bbox (min_lon, min_lat, max_lon, max_lat).

        Rows are ordered by ``n_postings`` descending, then ``anchor_id``.
        """
        ...

    def anchors_frame(self) -> pd.DataFrame:
        """Return every anchor."""
        ...

    def layer_infos(self) -> list[dict[str, str]]:
        """Return the metadata of every map layer, in name order."""
        ...

    def layer_frame(self, name: str) -> gpd.GeoDataFrame:
        """Return one map layer as a WGS84 GeoDataFrame; raise LayerNotFoundError when unknown."""
        ...
