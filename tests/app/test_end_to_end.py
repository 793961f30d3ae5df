"""The whole app on the real bundled models: index a folder, see the failure, ask, stream, stop."""

from __future__ import annotations

import dataclasses

import pytest
from almanac.app.ask_controller import default_llm
from almanac.core.settings import Settings
from app_helpers import add_and_index
from PySide6.QtCore import Qt

pytestmark = pytest.mark.slow
TIMEOUT_MS = 180_000  # the models run on a shared, possibly busy CPU


def test_real_models_answer_with_sources_and_timings_and_can_be_stopped(
    qtbot, make_window, docs, real_embedder
):
    settings = Settings(max_answer_tokens=16, context_size=2048, top_k=3)
    window = make_window(settings=settings, embedder_factory=lambda s: real_embedder, llm_factory=default_llm)
    assert window.isVisible()
    qtbot.waitUntil(lambda: window.status.model_label.text().startswith("Model ready"), timeout=TIMEOUT_MS)

    add_and_index(qtbot, window, docs, timeout=TIMEOUT_MS)
    assert window.library_panel.failure_rows() == [(str(docs / "broken.docx"), "File is not valid DOCX")]
    assert "all-MiniLM-L6-v2" in window.library_panel.summary.text()

    pieces: list[str] = []
    window.asker.tokensArrived.connect(pieces.append)
    with qtbot.waitSignal(window.asker.answered, timeout=TIMEOUT_MS) as done:
        window.chat.input.setPlainText("When does the flight to Lisbon leave?")
        qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    answer = done.args[0]
    assert answer.stopped in ("stop", "length")
    assert answer.text and pieces  # streamed; the final text is cleaned, or set aside for the quick answer
    assert answer.text.split()[0].strip("*_#") in window.chat.plain_text()  # rendered from Markdown
    assert any(s.hit.path.endswith("trip.txt") for s in answer.sources)
    assert window.sources.list.count() == len(answer.sources)
    stages = dict(window.timings.bars.stages())
    assert {"embed query", "keyword search", "first token", "generation"} <= stages.keys()
    assert answer.tokens_per_s > 0 and "tokens/s" in window.timings.summary.text()

    # A long answer, stopped as soon as it starts.
    window.apply_settings(dataclasses.replace(window.settings, max_answer_tokens=300))
    pieces.clear()
    window.chat.input.setPlainText(
        "Describe the garden notes and the Lisbon trip in as much detail as you can."
    )
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(pieces), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.asker.answered, timeout=TIMEOUT_MS) as done:
        qtbot.mouseClick(window.chat.stop_button, Qt.MouseButton.LeftButton)
    stopped = done.args[0]
    assert stopped.stopped == "cancelled"
    assert stopped.answer_tokens < 300
    assert "Stopped" in window.chat.plain_text()
