"""Staff tokens: signature, algorithm, issuer, audience and expiry checks, and the secret rules."""

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.settings import AuthSettings, Settings
from api.staff_auth import (
    AUDIENCE,
    ISSUER,
    StaffDep,
    StaffTokenError,
    StaffTokenExpiredError,
    decode_staff_token,
    issue_staff_token,
    staff_token_secret,
)

SECRET = b"k3Jx9-staff-token-test-key-0123456789abcdef"


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "staff-yanta-01",
        "iat": now,
        "exp": now + timedelta(hours=1),
        "org": "雁塔区就业服务中心",
        "districts": ["610113"],
        "zones": ["高新"],
        "roles": ["station_staff"],
    }
    claims.update(overrides)
    return claims


def test_valid_token_gives_scope() -> None:
    token = issue_staff_token(
        SECRET, staff_id="staff-yanta-01", org="雁塔区就业服务中心", districts=["610113"]
    )

    staff = decode_staff_token(token, SECRET)

    assert staff.staff_id == "staff-yanta-01"
    assert staff.org == "雁塔区就业服务中心"
    assert staff.scope.district_codes == frozenset({"610113"})
    assert staff.scope.zone_keys == frozenset()


def test_expired_token_rejected() -> None:
    issued = datetime.now(UTC) - timedelta(hours=9)
    token = issue_staff_token(SECRET, staff_id="s", org="o", districts=["610113"], now=issued)

    with pytest.raises(StaffTokenExpiredError):
        decode_staff_token(token, SECRET)


@pytest.mark.parametrize(
    "claims",
    [
        _claims(aud="doorstep-seeker"),
        _claims(iss="someone-else"),
        _claims(roles=["seeker"]),
        _claims(districts=["6101"]),
        {key: value for key, value in _claims().items() if key != "exp"},
    ],
    ids=["audience", "issuer", "role", "district", "no-exp"],
)
def test_wrong_claims_rejected(claims: dict[str, Any]) -> None:
    token = jwt.encode(claims, SECRET, algorithm="HS256")

    with pytest.raises(StaffTokenError):
        decode_staff_token(token, SECRET)


def test_alg_none_rejected() -> None:
    token = jwt.encode(_claims(), None, algorithm="none")

    with pytest.raises(StaffTokenError, match="invalid"):
        decode_staff_token(token, SECRET)


def test_hs512_rejected() -> None:
    # A 64-byte key, so PyJWT signs without a key-length warning; decoding uses the same key.
    key = SECRET + SECRET[:21]
    token = jwt.encode(_claims(), key, algorithm="HS512")

    with pytest.raises(StaffTokenError, match="InvalidAlgorithmError"):
        decode_staff_token(token, key)


def test_tampered_signature_rejected() -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")
    header, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    with pytest.raises(StaffTokenError, match="InvalidSignatureError"):
        decode_staff_token(f"{header}.{payload}.{flipped}", SECRET)
    with pytest.raises(StaffTokenError):
        decode_staff_token(token, b"another-key-of-the-same-length-0123456789")


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "missing"),
        ("changeme", "placeholder"),
        ("changeme" * 4, "placeholder"),
        ("Zx8#qLm2Pw" * 2, "20 bytes"),
    ],
)
def test_production_rejects_weak_secret(secret: str | None, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AuthSettings(
            environment="production",
            staff_token_secret=None if secret is None else SecretStr(secret),
        )


def test_production_secret_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOORSTEP_ENVIRONMENT", "production")
    monkeypatch.setenv("DOORSTEP_STAFF_TOKEN_SECRET", "secret")

    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


def test_development_key_file_created_once(tmp_path: Path) -> None:
    path = tmp_path / "var" / "staff_token_secret"
    auth = AuthSettings(staff_token_secret_path=path)

    first = staff_token_secret(auth)
    second = staff_token_secret(auth)

    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _app(tmp_path: Path) -> FastAPI:
    app = FastAPI()
    app.state.settings = Settings(auth=AuthSettings(staff_token_secret=SecretStr(SECRET.decode())))

    @app.get("/whoami")
    def whoami(staff: StaffDep) -> dict[str, str]:
        return {"staff_id": staff.staff_id}

    return app


def test_expired_token_is_401(tmp_path: Path) -> None:
    issued = datetime.now(UTC) - timedelta(hours=9)
    token = issue_staff_token(SECRET, staff_id="s", org="o", districts=["610113"], now=issued)
    client = TestClient(_app(tmp_path))

    response = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"][0]["msg_zh"] == "工作人员令牌已过期，请重新获取"
    assert token not in response.text


def test_valid_token_reaches_route(tmp_path: Path) -> None:
    token = issue_staff_token(SECRET, staff_id="staff-1", org="o", districts=["610113"])
    client = TestClient(_app(tmp_path))

    response = client.get("/whoami", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200
    assert response.json() == {"staff_id": "staff-1"}


def _cli_env(data_dir: Path) -> dict[str, str]:
    return {"DOORSTEP_DATA_DIR": str(data_dir), "DOORSTEP_STAFF_TOKEN_SECRET": SECRET.decode()}


def test_cli_prints_decodable_token(data_dir: Path) -> None:
    args = ["staff-token", "--staff-id", "staff-yanta-01", "--org", "雁塔区就业服务中心"]
    args += ["--district", "610113", "--zone", "高新", "--hours", "2"]

    result = CliRunner().invoke(cli_app, args, env=_cli_env(data_dir))

    assert result.exit_code == 0, result.output
    staff = decode_staff_token(result.stdout.strip().splitlines()[-1], SECRET)
    assert staff.staff_id == "staff-yanta-01"
    assert staff.scope.district_codes == frozenset({"610113"})
    assert staff.scope.zone_keys == frozenset({"高新"})


@pytest.mark.parametrize(("option", "value"), [("--district", "999999"), ("--zone", "火星")])
def test_cli_rejects_unknown_place(data_dir: Path, option: str, value: str) -> None:
    args = ["staff-token", "--staff-id", "s", "--org", "o", "--district", "610113", option, value]

    result = CliRunner().invoke(cli_app, args, env=_cli_env(data_dir))

    assert result.exit_code == 2
    assert option in result.output
    assert repr(value) in result.output
