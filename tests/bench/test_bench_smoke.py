"""Smoke tests of the benchmarks: tiny sizes, result structure and equality checks.

No assertion here is about speed: speed and memory figures live in the benchmark
output, never in timed tests.
"""

import json
import math
import os
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import shapely

from bench.candidates import BASELINE as CANDIDATE_BASELINE
from bench.candidates import SUBJECT as CANDIDATE_SUBJECT
from bench.candidates import TREE_ONLY, bench_candidates
from bench.districts import _check_same as check_same_districts
from bench.districts import bench_districts
from bench.fanout import FanoutRanking, bench_fanout
from bench.inputs import random_points_in
from bench.machine import library_versions, machine_info
from bench.nearby_jobs import PIPELINE as NEARBY_PIPELINE
from bench.nearby_jobs import PROBE as NEARBY_PROBE
from bench.nearby_jobs import SUBJECT as NEARBY_SUBJECT
from bench.nearby_jobs import bench_nearby_jobs, synthetic_postings
from bench.recommend import bench_recommend, sample_seeker_ids
from bench.result import ResultMismatchError
from bench.run import main
from bench.store_build import bench_store_build
from bench.transit import (
    BASELINE as TRANSIT_BASELINE,
)
from bench.transit import (
    _check_same,
    anchor_points,
    bench_transit_candidates,
    bench_transit_matrix,
    home_points,
)
from bench.viewport import (
    GEODATAFRAME,
    STDLIB,
    _compare_features,
    bench_viewport,
    encoders,
    postgres_unreachable_reason,
    synthetic_anchors,
    viewport_boxes,
)
from bench.viewport import SUBJECT as VIEWPORT_SUBJECT
from geo.regions import Regions, load_regions
from geo.transit import TransitNetwork
from matching.cascade import RankingCascade
from matching.features import FEATURE_NAMES, build_features
from matching.push_ranking import FanoutRanker
from matching.recommend import Recommender
from models.registry import LoadedModel
from models.serving import ModelScorer
from store.sqlite import SqliteStore


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


POSTGRES_URL = os.environ.get(
    "DOORSTEP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="module")
def postgres_url() -> str:
    """The server the viewport benchmark creates its database on; skips when unreachable."""
    reason = postgres_unreachable_reason(POSTGRES_URL)
    if reason is not None:
        pytest.skip(reason)
    return POSTGRES_URL


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore) -> Recommender:
    return Recommender.from_store(full_store)


def test_random_points_inside_outline(regions: Regions) -> None:
    lons, lats = random_points_in(regions.city_outline, 300, seed=5)

    assert lons.shape == (300,)
    assert lats.shape == (300,)
    assert shapely.contains_xy(regions.city_outline, lons, lats).all()
    again_lons, _ = random_points_in(regions.city_outline, 300, seed=5)
    np.testing.assert_array_equal(lons, again_lons)


def test_candidates_sets_match(recommender: Recommender, regions: Regions) -> None:
    lons, lats = random_points_in(regions.city_outline, 20, seed=1)

    comparisons = bench_candidates(
        recommender.postings, lons, lats, radii_m=(1_000.0, 10_000.0), repeats=1
    )

    assert [c.case for c in comparisons] == [
        "radius 1 km",
        "radius 1 km",
        "radius 10 km",
        "radius 10 km",
    ]
    assert [c.subject for c in comparisons] == [CANDIDATE_SUBJECT, TREE_ONLY] * 2
    for comparison in comparisons:
        assert comparison.benchmark == "candidates"
        assert comparison.baseline == CANDIDATE_BASELINE
        assert comparison.details["same_sets_checked"] == 20
        assert comparison.subject_value > 0
        assert math.isfinite(comparison.ratio)
    # A 10 km circle contains at least as many postings as a 1 km circle around each point.
    wide = comparisons[2].details["mean_results_per_query"]
    narrow = comparisons[0].details["mean_results_per_query"]
    assert wide >= narrow
    assert wide > 0


def test_districts_baselines_agree(regions: Regions) -> None:
    lons, lats = random_points_in(regions.city_outline, 200, seed=2)

    comparisons = bench_districts(regions, lons, lats, repeats=1, loop_sample=50)

    assert len(comparisons) == 3
    assert len({c.baseline for c in comparisons}) == 3
    for comparison in comparisons:
        assert comparison.benchmark == "districts"
        assert comparison.details["points"] == 200
        assert comparison.details["districts"] == 13
        assert comparison.ratio > 0
    assert comparisons[2].details["baseline_points_timed"] == 50
    # The outline and the district polygons come from one source, so nearly all
    # points inside the outline fall in a district.
    assert comparisons[0].details["points_in_a_district"] >= 190


def test_district_check_rejects_difference() -> None:
    subject = np.array(["610102", None, "610113"], dtype=object)
    baseline = np.array(["610102", "610104", "610113"], dtype=object)

    with pytest.raises(ResultMismatchError, match="1 of 3 points"):
        check_same_districts(subject, baseline, "test baseline")


def test_recommend_percentiles(recommender: Recommender) -> None:
    seeker_ids = sample_seeker_ids(recommender, 6, seed=3)

    comparisons = bench_recommend(recommender, seeker_ids, warmup=1)

    assert [c.case for c in comparisons] == ["p50 over 6 seekers", "p95 over 6 seekers"]
    p50, p95 = comparisons
    assert p50.subject_value <= p95.subject_value
    assert p50.baseline_value <= p95.baseline_value
    assert len(p50.details["subject_seconds"]) == 6
    assert 0 < p50.details["mean_page_rows"] <= 20


def test_seeker_sample_too_large(recommender: Recommender) -> None:
    with pytest.raises(ValueError, match="build it with at least"):
        sample_seeker_ids(recommender, recommender.n_seekers + 1, seed=0)


def test_store_build_measures_child(data_dir: Path) -> None:
    comparisons = bench_store_build(data_dir, n_seekers=20, seed=4, csv_repeats=1)

    wall, memory = comparisons
    assert (wall.case, wall.unit) == ("wall time", "s")
    assert (memory.case, memory.unit) == ("peak memory", "MiB")
    assert wall.details["csv_rows"] == 73_756
    assert wall.details["seekers"] == 20
    assert wall.details["postings"] > 70_000
    # Building the store reads that CSV and much more, so it takes longer and more memory.
    assert wall.ratio > 1
    assert memory.ratio > 1


def test_machine_and_versions_recorded() -> None:
    machine = machine_info()
    versions = library_versions()

    assert machine["cpu_model"]
    assert machine["cores_logical"] >= 1
    assert machine["memory_total_mib"] > 0
    for name in ("python", "numpy", "shapely", "geos", "proj", "scikit-learn"):
        assert versions[name], name


def test_run_writes_json_and_table(
    full_store: SqliteStore,
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "--data-dir", str(data_dir),
        "--store", str(full_store.path),
        "--queries", "10",
        "--points", "100",
        "--seekers", "4",
        "--repeats", "1",
        "--anchors", "2000",
        "--viewports", "10",
        "--origins", "4",
        "--homes-as-destinations", "30",
        "--nearby-jobs", "2000",
        "--nearby-seekers", "2",
        "--model-trees", "5",
        "--coverage-cell-m", "1000",
        "--coverage-candidates", "3",
        "--fanout-seekers", "5000",
        "--fanout-jobs", "3",
        "--fanout-baseline-jobs", "2",
        "--out-dir", str(tmp_path),
    ]  # fmt: skip

    status = main(argv)

    assert status == 0
    (path,) = tmp_path.glob("results-*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    assert {"started", "command", "machine", "versions", "data", "results"} <= set(record)
    ran = {row["benchmark"] for row in record["results"]}
    assert ran - {"viewport"} == {
        "candidates", "districts", "recommend", "nearby_jobs", "transit_matrix",
        "coverage", "fanout", "anchor_layer",
    }  # fmt: skip
    # Without PostgreSQL the viewport benchmark is skipped with the reason, never silently.
    skipped = record["data"]["skipped"]
    assert ("viewport" in ran) != ("viewport" in skipped)
    if "viewport" in skipped:
        assert "unreachable" in skipped["viewport"]
    assert record["data"]["postings"] > 70_000
    assert record["data"]["candidate_queries"] == 10
    printed = capsys.readouterr().out
    assert "| Benchmark | Case |" in printed
    assert ("Viewport target p99" in printed) == ("viewport" in ran)
    assert "AMD" in printed or record["machine"]["cpu_model"] in printed


def test_synthetic_anchors_follow_real(full_store: SqliteStore, regions: Regions) -> None:
    real = full_store.anchors_frame()

    anchors = synthetic_anchors(real, regions, 2_000, seed=6)

    assert len(anchors) == 2_000
    assert anchors["anchor_id"].is_unique
    assert set(anchors["precision"]) <= set(real["precision"].astype(str))
    assert set(anchors["n_postings"]) <= set(real["n_postings"].astype(int))
    assert (anchors["source"] == "synthetic").all()
    assert shapely.contains_xy(regions.city_outline, anchors["lon"], anchors["lat"]).all()
    # A point drawn inside its district's polygon is found in that district again.
    with_code = anchors[anchors["district_code"].notna()]
    found = regions.districts_at(with_code["lon"], with_code["lat"])
    assert (found == with_code["district_code"].to_numpy()).mean() > 0.99


def test_viewport_boxes_hold_targets(full_store: SqliteStore, regions: Regions) -> None:
    anchors = synthetic_anchors(full_store.anchors_frame(), regions, 5_000, seed=8)
    lons = anchors["lon"].to_numpy(np.float64)
    lats = anchors["lat"].to_numpy(np.float64)

    boxes = viewport_boxes(lons, lats, 30, seed=9)

    for min_lon, min_lat, max_lon, max_lat in boxes:
        inside = (lons >= min_lon) & (lons <= max_lon) & (lats >= min_lat) & (lats <= max_lat)
        assert 200 <= inside.sum() <= 2_000


def test_viewport_baselines_agree(
    full_store: SqliteStore, regions: Regions, recommender: Recommender
) -> None:
    anchors = synthetic_anchors(full_store.anchors_frame(), regions, 300, seed=10)
    anchors = anchors.assign(
        key_enterprise=np.arange(300) % 20 == 0, above_scale_industrial=np.arange(300) % 7 == 0
    )
    # City-level anchors have no district, so the encoders must turn it into null.
    assert anchors["district_code"].isna().any()

    bodies = {name: json.loads(encode(anchors)) for name, encode in encoders(recommender).items()}

    assert set(bodies) == {GEODATAFRAME, STDLIB}
    expected = anchors["anchor_id"].tolist()
    for name, body in bodies.items():
        assert body["type"] == "FeatureCollection", name
        assert [f["properties"]["anchor_id"] for f in body["features"]] == expected, name
    assert bodies[GEODATAFRAME]["features"] == bodies[STDLIB]["features"]
    properties = bodies[STDLIB]["features"][0]["properties"]
    assert set(properties) == {
        "anchor_id", "name", "precision", "state", "n_postings", "location_label",
        "district_code", "key_enterprise", "above_scale_industrial", "approximate",
        "precision_label", "district_name",
    }  # fmt: skip
    assert properties["key_enterprise"] is True
    assert properties["above_scale_industrial"] is True


def _feature(anchor_id: str, n_postings: int) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [108.9, 34.2]},
        "properties": {"anchor_id": anchor_id, "n_postings": n_postings},
    }


def test_viewport_comparison_accepts_any_order_within_a_tie() -> None:
    expected = [_feature("b", 3), _feature("a", 1), _feature("c", 1)]
    reordered_tie = [_feature("b", 3), _feature("c", 1), _feature("a", 1)]
    _compare_features((0, 0, 1, 1), "path", reordered_tie, expected)

    with pytest.raises(ResultMismatchError, match="most postings first"):
        _compare_features((0, 0, 1, 1), "path", [_feature("a", 1), _feature("b", 3)], expected)
    with pytest.raises(ResultMismatchError, match="anchor ids"):
        _compare_features((0, 0, 1, 1), "path", [_feature("b", 3), _feature("a", 1)], expected)


def test_viewport_on_postgres(
    postgres_url: str, full_store: SqliteStore, regions: Regions, recommender: Recommender
) -> None:
    comparisons = bench_viewport(
        postgres_url,
        full_store.anchors_frame(),
        regions,
        recommender,
        n_anchors=2_000,
        n_viewports=10,
        seed=11,
    )

    assert [(c.case, c.baseline) for c in comparisons] == [
        ("p50", GEODATAFRAME),
        ("p99", GEODATAFRAME),
        ("p50", STDLIB),
        ("p99", STDLIB),
    ]
    p50, p99 = comparisons[:2]
    assert p50.subject_value <= p99.subject_value
    assert p50.unit == "ms"
    details = p50.details
    assert len(details["seconds"][VIEWPORT_SUBJECT]["total"]) == 10
    assert 200 <= details["min_anchors_per_viewport"] <= details["max_anchors_per_viewport"]
    assert details["max_anchors_per_viewport"] <= 2_000
    assert details["server"]["postgis"]
    clusters = details["city_view_cluster_ms"]
    assert 0 < clusters["p50"] <= clusters["p99"]


def test_transit_matrix_sides_agree(
    data_dir: Path, recommender: Recommender, transit_network: TransitNetwork
) -> None:
    origins = home_points(data_dir, 5, seed=12)
    lons, lats = anchor_points(recommender.postings)

    (comparison,) = bench_transit_matrix(
        transit_network, origins, (lons[:400], lats[:400]), repeats=1
    )

    assert comparison.case == "5 × 400"
    assert comparison.baseline == TRANSIT_BASELINE
    assert comparison.details["pairs"] == 2_000
    # District and zone anchors share their area's point.
    assert comparison.details["distinct_destination_points"] < 400
    # Most anchors are within the stop-to-stop limit of most homes.
    assert comparison.details["pairs_checked_equal"] > 1_000
    assert comparison.ratio > 0


def test_transit_check_rejects_difference() -> None:
    expected = np.array([[10.0, 95.0], [30.0, 100.0]])
    subject = np.array([[10.0, 95.0], [31.0, 100.0]], dtype=np.float32)

    with pytest.raises(ResultMismatchError, match=r"differs .* at 1 pairs"):
        _check_same(subject, expected, 90.0)
    # Beyond the limit the subject may be slower, never faster.
    slower_beyond = np.array([[10.0, 99.0], [30.0, 104.0]], dtype=np.float32)
    assert _check_same(slower_beyond, expected, 90.0) == 2


def test_home_points_distinct(data_dir: Path) -> None:
    lons, lats = home_points(data_dir, 50, seed=13)

    assert len(set(zip(lons.tolist(), lats.tolist(), strict=True))) == 50


def test_transit_candidates_costs(
    recommender: Recommender, transit_network: TransitNetwork
) -> None:
    seekers = recommender.seekers.head(4)

    comparisons = bench_transit_candidates(recommender.postings, transit_network, seekers)

    assert [c.case for c in comparisons] == [
        "for_commute p50 over 4 seekers",
        "for_commute p95 over 4 seekers",
    ]
    assert comparisons[0].subject_value <= comparisons[1].subject_value
    assert comparisons[0].details["mean_candidates_with_network"] > 0


def test_nearby_jobs_paths_agree(
    full_store: SqliteStore, recommender: Recommender, regions: Regions
) -> None:
    comparisons = bench_nearby_jobs(
        full_store,
        recommender,
        n_jobs=3_000,
        n_seekers=3,
        training_seekers=20,
        trees=10,
        seed=14,
        regions=regions,
        warmup=1,
    )

    assert [(c.case, c.baseline) for c in comparisons] == [
        ("p50 over 3 seekers", NEARBY_PIPELINE),
        ("p99 over 3 seekers", NEARBY_PIPELINE),
        ("p50 over 3 seekers", NEARBY_PROBE),
        ("p99 over 3 seekers", NEARBY_PROBE),
    ]
    details = comparisons[0].details
    assert details["synthetic_jobs"] == 3_000
    assert details["model_trees"] == 10
    assert len(details["seconds"][NEARBY_SUBJECT]) == 3
    assert set(details["stages_ms_p50"]) == {"candidates", "features", "cascade", "contrib"}
    # The subject ranks with the service's cascade, and its fidelity is measured.
    assert details["cascade"] == "15 trees, 15000 > 60 trees, 4000"
    assert "40 trees, 4000" in details["cascade_fidelity"]
    assert "15 trees, 15000 > 60 trees, 4000" in details["cascade_fidelity"]
    for fidelity in details["cascade_fidelity"].values():
        assert 0.0 <= fidelity["overlap_at_20_min"] <= fidelity["overlap_at_20_mean"] <= 1.0
        assert 0.0 <= fidelity["ndcg_at_20_mean"] <= 1.0
    for comparison in comparisons:
        assert comparison.benchmark == "nearby_jobs"
        assert comparison.subject_value > 0
        assert math.isfinite(comparison.ratio)


def test_synthetic_postings_labelled(recommender: Recommender) -> None:
    postings = synthetic_postings(recommender.postings, 500, seed=15)

    assert len(postings) == 500
    assert postings["posting_id"].is_unique
    assert (postings["source"] == "synthetic").all()
    assert (postings["precision"] != "city").all()
    assert set(postings["source_posting_id"]) <= set(recommender.postings["posting_id"])
    real = recommender.postings.set_index("posting_id").loc[postings["source_posting_id"]]
    # The jitter is 300 m per axis, so nearly every point stays within 2 km of its source.
    moved = np.hypot(
        (postings["lon"].to_numpy() - real["lon"].to_numpy()) * 92_000,
        (postings["lat"].to_numpy() - real["lat"].to_numpy()) * 111_000,
    )
    assert np.median(moved) < 600
    assert (moved < 2_000).mean() > 0.99


def test_fanout_designs_enqueue_same_seekers() -> None:
    rate, notes = bench_fanout(20_000, 3, 3, 1_000.0, seed=7)
    details = rate.details
    assert details["entries_compared"] > 0
    # Only seekers on the circle's edge may differ (Redis's sphere radius and geohash).
    assert details["edge_mismatches"] <= 0.01 * details["entries_compared"]
    assert rate.unit == "jobs/s"
    assert notes.details["redis_benchmark_xadd_per_s"] > 0
    assert notes.details["ping_round_trip_p50_us"] > 0


def test_fanout_with_ranker_scores_seekers(recommender: Recommender) -> None:
    ranker = smoke_ranker(RankingCascade())
    ranking = FanoutRanking(ranker, recommender.seekers, recommender.index.located)

    rate, _ = bench_fanout(20_000, 3, 1, 1_000.0, seed=7, ranking=ranking)

    assert "ranker scores" in rate.subject
    assert rate.details["ranker"] == "smoke-model"
    assert ranking.scored > 0
    assert rate.details["scoring_p50_ms"] > 0
    assert rate.details["edge_mismatches"] <= 0.01 * rate.details["entries_compared"]


def smoke_ranker(cascade: RankingCascade | None, exact_rows: int = 15_000) -> FanoutRanker:
    """Return a 20-tree regression model on random rows as a fan-out ranker."""
    rng = np.random.default_rng(4)
    rows = rng.uniform(0, 1, (500, len(FEATURE_NAMES))).astype(np.float32)
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "min_data_in_leaf": 5},
        lightgbm.Dataset(rows, rows[:, 0].copy(), feature_name=list(FEATURE_NAMES)),
        num_boost_round=20,
    )
    model = LoadedModel(
        "smoke-model", Path("<in memory>"), {"feature_names": list(FEATURE_NAMES)}, booster
    )
    return FanoutRanker(
        ModelScorer(model, build_features), model.model_id, cascade=cascade, exact_rows=exact_rows
    )


def test_fanout_cascade_recall_is_whole_without_stages(recommender: Recommender) -> None:
    ranking = FanoutRanking(smoke_ranker(None), recommender.seekers, recommender.index.located)

    rate, _ = bench_fanout(20_000, 2, 1, 6_000.0, seed=7, ranking=ranking)

    assert rate.details["cascade_recall_jobs"] == 2
    assert rate.details["cascade_recall_mean"] == 1.0


def test_fanout_cascade_recall_drops_with_a_narrow_stage(recommender: Recommender) -> None:
    narrow = smoke_ranker(RankingCascade.of((1, 600)), exact_rows=0)
    ranking = FanoutRanking(narrow, recommender.seekers, recommender.index.located)

    rate, _ = bench_fanout(20_000, 2, 1, 6_000.0, seed=7, ranking=ranking)

    assert rate.details["cascade_recall_jobs"] == 2
    assert 0.0 < rate.details["cascade_recall_min"] < 1.0
