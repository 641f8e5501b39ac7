"""``doorstep tour plan`` on the real data store."""

from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from store.sqlite import SqliteStore

runner = CliRunner()


def _env(data_dir: Path, store: SqliteStore) -> dict[str, str]:
    return {"DOORSTEP_DATA_DIR": str(data_dir), "DOORSTEP_STORE_PATH": str(store.path)}


def test_tour_plan_prints_both_tours(data_dir: Path, full_store: SqliteStore) -> None:
    postings = full_store.postings_frame()
    busiest = postings.loc[postings["precision"] != "city", "anchor_id"].value_counts()
    args = ["tour", "plan", "--budget-min", "240", "--dwell-min", "30", "--stops", "8"]
    for anchor_id in busiest.index[:20]:
        args += ["--anchor", str(anchor_id)]

    result = runner.invoke(app, args, env=_env(data_dir, full_store))

    assert result.exit_code == 0, result.output
    assert "simulated" in result.output
    assert "ortools" in result.output
    assert "nearest_neighbour" in result.output


def test_tour_plan_rejects_unknown_anchor(data_dir: Path, full_store: SqliteStore) -> None:
    args = ["tour", "plan", "--anchor", "no-such-anchor"]

    result = runner.invoke(app, args, env=_env(data_dir, full_store))

    assert result.exit_code == 2
    assert "no active postings" in result.output


def test_tour_plan_rejects_bad_depot(data_dir: Path, full_store: SqliteStore) -> None:
    args = ["tour", "plan", "--anchor", "x", "--depot", "abc"]

    result = runner.invoke(app, args, env=_env(data_dir, full_store))

    assert result.exit_code == 2
    assert "--depot is invalid" in result.output
