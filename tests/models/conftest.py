"""Fixtures of the model tests: a synthetic training frame shaped like ``TrainingData``."""

import pytest

from tests.models.synthetic import SyntheticTrainingData, make_training_data


@pytest.fixture(scope="session")
def training_data() -> SyntheticTrainingData:
    """600 synthetic queries of 20 impressions over 60 days; labels depend on the features."""
    return make_training_data()
