"""The library: watched folders with their counts and state, and the files that could not be read, with why.

The panel only shows state and asks for changes (signals); the index thread does the work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
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


def _count(n: int) -> str:
    return f"{n:,}"


class LibraryPanel(QWidget):
    addRequested = Signal(list)  # folder paths
    removeRequested = Signal(str)
    reindexRequested = Signal(object)  # list of folder paths, or None for all

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._indexing = False
        self._state: LibraryState | None = None

        self.folders = QTreeWidget(self)
        self.folders.setObjectName("folders")
        self.folders.setHeaderLabels(["Folder", "Documents", "Chunks", "Failed", "Status"])
        self.folders.setRootIsDecorated(False)
        self.folders.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.folders.setUniformRowHeights(True)
        header = self.folders.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, 5):
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
                    _count(f.chunks),
                    _count(f.failed),
                    self._folder_state(f.path),
                ]
            )
            item.setData(0, PATH_ROLE, f.path)
            item.setToolTip(0, f.path)
            for column in range(1, 4):
                item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.folders.addTopLevelItem(item)
            item.setSelected(f.path in selected)
        for path, reason in s.failures:
            item = QListWidgetItem(f"{Path(path).name}\n{reason}")
            item.setToolTip(f"{path}\n{reason}")
            item.setData(PATH_ROLE, path)
            item.setData(REASON_ROLE, reason)
            self.failures.addItem(item)
        self.empty_hint.setVisible(not s.folders)
        self.failures_title.setText(f"Files that could not be read ({len(s.failures)})")
        waiting = s.chunks - s.embedded
        parts = [f"{_count(s.documents)} documents", f"{_count(s.chunks)} chunks"]
        if waiting:
            parts.append(f"{_count(waiting)} waiting for embedding")
        parts.append(f"index {s.db_bytes / 1e6:.1f} MB")
        if s.embedding_model:
            parts.append(f"model {s.embedding_model}")
        self.summary.setText(" · ".join(parts))
        self._update_buttons()

    def set_indexing(self, indexing: bool) -> None:
        self._indexing = indexing
        self.set_state(self._state)

    def failure_rows(self) -> list[tuple[str, str]]:
        return [
            (item.data(PATH_ROLE), item.data(REASON_ROLE))
            for item in (self.failures.item(i) for i in range(self.failures.count()))
        ]

    def folder_rows(self) -> list[list[str]]:
        return [
            [item.text(c) for c in range(5)]
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
        if self._state is not None and path in self._state.missing:
            return "Missing"
        return "Indexing…" if self._indexing else "Up to date"

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
