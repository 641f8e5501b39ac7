"""Leak scan: seed simulated seekers, use the API, then search every place for plaintext.

:func:`run_leak_scan` builds the store from the data folder with ``n`` simulated
seekers, through the ``doorstep build`` path that encrypts their personal fields.
It writes the store to a throwaway PostgreSQL database and to a SQLite file, and
serves the API on that database with the response cache in Redis under a fresh
namespace. It sends masked reads, unmasked reads, blind-index lookups, lookups
with invalid values built from real ones (422), picker pages, recommendations,
rendered pages and an erasure. It then counts the seekers' plaintext ID numbers, mobiles, names and
hardship labels in:

- ``postgres_dump``: ``pg_dump`` of the throwaway database, without the rows of
  the public-data tables (postings, anchors, anchor history, map layers and the
  organisation tree named after the regions), whose text can contain a common
  name or 残疾人 by chance (the village 徐军寨村 contains the simulated name 徐军);
- ``sqlite_tables``: the same non-public tables of the SQLite file, and
  ``sqlite_bytes``: the whole file and its WAL as bytes, for ID numbers and mobiles;
- ``redis``: every key and string value under the scan's namespace, with the job
  lists of cached recommendations left out for the same reason;
- ``logs``: every log record emitted during the run;
- ``responses``: every collected response body except the unmasked reads, which
  carry plaintext by design, and again without job lists.

The target is 0 everywhere. The scan drops its database, Redis keys and files.
"""

import json
import logging
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess  # nosec B404 # fixed pg_dump argument list
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
import pyotp
import uvicorn
from fastapi import FastAPI
from psycopg import sql

from api.security.seeker_pi import seeker_codec
from api.settings import DatabaseSettings, Settings
from matching.seeker_personal import HARDSHIP_CATEGORIES
from store.build import collect_build
from store.identity import CITY_ORG_ID, Role
from store.migrations import apply_migrations
from store.sqlite import write_store

logger = logging.getLogger(__name__)

KINDS = ("id_number", "mobile", "name", "hardship_label")
PUBLIC_TABLES = (
    "postings", "anchors", "anchor_history", "layer_features", "layers", "organisations",
)  # fmt: skip
_ID_NUMBER = re.compile(r"(?=(\d{17}[\dXx]))")
_MOBILE = re.compile(r"(?=(1[3-9]\d{9}))")
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
_PASSWORD = "Leak-Scan-" + "7" * 8

Progress = Callable[[str], None]


@dataclass
class LeakTargets:
    """The plaintext values to search for, by kind."""

    id_numbers: set[str]
    mobiles: set[str]
    names: set[str]
    hardship_labels: tuple[str, ...]

    @classmethod
    def of(cls, seekers: pd.DataFrame) -> "LeakTargets":
        """Collect the targets of the simulation's plaintext frame."""
        labels = tuple(label for pair in HARDSHIP_CATEGORIES.values() for label in pair)
        return cls(
            set(seekers["id_number"].astype(str)),
            set(seekers["mobile"].astype(str)),
            set(seekers["name"].astype(str)),
            labels,
        )

    def count(self, text: str, kinds: tuple[str, ...] = KINDS) -> dict[str, int | None]:
        """Count the occurrences of each kind in ``kinds`` in ``text``; other kinds are None."""
        counts: dict[str, int | None] = dict.fromkeys(KINDS)
        if "id_number" in kinds:
            found = (m.group(1).upper() for m in _ID_NUMBER.finditer(text))
            counts["id_number"] = sum(1 for value in found if value in self.id_numbers)
        if "mobile" in kinds:
            found = (m.group(1) for m in _MOBILE.finditer(text))
            counts["mobile"] = sum(1 for value in found if value in self.mobiles)
        if "name" in kinds:
            counts["name"] = sum(
                _names_in(run.group(), self.names) for run in _CJK_RUN.finditer(text)
            )
        if "hardship_label" in kinds:
            counts["hardship_label"] = sum(text.count(label) for label in self.hardship_labels)
        return counts


def _names_in(run: str, names: set[str]) -> int:
    return sum(
        1
        for start in range(len(run))
        for length in (2, 3)
        if start + length <= len(run) and run[start : start + length] in names
    )


@dataclass
class LeakReport:
    """Counts of plaintext values by place and kind, with what was exercised."""

    seekers: int
    places: dict[str, dict[str, int | None]] = field(default_factory=dict)
    """Counts by place and kind; None marks a kind that was not scanned in that place."""
    requests: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Sum of every count of a scanned cell."""
        return sum(count for counts in self.places.values() for count in counts.values() if count)


def run_leak_scan(
    settings: Settings,
    *,
    n_seekers: int,
    work_dir: Path,
    admin_url: str,
    sample: int = 200,
    progress: Progress | None = None,
) -> LeakReport:
    """Seed ``n_seekers`` simulated seekers, exercise the API and scan every place.

    Parameters
    ----------
    settings
        Data folder, keys and Redis (``settings.cache.redis_url``; without it the
        Redis place is reported as not scanned).
    n_seekers
        Simulated seekers to build and seed.
    work_dir
        Folder for the SQLite file; it is removed afterwards.
    admin_url
        PostgreSQL URL of a role that may create and drop databases.
    sample
        Seekers whose API calls are sent (every call kind for each).
    progress
        Called with the name of each step as it starts.
    """
    step = progress or (lambda _name: None)
    report = LeakReport(seekers=n_seekers)
    codec = seeker_codec(settings)
    with _captured_logs() as records:
        step("build")
        result = collect_build(
            settings.data.data_dir,
            n_seekers=n_seekers,
            seed=settings.data.seed,
            protect_seekers=lambda frame: frame,
        )
        plaintext = result.seekers
        targets = LeakTargets.of(plaintext)
        result.seekers = codec.protect(plaintext)

        step("sqlite")
        work_dir.mkdir(parents=True, exist_ok=True)
        sqlite_path = work_dir / "leak-scan.sqlite"
        write_store(sqlite_path, **result.store_inputs())
        report.places["sqlite_tables"] = targets.count(_sqlite_private_text(sqlite_path))
        report.places["sqlite_bytes"] = targets.count(
            _file_text(sqlite_path), kinds=("id_number", "mobile")
        )

        with _throwaway_database(admin_url) as database_url:
            step("postgres")
            apply_migrations(database_url)
            scan_settings = _scan_settings(settings, database_url)
            from store.postgres import PostgresStore, open_pool

            pool = open_pool(database_url, scan_settings.database.pool_options())
            try:
                PostgresStore(pool).replace_all(**result.store_inputs())
            finally:
                pool.close()

            step("api")
            responses = _exercise_api(scan_settings, plaintext, sample, report)
            report.places["responses"] = targets.count("\n".join(responses))
            report.places["redis"] = _scan_redis(scan_settings, targets, report)

            step("pg_dump")
            report.places["postgres_dump"] = targets.count(_pg_dump(database_url))
    report.places["logs"] = targets.count("\n".join(records))
    shutil.rmtree(work_dir, ignore_errors=True)
    logger.info("leak scan of %d seekers: %d plaintext values found", n_seekers, report.total)
    return report


def _scan_settings(settings: Settings, database_url: str) -> Settings:
    base = settings.cache.redis_namespace
    namespace = (
        f"{base}-leakscan-{secrets.token_hex(4)}" if base else f"leakscan-{secrets.token_hex(4)}"
    )
    cache = settings.cache.model_copy(
        update={"redis_namespace": namespace, "rate_limit_per_minute": 0}
    )
    database = DatabaseSettings(database_url=database_url)
    return settings.model_copy(update={"cache": cache, "database": database})


@dataclass(frozen=True, slots=True)
class _Reply:
    status_code: int
    text: str


class _Http:
    """A minimal JSON client of the service on a loopback port."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> _Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # loopback http URL built here
            self.base + path, data=data, method=method, headers=dict(headers or {})
        )
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # nosec B310 # loopback
                return _Reply(response.status, response.read().decode())
        except urllib.error.HTTPError as err:
            return _Reply(err.code, err.read().decode())


@contextmanager
def _serving(app: FastAPI) -> Iterator[_Http]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="leak-scan-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the service did not start for the leak scan; see the log")
        time.sleep(0.1)
    try:
        yield _Http(port)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _exercise_api(
    settings: Settings, plaintext: pd.DataFrame, sample: int, report: LeakReport
) -> list[str]:
    """Send every kind of request; return the bodies of those that must carry no plaintext."""
    from api.app import create_app

    bodies: list[str] = []
    unmasked = 0
    chosen = plaintext.head(sample)
    app = create_app(settings)
    with _serving(app) as http:
        officer = _log_in(app, http, Role.ASSISTANCE_OFFICER)
        lookup = "/v1/staff/seekers/lookup"
        for row in chosen.itertuples(index=False):
            seeker_id, id_number, mobile = str(row.seeker_id), str(row.id_number), str(row.mobile)
            calls = [
                http.request("GET", f"/v1/staff/seekers/{seeker_id}", headers=officer),
                http.request("POST", lookup, {"id_number": id_number}, officer),
                http.request("POST", lookup, {"mobile": mobile}, officer),
                http.request("POST", lookup, {"id_number": _broken_id(id_number)}, officer),
                http.request("POST", lookup, {"mobile": mobile + "0"}, officer),
                http.request("POST", lookup, {"mobile": mobile, "id_number": id_number}, officer),
                http.request(
                    "GET", f"/v1/seekers/{seeker_id}/recommendations?limit=5", headers=officer
                ),
            ]
            bodies.extend(_without_jobs(reply.text) for reply in calls)
            _count(report, calls)
            reply = http.request("GET", f"/v1/staff/seekers/{seeker_id}/unmasked", headers=officer)
            unmasked += reply.status_code == 200
        for offset in range(0, len(chosen), 50):
            page = http.request("GET", f"/v1/seekers?limit=50&offset={offset}", headers=officer)
            picker = http.request("GET", f"/v1/dev/seekers?limit=50&offset={offset}")
            bodies.extend([page.text, picker.text])
            _count(report, [page, picker])
        first = str(chosen["seeker_id"].iloc[0])
        session = http.request("POST", f"/v1/dev/seekers/{first}/session")
        own = http.request(
            "GET",
            "/v1/me/recommendations?limit=5",
            headers={"Authorization": f"Bearer {json.loads(session.text).get('token', '')}"},
        )
        bodies.extend([session.text, _without_jobs(own.text)])
        _count(report, [session, own])
        pages = [http.request("GET", path) for path in ("/", "/seeker", "/seeker?lang=en")]
        bodies.extend(page.text for page in pages)
        _count(report, pages)
        last = str(chosen["seeker_id"].iloc[-1])
        erased = http.request("DELETE", f"/v1/seekers/{last}", headers=officer)
        bodies.append(erased.text)
        _count(report, [erased])
    report.requests["unmasked reads (bodies not scanned)"] = unmasked
    return bodies


def _count(report: LeakReport, responses: list[Any]) -> None:
    for response in responses:
        key = f"HTTP {response.status_code}"
        report.requests[key] = report.requests.get(key, 0) + 1


def _broken_id(value: str) -> str:
    """Return the ID number with a wrong check character, which the API rejects with 422."""
    check = "0" if value[-1] != "0" else "1"
    return value[:-1] + check


def _without_jobs(text: str) -> str:
    """Drop the job list of a recommendations body: it is public posting text."""
    try:
        body = json.loads(text)
    except ValueError:
        return text
    if isinstance(body, dict) and "items" in body and "seeker" in body:
        body.pop("items")
    return json.dumps(body, ensure_ascii=False)


def _log_in(app: FastAPI, http: _Http, role: Role) -> dict[str, str]:
    """Create a city-wide account with ``role``, bind a device and log in with TOTP."""
    from api.identity_setup import seed_organisation_tree

    identity = app.state.identity
    seed_organisation_tree(identity.store, app.state.settings)
    login = f"leakscan.{secrets.token_hex(4)}"
    created = identity.create_staff(
        login=login, name="扫描员", mobile="13900000000", org_id=CITY_ORG_ID, roles=[role],
        password=_PASSWORD, second_factor="totp",
    )  # fmt: skip
    device = "leak-scan"
    identity.store.bind_device(created.account.account_id, device, "leak scan", identity.clock())
    first = http.request("POST", "/v1/auth/login", {"login": login, "password": _PASSWORD})
    code = pyotp.TOTP(created.totp_secret).at(identity.clock())
    challenge = json.loads(first.text)["challenge"]
    second = http.request(
        "POST", "/v1/auth/verify", {"challenge": challenge, "code": code, "device_id": device}
    )
    if second.status_code != 200:
        raise RuntimeError(f"leak-scan login failed with HTTP {second.status_code}")
    token = json.loads(second.text)["token"]
    return {"Authorization": f"Bearer {token}", "X-Device-ID": device}


def _scan_redis(
    settings: Settings, targets: LeakTargets, report: LeakReport
) -> dict[str, int | None]:
    """Count targets in the keys and string values of the scan's namespace, then delete them."""
    from store.cache import key_prefix, open_redis

    if settings.cache.redis_url is None:
        report.notes.append("redis: not scanned, DOORSTEP_REDIS_URL is not set")
        return dict.fromkeys(KINDS)
    client = open_redis(settings.cache.redis_options())
    pattern = key_prefix(settings.cache.redis_namespace) + "*"
    texts = []
    try:
        keys = list(client.scan_iter(match=pattern, count=500))
        for key in keys:
            texts.append(key.decode(errors="replace"))
            value = client.get(key) if client.type(key) == b"string" else None
            if isinstance(value, bytes):
                texts.append(_without_jobs(value.decode(errors="replace")))
        report.requests["redis keys scanned"] = len(keys)
        if keys:
            client.delete(*keys)
    finally:
        client.close()
    return targets.count("\n".join(texts))


def _sqlite_private_text(path: Path) -> str:
    """Return the rows of every table but the public-data ones, as text."""
    connection = sqlite3.connect(path)
    try:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name not in PUBLIC_TABLES and not name.startswith("anchors_rtree")
        ]
        lines = []
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            for row in connection.execute(f"SELECT * FROM {quoted}"):  # nosec B608 # names from sqlite_master
                lines.append(repr(row))
        return "\n".join(lines)
    finally:
        connection.close()


def _file_text(path: Path) -> str:
    parts = [path, path.with_name(path.name + "-wal")]
    return "\n".join(p.read_bytes().decode("latin-1") for p in parts if p.exists())


def _pg_dump(database_url: str) -> str:
    """Return the plain-text dump of the database without the public-data tables' rows."""
    excluded = [f"--exclude-table-data={table}" for table in PUBLIC_TABLES]
    completed = subprocess.run(  # nosec B603 B607 # fixed argument list, no shell
        ["pg_dump", "--no-owner", *excluded, f"--dbname={database_url}"],
        capture_output=True,
        check=True,
        timeout=600,
    )
    return completed.stdout.decode()


@contextmanager
def _throwaway_database(admin_url: str) -> Iterator[str]:
    """Create ``doorstep_leakscan_<random>`` and drop it afterwards; yield its URL."""
    name = f"doorstep_leakscan_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def _captured_logs() -> Iterator[list[str]]:
    """Collect every record at DEBUG and above; the other handlers keep their old threshold."""
    handler = _ListHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    others = [(other, other.level) for other in root.handlers]
    for other, other_level in others:
        other.setLevel(max(other_level, level))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for other, other_level in others:
            other.setLevel(other_level)
