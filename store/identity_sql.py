"""The identity store's SQL, shared by SQLite and PostgreSQL.

Statements are written with ``%s`` placeholders. A subclass supplies the
transaction (``BEGIN IMMEDIATE`` in SQLite, a pooled connection with row locks
in PostgreSQL), the time conversion and the recognition of constraint errors.
"""

import hmac
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from store.identity import (
    ACCOUNT_ENVELOPE_COLUMNS,
    Account,
    AccountEnvelopeUpdate,
    AccountExistsError,
    AccountKind,
    AccountNotFoundError,
    OneTimeCode,
    Organisation,
    OrganisationNotFoundError,
    Role,
    RoleConflictError,
    Session,
)

ACCOUNT_COLUMNS = (
    "account_id", "kind", "login", "org_id", "name_enc", "mobile_enc", "mobile_index",
    "password_hash", "password_changed_at", "second_factor", "totp_secret_enc", "locked_until",
    "created_at",
)  # fmt: skip
# An account is left to rotate while any of its envelopes starts with another key's prefix.
# Each clause takes two parameters: the prefix length and the prefix ``pi1.<key_id>.``.
_ACCOUNT_OTHER_KEY = (
    "substr(name_enc, 1, %s) <> %s OR substr(mobile_enc, 1, %s) <> %s"
    " OR (totp_secret_enc IS NOT NULL AND substr(totp_secret_enc, 1, %s) <> %s)"
)
_SESSION_COLUMNS = (
    "session_id", "account_id", "device_id", "created_at", "last_seen_at", "revoked_at",
    "revoke_reason",
)  # fmt: skip
_ORG_COLUMNS = ("org_id", "parent_id", "level", "name", "region_code", "district_code")

_SUBTREE = """
WITH RECURSIVE subtree(org_id) AS (
    SELECT org_id FROM organisations WHERE org_id = %s
    UNION ALL
    SELECT child.org_id FROM organisations child JOIN subtree ON child.parent_id = subtree.org_id
)
"""
_ANCESTORS = """
WITH RECURSIVE ancestors(org_id, parent_id) AS (
    SELECT org_id, parent_id FROM organisations WHERE org_id = %s
    UNION ALL
    SELECT parent.org_id, parent.parent_id FROM organisations parent
    JOIN ancestors ON parent.org_id = ancestors.parent_id
)
"""


class Transaction(Protocol):
    """One open transaction of a subclass."""

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a statement and return its rows."""
        ...

    def run(self, statement: str, params: Sequence[Any] = ()) -> int:
        """Run a statement and return the number of rows it changed."""
        ...


class SqlIdentity(ABC):
    """Identity records over the tables of migration ``0007_identity``."""

    for_update = " FOR UPDATE"

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Open one transaction that commits on success and rolls back on an exception."""

    @abstractmethod
    def to_db_time(self, at: datetime) -> Any:
        """Convert an aware time to the column's value."""

    @abstractmethod
    def from_db_time(self, value: Any) -> datetime:
        """Convert a column value to an aware UTC time."""

    @abstractmethod
    def is_unique_violation(self, err: Exception) -> bool:
        """Return whether ``err`` is a unique-constraint violation."""

    @abstractmethod
    def is_foreign_key_violation(self, err: Exception) -> bool:
        """Return whether ``err`` is a foreign-key violation."""

    def _time_or_none(self, value: Any) -> datetime | None:
        return None if value is None else self.from_db_time(value)

    def _db_time_or_none(self, at: datetime | None) -> Any:
        return None if at is None else self.to_db_time(at)

    # Organisations

    def seed_organisations(self, organisations: Iterable[Organisation]) -> int:
        """Insert organisations that do not exist yet (parents first); return how many were new."""
        added = 0
        with self.transaction() as tx:
            for org in organisations:
                added += tx.run(
                    f"INSERT INTO organisations ({', '.join(_ORG_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (org_id) DO NOTHING",
                    (org.org_id, org.parent_id, org.level, org.name, org.region_code,
                     org.district_code),
                )  # fmt: skip
        return added

    def organisation(self, org_id: str) -> Organisation | None:
        """Return one organisation, or None."""
        with self.transaction() as tx:
            found = tx.rows(
                f"SELECT {', '.join(_ORG_COLUMNS)} FROM organisations WHERE org_id = %s",  # nosec B608 # constant identifiers, bound values
                (org_id,),
            )
        return Organisation(*found[0]) if found else None

    def is_within(self, org_id: str, ancestor_id: str) -> bool:
        """Return whether ``org_id`` is ``ancestor_id`` or lies below it."""
        with self.transaction() as tx:
            found = tx.rows(
                f"{_ANCESTORS} SELECT 1 FROM ancestors WHERE org_id = %s",  # nosec B608 # constant identifiers, bound values
                (org_id, ancestor_id),
            )
        return bool(found)

    def organisation_within(self, org_id: str, ancestor_id: str) -> Organisation | None:
        """Return ``org_id``'s organisation if it is ``ancestor_id`` or lies below it, else None."""
        with self.transaction() as tx:
            found = tx.rows(
                f"{_ANCESTORS} SELECT {', '.join(_ORG_COLUMNS)} FROM organisations"  # nosec B608 # constant identifiers, bound values
                " WHERE org_id = %s AND EXISTS (SELECT 1 FROM ancestors WHERE org_id = %s)",
                (org_id, org_id, ancestor_id),
            )
        return Organisation(*found[0]) if found else None

    def subtree_district_codes(self, org_id: str) -> frozenset[str]:
        """Return the district codes of ``org_id`` and every organisation below it."""
        with self.transaction() as tx:
            found = tx.rows(
                f"{_SUBTREE} SELECT DISTINCT district_code FROM organisations"  # nosec B608 # constant identifiers, bound values
                " WHERE org_id IN (SELECT org_id FROM subtree) AND district_code IS NOT NULL",
                (org_id,),
            )
        return frozenset(str(row[0]) for row in found)

    def subtree_organisations(self, org_id: str) -> list[Organisation]:
        """Return ``org_id``'s organisation and every organisation below it, by org_id."""
        with self.transaction() as tx:
            found = tx.rows(
                f"{_SUBTREE} SELECT {', '.join(_ORG_COLUMNS)} FROM organisations"  # nosec B608 # constant identifiers, bound values
                " WHERE org_id IN (SELECT org_id FROM subtree) ORDER BY org_id",
                (org_id,),
            )
        return [Organisation(*row) for row in found]

    # Accounts and roles

    def create_account(self, account: Account) -> None:
        """Insert an account with its roles in one transaction."""
        values = self._account_values(account)
        try:
            with self.transaction() as tx:
                tx.run(
                    f"INSERT INTO accounts ({', '.join(ACCOUNT_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
                    f" VALUES ({', '.join(['%s'] * len(ACCOUNT_COLUMNS))})",
                    values,
                )
                for role in sorted(account.roles):
                    tx.run(
                        "INSERT INTO account_roles (account_id, role) VALUES (%s, %s)",
                        (account.account_id, role.value),
                    )
        except Exception as err:
            self._raise_account_error(err, account)
            raise

    def _raise_account_error(self, err: Exception, account: Account) -> None:
        if self.is_foreign_key_violation(err):
            raise OrganisationNotFoundError(
                f"organisation {account.org_id!r} does not exist; use an id of the tree "
                "such as city, district:610113 or street:<code>"
            ) from err
        if not self.is_unique_violation(err):
            return
        admins = sorted(role.value for role in account.roles if role.value.endswith("_admin"))
        if len(admins) > 1:
            raise RoleConflictError(
                f"account {account.account_id!r} cannot hold {admins} together;"
                " each administrator role needs its own account"
            ) from err
        raise AccountExistsError(
            f"a {account.kind} account with login {account.login!r} or the same mobile exists"
        ) from err

    def _account_values(self, account: Account) -> tuple[Any, ...]:
        return (
            account.account_id, account.kind, account.login, account.org_id, account.name_enc,
            account.mobile_enc, account.mobile_index, account.password_hash,
            self._db_time_or_none(account.password_changed_at), account.second_factor,
            account.totp_secret_enc, self._db_time_or_none(account.locked_until),
            self.to_db_time(account.created_at),
        )  # fmt: skip

    def grant_role(self, account_id: str, role: Role) -> None:
        """Add a role; RoleConflictError when it would be a second administrator role."""
        try:
            with self.transaction() as tx:
                tx.run(
                    "INSERT INTO account_roles (account_id, role) VALUES (%s, %s)"
                    " ON CONFLICT (account_id, role) DO NOTHING",
                    (account_id, role.value),
                )
        except Exception as err:
            if self.is_unique_violation(err):
                raise RoleConflictError(
                    f"account {account_id!r} already holds an administrator role, so it"
                    f" cannot also be {role.value}; each needs its own account"
                ) from err
            if self.is_foreign_key_violation(err):
                raise AccountNotFoundError(f"account {account_id!r} does not exist") from err
            raise

    def account(self, account_id: str) -> Account | None:
        """Return an account with its roles, or None."""
        return self._account_where("account_id = %s", (account_id,))

    def account_by_login(self, login: str) -> Account | None:
        """Return the staff account with this login name, or None."""
        return self._account_where("kind = 'staff' AND login = %s", (login,))

    def account_by_mobile(self, kind: AccountKind, mobile_index: str) -> Account | None:
        """Return the account of ``kind`` whose mobile has this blind index, or None."""
        return self._account_where("kind = %s AND mobile_index = %s", (kind, mobile_index))

    def staff_in_subtree(self, org_id: str, limit: int) -> list[Account]:
        """Return up to ``limit`` staff accounts of ``org_id``'s subtree, by login, with roles."""
        with self.transaction() as tx:
            found = tx.rows(
                f"{_SUBTREE} SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts"  # nosec B608 # constant identifiers, bound values
                " WHERE kind = 'staff' AND org_id IN (SELECT org_id FROM subtree)"
                " ORDER BY login LIMIT %s",
                (org_id, limit),
            )
            ids = [row[0] for row in found]
            roles: dict[str, set[Role]] = {account_id: set() for account_id in ids}
            if ids:
                placeholders = ", ".join(["%s"] * len(ids))
                where = f"account_id IN ({placeholders})"
                query = f"SELECT account_id, role FROM account_roles WHERE {where}"  # nosec B608 # placeholders only
                for account_id, role in tx.rows(query, ids):
                    roles[account_id].add(Role(role))
        return [self._account_of(row, frozenset(roles[row[0]])) for row in found]

    def revoke_role(self, account_id: str, role: Role) -> bool:
        """Remove a role; return whether the account held it."""
        with self.transaction() as tx:
            changed = tx.run(
                "DELETE FROM account_roles WHERE account_id = %s AND role = %s",
                (account_id, role.value),
            )
        return changed == 1

    def _account_where(self, condition: str, params: Sequence[Any]) -> Account | None:
        with self.transaction() as tx:
            found = tx.rows(
                f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM accounts WHERE {condition}",  # nosec B608 # constant identifiers, bound values
                params,
            )
            if not found:
                return None
            row = found[0]
            roles = tx.rows("SELECT role FROM account_roles WHERE account_id = %s", (row[0],))
        return self._account_of(row, frozenset(Role(value) for (value,) in roles))

    def _account_of(self, row: Sequence[Any], roles: frozenset[Role]) -> Account:
        return Account(
            account_id=row[0],
            kind=row[1],
            login=row[2],
            org_id=row[3],
            name_enc=row[4],
            mobile_enc=row[5],
            mobile_index=row[6],
            password_hash=row[7],
            password_changed_at=self._time_or_none(row[8]),
            second_factor=row[9],
            totp_secret_enc=row[10],
            locked_until=self._time_or_none(row[11]),
            created_at=self.from_db_time(row[12]),
            roles=roles,
        )

    def set_password(self, account_id: str, password_hash: str, changed_at: datetime) -> None:
        """Replace an account's password hash and record when it changed."""
        with self.transaction() as tx:
            changed = tx.run(
                "UPDATE accounts SET password_hash = %s, password_changed_at = %s"
                " WHERE account_id = %s",
                (password_hash, self.to_db_time(changed_at), account_id),
            )
        if not changed:
            raise AccountNotFoundError(f"account {account_id!r} does not exist")

    # Key rotation of the encrypted columns

    def count_account_envelopes_to_rotate(self, key_id: str) -> int:
        """Return the number of accounts with an envelope of another key than ``key_id``."""
        with self.transaction() as tx:
            found = tx.rows(
                f"SELECT count(*) FROM accounts WHERE {_ACCOUNT_OTHER_KEY}",  # nosec B608 # constant identifiers, bound values
                _prefix_params(key_id),
            )
        return int(found[0][0])

    def account_envelopes_to_rotate(
        self, key_id: str, limit: int
    ) -> list[tuple[str, tuple[str | None, ...]]]:
        """Return up to ``limit`` (account_id, envelopes) rows with another key, by account_id."""
        with self.transaction() as tx:
            found = tx.rows(
                f"SELECT account_id, {', '.join(ACCOUNT_ENVELOPE_COLUMNS)} FROM accounts"  # nosec B608 # constant identifiers, bound values
                f" WHERE {_ACCOUNT_OTHER_KEY} ORDER BY account_id LIMIT %s",
                (*_prefix_params(key_id), limit),
            )
        return [(str(row[0]), tuple(row[1:])) for row in found]

    def replace_account_envelopes(self, updates: Sequence[AccountEnvelopeUpdate]) -> int:
        """Write every update whose row still has its old envelopes, in one transaction.

        A NULL ``totp_secret_enc`` is compared as the empty string, which no envelope is.
        """
        written = 0
        with self.transaction() as tx:
            for update in updates:
                name, mobile, totp = update.old
                written += tx.run(
                    "UPDATE accounts SET name_enc = %s, mobile_enc = %s, totp_secret_enc = %s"
                    " WHERE account_id = %s AND name_enc = %s AND mobile_enc = %s"
                    " AND COALESCE(totp_secret_enc, '') = %s",
                    (*update.new, update.account_id, name, mobile, totp or ""),
                )
        return written

    def account_mobiles(self, after: str, limit: int) -> list[tuple[str, str]]:
        """Return up to ``limit`` (account_id, mobile_enc) rows after ``after``, by account_id."""
        with self.transaction() as tx:
            found = tx.rows(
                "SELECT account_id, mobile_enc FROM accounts WHERE account_id > %s"
                " ORDER BY account_id LIMIT %s",
                (after, limit),
            )
        return [(str(row[0]), str(row[1])) for row in found]

    def replace_mobile_indexes(self, indexes: Sequence[tuple[str, str]]) -> int:
        """Set the mobile blind index of each (account_id, index) pair, in one transaction."""
        written = 0
        with self.transaction() as tx:
            for account_id, mobile_index in indexes:
                written += tx.run(
                    "UPDATE accounts SET mobile_index = %s WHERE account_id = %s",
                    (mobile_index, account_id),
                )
        return written

    # Lockout

    def record_login_failure(
        self, account_id: str, at: datetime, *, window: timedelta, limit: int, lock_for: timedelta
    ) -> datetime | None:
        """Count a failed login; lock the account when ``limit`` failures fall within ``window``."""
        with self.transaction() as tx:
            # The account row lock serialises concurrent failures of one account.
            tx.rows(f"SELECT 1 FROM accounts WHERE account_id = %s{self.for_update}", (account_id,))  # nosec B608 # constant identifiers, bound values
            tx.run(
                "DELETE FROM login_failures WHERE account_id = %s AND at <= %s",
                (account_id, self.to_db_time(at - window)),
            )
            tx.run(
                "INSERT INTO login_failures (account_id, at) VALUES (%s, %s)",
                (account_id, self.to_db_time(at)),
            )
            count = tx.rows(
                "SELECT count(*) FROM login_failures WHERE account_id = %s", (account_id,)
            )[0][0]
            if int(count) < limit:
                return None
            until = at + lock_for
            tx.run(
                "UPDATE accounts SET locked_until = %s WHERE account_id = %s",
                (self.to_db_time(until), account_id),
            )
            tx.run("DELETE FROM login_failures WHERE account_id = %s", (account_id,))
        return until

    def clear_login_failures(self, account_id: str) -> None:
        """Forget counted failures after a successful login."""
        with self.transaction() as tx:
            tx.run("DELETE FROM login_failures WHERE account_id = %s", (account_id,))

    def lock_account(self, account_id: str, until: datetime | None) -> None:
        """Lock an account until a time, or unlock it with None."""
        with self.transaction() as tx:
            changed = tx.run(
                "UPDATE accounts SET locked_until = %s WHERE account_id = %s",
                (self._db_time_or_none(until), account_id),
            )
        if not changed:
            raise AccountNotFoundError(f"account {account_id!r} does not exist")

    # Sessions

    def create_session(self, session: Session) -> None:
        """Insert a new session."""
        with self.transaction() as tx:
            tx.run(
                f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)})"  # nosec B608 # constant identifiers, bound values
                " VALUES (%s, %s, %s, %s, %s, NULL, NULL)",
                (session.session_id, session.account_id, session.device_id,
                 self.to_db_time(session.created_at), self.to_db_time(session.last_seen_at)),
            )  # fmt: skip

    def touch_session(self, session_id: str, now: datetime, idle: timedelta) -> Session | None:
        """Return a live session and move its ``last_seen_at`` to ``now``."""
        with self.transaction() as tx:
            found = tx.rows(
                f"UPDATE sessions SET last_seen_at = %s WHERE session_id = %s"  # nosec B608 # constant identifiers, bound values
                f" AND revoked_at IS NULL AND last_seen_at > %s"
                f" RETURNING {', '.join(_SESSION_COLUMNS)}",
                (self.to_db_time(now), session_id, self.to_db_time(now - idle)),
            )
        if not found:
            return None
        row = found[0]
        return Session(row[0], row[1], row[2], self.from_db_time(row[3]), self.from_db_time(row[4]))

    def revoke_session(self, session_id: str, at: datetime, reason: str) -> bool:
        """Revoke one session; return whether it was live."""
        with self.transaction() as tx:
            changed = tx.run(
                "UPDATE sessions SET revoked_at = %s, revoke_reason = %s"
                " WHERE session_id = %s AND revoked_at IS NULL",
                (self.to_db_time(at), reason, session_id),
            )
        return changed == 1

    def revoke_account_sessions(self, account_id: str, at: datetime, reason: str) -> int:
        """Revoke every live session of an account; return how many."""
        with self.transaction() as tx:
            return tx.run(
                "UPDATE sessions SET revoked_at = %s, revoke_reason = %s"
                " WHERE account_id = %s AND revoked_at IS NULL",
                (self.to_db_time(at), reason, account_id),
            )

    # Devices

    def bind_device(self, account_id: str, device_id: str, label: str, at: datetime) -> None:
        """Bind a device to an account (again, if it was unbound)."""
        try:
            with self.transaction() as tx:
                tx.run(
                    "INSERT INTO devices (account_id, device_id, label, bound_at, unbound_at)"
                    " VALUES (%s, %s, %s, %s, NULL) ON CONFLICT (account_id, device_id)"
                    " DO UPDATE SET label = excluded.label, bound_at = excluded.bound_at,"
                    " unbound_at = NULL",
                    (account_id, device_id, label, self.to_db_time(at)),
                )
        except Exception as err:
            if self.is_foreign_key_violation(err):
                raise AccountNotFoundError(f"account {account_id!r} does not exist") from err
            raise

    def unbind_device(self, account_id: str, device_id: str, at: datetime) -> bool:
        """Unbind a device; return whether it was bound."""
        with self.transaction() as tx:
            changed = tx.run(
                "UPDATE devices SET unbound_at = %s"
                " WHERE account_id = %s AND device_id = %s AND unbound_at IS NULL",
                (self.to_db_time(at), account_id, device_id),
            )
        return changed == 1

    def bound_devices(self, account_id: str) -> list[tuple[str, str, datetime]]:
        """Return the (device_id, label, bound_at) of the devices bound now, oldest first."""
        with self.transaction() as tx:
            found = tx.rows(
                "SELECT device_id, label, bound_at FROM devices"
                " WHERE account_id = %s AND unbound_at IS NULL ORDER BY bound_at, device_id",
                (account_id,),
            )
        return [(str(d), str(label), self.from_db_time(at)) for d, label, at in found]

    def device_bound(self, account_id: str, device_id: str) -> bool:
        """Return whether the device is currently bound to the account."""
        with self.transaction() as tx:
            found = tx.rows(
                "SELECT 1 FROM devices WHERE account_id = %s AND device_id = %s"
                " AND unbound_at IS NULL",
                (account_id, device_id),
            )
        return bool(found)

    # One-time codes

    def store_code(self, code: OneTimeCode) -> None:
        """Insert a one-time code."""
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO one_time_codes (code_id, mobile_index, purpose, code_hash,"
                " created_at, expires_at, used_at, attempts)"
                " VALUES (%s, %s, %s, %s, %s, %s, NULL, 0)",
                (code.code_id, code.mobile_index, code.purpose, code.code_hash,
                 self.to_db_time(code.created_at), self.to_db_time(code.expires_at)),
            )  # fmt: skip

    def consume_code(
        self, mobile_index: str, purpose: str, code_hash: str, now: datetime, *, max_attempts: int
    ) -> bool:
        """Use the newest unexpired code for this mobile and purpose if its hash matches."""
        with self.transaction() as tx:
            found = tx.rows(
                "SELECT code_id, code_hash, attempts FROM one_time_codes"  # nosec B608 # constant identifiers, bound values
                " WHERE mobile_index = %s AND purpose = %s AND used_at IS NULL AND expires_at > %s"
                f" ORDER BY created_at DESC LIMIT 1{self.for_update}",
                (mobile_index, purpose, self.to_db_time(now)),
            )
            if not found or int(found[0][2]) >= max_attempts:
                return False
            code_id, stored_hash, _ = found[0]
            if not hmac.compare_digest(str(stored_hash), code_hash):
                tx.run(
                    "UPDATE one_time_codes SET attempts = attempts + 1 WHERE code_id = %s",
                    (code_id,),
                )
                return False
            used = tx.run(
                "UPDATE one_time_codes SET used_at = %s WHERE code_id = %s AND used_at IS NULL",
                (self.to_db_time(now), code_id),
            )
        return used == 1

    def use_totp_step(self, account_id: str, step: int) -> bool:
        """Record ``step`` as the account's last used TOTP step; False when not later."""
        with self.transaction() as tx:
            # One upsert, so two concurrent logins with one code cannot both succeed: the
            # second waits for the first's row and then finds its step not later.
            changed = tx.run(
                "INSERT INTO totp_last_steps (account_id, step) VALUES (%s, %s)"
                " ON CONFLICT (account_id) DO UPDATE SET step = excluded.step"
                " WHERE totp_last_steps.step < excluded.step",
                (account_id, step),
            )
        return changed == 1


def _prefix_params(key_id: str) -> tuple[Any, ...]:
    prefix = f"pi1.{key_id}."
    return (len(prefix), prefix) * 3
