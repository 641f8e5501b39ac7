"""FastAPI application factory and the service state it holds."""

import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import cast

import redis
from fastapi import APIRouter, Depends, FastAPI
from starlette.datastructures import State

from api.admin_routes import router as admin_router
from api.analyst_routes import router as analyst_router
from api.auth_routes import router as auth_router
from api.background_jobs import JobRunner
from api.curation_routes import router as curation_router
from api.docs import mount_api_docs
from api.erasers import EraserRegistry
from api.errors import install_error_handlers
from api.identity_setup import open_identity
from api.index_sync import IndexChangeSource, IndexSync, LoadedIndex
from api.me_routes import router as me_router
from api.middleware import install_middleware
from api.officer_exchange_routes import router as officer_exchange_router
from api.officer_page import router as officer_page_router
from api.officer_routes import router as officer_router
from api.ogc import install_ogc_error_handler
from api.ogc import router as ogc_router
from api.pages import mount_assets
from api.pages import router as pages_router
from api.permissions import check_route_permissions
from api.push_routes import router as push_router
from api.ranking import fanout_ranker, load_ranker, with_serving_context
from api.regions_state import app_regions
from api.route_routes import router as route_router
from api.routes import enforce_rate_limit, seeker_cache_prefix
from api.routes import router as api_router
from api.security.keys import load_key_material
from api.security.seeker_pi import SeekerPiCodec
from api.seeker_accounts import SeekerAccountService, SeekerDirectory, seeker_accounts_for
from api.seeker_routes import router as seeker_router
from api.settings import DataSettings, Settings
from api.through_train_routes import router as through_train_router
from api.tour_job_routes import router as tour_job_router
from api.tour_routes import router as tour_router
from api.zone_routes import router as zone_router
from geo.errors import DataSourceError
from geo.transit import TransitNetwork
from matching.recommend import Recommender
from models.serving import ModelScorer
from push.erase import push_eraser
from push.pipeline import StreamKeys
from push.runtime import channels_from_settings, push_store_for, start_embedded_worker
from push.service import PushService
from store.assistance_store import AssistanceStore, assistance_store_for
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
from store.seeker_accounts import SeekerAccounts
from store.seeker_records import SeekerStore
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

# Every router of the service, in include order. The permission test walks the same list.
ROUTERS: tuple[APIRouter, ...] = (
    api_router,
    route_router,
    through_train_router,
    analyst_router,
    tour_router,
    tour_job_router,
    curation_router,
    seeker_router,
    auth_router,
    admin_router,
    pages_router,
    ogc_router,
    push_router,
    zone_router,
    officer_router,
    officer_exchange_router,
    officer_page_router,
    me_router,
)


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
            app.state.seeker_codec = SeekerPiCodec(load_key_material(settings).provider)
            app.state.ranker_status, app.state.model_scorer = load_ranker(settings)
            app.state.recommender, loaded = load_job_index(app.state)
            sync = IndexSync(
                app.state,
                loaded.identity,
                loaded.applied,
                settings.server.index_sync_interval_s,
                reload=lambda: reload_job_index(app),
            )
            app.state.index_sync = sync
            app.state.build_id = sync.build_id
            app.state.cache, app.state.rate_limiter = _open_cache(settings, resources)
            app.state.identity = open_identity(settings, opened, app.state.cache)
            app.state.seeker_accounts = open_seeker_accounts(app, opened)
            open_pushes(app, settings, opened, transit, resources)
            app.state.assistance_store = _open_assistance(opened)
            app.state.through_train_jobs = JobRunner(settings.jobs)
            resources.callback(app.state.through_train_jobs.shutdown)
            _register_erasers(app)
            _freeze_start_up_objects()
            sync.start()
            resources.callback(sync.stop)
            logger.info(
                "service ready: %d postings, %d seekers from %s, ranker %s",
                app.state.recommender.n_postings,
                app.state.recommender.n_seekers,
                opened.describe(),
                app.state.recommender.ranker_id,
            )
            yield
            logger.info("service stopping")
            # Frozen objects are never collected, so a stopped app (as in tests) gives them back.
            gc.unfreeze()

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
    install_ogc_error_handler(app)
    install_middleware(app, settings)
    app.state.erasers = EraserRegistry()
    # Every /v1 route counts against the per-address limit, the login routes included,
    # so that password guessing across many accounts is slowed as well.
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(enforce_rate_limit)])
    mount_assets(app, REPO_ROOT)
    mount_api_docs(app, REPO_ROOT, settings)
    check_route_permissions(app, ROUTERS)
    return app


def load_job_index(state: State) -> tuple[Recommender, LoadedIndex]:
    """Load the recommender from ``state.store`` with the model ``state.model_scorer``.

    The store's build identity and newest change id are read before the postings, so a
    change committed during the load is applied again, which changes nothing, and a
    rebuild during the load is found on the next check.
    """
    store = state.store
    identity = build_identity(store.meta())
    applied = latest_index_change(store)
    recommender = Recommender.from_store(
        store, transit=state.transit, exact_homes=state.seeker_codec.with_exact_homes
    )
    recommender.scorer = with_serving_context(state.model_scorer, store, recommender)
    recommender.prepare_ranking()
    return recommender, LoadedIndex(identity, applied)


def reload_job_index(app: FastAPI) -> LoadedIndex:
    """Load the job index from the store again, as start-up does, and put it in service.

    :class:`api.index_sync.IndexSync` calls this with its lock held, when the store was
    rebuilt or applying a change failed. Requests in flight finish with the old
    recommender. The push fan-out gets the new postings and seekers, and the objects
    left after the swap are frozen out of garbage collection again.
    """
    state = app.state
    if isinstance(state.store, SqliteStore):
        state.store.prepare_file()  # a rebuilt file may lack what this version adds
    recommender, loaded = load_job_index(state)
    # Built before the swap, so a failure leaves the old index and fan-out in service.
    push_service = fanout_service(app, state.transit, recommender)
    state.recommender = recommender
    state.push_service = push_service
    gc.unfreeze()
    _freeze_start_up_objects()
    return loaded


def latest_index_change(store: ReadStore) -> int:
    """Return the store's newest job-index change id, 0 for a store without the change log."""
    if not isinstance(store, IndexChangeSource):
        logger.warning(
            "store %s has no job-index change log: posting changes of other processes"
            " reach this one only on restart",
            store.describe(),
        )
        return 0
    return store.latest_index_change()


def _register_erasers(app: FastAPI) -> None:
    """Register the erasers of what the service holds in memory and in the response cache.

    The store row is deleted by the DELETE route itself, with its audit record. Each
    start replaces the erasers of the previous one, which held its recommender and cache.
    NOTE: a recommendation computed while an erasure runs can be cached after the
    cache eraser ran; that entry lives until DOORSTEP_CACHE_TTL_S expires.
    """
    state = app.state
    state.erasers.register(
        "recommender", lambda seeker_id: _forget_in_index(state, seeker_id), replace=True
    )
    state.erasers.register(
        "response_cache",
        lambda seeker_id: state.cache.delete_prefix(seeker_cache_prefix(seeker_id)),
        replace=True,
    )
    # Pushes: consent, shown jobs, outbox and inbox rows, and their stream entries when
    # the stream lives in the cache's Redis (the one `doorstep worker` uses).
    client = state.cache.client if isinstance(state.cache, RedisCache) else None
    keys = StreamKeys.for_namespace(state.settings.cache.redis_namespace)
    state.erasers.register("pushes", push_eraser(state.push_store, client, keys), replace=True)
    if state.assistance_store is not None:
        state.erasers.register("assistance", state.assistance_store.delete_target, replace=True)
    state.erasers.register("push_fanout", lambda _: _refresh_fanout(app), replace=True)
    if state.seeker_accounts is not None:
        accounts: SeekerAccounts = state.seeker_accounts.accounts
        state.erasers.register("seeker_account", accounts.erase_seeker, replace=True)


def _forget_in_index(state: State, seeker_id: str) -> None:
    """Drop an erased seeker from the job index in service.

    It runs under the sync's lock, which a reload of the index holds. So a reload that
    read the seeker before the store deleted it puts its recommender in service first,
    and the seeker is then dropped from that recommender too.
    """
    with state.index_sync.lock:
        state.recommender.forget_seeker(seeker_id)


def _refresh_fanout(app: FastAPI) -> None:
    """Give the push fan-out the recommender's seekers, after an eraser dropped one."""
    state = app.state
    with state.index_sync.lock:  # so a reload cannot swap both in between
        state.push_service.replace_seekers(state.recommender.seekers)


def open_seeker_accounts(app: FastAPI, store: ReadStore) -> SeekerAccountService | None:
    """Return the seekers' own-profile service, or None for a store without seeker records."""
    accounts = seeker_accounts_for(store)
    if accounts is None or not isinstance(store, SeekerStore):
        logger.warning("store %s has no seeker records: /v1/me returns 503", store.describe())
        return None
    state = app.state
    return SeekerAccountService(
        accounts, store, state.seeker_codec, state.identity, lambda: app_regions(state)
    )


# Networks built in this process, by resolved data folder; None when its files are missing.
_transit_networks: dict[Path, TransitNetwork | None] = {}
_transit_lock = threading.Lock()


def _freeze_start_up_objects() -> None:
    """Move every object alive after start-up out of the garbage collector's reach.

    The store's frames, the indexes and the feature table hold hundreds of thousands of
    tracked objects. A full collection during a request scans them all (212 ms once with
    the benchmark's 200,000 synthetic postings on a shared 2-core machine), and frozen
    objects are never scanned again.
    """
    gc.collect()
    gc.freeze()
    logger.info("froze %d start-up objects out of garbage collection", gc.get_freeze_count())


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


def seeker_directory(app: FastAPI) -> SeekerDirectory | None:
    """Return the push address directory of the app's seekers and accounts, or None."""
    service: SeekerAccountService | None = app.state.seeker_accounts
    if service is None:
        return None
    return SeekerDirectory(service.store, service.accounts, service.codec, service.identity.store)


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


def _open_assistance(store: ReadStore) -> AssistanceStore | None:
    """Return the assistance store sharing ``store``, or None for a store without one."""
    try:
        return assistance_store_for(store)
    except TypeError as err:
        logger.warning("assistance ledger unavailable: %s", err)
        return None


def fanout_service(
    app: FastAPI, transit: TransitNetwork | None, recommender: Recommender | None = None
) -> PushService:
    """Return the push fan-out over ``recommender``, by default the app's; set its ranker status."""
    recommender = app.state.recommender if recommender is None else recommender
    # The service loads a ModelScorer (api.ranking.load_ranker); fanout_ranker reports
    # any other scorer as unable to score a feature matrix.
    scorer = cast(ModelScorer | None, recommender.scorer)
    app.state.push_ranker_status, ranker = fanout_ranker(
        app.state.ranker_status, scorer, recommender.posting_feature_values
    )
    return PushService(
        app.state.settings.push.rules(),
        recommender.seekers,
        transit,
        ranker=ranker,
        postings=lambda: recommender.postings,
    )


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
    app.state.push_service = fanout_service(app, transit)
    if settings.push.embedded_worker and isinstance(store, SqliteStore):
        channels = channels_from_settings(settings.push, seeker_directory(app))
        running = start_embedded_worker(app.state.push_store, settings.push, channels)
        resources.callback(running.close)
