"""The headless loop of `almanac watch`."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from ..cancel import CancelToken
from ..errors import AlmanacError, Cancelled

if TYPE_CHECKING:
    from ..library import Library

from .changes import TICK_S
from .watcher import FolderWatcher

log = logging.getLogger(__name__)

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
