"""Keeps this process's job index and cache keys in step with changes other processes write.

Several service processes (uvicorn workers, hosts behind a balancer) share one store and
one Redis, but each keeps its own job index (:class:`matching.recommend.Recommender`).
A posting-state change or an anchor move appends a row to the store's change log
(:mod:`store.index_changes`) in the transaction of the change. :class:`IndexSync` reads
the rows after the last one this process applied and applies them in order:

- ``posting``: the posting is read from the store again. It is added to the index when
  it is active and removed when it is not, so applying a change twice changes nothing.
  Consecutive posting changes are applied together, with one rebuild of the index.
- ``anchor``: the anchor's postings, and those of anchors merged into it, move to the
  anchor's stored point, precision and district.

After applying changes, the response-cache keys start from ``<build identity>-c<change id>``,
so every process that has applied the same changes shares one set of keys, and no process
serves a response cached before a change it has applied.

The process loads its whole index from the store again, as at start-up, when

- the store's build identity differs from the one the index was loaded from (a rebuild
  replaced the data; a rebuilt embedded store also numbers its changes from 1 again),
- the newest stored change id is below the one applied (the log was started again), or
- applying a change raises an error that is not a store error (a bug or an unexpected
  row), which is logged with the change id.

Store errors (a lost connection, a locked file) propagate, and the changes not yet
applied are read again on the next check. A reload that fails otherwise leaves the old
index in service and marks the process stale (:attr:`IndexSync.stale_reason`), which
``/health`` reports with status 503; it is tried again after a growing delay.

A background thread checks every ``interval_s`` seconds (two small queries: the build
metadata and the newest change id). The process that wrote a change applies it at once,
before its response.
"""

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import psycopg
from starlette.datastructures import State

from geo.curation import AnchorRecord
from store.cache import build_identity
from store.index_changes import IndexChange

logger = logging.getLogger(__name__)

BATCH = 500
"""Changes read per query while catching up."""

STORE_ERRORS: tuple[type[Exception], ...] = (psycopg.Error, sqlite3.Error)
"""Errors of reading the store, retried on the next check; pool time-outs are psycopg errors."""

MAX_RELOAD_DELAY_S = 300.0
"""Maximum wait, in seconds, before a failed reload is tried again."""


@runtime_checkable
class IndexChangeSource(Protocol):
    """A store with a job-index change log and the rows the changes name."""

    def meta(self) -> dict[str, Any]: ...

    def index_changes_since(self, after: int, limit: int = BATCH) -> list[IndexChange]: ...

    def latest_index_change(self) -> int: ...

    def posting_for_push(self, posting_id: str) -> dict[str, Any] | None: ...

    def get_anchor(self, anchor_id: str) -> AnchorRecord | None: ...


@dataclass(frozen=True, slots=True)
class LoadedIndex:
    """The store build and change id that a job index loaded from the store matches."""

    identity: str
    """The store's build identity, read before the postings."""
    applied: int
    """The newest change id, read before the postings, so the index contains it."""


IndexLoader = Callable[[], LoadedIndex]
"""Loads the job index from the store again and puts it in service (see ``api.app``)."""


def cache_build_id(base: str, change_id: int) -> str:
    """Return the response-cache build id of a process that applied changes up to ``change_id``."""
    return base if change_id == 0 else f"{base}-c{change_id}"


class IndexSync:
    """Applies the store's job-index changes to one process's recommender and build id.

    Parameters
    ----------
    state
        The application state: ``store``, ``recommender`` and ``build_id`` are read
        from it when changes are applied, and ``build_id`` is replaced.
    base_build_id
        The build identity of the store the index was loaded from, which the cache build
        id extends. Each check compares it with the store's, to find a rebuild.
    start_after
        The newest change id the loaded index already contains. The caller reads it
        before it loads the postings, so a change committed during the load is applied
        again, which changes nothing, instead of being missed.
    interval_s
        Seconds between two checks of the background thread.
    reload
        Loads the index from the store again and puts it in service; called with
        :attr:`lock` held. Without it, a process that needs a reload is marked stale.
    """

    def __init__(
        self,
        state: State,
        base_build_id: str,
        start_after: int,
        interval_s: float,
        reload: IndexLoader | None = None,
    ) -> None:
        self._state = state
        self.base_build_id = base_build_id
        """The start of the cache build id: the store's build identity, with a suffix after
        a reload that found the change ids lower than before in the same build."""
        self._identity = base_build_id
        self.applied = start_after
        self.interval_s = interval_s
        self._reload = reload
        self.lock = threading.RLock()
        """Held while the index changes, by this object and by routes that change it."""
        self.reloads = 0
        """How many times the index was loaded from the store again."""
        self.stale_reason: str | None = None
        """The reason the index is behind the store and could not be reloaded, or None."""
        self._reload_reason: str | None = None
        self._reload_failures = 0
        self._next_reload_at = 0.0
        self._changes_in_hand = ""
        """The change ids being read or applied, for the error log."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def build_id(self) -> str:
        """The cache build id of the changes applied so far."""
        return cache_build_id(self.base_build_id, self.applied)

    def catch_up(self) -> int:
        """Apply every stored change newer than the last one applied; return how many.

        Loads the whole index again instead when the store was rebuilt or applying a
        change failed (see the module); a reload counts as no change applied. Errors of
        the store propagate, and the changes not yet applied are read again on the next
        call. The build id covers the changes applied before the error, because the
        index already contains them.
        """
        store = self._state.store
        if not isinstance(store, IndexChangeSource):
            return 0
        with self.lock:
            if self._reload_reason is None:
                latest = self._check_store(store)
                if self._reload_reason is None and latest == self.applied:
                    return 0
            if self._reload_reason is not None:
                self._reload_index()
                return 0
            return self._apply_new_changes(store)

    def _check_store(self, store: IndexChangeSource) -> int:
        """Return the newest stored change id; note why a reload is needed, if it is.

        A rebuilt store returns -1 without reading its change log; the reload reads it.
        """
        identity = build_identity(store.meta())
        if identity != self._identity:
            self._reload_reason = (
                f"the store was rebuilt: build identity {self._identity} is now {identity}"
            )
            return -1
        latest = store.latest_index_change()
        if latest < self.applied:
            self._reload_reason = (
                f"the store's newest job-index change is {latest},"
                f" below the {self.applied} this process applied"
            )
        return latest

    def _apply_new_changes(self, store: IndexChangeSource) -> int:
        before = self.applied
        count = 0
        try:
            while True:
                self._changes_in_hand = f"after {self.applied}"
                changes = store.index_changes_since(self.applied, BATCH)
                count += self._apply(store, changes)
                if len(changes) < BATCH:
                    break
        except STORE_ERRORS:
            raise
        except Exception:  # a bug or an unexpected row: the store still has the truth
            logger.exception(
                "applying job-index change %s failed; loading the job index from the store",
                self._changes_in_hand,
            )
            self._reload_reason = f"applying job-index change {self._changes_in_hand} failed"
            self._reload_index()
        finally:
            if self.applied != before:
                self._state.build_id = self.build_id
                if count:
                    logger.info("applied %d job-index changes up to %d", count, self.applied)
        return count

    def _apply(self, store: IndexChangeSource, changes: list[IndexChange]) -> int:
        """Apply ``changes`` in order; consecutive posting changes share one rebuild."""
        count = 0
        postings: list[IndexChange] = []
        for change in changes:
            if change.kind == "posting":
                postings.append(change)
                continue
            count += self._apply_postings(store, postings)
            postings = []
            self._apply_anchor(store, change)
            self.applied = change.change_id
            count += 1
        return count + self._apply_postings(store, postings)

    def _apply_postings(self, store: IndexChangeSource, changes: list[IndexChange]) -> int:
        """Read each posting once and set them all in one rebuild of the index.

        On a store error, the postings read before it are applied and the error raised.
        """
        rows: dict[str, dict[str, Any] | None] = {}
        updates: list[tuple[str, bool, dict[str, Any] | None]] = []
        failure: Exception | None = None
        for change in changes:
            self._changes_in_hand = str(change.change_id)
            posting_id = change.object_id
            if posting_id not in rows:
                try:
                    rows[posting_id] = store.posting_for_push(posting_id)
                except STORE_ERRORS as err:
                    failure = err
                    break
            row = rows[posting_id]
            updates.append((posting_id, row is not None and bool(row["active"]), row))
        if updates:
            last = changes[len(updates) - 1].change_id
            self._changes_in_hand = f"{changes[0].change_id} to {last}"
            self._state.recommender.set_postings_active(updates)
            self.applied = last
        if failure is not None:
            raise failure
        return len(updates)

    def _apply_anchor(self, store: IndexChangeSource, change: IndexChange) -> None:
        self._changes_in_hand = str(change.change_id)
        record = store.get_anchor(change.object_id)
        if record is None:
            logger.warning(
                "job-index change %d names anchor %r, which is not stored; skipped",
                change.change_id,
                change.object_id,
            )
            return
        self._state.recommender.refresh_anchor(
            record.anchor_id,
            lon=record.lon,
            lat=record.lat,
            precision=record.precision.value,
            district_code=record.district_code,
            merged_ids=change.merged_ids,
        )

    def _reload_index(self) -> None:
        """Load the index from the store again for ``_reload_reason``; see the module.

        Store errors propagate and leave the reload pending for the next call.
        """
        reason = self._reload_reason
        if self._reload is None:
            if self.stale_reason is None:
                logger.error(
                    "job index is stale and cannot be reloaded in this process (%s);"
                    " /health reports 503 until the process is restarted",
                    reason,
                )
            self.stale_reason = reason
            return
        if time.monotonic() < self._next_reload_at:
            return
        logger.warning("loading the job index from the store again: %s", reason)
        started = time.perf_counter()
        try:
            loaded = self._reload()
        except STORE_ERRORS:
            raise
        except Exception:  # keep serving the old index, and report it stale
            self._reload_failures += 1
            # The exponent is capped because 2**1024 does not convert to float; 2**30
            # times an interval of 1 ms already exceeds MAX_RELOAD_DELAY_S.
            doubling = 2 ** min(self._reload_failures, 30)
            delay = min(self.interval_s * doubling, MAX_RELOAD_DELAY_S)
            self._next_reload_at = time.monotonic() + max(delay, 1.0)
            self.stale_reason = f"{reason}; loading the job index again failed"
            logger.exception(
                "loading the job index again failed (%d in a row), tried again in %.0f s;"
                " /health reports 503 meanwhile",
                self._reload_failures,
                max(delay, 1.0),
            )
            return
        if loaded.identity != self._identity:
            self.base_build_id = loaded.identity
        elif loaded.applied < self.applied:
            # Same build, lower ids: keys of the old ids would name other index states.
            self.base_build_id = f"{self.base_build_id}-r{self.applied}"
        self._identity = loaded.identity
        self.applied = loaded.applied
        self._state.build_id = self.build_id
        self.reloads += 1
        self._reload_reason = None
        self._reload_failures = 0
        self._next_reload_at = 0.0
        self.stale_reason = None
        logger.warning(
            "loaded the job index from the store again in %.1f s: %d postings,"
            " change %d, cache build id %s",
            time.perf_counter() - started,
            self._state.recommender.n_postings,
            self.applied,
            self.build_id,
        )

    def start(self) -> None:
        """Start the background thread that calls :meth:`catch_up` every ``interval_s``."""
        if self.interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="index-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background thread and wait for it to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _run(self) -> None:
        logger.info("job-index sync started, checking every %.1f s", self.interval_s)
        failures = 0
        while not self._stop.wait(self.interval_s):
            try:
                self.catch_up()
            except Exception as err:  # the thread must outlive a failed check
                failures += 1
                level = logging.WARNING if failures == 1 else logging.DEBUG
                logger.log(level, "job-index sync failed (%d in a row): %s", failures, err)
                continue
            if failures:
                logger.info("job-index sync recovered after %d failures", failures)
            failures = 0
        logger.info("job-index sync stopped")
