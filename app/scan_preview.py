"""The preview of a scanned page: the page image with the passage shaded and the matched words marked.

The words' places come from the OCR cache (core.extractors.ocr_cache), which the indexer filled when it read
the scan: the preview never runs OCR. The page is found, its image read (QImageReader for an image file,
QtPdf's rendering for a PDF page) and the cache looked up on the preview's own thread; the view only draws.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from almanac.core.extractors import LIGATURES, kind_of
from almanac.core.extractors.ocr import ENGINE_ID, RENDER_DPI, fit_scale
from almanac.core.extractors.ocr_cache import Box, OcrCache, OcrLine, default_cache_dir
from almanac.core.search import term_matches
from almanac.core.store import path_from_db
from PySide6.QtCore import QEvent, QObject, QRectF, QSize, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QImage, QImageReader, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsRectItem, QGraphicsScene, QGraphicsView, QWidget

from .jobs import FailureFn, JobThread

MAX_SIDE = 2400  # pixels: the preview's copy of a large photo or page is no bigger than this
MARK_FILL = QColor(255, 213, 79, 110)  # the amber of the text previews' marks, see-through over the scan
MARK_EDGE = QColor(230, 150, 0)
_WORD = re.compile(r"\w+")


@dataclass
class ScanPage:
    """A scanned page to show: its image, the passage's lines and the matched words (fractions of it)."""

    image: QImage
    passage: list[Box]
    marks: list[Box]


# (path, page, passage, query terms, done): `done(page or None)` is called on the GUI thread.
ScanLoader = Callable[[str, int | None, str, set[str], Callable[[ScanPage | None], None]], None]


def _squash(text: str) -> str:
    return "".join(_WORD.findall(text.translate(LIGATURES).lower()))  # as the passage was extracted


def scan_marks(lines: list[OcrLine], passage: str, terms: set[str]) -> tuple[list[Box], list[Box]]:
    """The boxes of the lines that are in `passage` and of the words (in those lines; on the whole page when
    none is) starting with one of `terms`, as core marks a snippet's words."""
    text = _squash(passage)
    inside = [line for line in lines if len(_squash(line.text)) >= 3 and _squash(line.text) in text]
    marks = []
    for line in inside or lines:
        for word, box in line.word_boxes():
            token = "".join(_WORD.findall(word.lower()))
            if token and term_matches(token, terms):
                marks.append(box)
    return [line.box for line in inside], marks


def _read_image(path: Path, page: int | None) -> QImage | None:
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)  # a photo's EXIF orientation, as the OCR saw it upright
    if page is not None and page > 1 and not reader.jumpToImage(page - 1):
        return None
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > MAX_SIDE:
        reader.setScaledSize(size.scaled(MAX_SIDE, MAX_SIDE, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    return None if image.isNull() else image


def _render_pdf_page(path: Path, page: int) -> QImage | None:
    try:  # the preview's own document: it lives on this thread
        from PySide6.QtPdf import QPdfDocument
    except ImportError:  # pragma: no cover - QtPdf is a separate wheel; without it the passage shows
        return None

    doc = QPdfDocument()
    try:
        doc.load(str(path))
        if doc.status() != QPdfDocument.Status.Ready or not 1 <= page <= doc.pageCount():
            return None
        points = doc.pagePointSize(page - 1)
        # As the indexer rendered it for OCR (150 dpi), so the preview is as sharp as what was read.
        longest = max(points.width(), points.height(), 1.0)
        scale = min(fit_scale(points.width(), points.height(), RENDER_DPI), MAX_SIDE / longest)
        image = doc.render(page - 1, QSize(round(points.width() * scale), round(points.height() * scale)))
        return None if image.isNull() else image
    finally:
        doc.close()


def load_scan(path: str, page: int | None, passage: str, terms: set[str], cache_dir: Path) -> ScanPage | None:
    """The page as a scan to preview; None when it was not read by OCR (or cannot be shown now).

    Blocks while it hashes the file and reads the image: call it off the GUI thread.
    """
    file = Path(path_from_db(path))
    kind = kind_of(file)
    if kind not in ("pdf", "image") or (kind == "pdf" and page is None):
        return None
    try:
        lines = OcrCache.open(str(cache_dir), file, ENGINE_ID).get(page or 1)
    except OSError:
        return None  # moved or unreadable since it was indexed
    if not lines:
        return None  # not a scan, or changed since (another hash), or OCR found nothing there
    image = _render_pdf_page(file, page or 1) if kind == "pdf" else _read_image(file, page)
    if image is None:
        return None
    passage_boxes, marks = scan_marks(lines, passage, terms)
    return ScanPage(image, passage_boxes, marks)


class ScanPages(QObject):
    """`request(path, page, passage, terms, done)` from the GUI thread; `done(page or None)` runs there."""

    def __init__(self, *, on_error: FailureFn, cache_dir: Path | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._cache_dir = cache_dir
        self._jobs = JobThread("almanac-scan-preview", on_error=on_error, parent=self)

    def request(
        self,
        path: str,
        page: int | None,
        passage: str,
        terms: set[str],
        done: Callable[[ScanPage | None], None],
    ) -> None:
        folder = self._cache_dir or default_cache_dir()  # where the indexer keeps it (the data folder)
        self._jobs.submit(lambda: load_scan(path, page, passage, terms, folder), success=done)

    def shutdown(self) -> None:
        self._jobs.stop()


class ScanView(QGraphicsView):
    """The page image fitted to the width, scrolled to the first mark; marks drawn over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("scanPreview")
        self.setScene(QGraphicsScene(self))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.marks: list[QGraphicsRectItem] = []  # the matched words' rectangles, in image pixels
        self.shades: list[QGraphicsRectItem] = []  # the passage's lines
        self._page: QGraphicsPixmapItem | None = None
        self.viewport().installEventFilter(self)

    def show_page(self, page: ScanPage, shade: QColor) -> None:
        scene = self.scene()
        scene.clear()
        width, height = page.image.width(), page.image.height()
        self._page = scene.addPixmap(QPixmap.fromImage(page.image))
        scene.setSceneRect(0, 0, width, height)

        def rect(box: Box) -> QRectF:
            left, top, right, bottom = box
            return QRectF(left * width, top * height, (right - left) * width, (bottom - top) * height)

        tint = QColor(shade)
        tint.setAlpha(90)
        no_pen, edge = QPen(Qt.PenStyle.NoPen), QPen(MARK_EDGE, 1.5)
        self.shades = [scene.addRect(rect(box), no_pen, QBrush(tint)) for box in page.passage]
        self.marks = [scene.addRect(rect(box), edge, QBrush(MARK_FILL)) for box in page.marks]
        self._fit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.Resize and self._page is not None:
            QTimer.singleShot(0, self, self._fit)  # after the view has taken its new size
        return False

    def _fit(self) -> None:
        """Fit the page's width to the view and bring the first mark (else the passage) into view."""
        if self._page is None:
            return
        width = self.scene().sceneRect().width()
        room = self.viewport().width()
        if width <= 0 or room <= 0:
            return
        self.resetTransform()
        self.scale(room / width, room / width)
        target = self.marks[0] if self.marks else (self.shades[0] if self.shades else None)
        if target is None:
            self.verticalScrollBar().setValue(0)
            return
        # A third of the way down the view, as the PDF preview places its passage.
        y = target.rect().top() * room / width - self.viewport().height() / 3
        self.verticalScrollBar().setValue(max(0, round(y)))

