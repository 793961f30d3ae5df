"""Folder watching: the index follows the file system by itself.

Two sides, because the writer connection belongs to one thread (STYLE 2):

* watchdog's observer threads only *record* events: per folder, a path -> last-seen time map, the moves in
  order, and a "rescan" flag. Recording is cheap and bounded: a burst of more than `burst_limit` paths
  collapses into one flag, "reconcile this whole folder" (a git checkout, an unzip, 10,000 files).
* the thread that owns the `Library` calls `take_ready()` every few hundred milliseconds and applies what it
  returns with `apply_changes(lib, changes)` (or both at once: `apply_ready(lib)`). A path is handed out once
  nothing happened to it for `debounce_s` and its size and mtime held still (a file still being written
  waits); a move goes first and keeps the document's chunks and vectors (only the path changes).

Public API::

    watcher = FolderWatcher(lib.folders(), lib.indexer.rules_for, exclude=[str(lib.db_path)])
    watcher.start()                      # native watch per folder; polling where the OS limit is reached
    lib.index()                          # reconcile what changed while nothing watched (start first!)
    while running:                       # on the writer thread, every TICK_S or so
        report = watcher.apply_ready(lib, embed=False)   # -> AppliedReport; report.lines() for a log
        if report.totals.chunks_added: ...               # the GUI runs embedding as its own job
    watcher.states()                     # {folder path: FolderState(state, detail, last_change, ...)}
    watcher.pause(); watcher.resume()    # paused: events are still recorded, applied on resume
    watcher.request_rescan(path)         # "rescan now": reconcile a folder (or all) on the next tick
    watcher.set_folders(lib.folders())   # after a folder was added or removed
    watcher.stop()

    watch_forever(lib, cancel, out)      # the headless loop of `almanac watch`

Folder states: "watching" (native events), "polling" (checked every `poll_interval_s`: the OS watch limit
was reached), "missing" (deleted, renamed, or its drive unplugged; its index is kept and the folder is
looked for every `check_interval_s`; when it is back it is reconciled and watched again), "error" (cannot
be read), "paused", "stopped". `FolderState.detail` says why, in plain words.

Only `FolderWatcher.states/pause/resume/paused/request_rescan` may be called from another thread (the
GUI thread); everything else belongs to the thread that owns the Library. If applying fails or is
cancelled, the folders it touched are reconciled whole on the next tick: nothing taken is lost.

Limits: a file written with pauses longer than `debounce_s + settle_s` may be indexed twice (half, then
whole). Network file systems deliver no remote events to inotify; they look "watching" but only the
start-up scan (or `request_rescan`) sees remote changes.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from . import db, store
from .cancel import CancelToken
from .errors import AlmanacError, Cancelled
from .ignore import IGNORE_FILE, IgnoreRules, walk
from .indexer import SyncReport
from .timing import Timings

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from .library import Library

log = logging.getLogger(__name__)

WATCHING = "watching"
POLLING = "polling"
MISSING = "missing"
PAUSED = "paused"
ERROR = "error"
STOPPED = "stopped"

TICK_S = 0.2  # how often the headless loop looks for ready changes

RulesFor = Callable[[store.Folder], IgnoreRules]
ObserverFactory = Callable[[], "BaseObserver"]


# --- what the watcher hands out, and what applying it did ---------------------------------------------------


@dataclass(frozen=True)
class Move:
    src: str
    dest: str
    is_dir: bool


@dataclass
class FolderChanges:
    """Ready changes of one folder. `rescan` (a reason) means: reconcile the whole folder instead."""

    folder: store.Folder
    paths: list[str] = field(default_factory=list)  # created, changed or deleted: looked at as they are now
    moves: list[Move] = field(default_factory=list)  # in the order they happened, applied first
    rescan: str = ""
    forget_rules: bool = False  # an .almanacignore changed


@dataclass
class ChangeSet:
    folders: list[FolderChanges] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.folders)


@dataclass(frozen=True)
class AppliedChange:
    folder: str  # the library folder's path
    action: str  # "added" | "updated" | "removed" | "moved" | "failed" | "rescanned"
    path: str
    dest: str = ""  # for "moved"
    detail: str = ""

    def describe(self) -> str:
        rel = _display(self.path, self.folder)
        if self.action == "moved":
            text = f"moved {rel} -> {_display(self.dest, self.folder)}"
            return f"{text} ({self.detail})" if self.detail else text
        if self.action == "failed":
            return f"failed {rel}: {self.detail}"
        return f"{self.action} {rel}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class AppliedReport:
    changes: list[AppliedChange] = field(default_factory=list)
    totals: SyncReport = field(default_factory=SyncReport)
    embedded: int = 0  # chunks that got a vector (only when asked to embed)
    timings: Timings = field(default_factory=Timings)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def lines(self, limit: int = 20) -> list[str]:
        """One line per change, at most `limit` (a storm must not flood a log)."""
        out = [c.describe() for c in self.changes[:limit]]
        if len(self.changes) > limit:
            out.append(f"... and {len(self.changes) - limit} more changes")
        return out


@dataclass(frozen=True)
class FolderState:
    state: str  # WATCHING | POLLING | MISSING | ERROR | PAUSED | STOPPED
    detail: str  # why, in plain words; "" when simply watching
    last_change: str | None  # the last change applied, as a log line would say it
    last_change_at: float | None  # time.time() of it
    pending: int  # changes recorded, not applied yet

    @property
    def label(self) -> str:
        return f"{self.state} ({self.detail})" if self.detail else self.state


# --- recording (observer threads) ---------------------------------------------------------------------------


@dataclass
class _Entry:
    last_seen: float
    stat: tuple[int, int] | None = None  # (size, mtime_ns) at the last look
    not_before: float = 0.0


@dataclass
class _Watched:
    folder: store.Folder
    observer: BaseObserver | None = None
    mode: str = ""  # "native" | "polling"
    state: str = STOPPED
    detail: str = ""
    pending: dict[str, _Entry] = field(default_factory=dict)
    moves: list[tuple[float, Move]] = field(default_factory=list)
    rescan: str = ""
    forget_rules: bool = False
    last_event: float = 0.0
    check_now: bool = False
    mount_point: bool = False
    last_change: str | None = None
    last_change_at: float | None = None

    @property
    def root(self) -> str:
        return self.folder.path

    @property
    def active(self) -> bool:
        return self.state in (WATCHING, POLLING)

    def drop_pending(self) -> None:
        self.pending.clear()
        self.moves.clear()
        self.rescan = ""
        self.forget_rules = False


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: FolderWatcher, watched: _Watched) -> None:
        self._watcher = watcher
        self._watched = watched

    def dispatch(self, event: FileSystemEvent) -> None:
        self._watcher._on_event(self._watched, event)


class _OverflowHook(logging.Handler):
    """watchdog only logs when the kernel's inotify queue overflows; events were lost, so reconcile."""

    def __init__(self, watcher: FolderWatcher) -> None:
        super().__init__(logging.WARNING)
        self._watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in str(record.msg).lower():
            self._watcher._events_lost()


_OVERFLOW_LOGGER = "watchdog.observers.inotify_c"


def _native_observer() -> BaseObserver:
    from watchdog.observers import Observer

    return Observer()


def _polling_observer(interval_s: float) -> BaseObserver:
    from watchdog.observers.polling import PollingObserver

    return PollingObserver(timeout=interval_s)


class FolderWatcher:
    """Watches library folders and hands out debounced, coalesced changes. See the module docstring."""

    def __init__(
        self,
        folders: Iterable[store.Folder],
        rules_for: RulesFor,
        *,
        debounce_s: float = 1.0,
        settle_s: float = 0.5,
        burst_limit: int = 500,
        poll_interval_s: float = 5.0,
        check_interval_s: float = 2.0,
        native_observer: ObserverFactory | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.debounce_s = debounce_s
        self.settle_s = settle_s
        self.burst_limit = burst_limit
        self.poll_interval_s = poll_interval_s
        self.check_interval_s = check_interval_s
        self._rules_for = rules_for
        self._native = native_observer or _native_observer
        self._exclude = tuple(exclude)  # path prefixes never recorded (the index's own files)
        self._lock = threading.Lock()
        self._folders: dict[str, _Watched] = {f.path: _Watched(f) for f in folders}
        self._paused = False
        self._started = False
        self._next_check = 0.0
        self._hook = _OverflowHook(self)

    # -- lifecycle (owner thread) ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start watching every folder. Start before the reconciliation scan, so nothing is lost between."""
        if self._started:
            return
        self._started = True
        logging.getLogger(_OVERFLOW_LOGGER).addHandler(self._hook)
        for w in list(self._folders.values()):
            self._start_one(w)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        logging.getLogger(_OVERFLOW_LOGGER).removeHandler(self._hook)
        for w in list(self._folders.values()):
            self._stop_one(w)
            with self._lock:
                w.state, w.detail = STOPPED, ""
                w.drop_pending()

    def set_folders(self, folders: Iterable[store.Folder]) -> None:
        """Follow the library's folder list. A folder new to the watcher is reconciled by it once."""
        wanted = {f.path: f for f in folders}
        for path, w in list(self._folders.items()):
            if path not in wanted:
                self._stop_one(w)
                with self._lock:
                    del self._folders[path]
        for path, f in wanted.items():
            w = self._folders.get(path)
            if w is not None:
                w.folder = f
                continue
            w = _Watched(f)
            with self._lock:
                self._folders[path] = w
            if self._started:
                self._start_one(w)
                with self._lock:
                    if w.active:
                        w.rescan, w.last_event = "added to the library", 0.0

    # -- any thread ------------------------------------------------------------------------------------------

    def pause(self) -> None:
        """Stop applying changes; they are still recorded (bounded) and applied on `resume()`."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def states(self) -> dict[str, FolderState]:
        with self._lock:
            out = {}
            for path, w in self._folders.items():
                state, detail = w.state, w.detail
                if self._paused and w.active:
                    state, detail = PAUSED, "changes are recorded and applied on resume"
                pending = len(w.pending) + len(w.moves) + (1 if w.rescan else 0)
                out[path] = FolderState(state, detail, w.last_change, w.last_change_at, pending)
            return out

    # -- handing out ready changes (owner thread) ------------------------------------------------------------

    def take_ready(self, now: float | None = None) -> ChangeSet:
        """Changes that are quiet and stable, removed from the pending set. `now` is time.monotonic()."""
        now = time.monotonic() if now is None else now
        with self._lock:
            due_all = now >= self._next_check
            if due_all:
                self._next_check = now + self.check_interval_s
            due = [
                w
                for w in self._folders.values()
                if w.state != STOPPED and (due_all or w.check_now or w.pending or w.moves or w.rescan)
            ]
        for w in due:  # never apply a deletion of a folder that is no longer there (an unplugged drive)
            self._check_root(w)
        out = ChangeSet()
        wall = time.time()
        with self._lock:
            if self._paused:
                return out
            for w in self._folders.values():
                if not w.active:
                    continue
                quiet = self.debounce_s + (self.poll_interval_s if w.mode == "polling" else 0.0)
                if w.rescan:
                    if now - w.last_event >= quiet:
                        fc = FolderChanges(w.folder, rescan=w.rescan, forget_rules=w.forget_rules)
                        out.folders.append(fc)
                        w.drop_pending()
                    continue
                cutoff = now - quiet
                moves: list[Move] = []
                while w.moves and w.moves[0][0] <= cutoff:
                    moves.append(w.moves.pop(0)[1])
                # Paths touched by a move that is not ready yet wait for it, so a move always goes first.
                held = [p for _, m in w.moves for p in (m.src, m.dest)]
                paths: list[str] = []
                for path, entry in list(w.pending.items()):
                    if entry.last_seen > cutoff or now < entry.not_before:
                        continue
                    if held and any(path == h or path.startswith(h + os.sep) for h in held):
                        continue
                    if not self._stable(path, entry, now, wall):
                        continue
                    paths.append(path)
                    del w.pending[path]
                if moves or paths:
                    out.folders.append(FolderChanges(w.folder, sorted(paths), moves))
        return out

    def apply_ready(
        self,
        lib: Library,
        *,
        embed: bool = False,
        cancel: CancelToken | None = None,
        now: float | None = None,
    ) -> AppliedReport:
        """`take_ready` + `apply_changes`, then (if `embed`) vectors for new chunks. Writer thread only."""
        changes = self.take_ready(now)
        try:
            report = apply_changes(lib, changes, cancel=cancel)
        except BaseException:  # cancelled, or the disk is full: nothing taken may be lost
            self._requeue(changes)
            raise
        self.note_applied(report)
        if embed and report.totals.chunks_added:
            with report.timings.stage("embed"):
                report.embedded = lib.indexer.embed_pending(cancel=cancel)
        return report

    def request_rescan(self, folder_path: str | None = None, reason: str = "rescan requested") -> None:
        """Reconcile one folder (or all) at the next `take_ready`, as a scan would."""
        with self._lock:
            for path, w in self._folders.items():
                if folder_path is None or path == folder_path:
                    w.pending.clear()
                    w.moves.clear()
                    w.rescan, w.last_event = w.rescan or reason, 0.0

    def note_applied(self, report: AppliedReport) -> None:
        """Remember each folder's last applied change (for `states()`); `apply_ready` calls it."""
        if not report.changes:
            return
        at = time.time()
        with self._lock:
            for change in report.changes:
                w = self._folders.get(change.folder)
                if w is not None:
                    w.last_change, w.last_change_at = change.describe(), at

    def _requeue(self, changes: ChangeSet) -> None:
        with self._lock:
            for fc in changes.folders:
                w = self._folders.get(fc.folder.path)
                if w is not None:
                    w.pending.clear()
                    w.moves.clear()
                    w.rescan, w.last_event = w.rescan or "an update was interrupted", 0.0
                    w.forget_rules = w.forget_rules or fc.forget_rules

    # -- internals -------------------------------------------------------------------------------------------

    def _stable(self, path: str, entry: _Entry, now: float, wall: float) -> bool:
        """A file is handed out once it has stopped changing: not modified for `settle_s` by its own mtime,
        or the same size and mtime at two looks."""
        try:
            st = os.stat(path)
        except OSError:
            return True  # gone: a deletion is ready
        if not stat.S_ISREG(st.st_mode):
            return True
        sig = (st.st_size, st.st_mtime_ns)
        if entry.stat == sig or wall - st.st_mtime_ns / 1e9 >= self.settle_s:
            return True
        entry.stat, entry.not_before = sig, now + self.settle_s
        return False

    def _on_event(self, w: _Watched, event: FileSystemEvent) -> None:
        """Observer thread: record one event. Never touches the database."""
        try:
            self._record(w, event)
        except Exception:  # a bug here must not kill the observer thread; reconcile instead
            log.exception("cannot record %r", event)
            with self._lock:
                w.rescan, w.last_event = w.rescan or "an event could not be handled", time.monotonic()

    def _record(self, w: _Watched, event: FileSystemEvent) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        if event.is_directory and kind in ("modified", "attrib", "closed"):
            return  # a folder's listing changed: its entries report for themselves
        if event.is_synthetic:
            return  # the entries of a folder moved or created: the folder's own event covers them
        src = os.fsdecode(event.src_path)
        if src == w.root and kind in ("deleted", "moved"):
            with self._lock:
                w.check_now = True
            return
        if kind == "moved":
            dest = os.fsdecode(event.dest_path)
            where_src = self._where(w, src, event.is_directory)
            where_dest = self._where(w, dest, event.is_directory)
        else:
            dest, where_src, where_dest = "", self._where(w, src, event.is_directory), "out"
        now = time.monotonic()
        with self._lock:
            if not w.active:
                return
            if "rules" in (where_src, where_dest):
                w.rescan, w.forget_rules, w.last_event = w.rescan or "ignore rules changed", True, now
                return
            if kind == "moved" and where_src == "in" and where_dest == "in":
                self._mark(w, now, src, dest, move=Move(src, dest, event.is_directory))
            elif where_src == "in":
                self._mark(w, now, src)  # created, modified, deleted, or moved out of the folder
            elif where_dest == "in":
                self._mark(w, now, dest)  # moved in, or an editor's temp file renamed over its target

    def _where(self, w: _Watched, path: str, is_dir: bool) -> str:
        """Where an event's path falls: "in", "out" (outside the folder, or ignored), or "rules"."""
        if not path.startswith(w.root + os.sep) or path.startswith(self._exclude):
            return "out"
        if os.path.basename(path) == IGNORE_FILE and not is_dir:
            return "rules"
        try:
            ignored = self._rules_for(w.folder).ignored(Path(path), is_dir=is_dir)
        except Exception:  # a race with forget_rules(): let the writer judge
            ignored = False
        return "out" if ignored else "in"

    def _mark(self, w: _Watched, now: float, *paths: str, move: Move | None = None) -> None:
        """Under the lock: note that `paths` changed; collapse into a rescan past `burst_limit`."""
        w.last_event = now
        if w.rescan:
            return  # the whole folder is reconciled anyway
        if move is not None:
            w.moves.append((now, move))
        for path in paths:
            entry = w.pending.get(path)
            if entry is None:
                w.pending[path] = _Entry(now)
            else:
                entry.last_seen = now
        if len(w.pending) + len(w.moves) > self.burst_limit:
            w.drop_pending()
            w.rescan = f"more than {self.burst_limit} changes at once"

    def _events_lost(self) -> None:
        with self._lock:
            for w in self._folders.values():
                if w.active and w.mode == "native":
                    w.rescan, w.last_event = "the system dropped file events", time.monotonic()
                    w.pending.clear()
                    w.moves.clear()

    def _root_problem(self, w: _Watched) -> tuple[str, str] | None:
        """(state, detail) when the folder cannot be watched now, else None."""
        keep = "its index is kept"
        try:
            st = os.stat(w.root)
        except (FileNotFoundError, NotADirectoryError):
            return MISSING, f"folder not found (deleted, renamed or on an unplugged drive); {keep}"
        except PermissionError:
            return ERROR, f"cannot read the folder: permission denied; {keep}"
        except OSError as err:  # EIO, ENODEV, ESTALE: a drive pulled out, a network share gone
            return MISSING, f"cannot reach the folder ({err.strerror or err}); {keep}"
        if not stat.S_ISDIR(st.st_mode):
            return MISSING, f"no longer a folder; {keep}"
        if not os.access(w.root, os.R_OK | os.X_OK):
            return ERROR, f"cannot read the folder: permission denied; {keep}"
        if w.mount_point and _device(os.path.dirname(w.root)) == st.st_dev:
            # The folder was a mount point; now its empty mount directory shows through: unplugged.
            return MISSING, f"its drive is not mounted; {keep}"
        return None

    def _check_root(self, w: _Watched) -> None:
        with self._lock:
            w.check_now = False
            was = w.state
        if was == STOPPED:
            return
        problem = self._root_problem(w)
        if problem is not None:
            if was in (WATCHING, POLLING):
                self._stop_one(w)
                log.warning("%s: %s", w.root, problem[1])
            with self._lock:
                w.state, w.detail = problem
                w.drop_pending()
        elif was in (MISSING, ERROR):
            self._start_one(w)
            with self._lock:
                if w.active:  # back: find what changed while it was away
                    w.rescan, w.last_event = "the folder is back", 0.0
                    log.warning("%s is back: %s", w.root, w.state)

    def _start_one(self, w: _Watched) -> None:
        problem = self._root_problem(w)
        if problem is not None:
            with self._lock:
                w.state, w.detail = problem
            return
        w.mount_point = _device(w.root) != _device(os.path.dirname(w.root))
        with self._lock:
            w.state, w.detail, w.mode = WATCHING, "", "native"  # record events from the first one on
        why = ""
        try:
            observer = self._native()
            try:
                observer.schedule(_Handler(self, w), w.root, recursive=True)
                observer.start()
            except BaseException:
                _stop_observer(observer)
                raise
            unwatched = _unwatched_dirs(observer, w.root)
            if unwatched:
                _stop_observer(observer)
                why = f"watch limit reached: {unwatched} sub-folders could not be watched"
            else:
                w.observer = observer
                return
        except OSError as err:
            problem = self._root_problem(w)
            if problem is not None:  # it went away while we started
                with self._lock:
                    w.state, w.detail = problem
                return
            if err.errno == errno.ENOSPC:
                why = "watch limit reached"
            elif err.errno == errno.EMFILE:
                why = "too many watches open"
            else:
                why = f"cannot get file events: {err.strerror or err}"
        # The OS will not watch this folder (fs.inotify.max_user_watches): look at it periodically instead.
        log.warning("%s: %s; checking it every %.0f s instead", w.root, why, self.poll_interval_s)
        try:
            observer = _polling_observer(self.poll_interval_s)
            observer.schedule(_Handler(self, w), w.root, recursive=True)
            observer.start()
        except OSError as err:
            with self._lock:
                w.state, w.detail = self._root_problem(w) or (ERROR, f"cannot watch: {err}")
            return
        w.observer = observer
        with self._lock:
            w.mode, w.state, w.detail = "polling", POLLING, f"{why}; checked every {self.poll_interval_s:g} s"

    def _stop_one(self, w: _Watched) -> None:
        observer, w.observer = w.observer, None
        with self._lock:
            if w.active:
                w.state = STOPPED  # late events of the stopping observer are dropped
        if observer is not None:
            _stop_observer(observer)


def _stop_observer(observer: BaseObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=5)
    except Exception:  # stopping must not fail the caller; the threads are daemons
        log.debug("stopping an observer failed", exc_info=True)


def _device(path: str) -> int | None:
    try:
        return os.stat(path).st_dev
    except OSError:
        return None


def _unwatched_dirs(observer: BaseObserver, root: str) -> int:
    """Linux: sub-folders inotify could not watch. watchdog skips them silently when the watch limit is
    reached below the root, so compare its watch table (private, hence defensive) with the tree."""
    try:
        groups = [e._inotify for e in observer.emitters]  # type: ignore[attr-defined]
        watched = {p for g in groups if g is not None for p in list(g._active_callbacks_by_path)}
    except (AttributeError, RuntimeError):
        return 0  # not inotify, or a watchdog that changed: trust it

    def residual() -> list[bytes]:
        out = []
        for dirpath, dirnames, _ in os.walk(root):
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if (
                    os.fsencode(full) not in watched
                    and not os.path.islink(full)
                    and os.access(full, os.R_OK | os.X_OK)
                ):
                    out.append(os.fsencode(full))
        return out

    left = residual()
    if not left:
        return 0
    time.sleep(0.2)  # folders created a moment ago get their watch from watchdog's thread
    try:
        watched = {p for g in groups if g is not None for p in list(g._active_callbacks_by_path)}
    except RuntimeError:
        return 0
    return sum(1 for p in left if p not in watched and os.path.isdir(p))


# --- applying (writer thread) -------------------------------------------------------------------------------


def apply_changes(lib: Library, changes: ChangeSet, *, cancel: CancelToken | None = None) -> AppliedReport:
    """Bring the index in line with the ready changes. Writer thread only; each store write is one
    transaction, so readers never see half a document. Does not embed (see `FolderWatcher.apply_ready`)."""
    report = AppliedReport()
    if not changes:
        return report
    live = {f.id for f in lib.folders()}  # a folder removed meanwhile is skipped
    todo = [fc for fc in changes.folders if fc.folder.id in live]
    with db.translate_errors(lib.db_path), report.timings.stage("apply"):
        for fc in todo:
            if fc.rescan:
                _rescan(lib, fc, report, cancel)
        paths = [fc for fc in todo if not fc.rescan]
        if paths:
            _apply_paths(lib, paths, report, cancel)
    return report


def _rescan(lib: Library, fc: FolderChanges, report: AppliedReport, cancel: CancelToken | None) -> None:
    if fc.forget_rules:
        lib.indexer.forget_rules()
    r = lib.indexer.sync([fc.folder], cancel=cancel)
    _add(report.totals, r)
    done = [
        f"{n} {what}"
        for n, what in (
            (r.indexed, "indexed"),
            (r.moved, "moved"),
            (r.deleted, "removed"),
            (r.failed, "failed"),
        )
        if n
    ]
    detail = f"{fc.rescan}: {', '.join(done) or 'no change'}"
    report.changes.append(AppliedChange(fc.folder.path, "rescanned", fc.folder.path, detail=detail))


def _apply_paths(
    lib: Library, todo: list[FolderChanges], report: AppliedReport, cancel: CancelToken | None
) -> None:
    conn, indexer = lib.conn, lib.indexer
    changes = report.changes

    # 1. Moves, in order: the path changes, chunks and vectors stay. Whether the content changed meanwhile is
    #    checked below like any other path (both ends of a move are also pending paths).
    for fc in todo:
        for mv in fc.moves:
            if mv.is_dir:
                n = store.move_documents_under(conn, mv.src, mv.dest, fc.folder.id)
                if n:
                    detail = f"{n} file{'s' if n != 1 else ''}"
                    changes.append(AppliedChange(fc.folder.path, "moved", mv.src, mv.dest, detail))
                    report.totals.moved += n
            else:
                doc = store.document(conn, mv.src)
                if doc is not None:
                    store.move_document(conn, doc.id, mv.dest, fc.folder.id, doc.size, doc.mtime_ns)
                    changes.append(AppliedChange(fc.folder.path, "moved", mv.src, mv.dest))
                    report.totals.moved += 1

    # 2. Look at every path as it is now: a file to (maybe) index, a folder to reconcile, or gone.
    files: dict[str, store.Folder] = {}
    gone: dict[str, tuple[store.DocState, store.Folder, str]] = {}  # path -> (doc, folder, gone folder path)
    for fc in todo:
        rules = indexer.rules_for(fc.folder)
        root_real = os.path.realpath(fc.folder.path)
        for path in fc.paths:
            what = _look(Path(path), rules, root_real)
            if what == "file":
                files.setdefault(path, fc.folder)
            elif what == "dir":
                _scan_dir(lib, fc.folder, Path(path), rules, root_real, files, gone)
            else:
                doc = store.document(conn, path)
                if doc is not None:
                    gone[path] = (doc, fc.folder, "")
                for p, d in store.documents_under(conn, path).items():
                    gone[p] = (d, fc.folder, path)

    # 3. Index what changed. A gone document with the same content is a move the events did not pair up
    #    (across folders, or a delete and a create): it keeps its chunks and vectors.
    renamed_from = {d.content_hash: d for d, _, _ in gone.values() if d.status == "indexed"}
    for path, folder in sorted(files.items()):
        if cancel:
            cancel.checkpoint()
        p = Path(path)
        before = store.document(conn, path)
        if before is not None and _same_stat(before, p):
            continue  # unchanged (a moved file, a chmod, an event for nothing)
        r = SyncReport()
        moved_from = indexer.index_file(folder, p, r, renamed_from=renamed_from)
        _add(report.totals, r)
        if moved_from is not None:
            gone.pop(moved_from, None)
            changes.append(AppliedChange(folder.path, "moved", moved_from, path))
        elif r.indexed:
            action = "updated" if before is not None else "added"
            changes.append(AppliedChange(folder.path, action, path, detail=f"+{r.chunks_added} chunks"))
        elif r.failed:
            changes.append(AppliedChange(folder.path, "failed", path, detail=r.failures[-1][1]))
        elif before is not None and store.document(conn, path) is None:
            changes.append(AppliedChange(folder.path, "removed", path, detail="not a document any more"))

    # 4. Remove what is gone, in one transaction.
    if gone:
        store.delete_documents(conn, [d.id for d, _, _ in gone.values()])
        report.totals.deleted += len(gone)
        by_dir: dict[tuple[str, str], int] = {}
        for path, (_, folder, under) in sorted(gone.items()):
            if under:
                by_dir[(folder.path, under)] = by_dir.get((folder.path, under), 0) + 1
            else:
                changes.append(AppliedChange(folder.path, "removed", path))
        for (folder_path, under), n in by_dir.items():
            detail = f"{n} file{'s' if n != 1 else ''}"
            changes.append(AppliedChange(folder_path, "removed", under, detail=detail))


def _look(p: Path, rules: IgnoreRules, root_real: str) -> str:
    """What a path is now: "file", "dir", or "gone" (missing, ignored, or nothing a scan would index)."""
    try:
        st = p.lstat()
    except OSError:
        return "gone"
    is_dir = stat.S_ISDIR(st.st_mode)
    if p.name == IGNORE_FILE or rules.ignored(p, is_dir=is_dir):
        return "gone"
    if is_dir:
        return "dir"
    if stat.S_ISLNK(st.st_mode):  # as the scan does: only links to files inside the folder
        target = os.path.realpath(p)
        inside = os.path.commonpath([root_real, target]) == root_real
        return "file" if inside and os.path.isfile(target) else "gone"
    return "file" if stat.S_ISREG(st.st_mode) else "gone"


def _scan_dir(
    lib: Library,
    folder: store.Folder,
    directory: Path,
    rules: IgnoreRules,
    root_real: str,
    files: dict[str, store.Folder],
    gone: dict[str, tuple[store.DocState, store.Folder, str]],
) -> None:
    """A folder appeared or moved in: the same reconciliation as a scan, for that sub-tree only."""
    found, too_big = walk(directory, rules, max_bytes=int(lib.settings.max_file_mb * 1e6))
    present = {str(p) for p in found} | {str(p) for p, _ in too_big}
    for path in present:
        files.setdefault(path, folder)  # index_file records the too-big ones as failed
    for path, doc in store.documents_under(lib.conn, str(directory)).items():
        if path in present:
            continue
        if _look(Path(path), rules, root_real) == "file":  # e.g. a link to a file elsewhere in the folder
            files.setdefault(path, folder)
        else:
            gone[path] = (doc, folder, str(directory))


def _same_stat(doc: store.DocState, p: Path) -> bool:
    try:
        st = p.stat()
    except OSError:
        return False
    return (doc.size, doc.mtime_ns) == (st.st_size, st.st_mtime_ns)


def _add(total: SyncReport, r: SyncReport) -> None:
    total.scanned += r.scanned
    total.indexed += r.indexed
    total.unchanged += r.unchanged
    total.moved += r.moved
    total.deleted += r.deleted
    total.failed += r.failed
    total.chunks_added += r.chunks_added
    total.failures += r.failures


def _display(path: str, folder: str) -> str:
    """A path as the user knows it: from the library folder's own name on."""
    try:
        return os.path.relpath(path, os.path.dirname(folder.rstrip(os.sep)) or os.sep)
    except ValueError:
        return path


# --- the headless loop --------------------------------------------------------------------------------------


def watch_forever(
    lib: Library,
    cancel: CancelToken,
    out: TextIO = sys.stdout,
    *,
    debounce_s: float = 1.0,
    tick_s: float = TICK_S,
    refresh_folders_s: float = 10.0,
) -> int:
    """`almanac watch`: reconcile, then keep the index in step with the folders until `cancel` is set."""
    folders = lib.folders()
    if not folders:
        raise AlmanacError("The library is empty: add a folder first, as in `almanac add ~/Documents`.")

    def say(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", file=out, flush=True)

    own_files = (str(lib.db_path),)  # the index may live inside a watched folder: never index it
    watcher = FolderWatcher(folders, lib.indexer.rules_for, debounce_s=debounce_s, exclude=own_files)
    watcher.start()  # first, so nothing that changes during the reconciliation is lost
    shown: dict[str, str] = {}
    try:
        shown = _say_states(watcher, shown, say)
        started = time.perf_counter()
        r = lib.index(cancel=cancel)
        say(
            f"reconciled {r.scanned} files in {time.perf_counter() - started:.1f} s: {r.indexed} indexed,"
            f" {r.moved} moved, {r.deleted} removed, {r.failed} failed"
        )
        say("watching for changes; press Ctrl+C to stop")
        next_refresh = time.monotonic() + refresh_folders_s
        while not cancel.cancelled:
            applied = watcher.apply_ready(lib, embed=True, cancel=cancel)
            for line in applied.lines():
                say(line)
            if time.monotonic() >= next_refresh:  # `almanac add` from another terminal
                watcher.set_folders(lib.folders())
                next_refresh = time.monotonic() + refresh_folders_s
            shown = _say_states(watcher, shown, say)
            time.sleep(tick_s)
    except Cancelled:
        pass
    finally:
        watcher.stop()
    say("stopped watching")
    return 0


def _say_states(watcher: FolderWatcher, shown: dict[str, str], say: Callable[[str], None]) -> dict[str, str]:
    now = {path: s.label for path, s in watcher.states().items()}
    for path, label in now.items():
        if shown.get(path) != label:
            say(f"{path}: {label}")
    for path in shown.keys() - now.keys():
        say(f"{path}: no longer in the library")
    return now
