"""Under CI=true a skipped test fails the run."""

import subprocess
import sys
from pathlib import Path

SKIPPING_TEST = """
import pytest

def test_skipped():
    pytest.skip("server not reachable")
"""


def _run(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_skip.py").write_text(SKIPPING_TEST)
    conftest = Path(__file__).resolve().parents[1] / "conftest.py"
    (tmp_path / "conftest.py").write_text(conftest.read_text())
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env={"CI": ci, "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=False,
    )


def test_skip_fails_under_ci(tmp_path: Path) -> None:
    result = _run(tmp_path, "true")
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout


def test_skip_passes_outside_ci(tmp_path: Path) -> None:
    result = _run(tmp_path, "false")
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
