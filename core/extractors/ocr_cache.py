"""OCR results kept by content hash, so an unchanged scan is never OCR'd twice, also after a rename or copy.

One small JSON file per scanned file (named by the hash of its bytes) holds its pages' lines, their boxes and
where each word of a line starts and ends (the preview marks matched words with them). It is written by the
extraction worker child only, page by page, through a temporary file and an atomic rename: a crash or
a kill never leaves half an entry, and the pages done before a timeout are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .. import paths

log = logging.getLogger(__name__)


Box = tuple[float, float, float, float]


@dataclass
class OcrLine:
    """One recognised line and where it is: (left, top, right, bottom) as fractions of the page.

    `words`: the left and right edge (fractions of the page's width) of each whitespace-separated word of
    `text`, as the engine placed them; empty when not known (entries cached before words were kept).
    """

    text: str
    box: Box
    words: tuple[tuple[float, float], ...] = ()

    def word_boxes(self) -> list[tuple[str, Box]]:
        """Each word of the line with its box; where the engine gave no word edges, the line's width is
        shared out by characters (close enough to mark a word in a preview)."""
        words = self.text.split()
        left, top, right, bottom = self.box
        if len(self.words) == len(words):
            return [(word, (a, top, b, bottom)) for word, (a, b) in zip(words, self.words, strict=True)]
        out, pos, per_char = [], 0, (right - left) / max(len(self.text), 1)
        for word in words:
            start = self.text.index(word, pos)
            pos = start + len(word)
            out.append((word, (left + start * per_char, top, left + pos * per_char, bottom)))
        return out


def default_cache_dir() -> Path:
    """Where the indexer keeps OCR results (and the preview finds its word boxes): in the data folder."""
    return paths.data_dir() / "ocr-cache"


def content_hash(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


class OcrCache:
    """The cached pages of one file; a no-op when there is no cache folder."""

    def __init__(self, entry: Path | None, engine: str) -> None:
        self._entry = entry
        self._engine = engine
        self._pages: dict[str, list] = {}
        if entry is None:
            return
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            if data.get("engine") == engine and isinstance(data.get("pages"), dict):
                self._pages = data["pages"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as err:  # a damaged entry is re-made, not trusted
            log.warning("OCR cache entry %s is unreadable (%s); the file is OCR'd again", entry, err)

    @classmethod
    def open(cls, cache_dir: str, path: Path, engine: str) -> OcrCache:
        if not cache_dir:
            return cls(None, engine)
        digest = content_hash(path)
        return cls(Path(cache_dir) / digest[:2] / f"{digest}.json", engine)

    def get(self, page: int) -> list[OcrLine] | None:
        raw = self._pages.get(str(page))
        if raw is None:
            return None
        try:
            return [_line(*row) for row in raw]
        except (TypeError, ValueError):
            return None

    def put(self, page: int, lines: list[OcrLine]) -> None:
        if self._entry is None:
            return
        self._pages[str(page)] = [[line.text, *line.box, [list(w) for w in line.words]] for line in lines]
        try:
            self._entry.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._entry.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"engine": self._engine, "pages": self._pages}), encoding="utf-8")
            os.replace(tmp, self._entry)
        except OSError as err:  # a full disk costs a re-OCR later, never this file's text
            log.warning("OCR cache entry %s cannot be written (%s)", self._entry, err)


def _line(text: str, a: float, b: float, c: float, d: float, words: list | None = None) -> OcrLine:
    edges = tuple((float(left), float(right)) for left, right in words or ())
    return OcrLine(str(text), (float(a), float(b), float(c), float(d)), edges)
