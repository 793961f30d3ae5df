"""The chat: a transcript of questions and Markdown answers, and the question box.

The transcript is one QTextDocument. A reply starts with the quick answer (the sentence from the user's
files that best answers, shown as soon as retrieval finds it), then the model's answer streams in below it;
only the answer being written is re-rendered, at most every 50 ms, however fast tokens arrive. Citations
like [2] become links that select that source; each answer has links to show its sources and timings, and
to copy it. A declined answer says so and lists the closest passages, each a link to its source.
"""

from __future__ import annotations

import re
import time
from pathlib import PurePath

from almanac.core.answer import Answer, Source
from almanac.core.quick_answer import QuickAnswer
from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QFont,
    QKeyEvent,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFrameFormat,
)
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from .conversations import Turn

RENDER_INTERVAL_MS = 50
MARKDOWN = QTextDocument.MarkdownFeature.MarkdownDialectGitHub | QTextDocument.MarkdownFeature.MarkdownNoHTML
STOPPED_NOTES = {
    "cancelled": "Stopped",
    "timeout": "Stopped: the answer took too long",
    "length": "Cut short at the answer length limit",
}

_BRACKET = re.compile(r"\[([0-9][0-9,;\s\-–]{0,58})\]")
_NUMBER_OR_RANGE = re.compile(r"(\d{1,4})(?:\s*[-–]\s*(\d{1,4}))?")


def linkify_citations(markdown: str, turn: int) -> str:
    """[1], [1, 2] and [2-3] as Markdown links to `cite:<turn>/<n>`, one link per source number."""

    def repl(match: re.Match[str]) -> str:
        links = []
        for m in _NUMBER_OR_RANGE.finditer(match.group(1)):
            first = int(m.group(1))
            last = int(m.group(2)) if m.group(2) else first
            for n in range(first, min(last, first + 20) + 1):
                links.append(f"[\\[{n}\\]](cite:{turn}/{n})")
        return "".join(links) or match.group(0)

    return _BRACKET.sub(repl, markdown)


def answer_origin(answer: Answer) -> str:
    """Where an answer came from when that is news: the cache, or another backend after a fallback."""
    if answer.cache != "miss" and answer.cached_at is not None:
        return f"answered from cache ({time.strftime('%Y-%m-%d %H:%M', time.localtime(answer.cached_at))})"
    failed = [a for a in answer.attempts if a.outcome in ("failed", "skipped")]
    if failed:
        why = ", ".join(f"{a.backend}: {a.error_category}" for a in failed)
        return f"answered by {answer.backend} ({why})" if answer.backend and answer.text else why
    return answer.note


def location_of(source: Source) -> str:
    hit = source.hit
    name = PurePath(hit.path).name or hit.path
    return f"{name}, page {hit.page}" if hit.page is not None else name


class QuestionEdit(QPlainTextEdit):
    """Enter sends; Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.insertPlainText("\n")
            else:
                self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatView(QWidget):
    askRequested = Signal(str)
    stopRequested = Signal()
    turnSelected = Signal(int)
    citationClicked = Signal(int, int)  # turn index, source number
    copyRequested = Signal(int)
    askAgainRequested = Signal(int)  # turn index: answer it again, past the answer cache
    feedbackGiven = Signal(int, int)  # turn index, +1 / -1 / 0 (a second click on the same one clears it)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._turns: list[Turn] = []
        self._selected: int | None = None
        self._streaming = False
        self._stream_text = ""
        self._stream_quick: tuple[QuickAnswer, list[Source | None]] | None = None
        self._stream_pos = 0
        self._answering = False

        self.transcript = QTextBrowser(self)
        self.transcript.setOpenLinks(False)
        self.transcript.setObjectName("transcript")
        self.transcript.anchorClicked.connect(self._on_link)
        self.transcript.setPlaceholderText(
            "Ask a question about the files in your library. Answers cite their sources like [1]."
        )

        self.input = QuestionEdit(self)
        self.input.setPlaceholderText("Ask about your files…  (Enter sends, Shift+Enter adds a line)")
        self.input.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.input.setFixedHeight(self.input.fontMetrics().lineSpacing() * 3 + 16)
        self.input.submitted.connect(self._submit)
        self.input.textChanged.connect(self._update_buttons)

        self.send_button = QPushButton("Send", self)
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self._submit)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop the answer (Esc)")
        self.stop_button.clicked.connect(self.stopRequested)

        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addLayout(buttons)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(row)

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_stream)
        self._update_buttons()

    # -- public ----------------------------------------------------------------------------------------

    def set_turns(
        self, turns: list[Turn], selected: int | None = None, *, stream_text: str | None = None
    ) -> None:
        """Show a conversation; with `stream_text`, its last turn is being answered and that much arrived."""
        self._render_timer.stop()
        self._turns = turns
        self._selected = selected
        self._streaming = stream_text is not None
        self._stream_text = stream_text or ""
        if not self._streaming:
            self._stream_quick = None
        self._render_all(scroll_to_end=True)

    def show_quick_answer(self, quick: QuickAnswer, sources: list[Source | None]) -> None:
        """The quick answer of the answer being written, shown above it at once; `sources`: those of its
        parts (QuickAnswer.parts), None where not known."""
        if not self._streaming:
            return
        self._stream_quick = (quick, sources)
        self._render_all()

    def select_turn(self, index: int | None) -> None:
        self._selected = index
        if not self._streaming:
            self._render_all()

    def append_stream(self, text: str) -> None:
        self._stream_text += text
        if self._streaming and not self._render_timer.isActive():
            self._render_timer.start()

    def end_stream(self) -> None:
        self._render_timer.stop()
        self._streaming = False
        self._stream_text = ""
        self._stream_quick = None
        self._render_all(scroll_to_end=True)

    @property
    def streamed_text(self) -> str:
        return self._stream_text

    def set_answering(self, answering: bool) -> None:
        self._answering = answering
        self._update_buttons()

    def plain_text(self) -> str:
        return self.transcript.toPlainText()

    # -- rendering -------------------------------------------------------------------------------------

    def _render_all(self, *, scroll_to_end: bool = False) -> None:
        bar = self.transcript.verticalScrollBar()
        at_end = scroll_to_end or bar.value() >= bar.maximum() - 4
        keep = bar.value()
        doc = self.transcript.document()
        doc.clear()
        cursor = QTextCursor(doc)
        last = len(self._turns) - 1
        for i, turn in enumerate(self._turns):
            streaming = self._streaming and i == last
            self._insert_question(cursor, turn, first=i == 0)
            self._insert_label(cursor, "Almanac", self._note(turn, streaming))
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
            if streaming:
                if self._stream_quick is not None:
                    self._insert_quick_answer(cursor, *self._stream_quick, i)
                self._stream_pos = cursor.position()
                self._insert_answer_text(cursor, self._stream_text, i)
                continue
            if turn.answer is not None:
                quick = turn.answer.quick_answer
                if quick is not None and 0 < quick.n <= len(turn.answer.sources):
                    sources = turn.answer.sources
                    of_parts = [sources[p.n - 1] if 0 < p.n <= len(sources) else None for p in quick.parts]
                    self._insert_quick_answer(cursor, quick, of_parts, i)
                    if turn.answer.text == quick.cited_text():  # the model's reply was set aside
                        self._insert_footer(cursor, i)
                        continue
                self._insert_answer_text(cursor, turn.answer.text or "*(no answer)*", i)
                if turn.answer.stopped == "declined":
                    self._insert_closest(cursor, turn.answer, i)
                self._insert_footer(cursor, i)
            else:
                cursor.insertText(turn.error or "No answer.", self._muted())
        bar.setValue(bar.maximum() if at_end else keep)
        if at_end:  # the document lays out lazily; follow it once its height is known
            QTimer.singleShot(0, self._scroll_to_end)

    def _scroll_to_end(self) -> None:
        bar = self.transcript.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _render_stream(self) -> None:
        if not self._streaming:
            return
        bar = self.transcript.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        cursor = QTextCursor(self.transcript.document())
        cursor.setPosition(self._stream_pos)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        self._insert_answer_text(cursor, self._stream_text, len(self._turns) - 1)
        if at_end:
            bar.setValue(bar.maximum())

    def _insert_answer_text(self, cursor: QTextCursor, text: str, turn: int) -> None:
        cursor.setBlockFormat(QTextBlockFormat())
        cursor.setCharFormat(QTextCharFormat())
        if not text:
            cursor.insertText("Thinking…", self._muted())
            return
        cursor.insertMarkdown(linkify_citations(text, turn), MARKDOWN)

    def _insert_quick_answer(
        self, cursor: QTextCursor, quick: QuickAnswer, sources: list[Source | None], turn: int
    ) -> None:
        """'From your files:' and the sentence, quoted, with its [n] as a link and where it is (a second
        sentence on its own line); the answer goes below."""
        cursor.setBlockFormat(QTextBlockFormat())
        label = self._muted()
        label.setFontWeight(QFont.Weight.Bold)
        cursor.insertText("From your files: ", label)
        for i, (part, source) in enumerate(zip(quick.parts, sources, strict=False)):
            if i:
                cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
                cursor.insertText("Also: ", label)
            cursor.insertText(f"“{part.text}” ", self._quote())
            self._insert_link(cursor, f"[{part.n}]", f"cite:{turn}/{part.n}")
            if source is not None:
                cursor.insertText(f"  {location_of(source)}", self._muted())
        block = QTextBlockFormat()
        block.setTopMargin(6)
        cursor.insertBlock(block, QTextCharFormat())

    def _insert_closest(self, cursor: QTextCursor, answer: Answer, turn: int) -> None:
        for source in answer.sources:
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
            cursor.insertText("•  ", self._muted())
            self._insert_link(cursor, f"[{source.n}] {location_of(source)}", f"cite:{turn}/{source.n}")
            snippet = " ".join(source.hit.snippet.split())
            if snippet:
                cursor.insertText(f" — {snippet}", self._muted())

    def _insert_question(self, cursor: QTextCursor, turn: Turn, *, first: bool) -> None:
        if not first:
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        frame = QTextFrameFormat()
        frame.setBackground(self.palette().color(QPalette.ColorRole.AlternateBase))
        frame.setPadding(8)
        frame.setTopMargin(0 if first else 14)
        frame.setBorder(0)
        cursor.insertFrame(frame)
        bold = QTextCharFormat()
        bold.setFontWeight(QFont.Weight.Bold)
        cursor.insertText("You", bold)
        cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        cursor.insertText(turn.question.strip(), QTextCharFormat())
        cursor.movePosition(QTextCursor.MoveOperation.End)  # out of the frame

    def _insert_label(self, cursor: QTextCursor, label: str, note: str) -> None:
        block = QTextBlockFormat()
        block.setTopMargin(6)
        cursor.insertBlock(block, QTextCharFormat())
        bold = QTextCharFormat()
        bold.setFontWeight(QFont.Weight.Bold)
        cursor.insertText(label, bold)
        if note:
            cursor.insertText(f"   {note}", self._muted())

    def _insert_footer(self, cursor: QTextCursor, turn: int) -> None:
        block = QTextBlockFormat()
        block.setTopMargin(4)
        cursor.insertBlock(block, QTextCharFormat())
        selected = turn == self._selected
        self._insert_link(
            cursor, "Showing sources" if selected else "Sources and timings", f"turn:{turn}", bold=selected
        )
        cursor.insertText("   ·   ", self._muted())
        self._insert_link(cursor, "Copy answer", f"copy:{turn}")
        answer = self._turns[turn].answer
        if answer is not None and answer.cache != "miss":
            cursor.insertText("   ·   ", self._muted())
            self._insert_link(cursor, "Ask again", f"again:{turn}")
        if answer is not None:
            given = self._turns[turn].feedback
            cursor.insertText("   ·   ", self._muted())
            self._insert_link(
                cursor, "Helpful", f"feedback:{turn}/{0 if given > 0 else 1}", bold=given > 0
            )
            cursor.insertText("  ", self._muted())
            self._insert_link(
                cursor, "Not helpful", f"feedback:{turn}/{0 if given < 0 else -1}", bold=given < 0
            )

    def _insert_link(self, cursor: QTextCursor, text: str, href: str, *, bold: bool = False) -> None:
        fmt = QTextCharFormat()
        fmt.setAnchor(True)
        fmt.setAnchorHref(href)
        fmt.setForeground(self.palette().color(QPalette.ColorRole.Link))
        if bold:
            fmt.setFontWeight(QFont.Weight.Bold)
        cursor.insertText(text, fmt)
        cursor.setCharFormat(QTextCharFormat())

    def _quote(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setFontItalic(True)
        return fmt

    def _muted(self) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(self.palette().color(QPalette.ColorRole.PlaceholderText))
        return fmt

    def _note(self, turn: Turn, streaming: bool) -> str:
        if streaming:
            return "writing…"
        if turn.answer is None:
            return ""
        notes = [STOPPED_NOTES.get(turn.answer.stopped, ""), answer_origin(turn.answer)]
        return "   ".join(n for n in notes if n)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._render_all()  # colours come from the palette: follow light/dark switches

    # -- input -----------------------------------------------------------------------------------------

    def _submit(self) -> None:
        text = self.input.toPlainText().strip()
        if not text or self._answering:
            return
        self.input.clear()
        self.askRequested.emit(text)

    def _update_buttons(self) -> None:
        self.send_button.setEnabled(not self._answering and bool(self.input.toPlainText().strip()))
        self.stop_button.setEnabled(self._answering)

    def _on_link(self, url: QUrl) -> None:
        kind, _, rest = url.toString().partition(":")
        try:
            if kind == "cite":
                turn, n = (int(x) for x in rest.split("/"))
                self.citationClicked.emit(turn, n)
            elif kind == "turn":
                self.turnSelected.emit(int(rest))
            elif kind == "copy":
                self.copyRequested.emit(int(rest))
            elif kind == "again":
                self.askAgainRequested.emit(int(rest))
            elif kind == "feedback":
                turn, value = (int(x) for x in rest.split("/"))
                self.feedbackGiven.emit(turn, value)
        except ValueError:
            pass
