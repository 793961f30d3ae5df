"""Crash safety: the PySide6 reference leaks are patched, and failures away from a job still end in a message."""

from __future__ import annotations

import errno
import sys
import threading

from almanac.app.main import install_excepthook
from almanac.app.qt_fixes import void_call_leaks_none
from app_helpers import add_and_index
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox


def test_void_calls_cannot_use_up_none(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    for i in range(20_000):  # more than None's own count in a fresh process: would abort unpatched
        label.setText(str(i % 7))
    if void_call_leaks_none():  # PySide6 6.12.0: the fix must be in place
        assert sys.getrefcount(None) > 1 << 39


def test_charts_redrawn_many_times_cannot_use_up_true(qtbot):
    import pyqtgraph as pg

    plot = pg.PlotWidget()
    qtbot.addWidget(plot)
    for _ in range(300):  # pyqtgraph's add/remove drop references to True on PySide6 6.12.0
        plot.plot([1, 2, 3], [1, 2, 3], pen="r", symbol="o")
        plot.clear()
    if void_call_leaks_none():
        assert sys.getrefcount(True) > 1 << 39 and sys.getrefcount(False) > 1 << 39


def test_a_chat_that_cannot_be_saved_says_so_and_the_answer_still_comes(qtbot, make_window, docs):
    window = make_window()
    add_and_index(qtbot, window, docs)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(window.chats.store.folder / "x.json"))

    window.chats.store.save = disk_full
    with qtbot.waitSignal(window.asker.answered, timeout=30_000):
        window.chat.input.setPlainText("Where do we stay in Lisbon?")
        qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    kind, text = window.shown_messages[0]
    assert kind == "error" and text.startswith("Cannot save your chats in") and "No space left" in text
    assert "Copy answer" in window.chat.plain_text()  # the answer came: the chat goes on in memory
    assert len([w for w in window.findChildren(QMessageBox) if w.isVisible()]) == 1  # one box, not two


def test_an_exception_on_a_plain_thread_shows_the_crash_notice(qtbot, make_window, monkeypatch, app_errors):
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    window = make_window()
    install_excepthook()
    thread = threading.Thread(target=lambda: 1 / 0)
    thread.start()
    thread.join(5)

    def crash_boxes() -> list[QMessageBox]:
        widgets = QApplication.topLevelWidgets() + window.findChildren(QMessageBox)
        return [w for w in widgets if isinstance(w, QMessageBox) and "Something went wrong" in w.text()]

    qtbot.waitUntil(lambda: bool(crash_boxes()))  # shown on the GUI thread
    assert any("ZeroDivisionError" in str(r.exc_info) for r in app_errors.records)
    app_errors.records.clear()  # expected
    for box in crash_boxes():
        box.close()
