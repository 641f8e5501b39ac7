"""Serving rule: the learned score never reads a hardship flag, except in the assistance channel.

The ranker's features include ``seeker_is_assistance`` (the seeker is a registered
assistance target: 就业困难人员, persons with disabilities, zero-employment families
and so on). A tree model can learn any sign for it, so setting the flag could lower
the score of some jobs for a disabled or hard-to-employ seeker. The fairness audit
(`matching.fairness`) measured such drops with models trained on the simulated labels.

On the request path the model therefore scores an assistance target's candidates with
the flag cleared: ``seeker_is_assistance`` is 0 and ``group_policy_fit`` is 0, exactly
the values of the same seeker without the flag. The one place where the flag counts is
the explicit positive-assistance channel: for a public-welfare post (公益性岗位),
the model also scores the row with ``group_policy_fit`` 1, and the higher of the two
scores is kept. So no score is lower with the flag than without it. The hardship
category itself (``hardship_category``, encrypted at rest) is read by no feature.
"""

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from matching.features import FEATURE_NAMES

HARDSHIP_GROUP = "assistance"
FLAG_FEATURE = "seeker_is_assistance"
CHANNEL_FEATURE = "group_policy_fit"
WELFARE_FEATURE = "public_welfare_post"

_FLAG = FEATURE_NAMES.index(FLAG_FEATURE)
_CHANNEL = FEATURE_NAMES.index(CHANNEL_FEATURE)
_WELFARE = FEATURE_NAMES.index(WELFARE_FEATURE)


def has_hardship_flag(seeker: pd.Series) -> bool:
    """Return whether the seeker is a registered assistance target, the flag the model reads."""
    return str(seeker.get("group")) == HARDSHIP_GROUP


def blind_matrix(
    features: npt.NDArray[np.float32],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Return a copy of a `FEATURE_NAMES` matrix with the flag cleared, and the channel rows.

    Channel rows are the public-welfare posts, where `score_with_channel` may raise the score.
    """
    blind = features.copy()
    blind[:, _FLAG] = 0.0
    blind[:, _CHANNEL] = 0.0
    return blind, features[:, _WELFARE] == 1.0


def blind_frame(features: pd.DataFrame) -> tuple[pd.DataFrame, npt.NDArray[np.bool_]]:
    """Return a copy of a feature frame with the flag cleared, and the channel rows."""
    blind = features.copy()
    blind[FLAG_FEATURE] = np.float32(0.0)
    blind[CHANNEL_FEATURE] = np.float32(0.0)
    return blind, features[WELFARE_FEATURE].to_numpy() == 1.0


def score_with_channel(
    predict: Callable[[pd.DataFrame], npt.NDArray[np.float64]],
    features: pd.DataFrame,
) -> tuple[npt.NDArray[np.float64], pd.DataFrame]:
    """Score an assistance target's feature rows under the rule of this module.

    Parameters
    ----------
    predict
        The model's prediction of a feature frame.
    features
        The rows as built for the seeker, flag set.

    Returns
    -------
    tuple
        The scores, and the feature rows that gave each score (for the reasons).
    """
    blind, channel = blind_frame(features)
    scores = predict(blind)
    if not channel.any():
        return scores, blind
    rows = np.flatnonzero(channel)
    with_channel = blind.iloc[rows].assign(**{CHANNEL_FEATURE: np.float32(1.0)})
    raised = predict(with_channel)
    better = raised > scores[rows]
    scores[rows[better]] = raised[better]
    used = blind.copy()
    used.iloc[rows[better]] = with_channel.iloc[np.flatnonzero(better)].to_numpy()
    return scores, used
