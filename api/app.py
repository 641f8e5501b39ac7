"""FastAPI application factory and the service state it holds."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.pages import mount_assets
from api.pages import router as pages_router
from api.routes import router as api_router
from api.settings import Settings
from matching.recommend import Recommender
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]


def create_app(settings: Settings, store: SqliteStore | None = None) -> FastAPI:
    """Build the application; the store is opened from settings unless one is given."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = store or SqliteStore(settings.data.store_path)
        app.state.store = opened
        app.state.recommender = Recommender.from_store(opened)
        logger.info(
            "service ready: %d postings, %d seekers from %s",
            app.state.recommender.n_postings,
            app.state.recommender.n_seekers,
            opened.path,
        )
        yield
        logger.info("service stopping")

    app = FastAPI(
        title="Doorstep Jobs 家门口就业",
        description="西安家门口就业岗位匹配服务 · geospatial job matching for Xi'an.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(pages_router)
    mount_assets(app, REPO_ROOT)
    return app
