"""The settings dialog's OCR fields: saved to the `ocr` / `ocr_max_pages` keys, and applied by the next sync."""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest
from almanac.core.settings import Settings
from app_helpers import add_and_index
from pdfgen import make_pdf
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox


def accept(qtbot, dialog) -> None:
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def test_ocr_switch_and_page_limit_round_trip(qtbot, make_window):
    window = make_window()
    dialog = window.open_settings()
    assert dialog.ocr.isChecked() and dialog.ocr_max_pages.value() == Settings().ocr_max_pages
    assert dialog.ocr.text() == "Read text in scanned pages and images (OCR)"
    assert dialog.ocr_max_pages.text() == f"at most {Settings().ocr_max_pages} pages per file"
    dialog.ocr_max_pages.setValue(7)
    qtbot.mouseClick(dialog.ocr, Qt.MouseButton.LeftButton)
    assert not dialog.ocr.isChecked() and not dialog.ocr_max_pages.isEnabled()
    accept(qtbot, dialog)

    saved = Settings.load()
    assert (saved.ocr, saved.ocr_max_pages) == (False, 7)
    qtbot.waitUntil(lambda: window._settings_dialog is None)
    again = window.open_settings()
    assert not again.ocr.isChecked() and again.ocr_max_pages.value() == 7
    assert not again.ocr_max_pages.isEnabled()
    again.ocr_max_pages.setValue(0)  # below the range core.settings allows: the box keeps it in range
    assert again.ocr_max_pages.value() == 1
    again.reject()


@pytest.mark.slow
def test_turning_ocr_on_reads_the_images_and_scans_at_the_next_sync(qtbot, make_window, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    pdf = pdfium.PdfDocument(make_pdf([["Receipt from the Walrus Cafe", "Two pots of tea"]]))
    try:
        image = pdf[0].render(scale=150 / 72).to_pil().convert("L")
    finally:
        pdf.close()
    image.crop((0, 0, image.width, 200)).save(folder / "receipt.png")
    image.crop((0, 0, image.width, 200)).save(folder / "scan.pdf", resolution=150.0)  # no text layer
    (folder / "note.txt").write_text("A note about kelp.\n", encoding="utf-8")
    window = make_window(settings=Settings(ocr=False))
    add_and_index(qtbot, window, folder)
    # The note; with OCR off an image is no document, and a scanned PDF has no text
    assert window.library_panel.folder_rows()[0][1] == "1"

    dialog = window.open_settings()
    qtbot.mouseClick(dialog.ocr, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(window.index.indexFinished, timeout=120_000) as finished:
        accept(qtbot, dialog)
    report = finished.args[0]
    assert report is not None and report.indexed == 2 and report.ocr_pages == 2  # the PDF is read again
    qtbot.waitUntil(lambda: window.library_panel.folder_rows()[0][1] == "3")
