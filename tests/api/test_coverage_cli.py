"""The doorstep coverage commands on the real data folder."""

import csv
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def _env(data_dir: Path) -> dict[str, str]:
    return {"DOORSTEP_DATA_DIR": str(data_dir)}


def test_report_writes_tables_and_map(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "coverage"
    result = runner.invoke(app, ["coverage", "report", "--out", str(out)], env=_env(data_dir))

    assert result.exit_code == 0, result.output
    assert "新城区" in result.output
    assert "counts of places, not residents" in result.output
    with (out / "district_shares.csv").open(encoding="utf-8") as handle:
        districts = list(csv.DictReader(handle))
    assert len(districts) == 11
    assert sum(int(row["places"]) for row in districts) == 4_307
    assert (out / "street_shares.csv").is_file()
    assert "/assets/leaflet/leaflet.js" in (out / "gaps.html").read_text(encoding="utf-8")


def test_gain_prints_new_places(data_dir: Path) -> None:
    # West of 小寨 in 雁塔区, where no HR office lies within a 15-minute walk.
    args = ["coverage", "gain", "--lon", "108.87", "--lat", "34.23"]
    result = runner.invoke(app, args, env=_env(data_dir))

    assert result.exit_code == 0, result.output
    assert "newly covered: 35" in result.output
    assert "雁塔区: +35" in result.output


def test_gain_outside_xian_exits_2(data_dir: Path) -> None:
    command = "from api.cli import main; main()"
    args = ["coverage", "gain", "--lon", "116.4", "--lat", "39.9"]
    result = subprocess.run(
        [sys.executable, "-c", command, *args],
        capture_output=True,
        text=True,
        env={"DOORSTEP_DATA_DIR": str(data_dir), "PATH": ""},
        check=False,
    )

    assert result.returncode == 2
    assert "outside the Xi'an area" in result.stdout
    assert "Traceback" not in result.stderr
