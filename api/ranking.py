"""Selection of the ranker the service uses: the newest valid registry model, else the baseline."""

import logging
import time
from dataclasses import dataclass, replace
from typing import Literal

from api.settings import ModelSettings, Settings
from matching.cascade import ArrayScorer
from matching.push_ranking import FanoutRanker, LoadedValues
from matching.recommend import Recommender
from models.registry import ModelRegistry, development_model_key
from models.serving import ModelScorer, serving_context
from store.base import ReadStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankerStatus:
    """The ranker state that ``/health`` reports: kind, model id and reason."""

    kind: Literal["lightgbm", "baseline"]
    model_id: str | None
    reason: str


def model_key(settings: Settings) -> bytes:
    """Return the HMAC key of the model registry: DOORSTEP_MODEL_KEY, else the development key.

    Raises
    ------
    ValueError
        In production without DOORSTEP_MODEL_KEY; ``Settings`` rejects that already.
    """
    if settings.model.model_key is not None:
        return settings.model.model_key.get_secret_value().encode()
    if settings.auth.environment == "production":
        raise ValueError("DOORSTEP_MODEL_KEY is missing in production")
    return development_model_key(settings.model.model_key_path)


def open_registry(settings: Settings) -> ModelRegistry:
    """Open the registry folder of ``settings.model.model_dir`` with the model key."""
    return ModelRegistry(settings.model.model_dir, model_key(settings))


def load_ranker(settings: Settings) -> tuple[RankerStatus, ModelScorer | None]:
    """Load the newest valid model, or report why the baseline score stays in use."""
    options: ModelSettings = settings.model
    if not options.model_dir.is_dir():
        reason = f"no model registry at {options.model_dir}; run `doorstep train`"
        logger.info("ranker: baseline score (%s)", reason)
        return RankerStatus("baseline", None, reason), None

    try:
        from matching.features import FEATURE_NAMES, build_features
    except ImportError as err:
        reason = f"feature builder matching.features cannot be imported: {err}"
        logger.warning("ranker: baseline score (%s)", reason)
        return RankerStatus("baseline", None, reason), None

    model, skipped = open_registry(settings).newest_valid(FEATURE_NAMES)
    if model is None:
        reason = f"no valid model in {options.model_dir} ({len(skipped)} skipped)"
        logger.warning("ranker: baseline score (%s)", reason)
        return RankerStatus("baseline", None, reason), None

    reason = f"newest valid model in {options.model_dir}"
    if skipped:
        reason += f"; {len(skipped)} models failed the checks and were skipped, see the log"
    logger.info("ranker: model %r loaded from %s", model.model_id, model.path)
    return RankerStatus("lightgbm", model.model_id, reason), ModelScorer(model, build_features)


def with_serving_context(
    scorer: ModelScorer | None, store: ReadStore, recommender: Recommender
) -> ModelScorer | None:
    """Return the scorer with the posting context and age date it needs on the request path.

    Nothing is computed when no model is loaded, so the baseline start stays fast.
    """
    if scorer is None:
        return None
    from models.dataset import curated_anchors

    started = time.perf_counter()
    context = serving_context(recommender.postings, recommender.seekers, curated_anchors(store))
    logger.info(
        "ranker: posting context for %d postings in %.1f s, posting age measured at %s",
        len(context.posting_context),
        time.perf_counter() - started,
        context.as_of.date(),
    )
    return replace(scorer, context=context)


def fanout_ranker(
    status: RankerStatus, scorer: ModelScorer | None, loaded_values: LoadedValues | None = None
) -> tuple[RankerStatus, FanoutRanker | None]:
    """Return the push fan-out's ranker, the service's model, and its status for ``/health``.

    Without a model, or with one that cannot score a feature matrix, the fan-out keeps
    the baseline score and the status gives the reason. ``loaded_values`` returns the
    posting-only feature rows the recommender already built
    (`matching.recommend.Recommender.posting_feature_values`).
    """
    if scorer is None:
        return RankerStatus("baseline", None, f"no ranker model loaded: {status.reason}"), None
    if not isinstance(scorer, ArrayScorer):
        reason = f"model {scorer.model_id!r} cannot score a feature matrix"
        logger.warning("push fan-out: baseline score (%s)", reason)
        return RankerStatus("baseline", None, reason), None
    ranker = FanoutRanker(scorer, scorer.model_id, scorer.context, loaded_values=loaded_values)
    logger.info("push fan-out: ranker model %r", scorer.model_id)
    reason = "the model that orders recommendations"
    return RankerStatus("lightgbm", scorer.model_id, reason), ranker
