"""Push decisions for the service's triggers, built before the triggering write.

The routes ask :class:`PushService` for a :class:`store.push_outbox.PushBatch`, then
hand it to the store method that writes the triggering change, which writes the
batch in the same transaction.
"""

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from matching.candidates import JobIndex
from matching.push_fanout import (
    CommuteNetwork,
    PushCandidate,
    SeekerHomes,
    digest_candidates,
    push_candidates,
)
from matching.push_rules import PushRules
from store.push_outbox import PushBatch

logger = logging.getLogger(__name__)

CANDIDATE_HEADROOM = 10
"""Candidates kept per posting, as a multiple of ``max_seekers_per_opening``, so the store's
consent and de-duplication rules can drop most of them and still fill the opening."""


class PushService:
    """Builds push batches from the seekers known to the process.

    Parameters
    ----------
    rules
        The push rules.
    seekers
        Seekers as :meth:`store.base.ReadStore.seekers_frame` returns them.
    network
        The transit network, or None for straight-line commutes.
    """

    def __init__(
        self, rules: PushRules, seekers: pd.DataFrame, network: CommuteNetwork | None = None
    ) -> None:
        self.rules = rules
        self._seekers = seekers
        self.network = network
        self._homes: SeekerHomes | None = None
        self._lock = threading.Lock()

    @property
    def homes(self) -> SeekerHomes:
        """The seekers' homes index, built on first use."""
        with self._lock:
            if self._homes is None:
                self._homes = SeekerHomes(self._seekers)
                logger.info("push fan-out indexed %d seeker homes", len(self._homes.seekers))
            return self._homes

    def replace_seekers(self, seekers: pd.DataFrame) -> None:
        """Use a new seekers frame; the homes index is rebuilt on the next trigger."""
        with self._lock:
            self._seekers = seekers
            self._homes = None

    def job_batch(
        self, trigger: str, postings: Iterable[Mapping[str, Any]], at: datetime
    ) -> PushBatch:
        """Return the push candidates of postings that became active or got a verified anchor."""
        limit = self.rules.max_seekers_per_opening * CANDIDATE_HEADROOM
        candidates: list[PushCandidate] = []
        for posting in postings:
            found = push_candidates(posting, self.homes, self.rules, self.network, limit=limit)
            candidates.extend(found)
        return PushBatch(trigger, candidates, self.rules, at)

    def digest_batch(self, seeker: Mapping[str, Any], index: JobIndex, at: datetime) -> PushBatch:
        """Return the jobs one seeker qualifies for after a preference change, best first.

        ``seeker`` holds the new preferences; ``index`` holds the active postings.
        """
        candidates = digest_candidates(seeker, index, self.rules, self.network)
        return PushBatch(f"seeker.preferences:{seeker['seeker_id']}", candidates, self.rules, at)
