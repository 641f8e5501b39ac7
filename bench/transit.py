"""Transit commute matrix: `TransitNetwork.matrix` against one Dijkstra run per origin.

The subject computes minutes from every origin to every destination with walking
and transit allowed: each point's nearest stops, the stop-to-stop minutes computed
when the network was built, and numpy broadcasting. The baseline is the direct
way to get the same numbers. It adds the destinations to the network graph once,
with an edge from each of their nearest stops weighted by the walk. For each origin
it then adds the origin with edges to its nearest stops, runs scipy's Dijkstra from
it without a search limit, and takes the minimum with walking directly. Both sides
use the same nearest stops, so they agree wherever the baseline's transit trip
takes at most ``max_transit_min`` minutes; beyond that the subject's stop-to-stop
search stops and it may only be slower. The check allows 1e-3 minutes for the
subject's float32 sums.

Two more figures: the build, `TransitNetwork.from_data_dir` without a cache against
reading the metro files and deriving the bus stops alone; and candidate retrieval,
`JobIndex.for_commute` for the seekers of the store with the network against the
straight-line model.
"""

import logging
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix, vstack
from scipy.sparse.csgraph import dijkstra

from bench.result import COST, SPEED_UP, Comparison, ResultMismatchError
from bench.timing import median, percentile, time_repeats
from geo.crs import haversine_m
from geo.location import Precision
from geo.transit import TransitNetwork, TransitParameters
from geo.transit.bus import load_bus_stops
from geo.transit.metro import load_metro
from matching.candidates import JobIndex
from matching.seeker_simulation import load_home_anchors

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

MODES = "walk;transit"
SUBJECT = "TransitNetwork.matrix (nearest stops + precomputed stop-to-stop minutes)"
BASELINE = "scipy dijkstra per origin on the graph with the origin and destinations added"
BUILD_SUBJECT = "TransitNetwork.from_data_dir, no cache"
BUILD_BASELINE = "load_metro + load_bus_stops (read files, derive stops)"

# Minutes by which the subject's float32 sums may differ from the float64 baseline.
_TOLERANCE_MIN = 1e-3


def home_points(data_dir: Path, count: int, seed: int) -> tuple[FloatArray, FloatArray]:
    """Draw ``count`` distinct real home anchors (compounds, dormitories, campuses), WGS84.

    Raises
    ------
    ValueError
        When the data has fewer distinct homes than ``count``.
    """
    homes = load_home_anchors(data_dir)[["lon", "lat"]].drop_duplicates()
    if count > len(homes):
        raise ValueError(f"{count} points requested but the data has {len(homes)} homes")
    rows = np.random.default_rng(seed).choice(len(homes), size=count, replace=False)
    chosen = homes.iloc[np.sort(rows)]
    return chosen["lon"].to_numpy(dtype=np.float64), chosen["lat"].to_numpy(dtype=np.float64)


def anchor_points(postings: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """Return one point per anchor of the located postings, WGS84.

    Anchors at district or zone precision share their area's point, so many points
    repeat; both sides of the benchmark compute each distinct point once.
    """
    located = postings.loc[postings["precision"].astype(str) != Precision.CITY.value]
    anchors = located.dropna(subset=["lon", "lat"]).drop_duplicates("anchor_id")
    return anchors["lon"].to_numpy(dtype=np.float64), anchors["lat"].to_numpy(dtype=np.float64)


def bench_transit_build(data_dir: Path) -> tuple[TransitNetwork, list[Comparison]]:
    """Build the network once without a cache, timed, against reading its inputs alone.

    Returns the network, which the matrix benchmark then uses, and the build figure.
    """
    params = TransitParameters()
    started = time.perf_counter()
    load_metro(data_dir)
    load_bus_stops(data_dir, params.bus_stop_spacing_m, params.bus_cell_m)
    inputs_s = time.perf_counter() - started

    started = time.perf_counter()
    network = TransitNetwork.from_data_dir(data_dir, params)
    build_s = time.perf_counter() - started

    comparison = Comparison(
        benchmark="transit_matrix",
        case="build",
        unit="s",
        subject=BUILD_SUBJECT,
        baseline=BUILD_BASELINE,
        subject_value=build_s,
        baseline_value=inputs_s,
        ratio=build_s / inputs_s,
        ratio_meaning=COST,
        details={
            "graph_nodes": network.graph.n_nodes,
            "graph_edges": int(network.graph.weights.nnz),
            "stop_matrix_shape": list(network.stop_minutes.shape),
            "max_transit_min": params.max_transit_min,
        },
    )
    return network, [comparison]


def bench_transit_matrix(
    network: TransitNetwork,
    origins: tuple[FloatArray, FloatArray],
    destinations: tuple[FloatArray, FloatArray],
    *,
    repeats: int = 3,
) -> list[Comparison]:
    """Compare the time of `TransitNetwork.matrix` and of one Dijkstra run per origin.

    Parameters
    ----------
    network
        The built network.
    origins, destinations
        (lons, lats) arrays, WGS84 degrees.
    repeats
        Timed subject passes; the median counts. The baseline runs once, as its
        checking pass.

    Returns
    -------
    list of Comparison
        One figure in seconds per full matrix.

    Raises
    ------
    ResultMismatchError
        When the two sides disagree on a pair, as described in the module docstring.
    """
    baseline_started = time.perf_counter()
    expected = _baseline_matrix(network, origins, destinations)
    baseline_s = time.perf_counter() - baseline_started
    subject = network.matrix(*origins, *destinations, MODES)
    checked = _check_same(subject, expected, network.params.max_transit_min)

    subject_s = time_repeats(
        lambda: network.matrix(*origins, *destinations, MODES), repeats=repeats, warmup=0
    )
    pairs = len(origins[0]) * len(destinations[0])
    distinct = len(np.unique(np.column_stack(destinations), axis=0))
    transit_wins = float((subject < _walk_matrix(network, origins, destinations)).mean())
    return [
        Comparison(
            benchmark="transit_matrix",
            case=f"{len(origins[0])} × {len(destinations[0])}",
            unit="s",
            subject=SUBJECT,
            baseline=BASELINE,
            subject_value=median(subject_s),
            baseline_value=baseline_s,
            ratio=baseline_s / median(subject_s),
            ratio_meaning=SPEED_UP,
            details={
                "origins": len(origins[0]),
                "destinations": len(destinations[0]),
                "distinct_destination_points": distinct,
                "modes": MODES,
                "pairs": pairs,
                "pairs_checked_equal": checked,
                "share_faster_than_walking": transit_wins,
                "subject_seconds": subject_s,
                "baseline_seconds": [baseline_s],
            },
        )
    ]


def _walk_matrix(
    network: TransitNetwork,
    origins: tuple[FloatArray, FloatArray],
    destinations: tuple[FloatArray, FloatArray],
) -> npt.NDArray[np.float32]:
    return network.mode_matrices(*origins, *destinations, "walk")["walk"]


def _baseline_matrix(
    network: TransitNetwork,
    origins: tuple[FloatArray, FloatArray],
    destinations: tuple[FloatArray, FloatArray],
) -> FloatArray:
    """Minutes with walking and transit, one unlimited Dijkstra run per origin.

    Each distinct destination point is one graph node, as the subject computes each
    distinct point once.
    """
    points, inverse = np.unique(np.column_stack(destinations), axis=0, return_inverse=True)
    distinct = _baseline_distinct(network, origins, (points[:, 0], points[:, 1]))
    return distinct[:, inverse.ravel()]


def _baseline_distinct(
    network: TransitNetwork,
    origins: tuple[FloatArray, FloatArray],
    destinations: tuple[FloatArray, FloatArray],
) -> FloatArray:
    graph = network.graph
    params = network.params
    n_nodes, n_dests = graph.n_nodes, len(destinations[0])
    origin_node = n_nodes + n_dests

    egress, egress_min = network.nearest_stops(*destinations)
    usable = np.isfinite(egress_min)
    network_edges = graph.weights.tocoo()
    # Sparse addition would drop the graph's zero-minute edges, so the edges are joined
    # as arrays. Several nearest stops may share a cell; the shortest walk to it counts.
    with_dests = _min_duplicates(
        np.concatenate([network_edges.row, graph.egress_nodes[egress[usable]]]),
        np.concatenate([network_edges.col, n_nodes + np.nonzero(usable)[0]]),
        np.concatenate([network_edges.data, egress_min[usable].astype(np.float64)]),
        shape=(origin_node, origin_node + 1),
    )

    access, access_min = network.nearest_stops(*origins)
    walk_per_m = params.walk_detour_factor / params.walk_m_per_min
    result = np.empty((len(origins[0]), n_dests), dtype=np.float64)
    for row in range(len(origins[0])):
        ok = np.isfinite(access_min[row])
        origin_row = _min_duplicates(
            np.zeros(int(ok.sum()), dtype=np.intp),
            graph.access_nodes[access[row][ok]],
            access_min[row][ok].astype(np.float64),
            shape=(1, origin_node + 1),
        )
        full = vstack([with_dests, origin_row], format="csr")
        distances = dijkstra(full, directed=True, indices=origin_node)
        walked = haversine_m(origins[0][row], origins[1][row], *destinations) * walk_per_m
        result[row] = np.minimum(distances[n_nodes:origin_node], walked)
    return result


def _min_duplicates(
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    values: FloatArray,
    shape: tuple[int, int],
) -> csr_matrix:
    """Build a CSR matrix that keeps the smallest of repeated entries and stored zeros."""
    frame = pd.DataFrame({"row": rows, "col": cols, "value": values})
    smallest = frame.groupby(["row", "col"], as_index=False)["value"].min()
    return coo_matrix((smallest["value"], (smallest["row"], smallest["col"])), shape=shape).tocsr()


def _check_same(
    subject: npt.NDArray[np.float32], expected: FloatArray, max_transit_min: float
) -> int:
    """Raise when the sides disagree; return the number of pairs compared for equality."""
    comparable = expected <= max_transit_min
    difference = np.abs(subject.astype(np.float64) - expected)
    wrong = comparable & (difference > _TOLERANCE_MIN)
    faster = ~comparable & (subject < expected - _TOLERANCE_MIN)
    if wrong.any() or faster.any():
        row, col = np.argwhere(wrong | faster)[0]
        raise ResultMismatchError(
            f"transit matrix differs from per-origin Dijkstra at {int(wrong.sum())} pairs "
            f"within {max_transit_min:g} min and is faster at {int(faster.sum())} longer "
            f"pairs; first at origin {row}, destination {col}: {float(subject[row, col]):.3f} "
            f"vs {float(expected[row, col]):.3f} min, expected equal within {_TOLERANCE_MIN}"
        )
    return int(comparable.sum())


def bench_transit_candidates(
    postings: pd.DataFrame, network: TransitNetwork, seekers: pd.DataFrame
) -> list[Comparison]:
    """Compare `JobIndex.for_commute` with the network against the straight-line model.

    Each seeker's home, commute limit and modes are queried once per side, after one
    untimed query each; p50 and p95 are taken over seekers.
    """
    straight = JobIndex(postings)
    networked = JobIndex(postings, network=network)
    queries = list(
        zip(
            seekers["home_lon"].astype(float).tolist(),
            seekers["home_lat"].astype(float).tolist(),
            seekers["max_commute_min"].astype(float).tolist(),
            seekers["modes"].astype(str).tolist(),
            strict=True,
        )
    )
    for index in (straight, networked):
        index.for_commute(*queries[0])

    subject_s, found = _time_for_commute(networked, queries)
    baseline_s, _ = _time_for_commute(straight, queries)
    details = {
        "seekers": len(queries),
        "mean_candidates_with_network": float(np.mean(found)),
        "subject_seconds": subject_s,
        "baseline_seconds": baseline_s,
    }
    return [
        Comparison(
            benchmark="transit_matrix",
            case=f"for_commute p{q:g} over {len(queries)} seekers",
            unit="ms",
            subject="JobIndex.for_commute with the transit network",
            baseline="JobIndex.for_commute with the straight-line model",
            subject_value=percentile(subject_s, q) * 1000,
            baseline_value=percentile(baseline_s, q) * 1000,
            ratio=percentile(subject_s, q) / percentile(baseline_s, q),
            ratio_meaning=COST,
            details=details,
        )
        for q in (50.0, 95.0)
    ]


def _time_for_commute(
    index: JobIndex, queries: list[tuple[float, float, float, str]]
) -> tuple[list[float], list[int]]:
    seconds = []
    found = []
    for query in queries:
        started = time.perf_counter()
        result = index.for_commute(*query)
        seconds.append(time.perf_counter() - started)
        found.append(len(result))
    return seconds, found
