"""Graduate zone (高校毕业生专区): major-matched and traineeship jobs, and counts per university.

A graduate's zone lists the jobs within their commute limit, from home or from their
campus, that take graduates. Such a job is a traineeship (见习/实习) post, a post whose
occupation lies under the graduate's major (`matching.majors`), or a post open to fresh
graduates (应届). Traineeships come first, then major matches, then the baseline
score of `matching.scoring`.

The analyst view counts, for each of the 63 universities in the data folder, how
many of its graduates have at least one such job in each district. A graduate's
university is the ``university`` column when the frame has one. Stored seekers keep
the campus only inside the encrypted home, so for them it is the campus whose point
lies within `CAMPUS_MATCH_M` of the graduate's exact home, for graduates homed at a
campus (``home_kind`` ``university``). Other graduates count under no university.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.neighbors import BallTree

from geo.crs import EARTH_RADIUS_M, CoordSys, to_wgs84_arrays
from geo.errors import DataSourceError, DoorstepError
from matching.candidates import JobIndex, StraightLineCommute, parse_modes
from matching.features import policy_post_flags
from matching.majors import major_fits
from matching.scoring import score_jobs

logger = logging.getLogger(__name__)

UNIVERSITY_FILE = "xian_universities/xian_universities_baidu_poi.csv"

CAMPUS_MATCH_M = 50.0
"""Metres within which an exact home counts as the campus: simulated campus homes are the
campus point itself, and street office points (the stored stand-in) lie farther away."""

Origin = Literal["home", "campus"]


class NoCampusError(DoorstepError, LookupError):
    """The graduate has no known campus, so jobs near the campus cannot be listed."""


def load_campuses(data_dir: Path) -> pd.DataFrame:
    """Read the 63 university campuses of the data folder.

    Returns
    -------
    pandas.DataFrame
        ``university`` (campus name as in the source), ``moe_code`` (10 digits or
        ""), ``lon``/``lat`` (WGS84 degrees, converted from GCJ-02), in file order.

    Raises
    ------
    DataSourceError
        When the file is missing or lacks a column.
    """
    path = data_dir / UNIVERSITY_FILE
    try:
        frame = pd.read_csv(path, dtype={"name": str, "moe_code": str})
    except (OSError, ValueError) as err:
        raise DataSourceError(f"cannot read {path}: {err}") from err
    missing = {"name", "moe_code", "lng_gcj02", "lat_gcj02"} - set(frame.columns)
    if missing:
        raise DataSourceError(f"{path} lacks columns {sorted(missing)}")
    lons, lats = to_wgs84_arrays(
        frame["lng_gcj02"].to_numpy(dtype=np.float64),
        frame["lat_gcj02"].to_numpy(dtype=np.float64),
        CoordSys.GCJ02,
    )
    return pd.DataFrame(
        {
            "university": frame["name"].astype(str),
            "moe_code": frame["moe_code"].fillna("").astype(str),
            "lon": lons,
            "lat": lats,
        }
    )


def graduate_universities(seekers: pd.DataFrame, campuses: pd.DataFrame) -> pd.Series:
    """Return each seeker's university name, "" when unknown or not a graduate.

    Parameters
    ----------
    seekers
        Seekers with ``group``, and either ``university`` or ``home_kind`` with the
        exact home in ``home_lon``/``home_lat`` (WGS84 degrees).
    campuses
        Frame of :func:`load_campuses`.
    """
    graduate = seekers["group"].astype(str).to_numpy() == "graduate"
    if "university" in seekers.columns:
        named = seekers["university"].fillna("").astype(str)
        return named.where(graduate, "")

    result = np.full(len(seekers), "", dtype=object)
    at_campus = graduate & (seekers["home_kind"].astype(str).to_numpy() == "university")
    if at_campus.any() and len(campuses):
        tree = BallTree(np.radians(campuses[["lat", "lon"]].to_numpy()), metric="haversine")
        homes = np.radians(seekers.loc[at_campus, ["home_lat", "home_lon"]].to_numpy(np.float64))
        distance, nearest = tree.query(homes, k=1)
        close = distance[:, 0] * EARTH_RADIUS_M <= CAMPUS_MATCH_M
        names = campuses["university"].to_numpy(dtype=object)[nearest[:, 0]]
        result[np.flatnonzero(at_campus)] = np.where(close, names, "")
    return pd.Series(result, index=seekers.index, dtype=object)


def graduate_fit(seeker: pd.Series, postings: pd.DataFrame) -> pd.DataFrame:
    """Return the zone flags of postings for one graduate.

    Returns
    -------
    pandas.DataFrame
        Index of ``postings``, boolean columns ``traineeship``, ``major_fit``,
        ``graduate_ok``, ``education_ok`` (requirement unknown, none or met) and
        ``fits`` (education met and one of the first three).
    """
    traineeship, _, _ = policy_post_flags(postings)
    major = major_fits(str(seeker.get("major") or ""), postings["occupation_code"])
    fresh = pd.to_numeric(postings["graduate_ok"], errors="coerce").fillna(0).to_numpy() == 1
    required = pd.to_numeric(postings["education"], errors="coerce").fillna(-1).to_numpy()
    education_ok = required <= int(seeker.get("education", 0))
    flags = pd.DataFrame(
        {
            "traineeship": traineeship,
            "major_fit": major,
            "graduate_ok": fresh,
            "education_ok": education_ok,
        },
        index=postings.index,
    )
    flags["fits"] = flags["education_ok"] & (traineeship | major | fresh)
    return flags


def graduate_zone_jobs(
    index: JobIndex,
    seeker: pd.Series,
    limit: int,
    *,
    near: Origin = "home",
    campus: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """List the zone's jobs for one graduate: traineeships, then major matches, then score.

    Parameters
    ----------
    index
        The job index of the service (`matching.recommend.Recommender.index`).
    seeker
        A graduate's row (``major``, ``education``, commute limit and modes, home).
    limit
        Most jobs returned.
    near
        ``home`` searches from the home, ``campus`` from ``campus``.
    campus
        The campus point (lon, lat), WGS84 degrees; required when ``near`` is ``campus``.

    Returns
    -------
    pandas.DataFrame
        Rows of `JobIndex.for_commute` with the baseline ``score`` and the flags of
        :func:`graduate_fit`, at most ``limit``.

    Raises
    ------
    NoCampusError
        When ``near`` is ``campus`` and ``campus`` is None.
    """
    if near == "campus" and campus is None:
        raise NoCampusError(
            f"seeker {seeker.get('seeker_id')!r} has no known campus; use near=home"
        )
    lon, lat = campus if near == "campus" and campus is not None else _home(seeker)
    candidates = index.for_commute(
        lon, lat, float(seeker["max_commute_min"]), str(seeker.get("modes") or "transit")
    )
    if candidates.empty:
        return candidates.assign(score=pd.Series(dtype=np.float64))
    scored = score_jobs(seeker, candidates)
    flags = graduate_fit(seeker, scored)
    # The posting's own 0/1 graduate_ok column gives way to the boolean flag.
    scored = scored.drop(columns=[name for name in flags.columns if name in scored.columns])
    zone = pd.concat([scored, flags], axis=1).loc[flags["fits"]]
    zone = zone.sort_values(
        ["traineeship", "major_fit", "score"], ascending=False, kind="stable"
    ).head(limit)
    return zone.reset_index(drop=True)


@dataclass(frozen=True)
class UniversityCounts:
    """Graduates per university, and those with a fitting job per district."""

    graduates: pd.DataFrame
    """One row per campus of the data folder, zeros included: ``university``,
    ``moe_code``, ``graduates``."""
    matched: pd.DataFrame
    """``university``, ``district_code``, ``matched_graduates``: graduates with at least
    one fitting job located in the district within their straight-line commute reach."""
    graduates_without_university: int


def university_district_counts(
    seekers: pd.DataFrame, postings: pd.DataFrame, campuses: pd.DataFrame
) -> UniversityCounts:
    """Count, per university and district, the graduates with a fitting job in reach.

    A graduate reaches a posting when the great-circle distance from home to the
    posting's point is within `StraightLineCommute.reach_m` of their commute limit by
    their fastest mode. City-level postings have no place and are left out. Graduates
    are grouped by major and education, and each group queries one BallTree of the
    distinct points of the postings that fit it.

    Parameters
    ----------
    seekers
        Seekers with ``group``, ``major``, ``education``, ``max_commute_min``, ``modes``
        and the home (see :func:`graduate_universities`).
    postings
        Postings with ``lon``/``lat`` (WGS84 degrees), ``precision``,
        ``district_code`` and the columns of :func:`graduate_fit`.
    campuses
        Frame of :func:`load_campuses`.
    """
    universities = graduate_universities(seekers, campuses)
    graduates = seekers.loc[seekers["group"].astype(str) == "graduate"].assign(
        university=universities
    )
    totals = graduates.loc[graduates["university"] != ""].groupby("university").size()
    per_campus = campuses[["university", "moe_code"]].assign(
        graduates=campuses["university"].map(totals).fillna(0).astype(int)
    )

    located = postings.loc[
        (postings["precision"].astype(str) != "city")
        & postings["lon"].notna()
        & postings["district_code"].notna()
    ]
    known = graduates.loc[graduates["university"] != ""]
    matched = _matched_pairs(known, located)
    counts = (
        matched.groupby(["university", "district_code"])
        .size()
        .rename("matched_graduates")
        .reset_index()
    )
    without = int((graduates["university"] == "").sum())
    logger.info(
        "graduate zone: %d graduates, %d without a known university, %d university-district pairs",
        len(graduates),
        without,
        len(counts),
    )
    return UniversityCounts(per_campus, counts, without)


def _matched_pairs(graduates: pd.DataFrame, located: pd.DataFrame) -> pd.DataFrame:
    """Return the distinct (seeker_id, university, district_code) of graduates and fitting jobs."""
    reach = _reach_m(graduates)
    pairs: list[pd.DataFrame] = []
    for (major, education), group in graduates.groupby(["major", "education"], sort=True):
        probe = pd.Series({"major": str(major), "education": int(str(education))}, dtype=object)
        fits = graduate_fit(probe, located)["fits"].to_numpy()
        points = located.loc[fits, ["lat", "lon", "district_code"]].drop_duplicates()
        if points.empty:
            continue
        tree = BallTree(np.radians(points[["lat", "lon"]].to_numpy(np.float64)), metric="haversine")
        homes = np.radians(group[["home_lat", "home_lon"]].to_numpy(np.float64))
        radius = reach[graduates.index.get_indexer(group.index)] / EARTH_RADIUS_M
        found = tree.query_radius(homes, r=radius)
        districts = points["district_code"].astype(str).to_numpy()
        for seeker_id, university, rows in zip(
            group["seeker_id"], group["university"], found, strict=True
        ):
            if len(rows):
                unique = np.unique(districts[rows])
                pairs.append(
                    pd.DataFrame(
                        {"seeker_id": seeker_id, "university": university, "district_code": unique}
                    )
                )
    if not pairs:
        return pd.DataFrame(columns=["seeker_id", "university", "district_code"])
    return pd.concat(pairs, ignore_index=True).drop_duplicates()


def _reach_m(seekers: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Return each seeker's straight-line reach in metres by their fastest allowed mode."""
    estimator = StraightLineCommute()
    reach = np.zeros(len(seekers), dtype=np.float64)
    for position, (limit, modes) in enumerate(
        zip(seekers["max_commute_min"], seekers["modes"], strict=True)
    ):
        allowed = parse_modes(str(modes or "transit"))
        reach[position] = max(estimator.reach_m(float(limit), mode) for mode in allowed)
    return reach


def _home(seeker: pd.Series) -> tuple[float, float]:
    return float(seeker["home_lon"]), float(seeker["home_lat"])
