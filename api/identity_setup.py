"""Build the identity service of one process from settings and the opened store."""

import logging
import time
from collections.abc import Callable

from api.security.blind_index import BlindIndex
from api.security.encryption import FieldCipher
from api.security.identity import IdentityService
from api.security.keys import load_key_material
from api.security.sms import sms_gateway
from api.settings import Settings
from api.staff_auth import staff_token_secret
from store.base import ReadStore
from store.cache import RedisCache, ResponseCache
from store.identity import IdentityStore, organisations_from_regions
from store.postgres import PostgresStore
from store.postgres_identity import PostgresIdentity
from store.rate_limit import MemoryIntervalLimiter, RateLimiter, RedisIntervalLimiter
from store.sqlite_identity import SqliteIdentity

logger = logging.getLogger(__name__)

# Seconds between two SMS codes to one mobile; a request sooner gets 429 with Retry-After.
SMS_INTERVAL_S = 60.0


def open_identity(settings: Settings, store: ReadStore, cache: ResponseCache) -> IdentityService:
    """Return the identity service on the store's database (PostgreSQL) or its own SQLite file.

    The SMS limiter shares the response cache's Redis client when there is one,
    so every service process counts one mobile's codes together.
    """
    identity_store = open_identity_store(settings, store)
    material = load_key_material(settings)
    gateway = sms_gateway(settings.auth)
    return IdentityService(
        identity_store,
        cipher=FieldCipher(material.provider),
        index=BlindIndex(material.provider.index_key()),
        gateway=gateway,
        sms_limiter=sms_limiter(cache),
        token_key=staff_token_secret(settings.auth),
    )


def open_identity_store(settings: Settings, store: ReadStore) -> IdentityStore:
    """Return the PostgreSQL identity tables of a PostgreSQL store, else the SQLite file."""
    if isinstance(store, PostgresStore):
        return PostgresIdentity(store.pool)
    return SqliteIdentity(settings.auth.identity_path)


def sms_limiter(cache: ResponseCache, clock: Callable[[], float] = time.time) -> RateLimiter:
    """Return the per-mobile SMS limiter: in Redis beside the cache, else in process."""
    if isinstance(cache, RedisCache):
        prefix = cache.prefix.removesuffix("cache:")
        return RedisIntervalLimiter(
            cache.client, cache.breaker, SMS_INTERVAL_S, f"{prefix}sms:", clock
        )
    return MemoryIntervalLimiter(SMS_INTERVAL_S, clock)


def seed_organisation_tree(identity_store: IdentityStore, settings: Settings) -> int:
    """Insert the organisation tree built from the data folder's regions; return new rows."""
    from geo.regions import load_regions

    added = identity_store.seed_organisations(
        organisations_from_regions(load_regions(settings.data.data_dir))
    )
    logger.info("organisation tree seeded in %s: %d new", identity_store.describe(), added)
    return added
