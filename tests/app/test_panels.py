"""The panels on their own: citations as links, marked snippets, timing bars, progress words."""

from __future__ import annotations

import dataclasses

from almanac.app.chat_view import ChatView, linkify_citations
from almanac.app.conversations import Turn
from almanac.app.sources_panel import SourcesPanel, marked_html, why_ranked
from almanac.app.status_bar import describe
from almanac.app.timing_panel import TimingPanel
from almanac.core.answer import Source
from almanac.core.indexer import Progress
from almanac.core.quick_answer import QuickAnswer
from app_helpers import make_answer
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QTextCursor


def test_citations_become_links_to_their_source():
    md = linkify_citations("Water daily [1]. Basil too [2, 3]. Not [x] nor [a1].", turn=4)
    assert "[\\[1\\]](cite:4/1)" in md
    assert "[\\[2\\]](cite:4/2)[\\[3\\]](cite:4/3)" in md
    assert "[x]" in md and "[a1]" in md


def test_snippet_marks_are_highlighted_and_text_escaped():
    out = marked_html("a <b> watering", [(6, 14)])
    assert "&lt;b&gt;" in out
    assert ">watering</span>" in out


def test_why_ranked_names_both_ranks_and_the_fused_score():
    hit = make_answer().sources[0].hit
    assert why_ranked(hit) == "keyword #1 (BM25 -2.50) · meaning #2 (distance 0.310) · fused score 0.0325"
    hit.keyword_rank = hit.keyword_score = None
    assert why_ranked(hit).startswith("no keyword match")


def test_sources_panel_lists_sources_and_previews_the_passage(qtbot, monkeypatch):
    panel = SourcesPanel()
    qtbot.addWidget(panel)
    answer = make_answer()
    panel.set_answer(answer)
    assert panel.list.count() == 1
    assert panel.list.item(0).text().startswith("[1] garden.md · Garden notes")
    assert panel.list.item(0).font().bold()  # cited
    assert "watering" in panel.passage.toPlainText()
    assert "keyword #1" in panel.details.toPlainText()
    opened = []
    monkeypatch.setattr("almanac.app.sources_panel.open_path", opened.append)
    qtbot.mouseClick(panel.open_button, Qt.MouseButton.LeftButton)
    assert opened == ["/docs/garden.md"]
    panel.set_answer(None)
    assert panel.list.count() == 0 and not panel.open_button.isEnabled()


def test_timing_panel_shows_every_stage_and_the_token_figures(qtbot):
    panel = TimingPanel()
    qtbot.addWidget(panel)
    panel.set_answer(make_answer())
    assert [name for name, _ in panel.bars.stages()] == ["embed query", "first token", "generation"]
    assert "First token after 120.0 ms" in panel.summary.text()
    assert "210 prompt tokens, 12 answer tokens" in panel.summary.text()
    assert "30.0 tokens/s" in panel.summary.text()
    panel.show()
    panel.grab()  # paints the bars


def test_chat_view_renders_markdown_and_reports_clicks(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    view.set_turns([Turn("How often?", make_answer("Water **every** morning [1]."))], selected=0)
    text = view.plain_text()
    assert "How often?" in text and "Water every morning [1]." in text
    with qtbot.waitSignal(view.citationClicked) as blocker:
        view.transcript.anchorClicked.emit(QUrl("cite:0/1"))
    assert blocker.args == [0, 1]


def test_a_two_sentence_quick_answer_shows_each_with_its_source(qtbot):
    answer = make_answer()
    basil = dataclasses.replace(answer.sources[0].hit, path="/docs/basil.md", text="Basil wants less water.")
    answer.sources.append(Source(2, basil))
    second = QuickAnswer("Basil wants less water.", 2, 0, 23)
    answer.quick_answer = QuickAnswer("The tomato plants need watering every morning.", 1, 0, 46, also=second)
    answer.text = answer.quick_answer.cited_text()  # the model's reply was set aside for it
    view = ChatView()
    qtbot.addWidget(view)
    view.set_turns([Turn("How often?", answer)], selected=0)
    text = view.plain_text()
    assert "From your files: “The tomato plants need watering every morning.” [1]  garden.md" in text
    assert "Also: “Basil wants less water.” [2]  basil.md" in text
    assert text.count("Basil wants less water.") == 1  # the reply it stood in for is not repeated
    with qtbot.waitSignal(view.citationClicked) as blocker:
        view.transcript.anchorClicked.emit(QUrl("cite:0/2"))
    assert blocker.args == [0, 2]


def test_both_quick_answer_sentences_are_shaded_in_their_passage(qtbot):
    answer = make_answer()
    text = "Water the tomatoes every morning. Basil is hardy. Mint spreads fast if you let it."
    hit = dataclasses.replace(answer.sources[0].hit, text=text, snippet=text[:20], snippet_marks=[])
    answer.sources = [Source(1, hit)]
    second = QuickAnswer("Mint spreads fast if you let it.", 1, text.index("Mint"), len(text))
    answer.quick_answer = QuickAnswer("Water the tomatoes every morning.", 1, 0, 33, also=second)
    panel = SourcesPanel()
    qtbot.addWidget(panel)
    panel.set_answer(answer)
    assert panel.select_source(1)
    cursor = QTextCursor(panel.passage.document())

    def shade(words: str) -> str:
        cursor.setPosition(panel.passage.toPlainText().index(words) + 1)
        return cursor.charFormat().background().color().name()

    assert shade("Water the") == shade("Mint spreads") == panel._shade()
    assert shade("Basil is") != panel._shade()  # between the two sentences


def test_enter_sends_and_shift_enter_adds_a_line(qtbot):
    view = ChatView()
    qtbot.addWidget(view)
    asked = []
    view.askRequested.connect(asked.append)
    qtbot.keyClicks(view.input, "first line")
    qtbot.keyClick(view.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(view.input, "second")
    assert asked == []
    qtbot.keyClick(view.input, Qt.Key.Key_Return)
    assert asked == ["first line\nsecond"]
    assert view.input.toPlainText() == ""


def test_progress_words():
    assert describe(Progress("reading", 3, 10, current="/a/b.md")) == ("Reading files: 3 of 10 — b.md", 3, 10)
    building = Progress("building", chunks_done=5, chunks_total=8, current="keyword index")
    assert describe(building) == ("Building the keyword index for a large library: 5 of 8 chunks", 5, 8)
    scan = Progress("reading", 3, 10, current="/a/scan.pdf", pages_done=4, pages_total=20)
    assert describe(scan)[0] == "Reading files: 3 of 10 — scan.pdf (OCR: page 5 of 20)"
    assert describe(Progress("embedding", chunks_done=5, chunks_total=9))[0] == "Embedding: 5 of 9 chunks"
