"""The ``doorstep fairness`` command: run the fairness audit and write its JSON report."""

import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from api.settings import Settings

console = Console()

STAGE_LABELS = {"exposure": "翻转群体排序 exposure", "no-drop check": "分数不降检查 no-drop check"}


def fairness(
    ctx: typer.Context,
    seekers: Annotated[
        int, typer.Option(min=1, help="Simulated seekers ranked once per group.")
    ] = 200,
    check_seekers: Annotated[
        int, typer.Option(min=1, help="Of those, seekers whose scores are checked for drops.")
    ] = 100,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    max_candidates: Annotated[
        int, typer.Option(min=1, help="Nearest candidate jobs scored per seeker in the check.")
    ] = 300,
    out: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="Report file; DOORSTEP_FAIRNESS_REPORT_PATH if omitted."),
    ] = None,
) -> None:
    """Flip group and hardship flags on simulated seekers; report exposure and score drops.

    Exits with status 1 when a score dropped because a hardship flag was set.
    """
    from api.app import load_transit_network
    from api.cli import _read_store
    from api.ranking import load_ranker, with_serving_context
    from api.security.seeker_pi import seeker_codec
    from matching.fairness import AuditOptions, run_audit
    from matching.posting_context import attach_posting_context
    from matching.recommend import Recommender
    from models.dataset import curated_anchors

    settings: Settings = ctx.obj
    options = AuditOptions(
        seekers=seekers,
        check_seekers=min(check_seekers, seekers),
        page_size=page_size,
        max_candidates=max_candidates,
    )
    started = time.perf_counter()
    with _read_store(settings) as store:
        recommender = Recommender.from_store(
            store,
            transit=load_transit_network(settings.data),
            exact_homes=seeker_codec(settings).with_exact_homes,
        )
        recommender.planner = None  # itineraries do not change scores, and cost time
        status, scorer = load_ranker(settings)
        recommender.scorer = with_serving_context(scorer, store, recommender)
        context = (
            recommender.scorer.context.posting_context
            if recommender.scorer is not None and recommender.scorer.context is not None
            else attach_posting_context(
                recommender.postings, recommender.seekers, curated_anchors(store)
            ).set_index("posting_id")
        )
    console.print(f"排序 ranker: {status.kind} {status.model_id or ''} ({status.reason})")

    with _progress() as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_LABELS.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        result = run_audit(recommender, context, options, report)

    body = {
        **result.to_dict(),
        "run": _run_facts(time.perf_counter() - started, recommender),
    }
    target = out or settings.model.fairness_report_path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
    _print_summary(body)
    console.print(f"report written to {target}", soft_wrap=True)
    if not result.no_drop.passed:
        raise typer.Exit(1)


def _run_facts(seconds: float, recommender: Any) -> dict[str, Any]:
    """Return when, how and on what machine the audit ran."""
    load = os.getloadavg()
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["doorstep", *sys.argv[1:]]),
        "seconds": round(seconds, 1),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_1m": round(load[0], 2),
            "python": platform.python_version(),
        },
        "postings": recommender.n_postings,
        "store_seekers": recommender.n_seekers,
    }


def _print_summary(body: dict[str, Any]) -> None:
    table = Table(
        "群体 group",
        "求职者 seekers",
        "曝光/人 exposure",
        "小微企业 small (known size)",
        "规模已知 size known",
        "岗位≤3 few postings",
        "本区 home district",
        "通勤 commute min",
        title="模拟求职者 simulated seekers",
    )
    for row in body["by_group"]:
        table.add_row(
            str(row["group"]),
            str(row["seekers"]),
            _number(row["exposure_per_seeker"], 2),
            _number(row["small_employer_share"], 3),
            _number(row["size_known_share"], 3),
            _number(row["few_postings_employer_share"], 3),
            _number(row["home_district_share"], 3),
            _number(row["mean_commute_min"], 1),
        )
    console.print(table)
    check = body["no_drop"]
    verdict = "[green]passed[/green]" if check["passed"] else "[red]FAILED[/red]"
    console.print(
        f"no-drop check {verdict}: {check['dropped_pairs']} of {check['pairs']:,} scores dropped"
        f" (max {check['max_drop']:.3g}); without the hardship-blind rule"
        f" {check['unblinded_dropped_pairs']:,} dropped for {check['unblinded_dropped_seekers']}"
        f" of {check['seekers']} seekers (max {check['unblinded_max_drop']:.3g})",
        soft_wrap=True,
    )


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )
