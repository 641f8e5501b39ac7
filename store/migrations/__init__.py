"""Versioned schema migrations of the PostgreSQL store, applied with yoyo-migrations.

The SQL files live in ``store/migrations/sql`` (``NNNN_name.sql``, with an optional
``NNNN_name.rollback.sql``). They are applied with yoyo-migrations 9, whose
``postgresql+psycopg://`` backend drives psycopg 3, the driver the service already
uses; so no second PostgreSQL driver is needed. Yoyo records applied migrations in
its own ``_yoyo_migration`` table and takes an advisory lock (the ``yoyo_lock``
table) while it applies them, so two ``doorstep migrate`` runs cannot interleave.
The SQL files sit in a sub-folder because yoyo treats every ``.py`` file in a
migrations folder, this module included, as a migration.
"""

import logging
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations
from yoyo.backends.base import DatabaseBackend
from yoyo.connections import BadConnectionURI

from geo.errors import DoorstepError
from store.postgres import mask_url

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "sql"


class MigrationError(DoorstepError, RuntimeError):
    """A migration could not be read or applied."""


def pending_migrations(database_url: str) -> list[str]:
    """Return the ids of the migrations not yet applied to the database, in order."""
    backend = _backend(database_url)
    try:
        return [
            migration.id for migration in backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
        ]
    finally:
        backend.connection.close()


def apply_migrations(database_url: str) -> list[str]:
    """Apply every pending migration and return their ids; an up-to-date database returns [].

    Parameters
    ----------
    database_url : str
        ``postgresql://user:password@host:port/dbname`` URL of the target database.
    """
    backend = _backend(database_url)
    try:
        with backend.lock():
            pending = backend.to_apply(read_migrations(str(MIGRATIONS_DIR)))
            applied = [migration.id for migration in pending]
            backend.apply_migrations(pending)
    except psycopg.Error as err:
        raise MigrationError(f"migrating {mask_url(database_url)} failed: {err}") from err
    finally:
        backend.connection.close()

    logger.info("applied %d migrations to %s: %s", len(applied), mask_url(database_url), applied)
    return applied


def _backend(database_url: str) -> DatabaseBackend:
    """Open a yoyo backend on psycopg 3 for a ``postgresql://`` or ``postgres://`` URL."""
    scheme, separator, rest = database_url.partition("://")
    if not separator or scheme not in ("postgresql", "postgres"):
        raise MigrationError(
            f"database URL {mask_url(database_url)!r} is invalid;"
            " expected postgresql://user@host:port/dbname"
        )
    try:
        return get_backend(f"postgresql+psycopg://{rest}")
    except (psycopg.Error, BadConnectionURI) as err:
        raise MigrationError(
            f"cannot connect to {mask_url(database_url)} to migrate: {err}"
        ) from err
