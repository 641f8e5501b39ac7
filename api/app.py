"""FastAPI application factory and the service state it holds."""

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

import redis
from fastapi import FastAPI

from api.auth_routes import router as auth_router
from api.curation_routes import router as curation_router
from api.docs import mount_api_docs
from api.errors import install_error_handlers
from api.identity_setup import open_identity
from api.middleware import install_middleware
from api.pages import mount_assets
from api.pages import router as pages_router
from api.permissions import check_route_permissions
from api.push_routes import router as push_router
from api.ranking import load_ranker, with_serving_context
from api.route_routes import router as route_router
from api.routes import router as api_router
from api.security.keys import load_key_material
from api.settings import DataSettings, Settings
from geo.errors import DataSourceError
from geo.transit import TransitNetwork
from matching.recommend import Recommender
from push.runtime import channels_from_settings, push_store_for, start_embedded_worker
from push.service import PushService
from store.audit import AuditChain
from store.base import ReadStore
from store.cache import (
    MemoryCache,
    RedisBreaker,
    RedisCache,
    ResponseCache,
    build_identity,
    key_prefix,
    mask_redis_url,
    open_redis,
)
from store.postgres import Pool, PostgresStore, open_pool
from store.rate_limit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def create_app(settings: Settings, store: ReadStore | None = None) -> FastAPI:
    """Build the application; the store is opened from settings unless one is given.

    With ``settings.database.database_url`` set, the lifespan opens one connection
    pool, serves from a :class:`PostgresStore` and closes the pool on shutdown.
    Otherwise it reads the SQLite file at ``settings.data.store_path``.
    With ``settings.cache.redis_url`` set, responses are cached and requests counted
    in Redis, and the client is closed on shutdown. Otherwise both stay in process.
    The newest valid model in ``settings.model.model_dir`` orders recommendations;
    without one the baseline score does, and ``/health`` reports which and why.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as resources:
            opened = store or _open_store(settings, resources)
            app.state.store = opened
            app.state.audit_chain = AuditChain(load_key_material(settings).audit_key)
            transit = load_transit_network(settings.data)
            app.state.transit = transit
            app.state.recommender = Recommender.from_store(opened, transit=transit)
            app.state.ranker_status, scorer = load_ranker(settings)
            app.state.recommender.scorer = with_serving_context(
                scorer, opened, app.state.recommender
            )
            app.state.recommender.prepare_ranking()
            app.state.build_id = build_identity(opened.meta())
            app.state.cache, app.state.rate_limiter = _open_cache(settings, resources)
            app.state.identity = open_identity(settings, opened, app.state.cache)
            open_pushes(app, settings, opened, transit, resources)
            logger.info(
                "service ready: %d postings, %d seekers from %s, ranker %s",
                app.state.recommender.n_postings,
                app.state.recommender.n_seekers,
                opened.describe(),
                app.state.recommender.ranker_id,
            )
            yield
            logger.info("service stopping")

    app = FastAPI(
        title="Doorstep Jobs 家门口就业",
        description="西安家门口就业岗位匹配服务 · geospatial job matching for Xi'an.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_middleware(app, settings)
    routers = [api_router, route_router, curation_router, auth_router, pages_router, push_router]
    for router in routers:
        app.include_router(router)
    mount_assets(app, REPO_ROOT)
    mount_api_docs(app, REPO_ROOT, settings)
    check_route_permissions(app, routers)
    return app


# Networks built in this process, by resolved data folder; None when its files are missing.
_transit_networks: dict[Path, TransitNetwork | None] = {}
_transit_lock = threading.Lock()


def load_transit_network(settings: DataSettings) -> TransitNetwork | None:
    """Return the transit network of ``settings.data_dir``, or None when it is off or missing.

    The network depends only on the data folder, so it is built once per process and
    folder and shared by every application and command. The first build caches its
    stop-to-stop minutes beside the store file, which saves most of the build on the
    next start.
    """
    if not settings.transit_model:
        logger.info("transit model off: commute estimates use straight lines")
        return None

    data_dir = settings.data_dir.resolve()
    with _transit_lock:
        if data_dir not in _transit_networks:
            _transit_networks[data_dir] = _build_transit_network(
                data_dir, settings.store_path.parent
            )
        return _transit_networks[data_dir]


def _build_transit_network(data_dir: Path, cache_dir: Path) -> TransitNetwork | None:
    try:
        return TransitNetwork.from_data_dir(data_dir, cache_dir=cache_dir)
    except DataSourceError as err:
        logger.warning("transit model not built, commute estimates use straight lines: %s", err)
        return None


def _open_store(settings: Settings, resources: ExitStack) -> ReadStore:
    """Open the configured store; a PostgreSQL pool is closed when ``resources`` exits."""
    url = settings.database.database_url
    if url is None:
        return SqliteStore(settings.data.store_path)

    pool = open_pool(url, settings.database.pool_options())
    resources.callback(_close_pool, pool)
    return PostgresStore(pool)


def _close_pool(pool: Pool) -> None:
    pool.close()
    logger.info("pool %r closed", pool.name)


def _open_cache(
    settings: Settings, resources: ExitStack
) -> tuple[ResponseCache, RateLimiter | None]:
    """Create the response cache and the rate limiter (None when the limit is 0)."""
    options = settings.cache
    limit = options.rate_limit_per_minute
    if options.redis_url is None:
        memory_limiter = MemoryRateLimiter(limit) if limit else None
        return MemoryCache(options.cache_ttl_s, options.cache_max_entries), memory_limiter

    client = open_redis(options.redis_options())
    resources.callback(_close_redis, client, mask_redis_url(options.redis_url))
    breaker = RedisBreaker(
        options.redis_cooldown_s, name=f"redis {mask_redis_url(options.redis_url)}"
    )
    breaker.call(client.ping)  # logs one warning now if Redis is down at start
    prefix = key_prefix(options.redis_namespace)
    cache = RedisCache(client, breaker, options.cache_ttl_s, prefix)
    redis_limiter = RedisRateLimiter(client, breaker, limit, prefix) if limit else None
    return cache, redis_limiter


def _close_redis(client: "redis.Redis", where: str) -> None:
    client.close()
    client.connection_pool.disconnect()
    logger.info("redis client on %s closed", where)


def open_pushes(
    app: FastAPI,
    settings: Settings,
    store: ReadStore,
    transit: TransitNetwork | None,
    resources: ExitStack,
) -> None:
    """Set the push store and fan-out service on the app; start the embedded worker.

    The in-process worker runs on the SQLite store only; with PostgreSQL,
    ``doorstep worker`` delivers through the Redis stream.
    """
    app.state.push_store = push_store_for(store)
    app.state.push_service = PushService(
        settings.push.rules(), app.state.recommender.seekers, transit
    )
    if settings.push.embedded_worker and isinstance(store, SqliteStore):
        channels = channels_from_settings(settings.push)
        running = start_embedded_worker(app.state.push_store, settings.push, channels)
        resources.callback(running.close)
