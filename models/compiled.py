"""Tree ranges of a LightGBM model compiled to C shared libraries with Treelite and TL2cgen.

The ranking cascade (`matching.cascade`) requests the raw score summed over a range of
trees: the first stage's trees, then only the trees each later stage adds. TL2cgen
turns a Treelite model into C code, and the compiled library walks the trees without
LightGBM's per-row overhead. For these models it is about twice as fast and returns
the same float64 sums: LightGBM's thresholds stay float64, the float32 features are
compared after widening to float64, and the trees are summed in order.

Each range is a separate model, cut from the booster with
``Booster.model_to_string(start_iteration, num_iteration)``, so its library sums
exactly the trees that `lightgbm.Booster.predict` sums with the same range.

`compile_tree_ranges` runs at `doorstep train` time and writes the libraries into the
model's folder. The registry records each library's SHA-256 in the manifest, which
its HMAC tag covers. `CompiledTrees.load` checks every hash before the library is
loaded. A library is native code for the machine and C library it was built on.
"""

import contextlib
import hashlib
import io
import itertools
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

COMPILED_FOLDER = "compiled"
"""Folder, inside a model's folder, that contains the compiled libraries."""
TOOLCHAIN = "gcc"
"""C compiler that TL2cgen calls."""
# Trees per C translation unit (TL2cgen's ``parallel_comp``). The unit count does not
# change the order in which the trees are summed.
_TREES_PER_UNIT = 25


class CompiledTreesError(ValueError):
    """A compiled library failed its hash check or does not match its manifest entry."""


@dataclass(frozen=True)
class TreeRange:
    """Trees ``start`` (inclusive) to ``stop`` (exclusive) of a model, counted from 0."""

    start: int
    stop: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.stop:
            raise ValueError(
                f"tree range {self.start}..{self.stop} is invalid; expected 0 <= start < stop"
            )

    @property
    def file_name(self) -> str:
        """Library file name, such as ``trees-0-15.so``."""
        return f"trees-{self.start}-{self.stop}.so"


def cascade_ranges(boundaries: Sequence[int], tree_count: int) -> list[TreeRange]:
    """Return the tree ranges that a cascade with stages ending at ``boundaries`` requests.

    A cascade skips its first stages when few rows reach them, and every stage after
    the first that runs adds only its own trees. So it requests ``0..b`` for each
    boundary ``b`` and the model's end, and each range between consecutive ones.
    Boundaries at or past ``tree_count`` are dropped, as the cascade skips those stages.
    """
    ends = sorted({b for b in boundaries if 0 < b < tree_count} | {tree_count})
    prefixes = [TreeRange(0, end) for end in ends]
    steps = [TreeRange(start, stop) for start, stop in itertools.pairwise(ends)]
    return prefixes + steps


def compiler_available() -> bool:
    """Return whether TL2cgen's C compiler is on the ``PATH``."""
    return shutil.which(TOOLCHAIN) is not None


def compile_tree_ranges(
    booster: lightgbm.Booster, ranges: Sequence[TreeRange], folder: Path
) -> list[dict[str, Any]]:
    """Compile each range of ``booster`` into a shared library in ``folder``.

    Returns
    -------
    list of dict
        One manifest entry per library: ``file``, ``start``, ``stop`` and ``sha256``
        of the library bytes.

    Raises
    ------
    FileNotFoundError
        When the C compiler `TOOLCHAIN` is not on the ``PATH``.
    """
    import tl2cgen
    import treelite

    if not compiler_available():
        raise FileNotFoundError(f"C compiler {TOOLCHAIN!r} not found on PATH; install gcc")
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    started = time.perf_counter()
    for tree_range in ranges:
        count = tree_range.stop - tree_range.start
        part = lightgbm.Booster(
            model_str=booster.model_to_string(start_iteration=tree_range.start, num_iteration=count)
        )
        path = folder / tree_range.file_name
        # TL2cgen prints its native log lines to stdout, where a command's output goes.
        native_log = io.StringIO()
        with contextlib.redirect_stdout(native_log):
            tl2cgen.export_lib(
                treelite.frontend.from_lightgbm(part),
                toolchain=TOOLCHAIN,
                libpath=str(path),
                params={"parallel_comp": max(1, count // _TREES_PER_UNIT)},
                nthread=1,
                verbose=False,
            )
        logger.debug("tl2cgen %s: %s", tree_range.file_name, native_log.getvalue().strip())
        entries.append(
            {
                "file": tree_range.file_name,
                "start": tree_range.start,
                "stop": tree_range.stop,
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            }
        )
    logger.info(
        "compiled %d tree ranges with %s in %.1f s", len(entries), TOOLCHAIN, _since(started)
    )
    return entries


def compiler_versions() -> dict[str, str]:
    """Return the versions of Treelite and TL2cgen, as a model manifest records them."""
    return {package: metadata.version(package) for package in ("treelite", "tl2cgen")}


class CompiledTrees:
    """Loaded libraries of a model's tree ranges; `predict` returns None for other ranges."""

    def __init__(self, predictors: dict[TreeRange, Any]) -> None:
        self._predictors = predictors
        # NOTE: whether a TL2cgen 1.0 Predictor is safe for concurrent calls is unchecked,
        # so requests on several threads take turns here.
        self._lock = threading.Lock()

    @property
    def ranges(self) -> tuple[TreeRange, ...]:
        """Ranges with a library, in the order they were loaded."""
        return tuple(self._predictors)

    @classmethod
    def load(cls, folder: Path, entries: Sequence[dict[str, Any]]) -> "CompiledTrees":
        """Check and load the libraries that ``entries`` (from the manifest) list.

        Each library is read once, its SHA-256 compared with the entry, and the checked
        bytes are loaded from a private temporary copy. So a file replaced after the
        check is never the one loaded.

        Raises
        ------
        CompiledTreesError
            When a library's hash or its range differs from its entry.
        OSError
            When a listed library is missing or cannot be loaded on this machine.
        """
        import tl2cgen
        from tl2cgen.exception import TL2cgenError

        predictors: dict[TreeRange, Any] = {}
        with tempfile.TemporaryDirectory(prefix="doorstep-trees-") as private:
            for entry in entries:
                tree_range = TreeRange(int(entry["start"]), int(entry["stop"]))
                name = str(entry["file"])
                if name != tree_range.file_name:
                    raise CompiledTreesError(
                        f"compiled library {name!r} does not match its range "
                        f"{tree_range.start}..{tree_range.stop}; retrain the model"
                    )
                data = (folder / name).read_bytes()
                if hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise CompiledTreesError(
                        f"compiled library {folder / name} does not match the SHA-256 in the "
                        "manifest; retrain or restore the model"
                    )
                copy = Path(private) / name
                copy.write_bytes(data)
                try:
                    # The library stays mapped after its temporary copy is removed.
                    predictors[tree_range] = tl2cgen.Predictor(str(copy), nthread=1)
                except TL2cgenError as err:
                    message = f"compiled library {folder / name} failed to load: {err}"
                    raise OSError(message) from err
        return cls(predictors)

    def predict(
        self, features: npt.NDArray[np.float32], start: int, stop: int
    ) -> npt.NDArray[np.float64] | None:
        """Return the raw score summed over trees ``start`` to ``stop``, or None without a library.

        ``features`` is a float32 matrix in the model's feature order, NaN for missing.
        """
        predictor = self._predictors.get(TreeRange(start, stop))
        if predictor is None:
            return None
        import tl2cgen

        matrix = np.ascontiguousarray(features, dtype=np.float32)
        with self._lock:
            scores = predictor.predict(tl2cgen.DMatrix(matrix))
        return np.asarray(scores, dtype=np.float64).reshape(len(matrix))


def _since(started: float) -> float:
    return time.perf_counter() - started
