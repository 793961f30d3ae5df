"""The chat says where an answer came from: the cache (with "Ask again"), or another backend after a fallback."""

from __future__ import annotations

import time

from almanac.app.chat_view import ChatView
from almanac.app.conversations import Turn
from almanac.core.answer import Answer, Source
from almanac.core.fallback import Attempt
from almanac.core.hits import Hit
from almanac.core.timing import Timings
from PySide6.QtCore import QUrl


def answer(**kw) -> Answer:
    hit = Hit(1, 1, "/notes/gate.md", "gate", None, "", "The gate code is 4512.", "gate code", [], 1.0)
    return Answer("What is the gate code?", "The gate code is 4512 [1].", [Source(1, hit)], [1], Timings(), **kw)


def test_cached_answer_says_so_and_offers_to_ask_again(qtbot):
    chat = ChatView()
    qtbot.addWidget(chat)
    cached_at = time.mktime((2026, 11, 29, 14, 5, 0, 0, 0, -1))
    chat.set_turns([Turn("What is the gate code?", answer(cache="semantic", cached_at=cached_at))])
    text = chat.transcript.toPlainText()
    assert "answered from cache (2026-11-29 14:05)" in text and "Ask again" in text
    with qtbot.waitSignal(chat.askAgainRequested) as again:
        chat._on_link(QUrl("again:0"))
    assert again.args == [0]


def test_fresh_answer_has_no_ask_again_and_a_fallback_says_why(qtbot):
    chat = ChatView()
    qtbot.addWidget(chat)
    attempts = [Attempt("office", "failed", "timeout", 5000.0), Attempt("local:tiny.gguf", "answered", None, 900.0)]
    chat.set_turns([Turn("q", answer(backend="local:tiny.gguf", attempts=attempts))])
    text = chat.transcript.toPlainText()
    assert "answered by local:tiny.gguf (office: timeout)" in text
    assert "Ask again" not in text and "from cache" not in text
