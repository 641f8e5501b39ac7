"""Keeps this process's job index and cache keys in step with changes other processes write.

Several service processes (uvicorn workers, hosts behind a balancer) share one store and
one Redis, but each keeps its own job index (:class:`matching.recommend.Recommender`).
A posting-state change or an anchor move appends a row to the store's change log
(:mod:`store.index_changes`) in the transaction of the change. :class:`IndexSync` reads
the rows after the last one this process applied and applies each to the local index:

- ``posting``: the posting is read from the store again. It is added to the index when
  it is active and removed when it is not, so applying a change twice changes nothing.
- ``anchor``: the anchor's postings, and those of anchors merged into it, move to the
  anchor's stored point, precision and district.

After applying changes, the response-cache keys start from ``<build identity>-c<change id>``,
so every process that has applied the same changes shares one set of keys, and no process
serves a response cached before a change it has applied.

A background thread checks every ``interval_s`` seconds (one indexed query). The process
that wrote a change applies it at once, before its response.
"""

import logging
import threading
from typing import Any, Protocol, runtime_checkable

from starlette.datastructures import State

from geo.curation import AnchorRecord
from store.index_changes import IndexChange

logger = logging.getLogger(__name__)

BATCH = 500
"""Changes read per query while catching up."""


@runtime_checkable
class IndexChangeSource(Protocol):
    """A store with a job-index change log and the rows the changes name."""

    def index_changes_since(self, after: int, limit: int = BATCH) -> list[IndexChange]: ...

    def latest_index_change(self) -> int: ...

    def posting_for_push(self, posting_id: str) -> dict[str, Any] | None: ...

    def get_anchor(self, anchor_id: str) -> AnchorRecord | None: ...


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
        The build identity of the store, which the cache build id extends.
    start_after
        The newest change id the loaded index already contains. The caller reads it
        before it loads the postings, so a change committed during the load is applied
        again, which changes nothing, instead of being missed.
    interval_s
        Seconds between two checks of the background thread.
    """

    def __init__(
        self, state: State, base_build_id: str, start_after: int, interval_s: float
    ) -> None:
        self._state = state
        self.base_build_id = base_build_id
        self.applied = start_after
        self.interval_s = interval_s
        self.lock = threading.RLock()
        """Held while the index changes, by this object and by routes that change it."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def build_id(self) -> str:
        """The cache build id of the changes applied so far."""
        return cache_build_id(self.base_build_id, self.applied)

    def catch_up(self) -> int:
        """Apply every stored change newer than the last one applied; return how many.

        Errors of the store propagate, and the changes not yet applied are read again on
        the next call. The build id covers the changes applied before the error, because
        the index already contains them.
        """
        store = self._state.store
        if not isinstance(store, IndexChangeSource):
            return 0
        count = 0
        with self.lock:
            try:
                while True:
                    changes = store.index_changes_since(self.applied, BATCH)
                    for change in changes:
                        self._apply(store, change)
                        self.applied = change.change_id
                        count += 1
                    if len(changes) < BATCH:
                        break
            finally:
                if count:
                    self._state.build_id = self.build_id
                    logger.info("applied %d job-index changes up to %d", count, self.applied)
        return count

    def _apply(self, store: IndexChangeSource, change: IndexChange) -> None:
        recommender = self._state.recommender
        if change.kind == "posting":
            row = store.posting_for_push(change.object_id)
            active = row is not None and bool(row["active"])
            recommender.set_posting_active(change.object_id, active, row)
            return
        record = store.get_anchor(change.object_id)
        if record is None:
            logger.warning(
                "job-index change %d names anchor %r, which is not stored; skipped",
                change.change_id,
                change.object_id,
            )
            return
        recommender.refresh_anchor(
            record.anchor_id,
            lon=record.lon,
            lat=record.lat,
            precision=record.precision.value,
            district_code=record.district_code,
            merged_ids=change.merged_ids,
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
