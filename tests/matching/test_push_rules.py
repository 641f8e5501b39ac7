"""Push timing rules and message text."""

from datetime import UTC, date, datetime, time

import pytest

from geo.transit.itinerary import Leg, LegKind, Route
from matching.push_rules import (
    PushRuleError,
    PushRules,
    commute_label,
    relink_job,
    render_digest,
    render_message,
)

RULES = PushRules()


@pytest.mark.parametrize(
    ("utc_hour", "utc_minute", "quiet"),
    [
        (13, 59, False),  # 21:59 in Xi'an
        (14, 0, True),  # 22:00
        (23, 59, True),  # 07:59
        (0, 0, False),  # 08:00
        (4, 0, False),  # 12:00
    ],
)
def test_quiet_hours_in_shanghai(utc_hour: int, utc_minute: int, quiet: bool) -> None:
    at = datetime(2026, 12, 7, utc_hour, utc_minute, tzinfo=UTC)
    assert RULES.in_quiet_hours(at) is quiet


def test_earliest_send_is_eight_next_morning() -> None:
    late = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # 23:00 in Xi'an
    early = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)  # 04:00 on 8 December in Xi'an
    assert RULES.earliest_send(late) == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)
    assert RULES.earliest_send(early) == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)


def test_earliest_send_keeps_daytime() -> None:
    noon = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
    assert RULES.earliest_send(noon) == noon


def test_local_day_of_cap() -> None:
    assert RULES.local_day(datetime(2026, 12, 7, 16, 30, tzinfo=UTC)) == date(2026, 12, 8)


def test_naive_time_rejected() -> None:
    with pytest.raises(PushRuleError, match="no time zone"):
        RULES.in_quiet_hours(datetime(2026, 12, 7, 12, 0))


def test_invalid_rules_name_the_field() -> None:
    with pytest.raises(PushRuleError, match="daily_cap 0"):
        PushRules(daily_cap=0)
    with pytest.raises(PushRuleError, match="quiet hours"):
        PushRules(quiet_start=time(8, 0), quiet_end=time(8, 0))


@pytest.mark.parametrize(
    ("minutes", "mode", "metro", "lang", "text"),
    [
        (18.2, "transit", True, "zh", "地铁约20分钟"),
        (18.2, "transit", False, "zh", "公交地铁约20分钟"),
        (7.4, "walk", False, "zh", "步行约7分钟"),
        (31.0, "bike", False, "en", "about 35 min by bike"),
        (7.4, "walk", False, "en", "about 7 min on foot"),
        (12.0, "drive", False, "en", "about 15 min by car"),
        (18.2, "transit", True, "en", "about 20 min by metro"),
    ],
)
def test_commute_label(minutes: float, mode: str, metro: bool, lang: str, text: str) -> None:
    assert commute_label(minutes, mode, lang, metro=metro) == text  # type: ignore[arg-type]


def test_message_has_job_commute_link() -> None:
    message = render_message("焊工", "某机械厂", "地铁约20分钟", "http://x/seeker?job=p1")
    assert message.title == "家门口新岗位"
    assert message.body == "某机械厂招聘焊工，地铁约20分钟。详情：http://x/seeker?job=p1"
    english = render_message("Welder", "A factory", "about 20 min by metro", "http://x", "en")
    assert english.body == "Welder at A factory, about 20 min by metro. Details: http://x"


def test_job_link_escapes_id() -> None:
    assert RULES.job_link("a b/c") == "http://127.0.0.1:8000/seeker?job=a%20b%2Fc"


def test_job_link_english_page() -> None:
    assert RULES.job_link("p1", "en") == "http://127.0.0.1:8000/seeker?job=p1&lang=en"


def test_relink_job_keeps_lang() -> None:
    link = relink_job("http://t/seeker?job=p1&lang=en", "p 2")
    assert link == "http://t/seeker?job=p%202&lang=en"


@pytest.mark.parametrize("minutes", [0.4, 1.4, 1.6, 2.5, 7.4, 9.6])
def test_short_walk_matches_itinerary(minutes: float) -> None:
    route = Route(minutes, "walk", (Leg(LegKind.WALK, minutes),))
    assert commute_label(minutes, "walk") == f"步行约{route.text().removeprefix('步行')}"


@pytest.mark.parametrize(
    ("lines", "title"),
    [
        (["Accountant (20 min)"], "1 job matches your new preferences"),
        (["Accountant (20 min)", "Cook (5 min)"], "2 jobs match your new preferences"),
    ],
)
def test_english_digest_title_number(lines: list[str], title: str) -> None:
    assert render_digest(lines, "http://t/seeker", "en").title == title


def test_chinese_digest_title_counts_jobs() -> None:
    message = render_digest(["会计（地铁约20分钟）"], "http://t/seeker", "zh")
    assert message.title == "按新的求职意向，有1个岗位适合您"
