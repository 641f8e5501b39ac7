"""Fault test: 2,000 pushes through PostgreSQL, a private Redis and worker processes that crash.

Redis is killed three times (SIGKILL); after the second kill it restarts with an
empty data set. Worker processes kill themselves between the gateway's reply and
marking the push delivered, or between marking it and ``XACK``. The supervisor here
restarts every dead worker. Every push must reach the fake gateway, none twice, and
all within a bounded time after the last fault.

NOTE: a worker that dies after the gateway accepted a push and before the store
marks it delivered makes the next worker send it again. The fake gateway, like a
gateway that honours ``Idempotency-Key``, hands such a resend to no phone; the test
prints how many resends it absorbed. In one of three runs on a loaded 2-core machine there
were 3 resends for 2 such kills, so a resend may have another cause (not found yet); it
is absorbed the same way.
"""

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from matching.push_rules import PushRules
from store.postgres import Pool
from store.push_outbox import PushBatch
from store.push_store import PushStore
from tests.push.conftest import FakeGateway, RedisProcess
from tests.push.fault_worker import KILLED_AFTER_MARK, KILLED_AFTER_SEND
from tests.push.test_pipeline import _candidate

EVENTS = 2_000
TRIGGERS = 100  # 100 postings activated, each pushed to 20 seekers
WORKERS = 3
RECOVERY_BOUND_S = 60.0
"""Longest time allowed from the last fault until every push is delivered."""
REPO = Path(__file__).resolve().parents[2]


def _quiet_window() -> tuple[str, PushRules]:
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    start = (local + timedelta(hours=10)).strftime("%H:%M")
    end = (local + timedelta(hours=11)).strftime("%H:%M")
    rules = PushRules(
        quiet_start=datetime.strptime(start, "%H:%M").time(),
        quiet_end=datetime.strptime(end, "%H:%M").time(),
        max_seekers_per_opening=EVENTS,
    )
    return f"{start}-{end}", rules


def _seed(store: PushStore, rules: PushRules) -> list[str]:
    now = datetime.now(UTC)
    ids: list[str] = []
    per_trigger = EVENTS // TRIGGERS
    for trigger in range(TRIGGERS):
        seekers = [f"sim-{trigger * per_trigger + n:06d}" for n in range(per_trigger)]
        for seeker_id in seekers:
            store.set_consent(seeker_id, consent=True, at=now - timedelta(days=1), channel="sms")
        candidates = [_candidate(seeker_id, f"posting-{trigger}") for seeker_id in seekers]
        ids += store.write_pushes(PushBatch(f"posting.active:{trigger}", candidates, rules, now))
    return ids


class Supervisor:
    """Starts the relay and worker processes and restarts any that die."""

    def __init__(self, args: list[str], faults_off: Path) -> None:
        self.args = args
        self.faults_off = faults_off
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_codes: list[int] = []
        self.starts = 0

    def _start(self, name: str, role: str, faults: bool) -> None:
        command = [sys.executable, "-m", "tests.push.fault_worker", "--role", role, *self.args]
        if faults:
            command += [
                "--kill-after-send", "0.01", "--kill-after-mark", "0.01",
                "--faults-off", str(self.faults_off), "--seed", str(self.starts),
            ]  # fmt: skip
        self.starts += 1
        self.processes[name] = subprocess.Popen(command, cwd=REPO)  # fixed arguments

    def start_all(self) -> None:
        self._start("relay", "relay", faults=False)
        for number in range(WORKERS):
            self._start(f"worker-{number}", "worker", faults=True)

    def restart_dead(self) -> None:
        for name, process in list(self.processes.items()):
            code = process.poll()
            if code is not None:
                self.exit_codes.append(code)
                self._start(name, "relay" if name == "relay" else "worker", faults=name != "relay")

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def test_no_push_lost_or_duplicated(
    pg_url: str, pg_pool: Pool, redis_server: RedisProcess, gateway: FakeGateway, tmp_path: Path
) -> None:
    with pg_pool.connection() as connection:
        for table in ("push_inbox", "push_outbox", "push_shown", "push_consents"):
            connection.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]
    store = PushStore.postgres(pg_pool)
    quiet, rules = _quiet_window()
    ids = _seed(store, rules)
    assert len(ids) == EVENTS

    gateway.log.delay_s = 0.01
    faults_off = tmp_path / "faults-off"
    args = ["--pg", pg_url, "--redis", redis_server.url, "--gateway", gateway.url, "--quiet", quiet]
    supervisor = Supervisor(args, faults_off)
    supervisor.start_all()
    try:
        # The fault schedule starts when deliveries do, because starting Python takes a while.
        startup_deadline = time.monotonic() + 120
        while not gateway.log.accepted_keys and time.monotonic() < startup_deadline:
            time.sleep(0.05)
        begin = time.monotonic()
        redis_faults = [(2.0, False), (5.0, True), (8.0, False)]  # (seconds, restart empty)
        while redis_faults:
            supervisor.restart_dead()
            if time.monotonic() - begin >= redis_faults[0][0]:
                _, empty = redis_faults.pop(0)
                redis_server.kill()
                time.sleep(0.5)
                redis_server.restart(empty=empty)
            time.sleep(0.05)
        faults_off.touch()
        last_fault = time.monotonic()
        delivered_at_start = len(gateway.log.accepted_keys)

        delivered_at = None
        while time.monotonic() - last_fault < RECOVERY_BOUND_S:
            supervisor.restart_dead()
            if store.status_counts() == {"delivered": EVENTS}:
                delivered_at = time.monotonic()
                break
            time.sleep(0.2)
    finally:
        supervisor.stop_all()

    counts = store.status_counts()
    keys = gateway.log.accepted_keys
    resends = sum(keys.values()) - len(keys)
    killed_after_send = supervisor.exit_codes.count(KILLED_AFTER_SEND)
    killed_after_mark = supervisor.exit_codes.count(KILLED_AFTER_MARK)
    print(
        f"\nfault test: {EVENTS} pushes, 3 Redis kills (1 empty restart),"
        f" {killed_after_send} workers killed after send, {killed_after_mark} after mark,"
        f" {resends} resends absorbed by the idempotency key,"
        f" {delivered_at_start} delivered at the last fault, the rest"
        f" {None if delivered_at is None else round(delivered_at - last_fault, 1)} s later"
    )
    assert delivered_at is not None, f"not all delivered within {RECOVERY_BOUND_S} s: {counts}"
    assert counts == {"delivered": EVENTS}
    assert sorted(keys) == sorted(ids)  # nothing lost, nothing unknown
    assert len(gateway.log.sms_deliveries()) == EVENTS  # no duplicate delivery
    assert killed_after_send + killed_after_mark > 0, "no worker fault was injected"
