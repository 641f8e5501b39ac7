"""Benchmark output: the JSON result file and the Markdown table printed to stdout."""

import dataclasses
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.result import Comparison

logger = logging.getLogger(__name__)

_TABLE_HEADER = (
    "| Benchmark | Case | Subject | Baseline | Subject value | Baseline value | Ratio |\n"
    "|---|---|---|---|---:|---:|---:|"
)


def run_record(
    comparisons: list[Comparison],
    *,
    started: datetime,
    command: str,
    machine: dict[str, Any],
    versions: dict[str, str | None],
    data: dict[str, Any],
) -> dict[str, Any]:
    """Assemble everything one run recorded into a JSON-serialisable dict.

    Parameters
    ----------
    comparisons
        The figures of every benchmark that ran.
    started
        When the run started, timezone-aware.
    command
        The command line that started the run.
    machine, versions, data
        From `bench.machine.machine_info`, `bench.machine.library_versions` and the
        inputs (sizes and where the postings came from).
    """
    return {
        "started": started.isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "versions": versions,
        "data": data,
        "results": [dataclasses.asdict(comparison) for comparison in comparisons],
    }


def write_json(record: dict[str, Any], out_dir: Path, started: datetime) -> Path:
    """Write ``record`` to ``out_dir/results-<UTC timestamp>.json`` and return the path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"results-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote benchmark results to %s", path)
    return path


def markdown_report(record: dict[str, Any]) -> str:
    """Render a run as Markdown: the machine, the versions, the data sizes and the table."""
    machine = record["machine"]
    versions = ", ".join(f"{name} {version}" for name, version in record["versions"].items())
    lines = [
        f"Run {record['started']}: `{record['command']}`",
        "",
        f"- Machine: {machine['cpu_model']}, {machine['cores_usable']} usable of "
        f"{machine['cores_logical']} logical cores, {machine['memory_total_mib']} MiB memory, "
        f"{machine['platform']}",
        f"- Versions: {versions}",
        f"- Data: {_format_data(record['data'])}",
        "",
        markdown_table([Comparison(**row) for row in record["results"]]),
        "",
        "Ratios: candidates, districts, nearby_jobs, coverage and the transit matrix are speed-ups "
        "(baseline time / subject time); recommend, store build, transit build and transit "
        "for_commute are costs (subject / baseline).",
    ]
    return "\n".join(lines)


def markdown_table(comparisons: list[Comparison]) -> str:
    """Render the comparisons as one Markdown table, one row per figure."""
    rows = [_TABLE_HEADER]
    for item in comparisons:
        rows.append(
            f"| {item.benchmark} | {item.case} | {item.subject} | {item.baseline} "
            f"| {_number(item.subject_value)} {item.unit} "
            f"| {_number(item.baseline_value)} {item.unit} | {item.ratio:.2f}× |"
        )
    return "\n".join(rows)


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _format_data(data: dict[str, Any]) -> str:
    return "; ".join(f"{key} {value}" for key, value in data.items())
