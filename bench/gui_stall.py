"""GUI responsiveness: how long the GUI thread's event loop stalls while indexing and while answering.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m bench.gui_stall [--quick]

The real MainWindow with the real models (bundled embedder and LLM), on a private data directory and index.
A 10 ms QTimer heartbeat runs on the GUI thread; a gap between beats longer than 10 ms is time the event loop
could not run (input and repaint wait that long). Phases, one after the other:
  idle       the shown window doing nothing for 10 s (after 3 s to settle): the baseline, in the same run
  indexing   add a folder (the eval docs' Markdown and LuaJIT HTML + the Bitcoin PDF, 32 files; --quick: the
             first 100 SciFact abstracts) and wait for the run to finish (both phases)
  answering  two questions about it, the first one loading the LLM (cold), the second one warm
Reported per phase: beats, gap p50 / p99 / max, gaps over 100 ms, and p99 and max as ratios to idle.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from .common import table
from .util import docs_subset_folder, header, pct, ratio, scifact_subset_folder

QUESTIONS = ("How do I set a timeout on an HTTPX client?", "What does the LuaJIT FFI library do?")
TIMEOUT_S = 1800


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="index 100 SciFact abstracts instead")
    args = p.parse_args()
    if args.quick:
        folder = scifact_subset_folder(100)
        questions = ("Does vitamin D affect bone density?", "What causes antibiotic resistance?")
    else:
        folder = docs_subset_folder(
            "docs-quick",
            lambda rel: rel.startswith("markdown/") or rel.startswith("html/luajit") or rel == "pdf/bitcoin-whitepaper.pdf",
        )
        questions = QUESTIONS
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    home = tempfile.mkdtemp(prefix="almanac-gui-")
    os.environ["ALMANAC_HOME"] = home  # conversations, ui.ini and the index stay out of the user's data
    os.environ["XDG_CONFIG_HOME"] = home

    from almanac.app.main_window import MainWindow
    from almanac.core.settings import Settings
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    print(header("GUI responsiveness (bench/gui_stall.py)"))
    window = MainWindow(settings=Settings(), db_path=Path(home) / "index.db", sync_on_start=False, load_model=False)
    window.show()

    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))

    def wait_until(done, timeout_s: float = TIMEOUT_S) -> float:
        loop = QEventLoop()
        poll = QTimer()
        poll.setInterval(20)
        start = time.perf_counter()

        def check() -> None:
            if done() or time.perf_counter() - start > timeout_s:
                loop.quit()

        poll.timeout.connect(check)
        poll.start()
        loop.exec()
        poll.stop()
        return time.perf_counter() - start

    def phase(name: str, action, done) -> list:
        beats.clear()
        heartbeat.start()
        action()
        took = wait_until(done)
        heartbeat.stop()
        gaps = [(b - a) * 1000 for a, b in zip(beats, beats[1:], strict=False)]
        return [name, took, len(beats), pct(gaps, 50), pct(gaps, 99), max(gaps, default=float("nan")),
                sum(g > 100 for g in gaps)]

    wait_until(lambda: window.library_panel._state is not None, 120)  # the library is open
    settle = time.perf_counter()
    wait_until(lambda: time.perf_counter() - settle > 3)  # start-up layout and first paints are not "idle"
    start = time.perf_counter()
    rows = [phase("idle (baseline)", lambda: None, lambda: time.perf_counter() - start > 10)]
    state = {"answers": 0}
    window.asker.answered.connect(lambda _a: state.__setitem__("answers", state["answers"] + 1))
    window.asker.askFailed.connect(lambda _e: state.__setitem__("answers", state["answers"] + 1))

    def indexed() -> bool:
        st = window.library_panel._state
        return st is not None and any(f.path == str(folder) for f in st.status.folders) and not window.index.busy

    rows.append(phase("indexing", lambda: window.index.add_folders([str(folder)]), indexed))
    for i, (label, q) in enumerate(zip(("answering, cold (LLM load)", "answering, warm"), questions, strict=True)):
        rows.append(phase(label, lambda q=q: window.chats.ask(q), lambda i=i: state["answers"] > i and not window.asker.busy))
    window.close()
    app.processEvents()

    idle = rows[0]
    out = [[*r[:2], r[2], r[3], r[4], r[5], r[6], ratio(r[4], idle[4]), ratio(r[5], idle[5])] for r in rows]
    print(f"folder: {folder.name}, {sum(1 for _ in folder.rglob('*') if _.is_file()) - 1} files; 10 ms heartbeat on the GUI thread")
    print(table(["phase", "seconds", "beats", "gap p50 ms", "gap p99 ms", "max gap ms", "gaps > 100 ms",
                 "p99 / idle p99", "max / idle max"], out))


if __name__ == "__main__":
    main()
