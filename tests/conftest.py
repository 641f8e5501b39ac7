"""Fixtures shared by every test package."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real Xi'an data folder: ``DOORSTEP_DATA_DIR`` or ``../shared/data`` beside the clone."""
    path = Path(os.environ.get("DOORSTEP_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "README.md").is_file():
        pytest.fail(f"data folder {path} not found; set DOORSTEP_DATA_DIR")
    return path
