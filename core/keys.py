"""API keys for answer servers: the platform keyring when there is one, else a file only the user can read.

Keys never appear in settings, logs, reprs or error messages; settings only name the backend.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

from . import paths

SERVICE = "almanac"
log = logging.getLogger(__name__)


def _keyring():  # noqa: ANN202 - the keyring module, or None
    """The keyring module when installed and backed by a real store (not the 'fail' backend)."""
    if os.environ.get("ALMANAC_NO_KEYRING"):
        return None
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    try:
        backend = keyring.get_keyring()
    except Exception:  # a broken desktop keyring must not stop the app; the file store works
        return None
    return None if isinstance(backend, fail.Keyring) else keyring


def keys_path() -> Path:
    return paths.data_dir() / "api_keys.json"


def _read_file() -> dict[str, str]:
    path = keys_path()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)  # someone widened it: narrow it again before reading secrets
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("the API key file %s is unreadable; keys must be entered again", path)
        return {}


def _write_file(keys: dict[str, str]) -> None:
    path = keys_path()
    tmp = path.with_suffix(".tmp")
    # Created with 0600: never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(keys, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def set_api_key(backend: str, key: str) -> str:
    """Store `key` for `backend`; returns where it went ("keyring" or "file")."""
    ring = _keyring()
    if ring is not None:
        ring.set_password(SERVICE, backend, key)
        return "keyring"
    keys = _read_file()
    keys[backend] = key
    _write_file(keys)
    return "file"


def get_api_key(backend: str) -> str | None:
    ring = _keyring()
    if ring is not None:
        value = ring.get_password(SERVICE, backend)
        if value is not None:
            return value
    return _read_file().get(backend)


def delete_api_key(backend: str) -> None:
    ring = _keyring()
    if ring is not None:
        try:
            ring.delete_password(SERVICE, backend)
        except Exception:  # keyring raises PasswordDeleteError when there was none
            pass
    keys = _read_file()
    if keys.pop(backend, None) is not None:
        _write_file(keys)
