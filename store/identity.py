"""Identity records: the organisation tree, accounts and roles, sessions, devices, one-time codes.

Both stores keep the same tables (PostgreSQL migrations ``0007_identity`` and
``0008_totp_steps``, :mod:`store.sqlite_identity`) and pass one contract suite. The rule that one
account has at most one of the three administrator roles is a partial unique
index on ``account_roles``, so the database rejects a second administrator role
whatever code inserts it.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal, Protocol

from geo.errors import DoorstepError
from geo.regions import Regions

CITY_ORG_ID = "city"
CITY_REGION_CODE = "610100"

OrgLevel = Literal["city", "district", "street", "station"]
ORG_LEVELS: tuple[OrgLevel, ...] = ("city", "district", "street", "station")


class Role(StrEnum):
    """A role an account holds; each maps to a fixed permission set in ``api.permissions``."""

    SEEKER = "seeker"
    STATION_STAFF = "station_staff"
    ASSISTANCE_OFFICER = "assistance_officer"
    ANALYST = "analyst"
    SYSTEM_ADMIN = "system_admin"
    SECURITY_ADMIN = "security_admin"
    AUDIT_ADMIN = "audit_admin"


ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})

AccountKind = Literal["staff", "seeker"]
SecondFactor = Literal["sms", "totp"]


class IdentityError(DoorstepError):
    """Root of identity store errors."""


class OrganisationNotFoundError(IdentityError, LookupError):
    """An organisation id that is not in the tree."""


class AccountExistsError(IdentityError, ValueError):
    """A login name or mobile that another account of the same kind already uses."""


class AccountNotFoundError(IdentityError, LookupError):
    """An account id that does not exist."""


class RoleConflictError(IdentityError, ValueError):
    """A second administrator role for one account, which the database rejects."""


@dataclass(frozen=True, slots=True)
class Organisation:
    """A node of the tree city bureau → district → street → community station.

    ``region_code`` is the statistical code of the area it serves (6, 9 or 12
    digits, ``610100`` for the city) and ``district_code`` the district it lies
    in (None for the city bureau).
    """

    org_id: str
    parent_id: str | None
    level: OrgLevel
    name: str
    region_code: str
    district_code: str | None


@dataclass(frozen=True, slots=True)
class Account:
    """A staff or seeker account; personal fields are FieldCipher envelopes, never plaintext."""

    account_id: str
    kind: AccountKind
    login: str
    org_id: str | None
    name_enc: str
    mobile_enc: str
    mobile_index: str
    password_hash: str | None
    password_changed_at: datetime | None
    second_factor: SecondFactor
    totp_secret_enc: str | None
    locked_until: datetime | None
    created_at: datetime
    roles: frozenset[Role] = frozenset()


@dataclass(frozen=True, slots=True)
class Session:
    """A server-side session; a token is valid only while its session is live."""

    session_id: str
    account_id: str
    device_id: str | None
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None = None
    revoke_reason: str | None = None


@dataclass(frozen=True, slots=True)
class OneTimeCode:
    """A one-time code sent to a mobile, stored as a keyed hash, valid until ``expires_at``."""

    code_id: str
    mobile_index: str
    purpose: str
    code_hash: str
    created_at: datetime
    expires_at: datetime


ACCOUNT_ENVELOPE_COLUMNS = ("name_enc", "mobile_enc", "totp_secret_enc")
"""The encrypted columns of ``accounts``; ``totp_secret_enc`` is NULL for SMS accounts."""


@dataclass(frozen=True, slots=True)
class AccountEnvelopeUpdate:
    """New envelopes of one account, written only if the row still has the old ones."""

    account_id: str
    old: tuple[str | None, ...]
    """The row's envelopes as read, in :data:`ACCOUNT_ENVELOPE_COLUMNS` order."""
    new: tuple[str | None, ...]


class IdentityStore(Protocol):
    """Persistence of organisations, accounts, roles, sessions, devices and one-time codes."""

    def describe(self) -> str:
        """Return where the records live, for logs."""
        ...

    def seed_organisations(self, organisations: Iterable[Organisation]) -> int:
        """Insert organisations that do not exist yet (parents first); return how many were new."""
        ...

    def organisation(self, org_id: str) -> Organisation | None:
        """Return one organisation, or None."""
        ...

    def is_within(self, org_id: str, ancestor_id: str) -> bool:
        """Return whether ``org_id`` is ``ancestor_id`` or lies below it."""
        ...

    def organisation_within(self, org_id: str, ancestor_id: str) -> Organisation | None:
        """Return ``org_id``'s organisation if it is ``ancestor_id`` or lies below it, else None."""
        ...

    def subtree_district_codes(self, org_id: str) -> frozenset[str]:
        """Return the district codes of ``org_id`` and every organisation below it."""
        ...

    def subtree_organisations(self, org_id: str) -> list[Organisation]:
        """Return ``org_id``'s organisation and every organisation below it, by org_id."""
        ...

    def create_account(self, account: Account) -> None:
        """Insert an account with its roles in one transaction.

        Raises AccountExistsError, OrganisationNotFoundError or RoleConflictError.
        """
        ...

    def grant_role(self, account_id: str, role: Role) -> None:
        """Add a role; RoleConflictError when it would be a second administrator role."""
        ...

    def account(self, account_id: str) -> Account | None:
        """Return an account with its roles, or None."""
        ...

    def count_account_envelopes_to_rotate(self, key_id: str) -> int:
        """Return the number of accounts with an envelope of another key than ``key_id``."""
        ...

    def account_envelopes_to_rotate(
        self, key_id: str, limit: int
    ) -> list[tuple[str, tuple[str | None, ...]]]:
        """Return up to ``limit`` (account_id, envelopes) rows with another key, by account_id."""
        ...

    def replace_account_envelopes(self, updates: Sequence[AccountEnvelopeUpdate]) -> int:
        """Write every update whose row still has its old envelopes, in one transaction."""
        ...

    def account_mobiles(self, after: str, limit: int) -> list[tuple[str, str]]:
        """Return up to ``limit`` (account_id, mobile_enc) rows after ``after``, by account_id."""
        ...

    def replace_mobile_indexes(self, indexes: Sequence[tuple[str, str]]) -> int:
        """Set the mobile blind index of each (account_id, index) pair, in one transaction."""
        ...

    def staff_in_subtree(self, org_id: str, limit: int) -> list[Account]:
        """Return up to ``limit`` staff accounts of ``org_id``'s subtree, by login, with roles."""
        ...

    def revoke_role(self, account_id: str, role: Role) -> bool:
        """Remove a role; return whether the account held it."""
        ...

    def bound_devices(self, account_id: str) -> list[tuple[str, str, datetime]]:
        """Return the (device_id, label, bound_at) of the devices bound now, oldest first."""
        ...

    def account_by_login(self, login: str) -> Account | None:
        """Return the staff account with this login name, or None."""
        ...

    def account_by_mobile(self, kind: AccountKind, mobile_index: str) -> Account | None:
        """Return the account of ``kind`` whose mobile has this blind index, or None."""
        ...

    def set_password(self, account_id: str, password_hash: str, changed_at: datetime) -> None:
        """Replace an account's password hash and record when it changed."""
        ...

    def record_login_failure(
        self, account_id: str, at: datetime, *, window: timedelta, limit: int, lock_for: timedelta
    ) -> datetime | None:
        """Count a failed login; lock the account when ``limit`` failures fall within ``window``.

        Returns the new ``locked_until`` when this failure locked the account, else None.
        """
        ...

    def clear_login_failures(self, account_id: str) -> None:
        """Forget counted failures after a successful login."""
        ...

    def lock_account(self, account_id: str, until: datetime | None) -> None:
        """Lock an account until a time, or unlock it with None."""
        ...

    def create_session(self, session: Session) -> None:
        """Insert a new session."""
        ...

    def touch_session(self, session_id: str, now: datetime, idle: timedelta) -> Session | None:
        """Return a live session and move its ``last_seen_at`` to ``now``.

        Returns None when the session is missing, revoked, or idle longer than ``idle``.
        """
        ...

    def revoke_session(self, session_id: str, at: datetime, reason: str) -> bool:
        """Revoke one session; return whether it was live."""
        ...

    def revoke_account_sessions(self, account_id: str, at: datetime, reason: str) -> int:
        """Revoke every live session of an account; return how many."""
        ...

    def bind_device(self, account_id: str, device_id: str, label: str, at: datetime) -> None:
        """Bind a device to an account (again, if it was unbound)."""
        ...

    def unbind_device(self, account_id: str, device_id: str, at: datetime) -> bool:
        """Unbind a device; return whether it was bound."""
        ...

    def device_bound(self, account_id: str, device_id: str) -> bool:
        """Return whether the device is currently bound to the account."""
        ...

    def store_code(self, code: OneTimeCode) -> None:
        """Insert a one-time code."""
        ...

    def consume_code(
        self, mobile_index: str, purpose: str, code_hash: str, now: datetime, *, max_attempts: int
    ) -> bool:
        """Use the newest unexpired code for this mobile and purpose if its hash matches.

        A match marks it used, so it can never match again. A mismatch counts an
        attempt, and a code with ``max_attempts`` failed attempts stops matching.
        """
        ...

    def use_totp_step(self, account_id: str, step: int) -> bool:
        """Record ``step`` as the account's last used TOTP time step, atomically.

        Returns False, and records nothing, when that step or a later one was already
        used, so each TOTP code logs in once even across service processes.
        """
        ...


def organisations_from_regions(regions: Regions) -> list[Organisation]:
    """Build the organisation tree from the districts, streets and communities, parents first.

    Every community becomes a community station (社区就业服务站). The names are
    the region names with the usual office suffix.
    """
    tree = [
        Organisation(
            CITY_ORG_ID, None, "city", "西安市人力资源和社会保障局", CITY_REGION_CODE, None
        )
    ]
    for code, name in regions.districts[["code", "name"]].itertuples(index=False):
        tree.append(
            Organisation(
                f"district:{code}", CITY_ORG_ID, "district", f"{name}就业服务中心", code, code
            )
        )
    districts = set(regions.districts["code"])
    streets = regions.streets[regions.streets["district_code"].isin(districts)]
    for code, name, district in streets[["code", "name", "district_code"]].itertuples(index=False):
        tree.append(
            Organisation(
                f"street:{code}",
                f"district:{district}",
                "street",
                f"{name}劳动保障所",
                code,
                district,
            )
        )
    street_codes = set(streets["code"])
    communities = regions.communities[regions.communities["street_code"].isin(street_codes)]
    columns = ["code", "name", "street_code", "district_code"]
    for code, name, street, district in communities[columns].itertuples(index=False):
        tree.append(
            Organisation(
                f"station:{code}",
                f"street:{street}",
                "station",
                f"{name}就业服务站",
                code,
                district,
            )
        )
    return tree
