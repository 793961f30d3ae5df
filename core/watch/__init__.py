"""Folder watching: the index follows the file system by itself.

Two sides, because the writer connection belongs to one thread (STYLE 2):

* watchdog's observer threads only *record* events: per folder, a path -> last-seen time map, the moves in
  order, and a "rescan" flag. Recording is cheap and bounded: a burst of more than `burst_limit` paths
  collapses into one flag, "reconcile this whole folder" (a git checkout, an unzip, 10,000 files).
* the thread that owns the `Library` calls `take_ready()` every few hundred milliseconds and applies what it
  returns with `apply_changes(lib, changes)` (or both at once: `apply_ready(lib)`). A path is handed out once
  nothing happened to it for `debounce_s` and its size and mtime held still (a file still being written
  waits); a move goes first and keeps the document's chunks and vectors (only the path changes). Embedding
  after a change embeds only the chunks that change made, in small cancellable batches.

Public API::

    watcher = FolderWatcher(lib.folders(), lib.indexer.rules_for, exclude=[str(lib.db_path)])
    watcher.start()                      # native watch per folder; polling where the OS limit is reached
    lib.index()                          # reconcile what changed while nothing watched (start first!)
    while running:                       # on the writer thread, every TICK_S or so
        report = watcher.apply_ready(lib, embed=True, cancel=token)  # -> AppliedReport; .lines() for a log
    # The GUI hands whole-folder reconciles and larger embedding back, to run them as index runs:
    report = watcher.apply_ready(lib, embed=True, embed_limit=32, defer_rescans=True, cancel=token)
    report.rescans, report.embed_deferred                            # -> index runs, with progress
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

from .apply import apply_changes
from .changes import TICK_S, AppliedReport, ChangeSet, FolderState
from .headless import watch_forever
from .watcher import FolderWatcher

__all__ = [
    "TICK_S",
    "AppliedReport",
    "ChangeSet",
    "FolderState",
    "FolderWatcher",
    "apply_changes",
    "watch_forever",
]
