"""The ``doorstep tour plan`` command: a recruitment-bus tour over matched communities."""

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.settings import Settings

tour_app = typer.Typer(help="招聘大巴 recruitment-bus tours.", no_args_is_help=True)
console = Console()


def _depot(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        lon, lat = (float(part) for part in parts)
    except ValueError as err:
        raise typer.BadParameter(
            "--depot is invalid; expected lon,lat such as 108.9423,34.2610"
        ) from err
    return lon, lat


@tour_app.command("plan")
def tour_plan(
    ctx: typer.Context,
    anchor: Annotated[list[str], typer.Option(help="Employer anchor id; repeat for several.")],
    depot: Annotated[str, typer.Option(help="Depot as WGS84 lon,lat.")] = "108.9423,34.2610",
    budget_min: Annotated[
        float, typer.Option(min=30.0, max=1440.0, help="Day's time budget in minutes.")
    ] = 480.0,
    dwell_min: Annotated[
        float, typer.Option(min=0.0, max=240.0, help="Minutes spent at each stop.")
    ] = 45.0,
    stops: Annotated[int, typer.Option(min=1, max=60, help="Candidate communities.")] = 15,
    top_k: Annotated[
        int,
        typer.Option(
            min=1,
            max=200,
            help="A seeker is matched when a posting is among their top K.",
        ),
    ] = 20,
) -> None:
    """Plan the tour with OR-Tools and print it beside the nearest-neighbour tour."""
    from api.app import load_transit_network
    from api.cli import _progress, _read_store
    from geo.crs import validate_point
    from geo.errors import InvalidCoordinateError
    from geo.regions import load_regions
    from matching.bus_tour_stops import community_stops, compare_tours, matched_communities
    from matching.recommend import Recommender

    settings: Settings = ctx.obj
    point = _depot(depot)
    try:
        validate_point(*point, field="depot")
    except InvalidCoordinateError as err:
        raise typer.BadParameter(f"--depot is invalid: {err}") from err
    network = load_transit_network(settings.data)
    if network is None:
        raise typer.BadParameter(
            "the transit model is off or its data is missing; it gives the driving minutes"
        )
    with _read_store(settings) as store:
        recommender = Recommender.from_store(store, transit=network)
    unknown = set(anchor) - set(recommender.postings["anchor_id"].astype(str))
    if unknown:
        raise typer.BadParameter(f"--anchor has no active postings: {', '.join(sorted(unknown))}")

    with _progress() as progress:
        task = progress.add_task("匹配求职者 matching seekers", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        counts = matched_communities(recommender, anchor, top_k, progress=report)
    candidates = community_stops(load_regions(settings.data.data_dir), counts, stops)
    best, greedy = compare_tours(network, point, candidates, budget_min, dwell_min)

    console.print("seekers are simulated (模拟求职者)")
    table = Table(title=f"tours within {budget_min:g} min, {dwell_min:g} min per stop")
    for column in ("method", "seekers reached", "minutes", "stops in order"):
        table.add_column(column)
    for tour in (best, greedy):
        names = " → ".join(str(candidates["name"].iloc[stop]) for stop in tour.order)
        table.add_row(tour.method, str(tour.seekers), f"{tour.minutes:.1f}", names or "-")
    console.print(table)
