"""The doorstep command on the store built from the real data folder."""

import base64
import csv
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.security.blind_index import BlindIndex
from api.security.encryption import FieldCipher, FieldContext, SoftwareKeyProvider
from api.security.pi_rotation import rotate_accounts
from api.security.seeker_pi import SeekerPiCodec
from matching.seeker_simulation import generate_seekers
from store.assistance_store import AssistanceStore
from store.identity import Account, AccountEnvelopeUpdate, Role
from store.seeker_accounts import SeekerAccounts
from store.sqlite import SCHEMA_VERSION, SqliteStore, write_store
from store.sqlite_identity import SqliteIdentity
from tests.store.test_contract import _inputs
from tests.store.test_identity_store import NOW, TREE

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


def test_invalid_push_setting_names_prefix() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from api.cli import main; main()", "versions"],
        capture_output=True,
        text=True,
        env={"DOORSTEP_PUSH_DAILY_CAP": "0", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert "DOORSTEP_PUSH_DAILY_CAP is invalid" in result.stdout


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
        "DOORSTEP_IDENTITY_PATH": str(tmp_path / "no-identity.sqlite"),
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
    assert "accounts: none" in first.output
    assert not (tmp_path / "no-identity.sqlite").exists()


def test_pi_rotate_categories_and_openids(tmp_path: Path, data_dir: Path) -> None:
    old = {"k1": b"1" * 16}
    new = {**old, "k2": b"2" * 16}
    index_key = "i" * 32
    inputs = _inputs()
    codec = SeekerPiCodec(SoftwareKeyProvider(old, "k1", index_key.encode()))
    inputs["seekers"] = codec.protect(generate_seekers(data_dir, 6, seed=3))
    path = tmp_path / "store.sqlite"
    write_store(path, **inputs)
    seeker_ids = [str(value) for value in inputs["seekers"]["seeker_id"]]
    AssistanceStore.sqlite(path)  # creates the assistance tables
    with sqlite3.connect(path) as connection:
        for number, seeker_id in enumerate(seeker_ids[:3]):
            category = codec.cipher.encrypt(
                f"category-{number}", FieldContext("assistance_targets", "category_enc", seeker_id)
            )
            connection.execute(
                "INSERT INTO assistance_targets (seeker_id, officer_id, org_id, district_code,"
                " category_enc, assigned_at, assigned_by, updated_at) VALUES (?, 'o', 'city',"
                " '610113', ?, '2026-12-05T00:00:00+00:00', 'o', '2026-12-05T00:00:00+00:00')",
                (seeker_id, category),
            )
    accounts = SeekerAccounts.sqlite(path)
    for number, seeker_id in enumerate(seeker_ids[3:5]):
        context = FieldContext("seeker_contacts", "wechat_openid_enc", seeker_id)
        envelope = codec.cipher.encrypt(f"oOpenid{number}", context)
        accounts.bind_openid(seeker_id, envelope, datetime.now(UTC))
    keys = ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in new.items())
    env = {
        "DOORSTEP_STORE_PATH": str(path),
        "DOORSTEP_IDENTITY_PATH": str(tmp_path / "no-identity.sqlite"),
        "DOORSTEP_PI_KEYS": keys,
        "DOORSTEP_PI_ACTIVE_KEY": "k2",
        "DOORSTEP_PI_INDEX_KEY": index_key,
        "DOORSTEP_AUDIT_KEY": "a" * 32,
    }

    first = runner.invoke(app, ["pi", "rotate", "--batch-size", "2"], env=env)
    second = runner.invoke(app, ["pi", "rotate"], env=env)

    assert first.exit_code == 0, first.output
    assert "rotated 3 of 3 assistance category rows to key 'k2' in 2 batches" in first.output
    assert "rotated 2 of 2 WeChat openid rows to key 'k2' in 1 batches" in first.output
    assert "rotated 0 of 0 assistance category rows" in second.output
    assert AssistanceStore.sqlite(path).count_categories_to_rotate("k2") == 0
    assert accounts.count_openids_to_rotate("k2") == 0
    rotated = SeekerPiCodec(SoftwareKeyProvider(new, "k2", index_key.encode())).cipher
    with sqlite3.connect(path) as connection:
        stored = dict(connection.execute("SELECT seeker_id, category_enc FROM assistance_targets"))
    assert stored[seeker_ids[0]].startswith("pi1.k2.")
    context = FieldContext("assistance_targets", "category_enc", seeker_ids[0])
    assert rotated.decrypt(stored[seeker_ids[0]], context) == "category-0"
    openid = accounts.openid_envelope(seeker_ids[4])
    assert openid is not None
    openid_context = FieldContext("seeker_contacts", "wechat_openid_enc", seeker_ids[4])
    assert rotated.decrypt(openid, openid_context) == "oOpenid1"


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
        "DOORSTEP_IDENTITY_PATH": str(tmp_path / "no-identity.sqlite"),
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


KEY_1, KEY_2 = b"1" * 16, b"2" * 16
INDEX_KEY = b"i" * 32


def _key_env(folder: Path, keys: dict[str, bytes], active: str) -> dict[str, str]:
    listed = ",".join(f"{key_id}:{base64.b64encode(key).decode()}" for key_id, key in keys.items())
    return {
        "DOORSTEP_STORE_PATH": str(folder / "store.sqlite"),
        "DOORSTEP_IDENTITY_PATH": str(folder / "identity.sqlite"),
        "DOORSTEP_PI_KEYS": listed,
        "DOORSTEP_PI_ACTIVE_KEY": active,
        "DOORSTEP_PI_INDEX_KEY": INDEX_KEY.decode(),
        "DOORSTEP_AUDIT_KEY": "a" * 32,
    }


def _accounts_under_k1(folder: Path, data_dir: Path, n_accounts: int) -> SqliteIdentity:
    """Write a store of 10 seekers and ``n_accounts`` accounts, all under key k1."""
    inputs = _inputs()
    provider = SoftwareKeyProvider({"k1": KEY_1}, "k1", INDEX_KEY)
    inputs["seekers"] = SeekerPiCodec(provider).protect(generate_seekers(data_dir, 10, seed=3))
    write_store(folder / "store.sqlite", **inputs)
    identity = SqliteIdentity(folder / "identity.sqlite")
    identity.seed_organisations(TREE)
    cipher = FieldCipher(provider)
    for number in range(n_accounts):
        account_id = f"acc-{number:03d}"
        totp = number % 2 == 0  # every other account has a TOTP secret, the rest SMS

        def sealed(value: str, column: str, account_id: str = account_id) -> str:
            return cipher.encrypt(value, FieldContext("accounts", column, account_id))

        identity.create_account(
            Account(
                account_id=account_id, kind="staff", login=f"user-{number}",
                org_id="district:610113", name_enc=sealed(f"测试{number}", "name_enc"),
                mobile_enc=sealed(f"139000{number:05d}", "mobile_enc"),
                mobile_index=f"idx-{number}", password_hash="$argon2id$placeholder",
                password_changed_at=NOW, second_factor="totp" if totp else "sms",
                totp_secret_enc=sealed(f"SECRET{number}", "totp_secret_enc") if totp else None,
                locked_until=None, created_at=NOW, roles=frozenset({Role.STATION_STAFF}),
            )
        )  # fmt: skip
    return identity


def _plain_accounts(identity: SqliteIdentity, keys: dict[str, bytes]) -> list[tuple[str, ...]]:
    cipher = FieldCipher(SoftwareKeyProvider(keys, next(iter(keys)), INDEX_KEY))
    rows = []
    for account_id, envelopes in identity.account_envelopes_to_rotate("none", 1_000):
        values = [account_id]
        for column, envelope in zip(
            ("name_enc", "mobile_enc", "totp_secret_enc"), envelopes, strict=True
        ):
            context = FieldContext("accounts", column, account_id)
            values.append("" if envelope is None else cipher.decrypt(envelope, context))
        rows.append(tuple(values))
    return rows


def test_pi_rotate_accounts(tmp_path: Path, data_dir: Path) -> None:
    identity = _accounts_under_k1(tmp_path, data_dir, 7)
    before = _plain_accounts(identity, {"k1": KEY_1})
    env = _key_env(tmp_path, {"k1": KEY_1, "k2": KEY_2}, "k2")

    first = runner.invoke(app, ["pi", "rotate", "--batch-size", "3"], env=env)
    second = runner.invoke(app, ["pi", "rotate"], env=env)

    assert first.exit_code == 0, first.output
    assert "rotated 10 of 10 seeker rows" in first.output
    assert "rotated 7 of 7 account rows to key 'k2' in 3 batches; 0 rows left" in first.output
    assert "rotated 0 of 0 account rows" in second.output
    assert identity.count_account_envelopes_to_rotate("k2") == 0
    assert _plain_accounts(identity, {"k2": KEY_2}) == before
    totp_column = [row[3] for row in before]
    assert totp_column.count("") == 3  # SMS accounts keep a NULL secret


def test_pi_reindex_accounts(tmp_path: Path, data_dir: Path) -> None:
    identity = _accounts_under_k1(tmp_path, data_dir, 4)
    env = {**_key_env(tmp_path, {"k1": KEY_1}, "k1"), "DOORSTEP_PI_INDEX_KEY": "n" * 32}

    result = runner.invoke(app, ["pi", "reindex", "--batch-size", "3"], env=env)

    assert result.exit_code == 0, result.output
    assert "recomputed the mobile blind indexes of 4 accounts" in result.output
    new_index = BlindIndex(b"n" * 32)
    found = identity.account_by_mobile("staff", new_index.digest("mobile", "13900000002"))
    assert found is not None
    assert found.account_id == "acc-002"


def test_pi_rotate_resumes_accounts(tmp_path: Path, data_dir: Path) -> None:
    identity = _accounts_under_k1(tmp_path, data_dir, 5)
    before = _plain_accounts(identity, {"k1": KEY_1})
    cipher = FieldCipher(SoftwareKeyProvider({"k1": KEY_1, "k2": KEY_2}, "k2", INDEX_KEY))

    class CrashAfterOneBatch:
        """The real identity store, whose second batch write dies like a killed process."""

        def __init__(self) -> None:
            self.writes = 0

        def __getattr__(self, name: str) -> object:
            return getattr(identity, name)

        def replace_account_envelopes(self, updates: list[AccountEnvelopeUpdate]) -> int:
            self.writes += 1
            if self.writes == 2:
                raise KeyboardInterrupt("simulated crash")
            return identity.replace_account_envelopes(updates)

    with pytest.raises(KeyboardInterrupt):
        rotate_accounts(CrashAfterOneBatch(), cipher, batch_size=2)  # type: ignore[arg-type]
    assert identity.count_account_envelopes_to_rotate("k2") == 3

    env = _key_env(tmp_path, {"k1": KEY_1, "k2": KEY_2}, "k2")
    result = runner.invoke(app, ["pi", "rotate", "--batch-size", "2"], env=env)

    assert result.exit_code == 0, result.output
    assert "rotated 3 of 3 account rows" in result.output
    assert _plain_accounts(identity, {"k2": KEY_2}) == before


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"k1": b"9" * 16, "k2": KEY_2}, "failed authentication under key 'k1'"),
        ({"k2": KEY_2}, "SM4 key 'k1' is not configured"),
        ({"k1": b"short", "k2": KEY_2}, "SM4 key 'k1' has 5 bytes; expected 16"),
    ],
)
def test_pi_rotate_bad_key_one_line(
    tmp_path: Path, data_dir: Path, keys: dict[str, bytes], message: str
) -> None:
    _accounts_under_k1(tmp_path, data_dir, 2)
    env = _key_env(tmp_path, keys, "k2")

    result = runner.invoke(app, ["pi", "rotate"], env=env)

    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    (error_line,) = [line for line in result.output.splitlines() if "error:" in line]
    assert "check DOORSTEP_PI_KEYS" in error_line


def test_pi_rotate_malformed_key_list(tmp_path: Path, data_dir: Path) -> None:
    _accounts_under_k1(tmp_path, data_dir, 1)
    env = _key_env(tmp_path, {"k1": KEY_1}, "k1") | {"DOORSTEP_PI_KEYS": "k1:not*base64"}

    result = runner.invoke(app, ["pi", "rotate"], env=env)

    assert result.exit_code == 2, result.output
    assert "DOORSTEP_PI_KEYS entry 1 ('k1') is not valid base64" in result.output
    assert "Traceback" not in result.output
