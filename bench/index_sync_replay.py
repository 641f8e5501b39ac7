"""Time how long a service process takes to apply posting changes another process wrote.

``python -m bench.index_sync_replay [--changes 200] [--store var/doorstep.sqlite]``

Copies the embedded store to a temporary folder and starts the application on the copy
with the background sync off. A second store object on the same file, as another
process would, deactivates the first ``--changes`` loaded postings, and the script
times :meth:`api.index_sync.IndexSync.catch_up` over them. With a ranker model in
``DOORSTEP_MODEL_DIR``, every rebuild of the job index also builds the posting feature
table. Other settings come from the environment, as for ``doorstep serve``.
"""

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import CacheSettings, DataSettings, PushSettings, ServerSettings, Settings
from store.sqlite import SqliteStore

logger = logging.getLogger(__name__)


def replay(store_path: Path, changes: int) -> None:
    """Print the time that applying ``changes`` posting deactivations takes."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / store_path.name
        shutil.copy(store_path, path)
        settings = Settings(
            data=DataSettings(store_path=path),
            server=ServerSettings(index_sync_interval_s=0),
            push=PushSettings(enabled=False),
            cache=CacheSettings(rate_limit_per_minute=0),
        )
        with TestClient(create_app(settings)) as client:
            state = client.app.state  # type: ignore[attr-defined]
            recommender = state.recommender
            loaded = recommender.n_postings
            posting_ids = recommender.postings["posting_id"].astype(str).tolist()[:changes]
            writer = SqliteStore(path)
            for posting_id in posting_ids:
                writer.set_posting_active(posting_id, False)

            started = time.perf_counter()
            applied = state.index_sync.catch_up()
            seconds = time.perf_counter() - started
            print(
                f"{loaded} postings, ranker {recommender.ranker_id}:"
                f" applied {applied} posting changes in {seconds:.2f} s;"
                f" {state.recommender.n_postings} postings left"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--changes", type=int, default=200, help="Posting deactivations to apply (default 200)."
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=Path("var/doorstep.sqlite"),
        help="Embedded store file to copy (default var/doorstep.sqlite).",
    )
    options = parser.parse_args()
    if options.changes < 1:
        parser.error(f"--changes must be at least 1, got {options.changes}")
    logging.basicConfig(level=logging.WARNING)
    replay(options.store, options.changes)


if __name__ == "__main__":
    main()
