"""The text of a source's whole document, for the preview: read off the GUI thread, in the extraction child.

Chunk offsets are into a document's extracted sections joined with `SECTION_JOIN`, so the preview extracts
the file the way the indexer did and shows the passage at the hit's offsets. The file is parsed where the
indexer parses it, in core's time-boxed, memory-capped extraction process (core.extractors.worker): a
hostile file can stall or crash that child, never the app. PDFs are not read here: QtPdf shows their pages.
The last few texts are kept, keyed by path, size and modification time.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from almanac.core.errors import AlmanacError
from almanac.core.extractors import ExtractionWorker, kind_of
from almanac.core.indexer import SECTION_JOIN
from almanac.core.store import path_from_db
from PySide6.QtCore import QObject

from .jobs import FailureFn, JobThread

MAX_BYTES = 20_000_000  # a bigger file previews as its passage only
CACHE_SIZE = 8
TIMEOUT_S = 30.0  # a preview that takes longer is not worth waiting for: the passage stays

TextLoader = Callable[[str, Callable[[str | None], None]], None]


def document_text(path: str, worker: ExtractionWorker) -> str | None:
    """The extracted text of `path` (sections joined as the indexer joins them); None when it cannot be
    read now (moved, unreadable, too big, a PDF, too slow). Blocks the calling thread while `worker` reads."""
    p = Path(path_from_db(path))  # a search hit carries a file name as stored (core.store.path_to_db)
    if kind_of(p) in (None, "pdf"):
        return None
    try:
        if p.stat().st_size > MAX_BYTES:
            return None
        return SECTION_JOIN.join(section.text for section in worker.extract(p).sections)
    except (OSError, AlmanacError):  # gone or changed since it was indexed: the passage still shows
        return None


class DocumentTexts(QObject):
    """`request(path, done)` from the GUI thread; `done(text or None)` runs there, soon."""

    def __init__(self, *, on_error: FailureFn, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cache: OrderedDict[tuple[str, int, int], str | None] = OrderedDict()  # preview thread only
        # Its child starts at the first preview (its imports take a moment, once) and stays for the next.
        self._worker = ExtractionWorker(timeout_s=TIMEOUT_S)
        self._jobs = JobThread("almanac-preview", on_error=on_error, parent=self)

    def request(self, path: str, done: Callable[[str | None], None]) -> None:
        self._jobs.submit(lambda: self._load(path), success=done)

    def shutdown(self) -> None:
        self._worker.abort()  # a preview being read ends now, not at its timeout
        self._jobs.stop(self._worker.close)

    def _load(self, path: str) -> str | None:
        try:
            st = os.stat(path_from_db(path))
        except OSError:
            return None
        key = (path, st.st_size, st.st_mtime_ns)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        text = document_text(path, self._worker)
        self._cache[key] = text
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return text
