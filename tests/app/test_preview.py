"""The source preview: a PDF source shows its page (QtPdf), a text source its document at the passage."""

from __future__ import annotations

import pytest
from almanac.core.settings import Settings
from app_helpers import add_and_index
from pdfgen import make_pdf
from PySide6.QtCore import QPoint, Qt

QtPdf = pytest.importorskip("PySide6.QtPdf")


def ask(qtbot, window, question: str):
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        window.chat.input.setPlainText(question)
        qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    return done.args[0]


def test_a_pdf_source_shows_its_page_with_the_passage_highlighted(qtbot, make_window, tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    pages = [
        ["A short report on city transport.", "It begins with buses and trams."],
        ["The river ferries to Cacilhas leave every", "twenty minutes from the Cais do Sodre terminal."],
        ["Closing remarks about bicycles and walking."],
    ]
    (folder / "transport.pdf").write_bytes(make_pdf(pages, title="City transport"))
    window = make_window()
    add_and_index(qtbot, window, folder)
    answer = ask(qtbot, window, "How often do the ferries to Cacilhas leave?")
    source = next(s for s in answer.sources if s.hit.page == 2)
    assert source.hit.path == str(folder / "transport.pdf")

    panel = window.sources
    panel.select_source(source.n)
    assert panel.showing_pdf
    assert panel.pdf_document.status() == QtPdf.QPdfDocument.Status.Ready
    assert panel.pdf_view.pageNavigator().currentPage() == source.hit.page - 1
    # QtPdf's search finds the passage's first words on that page, and the view highlights them.
    qtbot.waitUntil(lambda: panel.pdf_view.currentSearchResultIndex() >= 0, timeout=10_000)
    link = panel.pdf_search.resultAtIndex(panel.pdf_view.currentSearchResultIndex())
    assert link.page() == source.hit.page - 1

    other = next((s for s in answer.sources if s.hit.page == 1), None)
    if other is not None:  # another page of the same file: no reload, just the page
        panel.select_source(other.n)
        assert panel.pdf_view.pageNavigator().currentPage() == 0


def test_a_text_source_shows_its_document_scrolled_to_the_passage(qtbot, make_window, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    filler = [
        f"Paragraph {i} is about the weather in week {i}: grey skies, light rain, and a cold wind from the"
        f" north that kept everyone indoors for most of the afternoon."
        for i in range(60)
    ]
    filler[45] = "The lighthouse keeper polishes the great brass lens every Sunday before dawn."
    (folder / "diary.md").write_text("# Diary\n\n" + "\n\n".join(filler) + "\n", encoding="utf-8")
    window = make_window(settings=Settings(chunk_tokens=64, chunk_overlap=8))
    add_and_index(qtbot, window, folder)
    answer = ask(qtbot, window, "When does the lighthouse keeper polish the brass lens?")
    source = answer.sources[0]
    assert "lighthouse keeper" in source.hit.text

    panel = window.sources
    panel.select_source(source.n)
    view = panel.passage
    qtbot.waitUntil(lambda: "Paragraph 30 is about" in view.toPlainText(), timeout=10_000)  # the document
    assert not panel.showing_pdf
    at = view.toPlainText().find("The lighthouse keeper")

    def in_view() -> bool:
        top = view.cursorForPosition(QPoint(0, 0)).position()
        bottom = view.cursorForPosition(QPoint(0, view.viewport().height() - 1)).position()
        return top <= at <= bottom

    qtbot.waitUntil(in_view)  # scrolled once laid out
    assert view.verticalScrollBar().value() > 0
    assert "lighthouse" in view.toHtml().split('name="passage"', 1)[1]  # shaded from the anchor on


def test_the_preview_reads_the_file_in_the_extraction_child_time_boxed(qtbot, tmp_path, monkeypatch):
    import os
    import time

    from almanac.app import document_text
    from almanac.core.extractors import extract
    from almanac.core.extractors.worker import SLEEP_ENV
    from almanac.core.indexer import SECTION_JOIN

    note = tmp_path / "note.md"
    note.write_text("# Title\n\nFirst paragraph.\n\n## Part\n\nSecond paragraph.\n", encoding="utf-8")
    errors: list[BaseException] = []
    texts = document_text.DocumentTexts(on_error=errors.append)
    try:
        got: list[str | None] = []
        texts.request(str(note), got.append)
        qtbot.waitUntil(lambda: bool(got), timeout=60_000)
        assert got == [SECTION_JOIN.join(s.text for s in extract(note).sections)]  # as the indexer joins them
        child = texts._worker._process
        assert child is not None and child.pid != os.getpid()  # parsed in the child, not in the app
    finally:
        texts.shutdown()

    # A file that hangs its parser: the preview gives up at its time limit, and the passage stays shown.
    monkeypatch.setenv(SLEEP_ENV, "60")  # read by the child at its start
    monkeypatch.setattr(document_text, "TIMEOUT_S", 1.0)
    texts = document_text.DocumentTexts(on_error=errors.append)
    try:
        got = []
        texts.request(str(note), got.append)
        qtbot.waitUntil(lambda: bool(got), timeout=60_000)
        assert got == [None]
        # And closing while such a file is being read does not wait for it.
        other = tmp_path / "other.md"
        other.write_text("# Other\n\nText.\n", encoding="utf-8")
        texts.request(str(other), got.append)
        qtbot.waitUntil(lambda: texts._worker._process is not None, timeout=60_000)
    finally:
        started = time.monotonic()
        texts.shutdown()
        assert time.monotonic() - started < 10
    assert errors == []
