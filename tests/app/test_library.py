"""The library pane and the index thread: add, index, failures with reasons, remove, pause, cancel."""

from __future__ import annotations

from almanac.core.extractors.worker import SLEEP_ENV
from app_helpers import add_and_index, wait_for_library
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox


def test_added_folder_is_indexed_and_failed_files_show_their_reason(qtbot, make_window, docs):
    window = make_window()
    add_and_index(qtbot, window, docs)
    qtbot.waitUntil(lambda: window.library_panel.folder_rows()[0][3] == "Watching")  # and watched
    rows = window.library_panel.folder_rows()
    assert rows == [["docs", "2", "1", "Watching"]]
    failures = window.library_panel.failure_rows()
    assert len(failures) == 1
    path, reason = failures[0]
    assert path == str(docs / "broken.docx")
    assert "DOCX" in reason
    assert "2 documents" in window.library_panel.summary.text()


def test_progress_is_throttled_not_one_signal_per_file(qtbot, make_window, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        (folder / f"note{i}.txt").write_text(f"Note {i} about topic {i % 7}.", encoding="utf-8")
    window = make_window()
    seen = []
    window.index.progressChanged.connect(seen.append)
    add_and_index(qtbot, window, folder)
    assert window.library_panel.folder_rows()[0][1] == "60"
    assert 1 <= len(seen) < 30  # 60 files and 60 chunks went by
    assert seen[-1].phase == "done"


def test_a_folder_dropped_on_the_window_is_added(qtbot, make_window, docs):
    window = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(docs)), QUrl.fromLocalFile(str(docs / "trip.txt"))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    wait_for_library(qtbot, window, lambda s: len(s.status.folders) == 1 and s.status.documents == 2)
    assert window.sidebar.currentWidget() is window.library_panel


def test_adding_a_missing_folder_says_so(qtbot, make_window, tmp_path):
    window = make_window()
    window.index.add_folders([str(tmp_path / "nowhere")])
    qtbot.waitUntil(lambda: bool(window.shown_messages))
    kind, text = window.shown_messages[0]
    assert kind == "error" and "Folder not found" in text


def test_remove_asks_first_then_removes_the_folder_and_its_index(qtbot, make_window, docs):
    window = make_window()
    add_and_index(qtbot, window, docs)
    window.library_panel.folders.topLevelItem(0).setSelected(True)
    qtbot.mouseClick(window.library_panel.remove_button, Qt.MouseButton.LeftButton)
    box = next(w for w in window.findChildren(QMessageBox) if w.isVisible())
    remove = next(b for b in box.buttons() if b.text() == "Remove")
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)
    wait_for_library(qtbot, window, lambda s: not s.status.folders)
    assert window.library_panel.failure_rows() == []
    assert window.library_panel.empty_hint.isVisibleTo(window.library_panel)


def test_pause_holds_indexing_and_cancel_stops_it(qtbot, make_window, tmp_path, monkeypatch):
    monkeypatch.setenv(SLEEP_ENV, "0.05")  # each file takes 50 ms in the extraction child
    folder = tmp_path / "slow"
    folder.mkdir()
    for i in range(40):
        (folder / f"f{i}.txt").write_text(f"file {i}", encoding="utf-8")
    window = make_window(sync_on_start=False)
    progress = window.status.progress
    window.index.add_folders([str(folder)])
    qtbot.waitUntil(lambda: window.index.busy and progress.isVisible())
    qtbot.waitUntil(lambda: "Reading files" in progress.label.text(), timeout=30_000)
    qtbot.mouseClick(progress.pause_button, Qt.MouseButton.LeftButton)
    assert window.index.paused and progress.pause_button.text() == "Resume"
    qtbot.mouseClick(progress.pause_button, Qt.MouseButton.LeftButton)
    assert not window.index.paused
    with qtbot.waitSignal(window.index.indexFinished, timeout=30_000) as finished:
        qtbot.mouseClick(progress.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == [None]  # cancelled
    qtbot.waitUntil(lambda: not progress.isVisible())
    wait_for_library(qtbot, window, lambda s: s.status.documents < 40)


def test_apply_changes_resyncs_the_folder_holding_the_files(qtbot, make_window, docs):
    window = make_window()
    add_and_index(qtbot, window, docs)
    (docs / "new.md").write_text("# New\n\nA brand new note.", encoding="utf-8")
    window.index.apply_changes([str(docs / "new.md")])
    wait_for_library(qtbot, window, lambda s: s.status.documents == 3)


def test_the_same_problem_shows_one_box(qtbot, make_window, tmp_path):
    window = make_window()
    window.index.add_folders([str(tmp_path / "nowhere")])
    window.index.add_folders([str(tmp_path / "nowhere")])
    qtbot.waitUntil(lambda: window.library_panel._state is not None and not window.index.busy)
    window.index.refresh()
    qtbot.waitUntil(lambda: bool(window.shown_messages))
    boxes = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert len(boxes) == 1 and len(window.shown_messages) == 1


def test_other_writers_run_on_the_index_thread(qtbot, make_window, docs):
    import threading

    window = make_window()
    add_and_index(qtbot, window, docs)
    seen = []
    window.index.run_on_library(
        lambda lib: (threading.current_thread().name, [f.path for f in lib.folders()]), success=seen.append
    )
    qtbot.waitUntil(lambda: bool(seen))
    assert seen == [("almanac-index", [str(docs)])]


def test_reindex_all_is_a_plain_reindex_that_keeps_folders_and_vectors(qtbot, make_window, docs):
    from almanac.core import db, paths

    def snapshot():
        conn = db.open_reader(paths.db_path())
        try:
            return (
                conn.execute("SELECT id, path FROM folders").fetchall(),
                conn.execute("SELECT id, text FROM chunks WHERE embedded = 1 ORDER BY id").fetchall(),
                conn.execute("SELECT rowid, embedding FROM vec_chunks ORDER BY rowid").fetchall(),
            )
        finally:
            conn.close()

    window = make_window()
    add_and_index(qtbot, window, docs)
    before = snapshot()
    assert before[1] and len(before[1]) == len(before[2])
    with qtbot.waitSignal(window.index.indexFinished, timeout=60_000) as finished:
        window.index.rebuild()  # what "Re-index Now" runs after a settings change
    assert finished.args[0] is not None
    qtbot.waitUntil(lambda: not window.index.busy)
    assert snapshot() == before  # same folder ids, same chunks, every vector kept


def test_a_bad_line_in_an_almanacignore_is_listed_with_its_file_and_line(qtbot, make_window, docs):
    (docs / ".almanacignore").write_text("*.log\n!\n")
    (docs / "debug.log").write_text("log line\n")
    window = make_window()
    add_and_index(qtbot, window, docs)
    rows = window.library_panel.failure_rows()
    assert (str(docs / ".almanacignore"), "line 2 is not a valid pattern and is skipped: '!'") in rows
    assert window.library_panel.folder_rows()[0][1] == "2"  # the index run went on; *.log still applies
