"""A one-line progress display for terminals (silent when output is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from almanac.core.indexer import PREPARING_WORDS, Progress


class ProgressLine:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr  # looked up now: sys.stderr may have been replaced since import
        self.enabled = self.stream.isatty()
        self._last = 0.0
        self._started = time.monotonic()

    def __call__(self, p: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and p.phase != "done":
            return  # a redraw per file would cost more than the work on fast files
        self._last = now
        if p.phase == "scanning":
            line = "Scanning folders…"
        elif p.phase == "reading":
            line = f"Reading   {_bar(p.files_done, p.files_total)} {p.files_done}/{p.files_total} files"
        elif p.phase == "preparing":
            line = PREPARING_WORDS
        elif p.phase == "building":
            done, total = p.chunks_done, p.chunks_total
            line = f"Building the {p.current} {_bar(done, total)} {done}/{total} chunks"
        elif p.phase == "embedding":
            rate = p.chunks_done / max(now - self._started, 1e-9)
            line = (
                f"Embedding {_bar(p.chunks_done, p.chunks_total)} {p.chunks_done}/{p.chunks_total} chunks"
                f" ({rate:.0f}/s)"
            )
            if p.chunks_done == 0:
                self._started = now
        else:
            line = ""
        self.stream.write("\r\033[K" + line)
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _bar(done: int, total: int, width: int = 24) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "-" * (width - filled) + "]"
