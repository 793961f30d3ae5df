"""The preview of a scan: the page image with the matched word marked where the indexer's OCR placed it.

The scans are made here (a PDF page drawn by tests/pdfgen.py, rendered by PDFium), indexed through the real
extraction worker and RapidOCR, and found by keyword search; the truth for where a word is on the scan is the
original page's own text layer.
"""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from almanac.app.scan_preview import ScanPages, scan_marks
from almanac.app.sources_panel import SourcesPanel
from almanac.core.answer import Answer, Source
from almanac.core.extractors.ocr_cache import OcrLine
from almanac.core.library import Library
from almanac.core.settings import Settings
from almanac.core.timing import Timings
from pdfgen import make_pdf
from PIL import Image
from PySide6.QtCore import QRectF

DPI = 150
LINES = [
    ["Harbour report for the spring", "The ferry to Cacilhas leaves every twenty minutes", "Walrus sightings: none"],
    ["Invoice from Zanzibar Traders", "Total due: ninety pounds", "Paid by bank transfer in March"],
]
CROP_PX = 200  # the scans are cut below their text: smaller images OCR faster


def scan_with_truth(lines: list[str], word: str) -> tuple[Image.Image, QRectF]:
    """The page as a scan, and where `word` is on it (image pixels) according to the page's text layer."""
    pdf = pdfium.PdfDocument(make_pdf([lines]))
    try:
        page = pdf[0]
        scale = DPI / 72
        image = page.render(scale=scale).to_pil().convert("L").crop((0, 0, round(612 * scale), CROP_PX))
        textpage = page.get_textpage()
        at = textpage.get_text_range().index(word)
        boxes = [textpage.get_charbox(at + i) for i in range(len(word))]
        height = page.get_size()[1]
    finally:
        pdf.close()
    left, right = min(b[0] for b in boxes) * scale, max(b[2] for b in boxes) * scale
    top, bottom = (height - max(b[3] for b in boxes)) * scale, (height - min(b[1] for b in boxes)) * scale
    return image, QRectF(left, top, right - left, bottom - top)


def answer_for(hit) -> Answer:
    return Answer(question="?", text="See [1].", sources=[Source(1, hit)], cited=[1], timings=Timings({}))


def search_hit(lib: Library, word: str):
    searcher = lib.searcher()
    try:
        hits = searcher.search(word, k=3, mode="keyword").hits
    finally:
        searcher.close()
    assert hits, word
    return hits[0]


def overlap(a: QRectF, b: QRectF) -> float:
    """Intersection over union."""
    both = a.intersected(b)
    inter = both.width() * both.height() if both.isValid() else 0.0
    return inter / (a.width() * a.height() + b.width() * b.height() - inter)


@pytest.mark.slow
def test_a_scan_previews_as_its_image_with_the_matched_word_marked(qtbot, tmp_path, hash_embedder):
    folder = tmp_path / "scans"
    folder.mkdir()
    receipt, zanzibar = scan_with_truth(LINES[1], "Zanzibar")
    receipt.save(folder / "receipt.png")
    harbour, ferry = scan_with_truth(LINES[0], "ferry")
    # An image-only PDF: page 2 is the receipt, page 1 the harbour report.
    out = io.BytesIO()
    harbour.save(out, "PDF", resolution=float(DPI), save_all=True, append_images=[receipt])
    (folder / "bundle.pdf").write_bytes(out.getvalue())
    settings = Settings(extract_timeout_s=600.0, chunk_tokens=60, chunk_overlap=5)
    lib = Library(tmp_path / "index.db", settings=settings, embedder=hash_embedder)
    try:
        lib.add_folder(folder)
        report = lib.index()
        assert report.failures == [] and report.ocr_pages == 3
        ferry_hit = search_hit(lib, "ferry")
        searcher = lib.searcher()
        try:
            zanzibar_hits = {Path(h.path).name: h for h in searcher.search("Zanzibar", k=5, mode="keyword").hits}
        finally:
            searcher.close()
    finally:
        lib.close()
    assert (Path(ferry_hit.path).name, ferry_hit.page) == ("bundle.pdf", 1)
    assert set(zanzibar_hits) == {"receipt.png", "bundle.pdf"} and zanzibar_hits["bundle.pdf"].page == 2

    scans = ScanPages(on_error=pytest.fail)
    panel = SourcesPanel()
    qtbot.addWidget(panel)
    panel.resize(500, 900)
    panel.show()
    panel.scan_loader = scans.request
    try:
        for hit, truth in (
            (zanzibar_hits["receipt.png"], zanzibar),  # an image file: the image itself
            (zanzibar_hits["bundle.pdf"], zanzibar),  # a scanned PDF page: the page QtPdf renders
            (ferry_hit, ferry),
        ):
            panel.set_answer(answer_for(hit))
            qtbot.waitUntil(lambda: panel.showing_scan, timeout=20_000)
            view = panel.scan_view
            assert len(view.marks) == 1, [m.rect() for m in view.marks]
            # The page shown is the scan at the size it was OCR'd (150 dpi), so its pixels are the truth's.
            assert view.scene().sceneRect().width() == pytest.approx(612 * DPI / 72, abs=2)
            mark = view.marks[0].rect()
            assert overlap(mark, truth) > 0.5, (hit.path, hit.page, mark, truth)
            # The passage's lines are shaded, and the mark is drawn where the word is on the screen.
            assert view.shades
            point = view.mapFromScene(mark.center())
            assert view.viewport().rect().contains(point)
            colour = view.viewport().grab().toImage().pixelColor(point)
            assert colour.red() - colour.blue() > 40, colour.name()  # amber over white paper or black ink
            panel.set_answer(None)
            assert not panel.showing_scan
    finally:
        scans.shutdown()


def test_marks_are_the_matched_words_of_the_passage_lines():
    lines = [
        OcrLine(
            "Walrus census for the bay",
            (0.1, 0.1, 0.6, 0.12),
            ((0.1, 0.2), (0.21, 0.35), (0.36, 0.4), (0.41, 0.48), (0.49, 0.6)),
        ),
        OcrLine("Walruses were counted twice", (0.1, 0.2, 0.5, 0.22)),  # no word edges: shared by characters
        OcrLine("A note on walrus tusks", (0.1, 0.5, 0.5, 0.52)),
    ]
    passage, marks = scan_marks(lines, "Walrus census for the bay\nWalruses were counted twice", {"walrus"})
    assert passage == [lines[0].box, lines[1].box]
    assert marks[0] == (0.1, 0.1, 0.2, 0.12)
    left, top, right, bottom = marks[1]
    assert (left, top, bottom) == (0.1, 0.2, 0.22) and right == pytest.approx(0.1 + 0.4 * 8 / 27)
    assert len(marks) == 2  # the third line is not in the passage
    # A passage that is none of the lines (changed since): the words are marked wherever they are.
    assert len(scan_marks(lines, "something else", {"walrus"})[1]) == 3
