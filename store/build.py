"""Build the embedded store from the data folder: the ingest pipeline.

Steps: regions and zones, occupation classifier, postings (parse, de-duplicate,
classify), location of each posting (gazetteer), employer anchors, HR map
layers, simulated seekers, then one write. :func:`collect_build` returns the
frames, so the same result can be written to the SQLite file or to PostgreSQL.

A rebuild keeps curation (both writers apply the rule of :mod:`store.rebuild`).
Every anchor that staff touched keeps its curated record and its full history.
Staff touched an anchor when its version is above 1 or its source is
``curation`` (staff-created). The record contains the pin, precision, state,
version and every curation field. The build's fresh anchors fill in the rest.
Anchor ids come from the employer name and the gazetteer's precision and point
(:mod:`geo.anchors`), so a posting of the new data attaches to a kept anchor
when its computed ``anchor_id`` matches, and ``n_postings`` of kept anchors is
recounted from the new postings. Staff-created anchors without postings are
kept, and a kept anchor whose id the new data no longer produces keeps its
record with 0 postings: a rebuild never drops curated data. Merges are
replayed: postings whose computed ``anchor_id`` is a merged anchor move to its
survivor, which is kept as well. The SQLite writer
copies the kept rows from the old file into the new one before the atomic
rename. The PostgreSQL writer keeps them inside its single transaction. So in
both stores a failed write keeps the old data, curation included.
"""

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from geo.anchors import build_anchors, precision_counts
from geo.gazetteer import Gazetteer, build_gazetteer
from geo.layers import LayerInfo, load_layers
from geo.regions import load_regions
from geo.zones import load_zones
from matching.occupation import OccupationClassifier, load_occupations
from matching.postings import read_postings
from matching.seeker_simulation import generate_seekers
from store.sqlite import write_store

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as ``progress(stage, done, total)`` while a long step runs."""

SeekerProtector = Callable[[pd.DataFrame], pd.DataFrame]
"""Turns the simulated seekers into their stored, encrypted form
(``api.security.seeker_pi.SeekerPiCodec.protect``); the store layer holds no key."""

# generate_seekers reports six named steps.
SEEKER_STEPS = 6


@dataclass
class BuildReport:
    """Counts and timings of one build, for the terminal and the store's metadata."""

    postings: int = 0
    anchors: int = 0
    seekers: int = 0
    anchors_by_precision: dict[str, int] = field(default_factory=dict)
    postings_by_precision: dict[str, int] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    built_at: str = ""
    """UTC time the build finished reading its sources, ISO 8601 to the second."""

    def as_meta(self) -> dict[str, Any]:
        """Return the report as JSON-serialisable metadata."""
        return {
            "postings": self.postings,
            "anchors": self.anchors,
            "seekers": self.seekers,
            "seekers_simulated": True,
            "anchors_by_precision": self.anchors_by_precision,
            "postings_by_precision": self.postings_by_precision,
            "ingest": self.ingest,
            "layers": self.layers,
            "build_seconds": round(self.seconds, 1),
            "built_at": self.built_at,
        }


@dataclass
class BuildResult:
    """The frames a build produced, ready for either store's writer, and its report."""

    postings: pd.DataFrame
    anchors: pd.DataFrame
    seekers: pd.DataFrame
    layers: dict[str, tuple[LayerInfo, gpd.GeoDataFrame]]
    report: BuildReport

    def store_inputs(self) -> dict[str, Any]:
        """Return the keyword arguments of ``write_store`` and ``PostgresStore.replace_all``."""
        return {
            "postings": self.postings,
            "anchors": self.anchors,
            "seekers": self.seekers,
            "layers": self.layers,
            "meta": self.report.as_meta(),
        }


def build_store(
    data_dir: Path,
    store_path: Path,
    *,
    n_seekers: int,
    seed: int,
    protect_seekers: SeekerProtector,
    progress: ProgressCallback | None = None,
) -> BuildReport:
    """Read every source in ``data_dir`` and write the embedded store to ``store_path``.

    Parameters
    ----------
    data_dir : pathlib.Path
        Folder with one sub-folder per source (the shapes of the Xi'an data set).
    store_path : pathlib.Path
        SQLite file to write; replaced atomically when the build succeeds.
    n_seekers : int
        Number of simulated seekers to generate.
    seed : int
        Seed of the seeker simulation, so a build is reproducible.
    protect_seekers : callable
        Encrypts the seekers' personal fields before anything is written.
    progress : callable, optional
        Receives ``(stage, done, total)`` during long steps.

    Returns
    -------
    BuildReport
    """
    report_progress = progress or _ignore_progress
    result = collect_build(
        data_dir,
        n_seekers=n_seekers,
        seed=seed,
        protect_seekers=protect_seekers,
        progress=report_progress,
    )

    report_progress("write", 0, 1)
    write_store(store_path, **result.store_inputs())
    report_progress("write", 1, 1)
    return result.report


def collect_build(
    data_dir: Path,
    *,
    n_seekers: int,
    seed: int,
    protect_seekers: SeekerProtector,
    progress: ProgressCallback | None = None,
) -> BuildResult:
    """Read every source in ``data_dir`` and return the store's frames without writing them.

    Parameters are those of :func:`build_store`; the caller writes the result with
    ``write_store(path, **result.store_inputs())`` or ``PostgresStore.replace_all``.
    """
    started = time.perf_counter()
    report_progress = progress or _ignore_progress

    report_progress("regions", 0, 1)
    regions = load_regions(data_dir)
    zones = load_zones(data_dir, regions)
    report_progress("regions", 1, 1)

    occupations = load_occupations(data_dir)
    classifier = OccupationClassifier().fit(occupations)
    postings, ingest = read_postings(data_dir, classifier, progress=report_progress)

    gazetteer = build_gazetteer(data_dir, regions, zones)
    located = locate_postings(postings, gazetteer, report_progress)
    anchors, anchor_ids = build_anchors(located)
    postings = postings.assign(anchor_id=anchor_ids.to_numpy())

    report_progress("layers", 0, 1)
    layers = load_layers(data_dir, regions)
    report_progress("layers", 1, 1)

    seekers = generate_seekers(
        data_dir,
        n_seekers,
        seed,
        occupations=occupations,
        regions=regions,
        progress=_step_counter("seekers", SEEKER_STEPS, report_progress),
    )
    report_progress("seekers", SEEKER_STEPS, SEEKER_STEPS)
    report_progress("encrypt", 0, 1)
    seekers = protect_seekers(seekers)
    report_progress("encrypt", 1, 1)

    report = BuildReport(
        postings=len(postings),
        anchors=len(anchors),
        seekers=len(seekers),
        anchors_by_precision=precision_counts(anchors),
        postings_by_precision=precision_counts(located),
        ingest=dataclasses.asdict(ingest),
        layers={name: len(frame) for name, (_, frame) in layers.items()},
    )
    report.seconds = time.perf_counter() - started
    report.built_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    return BuildResult(postings, anchors, seekers, layers, report)


def locate_postings(
    postings: pd.DataFrame, gazetteer: Gazetteer, progress: ProgressCallback
) -> pd.DataFrame:
    """Locate every posting with the gazetteer, once per distinct (text, company, zones).

    Returns the postings with the columns ``lon``, ``lat`` (WGS84 degrees),
    ``precision``, ``location_source``, ``location_label`` and ``district_code``.
    """
    inputs = ["location_text", "company", "business_zones"]
    distinct = postings[inputs].fillna("").drop_duplicates().reset_index(drop=True)

    rows = []
    total = len(distinct)
    for done, (text, company, zones) in enumerate(distinct.itertuples(index=False), start=1):
        location = gazetteer.locate(
            text or None, company=company or None, business_zones=_split_zones(zones)
        )
        rows.append(
            (
                location.lon,
                location.lat,
                location.precision.value,
                location.source,
                location.label,
                location.district_code,
            )
        )
        if done % 2_000 == 0 or done == total:
            progress("locate", done, total)

    located_columns = [
        "lon",
        "lat",
        "precision",
        "location_source",
        "location_label",
        "district_code",
    ]
    distinct[located_columns] = pd.DataFrame(rows, columns=located_columns)
    merged = postings[inputs].fillna("").merge(distinct, on=inputs, how="left")
    merged.index = postings.index
    return postings.drop(columns=[c for c in located_columns if c in postings]).join(
        merged[located_columns]
    )


def _split_zones(joined: str) -> tuple[str, ...]:
    return tuple(zone for zone in joined.split(";") if zone)


def _step_counter(stage: str, total: int, progress: ProgressCallback) -> Callable[[str], None]:
    """Adapt a step-name callback to ``progress(stage, done, total)``."""
    done = 0

    def step(name: str) -> None:
        nonlocal done
        progress(stage, done, total)
        done += 1

    return step


def _ignore_progress(stage: str, done: int, total: int) -> None:
    return None
