"""Title to occupation-code mapping, measured on the labelled test set."""

from pathlib import Path

import pandas as pd
import pytest

from matching.occupation import (
    OccupationClassifier,
    evaluate_occupation_classifier,
    hierarchy,
    load_occupations,
    load_testcases,
)

# Measured with this classifier on the 5,891 labelled rows of testcases.csv.
GOLDEN_ACCURACY = 0.414
GOLDEN_ACCURACY_MAJOR = 0.721
GOLDEN_ACCURACY_MIDDLE = 0.592


@pytest.fixture(scope="module")
def csco(data_dir: Path) -> pd.DataFrame:
    return load_occupations(data_dir)


@pytest.fixture(scope="module")
def classifier(csco: pd.DataFrame) -> OccupationClassifier:
    return OccupationClassifier().fit(csco)


def test_load_occupations_levels(csco: pd.DataFrame) -> None:
    assert len(csco) == 2_051
    assert csco["level"].value_counts().to_dict() == {1: 8, 2: 73, 3: 336, 4: 1_634}


def test_load_occupations_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"csco22\.csv"):
        load_occupations(tmp_path)


def test_hierarchy_full_code() -> None:
    assert hierarchy("2-02-10-03") == ["2-00-00-00", "2-02-00-00", "2-02-10-00", "2-02-10-03"]


def test_hierarchy_minor_group() -> None:
    assert hierarchy("2-08-02-00") == ["2-00-00-00", "2-08-00-00", "2-08-02-00"]


def test_hierarchy_rejects_bad_code() -> None:
    with pytest.raises(ValueError, match="2-0210-03"):
        hierarchy("2-0210-03")


def test_accuracy_on_testcases(data_dir: Path, classifier: OccupationClassifier) -> None:
    testcases = load_testcases(data_dir)

    report = evaluate_occupation_classifier(classifier, testcases)

    assert report.n == 5_891
    assert report.n_excluded == 12
    assert report.accuracy == pytest.approx(GOLDEN_ACCURACY, abs=0.01)
    assert report.accuracy_major == pytest.approx(GOLDEN_ACCURACY_MAJOR, abs=0.01)
    assert report.accuracy_middle == pytest.approx(GOLDEN_ACCURACY_MIDDLE, abs=0.01)


@pytest.mark.parametrize(
    ("title", "code_prefix"),
    [
        ("Python开发工程师", "2-02-10-03"),  # 计算机软件工程技术人员
        ("Java开发", "2-02-10-03"),
        ("会计", "2-06-03"),  # 会计专业人员
        ("导购", "4-01-02"),  # 销售人员
        ("营业员", "4-01-02-03"),  # 商品营业员
        ("销售代表", "4-01-02-01"),  # 营销员
        ("电话客服专员", "4-04-05-03"),  # 呼叫中心服务员
        ("急聘房地产经纪人", "4-06-02-01"),
    ],
)
def test_predict_real_titles(
    classifier: OccupationClassifier, title: str, code_prefix: str
) -> None:
    (match,) = classifier.predict([title])

    assert match.code.startswith(code_prefix), (match.code, match.name)
    assert 0.0 < match.score <= 1.0


def test_predict_exact_alias_scores_one(classifier: OccupationClassifier) -> None:
    (match,) = classifier.predict(["软件工程师"])

    assert match.code == "2-02-10-03"
    assert match.level == 4
    assert match.score == 1.0


def test_predict_below_min_score_is_empty(csco: pd.DataFrame) -> None:
    strict = OccupationClassifier(min_score=0.5).fit(csco)

    (match,) = strict.predict(["@@@"])

    assert match.code == ""
    assert match.level == 0


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        OccupationClassifier().predict(["会计"])
