"""What the watcher hands out (changes, folder states) and what applying them did."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import store
from ..ignore import IgnoreRules
from ..indexer import SyncReport
from ..timing import Timings

if TYPE_CHECKING:
    from watchdog.observers.api import BaseObserver


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
    documents: list[int] = field(default_factory=list)  # ids of the documents these changes (re)wrote
    rescans: list[str] = field(default_factory=list)  # folders handed back to reconcile (defer_rescans)
    embed_deferred: bool = False  # more new chunks than embed_limit: not embedded here

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


def _display(path: str, folder: str) -> str:
    """A path as the user knows it: from the library folder's own name on."""
    try:
        return os.path.relpath(path, os.path.dirname(folder.rstrip(os.sep)) or os.sep)
    except ValueError:
        return path
