"""API fixtures: a client on the real store, and one on a small store full of XSS payloads."""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.security.seeker_pi import seeker_codec
from api.settings import DataSettings, Settings
from geo.anchors import build_anchors
from geo.layers import load_layers
from geo.regions import load_regions
from store.sqlite import SqliteStore, write_store
from tests.api.fix_analyst import dashboard_server  # noqa: F401  (a fixture)

# Strings a scraped title or company name could carry into a page.
XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "${alert(1)}",
    "`${document.cookie}`",
    "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e",
    "</script><script>alert(1)</script>",
]

# WGS84 points near the Bell Tower (钟楼), a few hundred metres apart.
_POINTS = [(108.9402, 34.2600), (108.9450, 34.2580), (108.9420, 34.2550)]


def _settings(store_path: Path) -> Settings:
    return Settings(data=DataSettings(store_path=store_path))


@pytest.fixture(scope="session")
def real_client(full_store: SqliteStore) -> Iterator[TestClient]:
    """A client on the store built from the real data folder."""
    app = create_app(_settings(full_store.path), store=full_store)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def xss_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    """A small store whose postings, employers and seekers carry XSS payloads."""
    regions = load_regions(data_dir)
    postings = _payload_postings()
    located = postings.assign(
        lon=[_POINTS[i % len(_POINTS)][0] for i in range(len(postings))],
        lat=[_POINTS[i % len(_POINTS)][1] for i in range(len(postings))],
        precision=["poi", "district", "business_area", "city", "building", "zone"],
        location_source="test",
        location_label=XSS_PAYLOADS,
        district_code="610103",
    )
    anchors, anchor_ids = build_anchors(located)
    path = tmp_path_factory.mktemp("xss") / "doorstep.sqlite"
    write_store(
        path,
        postings=postings.assign(anchor_id=anchor_ids.to_numpy()),
        anchors=anchors,
        seekers=seeker_codec(Settings()).protect(payload_seekers()),
        layers=load_layers(data_dir, regions),
        meta={
            "postings": len(postings),
            "anchors": len(anchors),
            "seekers": 1,
            "seekers_simulated": True,
            "anchors_by_precision": {},
            "postings_by_precision": {},
        },
    )
    return SqliteStore(path)


@pytest.fixture(scope="session")
def client(xss_store: SqliteStore) -> Iterator[TestClient]:
    """A client on the small XSS-payload store."""
    app = create_app(_settings(xss_store.path), store=xss_store)
    with TestClient(app) as test_client:
        yield test_client


def _payload_postings() -> pd.DataFrame:
    n = len(XSS_PAYLOADS)
    return pd.DataFrame(
        {
            "posting_id": [f"xss-{i}" for i in range(n)],
            "source": "test",
            "title": XSS_PAYLOADS,
            "company": list(reversed(XSS_PAYLOADS)),
            "location_text": "",
            "business_zones": "",
            "salary_text": "3-5千/月",
            "salary_min_month": 3000.0,
            "salary_max_month": 5000.0,
            "salary_period": "month",
            "education": 0,
            "experience_min_years": float("nan"),
            "graduate_ok": False,
            "occupation_code": "",
            "occupation_name": "",
            "categories": "",
            "published_on": "2018-09-27",
        }
    )


def payload_seekers() -> pd.DataFrame:
    """One simulated seeker of 碑林区 whose wish and home name are XSS payloads, in plaintext."""
    return pd.DataFrame(
        {
            "seeker_id": ["sim-000001"],
            "simulated": [True],
            "group": ["general"],
            "education": [4],
            "experience_years": [2.0],
            "major": [""],
            "occupation_wish_code": [""],
            "occupation_wish_name": [XSS_PAYLOADS[0]],
            "keywords": [""],
            "salary_wish_min": [3000.0],
            "salary_wish_max": [6000.0],
            "max_commute_min": [45],
            "modes": ["walk;transit"],
            "home_lon": [108.9420],
            "home_lat": [34.2610],
            "home_label": [XSS_PAYLOADS[1]],
            "home_kind": ["residential"],
            "home_district_code": ["610103"],
            "university": [""],
            "name": ["张<b>三</b>"],
            "mobile": ["13800138000"],
            "id_number": ["610103198605142314"],
            "sex": ["M"],
            "birth_date": ["1986-05-14"],
            "age": [40],
            "hardship_category": ["disability"],
            "home_street_code": ["610103001"],
            "home_community_code": ["610103001004"],
            "home_area_lon": [108.9440],
            "home_area_lat": [34.2590],
        }
    )
