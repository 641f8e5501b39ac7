"""Run the benchmarks and write their results: ``python -m bench.run [--full]``.

The viewport benchmark needs PostgreSQL with PostGIS (``--postgres-url``). When the
server is unreachable it is skipped, and the reason is logged, printed and recorded.

Prints a Markdown table to stdout and writes ``var/bench/results-<timestamp>.json``.
Logs go to stderr. Exits with status 1 when a subject and its baseline disagree.
"""

import argparse
import logging
import os
import shlex
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from api.settings import DataSettings
from bench.anchor_layer import bench_anchor_layer
from bench.anchor_layer import target_verdict as anchor_layer_verdict
from bench.candidates import DEFAULT_RADII_M, bench_candidates
from bench.coverage import bench_coverage_pass, bench_marginal_gain
from bench.districts import bench_districts
from bench.fanout import FanoutRanking, bench_fanout
from bench.inputs import BenchInputs, build_bench_store, load_inputs, random_points_in
from bench.machine import git_commit, library_versions, machine_info
from bench.nearby_jobs import bench_nearby_jobs, train_bench_model
from bench.recommend import bench_recommend, sample_seeker_ids
from bench.report import markdown_report, run_record, write_json
from bench.result import Comparison, ResultMismatchError
from bench.store_build import bench_store_build
from bench.transit import (
    anchor_points,
    bench_transit_build,
    bench_transit_candidates,
    bench_transit_matrix,
    home_points,
)
from bench.viewport import bench_viewport, postgres_unreachable_reason, target_verdict
from matching.features import build_features
from matching.posting_features import PostingFeatureTable
from matching.push_ranking import FanoutRanker
from models.serving import ModelScorer, serving_context
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

BENCHMARKS = (
    "candidates",
    "districts",
    "recommend",
    "nearby_jobs",
    "viewport",
    "transit_matrix",
    "coverage",
    "fanout",
    "anchor_layer",
)
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO_ROOT = Path(__file__).resolve().parents[1]

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The candidate benchmark's store build uses at least this many seekers.
_MIN_STORE_SEEKERS = 100


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; defaults are the sizes documented in docs/benchmarks.md."""
    settings = DataSettings()
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=settings.data_dir,
        help="real data folder (default: DOORSTEP_DATA_DIR or %(default)s)",
    )
    parser.add_argument(
        "--store",
        type=Path,
        help="existing store file to read instead of building one into a temporary folder",
    )

    parser.add_argument("--queries", type=int, default=1_000, help="candidate query points")
    parser.add_argument("--points", type=int, default=20_000, help="district lookup points")
    parser.add_argument("--seekers", type=int, default=200, help="seekers timed by recommend")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats; median counts")
    parser.add_argument("--seed", type=int, default=settings.seed, help="seed of every draw")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("DOORSTEP_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL),
        help="server database that may create the throwaway viewport database "
        "(default: DOORSTEP_TEST_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument(
        "--anchors", type=int, default=100_000, help="synthetic anchors the viewport writes"
    )
    parser.add_argument("--viewports", type=int, default=500, help="viewports timed")
    parser.add_argument(
        "--origins", type=int, default=1_000, help="home anchors the transit matrix starts from"
    )
    parser.add_argument(
        "--homes-as-destinations",
        type=int,
        default=3_000,
        help="other home anchors the second transit matrix ends at (distinct points)",
    )
    parser.add_argument(
        "--nearby-jobs", type=int, default=200_000, help="synthetic postings of nearby_jobs"
    )
    parser.add_argument(
        "--nearby-seekers", type=int, default=20, help="seekers timed by nearby_jobs"
    )
    parser.add_argument(
        "--model-trees", type=int, default=200, help="trees of the nearby_jobs model"
    )
    parser.add_argument(
        "--coverage-cell-m", type=float, default=250.0, help="walking grid cell size, metres"
    )
    parser.add_argument(
        "--coverage-candidates",
        type=int,
        default=100,
        help="candidate stations timed by the marginal coverage benchmark",
    )
    parser.add_argument(
        "--fanout-seekers", type=int, default=2_000_000, help="simulated seekers of fanout"
    )
    parser.add_argument(
        "--layer-anchors", type=int, default=10_000, help="synthetic anchors of anchor_layer"
    )
    parser.add_argument("--fanout-jobs", type=int, default=50, help="jobs the fan-out times")
    parser.add_argument(
        "--fanout-baseline-jobs", type=int, default=10, help="jobs the GEOSEARCH baseline times"
    )
    parser.add_argument(
        "--fanout-radius-m", type=float, default=2_000, help="radius a job reaches, metres"
    )
    parser.add_argument(
        "--fanout-without-ranker",
        action="store_true",
        help="time the fan-out without the learned ranker's scores (the design before them)",
    )
    parser.add_argument(
        "--only", choices=BENCHMARKS, action="append", help="run only this benchmark (repeatable)"
    )

    parser.add_argument(
        "--full",
        action="store_true",
        help="also time the full store build and its peak memory (takes minutes)",
    )
    parser.add_argument(
        "--full-seekers",
        type=int,
        default=settings.n_seekers,
        help="simulated seekers in the --full build (default %(default)s)",
    )

    parser.add_argument(
        "--out-dir",
        type=Path,
        default=REPO_ROOT / "var" / "bench",
        help="folder of the JSON result file",
    )
    return parser.parse_args(argv)


def run_benchmarks(
    inputs: BenchInputs, args: argparse.Namespace, skipped: dict[str, str] | None = None
) -> list[Comparison]:
    """Run the selected benchmarks on ``inputs`` in the documented order.

    A benchmark that cannot run here is left out, and its reason is added to ``skipped``.
    """
    selected = args.only or list(BENCHMARKS)
    comparisons: list[Comparison] = []

    if "candidates" in selected:
        lons, lats = random_points_in(inputs.regions.city_outline, args.queries, args.seed)
        logger.info("candidates: %d queries, radii %s m", args.queries, DEFAULT_RADII_M)
        comparisons += bench_candidates(
            inputs.recommender.postings, lons, lats, repeats=args.repeats
        )

    if "districts" in selected:
        lons, lats = random_points_in(inputs.regions.city_outline, args.points, args.seed + 1)
        logger.info("districts: %d points", args.points)
        comparisons += bench_districts(inputs.regions, lons, lats, repeats=args.repeats)

    if "recommend" in selected:
        seeker_ids = sample_seeker_ids(inputs.recommender, args.seekers, args.seed)
        logger.info("recommend: %d seekers", len(seeker_ids))
        comparisons += bench_recommend(inputs.recommender, seeker_ids)

    if "nearby_jobs" in selected:
        logger.info(
            "nearby_jobs: %d synthetic jobs, %d seekers", args.nearby_jobs, args.nearby_seekers
        )
        comparisons += bench_nearby_jobs(
            SqliteStore(inputs.store_path),
            inputs.recommender,
            n_jobs=args.nearby_jobs,
            n_seekers=args.nearby_seekers,
            training_seekers=min(100, inputs.recommender.n_seekers),
            trees=args.model_trees,
            seed=args.seed,
            regions=inputs.regions,
        )

    if "viewport" in selected:
        comparisons += _viewport(inputs, args, {} if skipped is None else skipped)

    if "transit_matrix" in selected:
        comparisons += _transit(inputs, args)

    if "coverage" in selected:
        comparisons += _coverage(inputs, args)
    if "fanout" in selected:
        logger.info("fanout: %d seekers, %d jobs", args.fanout_seekers, args.fanout_jobs)
        comparisons += bench_fanout(
            args.fanout_seekers,
            args.fanout_jobs,
            args.fanout_baseline_jobs,
            args.fanout_radius_m,
            args.seed,
            None if args.fanout_without_ranker else _fanout_ranking(inputs, args),
        )

    if "anchor_layer" in selected:
        logger.info("anchor_layer: %d synthetic anchors", args.layer_anchors)
        names = inputs.recommender.postings["company"].dropna()
        comparisons += bench_anchor_layer(
            inputs.regions, names, count=args.layer_anchors, seed=args.seed, repeats=args.repeats
        )

    if args.full:
        comparisons += bench_store_build(args.data_dir, n_seekers=args.full_seekers, seed=args.seed)
    return comparisons


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the Markdown report and write the JSON file."""
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    args = parse_args(argv)
    started = datetime.now(UTC)
    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])

    with tempfile.TemporaryDirectory(prefix="doorstep-bench-") as work_dir:
        inputs = _prepare_inputs(args, Path(work_dir))
        skipped: dict[str, str] = {}
        try:
            comparisons = run_benchmarks(inputs, args, skipped)
        except ResultMismatchError as err:
            logger.error("benchmark results disagree: %s", err)
            return 1

    data = {**inputs.sizes(), "store": inputs.store_source, "commit": git_commit(REPO_ROOT)}
    data.update(_run_sizes(args))
    data["skipped"] = skipped
    record = run_record(
        comparisons,
        started=started,
        command=command,
        machine=machine_info(),
        versions=library_versions(),
        data=data,
    )
    path = write_json(record, args.out_dir, started)
    print(markdown_report(record))
    if any(comparison.benchmark == "viewport" for comparison in comparisons):
        print(f"\n{target_verdict(comparisons)}")
    for comparison in comparisons:
        if comparison.benchmark == "anchor_layer":
            print(f"\n{anchor_layer_verdict(comparison)}")
    for name, reason in skipped.items():
        print(f"\nSkipped {name}: {reason}")
    print(f"\nJSON: {path}")
    return 0


def _fanout_ranking(inputs: BenchInputs, args: argparse.Namespace) -> FanoutRanking:
    """Train the fan-out's model as nearby_jobs does and wrap it as the service wraps it."""
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-fanout-trees-") as work_dir:
        trained = train_bench_model(
            SqliteStore(inputs.store_path),
            n_seekers=min(100, inputs.recommender.n_seekers),
            trees=args.model_trees,
            seed=args.seed,
            work_dir=Path(work_dir),
        )
    recommender = inputs.recommender
    context = serving_context(recommender.postings, recommender.seekers, None)
    scorer = ModelScorer(trained.model, build_features, context)
    # As the service reuses its recommender's table for postings it has loaded.
    located = recommender.index.located
    table = PostingFeatureTable(located, context.posting_context, context.as_of)
    rows = dict(zip(located["posting_id"].astype(str), range(len(located)), strict=True))

    def loaded_values(posting_id: str) -> npt.NDArray[np.float32] | None:
        row = rows.get(posting_id)
        return None if row is None else table.matrix[row]

    ranker = FanoutRanker(scorer, trained.model.model_id, context, loaded_values=loaded_values)
    return FanoutRanking(ranker, recommender.seekers, located)


def _prepare_inputs(args: argparse.Namespace, work_dir: Path) -> BenchInputs:
    if args.store is not None:
        return load_inputs(args.data_dir, args.store, f"existing store file {args.store}")

    store_path = work_dir / "bench.sqlite"
    n_seekers = max(_MIN_STORE_SEEKERS, args.seekers)
    source = build_bench_store(args.data_dir, store_path, n_seekers=n_seekers, seed=args.seed)
    return load_inputs(args.data_dir, store_path, source)


def _viewport(
    inputs: BenchInputs, args: argparse.Namespace, skipped: dict[str, str]
) -> list[Comparison]:
    reason = postgres_unreachable_reason(args.postgres_url)
    if reason is not None:
        logger.warning("viewport skipped: %s", reason)
        skipped["viewport"] = reason
        return []

    logger.info("viewport: %d synthetic anchors, %d viewports", args.anchors, args.viewports)
    return bench_viewport(
        args.postgres_url,
        SqliteStore(inputs.store_path).anchors_frame(),
        inputs.regions,
        inputs.recommender,
        n_anchors=args.anchors,
        n_viewports=args.viewports,
        seed=args.seed,
    )


def _transit(inputs: BenchInputs, args: argparse.Namespace) -> list[Comparison]:
    network, comparisons = bench_transit_build(args.data_dir)
    lons, lats = home_points(args.data_dir, args.origins + args.homes_as_destinations, args.seed)
    origins = (lons[: args.origins], lats[: args.origins])
    homes = (lons[args.origins :], lats[args.origins :])
    anchors = anchor_points(inputs.recommender.postings)
    logger.info(
        "transit_matrix: %d origins, %d anchors, %d homes",
        args.origins,
        len(anchors[0]),
        len(homes[0]),
    )
    comparisons += bench_transit_matrix(network, origins, anchors, repeats=args.repeats)
    comparisons += bench_transit_matrix(network, origins, homes, repeats=args.repeats)
    comparisons += bench_transit_candidates(
        inputs.recommender.postings, network, inputs.recommender.seekers
    )
    return comparisons


def _coverage(inputs: BenchInputs, args: argparse.Namespace) -> list[Comparison]:
    from geo.coverage.circle import build_service_circle
    from geo.coverage.grid import WalkGridParameters

    grid_params = WalkGridParameters(cell_m=args.coverage_cell_m)
    circle = build_service_circle(args.data_dir, inputs.regions, grid_params=grid_params)
    logger.info(
        "coverage: %d cells, %d places, %d candidates",
        len(circle.grid),
        len(circle.places),
        args.coverage_candidates,
    )
    comparisons = bench_coverage_pass(circle, repeats=args.repeats)
    comparisons += bench_marginal_gain(circle, candidates=args.coverage_candidates, seed=args.seed)
    return comparisons


def _run_sizes(args: argparse.Namespace) -> dict[str, object]:
    return {
        "candidate_queries": args.queries,
        "district_points": args.points,
        "recommend_seekers": args.seekers,
        "nearby_synthetic_jobs": args.nearby_jobs,
        "nearby_seekers": args.nearby_seekers,
        "nearby_model_trees": args.model_trees,
        "viewport_synthetic_anchors": args.anchors,
        "viewports": args.viewports,
        "transit_origins": args.origins,
        "transit_home_destinations": args.homes_as_destinations,
        "coverage_cell_m": args.coverage_cell_m,
        "coverage_candidates": args.coverage_candidates,
        "fanout_seekers": args.fanout_seekers,
        "layer_anchors": args.layer_anchors,
        "fanout_jobs": args.fanout_jobs,
        "fanout_baseline_jobs": args.fanout_baseline_jobs,
        "fanout_radius_m": args.fanout_radius_m,
        "repeats": args.repeats,
        "seed": args.seed,
    }


if __name__ == "__main__":
    sys.exit(main())
