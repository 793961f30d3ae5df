"""Indexing a multi-page scan keeps the GUI thread free and shows which page OCR is on.

A small-scale stand-in for the issue's "20-page scan": an image-only PDF made here (PDFium renders pages drawn
by tests/pdfgen.py), read by the real extraction worker and RapidOCR while a 10 ms heartbeat runs.
"""

from __future__ import annotations

import io
import re
import time

import pypdfium2 as pdfium
import pytest
from app_helpers import add_and_index
from pdfgen import make_pdf
from PySide6.QtCore import QTimer

PAGES = 4
MAX_GAP_S = 0.25  # as tests/app/test_responsiveness.py: a blocked GUI thread would stall for seconds


def image_only_pdf(pages: int) -> bytes:
    pdf = pdfium.PdfDocument(make_pdf([[f"Logbook page {i + 1}", f"Seals counted: {i * 7}"] for i in range(pages)]))
    try:
        images = [pdf[i].render(scale=150 / 72).to_pil().convert("L").crop((0, 0, 1275, 200)) for i in range(pages)]
    finally:
        pdf.close()
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    return out.getvalue()


@pytest.mark.slow
def test_a_scan_is_indexed_page_by_page_without_blocking_the_gui(qtbot, make_window, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "logbook.pdf").write_bytes(image_only_pdf(PAGES))
    window = make_window(sync_on_start=False)
    qtbot.waitUntil(lambda: window.library_panel._state is not None)

    shown: list[str] = []
    # Connected after the window's own slots: the status bar has shown this report when it runs.
    window.index.progressChanged.connect(lambda _p: shown.append(window.status.progress.label.text()))
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
    heartbeat.start()
    add_and_index(qtbot, window, folder, timeout=240_000)
    heartbeat.stop()

    assert window.library_panel.folder_rows()[0][1] == "1"
    pages = [int(m.group(1)) for text in shown if (m := re.search(rf"OCR: page (\d+) of {PAGES}\)", text))]
    assert "logbook.pdf" in next(text for text in shown if "OCR: page" in text)
    # Every page is shown as OCR reaches it (one report per page, each seconds apart: none is folded away).
    assert sorted(set(pages)) == list(range(1, PAGES + 1)) and pages == sorted(pages), shown
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    assert len(beats) > 10
    assert max(gaps) < MAX_GAP_S, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
