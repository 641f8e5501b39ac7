"""Push decisions for the service's triggers, built before the triggering write.

The routes ask :class:`PushService` for a :class:`store.push_outbox.PushBatch`, then
hand it to the store method that writes the triggering change, which writes the
batch in the same transaction.
"""

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from matching.candidates import JobIndex
from matching.push_fanout import (
    CommuteNetwork,
    PushCandidate,
    SeekerHomes,
    calibrate_model_threshold,
    digest_candidates,
    posting_headcount,
    push_candidates,
)
from matching.push_ranking import FanoutRanker
from matching.push_rules import PushRules
from store.push_outbox import PushBatch

logger = logging.getLogger(__name__)

CANDIDATE_HEADROOM = 10
"""Candidates kept per posting, as a multiple of the posting's cap, so the store's
consent and de-duplication rules can drop most of them and still fill the cap."""

PostingLookup = Callable[[], pd.DataFrame]
"""Returns the loaded active postings frame, for re-scoring jobs pushed before."""


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
    ranker
        The learned ranker the service loaded, or None to score with the baseline.
    postings
        Returns the loaded active postings; with a ranker, the better-than-shown rule
        re-scores the jobs already pushed to a seeker from these rows.
    """

    def __init__(
        self,
        rules: PushRules,
        seekers: pd.DataFrame,
        network: CommuteNetwork | None = None,
        ranker: FanoutRanker | None = None,
        postings: PostingLookup | None = None,
    ) -> None:
        self.rules = rules
        self._seekers = seekers
        self.network = network
        self.ranker = ranker
        self._postings = postings
        self._homes: SeekerHomes | None = None
        self._lock = threading.Lock()
        self._calibration_lock = threading.Lock()
        self._calibrated = False

    @property
    def ranker_id(self) -> str:
        """Id of the model that scores fan-out candidates, or ``baseline``."""
        return "baseline" if self.ranker is None else self.ranker.model_id

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
        """Return the push candidates of postings that became active or got a verified anchor.

        The batch names the ranker that scored them, and with a model it re-scores the
        jobs already pushed to each seeker with the same model.
        """
        homes = self.homes
        self._calibrate()
        candidates: list[PushCandidate] = []
        for posting in postings:
            limit = self.rules.posting_cap(posting_headcount(posting)) * CANDIDATE_HEADROOM
            found = push_candidates(
                posting, homes, self.rules, self.network, limit=limit, ranker=self.ranker
            )
            candidates.extend(found)
        score_shown = None if self.ranker is None else self._score_shown
        return PushBatch(
            trigger, candidates, self.rules, at, ranker=self.ranker_id, score_shown=score_shown
        )

    @property
    def threshold_note(self) -> str:
        """The score a pushed job needs, and where it comes from, for ``/health``."""
        rules = self.rules
        if self.ranker is None:
            return f"baseline threshold {rules.min_score} (DOORSTEP_PUSH_MIN_SCORE)"
        if rules.min_model_score is not None:
            return f"ranker threshold {rules.min_model_score} (DOORSTEP_PUSH_MIN_MODEL_SCORE)"
        if self.ranker.threshold is None and self._calibrated:
            return (
                "ranker threshold could not be calibrated because no sampled pair passes"
                " the baseline threshold, so no fan-out push passes"
            )
        if self.ranker.threshold is None:
            return "ranker threshold not calibrated yet; the first fan-out calibrates it"
        return (
            f"ranker threshold {self.ranker.threshold:.4f}, calibrated to pass as many pairs"
            f" as baseline score {rules.min_score}"
        )

    def _calibrate(self) -> None:
        """Calibrate the ranker threshold once, when no setting fixes it."""
        ranker = self.ranker
        if ranker is None or self.rules.min_model_score is not None or self._postings is None:
            return
        with self._calibration_lock:
            if self._calibrated:
                return
            ranker.threshold = calibrate_model_threshold(
                self._postings(), self.homes, self.rules, ranker, self.network
            )
            self._calibrated = True
            if ranker.threshold is None:
                logger.warning(
                    "ranker %r threshold could not be calibrated (no sampled pair passes the"
                    " baseline threshold either); no fan-out push passes until"
                    " DOORSTEP_PUSH_MIN_MODEL_SCORE is set",
                    ranker.model_id,
                )

    def _score_shown(self, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], float]:
        """Re-score pushed (seeker, posting) pairs with the ranker, for better-than-shown."""
        if self.ranker is None or self._postings is None or not pairs:
            return {}
        loaded = self._postings()
        requested = loaded[loaded["posting_id"].isin({posting_id for _, posting_id in pairs})]
        rows: dict[str, dict[str, Any]] = {
            str(row["posting_id"]): {str(key): value for key, value in row.items()}
            for row in requested.to_dict("records")
        }
        homes = self.homes
        return self.ranker.shown_scores(
            homes.feature_table, homes.positions, homes.seekers, rows, pairs
        )

    def digest_batch(self, seeker: Mapping[str, Any], index: JobIndex, at: datetime) -> PushBatch:
        """Return the jobs one seeker qualifies for after a preference change, best first.

        ``seeker`` holds the new preferences; ``index`` holds the active postings.
        """
        candidates = digest_candidates(seeker, index, self.rules, self.network)
        return PushBatch(f"seeker.preferences:{seeker['seeker_id']}", candidates, self.rules, at)
