"""``doorstep pi``: key rotation of seekers' and accounts' personal fields and the leak scan."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.security.encryption import DecryptionError, UnknownKeyError
from api.security.pi_rotation import (
    DEFAULT_BATCH_SIZE,
    RotationProgress,
    RotationReport,
    RotationStalledError,
    reindex_accounts,
    reindex_seekers,
    rotate_accounts,
    rotate_envelope_column,
    rotate_seekers,
)
from api.security.seeker_pi import SeekerPiCodec, seeker_codec
from api.settings import Settings
from store.identity import IdentityStore
from store.seeker_records import SeekerStore

pi_app = typer.Typer(help="Seekers' personal information (个人信息): key rotation and leak scan.")


@pi_app.command("rotate")
def pi_rotate(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-encrypted per transaction.")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Re-encrypt seekers, accounts, assistance categories and openids under the active key.

    The key is DOORSTEP_PI_ACTIVE_KEY; run the command again after a crash.
    """
    from api.cli import console

    settings: Settings = ctx.obj
    with _seeker_store(settings) as (store, codec), _key_errors("rotation"):
        with _progress(
            f"重新加密求职者 re-encrypting seekers to key {codec.active_key_id}"
        ) as tick:
            report = rotate_seekers(store, codec, batch_size=batch_size, progress=tick)
        _print_rotation(report, "seeker", store.count_to_rotate(codec.active_key_id))

        identity = _identity_store(settings, store)
        if identity is None:
            console.print(f"accounts: none, {settings.auth.identity_path} does not exist")
        else:
            with _progress(
                f"重新加密账号 re-encrypting accounts to key {codec.active_key_id}"
            ) as tick:
                accounts = rotate_accounts(
                    identity, codec.cipher, batch_size=batch_size, progress=tick
                )
            left = identity.count_account_envelopes_to_rotate(codec.active_key_id)
            _print_rotation(accounts, "account", left)
        _rotate_store_columns(store, codec, batch_size)


def _rotate_store_columns(store: SeekerStore, codec: SeekerPiCodec, batch_size: int) -> None:
    """Re-encrypt the assistance categories and WeChat openids kept beside the seekers."""
    from api.seeker_accounts import seeker_accounts_for
    from store.assistance_store import CATEGORY_ENVELOPE, assistance_store_for
    from store.seeker_accounts import OPENID_ENVELOPE

    key_id = codec.active_key_id
    assistance = assistance_store_for(store)
    with _progress(f"重新加密援助类别 re-encrypting assistance categories to key {key_id}") as tick:
        report = rotate_envelope_column(
            CATEGORY_ENVELOPE, codec.cipher, count=assistance.count_categories_to_rotate,
            fetch=assistance.categories_to_rotate, write=assistance.replace_categories,
            batch_size=batch_size, progress=tick,
        )  # fmt: skip
    _print_rotation(report, "assistance category", assistance.count_categories_to_rotate(key_id))

    contacts = seeker_accounts_for(store)
    if contacts is None:
        return
    with _progress(f"重新加密微信 openid re-encrypting WeChat openids to key {key_id}") as tick:
        report = rotate_envelope_column(
            OPENID_ENVELOPE, codec.cipher, count=contacts.count_openids_to_rotate,
            fetch=contacts.openids_to_rotate, write=contacts.replace_openids,
            batch_size=batch_size, progress=tick,
        )  # fmt: skip
    _print_rotation(report, "WeChat openid", contacts.count_openids_to_rotate(key_id))


@pi_app.command("reindex")
def pi_reindex(
    ctx: typer.Context,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-indexed per transaction.")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Recompute seekers' and accounts' blind indexes under DOORSTEP_PI_INDEX_KEY.

    Run it again after a crash.
    """
    from api.cli import console

    settings: Settings = ctx.obj
    with _seeker_store(settings) as (store, codec), _key_errors("reindexing"):
        with _progress("重建盲索引 recomputing blind indexes") as tick:
            written = reindex_seekers(store, codec, batch_size=batch_size, progress=tick)
        console.print(f"recomputed the blind indexes of {written:,} seeker rows")
        identity = _identity_store(settings, store)
        if identity is None:
            console.print(f"accounts: none, {settings.auth.identity_path} does not exist")
            return
        accounts = reindex_accounts(identity, codec.cipher, codec.index, batch_size=batch_size)
        console.print(f"recomputed the mobile blind indexes of {accounts:,} accounts")


@contextmanager
def _seeker_store(settings: Settings) -> Iterator[tuple[SeekerStore, SeekerPiCodec]]:
    """Open the configured store with the codec of the configured keys.

    A malformed key setting prints one error line and exits with status 2.
    """
    from api.cli import _read_store

    with _key_errors("key loading"):
        codec = seeker_codec(settings)
    with _read_store(settings) as store:
        if not isinstance(store, SeekerStore):
            raise typer.BadParameter(f"store {store.describe()} has no seeker records")
        yield store, codec


@contextmanager
def _key_errors(step: str) -> Iterator[None]:
    """Turn a missing, malformed or wrong key into one error line and exit status 2.

    Rows written before the error stay written, so the command can run again once
    the keys are fixed.
    """
    from api.cli import console

    try:
        yield
    except (ValueError, UnknownKeyError, DecryptionError, RotationStalledError) as err:
        hint = "" if isinstance(err, RotationStalledError) else "; check DOORSTEP_PI_KEYS"
        console.print(f"[red]error:[/red] {step} failed: {err}{hint}", soft_wrap=True)
        raise typer.Exit(2) from err


@contextmanager
def _progress(description: str) -> Iterator[RotationProgress]:
    from api.cli import console

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(description)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


def _print_rotation(report: RotationReport, kind: str, left: int) -> None:
    from api.cli import console

    console.print(
        f"rotated {report.rotated:,} of {report.pending_at_start:,} {kind} rows to key"
        f" {report.key_id!r} in {report.batches} batches; {left:,} rows left under other keys"
    )


def _identity_store(settings: Settings, store: SeekerStore) -> IdentityStore | None:
    """Return the accounts beside ``store``: its PostgreSQL tables or the SQLite identity file.

    Returns None when the SQLite identity file does not exist, so the command creates none.
    """
    from store.postgres import PostgresStore
    from store.postgres_identity import PostgresIdentity
    from store.sqlite_identity import SqliteIdentity

    if isinstance(store, PostgresStore):
        return PostgresIdentity(store.pool)
    if settings.auth.identity_path.is_file():
        return SqliteIdentity(settings.auth.identity_path)
    return None


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
