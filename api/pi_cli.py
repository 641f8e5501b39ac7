"""``doorstep pi``: key rotation of seekers' personal fields and the leak scan."""

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.security.pi_rotation import DEFAULT_BATCH_SIZE, reindex_seekers, rotate_seekers
from api.security.seeker_pi import seeker_codec
from api.settings import Settings
from store.seeker_records import SeekerStore

pi_app = typer.Typer(help="Seekers' personal information (个人信息): key rotation and leak scan.")


@pi_app.command("rotate")
def pi_rotate(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-encrypted per transaction.")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Re-encrypt every seeker under DOORSTEP_PI_ACTIVE_KEY; run again to resume after a crash."""
    from api.cli import _read_store, console

    settings: Settings = ctx.obj
    codec = seeker_codec(settings)
    with _read_store(settings) as store:
        if not isinstance(store, SeekerStore):
            raise typer.BadParameter(f"store {store.describe()} has no seeker records")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task(f"重新加密 re-encrypting to key {codec.active_key_id}")

            def advance(done: int, pending: int) -> None:
                progress.update(task, completed=done, total=pending)

            report = rotate_seekers(store, codec, batch_size=batch_size, progress=advance)
        left = store.count_to_rotate(codec.active_key_id)
    console.print(
        f"rotated {report.rotated:,} of {report.pending_at_start:,} seeker rows to key"
        f" {report.key_id!r} in {report.batches} batches; {left:,} rows left under other keys"
    )


@pi_app.command("reindex")
def pi_reindex(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-indexed per transaction.")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Recompute the seekers' blind indexes under DOORSTEP_PI_INDEX_KEY; run again after a crash."""
    from api.cli import _read_store, console

    settings: Settings = ctx.obj
    codec = seeker_codec(settings)
    with _read_store(settings) as store:
        if not isinstance(store, SeekerStore):
            raise typer.BadParameter(f"store {store.describe()} has no seeker records")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("重建盲索引 recomputing blind indexes")

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            written = reindex_seekers(store, codec, batch_size=batch_size, progress=advance)
    console.print(f"recomputed the blind indexes of {written:,} seeker rows")


@pi_app.command("leak-scan")
def pi_leak_scan(
    ctx: typer.Context,
    seekers: Annotated[int, typer.Option(min=1, help="Simulated seekers to seed.")] = 10_000,
    sample: Annotated[
        int, typer.Option(min=1, help="Seekers whose API calls are sent (8 calls each).")
    ] = 200,
    admin_url: Annotated[
        str,
        typer.Option(help="PostgreSQL URL of a role that may create the throwaway database."),
    ] = "postgresql://postgres@127.0.0.1:5432/postgres",
    work_dir: Annotated[
        Path, typer.Option(help="Folder for the scan's SQLite file, removed afterwards.")
    ] = Path("var/leak-scan"),
) -> None:
    """Seed simulated seekers, use the API, and count plaintext personal values everywhere."""
    from api.cli import console
    from api.security.leak_scan import KINDS, run_leak_scan

    settings: Settings = ctx.obj
    report = run_leak_scan(
        settings,
        n_seekers=seekers,
        work_dir=work_dir,
        admin_url=admin_url,
        sample=sample,
        progress=lambda name: console.print(f"leak scan: {name} …"),
    )
    table = Table("place 位置", *KINDS)
    for place, counts in report.places.items():
        table.add_row(place, *(_leak_cell(counts[kind]) for kind in KINDS))
    console.print(table)
    requests = ", ".join(f"{name}: {count:,}" for name, count in sorted(report.requests.items()))
    console.print(f"requests: {requests}")
    for note in report.notes:
        console.print(f"note: {note}")
    console.print(f"seekers {report.seekers:,}; plaintext values found: {report.total:,}")
    if report.total:
        raise typer.Exit(1)


def _leak_cell(count: int | None) -> str:
    return "not scanned 未扫描" if count is None else f"{count:,}"
