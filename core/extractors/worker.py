"""Time-boxed, memory-capped extraction in a child process.

A damaged or hostile file can make a parser loop forever, exhaust memory or crash the interpreter, and a
thread cannot be killed; a process can. One persistent child serves requests over a Pipe so the import cost
is paid once, and is replaced only after it is killed or dies.

Memory: the child's address space is capped (RLIMIT_AS, where the OS enforces it: Linux) at `memory_limit_mb`,
3 GiB by default: far above what reading any sane document takes (the parsers and their imports use a few
hundred MB), and low enough that a decompression bomb fails that one file with a MemoryError instead of
pushing the machine into swap or waking the OOM killer. Elsewhere (Windows, macOS) the timeout alone bounds
a file.

OCR (ocr.py) runs here too. A scan is read page by page, and the child reports each page done; every report
restarts the time box, so `timeout_s` bounds one page (and `OcrOptions.max_pages` bounds the file) instead of
a 20-page scan needing a timeout twenty times as long as any text file's.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from pathlib import Path
from types import TracebackType

from ..errors import ExtractionError
from .model import Extracted
from .ocr import OcrOptions, OcrRun

# Test hook: the child sleeps this many seconds before each extraction. The child reads it from its own
# environment, which spawn copies from the parent when the child starts; so a test sets it before the
# first extract() and unsets it before a killed child is replaced, and each child's behaviour is fixed.
SLEEP_ENV = "ALMANAC_TEST_EXTRACT_SLEEP"
# Test hook, read the same way: the child allocates this many bytes before each extraction (to prove the cap).
ALLOC_ENV = "ALMANAC_TEST_EXTRACT_ALLOC"

DEFAULT_MEMORY_LIMIT_MB = 3072

_START_TIMEOUT_S = 60.0  # importing pypdf/bs4/lxml on a cold, busy machine; not charged to any file
_CLOSE_TIMEOUT_S = 2.0
_READY = "ready"


def _exit_with_parent() -> None:
    # A child stuck in a parser would otherwise outlive a parent that was killed without close().
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
        os._exit(1)


def _limit_memory(limit_mb: int) -> None:
    if limit_mb <= 0 or sys.platform == "win32":
        return
    import resource

    limit = limit_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError):  # macOS refuses an address-space limit: the timeout still bounds a file
        pass


def _report_pages(conn: Connection, done: int, total: int) -> None:
    conn.send(("progress", (done, total)))


def _serve(
    conn: Connection, memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB, ocr: OcrOptions | None = None
) -> None:
    """Child main loop: receive a path, send back ("ok", Extracted) or ("error", message), after any number
    of ("progress", (pages done, pages to OCR))."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle; it closes us
    threading.Thread(target=_exit_with_parent, daemon=True).start()
    from . import extract  # the heavy imports happen here, before "ready"

    _limit_memory(memory_limit_mb)  # after the imports and the thread: only what reading a file takes counts

    conn.send(_READY)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        delay = os.environ.get(SLEEP_ENV)
        if delay:
            time.sleep(float(delay))
        try:
            if os.environ.get(ALLOC_ENV):
                bytearray(int(os.environ[ALLOC_ENV]))
            run = None if ocr is None else OcrRun(ocr, progress=functools.partial(_report_pages, conn))
            reply: tuple[str, object] = ("ok", extract(Path(request), run))
        except ExtractionError as err:
            reply = ("error", str(err))
        except MemoryError:
            reply = ("error", f"Reading it needs more than the {memory_limit_mb} MB memory limit")
        except Exception as err:  # a parser bug on one file; RecursionError lands here too
            reply = ("error", f"Could not read file ({type(err).__name__}: {err})")
        conn.send(reply)


class ExtractionWorker:
    """Runs extract() in a child process; kills and restarts it when a file takes longer than timeout_s.

    Calls are serialised (one request at a time over one pipe), so one worker may be shared by threads,
    though it then extracts one file at a time. `abort()` may be called from any thread.
    """

    def __init__(
        self,
        timeout_s: float = 60.0,
        *,
        memory_limit_mb: int = DEFAULT_MEMORY_LIMIT_MB,
        ocr: OcrOptions | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.ocr = ocr  # None: scanned pages and images are not OCR'd
        self._context = multiprocessing.get_context("spawn")  # no fork: safe with threads and Qt
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False
        self._aborted = False

    def extract(self, path: Path, on_progress: Callable[[int, int], None] | None = None) -> Extracted:
        """Extract one file in the child; raises ExtractionError on bad input, timeout or a child crash.

        `on_progress(pages done, pages to OCR)` is called (on this thread) while a scan is OCR'd."""
        with self._lock:
            if self._closed:
                raise RuntimeError("ExtractionWorker is closed")
            if self._aborted:
                raise ExtractionError("Reading was stopped")
            conn = self._send(str(path))
            while True:
                try:
                    answered = conn.poll(self.timeout_s)
                except BaseException:
                    # Interrupted (Ctrl+C): the child's late reply would be taken as the next file's answer.
                    self._stop(kill=True)
                    raise
                if not answered:
                    self._stop(kill=True)
                    raise ExtractionError(f"Took longer than {self.timeout_s:g} s to read")
                try:
                    status, payload = conn.recv()
                except (EOFError, OSError) as err:
                    exitcode = self._reap_exitcode()
                    self._stop(kill=True)
                    raise ExtractionError(f"The file crashed the reader (exit code {exitcode})") from err
                if status != "progress":
                    break
                if on_progress is not None:
                    try:
                        on_progress(*payload)
                    except BaseException:  # a cancel raised in the callback: this child's reply is stale
                        self._stop(kill=True)
                        raise
        if status == "ok":
            assert isinstance(payload, Extracted)
            return payload
        raise ExtractionError(str(payload))

    def abort(self) -> None:
        """From any thread: refuse further work and kill the child now, so a running `extract()` ends at
        once (with ExtractionError) instead of at its timeout. The owner still calls `close()` to reap it."""
        self._aborted = True
        process = self._process
        if process is not None:
            try:
                process.kill()
            except (ValueError, OSError):  # reaped meanwhile by the owning thread
                pass

    def close(self) -> None:
        """Stop the child and reap it. Safe to call more than once."""
        with self._lock:
            self._closed = True
            self._stop(kill=False)

    def __enter__(self) -> ExtractionWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send(self, request: str) -> Connection:
        # A child that died between requests (OOM killer, say) is replaced rather than blamed on this file.
        for attempt in range(2):
            if self._process is None or not self._process.is_alive():
                self._start()
            assert self._conn is not None
            try:
                self._conn.send(request)
                return self._conn
            except OSError:
                self._stop(kill=True)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _start(self) -> None:
        self._stop(kill=True)
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child_conn, self.memory_limit_mb, self.ocr),
            name="almanac-extractor",
            daemon=True,
        )
        process.start()
        child_conn.close()  # so the parent sees EOF when the child dies
        self._process, self._conn = process, parent_conn
        try:
            ready = parent_conn.poll(_START_TIMEOUT_S) and parent_conn.recv() == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            exitcode = self._reap_exitcode()
            self._stop(kill=True)
            if self._aborted:
                raise ExtractionError("Reading was stopped")
            # Not the file's fault: the environment cannot run the reader at all.
            raise RuntimeError(f"Text extractor process did not start (exit code {exitcode})")

    def _reap_exitcode(self) -> int | None:
        """Exit code of a child whose pipe just closed (it may take a moment to finish dying)."""
        if self._process is None:
            return None
        self._process.join(_CLOSE_TIMEOUT_S)
        return self._process.exitcode

    def _stop(self, kill: bool) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            if not kill and process is not None and process.is_alive():
                try:
                    conn.send(None)  # ask the child to leave its loop
                except OSError:
                    pass
            conn.close()
        if process is not None:
            if not kill:
                process.join(_CLOSE_TIMEOUT_S)
            if process.is_alive():
                process.kill()
            process.join()  # reaps it: no zombie
            process.close()
