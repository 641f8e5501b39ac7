"""The 131 service rules: categories, group rules, recommendation states, completion."""

from datetime import UTC, date, datetime

import pandas as pd
import pytest

from matching.assistance import (
    ASSISTANCE_CATEGORIES,
    TRANSITIONS,
    AssistanceRules,
    CategoryError,
    LedgerError,
    apply_group_rules,
    check_sign_off,
    check_training_offer,
    check_training_response,
    check_transition,
    check_visit_day,
    completion_rates,
    is_complete,
    parse_category,
    service_day,
    visit_due_on,
)

RULES = AssistanceRules()


def _ranked(**columns: list[object]) -> pd.DataFrame:
    base = {
        "posting_id": ["p1", "p2", "p3"],
        "title": ["公益性岗位保洁员", "夜班保安", "理货员"],
        "score": [0.2, 0.9, 0.5],
        "estimated_commute_min": [10.0, 20.0, 30.0],
    }
    return pd.DataFrame({**base, **columns})


def test_parse_category_code_and_label() -> None:
    assert parse_category("disability") == "disability"
    assert parse_category(" 残疾人 ") == "disability"
    assert parse_category("4050人员") == "older_unemployed"
    assert parse_category("脱贫劳动力") == "poverty_alleviated"


def test_parse_category_hides_value() -> None:
    with pytest.raises(CategoryError) as caught:
        parse_category("秘密类别X")
    assert "秘密类别X" not in str(caught.value)


def test_every_category_has_two_labels() -> None:
    for labels in ASSISTANCE_CATEGORIES.values():
        assert len(labels) == 2
        assert all(labels)


def test_group_rules_boost_public_welfare() -> None:
    result = apply_group_rules(_ranked(), "long_term_unemployed", 60, RULES)

    assert result["posting_id"].iloc[0] == "p2"  # best ranker score, no penalty here
    welfare = result.set_index("posting_id")
    assert bool(welfare.loc["p1", "public_welfare"]) is True
    assert welfare.loc["p1", "match_score"] == pytest.approx(0.0 + RULES.public_welfare_bonus)


def test_group_rules_penalise_night_shift() -> None:
    result = apply_group_rules(_ranked(), "older_unemployed", 60, RULES).set_index("posting_id")

    assert bool(result.loc["p2", "night_shift"]) is True
    assert result.loc["p2", "match_score"] == pytest.approx(1.0 - RULES.night_shift_penalty)


def test_group_rules_drop_long_commute() -> None:
    # The target accepts 60 minutes, but the group rule caps commutes at 45.
    ranked = _ranked(estimated_commute_min=[10.0, 50.0, 44.0])

    result = apply_group_rules(ranked, "long_term_unemployed", 60, RULES)

    assert sorted(result["posting_id"]) == ["p1", "p3"]


def test_group_rules_own_limit_lower() -> None:
    result = apply_group_rules(_ranked(), "long_term_unemployed", 15, RULES)

    assert result["posting_id"].tolist() == ["p1"]


def test_group_rules_barrier_free_for_disability() -> None:
    ranked = _ranked(barrier_free=[True, False, None])

    result = apply_group_rules(ranked, "disability", 60, RULES).set_index("posting_id")

    assert "p2" not in result.index  # known not barrier-free
    assert result.loc["p1", "match_score"] == pytest.approx(
        RULES.public_welfare_bonus + RULES.barrier_free_bonus
    )
    assert result.loc["p3", "barrier_free"] is None


def test_group_rules_accepted_categories() -> None:
    ranked = _ranked(
        accepted_categories=["disability;older_unemployed", "", "long_term_unemployed"]
    )

    result = apply_group_rules(ranked, "older_unemployed", 60, RULES)

    assert sorted(result["posting_id"]) == ["p1", "p2"]


def test_group_rules_empty_input() -> None:
    result = apply_group_rules(_ranked().iloc[:0], "disability", 60, RULES)

    assert result.empty
    assert "match_score" in result.columns


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("signed_off", "delivered"), ("delivered", "declined"), ("interviewed", "hired")],
)
def test_transition_allowed(current: str, wanted: str) -> None:
    check_transition(current, wanted)


@pytest.mark.parametrize(
    ("current", "wanted"),
    [("signed_off", "hired"), ("hired", "delivered"), ("declined", "interested")],
)
def test_transition_rejected(current: str, wanted: str) -> None:
    with pytest.raises(LedgerError, match=f"cannot move to '{wanted}'"):
        check_transition(current, wanted)


def test_transition_unknown_state() -> None:
    with pytest.raises(LedgerError, match="unknown"):
        check_transition("signed_off", "teleported")


def test_closed_states_have_no_moves() -> None:
    assert TRANSITIONS["hired"] == frozenset()
    assert TRANSITIONS["not_hired"] == frozenset()
    assert TRANSITIONS["declined"] == frozenset()


def test_sign_off_needs_guidance() -> None:
    with pytest.raises(LedgerError, match="career guidance"):
        check_sign_off(["p1"], [], guidance_recorded=False)


def test_sign_off_at_most_three() -> None:
    with pytest.raises(LedgerError, match="at most 1 more"):
        check_sign_off(["p3", "p4"], ["p1", "p2"], guidance_recorded=True)


def test_sign_off_rejects_repeats() -> None:
    with pytest.raises(LedgerError, match="repeats"):
        check_sign_off(["p1", "p1"], [], guidance_recorded=True)
    with pytest.raises(LedgerError, match="already recommended"):
        check_sign_off(["p1"], ["p1"], guidance_recorded=True)


def test_training_rules() -> None:
    with pytest.raises(LedgerError, match="career guidance"):
        check_training_offer(guidance_recorded=False, already_offered=False)
    with pytest.raises(LedgerError, match="already recorded"):
        check_training_offer(guidance_recorded=True, already_offered=True)
    with pytest.raises(LedgerError, match="training offer before"):
        check_training_response(offered=False, response="accepted", current=None)
    with pytest.raises(LedgerError, match="already 'declined'"):
        check_training_response(offered=True, response="accepted", current="declined")
    with pytest.raises(LedgerError, match="unknown"):
        check_training_response(offered=True, response="maybe", current=None)


def test_complete_needs_all_three_parts() -> None:
    now = datetime(2026, 12, 5, tzinfo=UTC)
    full = {"guidance_at": now, "training_offered_at": now}
    delivered = ["delivered", "declined", "hired"]

    assert is_complete(full, delivered)
    assert not is_complete(full, ["delivered", "declined", "signed_off"])
    assert not is_complete({**full, "guidance_at": None}, delivered)
    assert not is_complete({**full, "training_offered_at": None}, delivered)


def test_completion_rates_golden() -> None:
    targets = pd.DataFrame(
        {
            "officer_id": ["o1", "o1", "o1", "o2"],
            "complete": [True, False, True, False],
        }
    )

    rates = completion_rates(targets, "officer_id").set_index("officer_id")

    assert rates.loc["o1", "targets"] == 3
    assert rates.loc["o1", "completed"] == 2
    assert rates.loc["o1", "rate"] == pytest.approx(2 / 3)
    assert rates.loc["o2", "rate"] == 0.0


def test_completion_rates_all_complete() -> None:
    targets = pd.DataFrame({"district_code": ["610113"] * 2, "complete": [True, True]})

    assert completion_rates(targets, "district_code")["rate"].tolist() == [1.0]


def test_completion_rates_empty() -> None:
    empty = pd.DataFrame({"org_id": [], "complete": []})

    assert completion_rates(empty, "org_id").empty


def test_visit_days() -> None:
    assert visit_due_on(date(2026, 12, 25)) == date(2027, 1, 8)
    check_visit_day(date(2026, 12, 5), date(2026, 12, 5))
    with pytest.raises(LedgerError, match="before today"):
        check_visit_day(date(2026, 12, 4), date(2026, 12, 5))


def test_service_day_is_xian_day() -> None:
    # 17:00 UTC on 4 December is 01:00 on 5 December in Xi'an.
    late_evening_utc = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)

    assert service_day(late_evening_utc) == date(2026, 12, 5)
    assert service_day(datetime(2026, 12, 4, 15, 59, tzinfo=UTC)) == date(2026, 12, 4)
    with pytest.raises(LedgerError, match="before today"):
        check_visit_day(date(2026, 12, 4), service_day(late_evening_utc))
