"""Compare title-similarity measures on the labelled titles of the occupation test set.

For each labelled title whose expected code is a level-4 occupation, every level-4
occupation is scored by the best similarity of one of its names (name and aliases)
with the title, and the rank of the expected occupation is recorded. The output is
top-1 accuracy, top-1 accuracy at the 中类 and the mean reciprocal rank, where tied
occupations share the middle rank. jieba is compared when it is installed; it is not
a project dependency.

Run: ``.venv/bin/python -m bench.title_similarity [DATA_DIR]``
"""

import importlib
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse

from matching.occupation import load_occupations, load_testcases
from matching.text_similarity import containment_grams, dice_grams

Analyzer = Callable[[str], list[str]]
_MARKER = re.compile(r"[LS]$")
_SEPARATORS = re.compile(r"[,，、;；]")


def occupation_names(csco: pd.DataFrame) -> pd.DataFrame:
    """Return one row per (level-4 code, name or alias), edition markers removed."""
    rows: list[tuple[str, str]] = []
    for code, name, alias in csco.loc[csco["level"] == 4, ["code", "name", "alias"]].itertuples(
        index=False
    ):
        names = {_MARKER.sub("", name)}
        names |= {_MARKER.sub("", a.strip()) for a in _SEPARATORS.split(alias) if a.strip()}
        rows.extend((code, text) for text in names)
    return pd.DataFrame(rows, columns=["code", "text"])


def evaluate(
    analyzer: Analyzer, names: pd.DataFrame, titles: list[str], expected: list[str], dice: bool
) -> tuple[float, float, float]:
    """Return (top-1, top-1 at the 中类, mean reciprocal rank) of one measure."""
    vocabulary: dict[str, int] = {}
    name_grams = [set(analyzer(text)) for text in names["text"]]
    title_grams = [set(analyzer(text)) for text in titles]
    for grams in (*name_grams, *title_grams):
        for gram in grams:
            vocabulary.setdefault(gram, len(vocabulary))
    name_matrix = _binary(name_grams, vocabulary)
    title_matrix = _binary(title_grams, vocabulary)

    overlap = (title_matrix @ name_matrix.T).toarray()
    name_sizes = np.asarray(name_matrix.sum(axis=1)).ravel()
    title_sizes = np.asarray(title_matrix.sum(axis=1)).ravel()
    if dice:
        similarity = 2 * overlap / np.maximum(name_sizes[None, :] + title_sizes[:, None], 1)
    else:
        similarity = overlap / np.maximum(name_sizes, 1)[None, :]

    codes, code_of_name = np.unique(names["code"].to_numpy(), return_inverse=True)
    per_code = np.zeros((len(titles), len(codes)))
    np.maximum.at(per_code.T, code_of_name, similarity.T)
    position = {code: i for i, code in enumerate(codes)}
    target = np.asarray([position[code] for code in expected])

    best = per_code.argmax(axis=1)
    middle = np.asarray([code[:4] for code in codes])
    target_score = per_code[np.arange(len(titles)), target]
    higher = (per_code > target_score[:, None]).sum(axis=1)
    ties = (per_code == target_score[:, None]).sum(axis=1) - 1
    rank = higher + 0.5 * ties + 1
    return (
        float((best == target).mean()),
        float((middle[best] == middle[target]).mean()),
        float((1 / rank).mean()),
    )


def _binary(gram_sets: list[set[str]], vocabulary: dict[str, int]) -> sparse.csr_matrix:
    columns = [vocabulary[gram] for grams in gram_sets for gram in grams]
    starts = np.cumsum([0, *(len(grams) for grams in gram_sets)])
    data = np.ones(len(columns))
    return sparse.csr_matrix((data, columns, starts), shape=(len(gram_sets), len(vocabulary)))


def _measures() -> dict[str, tuple[Analyzer, bool]]:
    measures: dict[str, tuple[Analyzer, bool]] = {
        "char 2-gram containment (baseline)": (containment_grams, False),
        "char 1-2-gram Dice (chosen)": (dice_grams, True),
    }
    try:
        jieba = importlib.import_module("jieba")
    except ImportError:
        return measures
    jieba.setLogLevel(60)

    def tokens(text: str) -> list[str]:
        return [word for word in jieba.lcut(text.lower()) if word.strip()]

    measures["jieba tokens Dice"] = (tokens, True)
    measures["jieba tokens + char 2-grams Dice"] = (
        lambda text: tokens(text) + containment_grams(text),
        True,
    )
    return measures


def main(data_dir: Path) -> None:
    """Print the three figures for every measure."""
    names = occupation_names(load_occupations(data_dir))
    tests = load_testcases(data_dir)
    tests = tests.loc[tests["expected_code"].isin(set(names["code"]))]
    titles = tests["job_name"].str.lower().tolist()
    expected = tests["expected_code"].tolist()
    print(f"{len(titles)} labelled titles, {names['code'].nunique()} level-4 occupations")
    for label, (analyzer, dice) in _measures().items():
        top1, top1_middle, mrr = evaluate(analyzer, names, titles, expected, dice)
        print(f"{label:38s} top-1 {top1:.3f}  top-1 中类 {top1_middle:.3f}  MRR {mrr:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
