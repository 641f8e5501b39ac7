"""A directory registry of trained rankers, each checked with an HMAC tag before it is loaded.

Each model is one folder under the registry root (``DOORSTEP_MODEL_DIR``)::

    <root>/<model_id>/model.txt       LightGBM text model
    <root>/<model_id>/manifest.json   feature names in model order, training-data hash,
                                      metrics, parameters, library versions, created-at,
                                      git commit, simulated=true
    <root>/<model_id>/model.hmac      hex HMAC-SHA256 over model.txt and manifest.json
    <root>/<model_id>/compiled/       the cascade's tree ranges as C shared libraries
                                      (`models.compiled`), when gcc was available

The tag covers both files, each prefixed with its length so no bytes can move from one
to the other. Loading checks the tag first, so a changed model or manifest is rejected
before LightGBM parses anything, then compares the manifest's feature list with the
features the code builds. The manifest lists the SHA-256 of each compiled library, so
the tag covers the libraries too, and a library whose hash differs rejects the model.
A model without libraries, or whose libraries cannot be loaded on this machine, is
scored by LightGBM alone. A model folder is written under a temporary name and renamed
into place, so a reader never sees half a model.
"""

import hashlib
import hmac
import json
import logging
import os
import platform
import secrets
import subprocess  # nosec B404 # fixed local commands only
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd

from geo.errors import DoorstepError
from matching.cascade import DEFAULT_STAGES
from models.compiled import (
    COMPILED_FOLDER,
    CompiledTrees,
    CompiledTreesError,
    cascade_ranges,
    compile_tree_ranges,
    compiler_available,
    compiler_versions,
)
from models.ranker import TrainedRanker, predict_scores

logger = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"
TAG_FILE = "model.hmac"
MANIFEST_FORMAT = 1

# Domain separation of the tag, so a key shared by mistake with another use cannot
# produce a valid model tag.
_TAG_CONTEXT = b"doorstep-ranker-model-v1\x00"
_GENERATED_KEY_BYTES = 32
_LIBRARIES = ("lightgbm", "numpy", "pandas", "scikit-learn")
_REPO_ROOT = Path(__file__).resolve().parents[1]
_key_lock = threading.Lock()


class ModelRegistryError(DoorstepError):
    """Root of the errors of the model registry."""


class ModelNotFoundError(ModelRegistryError, LookupError):
    """No model folder has the requested id, or a model file is missing."""


class ModelIntegrityError(ModelRegistryError, ValueError):
    """A model's HMAC tag is missing or does not match its files."""


class FeatureMismatchError(ModelRegistryError, ValueError):
    """A model was trained on a feature list other than the one the code builds."""

    def __init__(
        self, message: str, missing: list[str], extra: list[str], reordered: list[str]
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.extra = extra
        self.reordered = reordered


@dataclass(frozen=True)
class LoadedModel:
    """A model whose tag and feature list passed the checks."""

    model_id: str
    path: Path
    manifest: dict[str, Any]
    booster: lightgbm.Booster
    compiled: CompiledTrees | None = None
    """Compiled tree ranges of the cascade; None scores with LightGBM alone."""

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature columns in the order the model expects them."""
        return tuple(self.manifest["feature_names"])

    def predict(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Score rows that carry the model's feature columns; higher ranks first."""
        return predict_scores(self.booster, frame, self.feature_names)


@dataclass(frozen=True)
class SkippedModel:
    """A model folder passed over while looking for the newest valid model, and why."""

    model_id: str
    reason: str


class ModelRegistry:
    """Saves and loads tagged models under ``root``.

    Parameters
    ----------
    root : pathlib.Path
        The registry folder; created on the first save.
    key : bytes
        The HMAC-SHA256 key that signs and checks the models.
    """

    def __init__(self, root: Path, key: bytes) -> None:
        if not key:
            raise ValueError("model key is empty; expected the bytes of DOORSTEP_MODEL_KEY")
        self.root = root
        self._key = key

    def save(
        self,
        ranker: TrainedRanker,
        *,
        training_data_sha256: str,
        metrics: dict[str, Any],
        details: dict[str, Any] | None = None,
        now: datetime | None = None,
        compile_trees: bool = True,
    ) -> Path:
        """Write a trained ranker with its manifest and tag; return the model folder.

        ``details`` is merged into the manifest (the split, the simulation
        parameters, the training command) and must be JSON-serialisable. With
        ``compile_trees``, the tree ranges that the default ranking cascade requests are
        compiled into ``compiled/`` when gcc is on the ``PATH``; without gcc the model is
        saved without them and a warning is logged.
        """
        created = now or datetime.now(UTC)
        model_text = ranker.booster.model_to_string(num_iteration=ranker.best_iteration).encode()
        model_id = f"ranker-{created:%Y%m%dT%H%M%S%fZ}-{hashlib.sha256(model_text).hexdigest()[:8]}"
        manifest = {
            **(details or {}),
            "format": MANIFEST_FORMAT,
            "model_id": model_id,
            "created_at": created.isoformat(),
            "kind": "lightgbm-lambdarank",
            "feature_names": list(ranker.feature_names),
            "best_iteration": ranker.best_iteration,
            "validation_ndcg_at_10": ranker.validation_ndcg_at_10,
            "params": ranker.params.to_dict(),
            "training_data_sha256": training_data_sha256,
            "metrics": metrics,
            "versions": library_versions(),
            "git_commit": git_commit(),
            "simulated": True,
        }
        final = self.root / model_id
        staging = self.root / f".staging-{model_id}"
        staging.mkdir(parents=True)
        if compile_trees:
            compiled = _compile(model_text, staging / COMPILED_FOLDER)
            if compiled is not None:
                manifest["compiled"] = compiled
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
        (staging / MODEL_FILE).write_bytes(model_text)
        (staging / MANIFEST_FILE).write_bytes(manifest_bytes)
        (staging / TAG_FILE).write_text(self._tag(model_text, manifest_bytes) + "\n")
        staging.rename(final)
        logger.info("saved model %r to %s", model_id, final)
        return final

    def load(self, model: str | Path, expected_features: Sequence[str]) -> LoadedModel:
        """Load a model by id or folder after checking its tag and feature list.

        Raises
        ------
        ModelNotFoundError
            When the folder or one of its files does not exist.
        ModelIntegrityError
            When the tag is missing or does not match ``model.txt`` and ``manifest.json``.
        FeatureMismatchError
            When the manifest's feature list differs from ``expected_features``.
        """
        folder = self._folder(model)
        manifest = self._verified_manifest(folder)
        check_features(folder / MANIFEST_FILE, manifest["feature_names"], expected_features)
        booster = lightgbm.Booster(model_str=(folder / MODEL_FILE).read_text())
        if tuple(booster.feature_name()) != tuple(manifest["feature_names"]):
            raise ModelIntegrityError(
                f"model file {folder / MODEL_FILE} names features {booster.feature_name()}, "
                f"not the manifest's {manifest['feature_names']}; retrain the model"
            )
        compiled = _load_compiled(folder, manifest)
        return LoadedModel(str(manifest["model_id"]), folder, manifest, booster, compiled)

    def newest_valid(
        self, expected_features: Sequence[str]
    ) -> tuple[LoadedModel | None, list[SkippedModel]]:
        """Load the newest model by ``created_at`` whose checks pass.

        Returns
        -------
        tuple
            The model, or ``None`` when none passes, and the models skipped on the way,
            each with the reason. Every skipped model is logged at WARNING.
        """
        skipped: list[SkippedModel] = []
        dated: list[tuple[str, Path]] = []
        for folder in self._folders():
            try:
                manifest = self._verified_manifest(folder)
            except ModelRegistryError as err:
                skipped.append(self._skip(folder.name, err))
                continue
            dated.append((str(manifest.get("created_at", "")), folder))

        for _, folder in sorted(dated, key=lambda item: item[0], reverse=True):
            try:
                return self.load(folder, expected_features), skipped
            except (ModelRegistryError, lightgbm.basic.LightGBMError) as err:
                skipped.append(self._skip(folder.name, err))
        return None, skipped

    def model_ids(self) -> list[str]:
        """Return the ids of the model folders, oldest name first; checks nothing."""
        return [folder.name for folder in self._folders()]

    def _folders(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if folder.is_dir() and not folder.name.startswith("."):
                yield folder

    def _folder(self, model: str | Path) -> Path:
        folder = model if isinstance(model, Path) else self.root / model
        if not folder.is_dir():
            raise ModelNotFoundError(
                f"model {str(model)!r} not found in {self.root}; "
                "train one with `doorstep train` or pick an id from the registry folder"
            )
        return folder

    def _verified_manifest(self, folder: Path) -> dict[str, Any]:
        paths = {name: folder / name for name in (MODEL_FILE, MANIFEST_FILE, TAG_FILE)}
        missing = [name for name in (MODEL_FILE, MANIFEST_FILE) if not paths[name].is_file()]
        if missing:
            raise ModelNotFoundError(f"model folder {folder} is missing {', '.join(missing)}")
        if not paths[TAG_FILE].is_file():
            raise ModelIntegrityError(
                f"integrity tag {paths[TAG_FILE]} is missing; an unsigned model is never loaded"
            )

        model_bytes = paths[MODEL_FILE].read_bytes()
        manifest_bytes = paths[MANIFEST_FILE].read_bytes()
        stored = paths[TAG_FILE].read_text().strip()
        if not hmac.compare_digest(stored, self._tag(model_bytes, manifest_bytes)):
            raise ModelIntegrityError(
                f"integrity tag {paths[TAG_FILE]} does not match {MODEL_FILE} and "
                f"{MANIFEST_FILE}: the files were changed or signed with another "
                "DOORSTEP_MODEL_KEY; retrain or restore the model"
            )
        manifest: dict[str, Any] = json.loads(manifest_bytes)
        return manifest

    def _tag(self, model_bytes: bytes, manifest_bytes: bytes) -> str:
        signer = hmac.new(self._key, _TAG_CONTEXT, hashlib.sha256)
        for part in (model_bytes, manifest_bytes):
            signer.update(len(part).to_bytes(8, "big"))
            signer.update(part)
        return signer.hexdigest()

    @staticmethod
    def _skip(model_id: str, err: Exception) -> SkippedModel:
        logger.warning("skipped model %r: %s", model_id, err)
        return SkippedModel(model_id, str(err))


def _compile(model_text: bytes, folder: Path) -> dict[str, Any] | None:
    """Compile the default cascade's tree ranges of a saved model text into ``folder``.

    Returns the manifest's ``compiled`` entry, or None when gcc is not on the ``PATH``.
    """
    if not compiler_available():
        logger.warning(
            "gcc not found on PATH; the model is saved without compiled tree ranges and "
            "the service scores it with LightGBM alone"
        )
        return None
    booster = lightgbm.Booster(model_str=model_text.decode())
    boundaries = [stage.trees for stage in DEFAULT_STAGES]
    ranges = cascade_ranges(boundaries, booster.num_trees())
    return {
        "libraries": compile_tree_ranges(booster, ranges, folder),
        "versions": compiler_versions(),
        "machine": platform.machine(),
    }


def _load_compiled(folder: Path, manifest: dict[str, Any]) -> CompiledTrees | None:
    """Load the compiled tree ranges that a checked manifest lists, or return None.

    Raises
    ------
    ModelIntegrityError
        When a library's SHA-256 differs from the manifest's.
    """
    entry = manifest.get("compiled")
    if not entry:
        return None
    try:
        return CompiledTrees.load(folder / COMPILED_FOLDER, entry["libraries"])
    except CompiledTreesError as err:
        raise ModelIntegrityError(str(err)) from err
    except (ImportError, OSError) as err:
        logger.warning(
            "model %r: compiled tree ranges not loaded (%s); scoring with LightGBM alone",
            manifest.get("model_id"),
            err,
        )
        return None


def check_features(source: Path, actual: Sequence[str], expected: Sequence[str]) -> None:
    """Raise :class:`FeatureMismatchError` unless ``actual`` equals ``expected`` in order.

    The message lists the names missing from the model, the names the code no longer
    builds, and, when the sets agree, the names whose position differs.
    """
    if list(actual) == list(expected):
        return
    missing = [name for name in expected if name not in set(actual)]
    extra = [name for name in actual if name not in set(expected)]
    reordered: list[str] = []
    if not missing and not extra:
        reordered = [
            f"{name} (model position {position}, code position {list(expected).index(name)})"
            for position, name in enumerate(actual)
            if expected[position] != name
        ]
    problems = [
        f"missing from the model: {missing}" if missing else "",
        f"not built by the code: {extra}" if extra else "",
        f"in another order: {reordered}" if reordered else "",
    ]
    raise FeatureMismatchError(
        f"model {source} was trained on another feature list than "
        f"matching.features.FEATURE_NAMES ({'; '.join(p for p in problems if p)}); "
        "retrain with `doorstep train`",
        missing,
        extra,
        reordered,
    )


def frame_sha256(frame: pd.DataFrame) -> str:
    """Return a SHA-256 of a frame's column names, dtypes and values, independent of its index.

    ``pandas.util.hash_pandas_object`` hashes each row with a fixed key, so the digest is
    the same across processes for the same values in the same row order.
    """
    digest = hashlib.sha256()
    for name, dtype in frame.dtypes.items():
        digest.update(f"{name}:{dtype}\n".encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)
    digest.update(row_hashes.astype("<u8").tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries that shape a model."""
    versions = {"python": platform.python_version()}
    for package in _LIBRARIES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def git_commit() -> str:
    """Return the checked-out git commit of the code, or ``"unknown"`` outside a git clone."""
    try:
        result = subprocess.run(  # nosec B603 B607 # fixed argv, no shell
            ["git", "rev-parse", "HEAD"],
            cwd=_REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def development_model_key(path: Path) -> bytes:
    """Return the development model key stored at ``path``, creating it (mode 0600) if missing.

    Every use logs a warning: a generated key is for development only, and a
    production deployment sets ``DOORSTEP_MODEL_KEY``.
    """
    with _key_lock:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            logger.warning(
                "DOORSTEP_MODEL_KEY is not set; using the development model key in %s", path
            )
            return path.read_bytes().strip()
        key = secrets.token_urlsafe(_GENERATED_KEY_BYTES).encode()
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        logger.warning(
            "DOORSTEP_MODEL_KEY is not set; created the development model key %s (mode 0600)",
            path,
        )
        return key
