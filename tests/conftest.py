"""Fixtures shared by every test package."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Fixture plugins shared by several test packages.
pytest_plugins = ["tests.fix_browser", "tests.fix_redis"]


@pytest.fixture(scope="session", autouse=True)
def empty_model_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point DOORSTEP_MODEL_DIR at an empty folder, so a model in var/models stays out of tests.

    The model key and the development personal-information keys go beside it, out of var/.
    """
    path = tmp_path_factory.mktemp("model-registry")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOORSTEP_MODEL_DIR", str(path))
        patch.setenv("DOORSTEP_MODEL_KEY_PATH", str(path.parent / "model_key"))
        patch.setenv("DOORSTEP_PI_KEY_PATH", str(path.parent / "pi_keys.json"))
        yield path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real Xi'an data folder: ``DOORSTEP_DATA_DIR`` or ``../shared/data`` beside the clone."""
    path = Path(os.environ.get("DOORSTEP_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "README.md").is_file():
        pytest.fail(f"data folder {path} not found; set DOORSTEP_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def full_store(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> "SqliteStore":
    """The embedded store built from the real data folder, with 500 simulated seekers."""
    from api.security.seeker_pi import seeker_codec
    from api.settings import Settings
    from store.build import build_store
    from store.sqlite import SqliteStore

    path = tmp_path_factory.mktemp("store") / "doorstep.sqlite"
    protect = seeker_codec(Settings()).protect
    build_store(data_dir, path, n_seekers=500, seed=7, protect_seekers=protect)
    return SqliteStore(path)


@pytest.fixture(scope="session")
def transit_network(data_dir: Path) -> "TransitNetwork":
    """The transit network built from the real data folder with the default parameters."""
    from geo.transit import TransitNetwork

    return TransitNetwork.from_data_dir(data_dir)


if TYPE_CHECKING:
    from geo.transit import TransitNetwork
    from store.sqlite import SqliteStore


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under CI=true, turn a skipped test into a failure: a skip must not count as green."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"
