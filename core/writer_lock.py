"""One writer per index, across processes: an exclusive lock on a file next to the database.

The app, `almanac index`, `almanac watch` and every other writer take it when they open the index and hold
it until they close; a second writer is refused with a message naming the holder, never left to fight the
first over the same rows. Readers (`almanac search`, `status`, `ask`) do not take it.

The lock is the OS's (`flock` on POSIX, `msvcrt.locking` on Windows): it goes with the process, so a writer
killed by `kill -9` or a power cut leaves no stale lock behind. The file is never deleted: deleting it would
let a third process lock a fresh file while the second still holds the old one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import IndexInUseError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


def lock_path(db_path: Path | str) -> Path:
    return Path(f"{db_path}.lock")


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:  # BlockingIOError on POSIX, PermissionError on Windows
        return False
    return True


def _unlock(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)
    else:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)


def holder(db_path: Path | str) -> str:
    """Who holds the lock, as its holder wrote it ("process 123: almanac index"); "" when unknown."""
    try:
        return lock_path(db_path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""


class WriterLock:
    """`acquire()` raises `IndexInUseError` when another writer holds the index; `release()` lets go.

    Locks are per open file, so a second writer in the same process is refused too.
    """

    def __init__(self, db_path: Path | str, owner: str = "") -> None:
        self.db_path = Path(db_path)
        self.path = lock_path(db_path)
        self.owner = owner or _program()  # named in the message a second writer gets
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            why = err.strerror or err
            raise IndexInUseError(
                f"Cannot lock the index at {self.db_path}: {why}. Check the folder's permissions."
            ) from err
        if not _try_lock(fd):
            os.close(fd)
            who = holder(self.db_path)
            raise IndexInUseError(
                f"Another Almanac is already using the library in {self.db_path.parent}"
                + (f" ({who})" if who else "")
                + ". Close it, or wait for it to finish, and try again."
            )
        # Written after the lock byte range is ours; on Windows the locked first byte stays a space.
        os.ftruncate(fd, 0)
        os.write(fd, f" process {os.getpid()}: {self.owner}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _program() -> str:
    """The running program's name, for a holder that did not say what it is."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name and name not in ("-c", "-m") else "python"
