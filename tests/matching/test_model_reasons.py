"""Reasons from feature contributions: grouping, order, sign and both languages."""

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import pytest

from matching import model_reasons as reasons_module
from matching.features import FEATURE_NAMES
from matching.model_reasons import (
    REASON_FEATURES,
    SEEKER_ONLY_FEATURES,
    model_reasons,
    reason_contributions,
)

SEEKER = {
    "group": "graduate",
    "major": "计算机类",
    "occupation_wish_name": "软件工程技术人员",
    "salary_wish_min": 5000.0,
    "salary_wish_max": 8000.0,
}


def _row(**overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "precision": "poi",
        "distance_m": 4200.0,
        "estimated_commute_min": 24.6,
        "commute_mode": "transit",
        "itinerary_kinds": ("walk", "metro", "walk"),
        "education": 4,
        "salary_min_month": 6000.0,
        "salary_max_month": 9000.0,
    }
    row.update(overrides)
    return row


def _features(**overrides: float) -> dict[str, float]:
    values = dict.fromkeys(FEATURE_NAMES, 0.0)
    values.update(
        occupation_same_major=1.0,
        occupation_same_middle=1.0,
        traineeship_post=1.0,
        group_policy_fit=1.0,
        salary_fit=1.0,
        posting_age_days=12.0,
        graduate_ok=1.0,
    )
    values.update(overrides)
    return values


def _contributions(**by_feature: float) -> dict[str, float]:
    values = dict.fromkeys(FEATURE_NAMES, 0.0)
    values.update(by_feature)
    return values


def _reasons(rows, features, contributions, lang="zh"):  # type: ignore[no-untyped-def]
    return model_reasons(
        pd.DataFrame(rows), pd.DataFrame(features), pd.DataFrame(contributions), SEEKER, lang
    )


def test_groups_cover_every_feature_once() -> None:
    grouped = [name for names in REASON_FEATURES.values() for name in names]

    assert len(grouped) == len(set(grouped))
    assert sorted([*grouped, *SEEKER_ONLY_FEATURES]) == sorted(FEATURE_NAMES)


def test_group_sums_contributions() -> None:
    frame = pd.DataFrame(
        [_contributions(commute_transit_min=0.2, straight_line_m=-0.05, salary_fit=0.1)]
    )

    sums = reason_contributions(frame)

    assert sums.loc[0, "commute"] == pytest.approx(0.15)
    assert sums.loc[0, "salary"] == pytest.approx(0.1)
    assert sums.loc[0, "recent"] == 0.0


def test_group_sums_match_pandas_row_sums() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(20, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    frame.iloc[0, 0] = np.nan

    sums = reason_contributions(frame)

    for key, names in REASON_FEATURES.items():
        expected = frame.loc[:, list(names)].sum(axis=1)
        assert np.array_equal(sums[key].to_numpy(), expected.to_numpy()), key


class _RecordingRow(Mapping[str, object]):
    """A row that records every key a reason text reads."""

    def __init__(self, values: dict[str, object], read: set[str]) -> None:
        self._values = values
        self._read = read

    def __getitem__(self, key: str) -> object:
        self._read.add(key)
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


@pytest.mark.parametrize("key", list(REASON_FEATURES))
def test_reason_texts_read_listed_columns(key: str) -> None:
    # model_reasons hands the texts only the listed columns, so reading another one would
    # silently see it missing.
    row_read: set[str] = set()
    feature_read: set[str] = set()
    text = reasons_module._REASON_TEXT[key]
    for precision in ("poi", "district"):
        for mode in ("transit", "walk"):
            row = _RecordingRow(_row(precision=precision, commute_mode=mode), row_read)
            values = _RecordingRow(
                _features(key_enterprise=0.0, employer_active_postings=3.0), feature_read
            )
            text(row, values, SEEKER, reasons_module._TEXT["zh"], "zh")

    assert row_read <= set(reasons_module._ROW_COLUMNS)
    assert feature_read <= set(reasons_module._FEATURE_COLUMNS)


def test_largest_three_positive_in_order() -> None:
    contributions = _contributions(
        commute_fastest_min=0.30,
        occupation_same_middle=0.25,
        group_policy_fit=0.20,
        salary_fit=0.10,
        seeker_is_graduate=0.9,
    )

    (reasons,) = _reasons([_row()], [_features()], [contributions])

    assert [reason.key for reason in reasons] == ["commute", "occupation", "group_policy"]
    assert [reason.text for reason in reasons] == [
        "地铁约25分钟可达",
        "岗位与您的专业（计算机类）相符",
        "适合高校毕业生见习",
    ]
    assert reasons[0].contribution == pytest.approx(0.30)


def test_negative_contribution_never_stated() -> None:
    contributions = _contributions(
        commute_fastest_min=-0.4, commute_transit_min=0.1, salary_fit=-0.2, posting_age_days=0.05
    )

    (reasons,) = _reasons([_row()], [_features()], [contributions])

    assert [reason.key for reason in reasons] == ["recent"]
    assert all(reason.contribution > 0 for reason in reasons)


def test_no_reason_when_all_negative() -> None:
    contributions = {name: -0.01 for name in FEATURE_NAMES}

    assert _reasons([_row()], [_features()], [contributions]) == [[]]


def test_untrue_reason_skipped_for_next() -> None:
    # A traineeship shown to a non-graduate fits no group policy, so it is no reason.
    features = _features(group_policy_fit=0.0)
    contributions = _contributions(group_policy_fit=0.5, salary_fit=0.1, posting_age_days=0.05)

    (reasons,) = _reasons([_row()], [features], [contributions])

    assert [reason.key for reason in reasons] == ["salary", "recent"]


def test_english_texts() -> None:
    contributions = _contributions(
        commute_fastest_min=0.3, occupation_same_middle=0.2, group_policy_fit=0.1
    )

    (reasons,) = _reasons([_row()], [_features()], [contributions], lang="en")

    assert [reason.text for reason in reasons] == [
        "About 25 min by metro",
        "Job matches your major (计算机类)",
        "Traineeship suited to graduates",
    ]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            {"commute_mode": "transit", "itinerary_kinds": ("walk", "bus", "walk")},
            "公交约25分钟可达",
        ),
        ({"commute_mode": "transit", "itinerary_kinds": None}, "公共交通约25分钟可达"),
        ({"commute_mode": "walk", "itinerary_kinds": ("walk",)}, "步行约25分钟可达"),
        ({"commute_mode": "bike", "itinerary_kinds": None}, "骑行约25分钟可达"),
        ({"precision": "district", "distance_m": 5400.0}, "距您约5公里，通勤较近"),
    ],
)
def test_commute_text_by_mode(row: dict[str, object], expected: str) -> None:
    (reasons,) = _reasons([_row(**row)], [_features()], [_contributions(commute_fastest_min=0.3)])

    assert reasons[0].text == expected


def test_city_level_commute_unstated() -> None:
    row = _row(precision="city", distance_m=np.nan, estimated_commute_min=np.nan)

    (reasons,) = _reasons([row], [_features()], [_contributions(commute_fastest_min=0.3)])

    assert reasons == []


def test_unknown_language_rejected() -> None:
    with pytest.raises(ValueError, match="not supported"):
        _reasons([_row()], [_features()], [_contributions()], lang="fr")


def test_length_mismatch_rejected() -> None:
    with pytest.raises(ValueError, match="one entry per posting"):
        _reasons([_row(), _row()], [_features()], [_contributions()])
