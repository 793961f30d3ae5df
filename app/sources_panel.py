"""The sources of the selected answer: where each passage came from, why it ranked, and a preview.

Selecting a source shows its snippet with the query terms marked, its keyword and vector ranks and fused
score, and previews it: the PDF page it came from (QtPdf, when installed) or the passage itself with the
matched words marked. "Open File" opens the document in the user's own application.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from almanac.core.answer import Answer, Source
from almanac.core.hits import Hit
from PySide6.QtCore import QPointF, Qt, QUrl, Signal
from PySide6.QtGui import QColor, QDesktopServices, QFont, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

try:  # QtPdf ships in the separate PySide6-Pdf wheel; without it PDFs preview as their passage
    from PySide6.QtPdf import QPdfDocument
    from PySide6.QtPdfWidgets import QPdfView

    HAVE_PDF = True
except ImportError:  # pragma: no cover - depends on the installation
    HAVE_PDF = False

# Marked words: amber with black text reads well on light and dark palettes alike.
MARK_STYLE = "background-color:#ffd54f; color:#000000;"


def open_path(path: str) -> bool:
    """Open a file with the desktop's default application (a function so tests can replace it)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(path))


def marked_html(text: str, marks: list[tuple[int, int]]) -> str:
    """`text` as HTML with each [start, end) range in `marks` highlighted."""
    out, pos = [], 0
    for start, end in sorted(marks):
        if start < pos or end > len(text):
            continue
        out.append(html.escape(text[pos:start]))
        out.append(f'<span style="{MARK_STYLE}">{html.escape(text[start:end])}</span>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out)


def term_marks(text: str, terms: set[str]) -> list[tuple[int, int]]:
    """Where words starting with one of `terms` are in `text` (how core marks snippets)."""
    if not terms:
        return []
    return [
        m.span() for m in re.finditer(r"\w+", text) if any(m.group().lower().startswith(t) for t in terms)
    ]


def location(hit: Hit) -> str:
    parts = [Path(hit.path).name]
    if hit.page is not None:
        parts.append(f"page {hit.page}")
    if hit.heading:
        parts.append(hit.heading)
    return " · ".join(parts)


def why_ranked(hit: Hit) -> str:
    keyword = (
        f"keyword #{hit.keyword_rank} (BM25 {hit.keyword_score:.2f})"
        if hit.keyword_rank is not None and hit.keyword_score is not None
        else "no keyword match"
    )
    vector = (
        f"meaning #{hit.vector_rank} (distance {hit.vector_distance:.3f})"
        if hit.vector_rank is not None and hit.vector_distance is not None
        else "not among the closest in meaning"
    )
    return f"{keyword} · {vector} · fused score {hit.score:.4f}"


def _mix(a: QColor, b: QColor, t: float) -> str:
    return QColor(
        round(a.red() + (b.red() - a.red()) * t),
        round(a.green() + (b.green() - a.green()) * t),
        round(a.blue() + (b.blue() - a.blue()) * t),
    ).name()


class SourcesPanel(QWidget):
    sourceSelected = Signal(int)  # source number n

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._answer: Answer | None = None
        self._pdf_path = ""

        self.title = QLabel("Sources", self)
        self.title.setObjectName("panelTitle")
        bold_title = self.title.font()
        bold_title.setBold(True)
        self.title.setFont(bold_title)
        self.list = QListWidget(self)
        self.list.setObjectName("sourcesList")
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        self.list.currentRowChanged.connect(self._on_row)

        self.details = QTextBrowser(self)
        self.details.setObjectName("sourceDetails")
        self.details.setOpenLinks(False)
        self.details.setPlaceholderText("Select a source to see why it was used.")

        self.preview = QStackedWidget(self)
        self.passage = QTextBrowser(self)
        self.passage.setObjectName("passagePreview")
        self.preview.addWidget(self.passage)
        self.pdf_view: QWidget | None = None
        self.pdf_document = None
        if HAVE_PDF:
            self.pdf_document = QPdfDocument(self)
            view = QPdfView(self)
            view.setDocument(self.pdf_document)
            view.setPageMode(QPdfView.PageMode.SinglePage)
            view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            self.pdf_view = view
            self.preview.addWidget(view)

        self.open_button = QPushButton("Open File", self)
        self.open_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_current)
        self.path_label = QLabel(self)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setForegroundRole(QPalette.ColorRole.PlaceholderText)

        preview = QWidget(self)
        preview_layout = QVBoxLayout(preview)
        preview_layout.setContentsMargins(0, 0, 0, 0)
        preview_layout.addWidget(self.preview, 1)
        row = QHBoxLayout()
        row.addWidget(self.path_label, 1)
        row.addWidget(self.open_button)
        preview_layout.addLayout(row)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("sourcesSplitter")
        self.splitter.addWidget(self.list)
        self.splitter.addWidget(self.details)
        self.splitter.addWidget(preview)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([190, 130, 260])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.splitter, 1)
        self.set_answer(None)

    # -- public ----------------------------------------------------------------------------------------

    def set_answer(self, answer: Answer | None) -> None:
        self._answer = answer
        self.list.blockSignals(True)
        self.list.clear()
        sources = answer.sources if answer is not None else []
        bold = QFont(self.list.font())
        bold.setBold(True)
        for source in sources:
            hit = source.hit
            cited = answer is not None and source.n in answer.cited
            item = QListWidgetItem(f"[{source.n}] {location(hit)}\n{why_ranked(hit)}")
            item.setData(Qt.ItemDataRole.UserRole, source.n)
            note = "Cited in the answer" if cited else "Given to the model, not cited"
            item.setToolTip(f"{hit.path}\n{note}")
            if cited:
                item.setFont(bold)
            self.list.addItem(item)
        self.list.blockSignals(False)
        if answer is None:
            self.title.setText("Sources")
        else:
            self.title.setText(f"Sources ({len(sources)}, {len(answer.cited)} cited)")
        if sources:
            self.list.setCurrentRow(0)
        else:
            self._show(None)

    def select_source(self, n: int) -> bool:
        for row in range(self.list.count()):
            if self.list.item(row).data(Qt.ItemDataRole.UserRole) == n:
                self.list.setCurrentRow(row)
                return True
        return False

    def current_source(self) -> Source | None:
        if self._answer is None:
            return None
        row = self.list.currentRow()
        return self._answer.sources[row] if 0 <= row < len(self._answer.sources) else None

    def open_current(self) -> None:
        source = self.current_source()
        if source is not None:
            open_path(source.hit.path)

    @property
    def showing_pdf(self) -> bool:
        return self.pdf_view is not None and self.preview.currentWidget() is self.pdf_view

    # -- internals -------------------------------------------------------------------------------------

    def _on_row(self, row: int) -> None:
        source = self.current_source()
        self._show(source)
        if source is not None:
            self.sourceSelected.emit(source.n)

    def _show(self, source: Source | None) -> None:
        self.open_button.setEnabled(source is not None)
        if source is None:
            self.details.clear()
            self.passage.clear()
            self.path_label.clear()
            self.preview.setCurrentWidget(self.passage)
            return
        hit = source.hit
        self.path_label.setText(hit.path)
        self.path_label.setToolTip(hit.path)
        cited = self._answer is not None and source.n in self._answer.cited
        self.details.setHtml(
            f"<p><b>[{source.n}] {html.escape(hit.title or Path(hit.path).name)}</b><br>"
            f"{html.escape(location(hit))}</p>"
            f"<p><i>Why it ranked:</i> {html.escape(why_ranked(hit))}"
            f"{'' if cited else '<br><i>Given to the model but not cited in the answer.</i>'}</p>"
            f"<p>{marked_html(hit.snippet, hit.snippet_marks)}</p>"
        )
        self._show_passage(hit)
        if hit.page is not None and hit.path.lower().endswith(".pdf") and self._show_pdf(hit):
            return
        self.preview.setCurrentWidget(self.passage)

    def _show_passage(self, hit: Hit) -> None:
        """The whole chunk, the snippet's window shaded and the query terms marked."""
        terms = {hit.snippet[s:e].lower() for s, e in hit.snippet_marks}
        text = hit.text
        window = hit.snippet.strip("…")
        start = text.find(window) if window else -1
        palette = self.palette()
        base, accent = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Highlight)
        shade = _mix(base, accent, 0.18)  # the snippet's window, a tint that follows light and dark
        if start < 0:
            body = marked_html(text, term_marks(text, terms))
        else:
            end = start + len(window)
            inner = marked_html(text[start:end], term_marks(text[start:end], terms))
            body = (
                marked_html(text[:start], term_marks(text[:start], terms))
                + f'<span style="background-color:{shade};">{inner}</span>'
                + marked_html(text[end:], term_marks(text[end:], terms))
            )
        self.passage.setHtml(f'<div style="white-space: pre-wrap;">{body}</div>')

    def _show_pdf(self, hit: Hit) -> bool:
        if self.pdf_document is None or self.pdf_view is None:
            return False
        if self._pdf_path != hit.path:
            self.pdf_document.load(hit.path)
            self._pdf_path = hit.path
        if self.pdf_document.status() != QPdfDocument.Status.Ready:
            self._pdf_path = ""
            return False
        page = min(max((hit.page or 1) - 1, 0), self.pdf_document.pageCount() - 1)
        navigator = self.pdf_view.pageNavigator()
        navigator.jump(page, QPointF(), navigator.currentZoom())
        self.preview.setCurrentWidget(self.pdf_view)
        return True
