"""The doorstep command on the store built from the real data folder."""

import base64
import csv
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from api.security.encryption import SoftwareKeyProvider
from api.security.seeker_pi import SeekerPiCodec
from matching.seeker_simulation import generate_seekers
from store.sqlite import SCHEMA_VERSION, SqliteStore, write_store
from tests.store.test_contract import _inputs

runner = CliRunner()


def _env(store: SqliteStore) -> dict[str, str]:
    return {"DOORSTEP_STORE_PATH": str(store.path)}


def test_recommend_prints_table(full_store: SqliteStore) -> None:
    result = runner.invoke(app, ["recommend", "--seeker", "sim-000001"], env=_env(full_store))
    assert result.exit_code == 0, result.output
    assert "sim-000001" in result.output
    assert "模拟" in result.output
    assert "距您约" in result.output


def test_export_matches_writes_csv(full_store: SqliteStore, tmp_path: Path) -> None:
    out = tmp_path / "matches.csv"
    args = ["export-matches", "--out", str(out), "--seekers", "5", "--per-seeker", "3"]
    result = runner.invoke(app, args, env=_env(full_store))
    assert result.exit_code == 0, result.output

    with out.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 15
    assert {row["simulated"] for row in rows} == {"True"}
    assert {row["rank"] for row in rows} == {"1", "2", "3"}
    assert all(row["reasons"] for row in rows)


def test_versions_lists_geos_and_proj(full_store: SqliteStore) -> None:
    result = runner.invoke(app, ["versions"], env=_env(full_store))
    assert result.exit_code == 0, result.output
    assert "geos:" in result.output
    assert "proj:" in result.output
    assert f"schema {SCHEMA_VERSION}" in result.output


def test_build_skips_existing_store(full_store: SqliteStore) -> None:
    result = runner.invoke(app, ["build"], env=_env(full_store))
    assert result.exit_code == 0, result.output
    assert "exists" in result.output


def test_unknown_seeker_exits_2_without_traceback(full_store: SqliteStore) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "recommend", "--seeker", "x"],
        capture_output=True,
        text=True,
        env={
            "DOORSTEP_STORE_PATH": str(full_store.path),
            # The keys that encrypted the store, from the session fixture.
            "DOORSTEP_PI_KEY_PATH": os.environ["DOORSTEP_PI_KEY_PATH"],
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert result.returncode == 2
    assert "seeker 'x' not found" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_invalid_setting_names_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "versions"],
        capture_output=True,
        text=True,
        env={"DOORSTEP_PORT": "abc", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert "DOORSTEP_PORT is invalid" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_cross_setting_error_one_line() -> None:
    secret = "weak-secret-value-should-not-print"
    env = {
        "DOORSTEP_ENVIRONMENT": "production",
        "DOORSTEP_STAFF_TOKEN_SECRET": secret,
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "versions"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2
    assert "settings are invalid" in output or "is invalid" in output
    assert "Traceback" not in output
    assert "IndexError" not in output
    assert secret[:8] not in output


def test_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    store_path = tmp_path / "s.sqlite"
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "build"],
        capture_output=True,
        text=True,
        env={
            "DOORSTEP_DATA_DIR": str(tmp_path / "none"),
            "DOORSTEP_STORE_PATH": str(store_path),
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert result.returncode == 2
    assert str(tmp_path / "none") in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not store_path.exists()


def test_recommend_rejects_unknown_language(full_store: SqliteStore) -> None:
    args = ["recommend", "--seeker", "sim-000001", "--lang", "fr"]
    result = runner.invoke(app, args, env=_env(full_store))
    assert result.exit_code == 2


def test_route_prints_itinerary(full_store: SqliteStore) -> None:
    # Near 小寨 and 北大街 stations, WGS84.
    args = ["route", "--origin", "108.9421,34.2224", "--destination", "108.9425,34.2735"]
    result = runner.invoke(app, args, env=_env(full_store))
    assert result.exit_code == 0, result.output
    assert "地铁2号线 小寨→北大街（5站）" in result.output
    assert "transit" in result.output


def test_route_in_gcj02_english(full_store: SqliteStore) -> None:
    # The same points in GCJ-02, as a map app shows them.
    args = [
        "route",
        "--origin", "108.9468,34.2208",
        "--destination", "108.9472,34.2719",
        "--coord-sys", "gcj02",
        "--lang", "en",
    ]  # fmt: skip
    result = runner.invoke(app, args, env=_env(full_store))
    assert result.exit_code == 0, result.output
    assert "Metro Line 2 Xiao Zhai→Bei Da Jie (5 stops)" in result.output


def test_route_rejects_malformed_point(full_store: SqliteStore) -> None:
    args = ["route", "--origin", "108.9421", "--destination", "108.9425,34.2735"]
    result = runner.invoke(app, args, env=_env(full_store))
    assert result.exit_code == 2
    assert "LON,LAT" in result.output


def test_route_unknown_mode_exits_2(full_store: SqliteStore) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from api.cli import main; main()",
            "route",
            "--origin",
            "108.9421,34.2224",
            "--destination",
            "108.9425,34.2735",
            "--modes",
            "walk;teleport",
        ],
        capture_output=True,
        text=True,
        env={
            "DOORSTEP_STORE_PATH": str(full_store.path),
            # The keys that encrypted the store, from the session fixture.
            "DOORSTEP_PI_KEY_PATH": os.environ["DOORSTEP_PI_KEY_PATH"],
            "PATH": "/usr/bin:/bin",
        },
        check=False,
    )
    assert result.returncode == 2
    assert "'teleport' is not a travel mode" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_pi_rotate_resumable(tmp_path: Path, data_dir: Path) -> None:
    old = {"k1": b"1" * 16}
    new = {**old, "k2": b"2" * 16}
    index_key, audit_key = "i" * 32, "a" * 32
    inputs = _inputs()
    provider = SoftwareKeyProvider(old, "k1", index_key.encode())
    inputs["seekers"] = SeekerPiCodec(provider).protect(generate_seekers(data_dir, 60, seed=2))
    path = tmp_path / "store.sqlite"
    write_store(path, **inputs)
    keys = ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in new.items())
    env = {
        "DOORSTEP_STORE_PATH": str(path),
        "DOORSTEP_PI_KEYS": keys,
        "DOORSTEP_PI_ACTIVE_KEY": "k2",
        "DOORSTEP_PI_INDEX_KEY": index_key,
        "DOORSTEP_AUDIT_KEY": audit_key,
    }

    first = runner.invoke(app, ["pi", "rotate", "--batch-size", "25"], env=env)
    second = runner.invoke(app, ["pi", "rotate"], env=env)

    assert first.exit_code == 0, first.output
    assert "rotated 60 of 60" in first.output
    assert "in 3 batches; 0 rows left" in first.output
    assert "rotated 0 of 0" in second.output
    assert SqliteStore(path).count_to_rotate("k2") == 0


def test_pi_reindex_new_key(tmp_path: Path, data_dir: Path) -> None:
    keys = {"k1": b"1" * 16}
    inputs = _inputs()
    seekers = generate_seekers(data_dir, 30, seed=5)
    old = SoftwareKeyProvider(keys, "k1", b"i" * 32)
    inputs["seekers"] = SeekerPiCodec(old).protect(seekers)
    path = tmp_path / "store.sqlite"
    write_store(path, **inputs)
    env = {
        "DOORSTEP_STORE_PATH": str(path),
        "DOORSTEP_PI_KEYS": "k1:" + base64.b64encode(keys["k1"]).decode(),
        "DOORSTEP_PI_INDEX_KEY": "n" * 32,
        "DOORSTEP_AUDIT_KEY": "a" * 32,
    }

    result = runner.invoke(app, ["pi", "reindex", "--batch-size", "7"], env=env)

    assert result.exit_code == 0, result.output
    assert "recomputed the blind indexes of 30 seeker rows" in result.output
    new = SeekerPiCodec(SoftwareKeyProvider(keys, "k1", b"n" * 32))
    digest = new.index.id_number(str(seekers["id_number"].iloc[4]))
    assert SqliteStore(path).seeker_id_by_index("id_number_index", digest) == "sim-000005"
