"""Folder watching in the window: new files are indexed by themselves, the pane shows it, pausing holds."""

from __future__ import annotations

import pytest
from almanac.core.watch import FolderWatcher
from app_helpers import add_and_index, wait_for_library
from PySide6.QtCore import Qt

NOTE = "# Harbour\n\nThe ferry to Cacilhas leaves from Cais do Sodré every twenty minutes.\n"


def fast_watcher(lib):
    return FolderWatcher(
        lib.folders(),
        lib.indexer.rules_for,
        debounce_s=0.2,
        settle_s=0.1,
        check_interval_s=0.5,
        exclude=[str(lib.db_path)],
    )


@pytest.fixture
def watched(qtbot, make_window, docs):
    """A window watching `docs`, indexed and shown as watched."""
    window = make_window(watcher_factory=fast_watcher)
    add_and_index(qtbot, window, docs)
    qtbot.waitUntil(lambda: window.library_panel.folder_rows()[0][3] == "Watching", timeout=10_000)
    return window


def status_column(window) -> str:
    return window.library_panel.folder_rows()[0][3]


def test_a_new_file_is_indexed_and_searchable_without_any_action(qtbot, watched, docs):
    window = watched
    assert "Watching 1 folder" in window.library_panel.watch_label.text()
    (docs / "harbour.md").write_text(NOTE, encoding="utf-8")
    wait_for_library(
        qtbot, window, lambda s: s.status.documents == 3 and s.status.embedded == s.status.chunks, 10_000
    )
    assert window.library_panel.folder_rows()[0][1] == "3"
    qtbot.waitUntil(lambda: "added docs/harbour.md" in window.library_panel.watch_label.text(), timeout=5_000)
    assert not window.index.busy  # applied by the watcher's tick, not a whole index run

    with qtbot.waitSignal(window.asker.answered, timeout=30_000) as done:
        window.chat.input.setPlainText("When does the ferry to Cacilhas leave?")
        qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    assert done.args[0].sources[0].hit.path == str(docs / "harbour.md")

    (docs / "harbour.md").unlink()
    wait_for_library(qtbot, window, lambda s: s.status.documents == 2, 10_000)


def test_paused_watching_holds_changes_and_resume_catches_up(qtbot, watched, docs):
    window = watched
    qtbot.mouseClick(window.library_panel.watch_button, Qt.MouseButton.LeftButton)
    assert window.index.watch_paused and window.watch_action.isChecked()
    assert window.library_panel.watch_button.text() == "Resume Watching"
    qtbot.waitUntil(lambda: status_column(window).startswith("Paused"))

    (docs / "harbour.md").write_text(NOTE, encoding="utf-8")
    qtbot.waitUntil(lambda: status_column(window).startswith("Paused · "), timeout=5_000)  # noted
    assert "waiting" in window.library_panel.watch_label.text()
    with qtbot.assertNotEmitted(window.index.watchApplied, wait=1_500):  # 7x the debounce: held
        pass
    assert window.library_panel._state.status.documents == 2

    window.watch_action.trigger()  # resume, from the menu this time
    assert not window.index.watch_paused and not window.library_panel.watch_button.isChecked()
    wait_for_library(qtbot, window, lambda s: s.status.documents == 3, 10_000)
    qtbot.waitUntil(lambda: status_column(window) == "Watching", timeout=5_000)


def test_a_removed_folder_is_no_longer_watched(qtbot, watched, docs):
    window = watched
    window.index.remove_folder(str(docs))
    wait_for_library(qtbot, window, lambda s: not s.status.folders)
    qtbot.waitUntil(lambda: window.index.watch_states == {})
    (docs / "harbour.md").write_text(NOTE, encoding="utf-8")
    with qtbot.assertNotEmitted(window.index.watchApplied, wait=1_000):
        pass
    assert not window.library_panel.watch_button.isVisible()
