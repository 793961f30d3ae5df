"""The index thread: the one writer to the index. It owns the `Library` and runs jobs on it in order.

The GUI calls the methods here (GUI thread); each turns into a job on the index thread. The Library is
created on that thread and never leaves it. Everything comes back as signals emitted on the GUI thread;
progress is throttled to about ten updates a second however many files go by.

The folder watcher (core.watch) belongs to the index thread too: it is created with the Library and started
before the start-up sync, and a timer on the GUI thread queues one cheap "apply what is ready" job at a
time (never a second while one waits, so user jobs are not crowded out). Changed files are applied there;
a whole-folder reconcile (a burst, a folder that came back, one just added) becomes a normal index run,
with progress, Pause and Cancel, and is folded into any run already waiting. The folders' watch states are
read on the GUI thread (`FolderWatcher.states()` is safe there) and sent on only when they change.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
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
from almanac.core.paths import is_within
from almanac.core.settings import Settings
from almanac.core.watch import AppliedReport, FolderState, FolderWatcher
from PySide6.QtCore import QObject, QTimer, Signal

from .jobs import FailureFn, JobThread
from .throttle import Throttle

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[Settings], Embedder]
WatcherFactory = Callable[[Library], FolderWatcher | None]
PROGRESS_INTERVAL_MS = 100
WATCH_TICK_MS = 400  # how often ready changes are applied, and the watch states looked at
WATCH_BACKOFF_S = 10.0  # after a failed apply, before the next try
INLINE_EMBED_CHUNKS = 32  # more new chunks than this are embedded by an index run, with progress


def default_watcher(lib: Library) -> FolderWatcher:
    # The index's own files may lie inside a watched folder: never index them.
    return FolderWatcher(lib.folders(), lib.indexer.rules_for, exclude=[str(lib.db_path)])


@dataclass
class LibraryState:
    status: store.Status
    missing: list[str] = field(default_factory=list)  # library folders not on disk right now
    ignore_problems: list[tuple[str, str]] = field(default_factory=list)  # (.almanacignore, bad line)


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
    watchStatesChanged = Signal(object)  # {folder path: core.watch.FolderState}, only when it changed
    watchPausedChanged = Signal(bool)
    watchApplied = Signal(object)  # core.watch.AppliedReport of changes applied by the watcher

    def __init__(
        self,
        *,
        db_path: Path,
        settings: Settings,
        embedder_factory: EmbedderFactory,
        watcher_factory: WatcherFactory | None = default_watcher,
        on_error: FailureFn,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._db_path = db_path
        self._embedder_factory = embedder_factory
        self._watcher_factory = watcher_factory
        self._on_error = on_error
        # Index-thread state: set here before the first job, then only touched by jobs.
        self._settings = copy.deepcopy(settings)
        self._lib: Library | None = None
        self._embedder: Embedder | None = None
        # GUI-thread state.
        self._active: list[_IndexRequest] = []
        self._paused = False
        self._lock = threading.Lock()  # guards _queued and _watcher, shared with the index thread
        self._queued: _IndexRequest | None = None
        self._watcher: FolderWatcher | None = None  # set on the index thread; GUI calls only the safe methods
        self._watch_paused = False
        self._watch_states: dict[str, FolderState] = {}
        self._tick_pending = False
        self._tick_token: CancelToken | None = None
        self._next_tick = 0.0  # time.monotonic() before which no apply job is queued (after a failure)
        self._watch_timer = QTimer(self)
        self._watch_timer.setInterval(WATCH_TICK_MS)
        self._watch_timer.timeout.connect(self._watch_tick)
        self._progress = Throttle(self.progressChanged.emit, PROGRESS_INTERVAL_MS, parent=self)
        self._jobs = JobThread("almanac-index", on_error=on_error, parent=self)

    # -- GUI thread: requests ----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self._active)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def watch_paused(self) -> bool:
        return self._watch_paused

    @property
    def watch_states(self) -> dict[str, FolderState]:
        """The folders' watch states as last seen (empty when nothing is watched)."""
        return self._watch_states

    def open(self, *, sync: bool = True) -> None:
        """Open the library in the background; with `sync`, then bring the index up to date."""
        self._jobs.submit(lambda: self._open_job(sync=sync), success=self._opened, failure=self._open_failed)
        if self._watcher_factory is not None:
            self._watch_timer.start()

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
        """Files changed on disk: re-sync the library folders that hold them (a folder watcher's rescan).

        Bursts are cheap: requests made before a run starts are folded into one run.
        """
        self.index(list(paths))

    def set_watch_paused(self, paused: bool) -> None:
        """Pause or resume folder watching: while paused, changes are recorded and applied on resume."""
        if paused == self._watch_paused:
            return
        with self._lock:
            self._watch_paused = paused
            watcher = self._watcher
        if watcher is not None:  # pause/resume are safe from the GUI thread; the next tick catches up
            if paused:
                watcher.pause()
            else:
                watcher.resume()
        self.watchPausedChanged.emit(paused)
        self._refresh_watch_states()

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
        """Index every folder again after a chunk size change. A plain index run: the indexer re-chunks each
        file in one transaction, so folders, documents and every vector it can keep stay, and a crash
        part-way leaves the rest as it was (never remove and re-add a folder: that drops all its vectors)."""
        if self.busy:
            self.cancel()  # that run used the old settings
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
        self._watch_timer.stop()
        if self._tick_token is not None:
            self._tick_token.cancel()  # what it took is reconciled at the next start-up sync
        self.cancel()
        self._progress.discard()
        self._jobs.stop(self._close_job)  # stops the watcher, then closes the library

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

    def _opened(self, embedder: Embedder | None) -> None:
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

    def _watch_tick(self) -> None:
        self._refresh_watch_states()
        if self._tick_pending or self._jobs.stopping or time.monotonic() < self._next_tick:
            return  # one apply job at a time: a long index run delays it, never piles ticks up
        self._tick_pending = True
        token = self._tick_token = CancelToken()
        self._jobs.submit(
            lambda: self._watch_job(token), success=self._watch_done, failure=self._watch_failed
        )

    def _watch_done(self, report: AppliedReport | None) -> None:
        self._tick_pending = False
        self._applied(report)

    def _applied(self, report: AppliedReport | None) -> None:
        if report:
            self._refresh_watch_states()
            self.watchApplied.emit(report)

    def _watch_failed(self, err: BaseException) -> None:
        self._tick_pending = False
        self._next_tick = time.monotonic() + WATCH_BACKOFF_S  # one notice, not one every tick
        self._on_error(err)

    def _refresh_watch_states(self) -> None:
        with self._lock:
            watcher = self._watcher
        states = watcher.states() if watcher is not None else {}
        if states != self._watch_states:
            self._watch_states = states
            self.watchStatesChanged.emit(states)

    # -- index thread ------------------------------------------------------------------------------------

    def _library(self) -> Library:
        if self._lib is None:
            if self._embedder is None:
                self._embedder = self._embedder_factory(self._settings)
            self._lib = Library(
                self._db_path, settings=self._settings, embedder=self._embedder, owner="the Almanac app"
            )
            self._start_watcher(self._lib)
        return self._lib

    def _start_watcher(self, lib: Library) -> None:
        """Watch the library's folders, before any sync runs (so nothing changed in between is missed)."""
        if self._watcher_factory is None:
            return
        try:
            watcher = self._watcher_factory(lib)
            if watcher is None:
                return
            watcher.start()
        except Exception as err:  # the library works without watching; say why it does not watch
            self._jobs.post(self._on_error, err)
            return
        with self._lock:
            self._watcher = watcher
            if self._watch_paused:
                watcher.pause()

    def _stop_watcher(self) -> None:
        with self._lock:
            watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _watch_folders(self, lib: Library) -> None:
        """Follow the library's folder list (after a folder was added or removed)."""
        if self._watcher is not None:
            self._watcher.set_folders(lib.folders())

    def _watch_job(self, token: CancelToken) -> AppliedReport | None:
        watcher, lib = self._watcher, self._lib
        if watcher is None or lib is None:
            return None
        return self._apply_ready(watcher, lib, token)

    def _apply_ready(self, watcher: FolderWatcher, lib: Library, token: CancelToken) -> AppliedReport | None:
        """Apply the ready changes (a few files: quick) and embed what they made, if that is little.

        Whole-folder reconciles (an unzip, a folder just added or back from an unplugged drive) and larger
        embedding are handed back and become index runs, with progress, Pause and Cancel, folded into any
        run already waiting.
        """
        try:
            report = watcher.apply_ready(
                lib, embed=True, embed_limit=INLINE_EMBED_CHUNKS, defer_rescans=True, cancel=token
            )
        except Cancelled:  # shutting down: the watcher re-queued what it took; the next sync embeds the rest
            return None
        if report.rescans:
            self._jobs.post(self.index, report.rescans)
        if report.embed_deferred:
            self._jobs.post(self.index, sorted({c.folder for c in report.changes}))
        if report:
            self._post_state(lib)
        return report

    def _post_state(self, lib: Library) -> None:
        status = lib.status()
        missing = [f.path for f in status.folders if not os.path.isdir(f.path)]
        self._jobs.post(self.stateChanged.emit, LibraryState(status, missing, lib.ignore_problems()))

    def _open_job(self, *, sync: bool = False) -> Embedder:
        lib = self._library()
        if sync and lib.folders():  # pick up what changed while the app was closed
            self._jobs.post(self.index, None)
        self._post_state(lib)
        assert self._embedder is not None
        return self._embedder

    def _reconfigure_job(self, settings: Settings, new_embedder: bool) -> Embedder:
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
            self._watch_folders(lib)
            if self._watcher is not None:
                # The watcher asks to reconcile a folder new to it: hand that over now, so it joins the
                # run just posted, and a Cancel stops both (a later tick would start it again).
                self._jobs.post(self._applied, self._apply_ready(self._watcher, lib, CancelToken()))
        self._post_state(lib)
        return errors

    def _remove_job(self, path: str) -> None:
        lib = self._library()
        try:
            lib.remove_folder(path)
        finally:
            self._watch_folders(lib)
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
            targets = [f for f in folders if any(is_within(p, f.path) for p in request.paths)]
            if not targets:
                return SyncReport()
        try:
            return lib.index(targets, progress=self._progress.push, cancel=request.token)
        except Cancelled:
            return None
        finally:
            self._post_state(lib)

    def _close_job(self) -> None:
        self._stop_watcher()  # before the library closes: nothing may apply to a closed connection
        if self._lib is not None:
            lib, self._lib = self._lib, None
            lib.close()
