"""Push routes: seeker consent and inbox, staff posting activation, the dead-letter list."""

import re
import secrets
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from api.security.sms import OutboxSmsGateway
from matching.push_fanout import PushCandidate
from matching.push_rules import PushRules, render_message
from store.identity import CITY_ORG_ID, Role
from store.push_outbox import PushBatch
from store.push_store import PushStore
from tests.api.staff_login import log_in_staff

# A daytime instant far ahead, so the app's own embedded worker never picks these pushes.
FUTURE_NOON = datetime(2031, 3, 3, 4, 0, tzinfo=UTC)


def _seeker_headers(client: TestClient) -> tuple[str, dict[str, str]]:
    """Log a new seeker in by SMS code; return the account id and the request headers."""
    identity = client.app.state.identity  # type: ignore[attr-defined]
    mobile = f"138{secrets.randbelow(10**8):08d}"
    identity.request_seeker_code(mobile)
    gateway = identity.gateway
    assert isinstance(gateway, OutboxSmsGateway)
    match = re.search(r"验证码 (\d{6})", gateway.messages()[-1]["text"])
    assert match is not None
    issued = identity.finish_seeker_login(mobile, match.group(1))
    principal = identity.authenticate(issued.token, "seeker", None)
    return principal.account.account_id, {"Authorization": f"Bearer {issued.token}"}


def _pushes(client: TestClient) -> PushStore:
    store: PushStore = client.app.state.push_store  # type: ignore[attr-defined]
    return store


def _deliver_one(client: TestClient, seeker_id: str, posting_id: str) -> str:
    messages = {
        lang: render_message("会计", "甲公司", "地铁约20分钟", f"http://t/{posting_id}", lang)
        for lang in ("zh", "en")
    }
    candidate = PushCandidate(
        seeker_id, posting_id, 0.9, 20.0, "transit", messages, {"zh": "a", "en": "a"}
    )  # type: ignore[arg-type]
    store = _pushes(client)
    rules = PushRules()
    [push_id] = store.write_pushes(PushBatch("test", [candidate], rules, FUTURE_NOON))
    claim = store.claim(push_id, FUTURE_NOON, rules, timedelta(seconds=30))
    assert claim.push is not None
    store.mark_delivered(claim.push, FUTURE_NOON)
    return push_id


def test_consent_round_trip(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    assert client.get("/v1/seeker/push-consent", headers=headers).json()["consented"] is False
    given = client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})
    assert given.status_code == 200
    assert given.json()["consented"] is True
    assert given.json()["consented_at"] is not None
    revoked = client.put("/v1/seeker/push-consent", headers=headers, json={"consent": False})
    assert revoked.json()["consented"] is False
    assert revoked.json()["opted_out_at"] is not None


def test_consent_rejects_unknown_channel(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    response = client.put(
        "/v1/seeker/push-consent", headers=headers, json={"consent": True, "channel": "fax"}
    )
    assert response.status_code == 422
    assert "channel" in response.text


def test_consent_needs_seeker_session(client: TestClient) -> None:
    assert client.get("/v1/seeker/push-consent").status_code == 401
    staff = log_in_staff(client, "district:610103")
    assert client.get("/v1/seeker/push-consent", headers=staff.headers).status_code == 403


def test_inbox_read_state(client: TestClient) -> None:
    seeker_id, headers = _seeker_headers(client)
    client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})
    push_id = _deliver_one(client, seeker_id, f"p-{secrets.token_hex(3)}")
    unread = client.get("/v1/seeker/inbox?unread_only=true", headers=headers).json()
    assert [message["push_id"] for message in unread] == [push_id]
    assert unread[0]["title"] == "家门口新岗位"
    read = client.post(f"/v1/seeker/inbox/{push_id}/read", headers=headers)
    assert read.status_code == 204
    assert client.get("/v1/seeker/inbox?unread_only=true", headers=headers).json() == []
    assert len(client.get("/v1/seeker/inbox", headers=headers).json()) == 1


def test_inbox_of_other_seeker_hidden(client: TestClient) -> None:
    owner_id, owner_headers = _seeker_headers(client)
    client.put("/v1/seeker/push-consent", headers=owner_headers, json={"consent": True})
    push_id = _deliver_one(client, owner_id, f"p-{secrets.token_hex(3)}")
    _, other_headers = _seeker_headers(client)
    assert client.get("/v1/seeker/inbox", headers=other_headers).json() == []
    response = client.post(f"/v1/seeker/inbox/{push_id}/read", headers=other_headers)
    assert response.status_code == 404


def test_dead_letters_need_push_admin(client: TestClient) -> None:
    _, seeker = _seeker_headers(client)
    staff = log_in_staff(client, "district:610103")
    admin = log_in_staff(client, CITY_ORG_ID, role=Role.SYSTEM_ADMIN)
    assert client.get("/v1/admin/push/dead-letters", headers=seeker).status_code == 403
    assert client.get("/v1/admin/push/dead-letters", headers=staff.headers).status_code == 403
    response = client.get("/v1/admin/push/dead-letters", headers=admin.headers)
    assert response.status_code == 200
    assert isinstance(response.json(), list)


@pytest.fixture
def posting_id(client: TestClient) -> str:
    """A posting of the test store whose anchor is in 碑林区 (610103)."""
    postings = client.app.state.recommender.postings  # type: ignore[attr-defined]
    return str(postings["posting_id"].iloc[0])


def test_posting_activation_route(client: TestClient, posting_id: str) -> None:
    staff = log_in_staff(client, "district:610103")
    url = f"/v1/staff/postings/{posting_id}"
    off = client.patch(url, headers=staff.headers, json={"active": False})
    assert off.status_code == 200, off.text
    on = client.patch(url, headers=staff.headers, json={"active": True})
    assert on.status_code == 200
    body = on.json()
    assert body["changed"] is True
    rows = [
        r for r in _pushes(client).outbox_rows() if r["trigger"] == f"posting.active:{posting_id}"
    ]
    assert body["pushes_written"] == len(rows)
    again = client.patch(url, headers=staff.headers, json={"active": True})
    assert again.json() == {**body, "changed": False, "pushes_written": 0}


def test_deactivated_posting_leaves_results(client: TestClient) -> None:
    staff = log_in_staff(client, "district:610103")
    located = client.app.state.recommender.index.located  # type: ignore[attr-defined]
    in_scope = located["district_code"].astype(str) == "610103"
    at_point = located["precision"].isin(["exact", "poi", "building"])
    point = located[in_scope & at_point].iloc[0]
    posting_id = str(point["posting_id"])
    url = f"/v1/staff/postings/{posting_id}"
    params = {"lon": float(point["lon"]), "lat": float(point["lat"]), "radius_m": 300}
    params |= {"page_size": 100}

    def nearby() -> list[str]:
        response = client.get("/v1/jobs/nearby", params=params)
        assert response.status_code == 200, response.text
        return [item["posting_id"] for item in response.json()["items"]]

    assert posting_id in nearby()  # also fills the response cache
    build_id = client.app.state.build_id  # type: ignore[attr-defined]
    pending = _candidate_push(client, posting_id)

    off = client.patch(url, headers=staff.headers, json={"active": False})
    assert off.status_code == 200, off.text
    assert client.app.state.build_id != build_id  # type: ignore[attr-defined]
    assert posting_id not in nearby()
    recommender = client.app.state.recommender  # type: ignore[attr-defined]
    assert posting_id not in set(recommender.postings["posting_id"])
    row = next(r for r in _pushes(client).outbox_rows() if r["push_id"] == pending)
    assert (row["status"], row["skip_reason"]) == ("skipped", "posting_inactive")

    on = client.patch(url, headers=staff.headers, json={"active": True})
    assert on.status_code == 200, on.text
    assert on.json()["ranked_by"] == "baseline"
    assert posting_id in nearby()


def _candidate_push(client: TestClient, posting_id: str) -> str:
    """Write one pending push of the posting for a new consenting seeker; return its id."""
    seeker_id, headers = _seeker_headers(client)
    client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})
    messages = {
        lang: render_message("会计", "甲公司", "地铁约20分钟", f"http://t/{posting_id}", lang)
        for lang in ("zh", "en")
    }
    candidate = PushCandidate(
        seeker_id, posting_id, 0.9, 20.0, "transit", messages, {"zh": "a", "en": "a"}
    )  # type: ignore[arg-type]
    batch = PushBatch("test", [candidate], PushRules(), FUTURE_NOON)
    [push_id] = _pushes(client).write_pushes(batch)
    return push_id


def test_health_reports_push_ranker(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["push_ranker"]["kind"] == "baseline"
    assert body["push_ranker"]["model_id"] is None
    assert "no ranker model loaded" in body["push_ranker"]["reason"]


def test_posting_activation_out_of_scope(client: TestClient, posting_id: str) -> None:
    staff = log_in_staff(client, "district:610113")
    response = client.patch(
        f"/v1/staff/postings/{posting_id}", headers=staff.headers, json={"active": False}
    )
    assert response.status_code == 404


def test_unknown_posting_is_404(client: TestClient) -> None:
    staff = log_in_staff(client, "district:610103")
    response = client.patch("/v1/staff/postings/nope", headers=staff.headers, json={"active": True})
    assert response.status_code == 404


def _register(client: TestClient, headers: dict[str, str]) -> str:
    """Create the seeker's own profile with a home near the Bell Tower; return its seeker id."""
    profile = {"home": {"lon": 108.9410, "lat": 34.2590}, "max_commute_min": 30}
    response = client.put("/v1/me/profile", headers=headers, json=profile)
    assert response.status_code == 200, response.text
    seeker_id: str = response.json()["seeker_id"]
    return seeker_id


def test_preferences_send_one_digest(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    seeker_id = _register(client, headers)
    client.put("/v1/seeker/push-consent", headers=headers, json={"consent": True})
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 60,
        "modes": ["walk", "transit"], "education": 6, "experience_years": 10,
    }  # fmt: skip
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    rows = _pushes(client).outbox_rows(seeker_id)
    if result["jobs"]:
        assert [row["kind"] for row in rows] == ["digest"]
        assert rows[0]["push_id"] == result["digest_push_id"]
    else:
        assert rows == []
    again = client.patch("/v1/seeker/preferences", headers=headers, json=body).json()
    assert again["digest_push_id"] is None  # the same jobs are never listed twice
    assert len(_pushes(client).outbox_rows(seeker_id)) == len(rows)


def test_preferences_reject_home_without_echo(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    _register(client, headers)
    body = {"home_lon": 116.3912, "home_lat": 39.9073, "max_commute_min": 30}
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 422
    assert "home" in response.text
    assert "116.39" not in response.text
    assert "39.90" not in response.text


@pytest.mark.parametrize("value", ["yes", 1, "on", "true"])
def test_consent_must_be_json_true(client: TestClient, value: object) -> None:
    _, headers = _seeker_headers(client)
    response = client.put("/v1/seeker/push-consent", headers=headers, json={"consent": value})
    assert response.status_code == 422
    assert "consent" in response.text
    assert client.get("/v1/seeker/push-consent", headers=headers).json()["consented"] is False


@pytest.mark.parametrize("code", ["4", "4-01", "4-01-02"])
def test_preferences_reject_partial_occupation(client: TestClient, code: str) -> None:
    _, headers = _seeker_headers(client)
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 60,
        "occupation_wish_code": code,
    }  # fmt: skip
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 422
    assert "occupation_wish_code" in response.text


@pytest.mark.parametrize("code", ["9-99-99-99", "2-02-10-00", "2-06-00-00"])
def test_preferences_reject_unknown_occupation(client: TestClient, code: str) -> None:
    _, headers = _seeker_headers(client)
    _register(client, headers)
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 60,
        "occupation_wish_code": code,
    }  # fmt: skip
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "occupation_wish_code"]
    assert "level-4 occupation" in response.text
    assert code not in response.text
    profile = client.get("/v1/me/profile", headers=headers).json()
    assert profile["occupation_wish_code"] == ""  # the rejected change stored nothing


@pytest.mark.parametrize("code", ["9-99-99-99", "2-02-10-00"])
def test_profile_rejects_unknown_occupation(client: TestClient, code: str) -> None:
    _, headers = _seeker_headers(client)
    profile = {
        "home": {"lon": 108.9410, "lat": 34.2590}, "max_commute_min": 30,
        "occupation_wish_code": code,
    }  # fmt: skip
    response = client.put("/v1/me/profile", headers=headers, json=profile)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "occupation_wish_code"]
    assert code not in response.text


# 2-06-03-00 (会计专业人员) is a level-4 occupation although its last part is 00.
@pytest.mark.parametrize("code", ["2-02-10-03", "2-06-03-00"])
def test_preferences_keep_known_occupation(client: TestClient, code: str) -> None:
    _, headers = _seeker_headers(client)
    _register(client, headers)
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 60,
        "occupation_wish_code": code,
    }  # fmt: skip
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 200, response.text
    profile = client.get("/v1/me/profile", headers=headers).json()
    assert profile["occupation_wish_code"] == code


def test_consent_without_lang_keeps_english(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    english = {"consent": True, "lang": "en"}
    assert (
        client.put("/v1/seeker/push-consent", headers=headers, json=english).json()["lang"] == "en"
    )
    for consent in (False, True):
        response = client.put("/v1/seeker/push-consent", headers=headers, json={"consent": consent})
        assert response.json()["lang"] == "en"


def test_digest_jobs_documented_as_capped(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["DigestOut"]
    assert "capped at 4 x DOORSTEP_PUSH_DIGEST_SIZE" in schema["properties"]["jobs"]["description"]


def test_posting_state_must_be_json_bool(client: TestClient, posting_id: str) -> None:
    staff = log_in_staff(client, "district:610103")
    response = client.patch(
        f"/v1/staff/postings/{posting_id}", headers=staff.headers, json={"active": "yes"}
    )
    assert response.status_code == 422
    assert "active" in response.text


def test_long_push_id_rejected_without_echo(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    response = client.post(f"/v1/seeker/inbox/{'x' * 3000}/read", headers=headers)
    assert response.status_code == 422
    assert "push_id" in response.text
    assert "x" * 100 not in response.text


def test_long_posting_id_rejected_without_echo(client: TestClient) -> None:
    staff = log_in_staff(client, "district:610103")
    response = client.patch(
        f"/v1/staff/postings/{'z' * 3000}", headers=staff.headers, json={"active": True}
    )
    assert response.status_code == 422
    assert "posting_id" in response.text
    assert "z" * 100 not in response.text


def test_preferences_reject_long_keyword(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    _register(client, headers)
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 60,
        "keywords": ["长" * 21],
    }  # fmt: skip
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 422
    assert "keywords" in response.text


def test_salary_wish_range_checked(client: TestClient) -> None:
    _, headers = _seeker_headers(client)
    _register(client, headers)
    body = {
        "home_lon": 108.9410, "home_lat": 34.2590, "max_commute_min": 60,
        "salary_wish_min": 9000, "salary_wish_max": 3000,
    }  # fmt: skip
    response = client.patch("/v1/seeker/preferences", headers=headers, json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "salary_wish_max"]
    assert "9000" not in response.text
    profile = client.get("/v1/me/profile", headers=headers).json()
    assert profile["max_commute_min"] == 30  # the rejected change stored nothing
