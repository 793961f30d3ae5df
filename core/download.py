"""Resumable, verified downloads of model files.

Bytes go into `<name>.part` beside the target, with a small `<name>.part.json` saying which URL and which
checksum they belong to, so an interrupted download - a dropped connection, a cancel, a restart of the app -
continues with an HTTP Range request instead of starting again. The file only gets its real name after its
size and checksum match; a mismatch deletes the partial file (its bytes cannot be trusted) and says why.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .cancel import CancelToken
from .errors import AlmanacError

CHUNK_BYTES = 1 << 20
# Room left on the disk beyond the file itself, so a download never fills it to the last byte.
DISK_MARGIN_BYTES = 256 << 20
SPEED_WINDOW_S = 5.0  # speed and ETA over the last few seconds, so a stall shows quickly
USER_AGENT = "Almanac-model-download/1"


class DownloadError(AlmanacError):
    """A download that failed for a reason the user can act on (network, disk, server)."""


class ChecksumMismatch(DownloadError):
    """The downloaded bytes are not the published file; the partial file has been deleted."""


@dataclass
class Progress:
    done: int  # bytes on disk so far, resumed bytes included
    total: int | None  # None while the size is unknown
    bytes_per_s: float
    eta_s: float | None
    resumed_from: int = 0  # bytes already there when this run started

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Expected:
    """What the finished file must be; any field may be unknown (None)."""

    size: int | None = None
    sha256: str | None = None
    md5: str | None = None  # some catalogs (GPT4All's) publish only MD5


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _meta_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part.json")


def partial_bytes(dest: Path) -> int:
    """Bytes of an unfinished download of `dest` waiting to be resumed (0 if none)."""
    try:
        return part_path(dest).stat().st_size
    except FileNotFoundError:
        return 0


def discard_partial(dest: Path) -> None:
    for p in (part_path(dest), _meta_path(dest)):
        p.unlink(missing_ok=True)


def download(
    url: str,
    dest: Path,
    expected: Expected = Expected(),
    *,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    retries: int = 3,
    timeout_s: float = 30.0,
    backoff_s: float = 1.0,
) -> str:
    """Download `url` to `dest`, resuming a partial file; returns the file's SHA-256 (hex).

    A dropped connection is retried `retries` times, each time from where it stopped. `cancel` pauses
    (blocks between chunks) and cancels (raises `Cancelled`, keeping the partial file for a later resume).
    Raises DownloadError (network, HTTP, disk) or ChecksumMismatch.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    _forget_foreign_partial(dest, url, expected)
    _check_disk(dest.parent, expected.size, partial_bytes(dest))
    _meta_path(dest).write_text(
        json.dumps({"url": url, "size": expected.size, "sha256": expected.sha256, "md5": expected.md5}),
        encoding="utf-8",
    )
    attempt = 0
    meter = _Meter(partial_bytes(dest))
    while True:
        try:
            total = _fetch_into(url, part, expected.size, progress, cancel, timeout_s, meter)
            break
        except _Transient as err:
            attempt += 1
            if attempt > retries:
                raise DownloadError(
                    f"The download of {dest.name} was interrupted ({err}); {partial_bytes(dest):,} bytes are"
                    " kept and the next try continues from there."
                ) from err
            time.sleep(backoff_s * 2 ** (attempt - 1))
    return _verify_and_finish(dest, Expected(total, expected.sha256, expected.md5))


class _Transient(Exception):
    """A network failure worth retrying from the current offset."""


class _Meter:
    """Speed over a sliding window of (time, bytes) samples."""

    def __init__(self, start_bytes: int) -> None:
        self.start_bytes = start_bytes
        self.samples: deque[tuple[float, int]] = deque()

    def update(self, done: int, total: int | None) -> Progress:
        now = time.monotonic()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > SPEED_WINDOW_S:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        speed = (done - b0) / (now - t0) if now > t0 else 0.0
        eta = (total - done) / speed if total is not None and speed > 0 else None
        return Progress(done, total, speed, eta, self.start_bytes)


def _forget_foreign_partial(dest: Path, url: str, expected: Expected) -> None:
    """A partial file from another URL or another expected file must not be continued."""
    meta = _meta_path(dest)
    if not part_path(dest).exists():
        meta.unlink(missing_ok=True)
        return
    try:
        old = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    same = old is not None and old.get("url") == url and old.get("sha256") == expected.sha256
    too_long = expected.size is not None and partial_bytes(dest) > expected.size
    if not same or too_long:
        discard_partial(dest)


def _check_disk(folder: Path, size: int | None, have: int) -> None:
    if size is None:
        return
    need = max(size - have, 0) + DISK_MARGIN_BYTES
    free = shutil.disk_usage(folder).free
    if free < need:
        raise DownloadError(
            f"Not enough free disk space in {folder}: the model needs {_gb(size - have)} more"
            f" (plus {_gb(DISK_MARGIN_BYTES)} to spare) and only {_gb(free)} is free."
        )


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _fetch_into(
    url: str,
    part: Path,
    size: int | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
    timeout_s: float,
    meter: _Meter,
) -> int:
    """Append the rest of `url` to `part`; returns the total size of the file."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have == size:
        return size  # finished before an interruption of the verification step
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after `have`: the partial file is already whole
            return have
        if err.code in (408, 429) or err.code >= 500:
            raise _Transient(f"the server answered {err.code} {err.reason}") from err
        raise DownloadError(f"The server refused the download of {url}: {err.code} {err.reason}.") from err
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise _Transient(_reason(err)) from err
    with response:
        if have and response.status != 206:
            have = 0  # the server ignored the Range header and sends the whole file: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else size
        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"The server's file at {url} has {total:,} bytes, not the {size:,} the catalog lists;"
                " it may have been replaced. Nothing was kept."
            )
        mode = "ab" if have else "wb"
        done = have
        with part.open(mode) as out:
            while True:
                if cancel is not None:
                    cancel.checkpoint()  # blocks while paused; raises Cancelled, keeping the part
                try:
                    block = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as err:
                    out.flush()
                    raise _Transient(_reason(err)) from err
                if not block:
                    break
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(meter.update(done, total))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done < total:
        raise _Transient(f"the connection closed after {done:,} of {total:,} bytes")
    return done


def _reason(err: BaseException) -> str:
    if isinstance(err, urllib.error.URLError) and err.reason is not None:
        err = err.reason if isinstance(err.reason, BaseException) else err
    if isinstance(err, socket.timeout | TimeoutError):
        return "the server stopped sending"
    if isinstance(err, http.client.IncompleteRead):
        return "the connection closed early"
    return str(err) or type(err).__name__


def file_digests(path: Path) -> tuple[str, str]:
    """(SHA-256, MD5) of a file, read once."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        while block := fh.read(CHUNK_BYTES):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def _verify_and_finish(dest: Path, expected: Expected) -> str:
    part = part_path(dest)
    actual_size = part.stat().st_size
    sha, md5 = file_digests(part)
    problem = None
    if expected.size is not None and actual_size != expected.size:
        problem = f"it has {actual_size:,} bytes instead of {expected.size:,}"
    elif expected.sha256 and sha != expected.sha256.lower():
        problem = f"its SHA-256 is {sha}, the catalog says {expected.sha256}"
    elif expected.md5 and md5 != expected.md5.lower():
        problem = f"its MD5 is {md5}, the catalog says {expected.md5}"
    if problem:
        discard_partial(dest)
        raise ChecksumMismatch(
            f"The downloaded {dest.name} is damaged or not the published file ({problem}). "
            "The partial file was deleted; download it again."
        )
    os.replace(part, dest)
    _meta_path(dest).unlink(missing_ok=True)
    return sha
