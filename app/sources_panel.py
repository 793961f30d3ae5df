"""The sources of the selected answer: where each passage came from, why it ranked, and a preview.

Selecting a source shows its snippet with the query terms marked, its keyword and vector ranks and fused
score, and previews it: the PDF page it came from (QtPdf, when installed), the passage highlighted on it when
QtPdf's search finds its first words there; a scanned page or an image read by OCR as its image, with the
passage's lines shaded and the matched words marked where the OCR placed them (app.scan_preview); for other
files the document's text, scrolled to the passage, which is shaded, with the matched words marked (the
passage alone until the text is read, off the GUI thread, or when it cannot be). "Open File" opens the
document in the user's own application.
"""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Sequence
from pathlib import Path

from almanac.core.answer import Answer, Source
from almanac.core.extractors import kind_of
from almanac.core.extractors.ocr import MIN_PAGE_CHARS
from almanac.core.hits import Hit
from almanac.core.search import term_spans
from almanac.core.store import path_from_db
from PySide6.QtCore import QEvent, QModelIndex, QObject, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QPalette, QTextCursor
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

from .document_text import TextLoader
from .feedback import FeedbackPair
from .open_file import open_for_viewing
from .scan_preview import ScanLoader, ScanPage, ScanView

try:  # QtPdf ships in the separate PySide6-Pdf wheel; without it PDFs preview as their passage
    from PySide6.QtPdf import QPdfDocument, QPdfSearchModel
    from PySide6.QtPdfWidgets import QPdfView

    HAVE_PDF = True
except ImportError:  # pragma: no cover - depends on the installation
    HAVE_PDF = False

# Marked words: amber with black text reads well on light and dark palettes alike.
MARK_STYLE = "background-color:#ffd54f; color:#000000;"
PDF_SEARCH_WORDS = 8  # the passage's first words, looked for on its page to highlight it
PDF_TEXT_PAD_PT = 12  # room left and right of the page's text when zoomed to it
CONTEXT_CHARS = 8_000  # of the document shown either side of the passage
PASSAGE_ANCHOR = "passage"


def open_path(path: str) -> bool:
    """Open a file to read it, never to run it (a function so tests can replace it)."""
    return open_for_viewing(path)


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
    """Where the words marked for one of `terms` are in `text`, as core marks snippets."""
    return term_spans(text, terms) if terms else []


def shaded_html(
    text: str, ranges: Sequence[tuple[int, int]], terms: set[str], shade: str, *, anchor: str = ""
) -> str:
    """`text` as HTML with each [start, end) of `ranges` on a `shade` background (the first after an anchor,
    if named) and the words starting with one of `terms` marked; ranges outside the text are left out."""

    def marked(part: str) -> str:
        return marked_html(part, term_marks(part, terms))

    out: list[str] = []
    pos = 0
    for start, end in sorted(r for r in ranges if 0 <= r[0] < r[1] <= len(text)):
        start = max(start, pos)  # overlapping ranges shade once
        if start >= end:
            continue
        out.append(marked(text[pos:start]))
        if anchor and not pos:
            out.append(f'<a name="{anchor}"></a>')
        out.append(f'<span style="background-color:{shade};">{marked(text[start:end])}</span>')
        pos = end
    out.append(marked(text[pos:]))
    return "".join(out)


def find_passage(document: str, hit: Hit) -> int:
    """Where the hit's chunk starts in the document's extracted text: at the offsets the index stored for it;
    -1 when the file changed since it was indexed (the passage alone stays shown until it is re-indexed)."""
    if hit.start is None or hit.end is None or document[hit.start : hit.end] != hit.text:
        return -1
    return hit.start


def document_window(text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> tuple[int, int]:
    """A window of `text` around [start, end) of about `context` characters either side, cut at paragraph
    breaks where there are some."""
    lo, hi = max(0, start - context), min(len(text), end + context)
    if lo > 0:
        para = text.find("\n\n", lo, start)
        lo = para + 2 if para >= 0 else lo
    if hi < len(text):
        para = text.rfind("\n\n", end, hi)
        hi = para if para >= 0 else hi
    return lo, hi


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
    sourceFeedback = Signal(int, int)  # source number n, +1 helped / -1 did not / 0 cleared

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._answer: Answer | None = None
        self._pdf_key: tuple[str, int, int] | None = None  # (path, size, mtime) of the loaded PDF
        self._pdf_page = -1  # the page whose passage the search is looking for
        self._pdf_text_box: QRectF | None = None  # the text's bounds on the page shown (points)
        self._pdf_found: QPointF | None = None  # where on it the passage's words were found (points)
        self._serial = 0  # the preview shown now; a late document text for an earlier one is dropped
        # Reads a document's text off the GUI thread (app.document_text); None: the passage only.
        self.text_loader: TextLoader | None = None
        # Finds a scanned page's image and OCR word boxes off the GUI thread (app.scan_preview); None: scans
        # preview as their PDF page or their passage.
        self.scan_loader: ScanLoader | None = None

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
        # Where the passage is in the shown document: kept in view when the pane is resized (the text
        # re-wraps), until the user scrolls. None: nothing to keep in view.
        self._passage_at: int | None = None
        self.passage.viewport().installEventFilter(self)
        self.passage.verticalScrollBar().actionTriggered.connect(self._user_scrolled)
        self.preview.addWidget(self.passage)
        self.pdf_view: QPdfView | None = None
        self.pdf_document: QPdfDocument | None = None
        self.pdf_search: QPdfSearchModel | None = None
        if HAVE_PDF:
            self.pdf_document = QPdfDocument(self)
            view = QPdfView(self)
            view.setObjectName("pdfPreview")
            view.setDocument(self.pdf_document)
            view.setPageMode(QPdfView.PageMode.SinglePage)
            view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            view.viewport().installEventFilter(self)  # re-fit the page's text to a resized pane
            self.pdf_search = QPdfSearchModel(self)
            self.pdf_search.setDocument(self.pdf_document)
            self.pdf_search.countChanged.connect(self._pdf_results)
            view.setSearchModel(self.pdf_search)
            self.pdf_view = view
            self.preview.addWidget(view)
        self.scan_view = ScanView(self)
        self.preview.addWidget(self.scan_view)

        self.helped = FeedbackPair(up_tip="This source helped", down_tip="This source did not help")
        self.helped.setEnabled(False)
        self.helped.changed.connect(self._feedback_changed)
        self._source_feedback: dict[int, int] = {}
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
        row.addWidget(self.helped)
        row.addWidget(self.open_button)
        preview_layout.addLayout(row)

        self.splitter = QSplitter(Qt.Orientation.Vertical, self)
        self.splitter.setObjectName("sourcesSplitter")
        self.splitter.addWidget(self.list)
        self.splitter.addWidget(self.details)
        self.splitter.addWidget(preview)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([160, 120, 340])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.splitter, 1)
        self.set_answer(None)

    # -- public ----------------------------------------------------------------------------------------

    def set_answer(self, answer: Answer | None) -> None:
        self._answer = answer
        self._source_feedback = {}
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

    @property
    def showing_scan(self) -> bool:
        return self.preview.currentWidget() is self.scan_view

    # -- internals -------------------------------------------------------------------------------------

    def set_source_feedback(self, values: dict[int, int]) -> None:
        """The user's "helped / did not help" per source number, for the answer shown."""
        self._source_feedback = dict(values)
        self._sync_feedback()

    def _sync_feedback(self) -> None:
        source = self.current_source()
        self.helped.setEnabled(source is not None)
        self.helped.set_value(self._source_feedback.get(source.n, 0) if source is not None else 0)

    def _feedback_changed(self, value: int) -> None:
        source = self.current_source()
        if source is not None:
            self._source_feedback[source.n] = value
            self.sourceFeedback.emit(source.n, value)

    def _on_row(self, row: int) -> None:
        source = self.current_source()
        self._sync_feedback()
        self._show(source)
        if source is not None:
            self.sourceSelected.emit(source.n)

    def _show(self, source: Source | None) -> None:
        self._serial += 1
        self._pdf_page = -1
        self._passage_at = None
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
        self._show_passage(hit, self._quick_spans(source))
        kind = kind_of(Path(path_from_db(hit.path)))
        if hit.page is not None and kind == "pdf" and self._show_pdf(hit):
            if self._pdf_page_is_scan():
                self._request_scan(hit)
            return
        self.preview.setCurrentWidget(self.passage)
        if kind == "image":
            self._request_scan(hit)  # its text is OCR's: the document text is the passage's
        elif self.text_loader is not None and kind != "pdf":
            serial = self._serial
            quick = self._quick_spans(source)
            self.text_loader(hit.path, lambda text: self._show_document(serial, hit, text, quick))

    def _pdf_page_is_scan(self) -> bool:
        """Whether the PDF page shown has (almost) no text layer, as the indexer decides it OCRs a page."""
        doc, view = self.pdf_document, self.pdf_view
        if doc is None or view is None:
            return False
        text = doc.getAllText(view.pageNavigator().currentPage()).text()
        return len("".join(text.split())) < MIN_PAGE_CHARS

    def _request_scan(self, hit: Hit) -> None:
        """Ask for the page's image and OCR boxes; shown in place of the preview when they come."""
        if self.scan_loader is None:
            return
        done = functools.partial(self._show_scan, self._serial)
        self.scan_loader(hit.path, hit.page, hit.text, self._terms(hit), done)

    def _show_scan(self, serial: int, page: ScanPage | None) -> None:
        if serial != self._serial or page is None:
            return  # another source is shown now, or this page was not read by OCR: the preview stays
        self.scan_view.show_page(page, QColor(self._shade()))
        self.preview.setCurrentWidget(self.scan_view)

    def _quick_spans(self, source: Source) -> list[tuple[int, int]]:
        """Where the answer's quick answer is in this source's passage: its sentences that come from it."""
        quick = self._answer.quick_answer if self._answer is not None else None
        return [(p.start, p.end) for p in quick.parts if p.n == source.n] if quick is not None else []

    def _terms(self, hit: Hit) -> set[str]:
        return {hit.snippet[s:e].lower() for s, e in hit.snippet_marks}

    def _shade(self) -> str:
        palette = self.palette()
        base, accent = palette.color(QPalette.ColorRole.Base), palette.color(QPalette.ColorRole.Highlight)
        return _mix(base, accent, 0.18)  # a tint that follows light and dark palettes

    def _show_passage(self, hit: Hit, quick: Sequence[tuple[int, int]] = ()) -> None:
        """The whole chunk, the quick answer's sentences (else the snippet's window) shaded and the query
        terms marked."""
        text = hit.text
        window = hit.snippet.strip("…")
        start = text.find(window) if window else -1
        body = shaded_html(text, quick or [(start, start + len(window))], self._terms(hit), self._shade())
        self.passage.setHtml(f'<div style="white-space: pre-wrap;">{body}</div>')

    def _show_document(
        self, serial: int, hit: Hit, text: str | None, quick: Sequence[tuple[int, int]] = ()
    ) -> None:
        """The document's text around the passage, the passage (or the quick answer's sentences in it)
        shaded and scrolled into view."""
        if serial != self._serial or text is None:
            return  # another source is shown now, or the file cannot be read: the passage stays
        start = find_passage(text, hit)
        if start < 0:
            return
        end = min(start + len(hit.text), len(text))
        lo, hi = document_window(text, start, end)
        shade = [(start + a - lo, start + b - lo) for a, b in quick] or [(start - lo, end - lo)]
        body = shaded_html(text[lo:hi], shade, self._terms(hit), self._shade(), anchor=PASSAGE_ANCHOR)
        more = "<p><i>…</i></p>"
        self.passage.setHtml(
            (more if lo > 0 else "")
            + f'<div style="white-space: pre-wrap;">{body}</div>'
            + (more if hi < len(text) else "")
        )
        at = (2 if lo > 0 else 0) + start - lo  # in the shown text: after "…" and its line break
        self._scroll_to(at if self.passage.toPlainText()[at : at + 20] == text[start : start + 20] else -1)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Resize:
            # After the view has handled the resize too (filters run first) and re-wrapped its content.
            serial = self._serial
            QTimer.singleShot(0, self, lambda: self._keep_passage_in_view(serial))
        return False

    def _keep_passage_in_view(self, serial: int) -> None:
        if serial != self._serial:
            return
        if self.showing_pdf:
            self._fit_pdf_text()
        elif self._passage_at is not None:
            self._scroll_to(self._passage_at)

    def _user_scrolled(self, _action: int) -> None:
        self._passage_at = None

    def _scroll_to(self, at: int) -> None:
        """Scroll the passage at character `at` (-1: the anchor) to near the top of the view."""
        self._passage_at = at
        view, bar = self.passage, self.passage.verticalScrollBar()
        # Lay out the whole text now: Qt lays out long texts step by step on a timer, and a position asked
        # for before that is done is a guess.
        view.document().documentLayout().documentSize()
        if at < 0:
            view.scrollToAnchor(PASSAGE_ANCHOR)
            y = bar.value()
        else:
            cursor = QTextCursor(view.document())
            cursor.setPosition(at)
            y = view.cursorRect(cursor).top() + bar.value()
        bar.setValue(round(y - view.viewport().height() / 5))  # a few lines before it too

    def _show_pdf(self, hit: Hit) -> bool:
        """The page the passage is on, fitted to the width; its first words highlighted once found."""
        doc, view, search = self.pdf_document, self.pdf_view, self.pdf_search
        if doc is None or view is None or search is None:
            return False
        try:
            st = os.stat(hit.path)
        except OSError:
            return False  # moved or deleted since: the passage shows
        key = (hit.path, st.st_size, st.st_mtime_ns)
        if self._pdf_key != key:
            doc.load(hit.path)  # reads the cross-reference table; pages render lazily
            self._pdf_key = key
        if doc.status() != QPdfDocument.Status.Ready or doc.pageCount() == 0:
            self._pdf_key = None
            return False
        page = min(max((hit.page or 1) - 1, 0), doc.pageCount() - 1)
        self.preview.setCurrentWidget(view)
        navigator = view.pageNavigator()
        navigator.jump(page, QPointF(), navigator.currentZoom())
        self._pdf_page = page
        box = doc.getAllText(page).boundingRectangle()
        self._pdf_text_box = box if box.width() > 0.25 * doc.pagePointSize(page).width() else None
        self._pdf_found = None
        self._fit_pdf_text()
        view.setCurrentSearchResultIndex(-1)
        words = hit.text.split()[:PDF_SEARCH_WORDS]
        search.setSearchString(" ".join(words) if len(words) >= 3 else "")  # results arrive as it goes
        self._pdf_results()
        return True

    def _pdf_results(self) -> None:
        """Highlight the first search result on the passage's page, and scroll to it."""
        search, view, doc = self.pdf_search, self.pdf_view, self.pdf_document
        if search is None or view is None or doc is None or self._pdf_page < 0:
            return
        for row in range(search.rowCount(QModelIndex())):
            link = search.resultAtIndex(row)
            if link.page() != self._pdf_page:
                continue
            view.setCurrentSearchResultIndex(row)
            self._pdf_found = link.location()
            self._pdf_page = -1  # found: later results (other pages, or a second match) change nothing
            self._fit_pdf_text()
            return

    def _fit_pdf_text(self) -> None:
        """Zoom so the page's text (not its blank margins) fills the width, and scroll to the passage.

        The view follows page changes only, so the place on the page is scrolled to here.
        """
        view, doc = self.pdf_view, self.pdf_document
        if view is None or doc is None:
            return
        page = view.pageNavigator().currentPage()
        margins = view.documentMargins()
        room = view.viewport().width() - margins.left() - margins.right()
        box = self._pdf_text_box
        if box is None or room <= 0:
            view.setZoomMode(QPdfView.ZoomMode.FitToWidth)
            left, width = 0.0, doc.pagePointSize(page).width()
        else:
            left, width = box.left() - PDF_TEXT_PAD_PT, box.width() + 2 * PDF_TEXT_PAD_PT
            view.setZoomMode(QPdfView.ZoomMode.Custom)
            view.setZoomFactor(room / width / (view.logicalDpiX() / 72))  # QPdfView: 1.0 is 72 pt an inch
        if width <= 0:
            return
        scale = room / width  # pixels a point
        view.horizontalScrollBar().setValue(round(left * scale))
        y = self._pdf_found.y() * scale - view.viewport().height() / 3 if self._pdf_found else 0
        view.verticalScrollBar().setValue(round(margins.top() + y) if y > 0 else 0)
