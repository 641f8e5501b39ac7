"""Training data for the ranker: simulated impressions with their features and labels.

The labels are simulated (`models.simulation`): no interaction log of the bureau
exists yet. `TrainingData.simulated` is always True here, and every report built on
this data must state that its labels are simulated.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from geo.uncertainty import district_uncertainty_m, posting_uncertainty_m
from matching.candidates import NetworkCommuteEstimator
from matching.features import FEATURE_NAMES, build_features
from matching.posting_context import CURATED_STATES, attach_posting_context
from models.ranker import SplitError, split_chronologically
from models.simulation import UNSHOWN_POSITION, BehaviourParameters, simulate_interactions
from store.base import CurationStore, ReadStore

logger = logging.getLogger(__name__)

# Pairs whose features are computed at once; bounds the memory of one step.
FEATURE_CHUNK_PAIRS = 50_000

ID_COLUMNS = (
    "query_id",
    "seeker_id",
    "posting_id",
    "group",
    "query_time",
    "position",
    "label",
    "label_if_examined",
)
BASELINE_COLUMNS = ("baseline_score", "distance_m", "commute_min", "text_relevance")


@dataclass(frozen=True)
class TrainingData:
    """Simulated impressions with features, ready for a learning-to-rank model.

    Attributes
    ----------
    frame
        One row per (query, posting) impression. Columns in order: ``query_id``
        (``"<seeker_id>@<YYYY-MM-DD>"``), ``seeker_id``, ``posting_id``, ``group``,
        ``query_time`` (datetime64[ns], the session day), ``position`` (int16, the
        1-based position the logging policy showed the posting at), ``label`` (int8:
        0 shown, 1 clicked, 2 applied, 3 interviewed, 4 hired, as logged),
        ``label_if_examined`` (int8, the same scale with examination removed, see
        `models.behaviour.FunnelLabels`), one float32 column per feature name,
        then float64 ``baseline_score``, ``distance_m``, ``commute_min`` and
        ``text_relevance``. Rows of a query are contiguous;
        queries are sorted by ``query_time``, then ``query_id``.
    feature_names
        `matching.features.FEATURE_NAMES`, in model order.
    params
        The simulation parameters used, JSON-serialisable.
    simulated
        Always True: the labels come from the behaviour simulation.
    unshown
        The sessions' live pool postings that their pages did not show, in the columns
        and order of ``frame``, with ``position`` 0 and ``label`` 0 (see
        `models.simulation.simulate_interactions`), for the test period of
        `models.ranker.split_chronologically` only. The evaluation ranks them with the
        shown rows of the test period; training never reads them. None when not built.
    """

    frame: pd.DataFrame
    feature_names: tuple[str, ...]
    params: dict[str, Any]
    simulated: bool = True
    unshown: pd.DataFrame | None = None


def build_training_data(
    store: ReadStore,
    *,
    n_seekers: int | None,
    seed: int,
    progress: bool = True,
    network: NetworkCommuteEstimator | None = None,
    exact_homes: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> TrainingData:
    """Simulate sessions of store seekers on store postings and compute their features.

    Parameters
    ----------
    store
        A built store. Curated anchors' size and key-enterprise flags are read when
        the store also implements `store.base.CurationStore`.
    n_seekers
        Seekers drawn (without replacement, by ``seed``) from the store's seekers;
        None for all of them.
    seed
        Seed of the seeker draw and the simulation; the same store and seed give the
        same frame.
    progress
        Show tqdm bars for the simulation and the feature chunks when stderr is a
        terminal.
    network
        Transit network of the commute minutes (`geo.transit.TransitNetwork`). Pass the
        network the service uses, because then the commute feature has the same meaning
        in training and on the request path. None uses the straight-line model.
    exact_homes
        Decrypts the stored seekers' exact homes in memory
        (``api.security.seeker_pi.SeekerPiCodec.with_exact_homes``). None keeps the
        stored street office points as homes.

    Returns
    -------
    TrainingData
        Simulated labels with features; see `TrainingData` for the frame contract.
    """
    started = time.perf_counter()
    postings, seekers = _load_inputs(store, exact_homes)
    chosen = _draw_seekers(seekers, n_seekers, seed)

    params = BehaviourParameters()
    rows = simulate_interactions(
        postings,
        chosen,
        seed=seed,
        params=params,
        progress=progress,
        network=network,
        include_unshown=True,
    )
    rows = _ordered(_with_features(_drop_unshown_before_test(rows), postings, chosen, progress))
    shown = rows["position"].to_numpy() != UNSHOWN_POSITION
    frame = rows[shown].reset_index(drop=True)
    unshown = rows[~shown].reset_index(drop=True)
    logger.info(
        "training data: %d impressions and %d unshown candidates, %d queries, %d seekers "
        "in %.1f s (labels simulated)",
        len(frame),
        len(unshown),
        frame["query_id"].nunique(),
        len(chosen),
        time.perf_counter() - started,
    )
    return TrainingData(
        frame,
        FEATURE_NAMES,
        {
            "seed": seed,
            "n_seekers": len(chosen),
            "commute_model": "straight_line" if network is None else "transit_network",
            **params.to_dict(),
        },
        unshown=unshown,
    )


def _load_inputs(
    store: ReadStore, exact_homes: Callable[[pd.DataFrame], pd.DataFrame] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the postings with uncertainty and context columns, and every seeker."""
    postings = store.postings_frame()
    stored = store.seekers_frame()
    seekers = (
        (stored if exact_homes is None else exact_homes(stored))
        .sort_values("seeker_id", kind="stable")
        .reset_index(drop=True)
    )
    uncertainty = district_uncertainty_m(store.layer_frame("districts"))
    postings["uncertainty_m"] = posting_uncertainty_m(postings, uncertainty)
    postings = attach_posting_context(postings, seekers, curated_anchors(store))
    return postings, seekers


def curated_anchors(store: ReadStore) -> pd.DataFrame | None:
    """Read the curation fields of anchors that staff have curated, None when there are none."""
    if not isinstance(store, CurationStore):
        return None
    anchors = store.anchors_frame()
    curated_ids = anchors.loc[anchors["state"].astype(str).isin(CURATED_STATES), "anchor_id"]
    records = [store.get_anchor(str(anchor_id)) for anchor_id in curated_ids]
    rows = [
        {
            "anchor_id": record.anchor_id,
            "state": str(record.state),
            "size": None if record.size is None else str(record.size),
            "key_enterprise": record.key_enterprise,
            "above_scale_industrial": record.above_scale_industrial,
        }
        for record in records
        if record is not None
    ]
    return pd.DataFrame(rows) if rows else None


def _drop_unshown_before_test(rows: pd.DataFrame) -> pd.DataFrame:
    """Keep the unshown rows of the test period only: no other period reads them.

    The impressions decide the split, as in training, so the test period is the same.
    In a 2,000-seeker build, unshown rows of all periods were 3.5 times the impressions,
    and their features about doubled the build time. When the impressions cannot be
    split, all rows stay.
    """
    shown = rows["position"].to_numpy() != UNSHOWN_POSITION
    try:
        test_start = split_chronologically(rows[shown]).test_start
    except SplitError:
        return rows
    in_test = rows["query_time"].to_numpy() >= np.datetime64(test_start)
    kept: pd.DataFrame = rows[shown | in_test].reset_index(drop=True)
    return kept


def _draw_seekers(seekers: pd.DataFrame, n_seekers: int | None, seed: int) -> pd.DataFrame:
    if n_seekers is None or n_seekers >= len(seekers):
        return seekers
    if n_seekers < 1:
        raise ValueError(f"n_seekers {n_seekers!r} is invalid; expected at least 1 or None")
    rng = np.random.default_rng([seed, 1])
    rows = np.sort(rng.choice(len(seekers), n_seekers, replace=False))
    return seekers.iloc[rows].reset_index(drop=True)


def _with_features(
    impressions: pd.DataFrame, postings: pd.DataFrame, seekers: pd.DataFrame, progress: bool
) -> pd.DataFrame:
    """Join posting columns to the impressions and compute the features in chunks."""
    posting_columns = postings.drop(columns=["distance_m", "group"], errors="ignore")
    posting_columns = posting_columns.set_index("posting_id")
    pairs = impressions.join(posting_columns, on="posting_id")
    pairs["estimated_commute_min"] = pairs["commute_min"]
    pairs["distance_m"] = impressions["distance_m"]

    chunks = []
    starts = range(0, len(pairs), FEATURE_CHUNK_PAIRS)
    bar = tqdm(starts, desc="features", disable=None if progress else True, mininterval=1.0)
    for start in bar:
        chunk = pairs.iloc[start : start + FEATURE_CHUNK_PAIRS]
        chunks.append(build_features(seekers, chunk))
    features = (
        pd.concat(chunks) if chunks else pd.DataFrame(columns=list(FEATURE_NAMES), dtype=np.float32)
    )
    return pd.concat([impressions, features], axis=1)


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.sort_values(["query_time", "query_id", "position"], kind="stable")
    result = pd.DataFrame(
        {
            "query_id": frame["query_id"].astype(str),
            "seeker_id": frame["seeker_id"].astype(str),
            "posting_id": frame["posting_id"].astype(str),
            "group": frame["group"].astype(str),
            "query_time": pd.to_datetime(frame["query_time"]).astype("datetime64[ns]"),
            "position": frame["position"].astype(np.int16),
            "label": frame["label"].astype(np.int8),
            "label_if_examined": frame["label_if_examined"].astype(np.int8),
        }
    )
    for name in FEATURE_NAMES:
        result[name] = frame[name].astype(np.float32)
    result["baseline_score"] = frame["baseline_score"].astype(np.float64)
    result["distance_m"] = frame["distance_m"].astype(np.float64)
    result["commute_min"] = frame["commute_min"].astype(np.float64)
    result["text_relevance"] = frame["title_similarity"].astype(np.float64)
    return result.reset_index(drop=True)
