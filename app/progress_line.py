"""The indexing line above the chat: files read, passages made, embeddings done, and an estimate of the
time left; with a note that questions already work, by keyword, before the embeddings are all made.

That note is true because reading a file writes its passages to the FTS5 keyword index in the same
transaction, while vectors come later (`chunks.embedded = 0` is the queue); hybrid search fuses whatever
vector hits exist with the keyword hits, so unembedded passages are found by their words.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from almanac.core.indexer import PREPARING_WORDS, Progress
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

MIN_SAMPLE_S = 1.0  # no estimate until the phase has run this long: early rates are noise
KEYWORD_NOTE = (
    "You can ask already: passages are found by keyword as soon as their file is read; answers also use"
    " meaning-based search once the embeddings are done."
)


class Eta:
    """Time left in the current phase, from its average rate so far."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._phase = ""
        self._start: tuple[float, int] | None = None

    def update(self, phase: str, done: int, total: int) -> float | None:
        """Seconds left, or None while there is no sound estimate."""
        now = self._clock()
        if phase != self._phase or self._start is None or done < self._start[1]:
            self._phase, self._start = phase, (now, done)
            return None
        t0, d0 = self._start
        if total <= 0 or now - t0 < MIN_SAMPLE_S or done <= d0:
            return None
        rate = (done - d0) / (now - t0)
        return max(0.0, (total - done) / rate)


def eta_words(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 10:
        return "a few seconds left"
    if seconds < 90:
        return f"about {int(round(seconds / 5) * 5)} s left"
    return f"about {round(seconds / 60)} min left"


def progress_words(p: Progress, files: tuple[int, int], eta: float | None) -> str:
    """One line: files, passages, embeddings, time left. `files` is (done, total) as last seen reading."""
    parts: list[str] = []
    if p.phase == "scanning":
        return "Looking for new and changed files…"
    if p.phase == "preparing":
        return PREPARING_WORDS
    if p.phase == "reading":
        parts.append(f"Reading files: {p.files_done:,} of {p.files_total:,}")
    elif p.phase == "building":
        parts.append(f"Building the {p.current} for a large library: {p.chunks_done:,} of {p.chunks_total:,}")
    elif p.phase == "embedding":
        if files[1]:  # reading is over once embedding starts (its last report may have been folded away)
            parts.append(f"{files[1]:,} file{'' if files[1] == 1 else 's'} read")
        parts.append(f"embedding passages: {p.chunks_done:,} of {p.chunks_total:,}")
    else:
        return "Index up to date"
    words = eta_words(eta)
    if words:
        parts.append(words)
    return " · ".join(parts)


class IndexProgressLine(QWidget):
    """Shown above the chat while an index run is going."""

    def __init__(self, parent: QWidget | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.setObjectName("indexProgressLine")
        self.label = QLabel(self)
        self.label.setObjectName("indexProgressText")
        self.note = QLabel(KEYWORD_NOTE, self)
        self.note.setWordWrap(True)
        self.note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 6)
        layout.setSpacing(2)
        layout.addWidget(self.label)
        layout.addWidget(self.note)
        self._eta = Eta(clock)
        self._files = (0, 0)
        self.hide()

    def set_busy(self, busy: bool) -> None:
        if busy:
            self._files = (0, 0)
            self.show_progress(Progress("scanning"))
        self.setVisible(busy)

    def show_progress(self, p: Progress) -> None:
        if p.phase == "reading":
            self._files = (p.files_done, p.files_total)
            eta = self._eta.update("reading", p.files_done, p.files_total)
        elif p.phase in ("embedding", "building"):
            eta = self._eta.update(p.phase + p.current, p.chunks_done, p.chunks_total)
        else:
            eta = None
        self.label.setText(progress_words(p, self._files, eta))
        # The note matters only while something is still to be read or embedded.
        self.note.setVisible(p.phase in ("reading", "embedding"))
