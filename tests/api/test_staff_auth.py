"""The session token key's rules, and the absence of any session-less staff token."""

import stat
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.settings import AuthSettings, Settings
from api.staff_auth import StaffDep, staff_token_secret

SECRET = b"k3Jx9-staff-token-test-key-0123456789abcdef"


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


def test_route_without_session_is_401() -> None:
    app = FastAPI()
    app.state.settings = Settings(auth=AuthSettings(staff_token_secret=SecretStr(SECRET.decode())))

    @app.get("/whoami")
    def whoami(staff: StaffDep) -> dict[str, str]:
        return {"staff_id": staff.staff_id}

    response = TestClient(app).get("/whoami", headers={"Authorization": "Bearer x.y.z"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["detail"][0]["msg_zh"] == "请先登录"


def test_cli_has_no_staff_token_command(data_dir: Path) -> None:
    args = ["staff-token", "--staff-id", "s", "--org", "o", "--district", "610113"]

    result = CliRunner().invoke(cli_app, args, env={"DOORSTEP_DATA_DIR": str(data_dir)})

    assert result.exit_code == 2
    assert "staff-token" in result.output
