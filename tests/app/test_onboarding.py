"""First run: the empty library says so and offers folders or samples; the samples index and answer the
suggested questions; the indexing line says what is happening and that keyword search already works."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from almanac.app.onboarding import SAMPLE_QUESTIONS, bundled_samples, samples_folder
from almanac.app.progress_line import KEYWORD_NOTE, Eta, IndexProgressLine, progress_words
from almanac.core.indexer import Progress
from almanac.core.library import Library
from almanac.core.settings import Settings
from app_helpers import add_and_index
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

# The sample file each suggested question is about, in SAMPLE_QUESTIONS order.
EXPECTED_FILES = ("lighthouses.html", "honeybees.md", "gettysburg-address.txt")


def test_samples_are_small_mixed_and_documented():
    files = bundled_samples()
    assert 3 <= len(files) <= 5
    assert {f.suffix for f in files} >= {".md", ".txt", ".html"}
    assert all(f.stat().st_size < 4_000 for f in files)
    sources = (files[0].parent / "SOURCES.md").read_text(encoding="utf-8")
    for f in files:
        assert f"`{f.name}`" in sources  # each one's origin and licence is written down


def test_empty_library_shows_the_welcome_until_a_folder_is_added(qtbot, make_window, docs):
    window = make_window()
    qtbot.waitUntil(lambda: window.center.currentWidget() is window.welcome)
    assert window.welcome.isVisible() and not window.chat.isVisible()
    add_and_index(qtbot, window, docs)
    qtbot.waitUntil(lambda: window.center.currentWidget() is window.chat_column)
    assert not window.welcome.isVisible() and window.chat.isVisible()
    assert not window.suggestions.isVisible()  # suggestions are for the samples only

    window.index.remove_folder(str(docs))
    qtbot.waitUntil(lambda: window.center.currentWidget() is window.welcome)


def test_add_folder_on_the_welcome_opens_the_folder_chooser(qtbot, make_window, monkeypatch):
    window = make_window()
    qtbot.waitUntil(lambda: window.welcome.isVisible())
    asked: list[bool] = []
    monkeypatch.setattr(window.library_panel, "choose_folder", lambda: asked.append(True))  # no modal dialog
    qtbot.mouseClick(window.welcome.add_button, Qt.MouseButton.LeftButton)
    assert asked == [True]


def test_samples_index_then_a_suggestion_is_asked_and_answered_from_them(qtbot, make_window):
    window = make_window()
    qtbot.waitUntil(lambda: window.welcome.isVisible())
    qtbot.mouseClick(window.welcome.samples_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.chat_column.isVisible() and not window.index.busy, timeout=60_000)
    copied = sorted(p.name for p in samples_folder().iterdir())
    assert copied == sorted(f.name for f in bundled_samples())
    qtbot.waitUntil(lambda: window.suggestions.isVisible())
    assert [b.text() for b in window.suggestions.buttons] == list(SAMPLE_QUESTIONS)

    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        qtbot.mouseClick(window.suggestions.buttons[0], Qt.MouseButton.LeftButton)
    answer = done.args[0]
    assert answer.question == SAMPLE_QUESTIONS[0]
    assert answer.sources and Path(answer.sources[0].hit.path).name == EXPECTED_FILES[0]
    assert not window.suggestions.isVisible()  # the chat has a question now

    window.chats.new_conversation()  # a fresh chat offers them again, until hidden
    assert window.suggestions.isVisible()
    window.suggestions.dismissed.emit()
    assert not window.suggestions.isVisible()


class GatedEmbedder:
    """Holds every document batch until `gate` is set; queries go to the ungated model (its `clone`)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def token_spans(self, text):
        return self.inner.token_spans(text)

    def embed(self, texts):
        self.waiting.set()
        self.gate.wait(60)
        return self.inner.embed(texts)

    def clone(self):
        return self.inner


def test_questions_are_answered_by_keyword_while_embeddings_are_pending(qtbot, make_window, hash_embedder):
    gated = GatedEmbedder(hash_embedder)
    window = make_window(embedder_factory=lambda s: gated)
    try:
        qtbot.waitUntil(lambda: window.welcome.isVisible())
        window.add_samples()
        qtbot.waitUntil(gated.waiting.is_set, timeout=30_000)  # every file read; no vector made yet
        qtbot.waitUntil(lambda: "embedding passages: 0 of" in window.progress_line.label.text())
        assert window.progress_line.isVisible() and window.progress_line.note.isVisible()
        assert window.suggestions.isVisible()
        with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
            qtbot.mouseClick(window.suggestions.buttons[0], Qt.MouseButton.LeftButton)
        sources = done.args[0].sources
        assert sources and Path(sources[0].hit.path).name == EXPECTED_FILES[0]
        assert all(s.hit.vector_rank is None and s.hit.keyword_rank for s in sources)  # keyword only
        assert window.index.busy
    finally:
        gated.gate.set()
    qtbot.waitUntil(lambda: not window.index.busy, timeout=30_000)
    assert not window.progress_line.isVisible()


@pytest.mark.slow
def test_each_suggested_question_finds_its_sample_with_the_real_embedder(tmp_path, real_embedder):
    folder = tmp_path / "samples"
    folder.mkdir()
    for f in bundled_samples():
        (folder / f.name).write_bytes(f.read_bytes())
    with Library(tmp_path / "index.db", settings=Settings(), embedder=real_embedder) as lib:
        lib.add_folder(folder)
        report = lib.index()
        assert report.indexed == len(bundled_samples()) and report.failed == 0
        searcher = lib.searcher()
        try:
            for question, expected in zip(SAMPLE_QUESTIONS, EXPECTED_FILES, strict=True):
                for mode in ("hybrid", "keyword"):  # keyword: what answers before embeddings finish
                    hits = searcher.search(question, k=3, mode=mode).hits
                    assert hits and Path(hits[0].path).name == expected, (question, mode)
        finally:
            searcher.close()


def test_progress_words_name_files_passages_embeddings_and_time_left():
    reading = Progress("reading", files_done=3, files_total=40)
    assert progress_words(reading, (3, 40), None) == "Reading files: 3 of 40"
    embedding = Progress("embedding", chunks_done=120, chunks_total=800)
    line = progress_words(embedding, (40, 40), 42.0)
    assert line == "40 files read · embedding passages: 120 of 800 · about 40 s left"
    assert progress_words(embedding, (40, 40), 600.0).endswith("about 10 min left")
    assert progress_words(Progress("preparing", chunks_total=800), (40, 40), None).startswith(
        "Preparing the embedding model"
    )


def test_eta_comes_from_the_phase_rate_and_restarts_with_each_phase():
    now = [0.0]
    eta = Eta(lambda: now[0])
    assert eta.update("embedding", 0, 1000) is None
    now[0] = 0.5
    assert eta.update("embedding", 50, 1000) is None  # too early for a sound rate
    now[0] = 2.0
    assert eta.update("embedding", 200, 1000) == pytest.approx(8.0)  # 100 a second, 800 to go
    assert eta.update("reading", 5, 10) is None  # a new phase starts over


def test_progress_line_shows_while_busy_with_the_keyword_note(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    line = IndexProgressLine(parent)
    parent.show()
    assert not line.isVisible()
    line.set_busy(True)
    assert line.isVisible() and line.label.text() == "Looking for new and changed files…"
    line.show_progress(Progress("reading", files_done=1, files_total=4))
    assert line.note.isVisible() and line.note.text() == KEYWORD_NOTE
    line.show_progress(Progress("embedding", chunks_done=5, chunks_total=20))
    assert line.label.text().startswith("4 files read · embedding passages: 5 of 20")
    line.show_progress(Progress("done"))
    assert not line.note.isVisible()
    line.set_busy(False)
    assert not line.isVisible()
