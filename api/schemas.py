"""Response bodies of the JSON API."""

from typing import Any, Literal

from pydantic import BaseModel, Field

# Largest offset a list route accepts. Larger values skip every row anyway, and the
# stores' integer columns overflow above 2**63 - 1.
MAX_OFFSET = 1_000_000_000


class Job(BaseModel):
    """A posting as shown to a seeker, with its distance and reasons."""

    posting_id: str
    title: str
    company: str
    salary_text: str
    salary_min_month: float | None = Field(description="Yuan per month; null when unknown.")
    salary_max_month: float | None = Field(description="Yuan per month; null when unknown.")
    distance_m: float | None = Field(
        description="Straight-line metres from the query point; null for city-level locations."
    )
    estimated_commute_min: float | None = Field(
        default=None,
        description="Door-to-door minutes by commute_mode; an estimate to the area's"
        " representative point when approximate is true (reasons then give no minutes);"
        " null for city-level locations.",
    )
    commute_mode: str | None = Field(
        default=None, description="Fastest allowed mode: walk, bike, transit or drive."
    )
    itinerary: str | None = Field(
        default=None,
        description="One-line trip from the seeker's home, e.g. 步行6分钟 → 地铁2号线 小寨→北大街"
        "（5站）→ 步行5分钟; null without the transit network or for an approximate location.",
    )
    precision: str
    precision_label: str
    approximate: bool = Field(description="True when the point stands for an area (约).")
    location_label: str
    district_name: str | None
    lon: float = Field(description="Longitude in the requested coord_sys.")
    lat: float = Field(description="Latitude in the requested coord_sys.")
    score: float | None = Field(
        default=None,
        description="Baseline score from 0 to 1 (matching/scoring.py). When a model ranks the"
        " page, the order comes from the model and this score stays the baseline's; null for"
        " the anonymous nearby search.",
    )
    reasons: list[str]
    reason_keys: list[str] | None = Field(
        default=None,
        description="Feature group behind each model reason (commute, occupation, salary …);"
        " null for baseline reasons.",
    )
    reason_source: Literal["model", "baseline"] | None = Field(
        default=None,
        description="model: from the ranker's feature contributions; baseline: from the"
        " baseline score's rules; null for the anonymous nearby search.",
    )
    published_on: str | None


class JobPage(BaseModel):
    """One page of nearby jobs."""

    items: list[Job]
    total: int
    page: int
    page_size: int


class Point(BaseModel):
    """A point in the requested coord_sys."""

    lon: float
    lat: float


class SeekerSummary(BaseModel):
    """A seeker in lists; every seeker of the embedded default is simulated."""

    seeker_id: str
    group: str
    group_label: str
    education_label: str
    occupation_wish_name: str
    home_label: str = Field(
        description="Home area at community level (district, street, community); never the"
        " compound or campus name."
    )
    district_name: str | None
    max_commute_min: int
    simulated: bool


class SeekerDetail(SeekerSummary):
    """A seeker with the home area's point (the street office, not the home), for the page."""

    home: Point
    salary_wish_min: float | None
    salary_wish_max: float | None


class SeekerList(BaseModel):
    """One page of seekers."""

    items: list[SeekerSummary]
    total: int


class Recommendations(BaseModel):
    """Ranked jobs for one seeker."""

    seeker: SeekerDetail
    items: list[Job]
    simulated: bool


class LayerSourceFile(BaseModel):
    """One source file of a layer: data folder, file name and licence note."""

    folder: str
    file: str
    licence: str


class LayerInfo(BaseModel):
    """Metadata of one HR map layer."""

    name: str
    title_zh: str
    title_en: str
    source: str
    updated: str
    geometry_type: str
    owner_org_id: str | None = None
    """Organisation responsible for the layer; None for a layer the catalogue lacks."""
    sources: list[LayerSourceFile] = []


class LayerList(BaseModel):
    """Every HR map layer."""

    items: list[LayerInfo]


class Stats(BaseModel):
    """Counts shown on the city map; anchor and posting counts follow staff curation."""

    postings: int
    anchors: int
    seekers: int
    simulated_seekers: bool
    """True when any stored seeker is simulated, so the counts include simulated data."""
    anchors_by_precision: dict[str, int]
    anchors_by_state: dict[str, int]
    postings_by_precision: dict[str, int]


class DistrictCount(BaseModel):
    """Anchors of one district with one precision and one curation state."""

    district_code: str | None
    district_name: str | None
    precision: str
    precision_label: str
    state: str
    state_label: str
    n: int


class DistrictCounts(BaseModel):
    """Anchors by district, precision and state, for the city map and analysts."""

    items: list[DistrictCount]


class RankerHealth(BaseModel):
    """The ranker that orders recommendations: a registry model or the baseline score."""

    kind: Literal["lightgbm", "baseline"]
    model_id: str | None = None
    reason: str


class Health(BaseModel):
    """Liveness and what the service has loaded."""

    status: str = Field(description="ok, or stale_index (with HTTP 503).")
    stale_index: str | None = Field(
        default=None,
        description="Why the job index is behind the store and could not be loaded again.",
    )
    postings: int
    seekers: int
    versions: dict[str, Any]
    ranker: RankerHealth
    push_ranker: RankerHealth | None = Field(
        default=None, description="The score that ranks and thresholds push fan-out."
    )


class RouteLeg(BaseModel):
    """One leg of a trip, with names in the requested language."""

    kind: Literal["walk", "metro", "bus", "transfer", "bike", "drive"]
    minutes: float
    wait_min: float = Field(description="Expected wait before boarding, included in minutes.")
    line: str | None = Field(description="Metro line id, or the upstream index of a bus line.")
    line_name: str | None
    from_stop: str | None = Field(description="Boarding station or derived stop.")
    to_stop: str | None = Field(description="Alighting station or derived stop.")
    stops: int = Field(description="Stations, or derived bus stops, travelled.")


class RouteBody(BaseModel):
    """The fastest door-to-door trip between two points under the allowed modes."""

    minutes: float
    mode: Literal["walk", "bike", "transit", "drive"]
    text: str = Field(description="The itinerary on one line.")
    legs: list[RouteLeg]
    modes: list[str] = Field(description="Modes allowed, walking always included.")
