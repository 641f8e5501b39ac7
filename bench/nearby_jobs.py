"""Nearby jobs for a seeker: candidates, model score, top 20 with reasons, JSON body.

The postings are **synthetic**: ``n_jobs`` rows resampled with replacement from the
real store's located postings, each point moved by a normal offset of
``JITTER_M`` metres per axis, with new ids ``syn-0000000`` onwards. Every other
column, the posting context included, is that of the source posting. The seekers are
the store's simulated seekers. The model is a LambdaRank model of fixed size,
trained here on simulated labels. Its quality does not matter, because only its tree count sets
the cost of predicting and of the contributions.

Three paths serve the same request, "the 20 best jobs within the seeker's commute
limit, with reasons, as a JSON body", for the same seekers:

- subject: `Recommender.recommend` as the service runs it (BallTree candidates as
  index arrays, features from the posting feature table, the ranking cascade of
  `matching.cascade`, LightGBM ``pred_contrib`` on the top 20,
  `matching.model_reasons`), then the API's presenters and pydantic's
  ``model_dump_json``;
- straightforward pipeline: a GeoDataFrame (EPSG:4545) ``distance`` filter with the
  same search radius, the same feature builder, LightGBM predict, shap's
  ``TreeExplainer`` on the top 20, the same reason mapping, and FastAPI's default
  encoding (``jsonable_encoder`` and ``JSONResponse.render``);
- limit probe: a float32 full scan of squared planar distances and LightGBM
  predict on the candidates' features, computed before timing. Nothing else.

Before timing, the subject without its cascade (the whole model on every candidate)
and the pipeline must rank the same top-20 ids for each seeker, and their TreeSHAP
values on the same rows must agree. The cascade's fidelity is then measured against
the whole model on the same seekers, for several shortlist sizes: overlap@20 (the
share of the whole model's top 20 that the cascade also returns) and NDCG@20 (the
cascade's top 20 graded by each posting's place in the whole model's top 20, 20 for
the first down to 1 for the 20th, linear gain).
"""

import copy
import gc
import logging
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api.presenters import jobs as job_bodies
from api.presenters import seeker_detail
from api.schemas import Recommendations
from bench.result import SPEED_UP, Comparison, ResultMismatchError, latency_comparison
from bench.timing import percentile
from geo.crs import haversine_m, to_metric
from geo.location import Precision
from geo.regions import Regions
from matching.candidates import StraightLineCommute, parse_modes
from matching.cascade import DEFAULT_STAGES, CascadeStage, RankingCascade, cascade_scores
from matching.features import FEATURE_NAMES, build_features
from matching.model_reasons import model_reasons
from matching.recommend import Recommender
from matching.scoring import score_jobs
from models.compiled import CompiledTrees, cascade_ranges, compile_tree_ranges, compiler_available
from models.registry import LoadedModel
from models.serving import ModelScorer, ServingContext, serving_context
from store.base import ReadStore

logger = logging.getLogger(__name__)

SUBJECT = "Recommender.recommend (feature table + cascade) + pred_contrib top 20 + model_dump_json"
PIPELINE = "GeoDataFrame.distance filter + predict + shap.TreeExplainer top 20 + FastAPI encoding"
PROBE = "limit probe: float32 full scan + LightGBM predict"

# Standard deviation, in metres per axis, of the offset given to a resampled posting.
JITTER_M = 300.0
# Page size of the request.
PAGE = 20
# Cascade sizes whose fidelity is measured, besides the service's default: one stage of
# each of FIRST_STAGE_TREES by SHORTLISTS, and each of SCREEN_TREES by SCREEN_KEEPS in
# front of the stage SCREENED_STAGE.
FIRST_STAGE_TREES = (20, 40, 60)
SHORTLISTS = (1_000, 2_000, 4_000)
SCREEN_TREES = (5, 10, 15)
SCREEN_KEEPS = (10_000, 15_000, 20_000)
SCREENED_STAGE = (40, 4_000)

Seconds = list[float]
_GEOMETRY_CRS = "EPSG:4545"


@dataclass(frozen=True)
class BenchModel:
    """The benchmark's model and the sizes it was trained with."""

    model: LoadedModel
    trees: int
    training_rows: int


def train_bench_model(
    store: ReadStore, *, n_seekers: int, trees: int, seed: int, work_dir: Path | None = None
) -> BenchModel:
    """Train a LambdaRank model of exactly ``trees`` trees on simulated labels.

    No early stopping, so the model's size, and with it the predict and TreeSHAP
    cost, is fixed by ``trees`` and not by how well the simulation can be learned.
    With ``work_dir``, the default cascade's tree ranges are compiled there as
    `doorstep train` compiles them into the registry, when gcc is available.
    """
    from models.dataset import build_training_data

    data = build_training_data(store, n_seekers=n_seekers, seed=seed, progress=False)
    frame = data.frame
    groups = frame.groupby("query_id", sort=False).size().to_numpy()
    ranker = lightgbm.LGBMRanker(
        objective="lambdarank",
        n_estimators=trees,
        num_leaves=31,
        min_child_samples=20,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )
    ranker.fit(frame.loc[:, list(FEATURE_NAMES)], frame["label"], group=groups)
    manifest = {"feature_names": list(FEATURE_NAMES), "simulated": True}
    compiled = _compiled_ranges(ranker.booster_, work_dir) if work_dir is not None else None
    model = LoadedModel("bench-model", Path("<in memory>"), manifest, ranker.booster_, compiled)
    return BenchModel(model, trees, len(frame))


def _compiled_ranges(booster: lightgbm.Booster, work_dir: Path) -> CompiledTrees | None:
    """Compile the default cascade's tree ranges as `doorstep train` does, or return None."""
    if not compiler_available():
        logger.warning("nearby_jobs: gcc not found; the subject predicts with LightGBM alone")
        return None
    boundaries = [stage.trees for stage in DEFAULT_STAGES]
    folder = work_dir / "compiled"
    entries = compile_tree_ranges(booster, cascade_ranges(boundaries, booster.num_trees()), folder)
    return CompiledTrees.load(folder, entries)


def synthetic_postings(real: pd.DataFrame, count: int, seed: int) -> pd.DataFrame:
    """Resample ``count`` located postings from ``real``, jittered by `JITTER_M`.

    Returns
    -------
    pandas.DataFrame
        Columns of ``real``, WGS84 ``lon``/``lat`` in degrees, ``posting_id``
        ``syn-0000000`` onwards, ``source_posting_id`` the resampled row and
        ``source`` ``"synthetic"``.
    """
    located = real.loc[real["precision"].astype(str) != Precision.CITY.value]
    located = located.loc[located["lon"].notna() & located["lat"].notna()]
    rng = np.random.default_rng(seed)
    rows = located.iloc[rng.integers(0, len(located), count)].reset_index(drop=True)

    metres_per_degree_lat = 111_320.0
    lat = rows["lat"].to_numpy(np.float64)
    metres_per_degree_lon = metres_per_degree_lat * np.cos(np.radians(lat))
    rows["lon"] = rows["lon"].to_numpy(np.float64) + rng.normal(0, JITTER_M, count) / (
        metres_per_degree_lon
    )
    rows["lat"] = lat + rng.normal(0, JITTER_M, count) / metres_per_degree_lat
    rows["source_posting_id"] = rows["posting_id"]
    rows["posting_id"] = [f"syn-{i:07d}" for i in range(count)]
    rows["source"] = "synthetic"
    return rows


def synthetic_context(real: ServingContext, postings: pd.DataFrame) -> ServingContext:
    """Give each synthetic posting the context of the posting it was resampled from."""
    context = real.posting_context.reindex(postings["source_posting_id"])
    context.index = pd.Index(postings["posting_id"], name="posting_id")
    return ServingContext(context, real.as_of)


def bench_nearby_jobs(
    store: ReadStore,
    recommender: Recommender,
    *,
    n_jobs: int,
    n_seekers: int,
    training_seekers: int,
    trees: int,
    seed: int,
    regions: Regions,
    warmup: int = 2,
) -> list[Comparison]:
    """Time the three paths for ``n_seekers`` seekers over ``n_jobs`` synthetic postings.

    Returns
    -------
    list of Comparison
        p50 and p99 of the subject against the pipeline, then against the probe,
        as speed-ups.

    Raises
    ------
    ResultMismatchError
        When the subject and the pipeline rank different top 20s, or their
        contributions differ.
    """
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="doorstep-bench-trees-") as work_dir:
        trained = train_bench_model(
            store, n_seekers=training_seekers, trees=trees, seed=seed, work_dir=Path(work_dir)
        )
    logger.info("nearby_jobs: model of %d trees trained in %.1f s", trees, _since(started))

    real_context = serving_context(recommender.postings, recommender.seekers, None)
    postings = synthetic_postings(recommender.postings, n_jobs, seed)
    scorer = ModelScorer(trained.model, build_features, synthetic_context(real_context, postings))
    subject = Recommender(postings, recommender.seekers, recommender.district_names, scorer=scorer)
    subject.prepare_ranking()
    # The same service without the cascade; it shares the index and the feature table.
    whole_model = copy.copy(subject)
    whole_model.cascade = None
    pipeline = StraightforwardPipeline(subject, scorer)
    # As the service's start-up does (api.app), for both paths alike.
    gc.collect()
    gc.freeze()
    rng = np.random.default_rng(seed)
    ids = recommender.seekers["seeker_id"].astype(str).to_numpy()
    seeker_ids = [str(i) for i in rng.choice(ids, size=min(n_seekers, len(ids)), replace=False)]

    checked = [_check_same(whole_model, pipeline, seeker_id) for seeker_id in seeker_ids]
    fidelity = cascade_fidelity(subject, seeker_ids)
    for seeker_id in seeker_ids[:warmup]:
        _subject_body(subject, regions, seeker_id)
    probe_inputs = [_probe_inputs(subject, pipeline, seeker_id) for seeker_id in seeker_ids]

    times: dict[str, Seconds] = {SUBJECT: [], PIPELINE: [], PROBE: []}
    for seeker_id, probe in zip(seeker_ids, probe_inputs, strict=True):
        clock = time.perf_counter()
        _subject_body(subject, regions, seeker_id)
        clock = _lap(times[SUBJECT], clock)
        pipeline.body(seeker_id)
        clock = _lap(times[PIPELINE], clock)
        pipeline.probe(*probe)
        _lap(times[PROBE], clock)

    details = {
        "synthetic_jobs": n_jobs,
        "seekers": len(seeker_ids),
        "model_trees": trained.trees,
        "model_training_rows": trained.training_rows,
        "mean_candidates": float(np.mean([len(p[0]) for p in probe_inputs])),
        "top20_checked_equal": sum(checked),
        "cascade": subject.cascade.label if subject.cascade else None,
        "compiled_tree_ranges": _compiled_labels(trained.model),
        "cascade_fidelity": fidelity,
        "stages_ms_p50": _stage_profile(subject, seeker_ids),
        "seconds": times,
    }
    gc.unfreeze()
    comparisons = []
    for baseline in (PIPELINE, PROBE):
        for q in (50.0, 99.0):
            comparisons.append(_comparison(q, baseline, times, details))
    return comparisons


class StraightforwardPipeline:
    """The same request built from the usual parts, without any of the subject's indexes."""

    def __init__(self, subject: Recommender, scorer: ModelScorer) -> None:
        self.recommender = subject
        self.scorer = scorer
        postings = subject.index._located
        self.postings = gpd.GeoDataFrame(
            postings,
            geometry=gpd.points_from_xy(postings["lon"], postings["lat"]),
            crs="EPSG:4326",
        ).to_crs(_GEOMETRY_CRS)
        x, y = to_metric(postings["lon"].to_numpy(), postings["lat"].to_numpy())
        self.x32, self.y32 = x.astype(np.float32), y.astype(np.float32)
        self.explainer: Any = None

    def candidates(self, seeker: pd.Series) -> pd.DataFrame:
        """Filter by planar distance with the subject's search radius, then keep the reachable."""
        lon, lat = float(seeker["home_lon"]), float(seeker["home_lat"])
        modes = parse_modes(str(seeker["modes"]))
        radius = max(
            self.recommender.index._reach_m(float(seeker["max_commute_min"]), m) for m in modes
        )
        x, y = to_metric(np.array([lon]), np.array([lat]))
        home = shapely.Point(float(x[0]), float(y[0]))
        # 1 % slack keeps the planar filter from dropping a posting that the
        # great-circle distance below keeps.
        near = self.postings.loc[self.postings.distance(home) <= radius * 1.01].copy()
        point_m = haversine_m(lon, lat, near["lon"].to_numpy(), near["lat"].to_numpy())
        uncertainty = near["uncertainty_m"].fillna(0.0).to_numpy(np.float64)
        near["distance_m"] = np.hypot(point_m, uncertainty)
        near["point_distance_m"] = point_m

        estimator = StraightLineCommute()
        minutes = np.vstack([estimator.minutes(near["distance_m"].to_numpy(), m) for m in modes])
        fastest = np.argmin(minutes, axis=0)
        near["estimated_commute_min"] = minutes[fastest, np.arange(len(near))]
        near["commute_mode"] = np.asarray(modes, dtype=object)[fastest]
        keep = near["estimated_commute_min"].to_numpy() <= float(seeker["max_commute_min"])
        near = near.loc[keep].drop(columns="geometry")
        order = np.lexsort(
            (near["distance_m"].to_numpy(), near["estimated_commute_min"].to_numpy())
        )
        return pd.DataFrame(near.iloc[order]).reset_index(drop=True)

    def ranked(self, seeker_id: str) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Return the seeker, the top 20 rows, their features and their SHAP values."""
        seeker = self.recommender.seeker(seeker_id)
        scored = score_jobs(seeker, self.candidates(seeker)).reset_index(drop=True)
        features = self.scorer.features(seeker, scored)
        scored["model_score"] = (
            self.scorer.model.booster.predict(features.loc[:, list(FEATURE_NAMES)], num_threads=1)
            if len(features)
            else np.zeros(0)
        )
        top = scored.sort_values("model_score", ascending=False, kind="stable").head(PAGE)
        top_features = features.loc[top.index].reset_index(drop=True)
        if top.empty:
            empty = pd.DataFrame(columns=list(FEATURE_NAMES), dtype=np.float64)
            return seeker, top.reset_index(drop=True), top_features, empty
        if self.explainer is None:
            # NOTE: shap 0.51 imports matplotlib colormaps with a call that matplotlib
            # marks as pending deprecation; the warning is about shap, not this code.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PendingDeprecationWarning)
                import shap

            self.explainer = shap.TreeExplainer(self.scorer.model.booster)
        values = self.explainer.shap_values(top_features)
        shap_frame = pd.DataFrame(np.asarray(values), columns=list(FEATURE_NAMES))
        return seeker, top.reset_index(drop=True), top_features, shap_frame

    def body(self, seeker_id: str) -> bytes:
        """Build the response body and encode it as FastAPI does by default."""
        seeker, top, features, shap_frame = self.ranked(seeker_id)
        reasons = model_reasons(top, features, shap_frame, seeker)
        texts = pd.Series([[reason.text for reason in row] for row in reasons], dtype=object)
        top = top.assign(reasons=texts)
        content = jsonable_encoder(
            {
                "seeker": seeker.to_dict(),
                "items": top.drop(columns=["categories"], errors="ignore").to_dict("records"),
                "simulated": True,
            }
        )
        return bytes(JSONResponse(content=_finite(content)).body)

    def probe(self, features: npt.NDArray[np.float32], home: tuple[float, float, float]) -> None:
        """Scan every posting's squared distance in float32 and predict the candidates."""
        x, y, radius = home
        inside = (self.x32 - x) ** 2 + (self.y32 - y) ** 2 <= radius * radius
        np.flatnonzero(inside)
        if len(features):
            self.scorer.model.booster.predict(features, num_threads=1)


def _subject_body(recommender: Recommender, regions: Regions, seeker_id: str) -> bytes:
    from geo.crs import CoordSys

    seeker, ranked = recommender.recommend(seeker_id, PAGE)
    body = Recommendations(
        seeker=seeker_detail(seeker, CoordSys.WGS84, recommender, regions, "zh"),
        items=job_bodies(ranked, CoordSys.WGS84, recommender, "zh"),
        simulated=bool(seeker["simulated"]),
    )
    return body.model_dump_json().encode()


def _check_same(subject: Recommender, pipeline: StraightforwardPipeline, seeker_id: str) -> bool:
    """Compare one seeker's top 20 and contributions; return whether the ids were compared."""
    _, ranked = subject.recommend(seeker_id, PAGE)
    _, top, features, shap_frame = pipeline.ranked(seeker_id)
    located = ranked["precision"].astype(str) != Precision.CITY.value
    if not located.all():
        # City-level fill-ins exist only on the subject's side (the synthetic postings
        # have none), so such a page cannot be compared.
        return False
    if list(ranked["posting_id"]) != list(top["posting_id"]):
        raise ResultMismatchError(
            f"seeker {seeker_id!r}: top {PAGE} differ between the subject and the pipeline"
        )
    contributions = pipeline.scorer.contributions(features).loc[:, list(FEATURE_NAMES)]
    if not np.allclose(contributions.to_numpy(), shap_frame.to_numpy(), atol=1e-6):
        raise ResultMismatchError(f"seeker {seeker_id!r}: pred_contrib and shap values differ")
    return True


def _probe_inputs(
    subject: Recommender, pipeline: StraightforwardPipeline, seeker_id: str
) -> tuple[npt.NDArray[np.float32], tuple[float, float, float]]:
    seeker = subject.seeker(seeker_id)
    candidates = pipeline.candidates(seeker)
    features = pipeline.scorer.features(seeker, candidates).to_numpy(np.float32)
    x, y = to_metric(np.array([float(seeker["home_lon"])]), np.array([float(seeker["home_lat"])]))
    modes = parse_modes(str(seeker["modes"]))
    radius = max(subject.index._reach_m(float(seeker["max_commute_min"]), m) for m in modes)
    return features, (float(x[0]), float(y[0]), radius)


def cascade_fidelity(
    subject: Recommender, seeker_ids: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Measure the cascade's top 20 against the whole model's, per cascade size.

    The sizes are `fidelity_grid` plus the subject's own. A seeker with no more reachable
    postings than a stage keeps skips that stage, and one whom no stage narrows is ranked
    by the whole model alone and counts as exact.

    Returns
    -------
    dict
        `RankingCascade.label` (such as ``"10 trees, 20000 > 40 trees, 4000"``) to mean
        and minimum overlap@20 and mean NDCG@20.
    """
    scorer = subject.scorer
    assert isinstance(scorer, ModelScorer) and subject.cascade is not None  # nosec B101 # type narrowing only
    table = subject._table_for(subject.index, scorer)
    assert table is not None  # nosec B101 # type narrowing only
    cascades = sorted(
        set(fidelity_grid()) | {subject.cascade},
        key=lambda cascade: [(stage.trees, stage.keep) for stage in cascade.stages],
    )
    overlaps: dict[RankingCascade, list[float]] = {cascade: [] for cascade in cascades}
    gains: dict[RankingCascade, list[float]] = {cascade: [] for cascade in cascades}
    for seeker_id in seeker_ids:
        seeker = subject.seeker(seeker_id)
        reach = subject.index.reachable(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            str(seeker["modes"]),
        )
        if len(reach.positions) == 0:
            continue
        features = table.features(seeker, reach.positions, reach.distances, reach.minutes)
        whole = scorer.predict_array(features)
        best = np.argsort(-whole, kind="stable")[:PAGE]
        for cascade in cascades:
            stages = cascade_scores(scorer, features, cascade)
            chosen = stages.rows[np.argsort(-stages.scores, kind="stable")[:PAGE]]
            overlaps[cascade].append(len(set(chosen) & set(best)) / len(best))
            gains[cascade].append(_ndcg(chosen, best))
    return {
        cascade.label: {
            "overlap_at_20_mean": float(np.mean(overlaps[cascade])) if overlaps[cascade] else 1.0,
            "overlap_at_20_min": float(np.min(overlaps[cascade])) if overlaps[cascade] else 1.0,
            "ndcg_at_20_mean": float(np.mean(gains[cascade])) if gains[cascade] else 1.0,
        }
        for cascade in cascades
    }


def fidelity_grid() -> list[RankingCascade]:
    """Return the cascades whose fidelity the benchmark measures.

    One stage of each `FIRST_STAGE_TREES` by `SHORTLISTS`, then each `SCREEN_TREES` by
    `SCREEN_KEEPS` stage in front of `SCREENED_STAGE`.
    """
    single = [
        RankingCascade((CascadeStage(trees, keep),))
        for trees in FIRST_STAGE_TREES
        for keep in SHORTLISTS
    ]
    screened = [
        RankingCascade((CascadeStage(trees, keep), CascadeStage(*SCREENED_STAGE)))
        for trees in SCREEN_TREES
        for keep in SCREEN_KEEPS
    ]
    return single + screened


def _ndcg(chosen: npt.NDArray[np.intp], best: npt.NDArray[np.intp]) -> float:
    """NDCG of ``chosen`` where the i-th of ``best`` (from 0) has gain ``len(best) - i``."""
    gain = {int(row): float(len(best) - i) for i, row in enumerate(best)}
    discounts = 1.0 / np.log2(np.arange(len(best)) + 2.0)
    ideal = float(np.sum(np.arange(len(best), 0, -1) * discounts))
    actual = sum(gain.get(int(row), 0.0) * float(discounts[i]) for i, row in enumerate(chosen))
    return float(actual / ideal)


def _stage_profile(subject: Recommender, seeker_ids: Sequence[str]) -> dict[str, float]:
    """Return the p50 milliseconds of each step of the subject, timed apart."""
    scorer = subject.scorer
    assert isinstance(scorer, ModelScorer)  # nosec B101 # type narrowing only
    table = subject._table_for(subject.index, scorer)
    assert table is not None  # nosec B101 # type narrowing only
    stages: dict[str, Seconds] = {
        "candidates": [],
        "features": [],
        "cascade": [],
        "contrib": [],
    }
    for seeker_id in seeker_ids:
        seeker = subject.seeker(seeker_id)
        clock = time.perf_counter()
        reach = subject.index.reachable(
            float(seeker["home_lon"]),
            float(seeker["home_lat"]),
            float(seeker["max_commute_min"]),
            str(seeker["modes"]),
        )
        clock = _lap(stages["candidates"], clock)
        features = table.features(seeker, reach.positions, reach.distances, reach.minutes)
        clock = _lap(stages["features"], clock)
        cascade_scores(scorer, features, subject.cascade)
        clock = _lap(stages["cascade"], clock)
        scorer.contributions(pd.DataFrame(features[:PAGE], columns=list(FEATURE_NAMES)))
        _lap(stages["contrib"], clock)
    return {name: percentile(values, 50.0) * 1000 for name, values in stages.items()}


def _compiled_labels(model: LoadedModel) -> list[str]:
    """Return the tree ranges the subject runs compiled, as ``"0..15"``; empty without gcc."""
    if model.compiled is None:
        return []
    return [f"{tree_range.start}..{tree_range.stop}" for tree_range in model.compiled.ranges]


def _lap(seconds: Seconds, started: float) -> float:
    now = time.perf_counter()
    seconds.append(now - started)
    return now


def _finite(value: Any) -> Any:
    """Replace NaN floats by None, as a JSON body needs; FastAPI would reject them."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _since(started: float) -> float:
    return time.perf_counter() - started


def _comparison(
    q: float, baseline: str, times: dict[str, Seconds], details: dict[str, Any]
) -> Comparison:
    return latency_comparison(
        "nearby_jobs",
        f"p{q:g} over {len(times[SUBJECT])} seekers",
        subject=SUBJECT,
        baseline=baseline,
        subject_s=percentile(times[SUBJECT], q),
        baseline_s=percentile(times[baseline], q),
        ratio_meaning=SPEED_UP,
        details=details,
    )
