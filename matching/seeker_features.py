"""Ranking features of one posting against many seekers, for the push fan-out.

`matching.posting_features.PostingFeatureTable` serves one seeker against many
postings. The fan-out needs the transpose: one new posting against every seeker
within reach. `SeekerFeatureTable` computes the seeker-only values once per seekers
frame (commute limit, allowed modes, education, experience, pay wish, group, wish
code parts and a sparse matrix of wish-keyword n-grams). `SeekerFeatureTable.features`
then fills one (seeker, posting) row per seeker with numpy over their row positions,
with no Python loop over pairs. The posting-only columns come from a one-row
`PostingFeatureTable`, so they are computed by `build_features` itself.

Training uses `build_features`, so both must give the same values; the tests compare
them column by column.
"""

import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from matching.candidates import StraightLineCommute, parse_modes
from matching.features import _SEEKER_COLUMNS, FEATURE_NAMES
from matching.posting_features import PostingFeatureTable
from matching.scoring import SALARY_WIDTH_FLOOR, seeker_keywords
from matching.text_similarity import containment_grams, dice_grams

if TYPE_CHECKING:
    from models.serving import ServingContext

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Float32Matrix = npt.NDArray[np.float32]

TRAVEL_MODES = ("walk", "bike", "transit", "drive")
_COLUMN = {name: j for j, name in enumerate(FEATURE_NAMES)}
_CODE_PARTS = ((0, 1), (2, 4), (5, 7), (8, 10))
_OCCUPATION_COLUMNS = (
    "occupation_same_major",
    "occupation_same_middle",
    "occupation_same_minor",
    "occupation_same_unit",
)


class SeekerFeatureTable:
    """Seeker-only feature inputs of a seekers frame, computed once.

    Parameters
    ----------
    seekers
        Seekers with the columns of ``matching.features._SEEKER_COLUMNS``; a position
        in `features` is a row of this frame.

    Raises
    ------
    ValueError
        A seeker column is missing.
    """

    def __init__(self, seekers: pd.DataFrame) -> None:
        started = time.perf_counter()
        missing = [column for column in _SEEKER_COLUMNS if column not in seekers.columns]
        if missing:
            raise ValueError(f"seekers lacks columns {missing}; expected {list(_SEEKER_COLUMNS)}")
        rows = seekers.reset_index(drop=True)
        self._size = len(rows)

        modes = rows["modes"].astype(str)
        allowed = {value: set(parse_modes(value or "transit")) for value in modes.unique()}
        codes, distinct = pd.factorize(modes)
        self._mode_code = np.asarray(codes, dtype=np.intp)
        # Whether each distinct mode list allows a mode; a seeker's row is its list's code.
        self._mode_allowed = {
            mode: np.asarray([mode in allowed[value] for value in distinct], dtype=bool)
            for mode in TRAVEL_MODES
        }
        self._limit = rows["max_commute_min"].to_numpy(dtype=np.float64)
        self._education = rows["education"].to_numpy(dtype=np.float64)
        self._experience = rows["experience_years"].to_numpy(dtype=np.float64)
        wish_low = rows["salary_wish_min"].to_numpy(dtype=np.float64)
        wish_high = rows["salary_wish_max"].to_numpy(dtype=np.float64)
        self._wish_low = np.where(np.isnan(wish_low), wish_high, wish_low)
        self._wish_high = np.where(np.isnan(wish_high), wish_low, wish_high)
        group = rows["group"].astype(str).to_numpy()
        self._graduate = group == "graduate"
        self._talent = group == "talent"
        self._assistance = group == "assistance"
        # Seekers share wish codes, so codes are matched once per distinct code.
        wish_codes, distinct_wishes = pd.factorize(
            rows["occupation_wish_code"].fillna("").astype(str).str.strip()
        )
        self._wish_code = np.asarray(wish_codes, dtype=np.intp)
        self._wish_parts, self._wish_known = _code_parts(pd.Series(distinct_wishes, dtype=object))
        self._keywords = _KeywordGrams(rows)
        logger.info(
            "seeker feature table: %d seekers, %d distinct keywords in %.1f s",
            self._size,
            self._keywords.n_keywords,
            time.perf_counter() - started,
        )

    def __len__(self) -> int:
        return self._size

    def features(
        self,
        posting_values: npt.NDArray[np.float32],
        posting_row: Mapping[str, Any],
        positions: npt.NDArray[np.intp],
        distances: FloatArray,
        minutes: FloatArray,
    ) -> Float32Matrix:
        """Compute `FEATURE_NAMES` for one posting and the seekers at ``positions``.

        Parameters
        ----------
        posting_values
            The posting's row of a `PostingFeatureTable`: its posting-only columns, in
            `FEATURE_NAMES` order, as `posting_values` returns it.
        posting_row
            The same posting's row (``title``, ``occupation_code``, ``education``,
            experience and pay bounds).
        positions
            Rows of the seekers frame.
        distances
            Metres from each seeker's home to the posting, widened by its uncertainty.
        minutes
            Commute minutes of each seeker by their fastest allowed mode.

        Returns
        -------
        numpy.ndarray
            float32 of shape (len(positions), len(FEATURE_NAMES)), columns in
            `FEATURE_NAMES` order, NaN where a value is unknown.
        """
        values = np.repeat(posting_values.reshape(1, -1), len(positions), axis=0)
        if len(positions) == 0:
            return values
        self._fill_commute(values, positions, distances, minutes)
        self._fill_occupation(values, positions, posting_row)
        self._fill_text(values, positions, str(posting_row.get("title") or ""))
        self._fill_requirements(values, positions, posting_row)
        self._fill_group(values, positions, posting_values)
        return values

    def _fill_commute(
        self,
        values: Float32Matrix,
        positions: npt.NDArray[np.intp],
        distances: FloatArray,
        minutes: FloatArray,
    ) -> None:
        estimator = StraightLineCommute()
        mode_codes = self._mode_code[positions]
        for mode in TRAVEL_MODES:
            allowed = self._mode_allowed[mode][mode_codes]
            values[:, _COLUMN[f"commute_{mode}_min"]] = np.where(
                allowed, estimator.minutes(distances, mode), np.nan
            )
        limit = self._limit[positions]
        values[:, _COLUMN["commute_fastest_min"]] = minutes
        values[:, _COLUMN["commute_share_of_limit"]] = np.divide(
            minutes, limit, out=np.full(len(limit), np.nan), where=limit > 0
        )
        values[:, _COLUMN["straight_line_m"]] = distances
        values[:, _COLUMN["seeker_max_commute_min"]] = limit

    def _fill_occupation(
        self, values: Float32Matrix, positions: npt.NDArray[np.intp], posting: Mapping[str, Any]
    ) -> None:
        """Match the CSCO 2022 code parts ``D-DD-DD-DD`` level by level; ``00`` ends a code."""
        code = posting.get("occupation_code")
        code = "" if code is None or pd.isna(code) else str(code).strip()
        known = self._wish_known & (len(code) == 10)
        same = known.copy()
        wishes = self._wish_code[positions]
        for level, (name, (start, stop)) in enumerate(
            zip(_OCCUPATION_COLUMNS, _CODE_PARTS, strict=True)
        ):
            part = code[start:stop]
            same &= (self._wish_parts[:, level] == _part_number(part)) & (part != "00")
            values[:, _COLUMN[name]] = np.where(known, same, np.nan)[wishes]

    def _fill_text(
        self, values: Float32Matrix, positions: npt.NDArray[np.intp], title: str
    ) -> None:
        dice, contain = self._keywords.similarity(title, positions)
        values[:, _COLUMN["title_similarity"]] = dice
        values[:, _COLUMN["keyword_containment"]] = contain

    def _fill_requirements(
        self, values: Float32Matrix, positions: npt.NDArray[np.intp], posting: Mapping[str, Any]
    ) -> None:
        required = _number(posting.get("education"))
        level = self._education[positions]
        if np.isnan(required) or required < 0:
            values[:, _COLUMN["education_shortfall_levels"]] = np.nan
            values[:, _COLUMN["education_surplus_levels"]] = np.nan
        else:
            values[:, _COLUMN["education_shortfall_levels"]] = np.clip(required - level, 0.0, None)
            surplus = np.nan if required == 0 else np.clip(level - required, 0.0, None)
            values[:, _COLUMN["education_surplus_levels"]] = surplus

        years = self._experience[positions]
        min_years = _number(posting.get("experience_min_years"))
        max_years = _number(posting.get("experience_max_years"))
        values[:, _COLUMN["experience_shortfall_years"]] = np.clip(min_years - years, 0.0, None)
        values[:, _COLUMN["experience_surplus_years"]] = np.clip(years - max_years, 0.0, None)

        low = _number(posting.get("salary_min_month"))
        high = _number(posting.get("salary_max_month"))
        high = low if np.isnan(high) else high
        wish_low, wish_high = self._wish_low[positions], self._wish_high[positions]
        width = np.maximum(wish_high - wish_low, SALARY_WIDTH_FLOOR)
        values[:, _COLUMN["salary_fit"]] = np.clip((high - wish_low) / width, 0.0, 1.0)
        values[:, _COLUMN["salary_ratio_top"]] = np.divide(
            high, wish_low, out=np.full(len(wish_low), np.nan), where=wish_low > 0
        )

    def _fill_group(
        self,
        values: Float32Matrix,
        positions: npt.NDArray[np.intp],
        posting_values: npt.NDArray[np.float32],
    ) -> None:
        traineeship = bool(posting_values[_COLUMN["traineeship_post"]] == 1.0)
        welfare = bool(posting_values[_COLUMN["public_welfare_post"]] == 1.0)
        talent_post = bool(posting_values[_COLUMN["talent_post"]] == 1.0)
        graduate = self._graduate[positions]
        talent = self._talent[positions]
        assistance = self._assistance[positions]
        fit = (graduate & traineeship) | (assistance & welfare) | (talent & talent_post)
        values[:, _COLUMN["group_policy_fit"]] = fit
        values[:, _COLUMN["seeker_is_graduate"]] = graduate
        values[:, _COLUMN["seeker_is_talent"]] = talent
        values[:, _COLUMN["seeker_is_assistance"]] = assistance


def posting_values(
    posting: Mapping[str, Any], context: "ServingContext | None" = None
) -> npt.NDArray[np.float32]:
    """Return a posting's posting-only feature columns, for `SeekerFeatureTable.features`.

    They come from a one-row `PostingFeatureTable`. ``context`` is a
    `models.serving.ServingContext` or None, and a posting that is not in its posting
    context gets NaN context features.
    """
    frame = pd.DataFrame([dict(posting)])
    for column in ("published_on", "title", "precision"):
        if column not in frame.columns:
            frame[column] = None
    if context is None:
        table = PostingFeatureTable(frame)
    else:
        table = PostingFeatureTable(frame, context.posting_context, context.as_of)
    row: npt.NDArray[np.float32] = table.matrix[0]
    return row


class _KeywordGrams:
    """Each seeker's wish keywords as sparse n-gram rows, for scoring one title at a time.

    Dice and containment follow `matching.text_similarity.keyword_title_similarity`:
    per keyword, then the best keyword of each seeker, 0 for a seeker without one.
    """

    def __init__(self, rows: pd.DataFrame) -> None:
        # Seekers share wishes, so the keyword lists are parsed once per distinct text pair.
        texts = _as_text(rows["keywords"]) + "\x1f" + _as_text(rows["occupation_wish_name"])
        text_codes, distinct_texts = pd.factorize(texts)
        parsed = [
            tuple(seeker_keywords({"keywords": keywords, "occupation_wish_name": name}))
            for keywords, name in (text.split("\x1f", 1) for text in distinct_texts)
        ]
        list_codes, distinct_lists = pd.factorize(pd.Series(parsed, dtype=object)[text_codes])
        words = sorted({word for words in distinct_lists for word in words})
        self.n_keywords = len(words)
        self._list_codes = np.asarray(list_codes, dtype=np.intp)

        dice_sets = [set(dice_grams(word)) for word in words]
        contain_sets = [set(containment_grams(word)) for word in words]
        self._vocabulary: dict[str, int] = {}
        for grams in (*dice_sets, *contain_sets):
            for gram in grams:
                self._vocabulary.setdefault(gram, len(self._vocabulary))
        self._dice = _binary_matrix(dice_sets, self._vocabulary)
        self._contain = _binary_matrix(contain_sets, self._vocabulary)
        self._dice_sizes = np.asarray([len(grams) for grams in dice_sets], dtype=np.float64)
        self._contain_sizes = np.asarray([len(grams) for grams in contain_sets], dtype=np.float64)

        # Keyword ids of each distinct list, contiguous, for the best keyword per list.
        position = {word: i for i, word in enumerate(words)}
        self._list_sizes = np.asarray([len(words) for words in distinct_lists], dtype=np.intp)
        self._list_keywords = np.asarray(
            [position[word] for words in distinct_lists for word in words], dtype=np.intp
        )
        self._list_of_entry = np.repeat(np.arange(len(distinct_lists)), self._list_sizes)

    def similarity(
        self, title: str, positions: npt.NDArray[np.intp]
    ) -> tuple[FloatArray, FloatArray]:
        """Return (Dice, containment) of the best keyword of the seekers at ``positions``.

        Scores are computed once per distinct keyword list and only then spread to the
        seekers asked for, so the cost does not grow with the seekers not asked for.
        """
        title_grams = set(dice_grams(title))
        n_lists = len(self._list_sizes)
        dice_by_list = np.zeros(n_lists, dtype=np.float64)
        contain_by_list = np.zeros(n_lists, dtype=np.float64)
        if self.n_keywords:
            present = np.zeros(max(len(self._vocabulary), 1), dtype=np.float64)
            known = [self._vocabulary[gram] for gram in title_grams if gram in self._vocabulary]
            present[known] = 1.0
            dice_overlap = self._dice @ present
            total = self._dice_sizes + len(title_grams)
            dice = np.divide(2.0 * dice_overlap, total, out=np.zeros_like(total), where=total > 0)
            contain_overlap = self._contain @ present
            contain = np.divide(
                contain_overlap,
                self._contain_sizes,
                out=np.zeros_like(contain_overlap),
                where=self._contain_sizes > 0,
            )
            np.maximum.at(dice_by_list, self._list_of_entry, dice[self._list_keywords])
            np.maximum.at(contain_by_list, self._list_of_entry, contain[self._list_keywords])
        codes = self._list_codes[positions]
        return dice_by_list[codes], contain_by_list[codes]


def _binary_matrix(gram_sets: list[set[str]], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    columns = [vocabulary[gram] for grams in gram_sets for gram in grams]
    starts = np.cumsum([0, *(len(grams) for grams in gram_sets)])
    data = np.ones(len(columns), dtype=np.float64)
    shape = (len(gram_sets), max(len(vocabulary), 1))
    return sparse.csr_matrix((data, np.asarray(columns, dtype=np.int64), starts), shape=shape)


def _code_parts(codes: pd.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Return the four parts of each occupation code as numbers, and whether it is complete.

    A part that is not a number (a code of another shape) becomes -1, which no posting's
    part equals, as an unequal text part would.
    """
    texts = codes.fillna("").astype(str).str.strip()
    parts = np.full((len(texts), len(_CODE_PARTS)), -1, dtype=np.int64)
    for level, (start, stop) in enumerate(_CODE_PARTS):
        piece = texts.str.slice(start, stop)
        number = pd.to_numeric(piece.where(piece.str.fullmatch(r"\d+")), errors="coerce")
        parts[:, level] = number.fillna(-1).to_numpy(dtype=np.int64)
    return parts, (texts.str.len() == 10).to_numpy(dtype=bool)


def _part_number(part: str) -> int:
    """Return a code part as a number, -2 when it is not one (so it matches no seeker)."""
    return int(part) if part.isdigit() else -2


def _as_text(values: pd.Series) -> pd.Series:
    """Return each value as `matching.scoring.seeker_keywords` reads it, ``str(value or "")``.

    The rule turns NaN into the text ``nan``, as training did, so the values match it.
    """
    distinct = values.drop_duplicates()
    texts = pd.Series([str(value or "") for value in distinct], index=distinct, dtype=object)
    return values.map(texts).astype(str)


def _number(value: object) -> float:
    """Return ``value`` as a float, NaN when it is missing or not a number."""
    if value is None:
        return float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")
