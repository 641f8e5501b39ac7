"""Rules of "job at your doorstep" (家门口就业) pushes: timing, caps and the message text.

Every rule is a value of :class:`PushRules`, which the service builds from its
settings. Times are aware datetimes; quiet hours and the daily cap count in the
rules' time zone (Asia/Shanghai by default), whatever zone a caller passes.

A push payload holds the job, the commute and a link, never the seeker's name,
mobile, home or any other personal field: :func:`render_message` takes no seeker
argument at all.
"""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from geo.errors import DoorstepError
from geo.transit.itinerary import whole_minutes

logger = logging.getLogger(__name__)

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

COMMUTE_MODE_ZH = {"walk": "步行", "bike": "骑行", "transit": "公交地铁", "drive": "驾车"}
"""Chinese label of each travel mode of :data:`geo.transit.TRAVEL_MODES` in a push."""
COMMUTE_MODE_ZH_METRO = "地铁"
COMMUTE_MODE_EN = {
    "walk": "on foot", "bike": "by bike", "transit": "by bus/metro", "drive": "by car",
}  # fmt: skip
"""English phrase of each travel mode after the minutes, as in ``about 8 min on foot``."""


class PushRuleError(DoorstepError, ValueError):
    """A push rule setting is invalid."""


@dataclass(frozen=True, slots=True)
class PushRules:
    """The rules every push obeys; all are settings (``DOORSTEP_PUSH_*``)."""

    time_zone: str = "Asia/Shanghai"
    quiet_start: time = time(22, 0)
    """Start of the quiet hours; a push due in them is held until :attr:`quiet_end`."""
    quiet_end: time = time(8, 0)
    daily_cap: int = 3
    """Most pushes one seeker receives on one local calendar day; the rest are skipped."""
    max_seekers_per_opening: int = 50
    """Most seekers pushed per vacancy of a posting (k), best scores first; a posting's cap is
    k times its headcount, at most :attr:`max_seekers_per_posting`."""
    max_seekers_per_posting: int = 500
    """Most seekers one posting is pushed to, whatever its headcount."""
    min_score: float = 0.55
    """Lowest baseline score (0..1) of a pushed job, when no ranker model is loaded."""
    min_model_score: float | None = None
    """Lowest learned-ranker score (raw LambdaRank score) of a pushed job; None uses the
    score calibrated to pass as many pairs as :attr:`min_score` passes with the baseline."""
    better_margin: float = 0.0
    """A job is pushed only if its score beats every job pushed to the seeker in the last
    :attr:`shown_window_days` days by more than this, in the units of the score in use."""
    shown_window_days: int = 7
    link_base: str = "http://127.0.0.1:8000"
    """Base URL of the links in messages; the seeker page of the job is appended."""
    max_attempts: int = 5
    """Claims after which a push that is still not delivered goes to the dead-letter list.

    A worker's claim counts as an attempt before it sends, so a worker that dies while
    sending uses one up, and a push that crashes every worker still ends."""
    digest_size: int = 5
    """Most jobs listed in one preference-change digest."""

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)  # raises ZoneInfoNotFoundError for an unknown zone
        if self.quiet_start == self.quiet_end:
            raise PushRuleError(
                f"quiet hours {self.quiet_start}-{self.quiet_end} are empty;"
                " set different start and end times"
            )
        for name in (
            "daily_cap",
            "max_seekers_per_opening",
            "max_seekers_per_posting",
            "max_attempts",
            "digest_size",
        ):
            if getattr(self, name) < 1:
                raise PushRuleError(f"{name} {getattr(self, name)} is invalid; expected >= 1")
        if not 0.0 <= self.min_score <= 1.0:
            raise PushRuleError(f"min_score {self.min_score} is outside 0..1")

    def posting_cap(self, headcount: int) -> int:
        """Return the most seekers a posting with ``headcount`` vacancies is pushed to."""
        return min(self.max_seekers_per_opening * max(headcount, 1), self.max_seekers_per_posting)

    @property
    def zone(self) -> ZoneInfo:
        """The time zone of the quiet hours and of the cap's calendar day."""
        return ZoneInfo(self.time_zone)

    def in_quiet_hours(self, at: datetime) -> bool:
        """Return whether ``at`` (aware) falls inside the quiet hours, end excluded."""
        local = _local(at, self.zone).time()
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end

    def earliest_send(self, at: datetime) -> datetime:
        """Return ``at`` outside quiet hours, or the end of the quiet hours that contain it.

        The result is in UTC.
        """
        if not self.in_quiet_hours(at):
            return at.astimezone(ZoneInfo("UTC"))
        local = _local(at, self.zone)
        end = datetime.combine(local.date(), self.quiet_end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, self.zone)
        return end.astimezone(ZoneInfo("UTC"))

    def local_day(self, at: datetime) -> date:
        """Return the calendar day of ``at`` in the rules' zone, the unit of the daily cap."""
        return _local(at, self.zone).date()

    def job_link(self, posting_id: str, lang: Lang = "zh") -> str:
        """Return the seeker-page link of one posting, with ``lang=en`` for English messages."""
        link = f"{self.link_base.rstrip('/')}/seeker?job={quote(posting_id, safe='')}"
        return link if lang == "zh" else f"{link}&lang={lang}"


def relink_job(link: str, posting_id: str) -> str:
    """Return ``link`` with its ``job`` query parameter set to ``posting_id``, others kept."""
    parts = urlsplit(link)
    kept = [(key, value) for key, value in parse_qsl(parts.query) if key != "job"]
    query = urlencode([("job", posting_id), *kept], safe="", quote_via=quote)
    return urlunsplit(parts._replace(query=query))


def _local(at: datetime, zone: ZoneInfo) -> datetime:
    if at.tzinfo is None:
        raise PushRuleError(f"time {at.isoformat()} has no time zone; pass an aware datetime")
    return at.astimezone(zone)


def commute_label(minutes: float, mode: str, lang: Lang = "zh", *, metro: bool = False) -> str:
    """Return the commute as a push shows it, such as ``地铁约20分钟`` or ``about 20 min by bike``.

    Minutes are rounded to whole minutes as the recommendations' itinerary rounds them
    (:func:`geo.transit.itinerary.whole_minutes`), so a short walk reads the same in both.
    Above 10 minutes they are rounded up to the next 5, because the model is an estimate.
    ``metro`` names a transit trip that rides the metro as 地铁.
    """
    shown = whole_minutes(minutes)
    if shown > 10:
        shown = int(-(-shown // 5) * 5)
    if lang == "en":
        phrase = "by metro" if metro and mode == "transit" else COMMUTE_MODE_EN.get(mode, mode)
        return f"about {shown} min {phrase}"
    name = COMMUTE_MODE_ZH_METRO if metro and mode == "transit" else COMMUTE_MODE_ZH.get(mode, "")
    return f"{name}约{shown}分钟"


@dataclass(frozen=True, slots=True)
class PushMessage:
    """The payload of one push: what every channel sends, with no personal field."""

    title: str
    body: str
    link: str


def render_message(
    job_title: str, company: str, commute: str, link: str, lang: Lang = "zh"
) -> PushMessage:
    """Return the message of a one-job push in ``lang`` (zh-CN by default)."""
    if lang == "en":
        return PushMessage(
            title="A job near you",
            body=f"{job_title} at {company}, {commute}. Details: {link}",
            link=link,
        )
    return PushMessage(
        title="家门口新岗位",
        body=f"{company}招聘{job_title}，{commute}。详情：{link}",
        link=link,
    )


def render_digest(lines: list[str], link: str, lang: Lang = "zh") -> PushMessage:
    """Return the one-message digest of the jobs a seeker qualifies for after a preference change.

    ``lines`` are "title, commute" strings, best first.
    """
    if lang == "en":
        listed = "; ".join(lines)
        # A digest whose other jobs closed before delivery lists one job.
        count = "1 job matches" if len(lines) == 1 else f"{len(lines)} jobs match"
        return PushMessage(
            title=f"{count} your new preferences",
            body=f"{listed}. Details: {link}",
            link=link,
        )
    listed = "；".join(lines)
    return PushMessage(
        title=f"按新的求职意向，有{len(lines)}个岗位适合您",
        body=f"{listed}。详情：{link}",
        link=link,
    )
