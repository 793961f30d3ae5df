"""Everyday polish: keyboard shortcuts, exporting a chat, the window layout and paused watching across
restarts, the tray indicator."""

from __future__ import annotations

from almanac.app.chat_export import conversation_markdown, suggested_name
from almanac.app.conversations import Conversation, Turn
from almanac.app.shortcuts import shortcut_rows
from almanac.app.tray import IndexTray, progress_icon
from almanac.core.indexer import Progress
from almanac.core.quick_answer import QuickAnswer
from app_helpers import FakeLLM, add_and_index, make_answer
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QWidget

LONG_REPLY = " ".join(["Lisbon"] * 400)


def press(qtbot, window, keys: str) -> None:
    """Type a key sequence at the window, as a user would (through Qt's shortcut map)."""
    combo = QKeySequence(keys)[0]
    qtbot.keyClick(QApplication.focusWidget() or window, combo.key(), combo.keyboardModifiers())


def ask(qtbot, window, question: str) -> None:
    window.chat.input.setPlainText(question)
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)


def test_shortcuts_focus_the_question_start_a_chat_copy_and_stop(qtbot, make_window, docs):
    window = make_window(llm_factory=lambda s: FakeLLM(delay_s=0.0))
    add_and_index(qtbot, window, docs)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    window.conversation_list.list.setFocus()

    press(qtbot, window, "Ctrl+L")
    assert QApplication.focusWidget() is window.chat.input

    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        ask(qtbot, window, "When does the flight to Lisbon leave?")
    QApplication.clipboard().clear()
    press(qtbot, window, "Ctrl+Shift+C")
    assert QApplication.clipboard().text() == done.args[0].text

    first = window.chats.current
    press(qtbot, window, "Ctrl+N")
    assert window.chats.current is not first and not window.chats.current.turns
    assert QApplication.focusWidget() is window.chat.input


def test_escape_key_stops_an_answer(qtbot, make_window, docs):
    window = make_window(llm_factory=lambda s: FakeLLM(LONG_REPLY, delay_s=0.01))
    add_and_index(qtbot, window, docs)
    window.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window)
    pieces: list[str] = []
    window.asker.tokensArrived.connect(pieces.append)
    ask(qtbot, window, "When does the flight to Lisbon leave?")
    qtbot.waitUntil(lambda: bool(pieces), timeout=30_000)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        press(qtbot, window, "Esc")
    assert done.args[0].stopped == "cancelled"


def test_the_shortcut_list_is_read_from_the_menus(qtbot, make_window):
    window = make_window()
    rows = dict(shortcut_rows(window.menuBar()))
    native = QKeySequence.SequenceFormat.NativeText
    assert rows["New Chat"] == QKeySequence("Ctrl+N").toString(native)
    assert rows["Ask a Question"] == QKeySequence("Ctrl+L").toString(native)
    assert rows["Stop Answer"] == QKeySequence("Esc").toString(native)
    assert rows["Copy Answer"] == QKeySequence("Ctrl+Shift+C").toString(native)
    assert rows["Export Chat as Markdown"] == QKeySequence("Ctrl+Shift+S").toString(native)
    dialog = window.show_shortcuts()
    assert dialog.table.rowCount() == len(rows)
    dialog.reject()


def test_export_writes_the_chat_with_its_sources(qtbot, make_window, docs, tmp_path):
    window = make_window()
    add_and_index(qtbot, window, docs)
    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        ask(qtbot, window, "When does the flight to Lisbon leave?")
    answer = done.args[0]
    out = window.chats.export_chat(tmp_path / "chat.md")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# When does the flight to Lisbon leave?\n")
    assert "## When does the flight to Lisbon leave?" in text
    assert answer.text in text
    assert "**Sources**" in text
    for source in answer.sources:
        assert f"{source.n}. [{source.hit.path.rsplit('/', 1)[1]}](<file://" in text
        assert f"`{source.hit.path}`" in text
    assert "*(cited)*" in text  # the reply cites [1] and [2]


def test_markdown_marks_cited_sources_and_failed_turns():
    answer = make_answer()
    answer.quick_answer = QuickAnswer("The tomato plants need watering every morning.", 1, 0, 46)
    conv = Conversation(id="c1", title="Garden", turns=[Turn("How often?", answer), Turn("And?")])
    conv.turns[1].error = "Stopped before the answer began."
    text = conversation_markdown(conv, now=0)
    assert "2 questions" in text
    assert "> From your files: “The tomato plants need watering every morning.” [1]\n\nWater them" in text
    assert "Water them every morning [1]." in text
    assert "1. [garden.md](<file:///docs/garden.md>) — Garden notes *(cited)*" in text
    assert "   > …need watering every morning." in text
    assert "## And?\n\n*No answer: Stopped before the answer began.*" in text
    answer.quick_answer.also = QuickAnswer("Basil wants less.", 2, 0, 17)  # a second sentence, its own [n]
    text = conversation_markdown(conv, now=0)
    assert "> From your files: “The tomato plants need watering every morning.” [1]\n>\n> Also: “Basil wants less.” [2]\n" in text
    assert suggested_name(Conversation(id="x", title='a/b: "c"?')) == "a b c.md"


def test_export_with_nothing_asked_writes_nothing(qtbot, make_window, tmp_path):
    window = make_window()
    assert window.chats.export_chat(tmp_path / "empty.md") is None
    assert not (tmp_path / "empty.md").exists()


def test_layout_and_paused_watching_survive_a_restart(qtbot, make_window):
    first = make_window()
    qtbot.waitUntil(lambda: first.welcome.isVisible())  # laid out as it will be when restored
    first.resize(780, 560)  # within the offscreen screen (800 × 600): restoring keeps a window on screen
    size = first.size().toTuple()
    assert size[0] <= 790 and size[1] == 560  # not the default size (1320 × 820)
    first.sidebar.setCurrentWidget(first.library_panel)
    QApplication.processEvents()  # the library tab's minimum width applies before the sizes are set
    first.main_splitter.setSizes([300, 240, 240])
    first.right_splitter.setSizes([350, 150])
    first.watch_action.trigger()  # Library ▸ Pause Watching
    assert first.index.watch_paused
    sizes = first.main_splitter.sizes()
    right = first.right_splitter.sizes()
    first.close()

    second = make_window()
    qtbot.waitUntil(lambda: second.welcome.isVisible())
    assert second.size().toTuple() == size
    assert second.main_splitter.sizes() == sizes
    assert second.right_splitter.sizes() == right
    assert second.sidebar.currentWidget() is second.library_panel
    assert second.index.watch_paused and second.watch_action.isChecked()
    second.watch_action.trigger()  # resume
    second.close()

    third = make_window()
    assert not third.index.watch_paused


def test_tray_ring_follows_progress(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    tray = IndexTray(parent, available=True)
    tray.set_busy(True)
    assert tray.fraction is None and "Looking for new and changed files" in tray.tooltip
    tray.show_progress(Progress("embedding", chunks_done=50, chunks_total=200))
    assert tray.fraction == 0.25
    assert tray.icon.toolTip() == "Almanac — Embedding: 50 of 200 chunks"
    tray.show_progress(Progress("embedding", chunks_done=51, chunks_total=200))
    assert tray.fraction == 0.25  # under 2% of movement: the icon is not repainted
    tray.set_busy(False)
    assert not tray.icon.isVisible()


def test_no_tray_means_no_icon(qtbot):
    parent = QWidget()
    qtbot.addWidget(parent)
    tray = IndexTray(parent, available=False)
    tray.set_busy(True)
    tray.show_progress(Progress("reading", files_done=1, files_total=2))
    assert tray.icon is None and tray.tooltip.startswith("Almanac — Reading files: 1 of 2")


def test_progress_icon_fills_with_the_fraction():
    def blue_pixels(fraction):
        image = progress_icon(fraction).pixmap(64, 64).toImage()
        return sum(
            1
            for x in range(64)
            for y in range(64)
            if image.pixelColor(x, y).blue() > 150 and image.pixelColor(x, y).red() < 100
        )

    assert blue_pixels(0.1) < blue_pixels(0.5) < blue_pixels(1.0)


def test_index_summary_in_the_status_bar(qtbot, make_window):
    from almanac.core.indexer import SyncReport

    window = make_window()
    window._index_finished(SyncReport())
    assert window.status.currentMessage() == "Index up to date"
    window._index_finished(SyncReport(indexed=1, failed=2))
    assert window.status.currentMessage() == "Indexed 1 file; 2 could not be read (see Library)"
