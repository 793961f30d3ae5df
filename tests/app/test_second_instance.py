"""A second app on the same data folder says who has it and quits: never two writers on one index."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from almanac.app import main
from almanac.core import paths
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

HOLD_WRITER = textwrap.dedent(
    """
    import sys
    from almanac.core.embedding import HashEmbedder
    from almanac.core.library import Library
    from almanac.core.settings import Settings

    lib = Library(sys.argv[1], settings=Settings(), embedder=HashEmbedder())
    print("ready", flush=True)
    sys.stdin.read()
    """
)


def test_a_second_app_on_the_same_data_folder_says_who_has_it(qtbot):
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(paths.db_path())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )
    try:
        assert writer.stdout.readline().strip() == b"ready", writer.stderr.read().decode()
        app = QApplication.instance()
        shown: list[str] = []

        def answer_the_box() -> None:
            boxes = [
                w
                for w in app.topLevelWidgets()
                if isinstance(w, QMessageBox) and w.isVisible() and w.windowTitle() == "Almanac is already running"
            ]
            if not boxes:
                QTimer.singleShot(50, answer_the_box)
                return
            shown.append(boxes[0].text())
            next(b for b in boxes[0].buttons() if b.text() == "Quit").click()

        QTimer.singleShot(50, answer_the_box)
        assert main.already_running() is True
        assert "Another Almanac is already using the library" in shown[0]
        assert f"process {writer.pid}" in shown[0]
    finally:
        writer.kill()
        writer.wait()
    assert main.already_running() is False  # the lock went with the process
