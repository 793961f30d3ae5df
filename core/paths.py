"""Where Almanac keeps its data: one place, overridable.

Order: an explicit `set_data_dir()` (the CLI's `--data-dir`), then `$ALMANAC_HOME`, then the platform's
user data directory.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

import platformdirs

_override: Path | None = None


def set_data_dir(path: str | os.PathLike[str] | None) -> None:
    global _override
    _override = Path(path).expanduser().resolve() if path else None


def _folder(override: Path | None, variable: str, default: str) -> Path:
    if override is not None:
        base = override
    elif os.environ.get(variable):
        base = Path(os.environ[variable]).expanduser().resolve()
    else:
        base = Path(default)
    base.mkdir(parents=True, exist_ok=True)
    return base


def data_dir() -> Path:
    return _folder(_override, "ALMANAC_HOME", platformdirs.user_data_dir("Almanac", appauthor=False))


def cache_dir() -> Path:
    """Machine-wide derived files that any data folder may reuse (model exports): `$ALMANAC_CACHE`, else the
    platform's user cache folder. Deleting it costs only the time to remake what was in it."""
    return _folder(None, "ALMANAC_CACHE", platformdirs.user_cache_dir("Almanac", appauthor=False))


def db_path() -> Path:
    return data_dir() / "almanac.db"


def settings_path() -> Path:
    return data_dir() / "settings.json"


def querylog_path() -> Path:
    return data_dir() / "querylog.db"


def log_dir() -> Path:
    d = data_dir() / "logs"
    d.mkdir(exist_ok=True)
    return d


def is_within(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Is `path` the folder itself or below it? Compares whole path parts ("/a/bc" is not under "/a/b"),
    as written: no symlink is resolved, so resolve both first where that matters."""
    return PurePath(path).is_relative_to(folder)
