"""The settings dialog round-trips through Settings.save(), and index-changing settings offer a re-index."""

from __future__ import annotations

from almanac.core.settings import Settings
from app_helpers import FakeLLM, add_and_index
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox


def accept(qtbot, dialog) -> None:
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok), Qt.MouseButton.LeftButton)


def visible_box(window) -> QMessageBox:
    return next(w for w in window.findChildren(QMessageBox) if w.isVisible())


def test_settings_round_trip(qtbot, make_window, tmp_path):
    loaded: list[str] = []
    window = make_window(llm_factory=lambda s: (loaded.append(s.llm_path), FakeLLM())[1])
    dialog = window.open_settings()
    assert dialog.llm_path.edit.placeholderText().startswith("Bundled")
    model = tmp_path / "model.gguf"
    dialog.llm_path.edit.setText(str(model))
    dialog.context_size.setValue(2048)
    dialog.threads.setValue(3)
    dialog.gpu_layers.setValue(7)
    dialog.top_k.setValue(8)
    dialog.ignore_patterns.setPlainText("*.log\n\n  drafts/  \n")
    accept(qtbot, dialog)

    saved = Settings.load()
    assert saved.llm_path == str(model)
    assert (saved.context_size, saved.threads, saved.gpu_layers, saved.top_k) == (2048, 3, 7, 8)
    assert saved.ignore_patterns == ["*.log", "drafts/"]
    assert saved.chunk_tokens == Settings().chunk_tokens  # untouched fields keep their values
    qtbot.waitUntil(lambda: window._settings_dialog is None)

    again = window.open_settings()
    assert again.llm_path.edit.text() == str(model)
    assert again.context_size.value() == 2048 and again.threads.value() == 3
    assert again.gpu_layers.value() == 7 and again.top_k.value() == 8
    assert again.ignore_patterns.toPlainText() == "*.log\ndrafts/"
    again.reject()
    qtbot.waitUntil(lambda: loaded == ["", str(model)])  # the new model is loaded in the background


def test_changing_the_chunk_size_offers_a_rebuild(qtbot, make_window, docs):
    window = make_window()
    add_and_index(qtbot, window, docs)
    dialog = window.open_settings()
    dialog.chunk_tokens.setValue(64)
    accept(qtbot, dialog)
    assert Settings.load().chunk_tokens == 64
    box = visible_box(window)
    assert "Re-index" in box.windowTitle()
    with qtbot.waitSignal(window.index.indexFinished, timeout=60_000) as finished:
        qtbot.mouseClick(
            next(b for b in box.buttons() if b.text() == "Re-index Now"), Qt.MouseButton.LeftButton
        )
    report = finished.args[0]
    assert report is not None and report.indexed == 2  # every file re-chunked, not only changed ones
    qtbot.waitUntil(lambda: not window.index.busy)
    assert window.library_panel.folder_rows()[0][1] == "2"


def test_a_new_embedding_model_gets_a_new_embedder_and_a_reindex(qtbot, make_window, docs, hash_embedder):
    made: list[str] = []

    def factory(settings):
        made.append(settings.embedding_model)
        return hash_embedder

    window = make_window(embedder_factory=factory)
    add_and_index(qtbot, window, docs)
    dialog = window.open_settings()
    dialog.embedding_model.edit.setText("/models/other")
    accept(qtbot, dialog)
    with qtbot.waitSignal(window.index.indexFinished, timeout=60_000):
        qtbot.mouseClick(
            next(b for b in visible_box(window).buttons() if b.text() == "Re-index Now"),
            Qt.MouseButton.LeftButton,
        )
    assert made == ["", "/models/other"]


def test_later_keeps_the_index_and_saves_the_setting(qtbot, make_window, docs):
    window = make_window()
    add_and_index(qtbot, window, docs)
    dialog = window.open_settings()
    dialog.chunk_tokens.setValue(96)
    accept(qtbot, dialog)
    qtbot.mouseClick(
        next(b for b in visible_box(window).buttons() if b.text() == "Later"), Qt.MouseButton.LeftButton
    )
    window.index.refresh()
    qtbot.waitUntil(lambda: not window.index.busy)
    assert window.library_panel.folder_rows()[0][1] == "2"
    assert Settings.load().chunk_tokens == 96


def test_answer_length_and_time_limit_are_edited_and_range_checked(qtbot, make_window):
    from almanac.core.settings import RANGES

    window = make_window()
    dialog = window.open_settings()
    tokens, timeout = dialog.max_answer_tokens, dialog.answer_timeout_s
    assert (tokens.minimum(), tokens.maximum()) == RANGES["max_answer_tokens"]
    assert (timeout.minimum(), timeout.maximum()) == RANGES["answer_timeout_s"]
    dialog.max_answer_tokens.setValue(100_000)  # a spin box keeps it in range
    assert dialog.max_answer_tokens.value() == RANGES["max_answer_tokens"][1]
    dialog.max_answer_tokens.setValue(200)
    dialog.answer_timeout_s.setValue(45)
    accept(qtbot, dialog)
    saved = Settings.load()
    assert (saved.max_answer_tokens, saved.answer_timeout_s) == (200, 45.0)
    assert (window.settings.max_answer_tokens, window.settings.answer_timeout_s) == (200, 45.0)


def test_out_of_range_values_in_the_file_load_as_defaults(data_dir):
    import json

    from almanac.core import paths

    defaults = Settings()
    for tokens, timeout in ((0, 1.0), (10**9, 10**7), (-5, -1)):
        values = {"max_answer_tokens": tokens, "answer_timeout_s": timeout, "top_k": 7}
        paths.settings_path().write_text(json.dumps(values), encoding="utf-8")
        loaded = Settings.load()
        assert (loaded.max_answer_tokens, loaded.answer_timeout_s) == (
            defaults.max_answer_tokens,
            defaults.answer_timeout_s,
        )
        assert loaded.top_k == 7  # the other values are kept
    values = {"max_answer_tokens": 64, "answer_timeout_s": 30}
    paths.settings_path().write_text(json.dumps(values), encoding="utf-8")
    assert (Settings.load().max_answer_tokens, Settings.load().answer_timeout_s) == (64, 30.0)
