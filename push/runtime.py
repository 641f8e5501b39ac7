"""Wiring of the push pipeline from settings: the push store, the channels and the workers.

``doorstep serve`` on the embedded store starts :func:`start_embedded_worker`;
``doorstep worker`` runs :func:`run_stream_pipeline` (a relay and N stream workers
in threads of one process) until it is interrupted.
"""

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from push.channels import (
    Channel,
    InboxChannel,
    RecipientDirectory,
    RecipientMissingError,
    SmsGatewayChannel,
    WeChatSubscribeChannel,
)
from push.pipeline import (
    Deliverer,
    EmbeddedWorker,
    PipelineOptions,
    StreamKeys,
    StreamRelay,
    StreamWorker,
)
from store.cache import RedisOptions, open_redis
from store.postgres import PostgresStore
from store.push_store import PushStore
from store.sqlite import SqliteStore

if TYPE_CHECKING:
    from api.settings import PushSettings, Settings

logger = logging.getLogger(__name__)


class NoRecipientDirectory:
    """A directory without addresses, for channels built without the seekers' store.

    Every SMS and WeChat push through it is skipped with the reason ``no_directory``.
    The service and ``doorstep worker`` pass :class:`api.seeker_accounts.SeekerDirectory`.
    """

    def address(self, seeker_id: str, channel: str) -> str:
        """Raise RecipientMissingError: no address is known."""
        raise RecipientMissingError("no_directory")


def push_store_for(store: object) -> PushStore:
    """Return the push store that shares the service's store (file or connection pool)."""
    if isinstance(store, PostgresStore):
        return PushStore.postgres(store.pool)
    if isinstance(store, SqliteStore):
        return PushStore.sqlite(store.path)
    raise TypeError(f"store {type(store).__name__} has no push tables")


def pipeline_options(settings: "PushSettings") -> PipelineOptions:
    """Return the relay and worker timing of the settings."""
    return PipelineOptions(
        claim_lease_s=settings.claim_lease_s,
        relay_lease_s=settings.relay_lease_s,
        retry_after_s=settings.retry_after_s,
        autoclaim_idle_ms=int(settings.claim_lease_s * 1000),
        consumer_idle_s=settings.consumer_idle_s,
    )


def channels_from_settings(
    settings: "PushSettings", directory: RecipientDirectory | None = None
) -> dict[str, Channel]:
    """Return the inbox channel and each HTTP channel whose endpoint and keys are set."""
    found = directory or NoRecipientDirectory()
    channels: dict[str, Channel] = {"inbox": InboxChannel()}
    if settings.sms_endpoint and settings.sms_api_key:
        signing = settings.sms_signing_secret
        channels["sms"] = SmsGatewayChannel(
            settings.sms_endpoint,
            settings.sms_api_key.get_secret_value(),
            settings.sms_sign,
            found,
            signing_secret=None if signing is None else signing.get_secret_value().encode(),
        )
    if settings.wechat_app_id and settings.wechat_app_secret and settings.wechat_template_id:
        channels["wechat"] = WeChatSubscribeChannel(
            settings.wechat_api_base,
            settings.wechat_app_id,
            settings.wechat_app_secret.get_secret_value(),
            settings.wechat_template_id,
            found,
        )
    return channels


@dataclass
class RunningWorkers:
    """Threads of a running pipeline and the event that stops them."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the threads and wait for them."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout_s)


def start_embedded_worker(
    push_store: PushStore, settings: "PushSettings", channels: Mapping[str, Channel]
) -> RunningWorkers:
    """Start the in-process worker of the embedded store in a daemon thread."""
    deliverer = Deliverer(push_store, channels, settings.rules(), pipeline_options(settings))
    running = RunningWorkers()
    thread = threading.Thread(
        target=EmbeddedWorker(deliverer).run, args=(running.stop,), name="push-worker", daemon=True
    )
    thread.start()
    running.threads.append(thread)
    return running


def start_stream_pipeline(
    push_store: PushStore, settings: "Settings", channels: Mapping[str, Channel]
) -> RunningWorkers:
    """Start one relay and ``settings.push.workers`` stream workers in threads."""
    options = pipeline_options(settings.push)
    cache = settings.cache
    if cache.redis_url is None:
        raise ValueError("DOORSTEP_REDIS_URL is not set; `doorstep worker` needs Redis")
    # XREADGROUP blocks up to block_ms, so the socket timeout must be longer than that.
    client = open_redis(
        RedisOptions(
            url=cache.redis_url,
            socket_timeout_s=max(cache.redis_socket_timeout_s, options.block_ms / 1000 + 2),
            retries=cache.redis_retries,
            backoff_s=cache.redis_backoff_s,
            cooldown_s=cache.redis_cooldown_s,
            client_name=f"{cache.redis_client_name}-push",
        )
    )
    keys = StreamKeys.for_namespace(cache.redis_namespace)
    rules = settings.push.rules()
    running = RunningWorkers()
    relay = StreamRelay(push_store, client, keys, options)
    running.threads.append(threading.Thread(target=relay.run, args=(running.stop,), name="relay"))
    for number in range(settings.push.workers):
        worker = StreamWorker(Deliverer(push_store, channels, rules, options), client, keys)
        thread = threading.Thread(target=worker.run, args=(running.stop,), name=f"worker-{number}")
        running.threads.append(thread)
    for thread in running.threads:
        thread.start()
    return running
