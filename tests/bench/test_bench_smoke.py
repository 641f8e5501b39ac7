"""Smoke tests of the benchmarks: tiny sizes, result structure and equality checks.

No assertion here is about speed: speed and memory figures live in the benchmark
output, never in timed tests.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import shapely

from bench.candidates import BASELINE as CANDIDATE_BASELINE
from bench.candidates import SUBJECT as CANDIDATE_SUBJECT
from bench.candidates import TREE_ONLY, bench_candidates
from bench.districts import _check_same, bench_districts
from bench.inputs import random_points_in
from bench.machine import library_versions, machine_info
from bench.recommend import bench_recommend, sample_seeker_ids
from bench.result import ResultMismatchError
from bench.run import main
from bench.store_build import bench_store_build
from geo.regions import Regions, load_regions
from matching.recommend import Recommender
from store.sqlite import SqliteStore


@pytest.fixture(scope="module")
def regions(data_dir: Path) -> Regions:
    return load_regions(data_dir)


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
        _check_same(subject, baseline, "test baseline")


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
        "--out-dir", str(tmp_path),
    ]  # fmt: skip

    status = main(argv)

    assert status == 0
    (path,) = tmp_path.glob("results-*.json")
    record = json.loads(path.read_text(encoding="utf-8"))
    assert {"started", "command", "machine", "versions", "data", "results"} <= set(record)
    assert {row["benchmark"] for row in record["results"]} == {
        "candidates",
        "districts",
        "recommend",
    }
    assert record["data"]["postings"] > 70_000
    assert record["data"]["candidate_queries"] == 10
    printed = capsys.readouterr().out
    assert "| Benchmark | Case |" in printed
    assert "AMD" in printed or record["machine"]["cpu_model"] in printed
