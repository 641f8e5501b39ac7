"""A seeker's own account on both stores: link, self-registration, routes, contacts, erasure."""

import re
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

import api.app as app_module
from api.app import create_app, seeker_directory
from api.security.seeker_pi import seeker_codec
from api.security.sms import OutboxSmsGateway
from api.settings import AuthSettings, CacheSettings, DataSettings, Settings
from matching.push_fanout import PushCandidate
from matching.push_rules import PushRules, render_message
from matching.seeker_simulation import generate_seekers
from push.channels import RecipientMissingError, WeChatSubscribeChannel
from push.pipeline import Deliverer, PipelineOptions
from store import seeker_accounts
from store.audit import AuditWriteError
from store.identity import Role
from store.push_outbox import PushBatch
from store.sqlite import SqliteStore, write_store
from tests.api.staff_login import log_in_staff, reuse_staff_login
from tests.store.conftest import make_database, pg_pool, pg_store, pg_url
from tests.store.test_contract import _inputs

# The PostgreSQL fixtures come from tests/store/conftest.py.
__all__ = ["make_database", "pg_pool", "pg_store", "pg_url"]

SECRET = secrets.token_hex(32)
YANTA = "610113"
BEILIN = "610103"
# A point in 雁塔区 near 小寨, WGS84, and a community of 雁塔区 小寨路街道.
YANTA_HOME = (108.9460, 34.2230)
# A daytime instant far ahead, so the app's embedded worker never sends these pushes.
FUTURE_NOON = datetime(2031, 3, 3, 4, 0, tzinfo=UTC)

_officers: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def plaintext_seekers(data_dir: Path) -> pd.DataFrame:
    """120 simulated seekers with their plaintext personal fields."""
    return generate_seekers(data_dir, 120, seed=5)


@pytest.fixture(scope="module")
def identity_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("identity") / "identity.sqlite"


@pytest.fixture(params=["sqlite", "postgres"])
def client(
    request: pytest.FixtureRequest,
    data_dir: Path,
    tmp_path: Path,
    identity_path: Path,
    plaintext_seekers: pd.DataFrame,
) -> Iterator[TestClient]:
    """A client on each store in turn, holding the contract inputs and 120 seekers."""
    inputs = _inputs()
    postings = inputs["postings"]
    inputs["postings"] = postings.assign(
        occupation_code="",
        occupation_name="",
        occupation_score=0.0,
        salary_max_month=postings["salary_min_month"] + 1000,
        experience_min_years=float("nan"),
    )
    inputs["seekers"] = seeker_codec(Settings()).protect(plaintext_seekers)
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite"
        write_store(path, **inputs)
        store: Any = SqliteStore(path)
    else:
        store = request.getfixturevalue("pg_store")
        store.replace_all(**inputs)
    settings = Settings(
        data=DataSettings(data_dir=data_dir, store_path=tmp_path / "unused.sqlite"),
        cache=CacheSettings(rate_limit_per_minute=0),
        auth=AuthSettings(
            staff_token_secret=SecretStr(SECRET),
            identity_path=identity_path,
            sms_outbox_path=tmp_path / "sms.jsonl",
        ),
    )
    with TestClient(create_app(settings, store=store)) as test_client:
        yield test_client


def _seeker_login(client: TestClient, mobile: str | None = None) -> tuple[str, dict[str, str]]:
    """Log a seeker in through the SMS routes; return the account id and request headers."""
    mobile = mobile or f"138{secrets.randbelow(10**8):08d}"
    assert client.post("/v1/auth/seeker/code", json={"mobile": mobile}).status_code == 202
    gateway = client.app.state.identity.gateway  # type: ignore[attr-defined]
    assert isinstance(gateway, OutboxSmsGateway)
    match = re.search(r"验证码 (\d{6})", gateway.messages()[-1]["text"])
    assert match is not None
    body = client.post("/v1/auth/seeker/verify", json={"mobile": mobile, "code": match.group(1)})
    assert body.status_code == 200, body.text
    token = body.json()["token"]
    principal = client.app.state.identity.authenticate(token, "seeker", None)  # type: ignore[attr-defined]
    return principal.account.account_id, {"Authorization": f"Bearer {token}"}


def _officer(client: TestClient) -> dict[str, str]:
    key = client.app.state.store.describe()  # type: ignore[attr-defined]
    if key not in _officers:
        login = log_in_staff(client, f"district:{YANTA}", role=Role.ASSISTANCE_OFFICER)
        _officers[key] = login.headers
    return _officers[key]


def _staff(client: TestClient, district: str) -> dict[str, str]:
    return reuse_staff_login(client, f"district:{district}", f"staff-{district}").headers


def _profile_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "home": {"lon": YANTA_HOME[0], "lat": YANTA_HOME[1]},
        "group": "general",
        "name": "李四",
        "education": 4,
        "experience_years": 3,
        "keywords": ["会计"],
        "max_commute_min": 60,
        "modes": ["walk", "transit"],
    }
    body.update(changes)
    return body


def _stored_text(client: TestClient, seeker_id: str) -> str:
    row = client.app.state.store.seeker_record(seeker_id)  # type: ignore[attr-defined]
    return repr(row)


def _audit_actions(client: TestClient, after: int) -> list[tuple[str, str]]:
    store = client.app.state.store  # type: ignore[attr-defined]
    return [(r.entry.action, r.entry.result) for r in store.audit_records() if r.seq > after]


def _head(client: TestClient) -> int:
    seq: int = client.app.state.store.audit_head()[0]  # type: ignore[attr-defined]
    return seq


def _a_community(client: TestClient, district: str) -> str:
    regions = client.app.state.regions if hasattr(client.app.state, "regions") else None  # type: ignore[attr-defined]
    if regions is None:
        from api.regions_state import app_regions

        regions = app_regions(client.app.state)  # type: ignore[attr-defined]
    codes = regions.communities.loc[regions.communities["district_code"] == district, "code"]
    return str(sorted(codes.astype(str))[0])


# Link by mobile


def test_login_links_simulated_profile(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    seeker = plaintext_seekers.iloc[7]
    account_id, headers = _seeker_login(client, str(seeker["mobile"]))
    before = _head(client)

    response = client.get("/v1/me/profile", headers=headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["seeker_id"] == seeker["seeker_id"]
    assert body["mobile"] == f"{seeker['mobile'][:3]}****{seeker['mobile'][-4:]}"
    assert body["home"]["lon"] == pytest.approx(seeker["home_lon"])
    assert body["home"]["lat"] == pytest.approx(seeker["home_lat"])
    assert seeker["name"] not in response.text
    assert _audit_actions(client, before) == [("seeker.self_read", "ok")]
    accounts = client.app.state.seeker_accounts.accounts  # type: ignore[attr-defined]
    assert accounts.linked_account(str(seeker["seeker_id"])) == account_id


def test_me_recommendations_match_staff_route(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    seeker = plaintext_seekers.loc[plaintext_seekers["home_district_code"] == YANTA].iloc[0]
    _, headers = _seeker_login(client, str(seeker["mobile"]))

    own = client.get("/v1/me/recommendations", headers=headers, params={"limit": 10})
    staff = client.get(
        f"/v1/seekers/{seeker['seeker_id']}/recommendations",
        headers=_officer(client),
        params={"limit": 10},
    )

    assert own.status_code == 200, own.text
    assert staff.status_code == 200, staff.text
    assert own.json()["items"] == staff.json()["items"]
    assert own.json()["seeker"]["seeker_id"] == seeker["seeker_id"]


def test_unlinked_account_has_no_profile(client: TestClient) -> None:
    _, headers = _seeker_login(client)

    profile = client.get("/v1/me/profile", headers=headers)
    ranked = client.get("/v1/me/recommendations", headers=headers)

    assert profile.status_code == 404
    assert "PUT /v1/me/profile" in profile.text
    assert ranked.status_code == 404


# Self-registration


def test_register_with_point(client: TestClient) -> None:
    account_id, headers = _seeker_login(client)
    before = _head(client)

    response = client.put("/v1/me/profile", headers=headers, json=_profile_body())

    assert response.status_code == 200, response.text
    body = response.json()
    seeker_id = body["seeker_id"]
    assert seeker_id.startswith("reg-")
    assert body["simulated"] is False
    assert body["home"]["exact"] is True
    assert body["home"]["lon"] == pytest.approx(YANTA_HOME[0])
    assert body["name"] == "李*"
    row = client.app.state.store.seeker_record(seeker_id)  # type: ignore[attr-defined]
    assert row["home_district_code"] == YANTA
    assert str(row["home_street_code"]).startswith(YANTA)
    assert row["home_lon"] != pytest.approx(YANTA_HOME[0])  # the street office, not the home
    assert "李四" not in _stored_text(client, seeker_id)
    accounts = client.app.state.seeker_accounts.accounts  # type: ignore[attr-defined]
    assert accounts.linked_account(seeker_id) == account_id
    store = client.app.state.store  # type: ignore[attr-defined]
    records = [record.entry for record in store.audit_records() if record.seq > before]
    assert [(entry.action, entry.object_id) for entry in records] == [
        ("seeker.self_update", f"seeker:{seeker_id}")
    ]
    assert records[0].actor == account_id
    ranked = client.get("/v1/me/recommendations", headers=headers)
    assert ranked.status_code == 200, ranked.text
    assert ranked.json()["simulated"] is False


def test_register_with_community_only(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    community = _a_community(client, BEILIN)

    response = client.put(
        "/v1/me/profile", headers=headers, json=_profile_body(home={"community_code": community})
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["home"]["exact"] is False
    assert body["home"]["community_code"] == community
    assert body["home"]["label"].startswith("碑林区")
    row = client.app.state.store.seeker_record(body["seeker_id"])  # type: ignore[attr-defined]
    assert body["home"]["lon"] == pytest.approx(row["home_lon"])


def test_registered_seeker_in_staff_list(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]

    yanta = client.get("/v1/seekers", headers=_staff(client, YANTA), params={"limit": 100})
    beilin = client.get("/v1/seekers", headers=_staff(client, BEILIN), params={"limit": 100})

    assert seeker_id in {item["seeker_id"] for item in yanta.json()["items"]}
    assert seeker_id not in {item["seeker_id"] for item in beilin.json()["items"]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"home": {"lon": 116.3912, "lat": 39.9073}}, "home"),
        ({"home": {"lon": 108.9460}}, "home"),
        ({"home": {"community_code": "610113999999"}}, "community_code"),
        ({"home": {}}, "home"),
        ({"group": "assistance"}, "group"),
        ({"name": "张" * 41}, "name"),
        ({"max_commute_min": 500}, "max_commute_min"),
        ({"modes": ["teleport"]}, "modes"),
        ({"occupation_wish_code": "4-01"}, "occupation_wish_code"),
    ],
)
def test_registration_errors_never_echo(
    client: TestClient, changes: dict[str, Any], field: str
) -> None:
    _, headers = _seeker_login(client)

    response = client.put("/v1/me/profile", headers=headers, json=_profile_body(**changes))

    assert response.status_code == 422, response.text
    assert field in response.text
    for value in ("116.39", "39.90", "108.946", "610113999999", "张张张", "teleport"):
        assert value not in response.text
    assert client.get("/v1/me/profile", headers=headers).status_code == 404


def test_community_of_other_district_rejected(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    home = {
        "lon": YANTA_HOME[0],
        "lat": YANTA_HOME[1],
        "community_code": _a_community(client, BEILIN),
    }

    response = client.put("/v1/me/profile", headers=headers, json=_profile_body(home=home))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "home", "community_code"]


# Stored changes and the digest trigger


def test_change_writes_digest_with_profile(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]
    client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})
    pushes = client.app.state.push_store  # type: ignore[attr-defined]

    response = client.put("/v1/me/profile", headers=headers, json=_profile_body(max_commute_min=90))

    assert response.status_code == 200, response.text
    assert response.json()["max_commute_min"] == 90
    rows = pushes.outbox_rows(seeker_id)
    push_id = response.json()["digest_push_id"]
    if push_id is None:
        assert rows == []
    else:
        assert [row["push_id"] for row in rows] == [push_id]
        assert rows[0]["kind"] == "digest"
        assert rows[0]["trigger"] == f"seeker.preferences:{seeker_id}"


def test_failed_audit_stores_nothing(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]
    client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})
    before = client.app.state.store.seeker_record(seeker_id)  # type: ignore[attr-defined]

    def fail(*_: Any) -> None:
        raise AuditWriteError("operation log unavailable")

    monkeypatch.setattr(seeker_accounts, "_append_audit", fail)
    response = client.put(
        "/v1/me/profile", headers=headers, json=_profile_body(max_commute_min=100)
    )

    assert response.status_code == 503
    assert client.app.state.store.seeker_record(seeker_id) == before  # type: ignore[attr-defined]
    assert client.app.state.push_store.outbox_rows(seeker_id) == []  # type: ignore[attr-defined]


def test_preferences_route_stores_change(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    client.put("/v1/me/profile", headers=headers, json=_profile_body())
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 30,
        "modes": ["walk"], "education": 3, "experience_years": 1,
    }  # fmt: skip

    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)

    assert response.status_code == 200, response.text
    profile = client.get("/v1/me/profile", headers=headers).json()
    assert profile["max_commute_min"] == 30
    assert profile["modes"] == ["walk"]
    assert profile["home"]["lon"] == pytest.approx(108.9410)
    assert profile["home"]["label"] == ""  # the old community is dropped with a move


def test_preferences_need_profile(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    body = {"home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 30}

    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)

    assert response.status_code == 404
    assert "PUT /v1/me/profile" in response.text


def test_consent_before_profile_is_kept(client: TestClient) -> None:
    account_id, headers = _seeker_login(client)
    client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})

    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]

    pushes = client.app.state.push_store  # type: ignore[attr-defined]
    assert pushes.consent(account_id) is None
    assert pushes.consent(seeker_id)["consented_at"] is not None
    assert client.get("/v1/seeker/push-consent", headers=headers).json()["consented"] is True


# Push contacts


def test_openid_stored_encrypted(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]
    openid = "oAbC" + secrets.token_hex(10)

    response = client.put("/v1/me/wechat-openid", headers=headers, json={"openid": openid})

    assert response.status_code == 204, response.text
    accounts = client.app.state.seeker_accounts.accounts  # type: ignore[attr-defined]
    envelope = accounts.openid_envelope(seeker_id)
    assert envelope.startswith("pi1.")
    assert openid not in envelope
    directory = seeker_directory(client.app)  # type: ignore[arg-type]
    assert directory is not None
    assert directory.address(seeker_id, "wechat") == openid
    assert client.delete("/v1/me/wechat-openid", headers=headers).status_code == 204
    with pytest.raises(RecipientMissingError, match="no_wechat_openid"):
        directory.address(seeker_id, "wechat")


def test_openid_errors_never_echo(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    client.put("/v1/me/profile", headers=headers, json=_profile_body())

    response = client.put("/v1/me/wechat-openid", headers=headers, json={"openid": "o<b>x</b>12"})

    assert response.status_code == 422
    assert "openid" in response.text
    assert "<b>" not in response.text


def test_sms_directory_decrypts_mobiles(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    mobile = f"139{secrets.randbelow(10**8):08d}"
    account_id, headers = _seeker_login(client, mobile)
    directory = seeker_directory(client.app)  # type: ignore[arg-type]
    assert directory is not None

    assert directory.address(account_id, "sms") == mobile  # no profile yet: the account's
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]
    assert directory.address(seeker_id, "sms") == mobile
    with pytest.raises(RecipientMissingError, match="simulated_seeker"):
        directory.address(str(plaintext_seekers.iloc[0]["seeker_id"]), "sms")


def test_push_without_contact_is_skipped(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]
    client.put(
        "/v1/seeker/push-consent", headers=headers, json={"consent": True, "channel": "wechat"}
    )
    pushes = client.app.state.push_store  # type: ignore[attr-defined]
    messages = {
        lang: render_message("会计", "甲公司", "地铁约20分钟", "http://t/p-1", lang)
        for lang in ("zh", "en")
    }
    candidate = PushCandidate(
        seeker_id, "p-1", 0.9, 20.0, "transit", messages, {"zh": "a", "en": "a"}
    )  # type: ignore[arg-type]
    [push_id] = pushes.write_pushes(PushBatch("test", [candidate], PushRules(), FUTURE_NOON))
    directory = seeker_directory(client.app)  # type: ignore[arg-type]
    # The directory fails before any request, so the endpoint is never contacted.
    channel = WeChatSubscribeChannel("http://127.0.0.1:9", "app", "secret", "tpl", directory)
    deliverer = Deliverer(
        pushes, {"wechat": channel}, PushRules(), PipelineOptions(), clock=lambda: FUTURE_NOON
    )

    outcome = deliverer.deliver(push_id)

    [row] = pushes.outbox_rows(seeker_id)
    assert outcome == "skipped"
    assert row["status"] == "skipped"
    assert row["skip_reason"] == "no_contact:no_wechat_openid"
    assert row["attempts"] == 1
    assert deliverer.deliver(push_id) == "done"


# Erasure


def test_delete_erases_link_and_openid(client: TestClient) -> None:
    account_id, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]
    client.put("/v1/me/wechat-openid", headers=headers, json={"openid": "oXyZ123456"})
    accounts = client.app.state.seeker_accounts.accounts  # type: ignore[attr-defined]

    response = client.delete(f"/v1/seekers/{seeker_id}", headers=_officer(client))

    assert response.status_code == 200, response.text
    assert response.json()["complete"] is True
    names = {item["name"] for item in response.json()["erasers"]}
    assert {"seeker_account", "pushes", "recommender"} <= names
    assert accounts.linked_account(seeker_id) is None
    assert accounts.openid_envelope(seeker_id) is None
    assert client.app.state.store.seeker_record(seeker_id) is None  # type: ignore[attr-defined]
    assert client.get("/v1/me/profile", headers=headers).status_code == 404
    recommender = client.app.state.recommender  # type: ignore[attr-defined]
    assert seeker_id not in recommender.seekers.index
    assert account_id not in recommender.seekers.index


# Staff routes that replaced the public ones


def test_staff_seeker_routes_need_login(client: TestClient) -> None:
    assert client.get("/v1/seekers").status_code == 401
    assert client.get("/v1/seekers/sim-000001/recommendations").status_code == 401


def test_staff_list_is_scoped(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    response = client.get("/v1/seekers", headers=_staff(client, YANTA), params={"limit": 100})

    assert response.status_code == 200, response.text
    listed = {item["seeker_id"] for item in response.json()["items"]}
    yanta = plaintext_seekers.loc[plaintext_seekers["home_district_code"] == YANTA, "seeker_id"]
    assert set(yanta) <= listed
    assert all(seeker_id.startswith("reg-") or seeker_id in set(yanta) for seeker_id in listed)


def test_staff_recommendations_need_unmask(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    yanta = plaintext_seekers.loc[plaintext_seekers["home_district_code"] == YANTA].iloc[1]
    beilin = plaintext_seekers.loc[plaintext_seekers["home_district_code"] == BEILIN].iloc[0]
    before = _head(client)

    station = client.get(
        f"/v1/seekers/{yanta['seeker_id']}/recommendations", headers=_staff(client, YANTA)
    )
    own = client.get(f"/v1/seekers/{yanta['seeker_id']}/recommendations", headers=_officer(client))
    other = client.get(
        f"/v1/seekers/{beilin['seeker_id']}/recommendations", headers=_officer(client)
    )

    assert station.status_code == 403
    assert own.status_code == 200
    assert other.status_code == 404
    actions = _audit_actions(client, before)
    assert ("seeker.recommendations", "ok") in actions
    assert ("seeker.recommendations", "denied") in actions


# Development demo


def test_dev_session_as_simulated_seeker(
    client: TestClient, plaintext_seekers: pd.DataFrame
) -> None:
    listed = client.get("/v1/dev/seekers", params={"limit": 5})
    seeker_id = listed.json()["items"][0]["seeker_id"]

    session = client.post(f"/v1/dev/seekers/{seeker_id}/session")

    assert listed.status_code == 200
    assert session.status_code == 200, session.text
    headers = {"Authorization": f"Bearer {session.json()['token']}"}
    ranked = client.get("/v1/me/recommendations", headers=headers)
    assert ranked.status_code == 200, ranked.text
    assert ranked.json()["seeker"]["seeker_id"] == seeker_id
    for value in plaintext_seekers[["name", "mobile", "id_number"]].head(5).to_numpy().ravel():
        assert str(value) not in listed.text


def test_assistance_target_keeps_group(client: TestClient, plaintext_seekers: pd.DataFrame) -> None:
    assistance = plaintext_seekers.loc[plaintext_seekers["group"] == "assistance", "seeker_id"]
    seeker_id = str(assistance.iloc[0])
    token = client.post(f"/v1/dev/seekers/{seeker_id}/session").json()["token"]
    headers = {"Authorization": f"Bearer {token}"}

    saved = client.put("/v1/me/profile", headers=headers, json=_profile_body())

    assert saved.status_code == 200, saved.text
    assert client.get("/v1/me/profile", headers=headers).json()["group"] == "assistance"


def test_dev_session_refuses_registered(client: TestClient) -> None:
    _, headers = _seeker_login(client)
    seeker_id = client.put("/v1/me/profile", headers=headers, json=_profile_body()).json()[
        "seeker_id"
    ]

    assert client.post(f"/v1/dev/seekers/{seeker_id}/session").status_code == 404
    listed = client.get("/v1/dev/seekers", params={"limit": 100}).json()["items"]
    assert seeker_id not in {item["seeker_id"] for item in listed}


def test_dev_routes_404_in_production(client: TestClient) -> None:
    settings = client.app.state.settings  # type: ignore[attr-defined]
    original = settings.auth.environment
    settings.auth.environment = "production"
    try:
        listed = client.get("/v1/dev/seekers")
        session = client.post("/v1/dev/seekers/sim-000001/session")
    finally:
        settings.auth.environment = original

    assert listed.status_code == 404
    assert session.status_code == 404


def test_me_routes_reject_staff(client: TestClient) -> None:
    response = client.get("/v1/me/profile", headers=_staff(client, YANTA))

    assert response.status_code == 403


def test_registration_during_reload_reaches_new_index(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A profile stored while a reload reads the store is in the index the reload swaps in."""
    app: Any = client.app
    _, headers = _seeker_login(client)
    load = app_module.load_job_index
    saved: list[Any] = []
    saving = threading.Thread(
        target=lambda: saved.append(
            client.put("/v1/me/profile", headers=headers, json=_profile_body())
        )
    )

    def load_then_save(state: Any) -> Any:
        loaded = load(state)  # read the seekers before the profile is stored
        saving.start()
        saving.join(timeout=2)  # finishes here unless it waits for the reload
        return loaded

    monkeypatch.setattr(app_module, "load_job_index", load_then_save)
    with app.state.index_sync.lock:  # as IndexSync calls it
        app_module.reload_job_index(app)
    saving.join(timeout=30)

    assert saved and saved[0].status_code == 200, saved
    assert saved[0].json()["seeker_id"] in app.state.recommender.seekers.index
