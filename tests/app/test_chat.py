"""Asking in the window: streaming, citations, sources, timings, stop, copy, conversations across restarts."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from almanac.app.qt_fixes import emit_leaks_true
from almanac.core.extractors.worker import SLEEP_ENV
from almanac.core.llm import LocalLLM
from app_helpers import FakeLLM, add_and_index
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QMessageBox

LONG_REPLY = " ".join(["Lisbon"] * 400)


def ask(qtbot, window, question: str) -> None:
    window.chat.input.setPlainText(question)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)


GROUNDED = "The flight leaves at 7:40 from gate 12 [1]. We will stay in Alfama [1][2]."


def test_answer_streams_in_with_sources_timings_and_clickable_citations(qtbot, make_window, docs):
    window = make_window(llm_factory=lambda s: FakeLLM(GROUNDED))
    qtbot.waitUntil(lambda: window.status.model_label.text().startswith("Model ready"), timeout=30_000)
    add_and_index(qtbot, window, docs)
    pieces: list[str] = []
    window.asker.tokensArrived.connect(pieces.append)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        ask(qtbot, window, "When does the flight to Lisbon leave?")
        assert window.chat.stop_button.isEnabled() and not window.chat.send_button.isEnabled()
    answer = done.args[0]
    assert answer.stopped == "stop"
    assert "".join(pieces).strip() == answer.text  # streamed piece by piece, nothing lost
    assert len(pieces) < len(answer.text.split())  # and batched, not one signal per token
    text = window.chat.plain_text()
    assert "When does the flight to Lisbon leave?" in text and "from gate 12 [1]" in text
    assert window.sources.list.count() == len(answer.sources) >= 2
    assert window.sources.list.item(0).text().startswith("[1] trip.txt")
    assert [name for name, _ in window.timings.bars.stages()][-2:] == ["first token", "generation"]
    assert "tokens/s" in window.timings.summary.text()
    assert not window.chat.stop_button.isEnabled()

    window.chat.transcript.anchorClicked.emit(QUrl("cite:0/2"))  # the [2] in the answer
    assert window.sources.current_source().n == 2
    window.chat.transcript.anchorClicked.emit(QUrl("copy:0"))
    assert QApplication.clipboard().text() == answer.text
    assert window.conversation_list.titles() == ["When does the flight to Lisbon leave?"]


def test_stop_button_ends_the_answer_as_stopped(qtbot, make_window, docs):
    window = make_window(llm_factory=lambda s: FakeLLM(LONG_REPLY, delay_s=0.01))
    add_and_index(qtbot, window, docs)
    pieces: list[str] = []
    window.asker.tokensArrived.connect(pieces.append)
    ask(qtbot, window, "Tell me about Lisbon")
    qtbot.waitUntil(lambda: bool(pieces), timeout=30_000)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)
    answer = done.args[0]
    assert answer.stopped == "cancelled"
    assert 0 < answer.answer_tokens < 400
    assert "Stopped" in window.chat.plain_text()
    assert window.chat.send_button.isEnabled() is False  # input is empty; but asking is possible again
    assert not window.asker.busy


def test_escape_stops_the_answer(qtbot, make_window, docs):
    window = make_window(llm_factory=lambda s: FakeLLM(LONG_REPLY, delay_s=0.01))
    add_and_index(qtbot, window, docs)
    pieces: list[str] = []
    window.asker.tokensArrived.connect(pieces.append)
    ask(qtbot, window, "Tell me about Lisbon")
    qtbot.waitUntil(lambda: bool(pieces), timeout=30_000)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        window.stop_action.trigger()  # Esc
    assert done.args[0].stopped == "cancelled"


def test_a_question_with_nothing_to_go_on_says_so(qtbot, make_window):
    window = make_window()
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        ask(qtbot, window, "What is the airspeed of a swallow?")
    assert done.args[0].stopped == "no context"
    assert "Nothing in your library matches" in window.chat.plain_text()


def test_conversations_survive_a_restart_and_can_be_renamed_and_deleted(qtbot, make_window, docs):
    first = make_window()
    add_and_index(qtbot, first, docs)
    with qtbot.waitSignal(first.asker.answered, timeout=30_000):
        ask(qtbot, first, "How often do I water the tomatoes?")
    first.chats.new_conversation()
    with qtbot.waitSignal(first.asker.answered, timeout=30_000):
        ask(qtbot, first, "Where do we stay in Lisbon?")
    first.close()

    second = make_window()
    titles = second.conversation_list.titles()
    assert titles == ["Where do we stay in Lisbon?", "How often do I water the tomatoes?"]
    assert "Where do we stay in Lisbon?" in second.chat.plain_text()
    assert second.sources.list.count() > 0  # the answer still explains itself
    assert second.timings.bars.stages()

    second.conversation_list.list.setCurrentRow(1)
    assert "tomatoes" in second.chat.plain_text()
    item = second.conversation_list.list.item(1)
    item.setText("Garden")  # what an edit in place does
    assert second.conversation_list.titles()[1] == "Garden"
    second.chats.delete_current()
    box = next(w for w in second.findChildren(QMessageBox) if w.isVisible())
    qtbot.mouseClick(next(b for b in box.buttons() if b.text() == "Delete"), Qt.MouseButton.LeftButton)
    assert second.conversation_list.titles() == ["Where do we stay in Lisbon?"]
    second.close()

    third = make_window()
    assert third.conversation_list.titles() == ["Where do we stay in Lisbon?"]


def test_a_model_that_cannot_load_offers_settings(qtbot, make_window, tmp_path):
    bad = tmp_path / "nope.gguf"
    window = make_window(llm_factory=lambda s: LocalLLM(bad))
    qtbot.waitUntil(lambda: bool(window.shown_messages), timeout=30_000)
    kind, text = window.shown_messages[0]
    assert kind == "error" and "does not exist" in text
    assert window.status.model_label.text() == "Language model not loaded"
    box = next(w for w in window.findChildren(QMessageBox) if w.isVisible())
    assert box.testAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    assert box.windowModality() == Qt.WindowModality.NonModal
    qtbot.mouseClick(
        next(b for b in box.buttons() if b.text() == "Open Settings…"), Qt.MouseButton.LeftButton
    )
    assert window._settings_dialog is not None and window._settings_dialog.isVisible()
    window._settings_dialog.reject()


def test_an_unexpected_error_shows_the_crash_notice_with_the_log_path(qtbot, make_window, app_errors):
    window = make_window()
    window.index._jobs.submit(lambda: 1 / 0)
    qtbot.waitUntil(lambda: bool(window.shown_messages))
    kind, text = window.shown_messages[0]
    assert kind == "crash" and text.endswith("almanac.log")
    box = next(w for w in window.findChildren(QMessageBox) if w.isVisible())
    assert "Traceback" not in box.text() + box.informativeText()
    assert "almanac.log" in box.informativeText()
    assert any("ZeroDivisionError" in str(r.exc_info) for r in app_errors.records)
    app_errors.records.clear()  # expected


def test_window_state_is_remembered(qtbot, make_window):
    first = make_window()
    first.resize(760, 600)  # fits the offscreen screen, which restoreGeometry clamps to
    first.main_splitter.setSizes([200, 300, 240])
    sizes = first.main_splitter.sizes()
    first.sidebar.setCurrentIndex(1)
    first.close()
    second = make_window()
    assert second.size() == first.size()
    # Within a few pixels: the restored sizes are re-fitted to each pane's minimum width.
    assert all(abs(a - b) <= 8 for a, b in zip(second.main_splitter.sizes(), sizes, strict=True))
    assert second.sidebar.currentIndex() == 1


def test_signals_do_not_leak_references_to_true():
    class Probe(QObject):
        fired = Signal(bool)

    probe = Probe()
    before = sys.getrefcount(True)
    for _ in range(100):
        probe.fired.emit(True)
    assert sys.getrefcount(True) >= before - 5
    assert not emit_leaks_true()


def test_a_question_can_be_asked_while_indexing_runs(qtbot, make_window, docs, tmp_path, monkeypatch):
    monkeypatch.setenv(SLEEP_ENV, "0.05")  # the extraction child takes 50 ms a file
    window = make_window()
    add_and_index(qtbot, window, docs)
    more = tmp_path / "more"
    more.mkdir()
    for i in range(40):
        (more / f"m{i}.txt").write_text(f"memo {i}", encoding="utf-8")
    window.index.add_folders([str(more)])
    qtbot.waitUntil(lambda: window.index.busy)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        ask(qtbot, window, "When does the flight to Lisbon leave?")
    assert done.args[0].stopped == "stop"
    assert window.index.busy  # the writer was still at work while the reader answered


class GatedLLM(FakeLLM):
    """Writes nothing until the test opens the gate: what is on screen before the model starts."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def stream_chat(self, messages, **kwargs):
        pieces = super().stream_chat(messages, **kwargs)

        def gated():
            self.gate.wait(30)
            yield from pieces

        return gated()


def shade_at(view, text: str) -> str:
    """The background colour of the first character of `text` in a QTextBrowser."""
    at = view.toPlainText().find(text)
    assert at >= 0, view.toPlainText()
    cursor = QTextCursor(view.document())
    cursor.setPosition(at + 1)
    return cursor.charFormat().background().color().name()


def test_the_quick_answer_shows_before_the_model_writes_and_is_highlighted_in_its_source(
    qtbot, make_window, docs
):
    llm = GatedLLM()
    window = make_window(llm_factory=lambda s: llm)
    add_and_index(qtbot, window, docs)
    with qtbot.waitSignal(window.asker.quickAnswered, timeout=30_000) as quick:
        ask(qtbot, window, "When does the flight to Lisbon leave?")
    found = quick.args[0]
    assert "7:40" in found.quick_answer.text and found.source.hit.path.endswith("trip.txt")
    text = window.chat.plain_text()
    assert f"From your files: “{found.quick_answer.text}” [{found.quick_answer.n}]" in text
    assert "Thinking…" in text  # the model has not written a word yet
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        llm.gate.set()
    answer = done.args[0]
    assert answer.quick_answer == found.quick_answer
    text = window.chat.plain_text()
    assert text.index("From your files:") < text.index("Copy answer")  # quick answer on top
    # The scripted reply is about Almanac, not the trip: made up, so the quick answer stands in for it.
    assert answer.text == f"{found.quick_answer.text} [{found.quick_answer.n}]"
    assert "index of your folders" not in text
    window.chat.transcript.anchorClicked.emit(QUrl(f"cite:0/{found.quick_answer.n}"))
    assert window.sources.current_source().n == found.quick_answer.n
    shade = window.sources._shade()
    assert shade_at(window.sources.passage, "The flight leaves at 7:40") == shade
    qtbot.waitUntil(lambda: "Our trip to Lisbon" in window.sources.passage.toPlainText())
    assert shade_at(window.sources.passage, "The flight leaves at 7:40") == shade
    assert shade_at(window.sources.passage, "Our trip to Lisbon") != shade  # the sentence, not the passage


def test_a_declined_answer_is_a_friendly_message_with_the_closest_sources(qtbot, make_window, docs):
    llm = FakeLLM()
    window = make_window(llm_factory=lambda s: llm)
    add_and_index(qtbot, window, docs)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        ask(qtbot, window, "Who won the 1954 chess marathon in Reykjavik?")
    answer = done.args[0]
    assert answer.stopped == "declined" and answer.sources
    assert not llm.prompts  # the model was never asked
    text = window.chat.plain_text()
    # Why, between the two sentences.
    assert "I couldn't find this in your files. The closest passages are about something else." in text
    assert "The closest passages are listed below." in text
    first = answer.sources[0]
    assert f"[1] {Path(first.hit.path).name}" in text
    assert "Stopped" not in text and "Cut short" not in text
    window.chat.transcript.anchorClicked.emit(QUrl(f"cite:0/{len(answer.sources)}"))
    assert window.sources.current_source().n == len(answer.sources)


def test_a_saved_quick_answer_survives_a_restart(qtbot, make_window, docs):
    first = make_window()
    add_and_index(qtbot, first, docs)
    with qtbot.waitSignal(first.asker.answered, timeout=30_000) as done:
        ask(qtbot, first, "When does the flight to Lisbon leave?")
    quick = done.args[0].quick_answer
    assert quick is not None
    first.close()
    second = make_window()
    assert f"From your files: “{quick.text}”" in second.chat.plain_text()
