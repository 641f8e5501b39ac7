"""Request and response bodies of the assistance officers' routes (:mod:`api.officer_routes`)."""

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from matching.assistance import GUIDANCE_TOPICS, RECOMMENDATIONS_PER_TARGET


class AssignIn(BaseModel):
    """A target to assign: the seeker, the officer and optionally the assistance category."""

    model_config = ConfigDict(extra="forbid")

    seeker_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    officer_id: str = Field(max_length=64)
    category: str | None = Field(
        None,
        max_length=32,
        description="Category code or zh-CN label; the seeker's stored category when omitted.",
    )


class GuidanceIn(BaseModel):
    """The career guidance session: its topic code."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(description=f"One of {sorted(GUIDANCE_TOPICS)}.")


class SignOffIn(BaseModel):
    """Postings the officer signs off as recommendations (1 to 3, distinct)."""

    model_config = ConfigDict(extra="forbid")

    posting_ids: list[str] = Field(min_length=1, max_length=RECOMMENDATIONS_PER_TARGET)


class StateIn(BaseModel):
    """The next state of a recommendation."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(max_length=16)


class TrainingIn(BaseModel):
    """The training institution offered: the training layer's Baidu uid."""

    model_config = ConfigDict(extra="forbid")

    institution_id: str = Field(max_length=64, pattern=r"^[A-Za-z0-9]+$")


class TrainingResponseIn(BaseModel):
    """The target's response to the training offer: accepted or declined."""

    model_config = ConfigDict(extra="forbid")

    response: str = Field(max_length=16)


class VisitIn(BaseModel):
    """A return visit to schedule on a day (UTC), today or later."""

    model_config = ConfigDict(extra="forbid")

    due_on: date


class RecommendationOut(BaseModel):
    """One signed-off recommendation and its state."""

    posting_id: str
    title: str | None
    company: str | None
    state: str
    signed_off_at: datetime
    delivered_at: datetime | None


class VisitOut(BaseModel):
    """One return visit; ``due`` is true when it is open and its day has come."""

    visit_id: str
    seeker_id: str
    due_on: date
    reason: str
    done_at: datetime | None
    due: bool


class TargetOut(BaseModel):
    """A target with its 131 status; the name is masked, the category shown to pi.unmask only."""

    seeker_id: str
    simulated: bool
    name: str
    category_label: str | None
    officer_id: str
    org_id: str
    district_code: str
    guidance_at: datetime | None
    guidance_topic: str | None
    recommendations: list[RecommendationOut]
    training_institution: str | None
    training_offered_at: datetime | None
    training_response: str | None
    next_visit_on: date | None
    visits: list[VisitOut] = Field(description="Open return visits, earliest first.")
    complete: bool


class MatchOut(BaseModel):
    """One posting of a target's match list; ``proposed`` marks the allocation's choice."""

    posting_id: str
    title: str
    company: str
    district_code: str | None
    estimated_commute_min: float | None
    public_welfare: bool
    night_shift: bool
    match_score: float
    proposed: bool


class TargetMatchesOut(BaseModel):
    """A target's match list and the recommendations it still needs."""

    seeker_id: str
    slots: int
    matches: list[MatchOut]


class MatchListOut(BaseModel):
    """The officer's match list; ``unknown`` targets are not among the loaded seekers."""

    targets: list[TargetMatchesOut]
    unknown: list[str]
    method: str = Field(description="How the proposals were allocated.")


class InstitutionOut(BaseModel):
    """A training institution of the training map layer near the target's street."""

    institution_id: str
    name: str
    address: str
    district_code: str
    distance_m: float
