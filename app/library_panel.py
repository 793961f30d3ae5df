"""The library: watched folders with their counts and state, and the files that could not be read, with why.

The panel only shows state and asks for changes (signals); the index thread does the work.
"""

from __future__ import annotations

import time
from pathlib import Path

from almanac.core.watch import FolderState
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .index_controller import LibraryState

PATH_ROLE = Qt.ItemDataRole.UserRole
REASON_ROLE = Qt.ItemDataRole.UserRole + 1


# What the Status column says for each watch state (core.watch's names); the detail goes in the tooltip.
WATCH_WORDS = {
    "watching": "Watching",
    "polling": "Polling",
    "paused": "Paused",
    "missing": "Missing",
    "error": "Not watched",
}
COLUMNS = ["Folder", "Docs", "Failed", "Status"]  # chunks: in the summary, and a tooltip
STATUS_COLUMN = 3


def _count(n: int) -> str:
    return f"{n:,}"


def _when(at: float | None) -> str:
    if at is None:
        return ""
    if time.time() - at < 20 * 3600:
        return time.strftime("%H:%M:%S", time.localtime(at))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at))


class LibraryPanel(QWidget):
    addRequested = Signal(list)  # folder paths
    removeRequested = Signal(str)
    reindexRequested = Signal(object)  # list of folder paths, or None for all
    watchPausedToggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._indexing = False
        self._state: LibraryState | None = None
        self._watch: dict[str, FolderState] = {}
        self._watch_paused = False

        self.folders = QTreeWidget(self)
        self.folders.setObjectName("folders")
        self.folders.setHeaderLabels(COLUMNS)
        self.folders.setRootIsDecorated(False)
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.folders.setUniformRowHeights(True)
        header = self.folders.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.folders.itemSelectionChanged.connect(self._update_buttons)

        self.add_button = QPushButton("Add Folder…", self)
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self._remove_selected)
        self.reindex_button = QPushButton("Re-index", self)
        self.reindex_button.setToolTip("Look for new, changed and deleted files now")
        self.reindex_button.clicked.connect(self._reindex)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.reindex_button)
        buttons.addStretch(1)

        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setObjectName("librarySummary")
        self.watch_label = QLabel(self)
        self.watch_label.setObjectName("watchSummary")
        self.watch_label.setWordWrap(True)
        self.watch_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.watch_button = QPushButton("Pause Watching", self)
        self.watch_button.setObjectName("pauseWatching")
        self.watch_button.setCheckable(True)
        self.watch_button.setToolTip("Stop applying file changes for now; they are applied on resume")
        self.watch_button.toggled.connect(self.watchPausedToggled)
        watch_row = QHBoxLayout()
        watch_row.addWidget(self.watch_label, 1)
        watch_row.addWidget(self.watch_button, 0, Qt.AlignmentFlag.AlignTop)
        self.empty_hint = QLabel(
            "Your library is empty. Add a folder, or drop one onto this window, and Almanac will index"
            " the documents in it.",
            self,
        )
        self.empty_hint.setWordWrap(True)

        self.failures_title = QLabel("Files that could not be read", self)
        self.failures = QListWidget(self)  # two lines an entry: a long reason needs the full width
        self.failures.setObjectName("failures")
        self.failures.setWordWrap(True)
        self.failures.setAlternatingRowColors(True)

        top = QWidget(self)
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.empty_hint)
        top_layout.addWidget(self.folders, 1)
        top_layout.addLayout(buttons)
        top_layout.addWidget(self.summary)
        top_layout.addLayout(watch_row)
        bottom = QWidget(self)
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        bottom_layout.addWidget(self.failures_title)
        bottom_layout.addWidget(self.failures, 1)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("librarySplitter")
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        self._update_buttons()
        self.set_state(None)

    # -- public ----------------------------------------------------------------------------------------

    def set_state(self, state: LibraryState | None) -> None:
        self._state = state
        selected = set(self.selected_paths())
        self.folders.clear()
        self.failures.clear()
        if state is None:
            self.summary.setText("Opening the library…")
            self.failures_title.setText("Files that could not be read")
            return
        s = state.status
        for f in s.folders:
            item = QTreeWidgetItem(
                [
                    Path(f.path).name or f.path,
                    _count(f.documents),
                    _count(f.failed),
                    self._folder_state(f.path),
                ]
            )
            item.setData(0, PATH_ROLE, f.path)
            item.setToolTip(0, f.path)
            item.setToolTip(STATUS_COLUMN, self._folder_tooltip(f.path))
            item.setToolTip(1, f"{_count(f.documents)} documents, {_count(f.chunks)} chunks")
            for column in range(1, STATUS_COLUMN):
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.folders.addTopLevelItem(item)
            item.setSelected(f.path in selected)
        for path, reason in [*state.ignore_problems, *s.failures]:  # a bad ignore line affects many files
            item = QListWidgetItem(f"{Path(path).name}\n{reason}")
            item.setToolTip(f"{path}\n{reason}")
            item.setData(PATH_ROLE, path)
            item.setData(REASON_ROLE, reason)
            self.failures.addItem(item)
        self.empty_hint.setVisible(not s.folders)
        self.failures_title.setText(f"Files that could not be read ({self.failures.count()})")
        waiting = s.chunks - s.embedded
        parts = [f"{_count(s.documents)} documents", f"{_count(s.chunks)} chunks"]
        if waiting:
            parts.append(f"{_count(waiting)} waiting for embedding")
        parts.append(f"index {s.db_bytes / 1e6:.1f} MB")
        if s.embedding_model:
            parts.append(f"model {s.embedding_model}")
        self.summary.setText(" · ".join(parts))
        self._update_buttons()
        self._update_watch_label()

    def set_indexing(self, indexing: bool) -> None:
        self._indexing = indexing
        self.set_state(self._state)

    def set_watch_states(self, states: dict[str, FolderState]) -> None:
        """The watcher's view of each folder (throttled by the controller): updated in place."""
        self._watch = dict(states)
        for i in range(self.folders.topLevelItemCount()):
            item = self.folders.topLevelItem(i)
            path = item.data(0, PATH_ROLE)
            item.setText(STATUS_COLUMN, self._folder_state(path))
            item.setToolTip(STATUS_COLUMN, self._folder_tooltip(path))
        self._update_watch_label()

    def set_watch_paused(self, paused: bool) -> None:
        self._watch_paused = paused
        self.watch_button.blockSignals(True)
        self.watch_button.setChecked(paused)
        self.watch_button.blockSignals(False)
        self.watch_button.setText("Resume Watching" if paused else "Pause Watching")
        self._update_watch_label()

    def failure_rows(self) -> list[tuple[str, str]]:
        return [
            (item.data(PATH_ROLE), item.data(REASON_ROLE))
            for item in (self.failures.item(i) for i in range(self.failures.count()))
        ]

    def folder_rows(self) -> list[list[str]]:
        return [
            [item.text(c) for c in range(len(COLUMNS))]
            for item in (self.folders.topLevelItem(i) for i in range(self.folders.topLevelItemCount()))
        ]

    def selected_paths(self) -> list[str]:
        return [item.data(0, PATH_ROLE) for item in self.folders.selectedItems()]

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a Folder to the Library", str(Path.home()))
        if folder:
            self.addRequested.emit([folder])

    # -- internals -------------------------------------------------------------------------------------

    def _folder_state(self, path: str) -> str:
        watch = self._watch.get(path)
        if (self._state is not None and path in self._state.missing) or (watch and watch.state == "missing"):
            return "Missing"
        if self._indexing:
            return "Indexing…"
        if watch is None or watch.state not in WATCH_WORDS:
            return "Up to date"  # not watched (watching is off, or stopped)
        words = WATCH_WORDS[watch.state]
        if watch.state == "paused" and watch.pending:
            words += f" · {watch.pending:,} waiting"
        return words

    def _folder_tooltip(self, path: str) -> str:
        watch = self._watch.get(path)
        if watch is None:
            return "Not watched for changes: use Re-index to pick them up"
        lines = [watch.label[:1].upper() + watch.label[1:]]
        if watch.pending:
            lines.append(f"{watch.pending:,} changes not applied yet")
        if watch.last_change:
            lines.append(f"Last change: {watch.last_change} at {_when(watch.last_change_at)}")
        return "\n".join(lines)

    def _update_watch_label(self) -> None:
        has_folders = self.folders.topLevelItemCount() > 0
        self.watch_button.setVisible(has_folders)
        watched = [s for s in self._watch.values() if s.state in ("watching", "polling", "paused")]
        if not has_folders:
            self.watch_label.clear()
            return
        if self._watch_paused:
            waiting = sum(s.pending for s in self._watch.values())
            text = "Watching is paused: changes are noted and applied when it resumes"
            text += f" ({waiting:,} waiting)." if waiting else "."
        elif not watched:
            text = "Folders are not watched: use Re-index to pick up changes."
        else:
            n = len(watched)
            text = f"Watching {n} folder{'s' if n != 1 else ''} for changes"
            last = max(
                (s for s in self._watch.values() if s.last_change_at is not None),
                key=lambda s: s.last_change_at or 0.0,
                default=None,
            )
            text += f" · last: {last.last_change} at {_when(last.last_change_at)}" if last else "."
        self.watch_label.setText(text)

    def _remove_selected(self) -> None:
        for path in self.selected_paths():
            self.removeRequested.emit(path)

    def _reindex(self) -> None:
        self.reindexRequested.emit(self.selected_paths() or None)

    def _update_buttons(self) -> None:
        has_selection = bool(self.folders.selectedItems())
        self.remove_button.setEnabled(has_selection)
        self.reindex_button.setEnabled(self.folders.topLevelItemCount() > 0)
        self.reindex_button.setText("Re-index Selected" if has_selection else "Re-index All")
