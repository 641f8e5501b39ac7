"""A relay or stream worker process for the fault test, which may kill itself mid-delivery.

``--kill-after-send P`` exits with code 17 right after the gateway accepted a push,
before the store marks it delivered. ``--kill-after-mark P`` exits with code 18 after
the store marked it delivered, before ``XACK``. Both stop once the file
``--faults-off`` exists, so the test can measure recovery after the last fault.
"""

import argparse
import logging
import os
import random
import signal
import threading
from datetime import time as day_time
from typing import Any

import redis
from psycopg_pool import ConnectionPool

from matching.push_rules import PushRules
from push.channels import OutgoingPush, SmsGatewayChannel
from push.pipeline import Deliverer, PipelineOptions, StreamKeys, StreamRelay, StreamWorker
from store.push_store import PushStore

KILLED_AFTER_SEND = 17
KILLED_AFTER_MARK = 18

# Leases are long next to one delivery (tens of milliseconds, a second or more when the
# machine is loaded), so a slow worker's claim does not run out while it sends.
OPTIONS = PipelineOptions(
    claim_lease_s=10.0, relay_lease_s=12.0, block_ms=200, autoclaim_idle_ms=10_000,
    retry_after_s=0.5, idle_sleep_s=0.1, backoff_max_s=0.5, relay_batch=500, read_count=5,
)  # fmt: skip


class Directory:
    """Simulated seekers' SMS numbers, derived from the seeker id."""

    def address(self, seeker_id: str, channel: str) -> str:
        return "139" + seeker_id[-8:].rjust(8, "0")


class Faults:
    """Random self-kills until the faults-off file exists."""

    def __init__(self, after_send: float, after_mark: float, off_file: str, seed: int) -> None:
        self.after_send = after_send
        self.after_mark = after_mark
        self.off_file = off_file
        self.random = random.Random(seed)  # fault injection, not security

    def maybe_die(self, probability: float, code: int) -> None:
        if self.random.random() < probability and not os.path.exists(self.off_file):
            os._exit(code)


class KillingSms(SmsGatewayChannel):
    """The SMS adapter, dying after some sends."""

    faults: Faults

    def send(self, push: OutgoingPush) -> None:
        super().send(push)
        self.faults.maybe_die(self.faults.after_send, KILLED_AFTER_SEND)


class KillingStore(PushStore):
    """The push store, dying after some delivered marks."""

    faults: Faults

    def mark_delivered(self, push: dict[str, Any], now: Any) -> bool:
        changed = super().mark_delivered(push, now)
        self.faults.maybe_die(self.faults.after_mark, KILLED_AFTER_MARK)
        return changed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["relay", "worker"], required=True)
    parser.add_argument("--pg", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--quiet", required=True, help="HH:MM-HH:MM")
    parser.add_argument("--kill-after-send", type=float, default=0.0)
    parser.add_argument("--kill-after-mark", type=float, default=0.0)
    parser.add_argument("--faults-off", default="", help="faults stop once this file exists")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    start, end = (day_time.fromisoformat(part) for part in args.quiet.split("-"))
    rules = PushRules(quiet_start=start, quiet_end=end)
    faults = Faults(args.kill_after_send, args.kill_after_mark, args.faults_off, args.seed)
    pool: ConnectionPool[Any] = ConnectionPool(
        args.pg, min_size=1, max_size=2, name=f"fault-{args.role}", open=True
    )
    base = PushStore.postgres(pool)
    store = KillingStore(base._transaction, base.label)
    store.faults = faults
    client = redis.Redis.from_url(args.redis, socket_timeout=1.0, socket_connect_timeout=0.5)
    keys = StreamKeys("fault:push:stream")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if args.role == "relay":
        StreamRelay(store, client, keys, OPTIONS).run(stop)
        return
    sms = KillingSms(args.gateway, "key", "西安人社", Directory())
    sms.faults = faults
    deliverer = Deliverer(store, {"sms": sms}, rules, OPTIONS)
    StreamWorker(deliverer, client, keys, f"worker-{os.getpid()}").run(stop)


if __name__ == "__main__":
    main()
