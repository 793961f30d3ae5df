"""Takes the screenshots in docs/ on a real X server, with the bundled models and the sample documents:

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/screenshots/make_screenshots.py

It writes docs/screenshots/{empty-library,first-indexing,first-answer}.png, and the last one again as
docs/screenshot.png (the README's). It runs on a fresh data folder, never the user's.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = (1400, 900)


def main() -> int:
    home = Path(tempfile.mkdtemp(prefix="almanac-shots-"))
    os.environ["ALMANAC_HOME"] = str(home)
    from almanac.app.onboarding import SAMPLE_QUESTIONS
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv[:1])
    app.setApplicationName("Almanac")
    from almanac.app.main_window import MainWindow

    def wait_until(done: Callable[[], bool], timeout_s: float = 300) -> None:
        end = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > end:
                raise TimeoutError("the window did not get there in time")
            app.processEvents()
            time.sleep(0.02)

    def settle(seconds: float = 0.5) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.02)

    def save(name: str) -> Path:
        path = HERE / name
        window.grab().save(str(path))
        print("wrote", path)
        return path

    window = MainWindow()
    window.resize(*SIZE)
    window.show()
    try:
        wait_until(lambda: window.center.currentWidget() is window.welcome and window.asker.model_ready)
        settle()
        save("empty-library.png")

        # While the first run embeds (the embedding model loads at its start, so this lasts a few seconds).
        shot: list[Path] = []

        def on_progress(p: object) -> None:
            if getattr(p, "phase", "") == "embedding" and not shot:
                shot.append(HERE / "first-indexing.png")
                QTimer.singleShot(300, lambda: save("first-indexing.png"))

        window.index.progressChanged.connect(on_progress)
        window.add_samples()
        wait_until(lambda: bool(shot) and not window.index.busy)
        wait_until(lambda: window.suggestions.isVisible())
        settle()

        window.chats.ask(SAMPLE_QUESTIONS[0])
        wait_until(lambda: not window.asker.busy)
        settle(1.0)
        answer = save("first-answer.png")
        shutil.copyfile(answer, HERE.parent / "screenshot.png")
    finally:
        window.close()
        shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
