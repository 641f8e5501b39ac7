"""The ``doorstep shuttle propose`` command: commuter shuttle lines (定制公交) from matches."""

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.settings import Settings

shuttle_app = typer.Typer(help="定制公交 commuter shuttle proposals.", no_args_is_help=True)
console = Console()


@shuttle_app.command("propose")
def shuttle_propose(
    ctx: typer.Context,
    seekers: Annotated[
        int,
        typer.Option(
            min=1,
            max=50_000,
            help="Simulated seekers scored, in seeker-id order; all 20,000 of the default"
            " store take about a minute.",
        ),
    ] = 50_000,
    district: Annotated[
        str | None, typer.Option(help="Only seekers living in this 6-digit district code.")
    ] = None,
    min_riders: Annotated[int, typer.Option(min=1, max=1000, help="Riders a line needs.")] = 3,
    out: Annotated[
        Path | None, typer.Option(dir_okay=False, help="Also write the lines as JSON here.")
    ] = None,
) -> None:
    """Propose shuttle lines linking home and work clusters, with expected riders."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from api.app import load_transit_network
    from api.cli import _read_store
    from matching.recommend import Recommender
    from matching.shuttle import ShuttleRules, propose_shuttles

    settings: Settings = ctx.obj
    if district is not None and not (len(district) == 6 and district.isdigit()):
        raise typer.BadParameter("--district is invalid; expected a 6-digit code such as 610113")
    network = load_transit_network(settings.data)
    if network is None:
        raise typer.BadParameter(
            "the transit model is off or its data is missing; it gives the trip minutes"
        )
    with _read_store(settings) as store:
        recommender = Recommender.from_store(store, transit=network)
    pool = recommender.seekers.loc[recommender.seekers["simulated"].astype(bool)]
    if district is not None:
        pool = pool.loc[pool["home_district_code"].astype(str) == district]
    chosen = pool.sort_index().head(seekers)
    rules = ShuttleRules(min_riders=min_riders)

    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress("匹配求职者 scoring seekers", *columns, console=console) as progress:
        task = progress.add_task("score", total=len(chosen))
        lines, qualifying = propose_shuttles(
            recommender,
            network,
            chosen,
            rules,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )

    console.print(
        f"模拟求职者 simulated seekers: {len(chosen)} scored; {qualifying} with a match that"
        f" has a long transit trip (>{rules.long_transit_min:g} min) and a short shuttle ride"
        f" (<={rules.max_ride_min:g} min)",
        soft_wrap=True,
    )
    table = Table(title=f"定制公交线路 shuttle lines (>= {rules.min_riders} riders)")
    for column in ("riders", "pick-up lon,lat", "work lon,lat", "transit min", "shuttle min"):
        table.add_column(column)
    table.add_column("employers")
    for line in lines:
        table.add_row(
            str(line.riders),
            f"{line.home_lon:.4f},{line.home_lat:.4f}",
            f"{line.work_lon:.4f},{line.work_lat:.4f}",
            f"{line.transit_min:.0f}",
            f"{line.shuttle_min:.0f}",
            "、".join(line.employers[:3]),
        )
    console.print(table)
    if out is not None:
        body = {
            "simulated_seekers": True,
            "seekers_scored": len(chosen),
            "qualifying_seekers": qualifying,
            "rules": asdict(rules),
            "lines": [asdict(line) for line in lines],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(body, ensure_ascii=False, indent=1), encoding="utf-8")
        console.print(f"写入 wrote {out}")
