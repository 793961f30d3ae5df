"""The status bar: indexing progress (files, then chunks) with Pause and Cancel, and the model's state."""

from __future__ import annotations

from pathlib import Path

from almanac.core.indexer import PREPARING_WORDS, Progress
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QStatusBar, QWidget


def describe(p: Progress) -> tuple[str, int, int]:
    """(words, done, total) for a progress report; total 0 means "busy, amount unknown"."""
    if p.phase == "scanning":
        return "Looking for new and changed files…", 0, 0
    if p.phase == "reading":
        name = Path(p.current).name if p.current else ""
        words = f"Reading files: {p.files_done:,} of {p.files_total:,}" + (f" — {name}" if name else "")
        if p.pages_total:  # a scan being OCR'd: its pages, so a long one is seen to move
            words += f" (OCR: page {min(p.pages_done + 1, p.pages_total):,} of {p.pages_total:,})"
        return (words, p.files_done, p.files_total)
    if p.phase == "preparing":
        return PREPARING_WORDS, 0, 0
    if p.phase == "building":
        done, total = p.chunks_done, p.chunks_total
        return f"Building the {p.current} for a large library: {done:,} of {total:,} chunks", done, total
    if p.phase == "embedding":
        return f"Embedding: {p.chunks_done:,} of {p.chunks_total:,} chunks", p.chunks_done, p.chunks_total
    return "Index up to date", 1, 1


class IndexProgress(QWidget):
    pauseToggled = Signal(bool)
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setMinimumWidth(260)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(200)
        self.bar.setTextVisible(False)
        self.pause_button = QPushButton("Pause", self)
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self._on_pause)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop indexing; what is indexed so far is kept")
        self.cancel_button.clicked.connect(self.cancelRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.pause_button)
        layout.addWidget(self.cancel_button)
        self._last = Progress("scanning")

    def show_progress(self, p: Progress) -> None:
        self._last = p
        words, done, total = describe(p)
        if self.pause_button.isChecked():
            words = "Paused — " + words
        self.label.setText(self.fontMetrics().elidedText(words, Qt.TextElideMode.ElideMiddle, 420))
        self.label.setToolTip(p.current or words)
        self.bar.setRange(0, total)
        self.bar.setValue(min(done, total))

    def set_paused(self, paused: bool) -> None:
        self.pause_button.blockSignals(True)
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.blockSignals(False)
        self.show_progress(self._last)

    def _on_pause(self, paused: bool) -> None:
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pauseToggled.emit(paused)


class StatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.progress = IndexProgress(self)
        self.progress.hide()
        self.model_label = QLabel("Loading language model…", self)
        self.model_label.setObjectName("modelState")
        self.addWidget(self.progress, 1)
        self.addPermanentWidget(self.model_label)

    def set_indexing(self, busy: bool) -> None:
        if busy:
            self.clearMessage()
            self.progress.show_progress(Progress("scanning"))
        self.progress.setVisible(busy)

    def set_model_state(self, state: str, text: str) -> None:
        self.model_label.setText(text)
        self.model_label.setProperty("state", state)
