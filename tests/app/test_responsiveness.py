"""The GUI thread keeps running while a folder is indexed: a 10 ms heartbeat never stalls for long."""

from __future__ import annotations

import time

from app_helpers import add_and_index
from PySide6.QtCore import QTimer

MAX_GAP_S = 0.25  # generous for a loaded two-core machine; a blocked GUI thread would take seconds


def test_gui_thread_never_blocks_while_indexing(qtbot, make_window, tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(50):
        body = "\n\n".join(
            f"Paragraph {p} of note {i}: " + " ".join(f"word{(i * p + w) % 97}" for w in range(60))
            for p in range(8)
        )
        (folder / f"note{i:02}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    window = make_window(sync_on_start=False)
    qtbot.waitUntil(lambda: window.library_panel._state is not None)  # the library is open

    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: beats.append(time.monotonic()))
    heartbeat.start()
    add_and_index(qtbot, window, folder)
    heartbeat.stop()

    assert window.library_panel.folder_rows()[0][1] == "50"
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    assert len(beats) > 10
    assert max(gaps) < MAX_GAP_S, f"the GUI thread stalled for {max(gaps) * 1000:.0f} ms"
