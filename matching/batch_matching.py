"""Baseline matches of many seekers at once: each seeker's top postings within their commute.

The result for every seeker equals the per-seeker path: `JobIndex.for_commute` from
the seeker's home, then `matching.scoring.score_jobs`, then the first ``top_k`` rows.
Two things make it faster:

- Seekers are scored in blocks that share travel modes and commute limit. The trips
  of a block come from one `JobIndex.commute_table` call over its distinct home
  points, and the postings share a few hundred distinct points, so the transit model
  runs on a small matrix. Stored simulated seekers live at street-office points, so
  a block often has a single home.
- The baseline score of a block is one matrix over the postings any of its seekers
  reaches. The posting side of every component (title bigrams, confident occupation
  codes, education, pay, precision) is prepared once for all postings.

Scores are computed with the same float64 operations in the same order as
`score_jobs`, so scores and their order are identical, ties included.
"""

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from matching.candidates import JobIndex
from matching.scoring import (
    EDUCATION_ONE_BELOW_SCORE,
    OCCUPATION_SCORE_BY_SHARED_LEVELS,
    SALARY_WIDTH_FLOOR,
    UNKNOWN_EDUCATION_SCORE,
    UNKNOWN_OCCUPATION_SCORE,
    UNKNOWN_SALARY_SCORE,
    WEIGHTS,
    character_bigrams,
    confident_occupation_codes,
    distance_scores,
    precision_scores,
    seeker_keywords,
    shared_occupation_levels,
)

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

# Seekers are scored in blocks of about this many (seeker, posting) cells. Each
# float64 array of a block is then 16 MB, and a block has a few such arrays alive.
_BLOCK_CELLS = 2_000_000

Eligibility = Callable[[FloatArray, FloatArray], npt.NDArray[np.bool_]]
"""Candidate mask for homes (WGS84 lon, lat arrays), shape (homes, postings) or (postings,)."""

MATCH_COLUMNS = ["seeker_id", "rank", "position", "estimated_commute_min", "score"]


@dataclass(frozen=True)
class _PostingSide:
    """The posting side of every score component, one entry per row of `JobIndex.located`."""

    title_ids: IntArray
    title_grams: sparse.csr_matrix
    vocabulary: dict[str, int]
    occupation_ids: IntArray
    occupation_codes: list[str]
    education: npt.NDArray[np.int64]
    pay_max: FloatArray
    precision: FloatArray

    @classmethod
    def of(cls, located: pd.DataFrame) -> "_PostingSide":
        titles = located["title"].fillna("").astype(str)
        title_ids, distinct_titles = pd.factorize(titles)
        vectorizer = CountVectorizer(analyzer=_bigram_list, binary=True, dtype=np.float64)
        if any(character_bigrams(title) for title in distinct_titles):
            grams = sparse.csr_matrix(vectorizer.fit_transform(distinct_titles))
            vocabulary = {str(gram): int(column) for gram, column in vectorizer.vocabulary_.items()}
        else:
            grams = sparse.csr_matrix((len(distinct_titles), 0), dtype=np.float64)
            vocabulary = {}
        occupation_ids, codes = pd.factorize(confident_occupation_codes(located))
        pay_low = located["salary_min_month"].to_numpy(dtype=np.float64)
        pay_high = located["salary_max_month"].to_numpy(dtype=np.float64)
        return cls(
            title_ids=np.asarray(title_ids, dtype=np.intp),
            title_grams=grams,
            vocabulary=vocabulary,
            occupation_ids=np.asarray(occupation_ids, dtype=np.intp),
            occupation_codes=[str(code) for code in codes],
            education=located["education"].fillna(-1).to_numpy(dtype=np.int64),
            pay_max=np.where(np.isnan(pay_high), pay_low, pay_high),
            precision=precision_scores(located["precision"]),
        )


def _bigram_list(text: str) -> list[str]:
    return sorted(character_bigrams(text))


class BatchMatcher:
    """Top baseline matches of many seekers over one `JobIndex`.

    Parameters
    ----------
    index
        The recommender's index; candidates are its located postings, as in
        `JobIndex.for_commute` without city-level fill-ins.
    """

    def __init__(self, index: JobIndex) -> None:
        self.index = index
        self._postings = _PostingSide.of(index.located)
        self._occupation_tables: dict[str, FloatArray] = {}

    def top_matches(
        self,
        seekers: pd.DataFrame,
        top_k: int,
        *,
        modes: str | None = None,
        eligible: Eligibility | None = None,
        required: npt.NDArray[np.bool_] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> pd.DataFrame:
        """List each seeker's ``top_k`` best-scored postings within their commute limit.

        Parameters
        ----------
        seekers
            Seeker rows with ``seeker_id``, ``home_lon``/``home_lat`` (WGS84 degrees),
            ``max_commute_min``, ``modes`` and the profile columns `score_jobs` reads.
        top_k
            Matches kept per seeker.
        modes
            Travel modes for every seeker, such as ``"drive"``; by default each
            seeker's own ``modes`` (``"transit"`` when empty).
        eligible
            Called with the home longitudes and latitudes of a block (WGS84 degrees).
            It returns a mask over `JobIndex.located` of shape (homes, postings) or
            (postings,), and only postings in the mask are candidates.
        required
            Mask over `JobIndex.located`: a seeker who reaches none of these postings
            is not scored and gets no rows. It saves time when only matches to some
            employers count.
        progress
            Called as ``progress(done, total)`` with seekers after each block.

        Returns
        -------
        pandas.DataFrame
            `MATCH_COLUMNS`: ``rank`` 0 is the best, ``position`` is a row of
            `JobIndex.located`, ``estimated_commute_min`` is by the fastest allowed
            mode. Seekers in input order, then rank.
        """
        if top_k < 1:
            raise ValueError(f"top_k {top_k!r} is invalid; expected an integer >= 1")
        frames = [_empty_matches()]
        done = 0
        for block in _blocks(seekers, modes, len(self.index.located)):
            frames.append(self._block_matches(block, top_k, eligible, required))
            done += len(block.rows)
            if progress is not None:
                progress(done, len(seekers))
        matches = pd.concat(frames, ignore_index=True)
        order = pd.Index(seekers["seeker_id"].astype(str)).get_indexer(
            pd.Index(matches["seeker_id"])
        )
        keys = (matches["rank"].to_numpy(), order)
        return matches.iloc[np.lexsort(keys)].reset_index(drop=True)

    def _block_matches(
        self,
        block: "_Block",
        top_k: int,
        eligible: Eligibility | None,
        required: npt.NDArray[np.bool_] | None,
    ) -> pd.DataFrame:
        homes, home_of_row = np.unique(
            block.rows[["home_lon", "home_lat"]].to_numpy(dtype=np.float64),
            axis=0,
            return_inverse=True,
        )
        table = self.index.commute_table(
            homes[:, 0], homes[:, 1], block.max_commute_min, block.modes
        )
        reachable = np.isfinite(table.minutes)
        if eligible is not None:
            reachable &= np.broadcast_to(eligible(homes[:, 0], homes[:, 1]), reachable.shape)
        rows = home_of_row.reshape(-1)
        seekers = block.rows
        if required is not None:
            reaches_required = np.asarray((reachable & required[None, :]).any(axis=1))
            scored = reaches_required[rows]
            seekers, rows = seekers.loc[scored], rows[scored]
        if seekers.empty:
            return _empty_matches()
        columns = np.flatnonzero(reachable[np.unique(rows)].any(axis=0))
        minutes = table.minutes[rows][:, columns]
        scores = self.scores(seekers, columns, minutes)
        scores[~reachable[rows][:, columns]] = -np.inf
        tie_order = _TieOrder(
            minutes, table.distances[rows][:, columns], self.index.tree_rank[columns]
        )
        return _top_rows(seekers, columns, scores, tie_order, top_k)

    def scores(self, seekers: pd.DataFrame, positions: IntArray, minutes: FloatArray) -> FloatArray:
        """Compute the baseline score of postings for each seeker, as `score_jobs` does.

        Parameters
        ----------
        seekers
            Seeker rows.
        positions
            Rows of `JobIndex.located`.
        minutes
            Commute minutes, shape (seekers, positions).

        Returns
        -------
        numpy.ndarray
            Shape (seekers, positions): the ``score`` column of `score_jobs`.
        """
        side = self._postings
        components = {
            "score_distance": distance_scores(minutes),
            "score_occupation": self._occupation(seekers, positions),
            "score_keyword": self._keyword(seekers, positions),
            "score_education": _education(seekers, side.education[positions]),
            "score_salary": _salary(seekers, side.pay_max[positions]),
            "score_precision": side.precision[positions],
        }
        total = np.zeros((len(seekers), len(positions)), dtype=np.float64)
        for column, weight in WEIGHTS.items():
            total += weight * components[column]
        return np.clip(total, 0.0, 1.0)

    def _occupation(self, seekers: pd.DataFrame, positions: IntArray) -> FloatArray:
        side = self._postings
        wishes = seekers["occupation_wish_code"].fillna("").astype(str).to_numpy()
        distinct, inverse = np.unique(wishes, return_inverse=True)
        tables = np.vstack([self._occupation_table(str(wish)) for wish in distinct])
        return tables[inverse.reshape(-1)][:, side.occupation_ids[positions]]

    def _occupation_table(self, wish_code: str) -> FloatArray:
        """Score every distinct posting occupation code against one wish code, cached."""
        table = self._occupation_tables.get(wish_code)
        if table is None:
            codes = self._postings.occupation_codes
            table = np.array([_occupation_score(wish_code, code) for code in codes])
            self._occupation_tables[wish_code] = table
        return table

    def _keyword(self, seekers: pd.DataFrame, positions: IntArray) -> FloatArray:
        side = self._postings
        keyword_sets = [
            [grams for grams in map(character_bigrams, seeker_keywords(row)) if grams]
            for row in _records(seekers)
        ]
        counts = np.array([len(sets) for sets in keyword_sets], dtype=np.intp)
        flat = [grams for sets in keyword_sets for grams in sets]
        result = np.zeros((len(seekers), len(positions)), dtype=np.float64)
        if not flat:
            return result

        # Containment of a keyword in a title: shared bigrams over the keyword's bigrams.
        titles, title_inverse = np.unique(side.title_ids[positions], return_inverse=True)
        keyword_grams = _keyword_matrix(flat, side.vocabulary)
        shared = np.asarray((side.title_grams[titles] @ keyword_grams.T).todense())
        sizes = np.array([len(grams) for grams in flat], dtype=np.float64)
        containment = shared / sizes
        # Each seeker's keywords are adjacent columns, so reduceat takes the best per seeker.
        has_keywords = counts > 0
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])[has_keywords]
        per_title = np.maximum.reduceat(containment.T, starts, axis=0)
        result[has_keywords] = per_title[:, title_inverse.reshape(-1)]
        return result


@dataclass(frozen=True)
class _Block:
    """Seekers sharing travel modes and commute limit, scored together."""

    max_commute_min: float
    modes: list[str]
    rows: pd.DataFrame


class _TieOrder(NamedTuple):
    """The keys after the score: `JobIndex.for_commute` order by minutes, metres, tree rank."""

    minutes: FloatArray
    distances: FloatArray
    tree_rank: IntArray


def _blocks(seekers: pd.DataFrame, modes: str | None, n_postings: int) -> Iterator[_Block]:
    """Split seekers into blocks that share modes and commute limit, neighbours together."""
    if seekers.empty:
        return
    frame = seekers.assign(
        _modes=modes if modes is not None else seekers["modes"].fillna("").astype(str)
    )
    frame["_modes"] = frame["_modes"].where(frame["_modes"] != "", "transit")
    size = max(1, _BLOCK_CELLS // max(1, n_postings))
    for key, rows in frame.groupby(["_modes", "max_commute_min"], sort=False):
        mode_text, limit = key
        ordered = rows.sort_values(["home_lon", "home_lat"], kind="stable")
        for start in range(0, len(ordered), size):
            chunk = ordered.iloc[start : start + size]
            yield _Block(float(str(limit)), str(mode_text).split(";"), chunk)


def _top_rows(
    seekers: pd.DataFrame,
    positions: IntArray,
    scores: FloatArray,
    ties: _TieOrder,
    top_k: int,
) -> pd.DataFrame:
    """Take each row's ``top_k`` highest finite scores, ties in `JobIndex.for_commute` order."""
    frames = []
    n_columns = scores.shape[1]
    for row, seeker_id in enumerate(seekers["seeker_id"].astype(str)):
        row_scores = scores[row]
        n_kept = min(top_k, int(np.isfinite(row_scores).sum()))
        if n_kept == 0:
            continue
        # Everything at or above the k-th largest score is a contender.
        threshold = np.partition(row_scores, n_columns - n_kept)[n_columns - n_kept]
        above = np.flatnonzero(row_scores >= threshold)
        keys = (
            ties.tree_rank[above],
            ties.distances[row, above],
            ties.minutes[row, above],
            -row_scores[above],
        )
        best = above[np.lexsort(keys)][:n_kept]
        frames.append(
            pd.DataFrame(
                {
                    "seeker_id": seeker_id,
                    "rank": np.arange(n_kept),
                    "position": positions[best],
                    "estimated_commute_min": ties.minutes[row, best],
                    "score": row_scores[best],
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else _empty_matches()


def _empty_matches() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "seeker_id": pd.Series(dtype=object),
            "rank": pd.Series(dtype=np.intp),
            "position": pd.Series(dtype=np.intp),
            "estimated_commute_min": pd.Series(dtype=np.float64),
            "score": pd.Series(dtype=np.float64),
        }
    )


def _occupation_score(wish_code: str, posting_code: str) -> float:
    if not posting_code or not wish_code:
        return UNKNOWN_OCCUPATION_SCORE
    return OCCUPATION_SCORE_BY_SHARED_LEVELS[shared_occupation_levels(wish_code, posting_code)]


def _keyword_matrix(keywords: list[set[str]], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    """Build the binary keyword-by-bigram matrix over the titles' bigram vocabulary."""
    rows, columns = [], []
    for row, grams in enumerate(keywords):
        for gram in grams:
            column = vocabulary.get(gram)
            if column is not None:
                rows.append(row)
                columns.append(column)
    values = np.ones(len(rows), dtype=np.float64)
    shape = (len(keywords), len(vocabulary))
    return sparse.csr_matrix((values, (rows, columns)), shape=shape)


def _education(seekers: pd.DataFrame, required: npt.NDArray[np.int64]) -> FloatArray:
    levels = np.array([int(row.get("education", 0)) for row in _records(seekers)])
    gap = required[None, :] - levels[:, None]
    unknown = np.broadcast_to(required[None, :] < 0, gap.shape)
    met = (required[None, :] == 0) | (gap <= 0)
    scores = np.select(
        [unknown, met, gap == 1],
        [UNKNOWN_EDUCATION_SCORE, 1.0, EDUCATION_ONE_BELOW_SCORE],
        default=0.0,
    )
    return scores.astype(np.float64)


def _salary(seekers: pd.DataFrame, pay_max: FloatArray) -> FloatArray:
    wish_min = _wish(seekers, "salary_wish_min")
    wish_max = _wish(seekers, "salary_wish_max")
    wish_low = np.where(np.isnan(wish_min), wish_max, wish_min)[:, None]
    wish_high = np.where(np.isnan(wish_max), wish_min, wish_max)[:, None]
    width = np.maximum(wish_high - wish_low, SALARY_WIDTH_FLOOR)
    with np.errstate(invalid="ignore"):
        reach = np.clip((pay_max[None, :] - wish_low) / width, 0.0, 1.0)
    scores = np.where(np.isnan(pay_max)[None, :], UNKNOWN_SALARY_SCORE, reach)
    unknown_wish = (np.isnan(wish_min) & np.isnan(wish_max))[:, None]
    return np.where(unknown_wish, UNKNOWN_SALARY_SCORE, scores)


def _wish(seekers: pd.DataFrame, column: str) -> FloatArray:
    if column not in seekers.columns:
        return np.full(len(seekers), np.nan)
    return pd.to_numeric(seekers[column], errors="raise").to_numpy(dtype=np.float64)


def _records(seekers: pd.DataFrame) -> Iterable[dict[Any, Any]]:
    return seekers.to_dict("records")
