"""The ranking cascade: its stages, and the recommender's use of it with a real model."""

import copy
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from bench.nearby_jobs import train_bench_model
from matching.cascade import CascadeStage, RankingCascade, cascade_scores, top_rows
from matching.features import FEATURE_NAMES, build_features
from matching.recommend import Recommender
from matching.scoring import score_jobs
from models.serving import ModelScorer, serving_context
from store.sqlite import SqliteStore

FloatArray = npt.NDArray[np.float64]


@dataclass
class RecordingScorer:
    """Scores row ``i`` as ``values[i]`` with all trees, ``by_trees[t][i]`` with the first ``t``.

    A range of trees from ``start`` scores the difference of the two sums, as the trees of
    a real model add up. Calls are recorded as ``(start, trees, rows)``.
    """

    values: FloatArray
    by_trees: dict[int, FloatArray]
    tree_count: int = 10
    calls: list[tuple[int, int | None, int]] = field(default_factory=list)
    scored_rows: list[npt.NDArray[np.intp]] = field(default_factory=list)

    def predict_array(
        self, features: npt.NDArray[np.float32], trees: int | None = None, *, start: int = 0
    ) -> FloatArray:
        self.calls.append((start, trees, len(features)))
        rows = features[:, 0].astype(np.intp)
        self.scored_rows.append(rows)
        end = self.values if trees is None else self.by_trees[trees]
        begin = np.zeros_like(self.values) if start == 0 else self.by_trees[start]
        return end[rows] - begin[rows]


def _integer_scores(rng: np.random.Generator, count: int) -> FloatArray:
    """Return whole-number scores, so that sums of tree ranges are exact."""
    return rng.integers(-1_000_000, 1_000_000, size=count).astype(np.float64)


def _rows(count: int) -> npt.NDArray[np.float32]:
    return np.arange(count, dtype=np.float32).reshape(-1, 1)


def test_cascade_sizes_checked() -> None:
    with pytest.raises(ValueError, match="stage trees 0"):
        CascadeStage(trees=0, keep=10)
    with pytest.raises(ValueError, match="stage keep 0"):
        CascadeStage(trees=3, keep=0)
    with pytest.raises(ValueError, match="stages is empty"):
        RankingCascade(())
    with pytest.raises(ValueError, match=r"stage trees 3 .* previous stage's 3"):
        RankingCascade.of((3, 100), (3, 10))
    with pytest.raises(ValueError, match=r"stage keep 100 .* previous stage's 100"):
        RankingCascade.of((3, 100), (5, 100))


def test_default_cascade_screens_first() -> None:
    stages = RankingCascade().stages

    assert [(stage.trees, stage.keep) for stage in stages] == [(15, 15_000), (60, 4_000)]
    assert RankingCascade().label == "15 trees, 15000 > 60 trees, 4000"


def test_cascade_one_stage() -> None:
    rng = np.random.default_rng(1)
    scorer = RecordingScorer(_integer_scores(rng, 100), {3: _integer_scores(rng, 100)})

    stages = cascade_scores(scorer, _rows(100), RankingCascade.of((3, 10)))

    assert scorer.calls == [(0, 3, 100), (3, None, 10)]
    assert stages.stage_rows == (100,)
    assert list(stages.rows) == sorted(np.argsort(-scorer.by_trees[3])[:10])
    assert np.array_equal(stages.scores, scorer.values[stages.rows])


def test_cascade_two_stages() -> None:
    rng = np.random.default_rng(2)
    scorer = RecordingScorer(
        _integer_scores(rng, 200), {2: _integer_scores(rng, 200), 5: _integer_scores(rng, 200)}
    )

    stages = cascade_scores(scorer, _rows(200), RankingCascade.of((2, 50), (5, 10)))

    # Each call adds only the trees after the previous stage's.
    assert scorer.calls == [(0, 2, 200), (2, 5, 50), (5, None, 10)]
    assert stages.stage_rows == (200, 50)
    screened = np.sort(np.argsort(-scorer.by_trees[2])[:50])
    # The second stage scores exactly the rows the first kept, not the whole matrix.
    assert np.array_equal(np.sort(scorer.scored_rows[1]), screened)
    second = scorer.by_trees[5][screened]
    kept = np.sort(screened[np.argsort(-second)[:10]])
    assert np.array_equal(stages.rows, kept)
    assert np.array_equal(np.sort(scorer.scored_rows[2]), kept)
    assert np.array_equal(stages.scores, scorer.values[kept])


def test_screen_drops_second_stage_best() -> None:
    # Row 0 would win the second stage and the whole model, but the first stage ranks it
    # last, so a cascade that runs the first stage cannot return it.
    values = np.arange(100.0)
    values[0] = 1_000.0
    by_trees = {2: np.arange(100.0), 5: values.copy()}
    scorer = RecordingScorer(values, by_trees)

    screened = cascade_scores(scorer, _rows(100), RankingCascade.of((2, 50), (5, 10)))
    unscreened = cascade_scores(scorer, _rows(100), RankingCascade.of((5, 10)))

    assert 0 not in screened.rows
    assert 0 in unscreened.rows


def test_no_cascade_scores_all() -> None:
    scorer = RecordingScorer(np.arange(50.0), {})

    stages = cascade_scores(scorer, _rows(50), None)

    assert scorer.calls == [(0, None, 50)]
    assert stages.stage_rows == ()
    assert np.array_equal(stages.rows, np.arange(50))


def test_short_candidate_list_skips_stages() -> None:
    scorer = RecordingScorer(np.arange(50.0), {3: np.zeros(50), 5: np.zeros(50)})

    cascade_scores(scorer, _rows(50), RankingCascade.of((3, 50)))
    assert scorer.calls == [(0, None, 50)]

    scorer.calls.clear()
    stages = cascade_scores(scorer, _rows(50), RankingCascade.of((3, 60), (5, 20)))
    assert scorer.calls == [(0, 5, 50), (5, None, 20)]
    assert stages.stage_rows == (50,)


def test_small_model_skips_stages() -> None:
    scorer = RecordingScorer(np.arange(50.0), {2: np.zeros(50), 3: np.zeros(50)}, tree_count=3)

    cascade_scores(scorer, _rows(50), RankingCascade.of((3, 5)))
    assert scorer.calls == [(0, None, 50)]

    scorer.calls.clear()
    cascade_scores(scorer, _rows(50), RankingCascade.of((2, 20), (3, 5)))
    assert scorer.calls == [(0, 2, 50), (2, None, 20)]


def test_top_rows_keeps_ties() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.5, 0.2])

    assert list(top_rows(scores, 2)) == [1, 2, 3]
    assert list(top_rows(scores, 1)) == [1]
    assert list(top_rows(scores, 9)) == [0, 1, 2, 3, 4]


@dataclass(frozen=True)
class CountingScorer(ModelScorer):
    """A model scorer that records ``(start, trees, rows)`` of each `predict_array` call."""

    calls: list[tuple[int, int | None, int]] = field(default_factory=list)

    def predict_array(
        self, features: npt.NDArray[np.float32], trees: int | None = None, *, start: int = 0
    ) -> FloatArray:
        self.calls.append((start, trees, len(features)))
        return super().predict_array(features, trees, start=start)


SMALL_CASCADE = RankingCascade.of((3, 1_000), (8, 300))
SCREEN, SHORTLIST = SMALL_CASCADE.stages


@pytest.fixture(scope="module")
def model_recommender(full_store: SqliteStore) -> Recommender:
    base = Recommender.from_store(full_store)
    trained = train_bench_model(full_store, n_seekers=30, trees=30, seed=5)
    context = serving_context(base.postings, base.seekers, None)
    scorer = CountingScorer(trained.model, build_features, context)
    return Recommender(
        base.postings, base.seekers, base.district_names, scorer=scorer, cascade=SMALL_CASCADE
    )


def _far_reaching_seeker(recommender: Recommender) -> str:
    """Return a seeker who can reach more postings than fit in the shortlist."""
    for seeker_id, seeker in recommender.seekers.iterrows():
        reach = recommender.index.reachable(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            str(seeker["modes"]),
        )
        if len(reach.positions) > 2 * SCREEN.keep:
            return str(seeker_id)
    raise AssertionError("no seeker reaches enough postings for the cascade")


def _frame_page(recommender: Recommender, seeker_id: str) -> pd.DataFrame:
    """Rank with feature frames and the whole model on every candidate, the old path."""
    seeker = recommender.seeker(seeker_id)
    candidates = recommender.index.for_commute(
        float(seeker["home_lon"]),
        float(seeker["home_lat"]),
        float(seeker["max_commute_min"]),
        str(seeker["modes"]),
        min_results=20,
    )
    scored = score_jobs(seeker, candidates).reset_index(drop=True)
    assert recommender.scorer is not None
    return recommender._rank_by_model(recommender.scorer, seeker, scored, 20, "zh")


def test_recommend_runs_cascade(model_recommender: Recommender) -> None:
    scorer = model_recommender.scorer
    assert isinstance(scorer, CountingScorer)
    seeker_id = _far_reaching_seeker(model_recommender)
    scorer.calls.clear()

    _, ranked = model_recommender.recommend(seeker_id, 20)

    assert len(ranked) == 20
    assert scorer.calls[0][:2] == (0, SCREEN.trees)
    assert scorer.calls[0][2] > 2 * SCREEN.keep
    assert scorer.calls[1:] == [
        (SCREEN.trees, SHORTLIST.trees, SCREEN.keep),
        (SHORTLIST.trees, None, SHORTLIST.keep),
    ]


def test_cascade_page_has_whole_model_scores(model_recommender: Recommender) -> None:
    seeker_id = _far_reaching_seeker(model_recommender)
    seeker = model_recommender.seeker(seeker_id)

    _, ranked = model_recommender.recommend(seeker_id, 20)

    assert model_recommender.scorer is not None
    whole = model_recommender.scorer.score(seeker, ranked)
    assert np.allclose(ranked["model_score"].to_numpy(), whole, rtol=0, atol=1e-9)
    assert np.all(np.diff(ranked["model_score"].to_numpy()) <= 0)


def test_table_path_equals_frame_path(model_recommender: Recommender) -> None:
    whole_model = copy.copy(model_recommender)
    whole_model.cascade = None
    seeker_ids = [_far_reaching_seeker(model_recommender), *model_recommender.seekers.index[:5]]

    for seeker_id in seeker_ids:
        _, fast = whole_model.recommend(str(seeker_id), 20)
        slow = _frame_page(whole_model, str(seeker_id))

        assert list(fast["posting_id"]) == list(slow["posting_id"]), seeker_id
        assert np.allclose(fast["model_score"], slow["model_score"], rtol=0, atol=1e-9)
        assert np.allclose(fast["score"], slow["score"], rtol=0, atol=1e-12)
        assert list(fast["reasons"]) == list(slow["reasons"]), seeker_id
        assert set(fast.columns) == set(slow.columns)


def test_refresh_rebuilds_feature_table(model_recommender: Recommender) -> None:
    recommender = Recommender(
        model_recommender.postings,
        model_recommender.seekers,
        model_recommender.district_names,
        scorer=model_recommender.scorer,
        cascade=SMALL_CASCADE,
    )
    recommender.prepare_ranking()
    before = recommender._feature_table
    assert before is not None
    posting = recommender.index.located.iloc[0]

    recommender.refresh_anchor(
        str(posting["anchor_id"]),
        lon=float(posting["lon"]) + 0.001,
        lat=float(posting["lat"]),
        precision="exact",
        district_code=posting["district_code"],
    )

    after = recommender._feature_table
    assert after is not None
    assert after[0] is recommender.index
    assert after[2] is not before[2]
    located = recommender.index.located
    row = int(np.flatnonzero(located["posting_id"] == posting["posting_id"])[0])
    precision_rank = FEATURE_NAMES.index("location_precision_rank")
    assert after[2].matrix[row, precision_rank] == 6.0


def test_tree_ranges_add_up(model_recommender: Recommender) -> None:
    scorer = model_recommender.scorer
    assert isinstance(scorer, CountingScorer)
    table = model_recommender._table_for(model_recommender.index, scorer)
    assert table is not None
    seeker = model_recommender.seeker(_far_reaching_seeker(model_recommender))
    reach = model_recommender.index.reachable(
        float(seeker["home_lon"]),
        float(seeker["home_lat"]),
        float(seeker["max_commute_min"]),
        str(seeker["modes"]),
    )
    features = table.features(seeker, reach.positions, reach.distances, reach.minutes)

    whole = scorer.predict_array(features)
    pieces = [
        scorer.predict_array(features, SCREEN.trees),
        scorer.predict_array(features, SHORTLIST.trees, start=SCREEN.trees),
        scorer.predict_array(features, start=SHORTLIST.trees),
    ]

    assert np.allclose(whole, scorer.predict(pd.DataFrame(features, columns=FEATURE_NAMES)))
    assert np.allclose(pieces[0] + pieces[1] + pieces[2], whole, rtol=0, atol=1e-12)
    assert not np.allclose(pieces[0], whole)


def test_tree_range_checked(model_recommender: Recommender) -> None:
    scorer = model_recommender.scorer
    assert isinstance(scorer, CountingScorer)
    features = np.zeros((2, len(FEATURE_NAMES)), dtype=np.float32)

    with pytest.raises(ValueError, match=r"tree range 5\.\.5 is invalid"):
        scorer.predict_array(features, 5, start=5)
    with pytest.raises(ValueError, match=r"tree range 0\.\.31 is invalid; .* <= 30"):
        scorer.predict_array(features, 31)
