"""Group zones: graduates, high-level talent and key-enterprise labour, on real and built rows."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from geo.crs import XIAN_BOUNDS_WGS84
from matching.candidates import JobIndex
from matching.education import EducationLevel
from matching.recommend import Recommender
from matching.scoring import WEIGHTS
from matching.seeker_simulation import generate_seekers
from matching.zones_enterprise import (
    in_region,
    key_enterprises,
    key_vacancies_first,
    suitable_seekers,
)
from matching.zones_graduates import (
    NoCampusError,
    graduate_universities,
    graduate_zone_jobs,
    load_campuses,
    university_district_counts,
)
from matching.zones_talent import (
    TALENT_WEIGHT_DISTANCE,
    talent_standing,
    talent_weights,
    talent_zone_jobs,
)
from store.sqlite import SqliteStore

# A campus point and points about 1 km and 40 km east of it, WGS84 degrees.
CAMPUS = (108.95, 34.25)
NEAR = (108.961, 34.25)
FAR = (109.39, 34.25)


@pytest.fixture(scope="module")
def recommender(full_store: SqliteStore) -> Recommender:
    """The recommender of the built test store, with the exact homes decrypted."""
    return Recommender.from_store(full_store, exact_homes=seeker_codec(Settings()).with_exact_homes)


@pytest.fixture(scope="module")
def campuses(data_dir: Path) -> pd.DataFrame:
    return load_campuses(data_dir)


def _posting(posting_id: str, point: tuple[float, float], **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "posting_id": posting_id,
        "title": "普通岗位",
        "company": "某公司",
        "categories": "",
        "experience_text": "",
        "occupation_code": "",
        "occupation_score": 0.9,
        "graduate_ok": 0,
        "education": -1,
        "salary_min_month": 5000.0,
        "salary_max_month": 7000.0,
        "precision": "poi",
        "lon": point[0],
        "lat": point[1],
        "district_code": "610113",
        "anchor_id": f"anc-{posting_id}",
        "active": True,
        "published_on": "2018-09-01",
    }
    row.update(fields)
    return row


def _seeker(seeker_id: str, point: tuple[float, float], **fields: object) -> dict[str, object]:
    row: dict[str, object] = {
        "seeker_id": seeker_id,
        "simulated": True,
        "group": "graduate",
        "education": int(EducationLevel.BACHELOR),
        "major": "软件工程",
        "university": "某大学",
        "occupation_wish_code": "2-02-10-03",
        "occupation_wish_name": "软件工程技术人员",
        "keywords": "软件工程技术人员;程序员",
        "salary_wish_min": 5000.0,
        "salary_wish_max": 8000.0,
        "max_commute_min": 30,
        "modes": "walk;transit",
        "home_lon": point[0],
        "home_lat": point[1],
        "home_kind": "university",
    }
    row.update(fields)
    return row


# --- graduates ---------------------------------------------------------------------------


def test_campuses_are_63_in_xian(campuses: pd.DataFrame) -> None:
    min_lon, min_lat, max_lon, max_lat = XIAN_BOUNDS_WGS84

    assert len(campuses) == 63
    assert campuses["lon"].between(min_lon, max_lon).all()
    assert campuses["lat"].between(min_lat, max_lat).all()
    assert campuses["university"].is_unique


def test_stored_graduates_recover_campus(
    recommender: Recommender, campuses: pd.DataFrame, data_dir: Path
) -> None:
    # The test store contains 500 seekers drawn with seed 7; the plaintext draw is the truth.
    truth = generate_seekers(data_dir, 500, seed=7).set_index("seeker_id")["university"]
    stored = recommender.seekers.drop(columns=["university"], errors="ignore")

    found = graduate_universities(stored, campuses)

    assert (found != "").sum() > 20
    assert found.to_numpy().tolist() == truth.reindex(stored["seeker_id"]).tolist()


def test_street_office_homes_match_no_campus(
    full_store: SqliteStore, campuses: pd.DataFrame
) -> None:
    # Without decryption home_lon/home_lat hold street office points, not campuses.
    stored = full_store.seekers_frame()

    found = graduate_universities(stored, campuses)

    assert (found == "").all()


def test_counts_cover_every_university(recommender: Recommender, campuses: pd.DataFrame) -> None:
    counts = university_district_counts(recommender.seekers, recommender.postings, campuses)
    graduates = int((recommender.seekers["group"] == "graduate").sum())

    assert counts.graduates["university"].tolist() == campuses["university"].tolist()
    assert counts.graduates["graduates"].sum() + counts.graduates_without_university == graduates
    per_university = counts.graduates.set_index("university")["graduates"]
    largest = counts.matched.groupby("university")["matched_graduates"].max()
    assert (largest <= per_university.reindex(largest.index)).all()
    assert counts.matched["district_code"].str.fullmatch(r"6101\d\d").all()


def test_counts_only_fitting_jobs_in_reach(campuses: pd.DataFrame) -> None:
    name = str(campuses["university"].iloc[0])
    campus = (float(campuses["lon"].iloc[0]), float(campuses["lat"].iloc[0]))
    east = (campus[0] + 0.011, campus[1])
    seekers = pd.DataFrame(
        [
            _seeker("g1", campus, university=name),
            _seeker("g2", campus, university=name, major="临床医学"),
            _seeker("w1", campus, university="", group="general"),
        ]
    )
    postings = pd.DataFrame(
        [
            _posting("fit", east, occupation_code="2-02-10-03", district_code="610113"),
            _posting("trainee", east, title="行政见习生", district_code="610104"),
            _posting("far", FAR, occupation_code="2-02-10-03", district_code="610115"),
            _posting("city", east, occupation_code="2-02-10-03", precision="city"),
            _posting("unfit", east, occupation_code="2-05-01-01", district_code="610103"),
        ]
    )

    counts = university_district_counts(seekers, postings, campuses)
    matched = counts.matched.set_index("district_code")["matched_graduates"].to_dict()

    # g1 fits the software post and the traineeship; g2 (medicine) fits the traineeship
    # and the clinical post. The far post is beyond a 30-minute reach.
    assert matched == {"610113": 1, "610104": 2, "610103": 1}
    assert counts.graduates.set_index("university")["graduates"][name] == 2


def test_graduate_zone_orders_traineeships_first(recommender: Recommender) -> None:
    graduates = recommender.seekers.loc[recommender.seekers["group"] == "graduate"]
    seeker = graduates.iloc[0]

    zone = graduate_zone_jobs(recommender.index, seeker, 30)

    assert not zone.empty
    assert zone["fits"].all()
    assert (zone["estimated_commute_min"].dropna() <= seeker["max_commute_min"]).all()
    keys = list(zip(zone["traineeship"], zone["major_fit"], zone["score"], strict=True))
    assert keys == sorted(keys, reverse=True)


def test_graduate_zone_from_campus() -> None:
    index = JobIndex(pd.DataFrame([_posting("trainee", NEAR, title="软件见习生")]))
    seeker = pd.Series(_seeker("g1", FAR))

    from_home = graduate_zone_jobs(index, seeker, 10)
    from_campus = graduate_zone_jobs(index, seeker, 10, near="campus", campus=CAMPUS)

    assert from_home.empty
    assert from_campus["posting_id"].tolist() == ["trainee"]
    with pytest.raises(NoCampusError, match="'g1'"):
        graduate_zone_jobs(index, seeker, 10, near="campus")


def test_graduate_zone_drops_unmet_education() -> None:
    postings = pd.DataFrame(
        [
            _posting("master", NEAR, occupation_code="2-02-10-03", education=5),
            _posting("bachelor", NEAR, occupation_code="2-02-10-03", education=4),
        ]
    )
    zone = graduate_zone_jobs(JobIndex(postings), pd.Series(_seeker("g1", CAMPUS)), 10)

    assert zone["posting_id"].tolist() == ["bachelor"]


# --- talent ------------------------------------------------------------------------------


def test_talent_weights_cut_distance_only() -> None:
    weights = talent_weights()

    assert weights["score_distance"] == TALENT_WEIGHT_DISTANCE
    assert sum(weights.values()) == pytest.approx(1.0)
    ratio = weights["score_occupation"] / weights["score_education"]
    assert ratio == pytest.approx(WEIGHTS["score_occupation"] / WEIGHTS["score_education"])


@pytest.mark.parametrize(
    ("education", "title", "group", "qualifies"),
    [
        (EducationLevel.DOCTOR, "", "general", True),
        (EducationLevel.MASTER, "副高级", "general", True),
        (EducationLevel.MASTER, "中级", "general", False),
        (EducationLevel.BACHELOR, "正高级", "general", False),
        (EducationLevel.BACHELOR, "", "talent", True),
    ],
)
def test_talent_standing(education: int, title: str, group: str, qualifies: bool) -> None:
    seeker = pd.Series({"education": int(education), "professional_title": title, "group": group})

    assert talent_standing(seeker).qualifies is qualifies


def test_talent_standing_rejects_unknown_title() -> None:
    seeker = pd.Series({"education": 6, "professional_title": "教授级", "group": "talent"})

    with pytest.raises(ValueError, match="professional_title '教授级'"):
        talent_standing(seeker)


def test_talent_zone_puts_talent_posts_then_key_firms() -> None:
    postings = pd.DataFrame(
        [
            _posting("plain", NEAR, occupation_code="2-02-10-03"),
            _posting("key", (108.99, 34.25), occupation_code="2-01-06-01"),
            _posting("talent", (109.0, 34.25), title="高层次人才引进 研究员"),
        ]
    )
    seeker = pd.Series(_seeker("t1", CAMPUS, group="talent", max_commute_min=60))

    zone = talent_zone_jobs(JobIndex(postings), seeker, 10, frozenset({"anc-key"}))

    assert zone["posting_id"].tolist() == ["talent", "key", "plain"]
    assert zone["talent_post"].tolist() == [True, False, False]
    assert zone["key_enterprise"].tolist() == [False, True, False]


def test_talent_score_weighs_distance_less() -> None:
    near_weak = _posting("near", NEAR, occupation_code="2-02-09-01")
    far_exact = _posting("far", (109.06, 34.25), occupation_code="2-02-10-03")
    seeker = pd.Series(_seeker("t1", CAMPUS, group="talent", max_commute_min=60))

    zone = talent_zone_jobs(JobIndex(pd.DataFrame([near_weak, far_exact])), seeker, 10)
    scores = zone.set_index("posting_id")

    # The baseline prefers the near post; with distance weighted 0.10 the exact match wins.
    assert scores.loc["near", "score"] > scores.loc["far", "score"]
    assert scores.loc["far", "talent_score"] > scores.loc["near", "talent_score"]
    components = zone[list(talent_weights())].to_numpy()
    expected = components @ np.asarray(list(talent_weights().values()))
    assert np.allclose(zone["talent_score"], expected)


# --- key enterprises ---------------------------------------------------------------------


def _anchors() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "anchor_id": ["anc-a", "anc-b", "anc-c"],
            "name": ["甲厂", "乙厂", "丙店"],
            "lon": [CAMPUS[0]] * 3,
            "lat": [CAMPUS[1]] * 3,
            "precision": ["poi"] * 3,
            "district_code": ["610113", "610103", "610113"],
            "n_postings": [2, 5, 1],
        }
    )


def test_key_enterprises_need_a_flag() -> None:
    curated = pd.DataFrame(
        {
            "anchor_id": ["anc-a", "anc-b", "anc-c"],
            "key_enterprise": [True, False, False],
            "above_scale_industrial": [False, True, False],
        }
    )

    found = key_enterprises(curated, _anchors())

    assert found["anchor_id"].tolist() == ["anc-b", "anc-a"]
    assert key_enterprises(None, _anchors()).empty
    assert in_region(found["district_code"], "610113012").tolist() == [False, True]
    assert in_region(found["district_code"], None).tolist() == [True, True]


def test_key_vacancies_come_first() -> None:
    postings = pd.DataFrame(
        [_posting("p1", NEAR, anchor_id="x"), _posting("p2", NEAR, anchor_id="anc-a")]
    )

    ordered = key_vacancies_first(postings, frozenset({"anc-a"}))

    assert ordered["posting_id"].tolist() == ["p2", "p1"]
    assert ordered["key_enterprise"].tolist() == [True, False]


def test_suitable_seekers_by_fit_then_distance() -> None:
    anchor = _anchors().iloc[0]
    postings = pd.DataFrame(
        [
            _posting("soft", CAMPUS, anchor_id="anc-a", occupation_code="2-02-10-03"),
            _posting("chef", CAMPUS, anchor_id="anc-a", title="厨师", occupation_code="4-03-02-01"),
            _posting("other", CAMPUS, anchor_id="anc-z", occupation_code="2-05-01-01"),
            _posting("old", CAMPUS, anchor_id="anc-a", active=False, occupation_code="2-05-01-01"),
        ]
    )
    seekers = pd.DataFrame(
        [
            _seeker("exact-far", (108.97, 34.25)),
            _seeker("exact-near", NEAR),
            _seeker("middle", NEAR, occupation_wish_code="2-02-10-99", keywords="架构师"),
            _seeker("keyword", NEAR, occupation_wish_code="", keywords="厨师"),
            _seeker("doctor", NEAR, occupation_wish_code="2-05-01-01", keywords="医生"),
            _seeker("too-far", FAR),
            _seeker(
                "unschooled",
                NEAR,
                occupation_wish_code="4-03-02-01",
                keywords="面点",
                education=int(EducationLevel.JUNIOR_HIGH),
            ),
        ]
    )
    postings.loc[postings["posting_id"] == "chef", "education"] = int(EducationLevel.SENIOR_HIGH)

    match = suitable_seekers(anchor, postings, seekers, 10)

    assert match.vacancies["posting_id"].tolist() == ["soft", "chef"]
    assert match.seekers["seeker_id"].tolist() == ["exact-near", "exact-far", "middle", "keyword"]
    assert match.seekers["shared_levels"].tolist() == [4, 4, 3, 2]
    assert match.seekers["best_posting_id"].tolist() == ["soft", "soft", "soft", "chef"]
    assert suitable_seekers(anchor, postings, seekers, 1).seekers["seeker_id"].tolist() == [
        "exact-near"
    ]
