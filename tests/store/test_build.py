"""The build pipeline on the real data folder: counts the README states."""

import pytest

from store.sqlite import SqliteStore

ANCHORS_BY_PRECISION = {
    "exact": 0,
    "poi": 195,
    "building": 0,
    "business_area": 95,
    "zone": 2_434,
    "district": 6_368,
    "city": 5_174,
}

POSTINGS_BY_PRECISION = {
    "exact": 0,
    "poi": 1_028,
    "building": 0,
    "business_area": 217,
    "zone": 12_383,
    "district": 36_958,
    "city": 23_644,
}


@pytest.fixture(scope="module")
def meta(full_store: SqliteStore) -> dict[str, object]:
    return full_store.meta()


def test_postings_loaded(meta: dict[str, object]) -> None:
    assert meta["postings"] == 74_230


def test_no_row_lost_in_ingest(meta: dict[str, object]) -> None:
    sources = meta["ingest"]["sources"]  # type: ignore[index]
    for name, counts in sources.items():
        assert counts["rows_read"] == counts["rows_kept"] + counts["duplicates_dropped"], name
        assert counts["parser_errors"] == 0, name
    assert sum(counts["rows_read"] for counts in sources.values()) == 74_336


def test_anchors_by_precision(meta: dict[str, object]) -> None:
    assert meta["anchors"] == 14_266
    assert meta["anchors_by_precision"] == ANCHORS_BY_PRECISION


def test_postings_by_precision(meta: dict[str, object]) -> None:
    assert meta["postings_by_precision"] == POSTINGS_BY_PRECISION


def test_every_posting_has_an_anchor(full_store: SqliteStore) -> None:
    postings = full_store.postings_frame()
    anchors = full_store.anchors_frame()
    assert len(postings) == 74_230
    assert set(postings["anchor_id"]) <= set(anchors["anchor_id"])
    assert anchors["n_postings"].sum() == 74_230


def test_seekers_simulated_and_homed(full_store: SqliteStore) -> None:
    seekers = full_store.seekers_frame()
    assert len(seekers) == 500
    assert seekers["simulated"].all()
    assert seekers["home_district_code"].notna().all()


def test_layers_counted(meta: dict[str, object]) -> None:
    layers = meta["layers"]
    assert layers["metro_stations"] == 248  # type: ignore[index]
    assert layers["metro_lines"] == 13  # type: ignore[index]
    assert layers["districts"] == 13  # type: ignore[index]
    assert layers["hr_offices"] == 78  # type: ignore[index]
