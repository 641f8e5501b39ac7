"""The analyst dashboard's figures computed from the real data folder, served by an app.

Shared by the route tests and the browser tests through tests/api/conftest.py.
"""

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import AuthSettings, DataSettings, ModelSettings, Settings
from geo.coverage.access import measure_accessibility
from geo.coverage.circle import ServiceCircle, build_service_circle
from geo.coverage.dashboard import dashboard_figures, dashboard_path, write_dashboard
from geo.coverage.grid import WalkGridParameters
from geo.regions import load_regions
from geo.transit import TransitNetwork
from store.identity import Role
from store.sqlite import SqliteStore
from tests.api.staff_login import StaffLogin, log_in_staff

# A residential place renamed to markup: the page must show it as text.
PAYLOAD_NAME = '<img src=x onerror="window.__xss=1">小区'


@dataclass(frozen=True)
class DashboardServer:
    """An app whose store has precomputed dashboard figures, and an analyst session."""

    client: TestClient
    analyst: StaffLogin
    circle: ServiceCircle


def _circle_with_payload(data_dir: Path) -> ServiceCircle:
    regions = load_regions(data_dir)
    # 1 km cells keep the walking grid small; the figures' shape does not depend on it.
    circle = build_service_circle(data_dir, regions, grid_params=WalkGridParameters(cell_m=1000))
    circle.places.loc[circle.places.index[0], "name"] = PAYLOAD_NAME
    return circle


# A fairness report in the shape `doorstep fairness` writes, with the fields the page reads.
FAIRNESS_REPORT = {
    "simulated": True,
    "no_drop": {"seekers": 96, "pairs": 172695, "dropped_pairs": 0},
    "by_group": [
        {"group": group, "seekers": 200, "exposure_per_seeker": 7.04,
         "small_employer_share": 0.25, "mean_commute_min": 25.9}
        for group in ("graduate", "talent", "assistance", "general")
    ],
}  # fmt: skip


@pytest.fixture(scope="session")
def dashboard_server(
    data_dir: Path,
    full_store: SqliteStore,
    transit_network: TransitNetwork,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[DashboardServer]:
    folder = tmp_path_factory.mktemp("analyst")
    store_path = folder / "doorstep.sqlite"
    shutil.copy(full_store.path, store_path)
    store = SqliteStore(store_path)
    circle = _circle_with_payload(data_dir)
    access = measure_accessibility(store.seekers_frame(), store.postings_frame(), transit_network)
    figures = dashboard_figures(circle, access, load_regions(data_dir), simulated_seekers=True)
    write_dashboard(figures, dashboard_path(store_path))

    fairness_path = folder / "fairness.json"
    fairness_path.write_text(json.dumps(FAIRNESS_REPORT), encoding="utf-8")
    settings = Settings(
        data=DataSettings(store_path=store_path),
        auth=AuthSettings(identity_path=folder / "identity.sqlite"),
        model=ModelSettings(fairness_report_path=fairness_path),
    )
    with TestClient(create_app(settings, store=store)) as client:
        analyst = log_in_staff(client, org_id="city", role=Role.ANALYST)
        yield DashboardServer(client, analyst, circle)
