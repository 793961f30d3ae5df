"""Insights, feedback and the drift banner: real query log, real index (hash embedder), offscreen Qt."""

from __future__ import annotations

import time

import pytest
from almanac.app.drift_banner import DriftBanner
from almanac.app.feedback import FeedbackPair
from almanac.app.insights_controller import InsightsController
from almanac.app.insights_view import InsightsView
from almanac.core.drift import Signal as DriftSignal
from almanac.core.library import Library
from almanac.core.querylog import QueryRecord, open_query_log


@pytest.fixture
def indexed(docs, tmp_path, hash_embedder, settings):
    db = tmp_path / "index.db"
    with Library(db, settings=settings, embedder=hash_embedder) as lib:
        lib.add_folder(docs)
        lib.index()
    return db


@pytest.fixture
def controller(qtbot, indexed, settings, hash_embedder):
    errors = []
    c = InsightsController(db_path=indexed, settings=settings, on_error=errors.append)
    c.set_embedder(hash_embedder)
    yield c
    c.shutdown()
    assert not errors


def test_insights_load_and_draw(qtbot, controller, settings):
    qlog = open_query_log(settings)
    now = time.time()
    for i in range(5):
        qlog.record(QueryRecord(kind="ask", question=f"q{i}", mode="hybrid", ts=now - i * 3600, relevant=True,
                                cited=1, answer_tokens=20, stages_ms={"first token": 900.0 + i, "total": 1.0}))
    qlog.close()
    with qtbot.waitSignal(controller.loaded, timeout=20_000) as blocker:
        controller.load("7d")
    data = blocker.args[0]
    assert data.summary["asks"] == 5 and data.summary["retrieval_hit_rate"] == 1.0
    assert {s["name"] for s in data.drift} == {"self_eval_drop", "score_shift", "query_drift", "not_in_files_rise"}
    view = InsightsView()
    qtbot.addWidget(view)
    view.load(data)
    assert "5</b> queries" in view.figures.text()
    assert view.latency.getPlotItem().listDataItems()  # a line was drawn
    with qtbot.waitSignal(view.refresh_requested) as asked:
        view.period.setCurrentIndex(1)
    assert asked.args == ["30d"]


def test_feedback_reaches_the_log(qtbot, controller, settings):
    qlog = open_query_log(settings)
    qid = qlog.record(QueryRecord(kind="ask", question="q", mode="hybrid", stages_ms={}))
    qlog.close()
    pair = FeedbackPair()
    qtbot.addWidget(pair)
    pair.changed.connect(lambda v: controller.feedback(qid, v))
    with qtbot.waitSignal(pair.changed) as got:
        pair.up.click()
    assert got.args == [1] and pair.value == 1
    pair.down.click()
    assert pair.value == -1 and not pair.up.isChecked()
    controller.source_feedback(qid, 2, 7, True)
    with qtbot.waitSignal(controller.loaded, timeout=20_000) as blocker:
        controller.load("7d")
    fb = blocker.args[0].summary["feedback"]
    assert (fb["up"], fb["down"], fb["sources_helped"]) == (0, 1, 1)
    pair.down.click()  # clicking the checked one clears it
    assert pair.value == 0


def test_self_evaluation_runs_after_indexing_when_due(qtbot, controller, settings):
    with qtbot.waitSignal(controller.driftChecked, timeout=60_000) as checked:
        controller.after_indexing()
    assert any(s.name == "self_eval_drop" for s in checked.args[0])
    runs = open_query_log(settings).self_eval_runs()
    # Two short documents are too few for a known-item set: nothing is recorded, and nothing crashes.
    assert all(r.items > 0 for r in runs)


def test_drift_banner(qtbot):
    banner = DriftBanner()
    qtbot.addWidget(banner)
    banner.show()
    calm = [DriftSignal("score_shift", False, 0.5, 0.5, "t", "unchanged")]
    banner.show_signals(calm)
    assert banner.isHidden()
    tripped = [DriftSignal("query_drift", True, 0.4, 0.2, "t", "questions moved away from the library")]
    banner.show_signals(tripped)
    assert not banner.isHidden() and "moved away" in banner.label.text()
    with qtbot.waitSignal(banner.openInsights):
        banner.details.click()
    banner.dismiss.click()
    banner.show_signals(tripped)  # dismissed: stays hidden while the same signal is tripped
    assert banner.isHidden()
    banner.show_signals(calm)
    banner.show_signals(tripped)  # cleared, then tripped again: shown again
    assert not banner.isHidden()


# -- in the window -------------------------------------------------------------------------------------------


def test_window_feedback_insights_and_history(qtbot, make_window, docs, settings):
    from app_helpers import FakeLLM, add_and_index
    from PySide6.QtCore import Qt, QUrl

    window = make_window(llm_factory=lambda s: FakeLLM("The flight leaves at 7:40 from gate 12 [1]."))
    add_and_index(qtbot, window, docs)
    with qtbot.waitSignal(window.asker.answered, timeout=60_000) as done:
        window.chat.input.setPlainText("When does the flight to Lisbon leave?")
        qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    answer = done.args[0]
    assert answer.query_id is not None
    qtbot.waitUntil(lambda: window.chats.current.turns[0].answer is not None, timeout=10_000)

    window.chat.transcript.anchorClicked.emit(QUrl("feedback:0/1"))  # 👍
    assert window.chats.current.turns[0].feedback == 1
    assert "Helpful" in window.chat.plain_text()
    window.sources.list.setCurrentRow(0)
    window.sources.helped.down.click()  # "Didn't help" on source [1]
    assert window.chats.current.turns[0].source_feedback == {1: -1}

    dialog = window.open_insights()
    with qtbot.waitSignal(window.insights.loaded, timeout=30_000) as loaded:
        window.insights.load("7d")
    summary = loaded.args[0].summary
    assert summary["asks"] == 1 and summary["feedback"]["up"] == 1
    assert summary["feedback"]["sources_not_helped"] == 1
    assert "1</b> queries" in dialog.view.figures.text()

    # The feedback is kept with the chat across a restart.
    store_turn = window.chats.store.load(window.chats.current).turns[0]
    assert store_turn.feedback == 1 and store_turn.source_feedback == {1: -1}

    settings_dialog = window.open_settings()
    settings_dialog.log_question_text.setChecked(False)
    settings_dialog.clear_history.click()
    settings_dialog.accept()
    assert window.settings.log_question_text is False
    counts = []
    window.insights.loaded.connect(lambda data: counts.append(data.summary["queries"]))

    def cleared() -> bool:
        window.insights.load("7d")
        qtbot.waitUntil(lambda: bool(counts), timeout=30_000)
        return counts.pop() == 0

    qtbot.waitUntil(cleared, timeout=60_000)
