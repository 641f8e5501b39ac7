"""Duplicate anchor candidates and merge plans."""

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from stdnum.cn import uscc

from geo.anchor_states import AnchorState, InvalidTransitionError
from geo.company_index import load_company_pois
from geo.curation import AnchorRecord
from geo.duplicates import (
    InvalidMergeError,
    find_duplicates,
    plan_merge,
    survivor_from_reason,
)
from geo.location import Precision

CODE = "91610103MA6W12345"
CODE = CODE + uscc.calc_check_digit(CODE)
NOW = datetime(2024, 5, 6, tzinfo=UTC)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "anchor_id": ["a", "b", "c", "d", "e"],
            "name": [
                "西安钟楼软件有限公司",
                "钟楼软件有限公司",  # same key as a, 100 m away
                "西安钟楼软件有限公司",  # same name, 5 km away
                "西安鼓楼餐饮有限公司",  # nearby, different name
                "陕西远方贸易有限公司",  # far away, same credit code as a
            ],
            "lon": [108.9402, 108.9412, 108.9950, 108.9405, 109.2000],
            "lat": [34.2600, 34.2603, 34.2600, 34.2601, 34.3800],
            "credit_code": [CODE, None, None, None, CODE.lower()],
        }
    )


def test_pairs_and_reasons() -> None:
    pairs = find_duplicates(_frame())
    found = {(row.anchor_id_a, row.anchor_id_b): row.reason for row in pairs.itertuples()}
    assert found == {("a", "e"): "same_credit_code", ("a", "b"): "similar_name_nearby"}


def test_distance_and_similarity_columns() -> None:
    pairs = find_duplicates(_frame()).set_index(["anchor_id_a", "anchor_id_b"])
    assert float(pairs.loc[("a", "b"), "similarity"]) == 1.0  # type: ignore[arg-type]
    assert 80 < float(pairs.loc[("a", "b"), "distance_m"]) < 110  # type: ignore[arg-type]
    assert float(pairs.loc[("a", "e"), "distance_m"]) > 20_000  # type: ignore[arg-type]


def test_radius_widens_matches() -> None:
    pairs = find_duplicates(_frame(), max_distance_m=6_000)
    assert ("a", "c") in set(zip(pairs["anchor_id_a"], pairs["anchor_id_b"], strict=True))


def test_no_pairs_empty_frame() -> None:
    frame = _frame().iloc[[0, 3]]
    assert find_duplicates(frame).empty


def test_real_company_pois(data_dir: Path) -> None:
    pois = load_company_pois(data_dir)
    anchors = pd.DataFrame(
        {
            "anchor_id": [f"poi-{index}" for index in range(len(pois))],
            "name": [poi.name for poi in pois],
            "lon": [poi.lon for poi in pois],
            "lat": [poi.lat for poi in pois],
        }
    )
    pairs = find_duplicates(anchors)
    assert len(anchors) == 10_053
    assert len(pairs) == MEASURED_REAL_PAIRS
    assert (pairs["distance_m"] <= 300.0 + 1e-6).all()
    assert (pairs["similarity"] >= 0.85).all()


# Measured with the defaults (300 m, similarity 0.85) on the Baidu company POIs.
MEASURED_REAL_PAIRS = 159


def _record(anchor_id: str, state: AnchorState) -> AnchorRecord:
    return AnchorRecord(
        anchor_id, "甲公司", 108.94, 34.26, Precision.EXACT, "610103", None, state, 2
    )


def test_plan_merge_moves_postings() -> None:
    records = {
        "a": _record("a", AnchorState.VERIFIED),
        "b": _record("b", AnchorState.DRAFT),
        "c": _record("c", AnchorState.VERIFIED),
    }
    postings = pd.DataFrame({"posting_id": [1, 2, 3, 4], "anchor_id": ["a", "b", "c", "b"]})
    plan = plan_merge("a", ["b", "c"], postings, records=records, actor="staff-1", now=NOW)
    assert plan.posting_moves["posting_id"].tolist() == [2, 3, 4]
    assert set(plan.posting_moves["to_anchor_id"]) == {"a"}
    assert [record.state for record in plan.retired] == [AnchorState.RETIRED] * 2
    assert [record.version for record in plan.retired] == [3, 3]
    assert "merged into anchor a" in plan.history[0].reason


def test_survivor_read_from_merge_reason() -> None:
    records = {
        "anc-1 x": _record("anc-1 x", AnchorState.VERIFIED),
        "b": _record("b", AnchorState.DRAFT),
    }
    postings = pd.DataFrame({"posting_id": [], "anchor_id": []})
    plan = plan_merge("anc-1 x", ["b"], postings, records=records, actor="s", now=NOW)

    assert survivor_from_reason(plan.history[0].reason) == "anc-1 x"


@pytest.mark.parametrize(
    "reason",
    ["现场核实", "merged into anchor  as a duplicate", "merged into anchor a", "as a duplicate"],
)
def test_survivor_none_for_other_reasons(reason: str) -> None:
    assert survivor_from_reason(reason) is None


def test_plan_merge_rejects_bad_ids() -> None:
    records = {"a": _record("a", AnchorState.VERIFIED), "b": _record("b", AnchorState.DRAFT)}
    postings = pd.DataFrame({"posting_id": [], "anchor_id": []})
    with pytest.raises(InvalidMergeError):
        plan_merge("a", ["a"], postings, records=records, actor="s", now=NOW)
    with pytest.raises(InvalidMergeError):
        plan_merge("a", ["x"], postings, records=records, actor="s", now=NOW)


def test_plan_merge_pending_anchor_decided_first() -> None:
    records = {
        "a": _record("a", AnchorState.VERIFIED),
        "b": _record("b", AnchorState.PENDING_REVIEW),
    }
    postings = pd.DataFrame({"posting_id": [1], "anchor_id": ["b"]})
    with pytest.raises(InvalidTransitionError):
        plan_merge("a", ["b"], postings, records=records, actor="s", now=NOW)
