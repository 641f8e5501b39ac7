"""Erasure of a seeker's push traces, for the seeker-deletion eraser registry.

Register it where the application builds its erasers::

    app.state.erasers.register("pushes", push_eraser(app.state.push_store, client, keys))

The eraser deletes the seeker's consent, the jobs recorded as shown to them, their
outbox rows and inbox messages in one store transaction, then the stream entries
that carry those push ids (``XDEL``). Stream entries contain only push ids. An
entry that survives (Redis unreachable during erasure) therefore contains no personal
field, and a worker acknowledges it without effect because its outbox row is gone.
"""

import logging
from collections.abc import Callable
from typing import Any

import redis

from push.pipeline import StreamKeys
from store.push_store import PushStore

logger = logging.getLogger(__name__)

XRANGE_PAGE = 1000
"""Stream entries read per ``XRANGE`` call while looking for a seeker's push ids."""


def erase_seeker_pushes(
    store: PushStore,
    seeker_id: str,
    client: redis.Redis | None = None,
    keys: StreamKeys | None = None,
) -> dict[str, int]:
    """Delete every push trace of one seeker; return the number deleted per table and stream.

    Parameters
    ----------
    store
        The push store (SQLite or PostgreSQL).
    seeker_id
        The seeker to erase.
    client, keys
        The Redis client and stream keys of ``doorstep worker``; None on the embedded
        store, which has no stream.
    """
    push_ids, counts = store.erase_seeker(seeker_id)
    counts["stream_entries"] = 0
    if client is not None and keys is not None and push_ids:
        try:
            counts["stream_entries"] = _delete_entries(client, keys.stream, set(push_ids))
        except redis.RedisError as err:
            logger.warning(
                "erasing seeker %r: %d stream entries not deleted, Redis failed: %s",
                seeker_id,
                len(push_ids),
                err,
            )
    logger.info("erased the push traces of seeker %r: %s", seeker_id, counts)
    return counts


def push_eraser(
    store: PushStore, client: redis.Redis | None = None, keys: StreamKeys | None = None
) -> Callable[[str], dict[str, int]]:
    """Return :func:`erase_seeker_pushes` bound to a store and stream, taking the seeker id."""

    def erase(seeker_id: str) -> dict[str, int]:
        return erase_seeker_pushes(store, seeker_id, client, keys)

    return erase


def _delete_entries(client: redis.Redis, stream: str, push_ids: set[str]) -> int:
    deleted = 0
    start = "-"
    while True:
        page: Any = client.xrange(stream, min=start, max="+", count=XRANGE_PAGE)
        if not page:
            return deleted
        doomed = [
            entry_id
            for entry_id, fields in page
            if (fields.get(b"push_id") or b"").decode() in push_ids
        ]
        if doomed:
            deleted += int(client.xdel(stream, *doomed))
        if len(page) < XRANGE_PAGE:
            return deleted
        last = page[-1][0]
        start = "(" + (last.decode() if isinstance(last, bytes) else str(last))
