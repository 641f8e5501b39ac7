"""Service settings, read from ``DOORSTEP_*`` environment variables.

Settings are built once in the entry point (``api.cli``) and passed down;
no other module reads the environment.
"""

import logging
from datetime import time
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from matching.push_rules import PushRules
from store.anchor_map import MAX_MAP_FEATURES
from store.cache import RedisOptions
from store.postgres import PoolOptions

logger = logging.getLogger(__name__)


class DataSettings(BaseSettings):
    """Locations of the source data and the embedded store."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    data_dir: Path = Field(
        default=Path("../shared/data"),
        description="Folder with one sub-folder per source, in the shapes of the Xi'an data set.",
    )
    store_path: Path = Field(
        default=Path("var/doorstep.sqlite"),
        description="SQLite file of the embedded store; built on first run.",
    )
    n_seekers: int = Field(
        default=20_000, ge=0, le=1_000_000, description="Simulated seekers generated at build."
    )
    seed: int = Field(default=20261204, description="Random seed of the seeker simulation.")
    transit_model: bool = Field(
        default=True,
        description="Build the transit commute model from data_dir at start (a few seconds); "
        "false keeps straight-line commute estimates.",
    )


class ServerSettings(BaseSettings):
    """HTTP server and page settings."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port of the API.")
    tile_url: str = Field(
        default="",
        description="Leaflet tile URL template for map pages; empty means no basemap tiles.",
    )
    tile_attribution: str = Field(default="", description="Attribution shown for the tiles.")
    index_sync_interval_s: float = Field(
        default=1.0,
        ge=0,
        # Bounded, because threading.Event.wait raises OverflowError above about 9e9 s.
        le=3600,
        description="Seconds between checks for posting and anchor changes that other service"
        " processes wrote to the store, at most 3600; 0 turns the background check off.",
    )
    tile_coord_sys: str = Field(
        default="wgs84",
        pattern="^(wgs84|gcj02|bd09)$",
        description="Coordinate system of the tile source; map features are converted to it.",
    )
    tile_source: Literal["none", "url", "tianditu", "amap"] | None = Field(
        default=None,
        description="Basemap of map pages: none, url (tile_url), tianditu or amap;"
        " unset means url when tile_url is set, else none.",
    )
    tianditu_key: SecretStr = Field(
        default=SecretStr(""),
        description="Tianditu browser key (tk), required by tile_source tianditu.",
    )

    @model_validator(mode="after")
    def _check_tile_source(self) -> Self:
        if self.tile_source == "tianditu" and not self.tianditu_key.get_secret_value():
            raise ValueError(
                "DOORSTEP_TIANDITU_KEY is missing; tile_source tianditu needs a Tianditu key"
            )
        if self.tile_source == "url" and not self.tile_url:
            raise ValueError("DOORSTEP_TILE_URL is empty; tile_source url needs a tile URL")
        if self.tile_source in ("none", "tianditu", "amap") and self.tile_url:
            raise ValueError(
                f"DOORSTEP_TILE_URL is set but tile_source is {self.tile_source};"
                " unset one of them, or set tile_source to url"
            )
        return self


class QuerySettings(BaseSettings):
    """Limits on API queries."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    max_radius_m: float = Field(
        default=50_000,
        gt=0,
        le=1_000_000,
        description="Largest radius_m accepted, at most 1,000,000 m.",
    )
    max_page_size: int = Field(default=100, ge=1, description="Largest page_size accepted.")
    max_bbox_features: int = Field(
        default=MAX_MAP_FEATURES,
        ge=1,
        le=MAX_MAP_FEATURES,
        description="Maximum features in one map response; above it anchors come as clusters.",
    )


class DatabaseSettings(BaseSettings):
    """The PostgreSQL production store; unset ``database_url`` keeps the embedded SQLite store."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        pattern="^postgres(ql)?://",
        description="postgresql://user:password@host:port/dbname; unset means SQLite.",
    )
    pool_min_size: int = Field(default=1, ge=0, description="Connections the pool keeps open.")
    pool_max_size: int = Field(default=4, ge=1, description="Most connections open at once.")
    pool_timeout_s: float = Field(
        default=10.0, gt=0, le=3600, description="Seconds to wait for a free pooled connection."
    )
    connect_timeout_s: int = Field(
        default=5, ge=1, description="Seconds to establish one database connection."
    )
    statement_timeout_ms: int = Field(
        default=30_000, ge=0, description="Server-side limit of one statement in ms; 0 is none."
    )

    def pool_options(self) -> PoolOptions:
        """Return the pool size and timeouts for :func:`store.postgres.open_pool`."""
        return PoolOptions(
            min_size=self.pool_min_size,
            max_size=self.pool_max_size,
            timeout_s=self.pool_timeout_s,
            connect_timeout_s=self.connect_timeout_s,
            statement_timeout_ms=self.statement_timeout_ms,
        )


class CacheSettings(BaseSettings):
    """Response cache and rate limit. Without ``redis_url`` both stay in process."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    redis_url: str | None = Field(
        default=None,
        pattern="^(rediss?|unix)://",
        description="redis://[:password@]host:port/db. Unset means in-process cache and limits.",
    )
    redis_namespace: str = Field(
        default="",
        pattern="^[A-Za-z0-9_.-]{0,64}$",
        description="Added after the doorstep: key prefix, to separate deployments on one Redis.",
    )
    cache_ttl_s: float = Field(
        default=300,
        gt=0,
        le=7 * 24 * 3600,
        description="Seconds a cached nearby or recommendation response lives, at most a week.",
    )
    cache_max_entries: int = Field(
        default=1024, ge=1, description="Most responses kept by the in-process cache."
    )
    rate_limit_per_minute: int = Field(
        default=120, ge=0, description="Requests to /v1 per client address and minute; 0 is off."
    )
    redis_socket_timeout_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="Seconds to connect to Redis and to wait for one reply.",
    )
    redis_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed Redis command, with backoff."
    )
    redis_backoff_s: float = Field(
        default=0.05,
        ge=0,
        le=60,
        description="Base delay of the exponential retry backoff, seconds.",
    )
    redis_cooldown_s: float = Field(
        default=5,
        ge=0,
        le=3600,
        description="Seconds to skip Redis after it failed, before trying again.",
    )
    redis_client_name: str = Field(
        default="doorstep",
        pattern="^[A-Za-z0-9_.-]{1,64}$",
        description="Connection name shown by Redis CLIENT LIST.",
    )

    def redis_options(self) -> RedisOptions:
        """Return the options of :func:`store.cache.open_redis`; raise ValueError without a URL."""
        if self.redis_url is None:
            raise ValueError("redis_url is not set; expected a redis:// URL")
        return RedisOptions(
            url=self.redis_url,
            socket_timeout_s=self.redis_socket_timeout_s,
            retries=self.redis_retries,
            backoff_s=self.redis_backoff_s,
            cooldown_s=self.redis_cooldown_s,
            client_name=self.redis_client_name,
        )


MIB = 1024 * 1024


class HttpSettings(BaseSettings):
    """Browser-facing HTTP rules: CORS, framing, HSTS and request body limits."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins allowed to call the API from another site, comma-separated "
        "(https://jobs.example.cn,https://kiosk.example.cn), or * for any. Empty allows none.",
    )
    cors_allow_credentials: bool = Field(
        default=False,
        description="Let the allowed origins send cookies and Authorization; invalid with *.",
    )
    frame_ancestors: str = Field(
        default="'none'",
        pattern=r"^('none'|'self'|'self'( https://[A-Za-z0-9.*:-]+)+|https://[A-Za-z0-9.*:-]+"
        r"( https://[A-Za-z0-9.*:-]+)*)$",
        description="CSP frame-ancestors sources: 'none' (default), 'self' or https origins.",
    )
    hsts_max_age_s: int = Field(
        default=31_536_000,
        ge=0,
        description="Strict-Transport-Security max-age in seconds, sent in production only.",
    )
    max_body_bytes: int = Field(
        default=MIB, ge=1024, description="Largest request body in bytes; larger ones get 413."
    )
    max_import_body_bytes: int = Field(
        default=3 * MIB,
        ge=1024,
        description="Largest body of POST /v1/staff/imports in bytes (a 2 MB file and its "
        "multipart framing).",
    )

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                continue
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or origin != (f"{parts.scheme}://{parts.netloc}")
            ):
                raise ValueError(
                    f"DOORSTEP_CORS_ALLOW_ORIGINS entry {origin!r} is invalid; expected"
                    " scheme://host[:port] without a path or trailing slash, or *"
                )
        return origins

    @model_validator(mode="after")
    def _reject_wildcard_with_credentials(self) -> Self:
        if self.cors_allow_credentials and "*" in self.cors_allow_origins:
            raise ValueError(
                "DOORSTEP_CORS_ALLOW_ORIGINS=* cannot be combined with"
                " DOORSTEP_CORS_ALLOW_CREDENTIALS=true; list the allowed origins instead"
            )
        return self


# Shortest accepted staff token secret in production: 32 bytes, the HS256 key size.
MIN_SECRET_BYTES = 32

# Secrets copied from examples; rejected in production whatever their length.
PLACEHOLDER_SECRETS = frozenset(
    {"changeme", "change-me", "change_me", "secret", "password", "default", "test", "example"}
)


class AuthSettings(BaseSettings):
    """Signing of session and login tokens (HS256 JWT) and the deployment environment."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    staff_token_secret: SecretStr | None = Field(
        default=None,
        description="HS256 key of session tokens, at least 32 bytes in production. Unset in "
        "development means the key in staff_token_secret_path, created on first use.",
    )
    staff_token_secret_path: Path = Field(
        default=Path("var/staff_token_secret"),
        description="Development only: file holding the generated staff token key (mode 0600).",
    )
    environment: Literal["development", "production"] = Field(
        default="development", description="production rejects missing or weak secrets."
    )
    identity_path: Path = Field(
        default=Path("var/identity.sqlite"),
        description="SQLite file of accounts, sessions and devices when no database_url is set.",
    )
    sms_outbox_path: Path = Field(
        default=Path("var/sms_outbox.jsonl"),
        description="Development only: file the default SMS gateway appends one-time codes to.",
    )
    sms_gateway: Literal["outbox", "http"] = Field(
        default="outbox",
        description="Gateway of login codes: outbox (a local file, rejected in production) or "
        "http (the SMS gateway at sms_endpoint).",
    )
    sms_endpoint: str | None = Field(
        default=None,
        pattern="^https?://",
        description="Base URL of the SMS gateway of login codes; https:// in production.",
    )
    sms_api_key: SecretStr | None = Field(
        default=None, description="Bearer key of the SMS gateway of login codes."
    )
    sms_signing_secret: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key that signs each SMS request; at least 32 bytes in production.",
    )
    sms_sign: str = Field(default="家门口就业", description="SMS signature (签名) of login codes.")
    sms_timeout_s: float = Field(
        default=5.0, gt=0, le=60, description="Seconds to wait for the SMS gateway's reply."
    )

    @model_validator(mode="after")
    def _reject_weak_production_secret(self) -> Self:
        if self.environment != "production":
            return self
        if self.staff_token_secret is None:
            raise ValueError(
                "DOORSTEP_STAFF_TOKEN_SECRET is missing; production needs a random key"
                f" of at least {MIN_SECRET_BYTES} bytes"
            )
        secret = self.staff_token_secret.get_secret_value()
        # The value itself is never quoted, only its length.
        if secret.strip().lower() in PLACEHOLDER_SECRETS or len(set(secret)) < 8:
            raise ValueError(
                "DOORSTEP_STAFF_TOKEN_SECRET is a placeholder; set a random key"
                f" of at least {MIN_SECRET_BYTES} bytes"
            )
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"DOORSTEP_STAFF_TOKEN_SECRET has {len(secret.encode())} bytes;"
                f" production needs at least {MIN_SECRET_BYTES}"
            )
        self._reject_production_sms_gateway()
        return self

    def _reject_production_sms_gateway(self) -> None:
        if self.sms_gateway == "outbox":
            raise ValueError(
                "DOORSTEP_SMS_GATEWAY=outbox is rejected in production, because the outbox file"
                " keeps codes and mobiles in plaintext; set DOORSTEP_SMS_GATEWAY=http with"
                " DOORSTEP_SMS_ENDPOINT, DOORSTEP_SMS_API_KEY and DOORSTEP_SMS_SIGNING_SECRET"
            )
        if self.sms_endpoint is None or not self.sms_endpoint.startswith("https://"):
            raise ValueError("DOORSTEP_SMS_ENDPOINT is missing or not https:// in production")
        if self.sms_api_key is None:
            raise ValueError("DOORSTEP_SMS_API_KEY is missing in production")
        signing = self.sms_signing_secret
        length = 0 if signing is None else len(signing.get_secret_value().encode())
        if length < MIN_SECRET_BYTES:
            raise ValueError(
                f"DOORSTEP_SMS_SIGNING_SECRET has {length} bytes;"
                f" production needs at least {MIN_SECRET_BYTES}"
            )


class ModelSettings(BaseSettings):
    """The learned ranker: registry folder, integrity key and training threads."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    model_dir: Path = Field(
        default=Path("var/models"),
        description="Registry folder of trained rankers, one sub-folder per model.",
    )
    model_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key that signs and checks models, at least 32 bytes in "
        "production. Unset in development means the key in model_key_path, created on first use.",
    )
    model_key_path: Path = Field(
        default=Path("var/model_key"),
        description="Development only: file holding the generated model key (mode 0600).",
    )
    fairness_report_path: Path = Field(
        default=Path("var/reports/fairness.json"),
        description="JSON report that `doorstep fairness` writes and the analyst route reads.",
    )
    n_jobs: int = Field(
        default=1,
        ge=1,
        le=256,
        description="LightGBM threads for training. LightGBM promises the same model only "
        "for the same thread count, so the default of 1 gives the same model on every machine.",
    )


# Shortest accepted HMAC-SM3 key of the blind index and of the audit chain, in bytes.
MIN_HMAC_KEY_BYTES = 32


class PrivacySettings(BaseSettings):
    """Keys of personal-information encryption, the blind index and the audit chain.

    Unset keys in development come from ``pi_key_path``, created on first use;
    production requires all three keys.
    """

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_", extra="ignore")

    pi_keys: SecretStr | None = Field(
        default=None,
        description="SM4 data keys as comma-separated KEY_ID:BASE64 entries, 16 bytes each. "
        "Old keys stay listed until rotation has re-encrypted every value.",
    )
    pi_active_key: str | None = Field(
        default=None,
        pattern="^[A-Za-z0-9_-]{1,32}$",
        description="Key id that encrypts new values; the first of pi_keys when unset.",
    )
    pi_index_key: SecretStr | None = Field(
        default=None,
        description=f"HMAC-SM3 key of the blind index, at least {MIN_HMAC_KEY_BYTES} bytes.",
    )
    audit_key: SecretStr | None = Field(
        default=None,
        description=f"HMAC-SM3 key of the audit hash chain, at least {MIN_HMAC_KEY_BYTES} bytes.",
    )
    audit_key_id: str = Field(
        default="audit1",
        pattern="^[A-Za-z0-9_-]{1,32}$",
        description="Id of audit_key, named by the rotation record that starts its epoch.",
    )
    audit_retired_keys: SecretStr | None = Field(
        default=None,
        description="Earlier audit chain keys as comma-separated ID:KEY entries; `doorstep audit "
        "verify` needs every key that tags a part of the chain.",
    )
    pi_key_path: Path = Field(
        default=Path("var/pi_keys.json"),
        description="Development only: generated data, index and audit keys (mode 0600).",
    )


class JobSettings(BaseSettings):
    """Background jobs of the through-train planning routes (tours and shuttle proposals)."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_JOB_", extra="ignore")

    workers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Jobs that run at once; each scores seekers on one CPU core at a time.",
    )
    max_queued: int = Field(
        default=8,
        ge=0,
        le=1000,
        description="Jobs that may wait for a worker; a request beyond them is rejected with 503.",
    )
    ttl_s: float = Field(
        default=3600,
        gt=0,
        le=7 * 24 * 3600,
        description="Seconds a finished job and its result are kept after it finishes.",
    )
    max_finished: int = Field(
        default=200,
        ge=1,
        le=10_000,
        description="Finished jobs kept in memory; beyond it the oldest are dropped early.",
    )


class PushSettings(BaseSettings):
    """ "Job at your doorstep" pushes: the rules, the delivery timing and the channels."""

    model_config = SettingsConfigDict(env_prefix="DOORSTEP_PUSH_", extra="ignore")

    enabled: bool = Field(default=True, description="Write push decisions on triggers.")
    time_zone: str = Field(default="Asia/Shanghai", description="Zone of quiet hours and caps.")
    quiet_start: time = Field(default=time(22, 0), description="Start of quiet hours, HH:MM.")
    quiet_end: time = Field(
        default=time(8, 0), description="End of quiet hours, HH:MM; held pushes go out then."
    )
    daily_cap: int = Field(default=3, ge=1, description="Maximum pushes per seeker and local day.")
    max_seekers_per_opening: int = Field(
        default=50,
        ge=1,
        description="Maximum seekers pushed per vacancy of a posting, best scores first.",
    )
    max_seekers_per_posting: int = Field(
        default=500, ge=1, description="Maximum seekers one posting is pushed to, any headcount."
    )
    min_score: float = Field(
        default=0.55,
        ge=0,
        le=1,
        description="Minimum baseline score (0..1) of a pushed job when no ranker model is loaded.",
    )
    min_model_score: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Minimum learned-ranker score (raw LambdaRank) of a pushed job; unset "
        "calibrates it to pass as many pairs as min_score passes with the baseline score.",
    )
    better_margin: float = Field(
        default=0.0,
        ge=-1,
        le=1,
        description="A job must beat the best job pushed to the seeker in the window by this.",
    )
    shown_window_days: int = Field(
        default=7, ge=0, description="Days of pushes the better-than-shown rule compares with."
    )
    link_base: str | None = Field(
        default=None,
        pattern="^https?://",
        description="Base URL of the job links in messages; unset derives it from "
        "DOORSTEP_HOST and DOORSTEP_PORT.",
    )
    max_attempts: int = Field(
        default=5,
        ge=1,
        description="Delivery attempts before a push is dead-lettered; each worker claim counts,"
        " so a worker that dies while sending uses one.",
    )
    digest_size: int = Field(default=5, ge=1, description="Maximum jobs in one digest message.")
    embedded_worker: bool = Field(
        default=True,
        description="Run an in-process delivery worker in `doorstep serve` on the SQLite store.",
    )
    workers: int = Field(default=2, ge=1, le=64, description="Stream workers of `doorstep worker`.")
    claim_lease_s: float = Field(
        default=30, gt=0, le=86_400, description="Seconds a worker's claim on a push lasts."
    )
    relay_lease_s: float = Field(
        default=60,
        gt=0,
        le=86_400,
        description="Seconds after which an undelivered queued push is queued again.",
    )
    consumer_idle_s: float = Field(
        default=3600,
        ge=60,
        le=7 * 86_400,
        description="Seconds after which `doorstep worker` deletes a consumer of the Redis group"
        " push-workers that has no pending entries, such as that of a worker that died.",
    )
    retry_after_s: float = Field(
        default=60, ge=0, le=86_400, description="Seconds before a failed delivery is tried again."
    )
    sms_endpoint: str | None = Field(
        default=None, pattern="^https?://", description="Base URL of the SMS gateway."
    )
    sms_api_key: SecretStr | None = Field(default=None, description="Bearer key of the gateway.")
    sms_signing_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key that signs each SMS request; unset: unsigned."
    )
    sms_sign: str = Field(default="西安人社", description="SMS signature (签名).")
    wechat_api_base: str = Field(
        default="https://api.weixin.qq.com",
        pattern="^https?://",
        description="Base URL of the WeChat server API.",
    )
    wechat_app_id: str | None = Field(default=None, description="Mini-program AppID.")
    wechat_app_secret: SecretStr | None = Field(default=None, description="Mini-program secret.")
    wechat_template_id: str | None = Field(
        default=None, description="Subscription message template id."
    )

    def rules(self) -> PushRules:
        """Return the push rules these settings describe."""
        return PushRules(
            time_zone=self.time_zone,
            quiet_start=self.quiet_start,
            quiet_end=self.quiet_end,
            daily_cap=self.daily_cap,
            max_seekers_per_opening=self.max_seekers_per_opening,
            max_seekers_per_posting=self.max_seekers_per_posting,
            min_score=self.min_score,
            min_model_score=self.min_model_score,
            better_margin=self.better_margin,
            shown_window_days=self.shown_window_days,
            link_base=self.link_base or DEFAULT_LINK_BASE,
            max_attempts=self.max_attempts,
            digest_size=self.digest_size,
        )

    @model_validator(mode="after")
    def _reject_empty_quiet_hours(self) -> Self:
        if self.quiet_start == self.quiet_end:
            raise ValueError(
                f"DOORSTEP_PUSH_QUIET_START and DOORSTEP_PUSH_QUIET_END are both"
                f" {self.quiet_start:%H:%M}; quiet hours need different start and end times"
            )
        return self

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"time zone {value!r} is unknown; expected an IANA name") from err
        return value


DEFAULT_LINK_BASE = "http://127.0.0.1:8000"
"""Link base of a `PushSettings` built without server settings, as by a bare worker."""


def server_link_base(server: ServerSettings) -> str:
    """Return ``http://host:port`` of the API server, the default base of push links.

    A wildcard listen address (``0.0.0.0``, ``::`` or empty) is no address a phone can
    open, so it becomes 127.0.0.1 and a warning names DOORSTEP_PUSH_LINK_BASE.
    """
    host = server.host.strip()
    if host in ("", "0.0.0.0", "::"):  # nosec B104 # compared, not bound
        logger.warning(
            "DOORSTEP_HOST %r is a wildcard address, so push links use 127.0.0.1;"
            " set DOORSTEP_PUSH_LINK_BASE to the public address",
            host,
        )
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{server.port}"


class Settings(BaseSettings):
    """All settings of one process."""

    data: DataSettings = Field(default_factory=DataSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    query: QuerySettings = Field(default_factory=QuerySettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    push: PushSettings = Field(default_factory=PushSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)

    @model_validator(mode="after")
    def _derive_push_link_base(self) -> Self:
        if self.push.link_base is None:
            self.push.link_base = server_link_base(self.server)
        return self

    @model_validator(mode="after")
    def _reject_weak_production_model_key(self) -> Self:
        if self.auth.environment != "production":
            return self
        key = self.model.model_key
        if key is None:
            raise ValueError(
                "DOORSTEP_MODEL_KEY is missing; production needs a random key"
                f" of at least {MIN_SECRET_BYTES} bytes to check model integrity"
            )
        # The value itself is never quoted, only its length.
        if len(key.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(
                f"DOORSTEP_MODEL_KEY has {len(key.get_secret_value().encode())} bytes;"
                f" production needs at least {MIN_SECRET_BYTES}"
            )
        return self

    @model_validator(mode="after")
    def _reject_missing_production_privacy_keys(self) -> Self:
        if self.auth.environment != "production":
            return self
        privacy = self.privacy
        if privacy.pi_keys is None:
            raise ValueError("DOORSTEP_PI_KEYS is missing; production needs KEY_ID:BASE64 SM4 keys")
        for variable, key in (
            ("DOORSTEP_PI_INDEX_KEY", privacy.pi_index_key),
            ("DOORSTEP_AUDIT_KEY", privacy.audit_key),
        ):
            # Only the length is quoted, never the key.
            length = 0 if key is None else len(key.get_secret_value().encode())
            if length < MIN_HMAC_KEY_BYTES:
                raise ValueError(
                    f"{variable} has {length} bytes; production needs a random key"
                    f" of at least {MIN_HMAC_KEY_BYTES}"
                )
        return self
