"""Employer anchors grouped from located postings."""

import pandas as pd

from geo.anchors import ANCHOR_COLUMNS, build_anchors, employer_key, precision_counts


def _located(rows: list[tuple[str, float, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "company": [row[0] for row in rows],
            "lon": [row[1] for row in rows],
            "lat": [row[2] for row in rows],
            "precision": [row[3] for row in rows],
            "location_source": "test",
            "location_label": "label",
            "district_code": "610113",
        }
    )


def test_same_employer_same_point_shares_anchor() -> None:
    located = _located(
        [
            ("西安某某科技有限公司", 108.9, 34.2, "poi"),
            ("西安某某科技有限公司 ", 108.9, 34.2, "poi"),
        ]
    )
    anchors, ids = build_anchors(located)
    assert len(anchors) == 1
    assert ids.iloc[0] == ids.iloc[1]
    assert anchors["n_postings"].iloc[0] == 2


def test_same_employer_two_places_two_anchors() -> None:
    located = _located(
        [
            ("西安某某科技有限公司", 108.9, 34.2, "district"),
            ("西安某某科技有限公司", 108.95, 34.26, "district"),
            ("西安某某科技有限公司", 108.9, 34.2, "poi"),
        ]
    )
    anchors, ids = build_anchors(located)
    assert len(anchors) == 3
    assert ids.nunique() == 3


def test_anchor_columns_and_draft_state() -> None:
    anchors, _ = build_anchors(_located([("甲公司", 108.9, 34.2, "city")]))
    assert list(anchors.columns) == ANCHOR_COLUMNS
    assert anchors["state"].tolist() == ["draft"]


def test_anchor_ids_are_stable() -> None:
    located = _located([("甲公司", 108.9, 34.2, "zone")])
    assert build_anchors(located)[1].iloc[0] == build_anchors(located)[1].iloc[0]


def test_employer_key_folds_width_and_space() -> None:
    assert employer_key("ＡＢＣ 公司") == employer_key("abc公司")


def test_precision_counts_include_zeros() -> None:
    anchors, _ = build_anchors(_located([("甲", 108.9, 34.2, "city"), ("乙", 108.8, 34.1, "poi")]))
    counts = precision_counts(anchors)
    assert counts == {
        "exact": 0,
        "poi": 1,
        "building": 0,
        "business_area": 0,
        "zone": 0,
        "district": 0,
        "city": 1,
    }
