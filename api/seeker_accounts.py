"""Seekers' own profiles: account links, registration, in-memory refresh and push contacts.

:class:`SeekerAccountService` links a seeker login account to the seeker profile whose
mobile blind index equals the account's. Both indexes are HMAC-SM3 under the one index
key of :func:`api.security.keys.load_key_material`, over the 11-digit normalised
mobile with the kind ``mobile``, so equal mobiles give equal entries and no plaintext
is compared or stored. A seeker without a profile registers one, which is stored in
the seekers table in the encrypted form of :mod:`store.seeker_records`.

:class:`SeekerDirectory` gives the push channels a seeker's mobile or WeChat openid,
decrypted at send time, so neither ever sits in the outbox, the stream or a log.
"""

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import psycopg
from fastapi import Request

from api.identity_setup import open_identity_store
from api.security.encryption import FieldContext
from api.security.identity import IdentityService
from api.security.keys import load_key_material
from api.security.seeker_pi import TABLE, SeekerPiCodec
from api.settings import Settings
from geo.regions import Regions
from matching.recommend import Recommender
from matching.seeker_profile import HomeArea, home_area
from push.channels import RecipientMissingError
from push.service import PushService
from store.audit import AuditWrite
from store.base import ReadStore
from store.identity import Account, IdentityStore
from store.postgres import PostgresStore
from store.seeker_accounts import ProfileWrite, SeekerAccounts
from store.seeker_records import SeekerStore
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

CONTACTS_TABLE = "seeker_contacts"
OPENID_COLUMN = "wechat_openid_enc"


@dataclass(frozen=True, slots=True)
class ProfileInput:
    """A seeker's own profile fields, already type-checked; the home as WGS84 or a community."""

    group: str
    education: int
    experience_years: float
    max_commute_min: int
    modes: list[str]
    home_lon: float | None = None
    home_lat: float | None = None
    community_code: str | None = None
    name: str | None = None
    major: str = ""
    occupation_wish_code: str = ""
    keywords: list[str] = field(default_factory=list)
    salary_wish_min: float | None = None
    salary_wish_max: float | None = None


@dataclass(frozen=True, slots=True)
class SavedProfile:
    """A stored profile: its seeker id, its in-memory row (exact home) and the digest push."""

    seeker_id: str
    row: pd.Series
    digest_push_id: str | None
    jobs: int


class SeekerAccountService:
    """Links, registers and refreshes seekers' own profiles.

    ``regions`` returns the districts, streets and communities; it is called on the first
    registration, so a service without registrations never loads them.
    """

    def __init__(
        self,
        accounts: SeekerAccounts,
        store: SeekerStore,
        codec: SeekerPiCodec,
        identity: IdentityService,
        regions: Callable[[], Regions],
    ) -> None:
        self.accounts = accounts
        self.store = store
        self.codec = codec
        self.identity = identity
        self._regions = regions

    def resolve(self, account: Account) -> str | None:
        """Return the seeker id linked to a seeker account, linking it by mobile when unlinked."""
        linked = self.accounts.linked_seeker(account.account_id, account.mobile_index)
        if linked is not None:
            return linked
        return self.accounts.link_by_mobile(
            account.account_id, account.mobile_index, datetime.now(UTC)
        )

    def save(
        self,
        account: Account,
        profile: ProfileInput,
        *,
        recommender: Recommender,
        pushes: PushService | None,
        audit: Callable[[str], AuditWrite] | None,
    ) -> SavedProfile:
        """Validate, encrypt and store a profile with its digest push, then refresh memory.

        ``audit`` returns the operation-log record of the write for the seeker id, which
        is new on a registration.

        Raises
        ------
        matching.seeker_profile.ProfileFieldError
            The home breaks a rule.
        store.seeker_accounts.ProfileConflictError
            The profile is linked to another account.
        """
        now = datetime.now(UTC)
        area = home_area(
            self._regions(),
            lon=profile.home_lon,
            lat=profile.home_lat,
            community_code=profile.community_code,
        )
        seeker_id = self.resolve(account)
        existing = None if seeker_id is None else self.store.seeker_record(seeker_id)
        seeker_id = seeker_id or f"reg-{uuid.uuid4().hex[:12]}"
        stored = self._stored_row(seeker_id, account, profile, area, existing)
        in_memory = self.in_memory_row(stored)
        batch = None
        if pushes is not None:
            batch = pushes.digest_batch(row_dict(in_memory), recommender.index, now)
        push_id = self.accounts.save_profile(
            ProfileWrite(
                account.account_id,
                stored,
                audit=None if audit is None else audit(seeker_id),
                digest=batch,
            ),
            now,
        )
        remember_seeker(recommender, pushes, in_memory)
        jobs = 0 if batch is None else len(batch.candidates)
        return SavedProfile(seeker_id, in_memory, push_id, jobs)

    def in_memory_row(self, stored: dict[str, Any]) -> pd.Series:
        """Return a stored row with its exact home decrypted, in the recommender's seeker form."""
        frame = self.codec.with_exact_homes(pd.DataFrame([stored]))
        row: pd.Series = frame.iloc[0]
        row.name = str(stored["seeker_id"])
        return row

    def refreshed_row(self, seeker_id: str, recommender: Recommender) -> pd.Series | None:
        """Return the seeker's row as stored now, updating memory when another process changed it.

        Every profile write re-encrypts the home with a fresh nonce, so an unchanged
        ``home_enc`` means the row in memory is current.
        """
        stored = self.store.seeker_record(seeker_id)
        if stored is None:
            return None
        known = recommender.seekers
        if seeker_id in known.index and known.at[seeker_id, "home_enc"] == stored["home_enc"]:
            row: pd.Series = known.loc[[seeker_id]].iloc[0]
            return row
        fresh = self.in_memory_row(stored)
        remember_seeker(recommender, None, fresh)
        return fresh

    def _stored_row(
        self,
        seeker_id: str,
        account: Account,
        profile: ProfileInput,
        area: HomeArea,
        existing: dict[str, Any] | None,
    ) -> dict[str, Any]:
        def encrypt(column: str, text: str) -> str:
            return self.codec.cipher.encrypt(text, FieldContext(TABLE, column, seeker_id))

        mobile = self.identity.cipher.decrypt(
            account.mobile_enc, FieldContext("accounts", "mobile_enc", account.account_id)
        )
        current = existing or {}
        name = profile.name if profile.name is not None else self._current_name(current, seeker_id)
        home = {"lon": area.exact_lon, "lat": area.exact_lat, "label": "", "university": ""}
        return {
            "seeker_id": seeker_id,
            "simulated": bool(current.get("simulated", False)),
            # Officers register assistance targets, so a seeker's own write keeps that group.
            "group": "assistance" if current.get("group") == "assistance" else profile.group,
            "education": profile.education,
            "experience_years": profile.experience_years,
            "major": profile.major,
            "occupation_wish_code": profile.occupation_wish_code,
            "occupation_wish_name": "",
            "keywords": ";".join(profile.keywords),
            "salary_wish_min": profile.salary_wish_min,
            "salary_wish_max": profile.salary_wish_max,
            "max_commute_min": profile.max_commute_min,
            "modes": ";".join(profile.modes),
            "home_lon": area.area_lon,
            "home_lat": area.area_lat,
            "home_kind": "registered_point" if area.exact else "registered_community",
            "home_district_code": area.district_code,
            "home_street_code": area.street_code,
            "home_community_code": area.community_code,
            "name_enc": encrypt("name_enc", name),
            "mobile_enc": current.get("mobile_enc") or encrypt("mobile_enc", mobile),
            "id_number_enc": current.get("id_number_enc") or encrypt("id_number_enc", ""),
            "hardship_enc": current.get("hardship_enc") or encrypt("hardship_enc", ""),
            "home_enc": encrypt("home_enc", json.dumps(home, separators=(",", ":"))),
            "id_number_index": current.get("id_number_index"),
            "mobile_index": current.get("mobile_index") or account.mobile_index,
        }

    def _current_name(self, current: dict[str, Any], seeker_id: str) -> str:
        if not current.get("name_enc"):
            return ""
        context = FieldContext(TABLE, "name_enc", seeker_id)
        return self.codec.cipher.decrypt(str(current["name_enc"]), context)

    # Contacts

    def openid_envelope(self, seeker_id: str, openid: str) -> str:
        """Return the envelope of a WeChat openid, bound to the seeker and column."""
        context = FieldContext(CONTACTS_TABLE, OPENID_COLUMN, seeker_id)
        return self.codec.cipher.encrypt(openid, context)


def row_dict(row: pd.Series) -> dict[str, Any]:
    """Return a seeker row as a dict with text keys."""
    return {str(key): value for key, value in row.items()}


def link_on_login(request: Request, account: Account) -> None:
    """Link a seeker account that just logged in to its profile, when one matches its mobile.

    A store failure is logged and does not fail the login, because ``/v1/me`` links
    lazily on the next request.
    """
    service: SeekerAccountService | None = getattr(request.app.state, "seeker_accounts", None)
    if service is None:
        return
    try:
        service.resolve(account)
    except (sqlite3.Error, psycopg.Error) as err:
        logger.warning("account %s not linked at login: %s", account.account_id, err)


def remember_seeker(recommender: Recommender, pushes: PushService | None, row: pd.Series) -> None:
    """Put one seeker row into the recommender's frame (replacing an older one) and the fan-out.

    The frame is replaced, not changed in place, so a concurrent reader keeps a whole frame.
    """
    seeker_id = str(row["seeker_id"])
    known = recommender.seekers
    added = pd.DataFrame([row.reindex(known.columns)], index=pd.Index([seeker_id]))
    added.index.name = known.index.name
    kept = known.drop(index=seeker_id) if seeker_id in known.index else known
    recommender.seekers = pd.concat([kept, added.astype(known.dtypes.to_dict(), errors="ignore")])
    if pushes is not None:
        pushes.replace_seekers(recommender.seekers)


class SeekerDirectory:
    """A seeker's push addresses, decrypted when a push is sent.

    SMS goes to the mobile of the seeker's profile, or of their login account when the
    push rows are keyed by an account without a profile. WeChat goes to the openid the
    seeker bound. Simulated seekers have invented mobiles and never get an address.
    Account and seeker envelopes are under the same keys, so one codec decrypts both.
    """

    def __init__(
        self,
        store: SeekerStore,
        accounts: SeekerAccounts,
        codec: SeekerPiCodec,
        identity_store: IdentityStore,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.codec = codec
        self.identity_store = identity_store

    def address(self, seeker_id: str, channel: str) -> str:
        """Return the address; raise RecipientMissingError when the seeker has none."""
        if channel == "sms":
            return self._mobile(seeker_id)
        if channel == "wechat":
            envelope = self.accounts.openid_envelope(seeker_id)
            if envelope is None:
                raise RecipientMissingError("no_wechat_openid")
            context = FieldContext(CONTACTS_TABLE, OPENID_COLUMN, seeker_id)
            return self.codec.cipher.decrypt(envelope, context)
        raise RecipientMissingError(f"no_address_on_{channel}")

    def _mobile(self, seeker_id: str) -> str:
        row = self.store.seeker_record(seeker_id)
        if row is not None:
            if bool(row["simulated"]):
                raise RecipientMissingError("simulated_seeker")
            context = FieldContext(TABLE, "mobile_enc", seeker_id)
            return self.codec.cipher.decrypt(str(row["mobile_enc"]), context)
        account = self.identity_store.account(seeker_id)
        if account is None or account.kind != "seeker":
            raise RecipientMissingError("no_mobile")
        context = FieldContext("accounts", "mobile_enc", account.account_id)
        return self.codec.cipher.decrypt(account.mobile_enc, context)


def seeker_directory(settings: Settings, store: object) -> SeekerDirectory | None:
    """Return the push address directory on a store with seeker records, else None."""
    accounts = seeker_accounts_for(store)
    if accounts is None or not isinstance(store, SeekerStore) or not isinstance(store, ReadStore):
        return None
    identity_store = open_identity_store(settings, store)
    return SeekerDirectory(store, accounts, SeekerPiCodec(load_key_material(settings).provider),
                           identity_store)  # fmt: skip


def seeker_accounts_for(store: object) -> SeekerAccounts | None:
    """Return the seeker account tables that share the service's store, or None."""
    if isinstance(store, PostgresStore):
        return SeekerAccounts.postgres(store.pool)
    if isinstance(store, SqliteStore):
        return SeekerAccounts.sqlite(store.path)
    return None
