"""The pip-audit report summary that `make security` prints and exits with."""

import json
from pathlib import Path

import pytest

from scripts.pip_audit_summary import main


def _report(tmp_path: Path, dependencies: list[dict[str, object]]) -> str:
    path = tmp_path / "pip-audit.json"
    path.write_text(json.dumps({"dependencies": dependencies, "fixes": []}), encoding="utf-8")
    return str(path)


def test_vulnerable_package_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(
        tmp_path,
        [
            {"name": "jinja2", "version": "3.0.0", "vulns": [{"id": "PYSEC-2024-1"}]},
            {"name": "pyotp", "version": "2.12.1", "vulns": []},
        ],
    )

    assert main(report) == 1
    assert "jinja2 3.0.0 is vulnerable: PYSEC-2024-1" in capsys.readouterr().out


def test_clean_audit_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(tmp_path, [{"name": "pyotp", "version": "2.12.1", "vulns": []}])

    assert main(report) == 0
    assert "1 packages audited, 0 vulnerable, 0 not audited" in capsys.readouterr().out


def test_unaudited_packages_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _report(
        tmp_path,
        [{"name": "fastapi", "skip_reason": "Dependency not found on PyPI"}],
    )

    assert main(report) == 0
    out = capsys.readouterr().out
    assert "1 of 1 packages were not" in out
    assert "fastapi" in out
    assert "no package could be audited" in out
