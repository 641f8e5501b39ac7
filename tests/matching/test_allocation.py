"""Capacity-aware allocation: headcounts are never exceeded, and the score is optimal."""

import itertools

import numpy as np
import pandas as pd
import pytest

from matching.allocation import AllocationError, allocate


def _preferences(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["seeker_id", "posting_id", "score"])


def test_single_vacancy_goes_to_one_target() -> None:
    # Three targets all prefer the same posting with one vacancy.
    preferences = _preferences(
        [("a", "x", 0.9), ("b", "x", 0.8), ("c", "x", 0.7), ("a", "y", 0.1), ("b", "z", 0.2)]
    )

    chosen = allocate(preferences, {"x": 1, "y": 1, "z": 1}, 1).chosen

    # c has no other candidate, so placing all three sends a to y, b to z and c to x.
    assert (chosen["posting_id"] == "x").sum() == 1
    assert set(zip(chosen["seeker_id"], chosen["posting_id"], strict=True)) == {
        ("a", "y"),
        ("b", "z"),
        ("c", "x"),
    }


def test_most_placements_before_score() -> None:
    # Giving x to a scores more, but then b gets nothing; two placements win over one.
    preferences = _preferences([("a", "x", 0.9), ("a", "y", 0.2), ("b", "x", 0.3)])

    chosen = allocate(preferences, {"x": 1, "y": 1}, 1).chosen

    assert set(zip(chosen["seeker_id"], chosen["posting_id"], strict=True)) == {
        ("a", "y"),
        ("b", "x"),
    }


def test_best_total_score_golden() -> None:
    # a-y + b-x = 0.5 + 0.8 = 1.3 beats a-x + b-y = 0.9 + 0.2 = 1.1 (computed by hand).
    preferences = _preferences([("a", "x", 0.9), ("a", "y", 0.5), ("b", "x", 0.8), ("b", "y", 0.2)])

    chosen = allocate(preferences, {"x": 1, "y": 1}, 1).chosen

    assert chosen["score"].sum() == pytest.approx(1.3)
    assert set(zip(chosen["seeker_id"], chosen["posting_id"], strict=True)) == {
        ("a", "y"),
        ("b", "x"),
    }


def test_slots_per_target_respected() -> None:
    preferences = _preferences([("a", p, 1.0 - i / 10) for i, p in enumerate("uvwxyz")])

    chosen = allocate(preferences, dict.fromkeys("uvwxyz", 5), {"a": 3}).chosen

    assert chosen["posting_id"].tolist() == ["u", "v", "w"]


def test_zero_slots_gives_nothing() -> None:
    preferences = _preferences([("a", "x", 1.0)])

    assert allocate(preferences, {"x": 1}, {"a": 0}).chosen.empty


def test_posting_without_vacancy_never_chosen() -> None:
    preferences = _preferences([("a", "x", 1.0), ("a", "y", 0.1)])

    chosen = allocate(preferences, {"x": 0, "y": 1}, 3).chosen

    assert chosen["posting_id"].tolist() == ["y"]


def test_duplicate_pair_kept_once() -> None:
    preferences = _preferences([("a", "x", 0.2), ("a", "x", 0.9)])

    chosen = allocate(preferences, {"x": 3}, 3).chosen

    assert len(chosen) == 1
    assert chosen["score"].iloc[0] == pytest.approx(0.9)


@pytest.mark.parametrize("seed", range(20))
def test_headcount_never_exceeded_random(seed: int) -> None:
    rng = np.random.default_rng(seed)
    targets = [f"t{i}" for i in range(12)]
    postings = [f"p{i}" for i in range(8)]
    rows = [
        (target, posting, float(rng.random()))
        for target in targets
        for posting in postings
        if rng.random() < 0.6
    ]
    vacancies = {posting: int(rng.integers(0, 4)) for posting in postings}

    allocation = allocate(_preferences(rows), vacancies, 3)
    chosen = allocation.chosen

    per_posting = chosen["posting_id"].value_counts()
    for posting, count in per_posting.items():
        assert count <= vacancies[str(posting)]
    assert (chosen.groupby("seeker_id").size() <= 3).all()
    assert not chosen.duplicated(["seeker_id", "posting_id"]).any()
    assert allocation.used == {str(k): int(v) for k, v in per_posting.items()}


@pytest.mark.parametrize("seed", range(5))
def test_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    targets, postings = ["a", "b", "c"], ["x", "y", "z"]
    rows = [(t, p, round(float(rng.random()), 3)) for t in targets for p in postings]
    vacancies = {"x": 1, "y": 1, "z": 1}

    chosen = allocate(_preferences(rows), vacancies, 1).chosen

    scores = {(t, p): s for t, p, s in rows}
    best = max(
        sum(scores[(t, p)] for t, p in zip(targets, order, strict=True))
        for order in itertools.permutations(postings)
    )
    assert len(chosen) == 3
    assert chosen["score"].sum() == pytest.approx(best, abs=1e-3)


def test_missing_column_rejected() -> None:
    with pytest.raises(AllocationError, match="score"):
        allocate(pd.DataFrame({"seeker_id": ["a"], "posting_id": ["x"]}), {"x": 1}, 1)


def test_negative_vacancies_rejected() -> None:
    with pytest.raises(AllocationError, match="negative"):
        allocate(_preferences([("a", "x", 1.0)]), {"x": -1}, 1)


def test_nan_score_rejected() -> None:
    with pytest.raises(AllocationError, match="finite"):
        allocate(_preferences([("a", "x", float("nan"))]), {"x": 1}, 1)
