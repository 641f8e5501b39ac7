"""Service-circle coverage: the city pass and one candidate station's marginal coverage.

City pass. The subject is `WalkGrid.minutes_from`: scipy's Dijkstra from a virtual
node linked to every employment station's snap cells, over the city-wide walking
grid. The baseline is networkx's ``multi_source_dijkstra_path_length`` on the same
graph (the same virtual node and links), converted to a networkx graph once before
timing. Both must give the same minutes for every cell to 1e-9.

Marginal coverage. The subject is `ServiceCircle.marginal_gain` for one candidate:
a Dijkstra from the candidate limited to the threshold, read at the places not yet
covered. The baseline recomputes the whole pass with the candidate added to the
stations and counts the places that change side. Both must count the same places.
The figure is the 99th percentile over the candidates, which are residential places
not yet covered, drawn at random.
"""

import logging
from collections.abc import Callable

import networkx as nx
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix

from bench.result import SPEED_UP, Comparison, ResultMismatchError, latency_comparison
from bench.timing import median, percentile, time_each, time_repeats
from geo.coverage.circle import ServiceCircle

logger = logging.getLogger(__name__)

CITY_RUN_SUBJECT = "WalkGrid.minutes_from (scipy.sparse.csgraph.dijkstra from a virtual node)"
CITY_RUN_BASELINE = "networkx.multi_source_dijkstra_path_length on the same graph"
GAIN_SUBJECT = "ServiceCircle.marginal_gain (Dijkstra from the candidate, limited)"
GAIN_BASELINE = "full coverage pass with the candidate added, places compared"

# Minutes by which the two Dijkstra implementations may differ (summation order).
_TOLERANCE_MIN = 1e-9


def bench_coverage_pass(
    circle: ServiceCircle, *, repeats: int, baseline_repeats: int = 1
) -> list[Comparison]:
    """Time the city coverage pass against networkx on the same graph.

    Parameters
    ----------
    circle
        A built service circle; its grid and stations are reused.
    repeats, baseline_repeats
        Timed runs of the subject and of the slower baseline; the medians count.

    Raises
    ------
    ResultMismatchError
        When the two implementations give different minutes for a cell.
    """
    grid, stations = circle.grid, circle.stations
    augmented = grid.with_sources(stations["lon"], stations["lat"])
    virtual = len(grid)
    graph = _to_networkx(augmented)

    def subject() -> np.ndarray:
        return grid.minutes_from(stations["lon"], stations["lat"])

    def baseline() -> dict[int, float]:
        lengths: dict[int, float] = nx.multi_source_dijkstra_path_length(graph, {virtual})
        return lengths

    _check_same_minutes(subject(), baseline(), virtual)
    subject_s = time_repeats(subject, repeats=repeats)
    baseline_s = time_repeats(baseline, repeats=baseline_repeats, warmup=0)
    details = {
        "cells": len(grid),
        "links": int(grid.graph.nnz),
        "stations": len(stations),
        "cell_m": grid.params.cell_m,
        "repeats": repeats,
        "baseline_repeats": baseline_repeats,
        "subject_s": subject_s,
        "baseline_s": baseline_s,
    }
    return [
        latency_comparison(
            "coverage",
            f"city pass, {len(grid):,} cells, {len(stations)} stations",
            subject=CITY_RUN_SUBJECT,
            baseline=CITY_RUN_BASELINE,
            subject_s=median(subject_s),
            baseline_s=median(baseline_s),
            ratio_meaning=SPEED_UP,
            details=details,
        )
    ]


def bench_marginal_gain(circle: ServiceCircle, *, candidates: int, seed: int) -> list[Comparison]:
    """Time one candidate's marginal coverage (p99) against a full recomputation.

    Raises
    ------
    ResultMismatchError
        When the two ways count different newly covered places for a candidate.
    """
    points = _candidate_points(circle.places, candidates, seed)
    gains: list[int] = []
    recounts: list[int] = []

    def subject(lon: float, lat: float) -> Callable[[], None]:
        return lambda: gains.append(circle.marginal_gain(lon, lat).newly_covered)

    def baseline(lon: float, lat: float) -> Callable[[], None]:
        return lambda: recounts.append(_recount(circle, lon, lat))

    subject_s = time_each([subject(lon, lat) for lon, lat in points])
    baseline_s = time_each([baseline(lon, lat) for lon, lat in points])
    if gains != recounts:
        wrong = [i for i, (a, b) in enumerate(zip(gains, recounts, strict=True)) if a != b]
        raise ResultMismatchError(
            f"marginal gain differs from the recount for {len(wrong)} candidates,"
            f" first at {points[wrong[0]]}: {gains[wrong[0]]} vs {recounts[wrong[0]]}"
        )

    details = {
        "candidates": len(points),
        "places": len(circle.places),
        "mean_newly_covered": float(np.mean(gains)),
        "subject_p50_s": percentile(subject_s, 50),
        "baseline_p50_s": percentile(baseline_s, 50),
        "subject_s": subject_s,
        "baseline_s": baseline_s,
    }
    return [
        latency_comparison(
            "coverage",
            f"one candidate's marginal coverage, p99 of {len(points)}",
            subject=GAIN_SUBJECT,
            baseline=GAIN_BASELINE,
            subject_s=percentile(subject_s, 99),
            baseline_s=percentile(baseline_s, 99),
            ratio_meaning=SPEED_UP,
            details=details,
        )
    ]


def _to_networkx(augmented: coo_matrix) -> nx.Graph:
    """Build an undirected networkx graph with ``weight`` attributes from a sparse matrix."""
    links = coo_matrix(augmented)
    graph = nx.Graph()
    graph.add_nodes_from(range(links.shape[0]))
    graph.add_weighted_edges_from(
        zip(links.row.tolist(), links.col.tolist(), links.data.tolist(), strict=True)
    )
    return graph


def _check_same_minutes(subject: np.ndarray, baseline: dict[int, float], virtual: int) -> None:
    expected = np.full(len(subject), np.inf)
    cells = np.array([node for node in baseline if node != virtual], dtype=np.intp)
    expected[cells] = [baseline[int(node)] for node in cells]
    finite = np.isfinite(expected)
    if not np.array_equal(finite, np.isfinite(subject)):
        raise ResultMismatchError("scipy and networkx reach different sets of cells")
    worst = float(np.max(np.abs(subject[finite] - expected[finite]), initial=0.0))
    if worst > _TOLERANCE_MIN:
        raise ResultMismatchError(f"scipy and networkx minutes differ by up to {worst:.3g} min")


def _candidate_points(places: pd.DataFrame, count: int, seed: int) -> list[tuple[float, float]]:
    uncovered = places.loc[~places["covered"], ["lon", "lat"]].drop_duplicates()
    if count > len(uncovered):
        raise ValueError(f"{count} candidates requested but only {len(uncovered)} places uncovered")
    rows = np.random.default_rng(seed).choice(len(uncovered), size=count, replace=False)
    chosen = uncovered.iloc[np.sort(rows)]
    return list(zip(chosen["lon"].tolist(), chosen["lat"].tolist(), strict=True))


def _recount(circle: ServiceCircle, lon: float, lat: float) -> int:
    """Count places newly covered by recomputing the pass with the candidate added."""
    stations = circle.stations
    lons = np.append(stations["lon"].to_numpy(float), lon)
    lats = np.append(stations["lat"].to_numpy(float), lat)
    cell_minutes = circle.grid.minutes_from(lons, lats)
    minutes = circle.grid.read(cell_minutes, circle.places["lon"], circle.places["lat"])
    now_covered = minutes <= circle.threshold_min
    return int((now_covered & ~circle.places["covered"].to_numpy()).sum())
