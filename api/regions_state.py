"""The districts, streets and communities of the data folder, loaded once per application."""

import logging
import threading

from starlette.datastructures import State

from geo.regions import Regions, load_regions

logger = logging.getLogger(__name__)

_lock = threading.Lock()


def app_regions(state: State) -> Regions:
    """Return the app's regions, loading them from ``settings.data.data_dir`` on first use."""
    with _lock:
        regions: Regions | None = getattr(state, "regions", None)
        if regions is None:
            data_dir = state.settings.data.data_dir
            regions = load_regions(data_dir)
            state.regions = regions
            logger.info("loaded regions from %s", data_dir)
    return regions
