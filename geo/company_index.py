"""Company-name index over real Baidu POIs, for geocoding posting employers.

Postings name their employer (usually the legal name); the Baidu POI files name
firms the same way. An exact match on a normalised name places the posting at
the employer's own POI. Fuzzy matches are offered for curation only, because a
near-miss name is a different company often enough to give a false precision.
"""

import difflib
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from geo.crs import CoordSys, to_metric, to_wgs84_arrays
from geo.errors import DataSourceError

logger = logging.getLogger(__name__)

BAIDU_POI_DIR = "xian_poi_baidu_richiebao"

# POIs of the same normalised name within this distance of each other are one
# employer (the Baidu files repeat a firm at points a few metres apart).
DEFAULT_MAX_SPREAD_M = 300.0

# Legal-form endings removed from the key, longest first, repeatedly.
LEGAL_FORM_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "(集团)", "集团")

# Region prefixes removed from the key, because 陕西 and 西安 firms are listed with or without them.
# NOTE: 西安X公司 and 陕西X公司 then share a key although they may be two firms; the
# one-place rule of CompanyIndex does not catch a namesake with a single POI.
REGION_PREFIXES = ("陕西省", "西安市", "陕西", "西安")

# A key shorter than this after stripping keeps the stripped part instead.
MIN_KEY_CHARS = 2

_WHITESPACE = re.compile(r"\s+")
_TRAILING_BRACKET = re.compile(r"\([^()]*\)$")


@dataclass(frozen=True, slots=True)
class PointOfInterest:
    """A named map POI in WGS84 (EPSG:4326, degrees).

    ``source`` is ``<dataset>:<file>``, e.g. ``baidu_poi:companies.csv``;
    ``category`` is the kind of place (``company``, ``training``,
    ``office_building``, ``industrial_park``, ``residential`` …).
    """

    name: str
    lon: float
    lat: float
    source: str
    category: str


def read_poi_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """Read a POI CSV file and check that it has ``columns``.

    Raises
    ------
    DataSourceError
        If the file is missing or lacks one of ``columns``.
    """
    try:
        table = pd.read_csv(path)
    except FileNotFoundError as err:
        raise DataSourceError(f"POI file {path} not found; check data_dir") from err
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DataSourceError(f"POI file {path} lacks columns {missing}; found {list(table)}")
    return table


def pois_from_frame(
    table: pd.DataFrame,
    *,
    source: str,
    category: str | pd.Series,
    name_column: str = "name",
    lon_column: str = "lng_gcj02",
    lat_column: str = "lat_gcj02",
) -> list[PointOfInterest]:
    """Convert named GCJ-02 rows to WGS84 POIs.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with a name column and GCJ-02 longitude/latitude columns (degrees).
    source : str
        Value stored in :attr:`PointOfInterest.source`.
    category : str or pandas.Series
        One category for every row, or a per-row series aligned with ``table``.
    name_column, lon_column, lat_column : str
        Column names of the name and of the GCJ-02 coordinates.

    Returns
    -------
    list of PointOfInterest
        Rows with a name and both coordinates, in WGS84; other rows are skipped.
    """
    kinds = pd.Series(category, index=table.index) if isinstance(category, str) else category
    table = table.assign(_category=kinds).dropna(subset=[name_column, lon_column, lat_column])

    lons, lats = to_wgs84_arrays(
        table[lon_column].to_numpy(float), table[lat_column].to_numpy(float), CoordSys.GCJ02
    )
    return [
        PointOfInterest(str(name).strip(), float(lon), float(lat), source, str(kind))
        for name, lon, lat, kind in zip(
            table[name_column], lons, lats, table["_category"], strict=True
        )
    ]


def normalise_company_name(name: str) -> str:
    """Return the lookup key of a company name.

    Steps: NFKC (full-width brackets and letters become half-width), remove
    whitespace, remove one bracketed group at the very end (a branch or shop
    qualifier such as ``(北大街门市部)``), then repeatedly strip legal-form endings
    (:data:`LEGAL_FORM_SUFFIXES`) and region prefixes (:data:`REGION_PREFIXES`),
    and case-fold Latin letters. A bracket inside the name stays, because in a
    legal name such as ``群光实业(西安)有限公司`` it is part of the registered name.

    Parameters
    ----------
    name : str
        Company name as listed in a posting or a POI file.

    Returns
    -------
    str
        The key; two names with the same key are treated as the same employer.
    """
    key = _WHITESPACE.sub("", unicodedata.normalize("NFKC", name))
    key = _TRAILING_BRACKET.sub("", key) or key

    changed = True
    while changed:
        changed = False
        for suffix in LEGAL_FORM_SUFFIXES:
            if key.endswith(suffix) and len(key) - len(suffix) >= MIN_KEY_CHARS:
                key = key[: -len(suffix)]
                changed = True
        for prefix in REGION_PREFIXES:
            if key.startswith(prefix) and len(key) - len(prefix) >= MIN_KEY_CHARS:
                key = key[len(prefix) :]
                changed = True
    return key.casefold()


class CompanyIndex:
    """Exact lookup of company POIs by normalised name.

    Parameters
    ----------
    pois : iterable of PointOfInterest
        Company POIs in WGS84.
    max_spread_m : float
        POIs sharing a key count as one employer when every pair is at most this
        many metres apart, measured in EPSG:4545. Otherwise the key is a chain.
    """

    def __init__(
        self, pois: Iterable[PointOfInterest], max_spread_m: float = DEFAULT_MAX_SPREAD_M
    ) -> None:
        self._by_key: dict[str, list[PointOfInterest]] = {}
        for poi in pois:
            self._by_key.setdefault(normalise_company_name(poi.name), []).append(poi)
        self._unambiguous = _unambiguous_keys(self._by_key, max_spread_m)
        logger.info(
            "company index: %d POIs under %d keys, %d keys unambiguous",
            sum(len(group) for group in self._by_key.values()),
            len(self._by_key),
            len(self._unambiguous),
        )

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, name: str) -> list[PointOfInterest]:
        """Return every POI whose normalised name equals that of ``name``."""
        return list(self._by_key.get(normalise_company_name(name), ()))

    def unambiguous_poi(self, name: str) -> PointOfInterest | None:
        """Return the employer's POI when the name points to one place, else ``None``.

        One place means a single POI, or several POIs within ``max_spread_m`` of
        each other (the first one in file order is returned). A chain with
        branches across town returns ``None``.
        """
        return self._unambiguous.get(normalise_company_name(name))

    def fuzzy_candidates(self, name: str, limit: int = 5, cutoff: float = 0.8) -> list[str]:
        """Return up to ``limit`` index keys similar to ``name`` (difflib ratio ≥ ``cutoff``).

        For curation lists only: a similar name is not evidence of the same
        employer, so the gazetteer never geocodes with these.
        """
        key = normalise_company_name(name)
        return difflib.get_close_matches(key, list(self._by_key), n=limit, cutoff=cutoff)


def _unambiguous_keys(
    by_key: dict[str, list[PointOfInterest]], max_spread_m: float
) -> dict[str, PointOfInterest]:
    result: dict[str, PointOfInterest] = {}
    for key, group in by_key.items():
        if len(group) == 1:
            result[key] = group[0]
            continue

        x, y = to_metric([poi.lon for poi in group], [poi.lat for poi in group])
        spread = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]).max()
        if spread <= max_spread_m:
            result[key] = group[0]
    return result


def load_company_pois(data_dir: Path) -> list[PointOfInterest]:
    """Load the company POIs of the Baidu files, in WGS84.

    Sources: ``companies.csv`` (every row), ``training_institutions.csv`` (schools
    post jobs under their own names) and the rows of
    ``realestate_residential_offices.csv`` whose Baidu tag contains 公司.

    Parameters
    ----------
    data_dir : pathlib.Path
        The data folder containing ``xian_poi_baidu_richiebao/``.

    Returns
    -------
    list of PointOfInterest
    """
    folder = data_dir / BAIDU_POI_DIR
    columns = ["name", "lng_gcj02", "lat_gcj02"]

    companies = read_poi_csv(folder / "companies.csv", columns)
    schools = read_poi_csv(folder / "training_institutions.csv", columns)
    offices = read_poi_csv(folder / "realestate_residential_offices.csv", [*columns, "tag"])
    firms = offices[offices["tag"].fillna("").str.contains("公司")]

    return [
        *pois_from_frame(companies, source="baidu_poi:companies.csv", category="company"),
        *pois_from_frame(
            schools, source="baidu_poi:training_institutions.csv", category="training"
        ),
        *pois_from_frame(
            firms, source="baidu_poi:realestate_residential_offices.csv", category="company"
        ),
    ]


def load_company_index(data_dir: Path, max_spread_m: float = DEFAULT_MAX_SPREAD_M) -> CompanyIndex:
    """Build the :class:`CompanyIndex` from :func:`load_company_pois`."""
    return CompanyIndex(load_company_pois(data_dir), max_spread_m=max_spread_m)
