"""A small synthetic training frame in the shape of ``models.dataset.TrainingData``.

The labels are drawn from a made-up utility of a few features plus noise, with a
different taste per seeker group, so a model can learn something that the
baseline columns capture only in part. As in the simulation, ``label_if_examined``
is that draw and the logged ``label`` keeps it only where the seeker looked:
a logging policy orders each query by the baseline score with noise, and position
``k`` is looked at with chance ``1/k``. Nothing here comes from the simulation of
``models.simulation``; it exists so the ranker can be tested on its own.
"""

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

GROUPS = ("graduate", "talent", "assistance", "general")

FEATURE_NAMES = (
    "commute_min",
    "distance_m",
    "text_relevance",
    "occupation_shared_levels",
    "salary_fit",
    "education_gap",
    "posting_age_days",
    "is_traineeship",
    "is_public_welfare",
    "key_enterprise",
)

IMPRESSIONS_PER_QUERY = 20


@dataclass(frozen=True)
class SyntheticTrainingData:
    """Mirrors the fields of ``models.dataset.TrainingData``."""

    frame: pd.DataFrame
    feature_names: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    simulated: bool = True
    unshown: pd.DataFrame | None = None


def make_training_data(
    n_queries: int = 600, n_postings: int = 500, n_days: int = 60, seed: int = 3
) -> SyntheticTrainingData:
    """Build ``n_queries`` queries of 20 impressions each over ``n_days`` days."""
    rng = np.random.default_rng(seed)
    rows = n_queries * IMPRESSIONS_PER_QUERY

    n_seekers = n_queries // 3 + 1
    seeker_group = np.array(GROUPS)[rng.integers(0, len(GROUPS), size=n_seekers)]
    # Distinct (seeker, day) pairs, so every query id is unique, as in the real data.
    pairs = rng.choice(n_seekers * n_days, size=n_queries, replace=False)
    query_seeker_index, query_day_offset = np.divmod(pairs, n_days)
    query_seeker = np.array([f"sim-{i:06d}" for i in query_seeker_index])
    query_group = seeker_group[query_seeker_index]
    query_day = np.datetime64("2018-03-01") + query_day_offset.astype("timedelta64[D]")
    query_ids = np.array(
        [f"{s}@{np.datetime_as_string(d)}" for s, d in zip(query_seeker, query_day, strict=True)]
    )

    features = _features(rng, rows)
    group = np.repeat(query_group, IMPRESSIONS_PER_QUERY)
    utility = _utility(features, group) + rng.normal(0.0, 0.6, size=rows)
    label_if_examined = np.digitize(utility, [1.9, 2.5, 3.0, 3.5]).astype(np.int8)
    baseline = _baseline(features, rng)
    position = _logged_positions(baseline + rng.normal(0.0, 0.05, size=rows))
    examined = rng.random(rows) < 1.0 / position

    frame = pd.DataFrame(
        {
            "query_id": np.repeat(query_ids, IMPRESSIONS_PER_QUERY),
            "seeker_id": np.repeat(query_seeker, IMPRESSIONS_PER_QUERY),
            "posting_id": np.array([f"p{i:05d}" for i in rng.integers(0, n_postings, rows)]),
            "group": group,
            "query_time": np.repeat(query_day, IMPRESSIONS_PER_QUERY).astype("datetime64[ns]"),
            "position": position.astype(np.int16),
            "label": np.where(examined, label_if_examined, 0).astype(np.int8),
            "label_if_examined": label_if_examined,
        }
    )
    for name in FEATURE_NAMES:
        frame[name] = features[name].astype(np.float32)
    frame["baseline_score"] = baseline
    frame["distance_m"] = features["distance_m"].astype(np.float64)
    frame["commute_min"] = features["commute_min"].astype(np.float64)
    frame["text_relevance"] = features["text_relevance"].astype(np.float64)

    frame = frame.sort_values(
        ["query_time", "query_id", "position"], kind="stable", ignore_index=True
    )
    return SyntheticTrainingData(frame, FEATURE_NAMES, {"seed": seed, "n_queries": n_queries})


def _logged_positions(policy_score: np.ndarray) -> np.ndarray:
    """Return the 1-based position of each row when every query is ordered by ``policy_score``."""
    by_query = policy_score.reshape(-1, IMPRESSIONS_PER_QUERY)
    order = np.argsort(-by_query, axis=1, kind="stable")
    position: np.ndarray = np.empty(order.shape, dtype=np.int64)
    ranks = np.broadcast_to(np.arange(1, IMPRESSIONS_PER_QUERY + 1), order.shape)
    np.put_along_axis(position, order, ranks, axis=1)
    return position.ravel()


def _features(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    distance = rng.gamma(2.0, 4_000.0, size=rows)
    distance[rng.random(rows) < 0.1] = np.nan
    commute = np.where(np.isnan(distance), 60.0, 5.0 + distance / 250.0)
    return {
        "commute_min": commute,
        "distance_m": distance,
        "text_relevance": rng.beta(1.5, 3.0, size=rows),
        "occupation_shared_levels": rng.integers(0, 5, size=rows).astype(np.float64),
        "salary_fit": rng.uniform(0.0, 1.0, size=rows),
        "education_gap": rng.integers(-2, 3, size=rows).astype(np.float64),
        "posting_age_days": rng.uniform(0.0, 90.0, size=rows),
        "is_traineeship": (rng.random(rows) < 0.15).astype(np.float64),
        "is_public_welfare": (rng.random(rows) < 0.1).astype(np.float64),
        "key_enterprise": (rng.random(rows) < 0.2).astype(np.float64),
    }


def _utility(features: dict[str, np.ndarray], group: np.ndarray) -> np.ndarray:
    commute_weight = np.where(group == "assistance", 0.05, 0.02)
    utility = (
        1.6
        - commute_weight * features["commute_min"]
        + 1.8 * features["text_relevance"]
        + 0.3 * features["occupation_shared_levels"]
        - 0.4 * np.maximum(features["education_gap"], 0.0)
        - 0.01 * features["posting_age_days"]
    )
    utility += np.where(
        group == "talent", 1.5 * features["salary_fit"], 0.5 * features["salary_fit"]
    )
    utility += np.where(group == "graduate", 1.2 * features["is_traineeship"], 0.0)
    utility += np.where(group == "assistance", 1.2 * features["is_public_welfare"], 0.0)
    utility += np.where(group == "talent", 0.8 * features["key_enterprise"], 0.0)
    return utility


def _baseline(features: dict[str, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    commute = features["commute_min"]
    score = (
        0.4 * np.exp(-commute / 20.0)
        + 0.3 * features["occupation_shared_levels"] / 4.0
        + 0.1 * features["text_relevance"]
        + 0.2 * features["salary_fit"]
    )
    return score + rng.normal(0.0, 0.05, size=len(commute))
