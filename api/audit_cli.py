"""``doorstep audit verify``, ``checkpoint`` and ``rotate-key``: the chain across key epochs.

The operation log's HMAC-SM3 key is rotated by ``doorstep audit rotate-key``, which
appends a rotation record under the old key and writes two checkpoints of the new
head, one signed under each key. Verification switches keys at each rotation record
(:mod:`store.audit_keys`) and therefore needs every key that tags a part of the chain:
the active ``DOORSTEP_AUDIT_KEY`` and the retired ``DOORSTEP_AUDIT_RETIRED_KEYS``.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from api.settings import Settings
from store.audit import AuditEntry, AuditLog, AuditWrite
from store.audit_checkpoints import append_checkpoint, check_checkpoints, make_checkpoint
from store.audit_keys import (
    AuditKeyMismatchError,
    AuditKeyring,
    KeyRotation,
    MissingAuditKeyError,
    first_key_id,
    rotation_entry,
    rotations,
    verify_epochs,
)


@contextmanager
def _key_errors(command: str) -> Iterator[None]:
    """Print a missing, malformed or mismatched audit key as one line and exit with status 2."""
    from api.cli import console

    try:
        yield
    except (MissingAuditKeyError, AuditKeyMismatchError, ValueError) as err:
        console.print(f"[red]error:[/red] {command} failed: {err}", soft_wrap=True)
        raise typer.Exit(2) from err


def audit_keyring(settings: Settings) -> AuditKeyring:
    """Return the configured audit keys; a malformed setting prints one line and exits 2."""
    from api.security.keys import load_key_material

    with _key_errors("loading the audit keys"):
        return load_key_material(settings).audit_keyring()


@contextmanager
def _audit_log(settings: Settings) -> Iterator[tuple[AuditLog, str]]:
    from api.cli import _read_store

    with _read_store(settings) as store:
        if not isinstance(store, AuditLog):
            raise typer.BadParameter(f"store {store.describe()} has no operation log")
        yield store, store.describe()


def audit_verify(
    ctx: typer.Context,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            help="Checkpoint file written by `doorstep audit checkpoint`; every checkpointed"
            " record must still be in the chain with the same tag.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check the operation log's HMAC-SM3 chain across key epochs; exit 1 at the first break.

    Exit status 2 means verification could not run, because a key that tags part of the
    chain is missing or does not match its rotation record.
    """
    from api.cli import console
    from store.audit_checkpoints import read_checkpoints

    settings: Settings = ctx.obj
    keyring = audit_keyring(settings)
    saved = [] if checkpoints is None else read_checkpoints(checkpoints)
    with _audit_log(settings) as (store, where), _key_errors("audit verify"):
        found = rotations(store.audit_records())
        report = verify_epochs(keyring, store.audit_records(), store.audit_head(), found)
        problem = report.problem
        if problem is None and saved:
            first = first_key_id(keyring, found)
            problem = check_checkpoints(
                lambda key_id: keyring.chain(key_id or first, "a checkpoint's signature"),
                store.audit_records(),
                saved,
            )
    if problem is None:
        against = f", consistent with {len(saved)} checkpoints" if saved else ""
        epochs = f" under {len(found) + 1} keys" if found else ""
        console.print(
            f"audit chain of {where} verified: {report.checked} records{epochs}{against}",
            soft_wrap=True,
        )
        return
    console.print(
        f"[red]audit chain of {where} is broken at record {problem.seq}"
        f" ({problem.kind}):[/red] {problem.message};"
        f" {report.checked} records verified in the chain walk",
        soft_wrap=True,
    )
    raise typer.Exit(1)


def audit_checkpoint(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Option(
            help="JSON Lines file to append the checkpoint to; keep it where the database's"
            " administrators cannot write.",
            dir_okay=False,
        ),
    ],
) -> None:
    """Append the verified chain head to a checkpoint file kept outside the database."""
    from api.cli import console

    settings: Settings = ctx.obj
    keyring = audit_keyring(settings)
    with _audit_log(settings) as (store, where), _key_errors("audit checkpoint"):
        head = store.audit_head()
        # Records appended after the head was read are left for the next checkpoint.
        found = rotations(r for r in store.audit_records() if r.seq <= head[0])
        current = found[-1].new_id if found else keyring.active_id
        if current != keyring.active_id:
            raise ValueError(
                f"the chain's current key is {current!r} but DOORSTEP_AUDIT_KEY_ID is"
                f" {keyring.active_id!r}; configure that key or run `doorstep audit rotate-key`"
            )
        records = (record for record in store.audit_records() if record.seq <= head[0])
        report = verify_epochs(keyring, records, head, found)
    if report.problem is not None:
        console.print(
            f"[red]no checkpoint written: the audit chain of {where} is broken at record"
            f" {report.problem.seq} ({report.problem.kind})[/red]; run `doorstep audit verify`",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    checkpoint = make_checkpoint(keyring.active, head, datetime.now(UTC), where, current)
    append_checkpoint(file, checkpoint)
    console.print(f"checkpoint of {where} at record {head[0]} appended to {file}", soft_wrap=True)


def audit_rotate_key(
    ctx: typer.Context,
    checkpoints: Annotated[
        Path,
        typer.Option(
            help="Checkpoint file to append the two checkpoints of the rotation to; keep it"
            " where the database's administrators cannot write.",
            dir_okay=False,
        ),
    ],
    from_key_id: Annotated[
        str | None,
        typer.Option(
            help="Id of the retired key that tags the chain now; needed only for the first"
            " rotation when DOORSTEP_AUDIT_RETIRED_KEYS lists more than one key.",
        ),
    ] = None,
) -> None:
    """Start a new epoch of the chain under DOORSTEP_AUDIT_KEY (id DOORSTEP_AUDIT_KEY_ID).

    Set the new key as DOORSTEP_AUDIT_KEY with a new DOORSTEP_AUDIT_KEY_ID, list the
    old key in DOORSTEP_AUDIT_RETIRED_KEYS, stop every service process that writes the
    log, then run this. The whole chain is verified first; the rotation record is
    tagged under the old key and the records after it under the new one.
    """
    from api.cli import console

    settings: Settings = ctx.obj
    keyring = audit_keyring(settings)
    with _audit_log(settings) as (store, where), _key_errors("audit rotate-key"):
        found = rotations(store.audit_records())
        old_id = _current_key(keyring, found, from_key_id)
        if old_id == keyring.active_id:
            raise ValueError(
                f"key {old_id!r} already tags the chain; set the new key as DOORSTEP_AUDIT_KEY"
                " with a new DOORSTEP_AUDIT_KEY_ID and list the old one in"
                " DOORSTEP_AUDIT_RETIRED_KEYS"
            )
        report = verify_epochs(keyring, store.audit_records(), store.audit_head(), found, old_id)
        if report.problem is not None:
            console.print(
                f"[red]key not rotated: the audit chain of {where} is broken at record"
                f" {report.problem.seq} ({report.problem.kind})[/red];"
                " run `doorstep audit verify`",
                soft_wrap=True,
            )
            raise typer.Exit(1)
        old_chain = keyring.chain(old_id, "the chain's current epoch")
        entry = rotation_entry(
            _rotation_template(), old_id, keyring.active_id, keyring.fingerprint(keyring.active_id)
        )
        seq = store.append_audit(AuditWrite(entry, old_chain))
        head = store.audit_head()
    # NOTE: a service process that still runs with the old key appends records under it.
    # Verification reports the first of them as changed, so stop the services first.
    now = datetime.now(UTC)
    append_checkpoint(checkpoints, make_checkpoint(old_chain, head, now, where, old_id))
    append_checkpoint(
        checkpoints, make_checkpoint(keyring.active, head, now, where, keyring.active_id)
    )
    console.print(
        f"audit key of {where} rotated from {old_id!r} to {keyring.active_id!r} at record {seq};"
        f" 2 checkpoints appended to {checkpoints}",
        soft_wrap=True,
    )


def _current_key(keyring: AuditKeyring, found: list[KeyRotation], named: str | None) -> str:
    """Return the id of the key that tags the chain's last epoch."""
    if found:
        if named is not None and named != found[-1].new_id:
            raise ValueError(
                f"--from-key-id {named!r} does not match the chain's current key"
                f" {found[-1].new_id!r}, named by the rotation at record {found[-1].seq}"
            )
        return found[-1].new_id
    if named is not None:
        keyring.chain(named, "--from-key-id")
        return named
    retired = [key_id for key_id in keyring.key_ids() if key_id != keyring.active_id]
    if len(retired) != 1:
        raise ValueError(
            f"the chain has no rotation yet and {len(retired)} retired keys are configured;"
            " name the key that tags it now with --from-key-id"
        )
    return retired[0]


def _rotation_template() -> AuditEntry:
    return AuditEntry(
        at=datetime.now(UTC),
        actor="doorstep-cli",
        role="security_admin",
        org="",
        action="",
        object_id="",
        result="ok",
        status_code=0,
        source="cli",
        request_id=f"cli-{uuid.uuid4().hex}",
    )
