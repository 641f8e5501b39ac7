"""The ``doorstep coverage`` commands: the 15-minute service circle and siting what-ifs."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from api.settings import Settings

if TYPE_CHECKING:
    from geo.coverage.circle import ServiceCircle
    from geo.regions import Regions

coverage_app = typer.Typer(
    help="15分钟就业服务圈 the 15-minute employment-service circle.", no_args_is_help=True
)
console = Console()

ThresholdOption = Annotated[
    float, typer.Option(min=1.0, max=120.0, help="Walking minutes of the circle.")
]
CellOption = Annotated[
    float, typer.Option(min=50.0, max=2000.0, help="Walking grid cell size in metres.")
]


@coverage_app.command("report")
def coverage_report(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option(file_okay=False, help="Folder for the CSV tables and the gap map.")
    ],
    threshold: ThresholdOption = 15.0,
    cell_m: CellOption = 250.0,
) -> None:
    """Write the shares within the circle by district and street, and the gap map."""
    from geo.coverage.gap_map import gap_map

    circle, regions = _build(ctx.obj, threshold, cell_m)
    out.mkdir(parents=True, exist_ok=True)
    districts = circle.shares("district", regions)
    districts.to_csv(out / "district_shares.csv", index=False)
    circle.shares("street", regions).to_csv(out / "street_shares.csv", index=False)
    gap_map(circle).save(str(out / "gaps.html"))

    table = Table(
        "区县 district", "小区数 places", "圈内 within", "占比 share", "中位分钟 median min"
    )
    for record in districts.to_dict("records"):
        table.add_row(
            str(record["name"]),
            str(record["places"]),
            str(record["covered"]),
            f"{record['share']:.1%}",
            f"{record['median_minutes']:.0f}",
        )
    console.print(table)
    covered = int(circle.places["covered"].sum())
    console.print(
        f"全市 city: {covered} / {len(circle.places)} 个小区 places"
        f" ({covered / len(circle.places):.1%}) 步行 {threshold:.0f} 分钟内 within walking range;"
        f" 按小区计数，非人口 counts of places, not residents · written to {out}",
        soft_wrap=True,
    )


@coverage_app.command("gain")
def coverage_gain(
    ctx: typer.Context,
    lon: Annotated[float, typer.Option(help="Candidate station longitude, WGS84 degrees.")],
    lat: Annotated[float, typer.Option(help="Candidate station latitude, WGS84 degrees.")],
    threshold: ThresholdOption = 15.0,
    cell_m: CellOption = 250.0,
) -> None:
    """Print how many residential places a new station at LON, LAT brings into the circle."""
    circle, regions = _build(ctx.obj, threshold, cell_m)
    gain = circle.marginal_gain(lon, lat)

    console.print(
        f"新增覆盖 newly covered: {gain.newly_covered} 个小区 places;"
        f" 覆盖率 share {gain.covered_before / gain.places:.1%} → {gain.share_after:.1%}",
        soft_wrap=True,
    )
    for code, count in sorted(gain.by_district.items()):
        district = regions.district(code)
        console.print(f"  {district.name if district else code}: +{count}")


@coverage_app.command("dashboard")
def coverage_dashboard(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(dir_okay=False, help="JSON file to write; default var/analyst/coverage.json"),
    ] = None,
    threshold: ThresholdOption = 15.0,
    cell_m: CellOption = 250.0,
) -> None:
    """Compute the analyst dashboard's figures and store them for the /analyst page."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from api.app import load_transit_network
    from api.cli import _read_store
    from geo.coverage.access import measure_accessibility
    from geo.coverage.dashboard import dashboard_figures, dashboard_path, write_dashboard

    settings: Settings = ctx.obj
    target = out or dashboard_path(settings.data.store_path)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        step = progress.add_task("15分钟服务圈 walking grid and service circle", total=None)
        circle, regions = _build(settings, threshold, cell_m)
        progress.update(step, description="公交网络 transit network")
        network = load_transit_network(settings.data)
        if network is None:
            raise typer.BadParameter(
                "the transit model is off or its data is missing; accessibility needs it"
            )
        progress.update(step, description="求职者与岗位 seekers and postings")
        with _read_store(settings) as store:
            seekers = store.seekers_frame()
            postings = store.postings_frame()
        progress.update(step, description="可达岗位与2SFCA accessibility and 2SFCA")
        access = measure_accessibility(seekers, postings, network)
        simulated = bool(seekers["simulated"].astype(bool).any())
        figures = dashboard_figures(circle, access, regions, simulated_seekers=simulated)
        size = write_dashboard(figures, target)
        progress.update(step, description="完成 done")

    note = "模拟求职者 simulated seekers" if simulated else "求职者 seekers"
    console.print(
        f"写入 wrote {target} ({size / 1024:.0f} KiB): {len(circle.places)} 个小区 places,"
        f" {len(access.areas)} 个居住区 home areas, {len(seekers)} {note}",
        soft_wrap=True,
    )


def _build(settings: Settings, threshold: float, cell_m: float) -> "tuple[ServiceCircle, Regions]":
    from geo.coverage.circle import build_service_circle
    from geo.coverage.grid import WalkGridParameters
    from geo.regions import load_regions

    regions = load_regions(settings.data.data_dir)
    circle = build_service_circle(
        settings.data.data_dir,
        regions,
        threshold_min=threshold,
        grid_params=WalkGridParameters(cell_m=cell_m),
    )
    return circle, regions
