"""FastAPI application factory and the service state it holds."""

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api.docs import mount_api_docs
from api.errors import install_error_handlers
from api.pages import mount_assets
from api.pages import router as pages_router
from api.routes import router as api_router
from api.settings import Settings
from matching.recommend import Recommender
from store.base import ReadStore
from store.postgres import Pool, PostgresStore, open_pool
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def create_app(settings: Settings, store: ReadStore | None = None) -> FastAPI:
    """Build the application; the store is opened from settings unless one is given.

    With ``settings.database.database_url`` set, the lifespan opens one connection
    pool, serves from a :class:`PostgresStore` and closes the pool on shutdown.
    Otherwise it reads the SQLite file at ``settings.data.store_path``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as resources:
            opened = store or _open_store(settings, resources)
            app.state.store = opened
            app.state.recommender = Recommender.from_store(opened)
            logger.info(
                "service ready: %d postings, %d seekers from %s",
                app.state.recommender.n_postings,
                app.state.recommender.n_seekers,
                opened.describe(),
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
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    mount_assets(app, REPO_ROOT)
    mount_api_docs(app, REPO_ROOT)
    return app


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
