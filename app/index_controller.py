"""The index thread: the one writer to the index. It owns the `Library` and runs jobs on it in order.

The GUI calls the methods here (GUI thread); each turns into a job on the index thread. The Library is
created on that thread and never leaves it. Everything comes back as signals emitted on the GUI thread;
progress is throttled to about ten updates a second however many files go by.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from almanac.core import store
from almanac.core.cancel import CancelToken
from almanac.core.embedding import Embedder
from almanac.core.errors import AlmanacError, Cancelled
from almanac.core.indexer import SyncReport
from almanac.core.library import Library
from almanac.core.settings import Settings
from PySide6.QtCore import QObject, Signal

from .jobs import FailureFn, JobThread
from .shared_embedder import SharedEmbedder
from .throttle import Throttle

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[Settings], Embedder]
PROGRESS_INTERVAL_MS = 100


@dataclass
class LibraryState:
    status: store.Status
    missing: list[str] = field(default_factory=list)  # library folders not on disk right now


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


class _IndexRequest:
    """One queued index run; requests that arrive before it starts are folded into it."""

    def __init__(self, paths: Iterable[str] | None) -> None:
        self.paths: set[str] | None = None if paths is None else set(paths)
        self.token = CancelToken()
        self.started = False

    def merge(self, paths: Iterable[str] | None) -> None:
        if self.paths is None or paths is None:
            self.paths = None  # None means every folder
        else:
            self.paths |= set(paths)


class IndexController(QObject):
    stateChanged = Signal(object)  # LibraryState
    progressChanged = Signal(object)  # core.indexer.Progress, at most ~10 a second
    busyChanged = Signal(bool)  # an index run is queued or running
    pausedChanged = Signal(bool)
    indexFinished = Signal(object)  # SyncReport, or None when the run was cancelled
    embedderChanged = Signal(object)  # the embedder the library uses now; None if it could not open

    def __init__(
        self,
        *,
        db_path: Path,
        settings: Settings,
        embedder_factory: EmbedderFactory,
        on_error: FailureFn,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._db_path = db_path
        self._embedder_factory = embedder_factory
        self._on_error = on_error
        # Index-thread state: set here before the first job, then only touched by jobs.
        self._settings = copy.deepcopy(settings)
        self._lib: Library | None = None
        self._embedder: SharedEmbedder | None = None
        # GUI-thread state.
        self._active: list[_IndexRequest] = []
        self._paused = False
        self._lock = threading.Lock()  # guards _queued, shared with the index thread
        self._queued: _IndexRequest | None = None
        self._progress = Throttle(self.progressChanged.emit, PROGRESS_INTERVAL_MS, parent=self)
        self._jobs = JobThread("almanac-index", on_error=on_error, parent=self)

    # -- GUI thread: requests ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self._active)

    @property
    def paused(self) -> bool:
        return self._paused

    def open(self, *, sync: bool = True) -> None:
        """Open the library in the background; with `sync`, then bring the index up to date."""
        self._jobs.submit(lambda: self._open_job(sync=sync), success=self._opened, failure=self._open_failed)

    def add_folders(self, paths: Iterable[str]) -> None:
        """Add folders and index them. A folder that cannot be added is reported; the others go on."""
        paths = [str(p) for p in paths]
        self._jobs.submit(lambda: self._add_job(paths), success=self._added)

    def remove_folder(self, path: str) -> None:
        interrupted = self.busy
        if interrupted:
            self.cancel()  # a run may be inside that very folder; the others are resumed below
        self._jobs.submit(lambda: self._remove_job(path))
        if interrupted:
            self.index()

    def index(self, paths: Iterable[str] | None = None) -> None:
        """Sync the library folders holding `paths` (all folders when None)."""
        with self._lock:
            request = self._queued
            if request is not None and not request.started:
                request.merge(paths)
                return
            request = self._queued = _IndexRequest(paths)
        if self._paused:
            request.token.pause()
        self._active.append(request)
        if len(self._active) == 1:
            self.busyChanged.emit(True)
        self._jobs.submit(
            lambda: self._index_job(request),
            success=lambda report: self._index_done(request, report),
            failure=lambda err: self._index_failed(request, err),
        )

    def apply_changes(self, paths: Iterable[str]) -> None:
        """Hook for the folder watcher: files changed on disk; re-sync the library folders that hold them.

        Bursts are cheap: requests made before a run starts are folded into one run.
        """
        self.index(list(paths))

    def run_on_library(
        self,
        fn: Callable[[Library], Any],
        *,
        success: Callable[[Any], None] | None = None,
        failure: FailureFn | None = None,
    ) -> None:
        """Run `fn(library)` on the index thread, after the jobs before it; the result comes back on the
        GUI thread. This is the door for other writers, such as the folder watcher's tick
        (`lambda lib: watcher.apply_ready(lib, embed=False)`): they never touch the Library elsewhere.
        """

        def job() -> Any:
            lib = self._library()
            try:
                return fn(lib)
            finally:
                self._post_state(lib)

        self._jobs.submit(job, success=success, failure=failure)

    def rebuild(self) -> None:
        """Index every folder from scratch (after a chunk size change: unchanged files are re-chunked)."""
        if self.busy:
            self.cancel()
        self._jobs.submit(self._rebuild_job)
        self.index()

    def reconfigure(self, settings: Settings, *, new_embedder: bool, then: str = "none") -> None:
        """Reopen the library with new settings; `then` is "none", "sync" or "rebuild"."""
        if self.busy:
            self.cancel()  # that run used the old settings
        settings = copy.deepcopy(settings)
        self._jobs.submit(
            lambda: self._reconfigure_job(settings, new_embedder),
            success=self._opened,
            failure=self._open_failed,
        )
        if then == "sync":
            self.index()
        elif then == "rebuild":
            self.rebuild()

    def refresh(self) -> None:
        self._jobs.submit(lambda: self._post_state(self._library()))

    def pause(self) -> None:
        self._set_paused(True)

    def resume(self) -> None:
        self._set_paused(False)

    def cancel(self) -> None:
        """Stop the running index run (it stops between files) and drop the queued one."""
        with self._lock:
            self._queued = None
        for request in self._active:
            request.token.cancel()
        self._set_paused(False)

    def shutdown(self) -> None:
        self.cancel()
        self._progress.discard()
        self._jobs.stop(self._close_job)

    # -- GUI thread: results -----------------------------------------------------------------------------

    def _set_paused(self, paused: bool) -> None:
        if paused == self._paused:
            return
        self._paused = paused
        for request in self._active:
            if paused:
                request.token.pause()
            else:
                request.token.resume()
        self.pausedChanged.emit(paused)

    def _opened(self, embedder: SharedEmbedder | None) -> None:
        if embedder is not None:
            self.embedderChanged.emit(embedder)

    def _open_failed(self, err: BaseException) -> None:
        self.embedderChanged.emit(None)
        self._on_error(err)

    def _added(self, errors: list[AlmanacError]) -> None:
        for err in errors:
            self._on_error(err)

    def _finish(self, request: _IndexRequest) -> None:
        self._progress.flush()
        if request in self._active:
            self._active.remove(request)
        if not self._active:
            self._set_paused(False)
            self.busyChanged.emit(False)

    def _index_done(self, request: _IndexRequest, report: SyncReport | None) -> None:
        self._finish(request)
        self.indexFinished.emit(report)

    def _index_failed(self, request: _IndexRequest, err: BaseException) -> None:
        self._finish(request)
        self.indexFinished.emit(None)
        self._on_error(err)

    # -- index thread ------------------------------------------------------------------------------------

    def _library(self) -> Library:
        if self._lib is None:
            if self._embedder is None:
                self._embedder = SharedEmbedder(self._embedder_factory(self._settings))
            self._lib = Library(self._db_path, settings=self._settings, embedder=self._embedder)
        return self._lib

    def _post_state(self, lib: Library) -> None:
        status = lib.status()
        missing = [f.path for f in status.folders if not os.path.isdir(f.path)]
        self._jobs.post(self.stateChanged.emit, LibraryState(status, missing))

    def _open_job(self, *, sync: bool = False) -> SharedEmbedder:
        lib = self._library()
        if sync and lib.folders():  # pick up what changed while the app was closed
            self._jobs.post(self.index, None)
        self._post_state(lib)
        assert self._embedder is not None
        return self._embedder

    def _reconfigure_job(self, settings: Settings, new_embedder: bool) -> SharedEmbedder:
        self._close_job()
        self._settings = settings
        if new_embedder:
            self._embedder = None
        return self._open_job()

    def _add_job(self, paths: list[str]) -> list[AlmanacError]:
        lib = self._library()
        errors: list[AlmanacError] = []
        added: list[str] = []
        for path in paths:
            try:
                added.append(lib.add_folder(path).path)
            except AlmanacError as err:
                errors.append(err)
        if added:  # posted before the state, so the GUI is busy by the time it sees the new folder
            self._jobs.post(self.index, added)
        self._post_state(lib)
        return errors

    def _remove_job(self, path: str) -> None:
        lib = self._library()
        try:
            lib.remove_folder(path)
        finally:
            self._post_state(lib)

    def _rebuild_job(self) -> None:
        lib = self._library()
        for folder in lib.folders():
            if os.path.isdir(folder.path):  # a missing folder keeps its index, as a sync would
                lib.remove_folder(folder.path)
                lib.add_folder(folder.path)
        self._post_state(lib)

    def _index_job(self, request: _IndexRequest) -> SyncReport | None:
        with self._lock:
            request.started = True
            if self._queued is request:
                self._queued = None
        try:
            request.token.checkpoint()  # cancelled (or paused) while it waited in the queue
        except Cancelled:
            return None
        lib = self._library()
        targets: list[store.Folder] | None = None
        if request.paths is not None:
            folders = lib.folders()  # once, not once per path: a watcher may hand over thousands
            targets = [f for f in folders if any(_inside(p, f.path) for p in request.paths)]
            if not targets:
                return SyncReport()
        try:
            return lib.index(targets, progress=self._progress.push, cancel=request.token)
        except Cancelled:
            return None
        finally:
            self._post_state(lib)

    def _close_job(self) -> None:
        if self._lib is not None:
            lib, self._lib = self._lib, None
            lib.close()
