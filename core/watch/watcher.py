"""Recording file-system events on watchdog's threads, and handing out the changes that are ready."""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from .. import paths, store
from ..cancel import CancelToken
from ..ignore import IGNORE_FILE

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver

    from ..library import Library

from .apply import apply_changes, embed_documents
from .changes import (
    ERROR,
    MISSING,
    PAUSED,
    POLLING,
    STOPPED,
    WATCHING,
    AppliedReport,
    ChangeSet,
    FolderChanges,
    FolderState,
    Move,
    ObserverFactory,
    RulesFor,
)

log = logging.getLogger(__name__)

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
        """Changes that are quiet and stable, removed from the pending set. `now` is time.monotonic().

        Files are looked at (stat) outside the lock, which the GUI thread takes for `states()`: a slow disk
        delays only this thread.
        """
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
        ready: list[tuple[_Watched, list[Move], list[tuple[str, _Entry, float]]]] = []
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
                quiet_paths = [
                    (path, entry, entry.last_seen)
                    for path, entry in w.pending.items()
                    if entry.last_seen <= cutoff
                    and now >= entry.not_before
                    and not (held and any(paths.is_within(path, h) for h in held))
                ]
                if moves or quiet_paths:
                    ready.append((w, moves, quiet_paths))
        wall = time.time()
        looked = [[(path, entry, seen, _look(path)) for path, entry, seen in quiet] for _, _, quiet in ready]
        with self._lock:
            for (w, moves, _), found in zip(ready, looked, strict=True):
                taken: list[str] = []
                for path, entry, seen, sig in found:
                    if w.pending.get(path) is not entry or entry.last_seen != seen:
                        continue  # touched again (or dropped by a burst) while we looked: not ready
                    if self._stable(sig, entry, now, wall):
                        taken.append(path)
                        del w.pending[path]
                if moves or taken:
                    out.folders.append(FolderChanges(w.folder, sorted(taken), moves))
        return out

    def apply_ready(
        self,
        lib: Library,
        *,
        embed: bool = False,
        embed_limit: int | None = None,
        defer_rescans: bool = False,
        cancel: CancelToken | None = None,
        now: float | None = None,
    ) -> AppliedReport:
        """`take_ready` + `apply_changes`, then (if `embed`) vectors for the chunks those changes made, and
        only those (an older backlog is an index run's job). Writer thread only.

        `defer_rescans`: whole-folder reconciles are not run here but handed back in `report.rescans`, for
        the caller to run as an index run with progress, Pause and Cancel (the GUI); a changed
        .almanacignore still takes effect now. `embed_limit`: when the changes made more chunks than this,
        they are not embedded here and `report.embed_deferred` says so (the GUI embeds them with progress).
        If applying fails or is cancelled, the folders it took are reconciled whole on a later tick.
        """
        taken = self.take_ready(now)
        changes, deferred = taken, ChangeSet()
        if defer_rescans:
            deferred = ChangeSet([fc for fc in taken.folders if fc.rescan])
            if any(fc.forget_rules for fc in deferred.folders):
                lib.indexer.forget_rules()
            changes = ChangeSet([fc for fc in taken.folders if not fc.rescan])
        try:
            report = apply_changes(lib, changes, cancel=cancel)
        except BaseException:  # cancelled, or the disk is full: nothing taken may be lost
            self._requeue(taken)
            raise
        report.rescans = [fc.folder.path for fc in deferred.folders]
        self.note_applied(report)
        added = report.totals.chunks_added
        if embed and added:
            if embed_limit is not None and added > embed_limit:
                report.embed_deferred = True
            else:
                try:
                    with report.timings.stage("embed"):
                        report.embedded = embed_documents(lib, report.documents, cancel=cancel)
                except BaseException:  # the changes are in; an index run embeds them. The rescans must wait.
                    self._requeue(deferred)
                    raise
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

    def _stable(self, sig: tuple[int, int] | None, entry: _Entry, now: float, wall: float) -> bool:
        """Under the lock. A file is handed out once it has stopped changing: not modified for `settle_s`
        by its own mtime, or the same size and mtime at two looks. `sig` is what `_look` saw."""
        if sig is None:
            return True  # gone, or not a regular file: ready as it is
        if entry.stat == sig or wall - sig[1] / 1e9 >= self.settle_s:
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
        if path == w.root or not paths.is_within(path, w.root):
            return "out"
        if path.startswith(self._exclude):
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


def _look(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a regular file; None when it is gone or not a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


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
