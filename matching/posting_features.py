"""Ranking features for the request path, from a table of posting-only values built once.

`matching.features.build_features` takes a frame of candidate rows and computes every
value from it, posting-only ones included, on each call. `PostingFeatureTable`
computes the posting-only values once per postings frame and posting context: a
float32 matrix in `FEATURE_NAMES` order, plus the arrays that seeker-dependent
features need (pay bounds, requirement levels, occupation code parts as integers,
a sparse title n-gram matrix). `PostingFeatureTable.features` then fills the
seeker-dependent columns with numpy over the candidates' row positions.

Training uses `build_features`, so both must give the same values; the tests compare
them column by column.
"""

import logging
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from matching.candidates import StraightLineCommute, parse_modes
from matching.features import (
    _SEEKER_COLUMNS,
    FEATURE_NAMES,
    build_features,
)
from matching.posting_context import CONTEXT_COLUMNS
from matching.scoring import SALARY_WIDTH_FLOOR, seeker_keywords
from matching.text_similarity import containment_grams, dice_grams

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Float32Matrix = npt.NDArray[np.float32]

# Columns whose value depends on the posting alone; `PostingFeatureTable` stores them.
POSTING_ONLY: tuple[str, ...] = (
    "location_precision_rank",
    "location_uncertainty_m",
    "occupation_confidence",
    "graduate_ok",
    "salary_mid_month",
    *CONTEXT_COLUMNS,
    "posting_age_days",
    "traineeship_post",
    "public_welfare_post",
    "talent_post",
)

# Slices of a CSCO 2022 code ``D-DD-DD-DD``: major, middle, minor and unit group.
_CODE_PARTS = ((0, 1), (2, 4), (5, 7), (8, 10))
_OCCUPATION_COLUMNS = (
    "occupation_same_major",
    "occupation_same_middle",
    "occupation_same_minor",
    "occupation_same_unit",
)
_COLUMN = {name: j for j, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class _OccupationCodes:
    """Distinct occupation codes split into part ids, and each posting's code row."""

    parts: npt.NDArray[np.int32]
    """Ids of the four parts of each distinct code, shape (codes, 4)."""
    part_ids: dict[str, int]
    known: npt.NDArray[np.bool_]
    """Whether each distinct code is a full 10-character code."""
    code_rows: npt.NDArray[np.intp]


@dataclass(frozen=True)
class _TitleGrams:
    """Distinct titles as a 0/1 matrix over character 1-2-grams, and each posting's title row."""

    matrix: sparse.csc_matrix
    sizes: FloatArray
    vocabulary: dict[str, int]
    title_rows: npt.NDArray[np.intp]


class PostingFeatureTable:
    """Posting-only feature values of a postings frame, computed once.

    Parameters
    ----------
    postings
        Located postings (`matching.candidates.JobIndex.located`); a position in
        `features` is a row of this frame.
    posting_context
        `CONTEXT_COLUMNS` indexed by ``posting_id``, as in
        `models.serving.ServingContext`. When None, the context columns are read
        from ``postings`` (NaN where absent), as `build_features` does.
    as_of
        Date posting age is measured at. When None, age is measured at today's date
        on each call, as `build_features` does without a date.
    """

    def __init__(
        self,
        postings: pd.DataFrame,
        posting_context: pd.DataFrame | None = None,
        as_of: pd.Timestamp | None = None,
    ) -> None:
        started = time.perf_counter()
        rows = postings.reset_index(drop=True)
        if posting_context is not None:
            known = posting_context.reindex(rows["posting_id"]).reset_index(drop=True)
            rows = pd.concat(
                [rows.drop(columns=list(CONTEXT_COLUMNS), errors="ignore"), known], axis=1
            )
        self.as_of = as_of
        self._published = rows["published_on"]
        self.matrix = self._posting_matrix(rows, as_of)

        self._education = _column(rows, "education")
        self._experience_min = _column(rows, "experience_min_years")
        self._experience_max = _column(rows, "experience_max_years")
        low, high = _column(rows, "salary_min_month"), _column(rows, "salary_max_month")
        self._pay_low = np.where(np.isnan(low), high, low)
        self._pay_high = np.where(np.isnan(high), low, high)
        self._codes = _occupation_codes(rows)
        self._titles = _title_grams(rows)
        column = self.matrix[
            :,
            [_COLUMN[name] for name in ("traineeship_post", "public_welfare_post", "talent_post")],
        ]
        self._traineeship, self._welfare, self._talent_post = (column == 1.0).T
        logger.info(
            "posting feature table: %d postings, %d distinct titles in %.1f s",
            len(rows),
            self._titles.matrix.shape[0],
            time.perf_counter() - started,
        )

    def __len__(self) -> int:
        return int(self.matrix.shape[0])

    def features(
        self,
        seeker: pd.Series,
        positions: npt.NDArray[np.intp],
        distances: FloatArray,
        minutes: FloatArray,
    ) -> Float32Matrix:
        """Compute `FEATURE_NAMES` for one seeker and the postings at ``positions``.

        Parameters
        ----------
        seeker
            A seeker row with the columns `build_features` reads.
        positions
            Rows of the postings frame.
        distances
            Metres to each posting, widened by its uncertainty (``distance_m``).
        minutes
            Commute minutes by the fastest allowed mode (``estimated_commute_min``).

        Returns
        -------
        numpy.ndarray
            float32 of shape (len(positions), len(FEATURE_NAMES)), columns in
            `FEATURE_NAMES` order, NaN where a value is unknown.
        """
        # np.take copies whole rows, several times faster than fancy indexing here.
        values = np.take(self.matrix, positions, axis=0)
        row = _seeker_row(seeker)
        self._fill_commute(values, row, distances, minutes)
        self._fill_occupation(values, row, positions)
        self._fill_text(values, row, positions)
        self._fill_requirements(values, row, positions)
        self._fill_group(values, row, positions)
        if self.as_of is None:
            values[:, _COLUMN["posting_age_days"]] = _age_days(
                self._published.iloc[positions], None
            )
        return values

    def _posting_matrix(self, rows: pd.DataFrame, as_of: pd.Timestamp | None) -> Float32Matrix:
        """Return the posting-only columns, computed by `build_features` itself.

        A blank seeker and NaN distances stand in for the seeker side. Only the
        columns of `POSTING_ONLY` are kept, so the stored values are those of training.
        """
        texts = ("seeker_id", "group", "occupation_wish_code", "occupation_wish_name", "keywords")
        stand_in = pd.DataFrame(
            [{name: "" if name in texts else np.nan for name in _SEEKER_COLUMNS}]
        )
        stand_in["seeker_id"] = "posting-only"
        stand_in["modes"] = "walk"
        candidates = rows.assign(distance_m=np.nan)
        if as_of is None:
            built = build_features(stand_in, candidates)
        else:
            built = build_features(stand_in, candidates, as_of=as_of)
        matrix = np.full((len(rows), len(FEATURE_NAMES)), np.nan, dtype=np.float32)
        for name in POSTING_ONLY:
            matrix[:, _COLUMN[name]] = built[name].to_numpy(dtype=np.float32)
        return matrix

    def _fill_commute(
        self, values: Float32Matrix, row: pd.DataFrame, distances: FloatArray, minutes: FloatArray
    ) -> None:
        modes = str(row["modes"].astype(str).iloc[0])
        allowed = set(parse_modes(modes or "transit"))
        estimator = StraightLineCommute()
        for mode in ("walk", "bike", "transit", "drive"):
            per_mode = estimator.minutes(distances, mode) if mode in allowed else np.nan
            values[:, _COLUMN[f"commute_{mode}_min"]] = per_mode

        limit = float(row["max_commute_min"].to_numpy(dtype=np.float64)[0])
        values[:, _COLUMN["commute_fastest_min"]] = minutes
        values[:, _COLUMN["commute_share_of_limit"]] = minutes / limit if limit > 0 else np.nan
        values[:, _COLUMN["straight_line_m"]] = distances
        values[:, _COLUMN["seeker_max_commute_min"]] = limit

    def _fill_occupation(
        self, values: Float32Matrix, row: pd.DataFrame, positions: npt.NDArray[np.intp]
    ) -> None:
        wish = str(row["occupation_wish_code"].fillna("").astype(str).str.strip().iloc[0])
        codes = self._codes
        # The four values depend only on the posting's code, so they are computed once per
        # distinct code and then copied to the candidates.
        known = codes.known & (len(wish) == 10)
        same = known.copy()
        by_code = np.empty((len(known), len(_CODE_PARTS)), dtype=np.float32)
        for level, (start, stop) in enumerate(_CODE_PARTS):
            wish_part = codes.part_ids.get(wish[start:stop], -1)
            same &= (codes.parts[:, level] == wish_part) & (
                wish_part != codes.part_ids.get("00", -2)
            )
            by_code[:, level] = np.where(known, same, np.nan)
        per_candidate = by_code[codes.code_rows[positions]]
        for level, name in enumerate(_OCCUPATION_COLUMNS):
            values[:, _COLUMN[name]] = per_candidate[:, level]

    def _fill_text(
        self, values: Float32Matrix, row: pd.DataFrame, positions: npt.NDArray[np.intp]
    ) -> None:
        """Dice and containment of each wish keyword against every distinct title, best kept."""
        keywords = seeker_keywords(row.iloc[0])
        dice = np.zeros(self._titles.matrix.shape[0], dtype=np.float64)
        contain = np.zeros_like(dice)
        for word in keywords:
            dice_set, contain_set = set(dice_grams(word)), set(containment_grams(word))
            overlap = self._overlap(dice_set)
            total = len(dice_set) + self._titles.sizes
            np.maximum(
                dice,
                np.divide(2.0 * overlap, total, out=np.zeros_like(dice), where=total > 0),
                out=dice,
            )
            if contain_set:
                np.maximum(contain, self._overlap(contain_set) / len(contain_set), out=contain)
        title_rows = self._titles.title_rows[positions]
        values[:, _COLUMN["title_similarity"]] = dice[title_rows]
        values[:, _COLUMN["keyword_containment"]] = contain[title_rows]

    def _overlap(self, grams: set[str]) -> FloatArray:
        """Return how many of ``grams`` each distinct title contains."""
        columns = [
            self._titles.vocabulary[gram] for gram in grams if gram in self._titles.vocabulary
        ]
        if not columns:
            return np.zeros(self._titles.matrix.shape[0], dtype=np.float64)
        picked = self._titles.matrix[:, columns].sum(axis=1)
        return np.asarray(picked, dtype=np.float64).ravel()

    def _fill_requirements(
        self, values: Float32Matrix, row: pd.DataFrame, positions: npt.NDArray[np.intp]
    ) -> None:
        required = self._education[positions]
        level = float(row["education"].to_numpy(dtype=np.float64)[0])
        unknown = np.isnan(required) | (required < 0)
        values[:, _COLUMN["education_shortfall_levels"]] = np.where(
            unknown, np.nan, np.clip(required - level, 0.0, None)
        )
        values[:, _COLUMN["education_surplus_levels"]] = np.where(
            unknown | (required == 0), np.nan, np.clip(level - required, 0.0, None)
        )

        years = float(row["experience_years"].to_numpy(dtype=np.float64)[0])
        values[:, _COLUMN["experience_shortfall_years"]] = np.clip(
            self._experience_min[positions] - years, 0.0, None
        )
        values[:, _COLUMN["experience_surplus_years"]] = np.clip(
            years - self._experience_max[positions], 0.0, None
        )

        wish_low = float(row["salary_wish_min"].to_numpy(dtype=np.float64)[0])
        wish_high = float(row["salary_wish_max"].to_numpy(dtype=np.float64)[0])
        if np.isnan(wish_low):
            wish_low = wish_high
        if np.isnan(wish_high):
            wish_high = wish_low
        high = self._pay_high[positions]
        width = max(wish_high - wish_low, SALARY_WIDTH_FLOOR)
        values[:, _COLUMN["salary_fit"]] = np.clip((high - wish_low) / width, 0.0, 1.0)
        values[:, _COLUMN["salary_ratio_top"]] = high / wish_low if wish_low > 0 else np.nan

    def _fill_group(
        self, values: Float32Matrix, row: pd.DataFrame, positions: npt.NDArray[np.intp]
    ) -> None:
        group = str(row["group"].astype(str).iloc[0])
        if group == "graduate":
            fit = self._traineeship[positions]
        elif group == "assistance":
            fit = self._welfare[positions]
        elif group == "talent":
            fit = self._talent_post[positions]
        else:
            fit = np.zeros(len(positions), dtype=bool)
        values[:, _COLUMN["group_policy_fit"]] = fit
        values[:, _COLUMN["seeker_is_graduate"]] = group == "graduate"
        values[:, _COLUMN["seeker_is_talent"]] = group == "talent"
        values[:, _COLUMN["seeker_is_assistance"]] = group == "assistance"


def _seeker_row(seeker: pd.Series) -> pd.DataFrame:
    """Return the seeker as the one-row frame that `build_features` reads."""
    frame = pd.DataFrame([seeker.to_dict()])
    missing = [column for column in _SEEKER_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"seeker lacks columns {missing}; expected {list(_SEEKER_COLUMNS)}")
    return frame.loc[:, list(_SEEKER_COLUMNS)]


def _column(frame: pd.DataFrame, name: str) -> FloatArray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)


def _age_days(published_on: pd.Series, as_of: pd.Timestamp | None) -> FloatArray:
    published = pd.to_datetime(published_on, errors="coerce", format="%Y-%m-%d")
    reference = pd.Timestamp.now() if as_of is None else pd.Timestamp(as_of)
    return np.asarray((reference.normalize() - published).dt.days, dtype=np.float64)


def _occupation_codes(rows: pd.DataFrame) -> _OccupationCodes:
    """Split each distinct occupation code into its four parts, as ids."""
    code_rows, distinct = pd.factorize(rows["occupation_code"].fillna("").astype(str).str.strip())
    codes = pd.Series(distinct, dtype=object)
    known = (codes.str.len() == 10).to_numpy(dtype=bool)
    part_ids: dict[str, int] = {}
    parts = np.empty((len(codes), len(_CODE_PARTS)), dtype=np.int32)
    for level, (start, stop) in enumerate(_CODE_PARTS):
        texts = codes.str.slice(start, stop)
        parts[:, level] = [part_ids.setdefault(text, len(part_ids)) for text in texts]
    return _OccupationCodes(parts, part_ids, known, np.asarray(code_rows, dtype=np.intp))


def _title_grams(rows: pd.DataFrame) -> _TitleGrams:
    codes, titles = pd.factorize(rows["title"].fillna("").astype(str))
    gram_sets = [set(dice_grams(title)) for title in titles]
    vocabulary: dict[str, int] = {}
    columns = [
        vocabulary.setdefault(gram, len(vocabulary)) for grams in gram_sets for gram in grams
    ]
    sizes = np.asarray([len(grams) for grams in gram_sets], dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    matrix = sparse.csr_matrix(
        (np.ones(len(columns), dtype=np.float64), np.asarray(columns, dtype=np.int64), starts),
        shape=(len(gram_sets), max(len(vocabulary), 1)),
    ).tocsc()
    return _TitleGrams(matrix, sizes, vocabulary, np.asarray(codes, dtype=np.intp))
