"""The machine and library versions a benchmark ran on, recorded with every result file."""

import logging
import os
import platform
import subprocess  # nosec B404 # fixed local commands only
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pyproj
import shapely

logger = logging.getLogger(__name__)

_CPUINFO = Path("/proc/cpuinfo")
_MEMINFO = Path("/proc/meminfo")

# Distributions whose versions change the numbers, by their PyPI names.
_DISTRIBUTIONS = (
    "numpy",
    "pandas",
    "shapely",
    "pyproj",
    "scipy",
    "scikit-learn",
    "geopandas",
    "lightgbm",
)


def machine_info() -> dict[str, Any]:
    """Describe the CPU, core count, memory and operating system of this machine.

    Returns
    -------
    dict
        ``cpu_model`` (the ``model name`` line of ``/proc/cpuinfo``, or
        `platform.processor` elsewhere), ``cores_logical`` (`os.cpu_count`),
        ``cores_usable`` (CPUs this process may run on), ``memory_total_mib`` (from
        ``/proc/meminfo``, None where it is missing) and ``platform``.
    """
    return {
        "cpu_model": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_total_mib": _memory_total_mib(),
        "platform": platform.platform(),
    }


def library_versions() -> dict[str, str | None]:
    """Return the versions of Python, the numeric and geo libraries, GEOS and PROJ.

    A distribution that is not installed is recorded as None.
    """
    versions: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["geos"] = shapely.geos_version_string
    versions["proj"] = pyproj.proj_version_str
    return versions


def git_commit(repo_dir: Path) -> str | None:
    """Return the commit checked out in ``repo_dir``, with ``+dirty`` when files changed.

    Returns None when ``git`` is missing or ``repo_dir`` is not a work tree.
    """
    try:
        commit = _git(repo_dir, "rev-parse", "HEAD")
        changed = _git(repo_dir, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError) as err:
        logger.warning("cannot read the git commit of %s: %s", repo_dir, err)
        return None
    return f"{commit}+dirty" if changed else commit


def _git(repo_dir: Path, *args: str) -> str:
    completed = subprocess.run(  # nosec B603 B607 # fixed argv, no shell
        ["git", "-C", str(repo_dir), *args], check=True, capture_output=True, text=True
    )
    return completed.stdout.strip()


def _cpu_model() -> str:
    try:
        for line in _CPUINFO.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_total_mib() -> int | None:
    try:
        for line in _MEMINFO.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
