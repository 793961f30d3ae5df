"""The extracted-document types and helpers shared by the format modules."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_MAX_TITLE = 200


@dataclass
class Section:
    """A run of text with where it came from, so a search hit can point at a page or heading."""

    text: str
    page: int | None = None  # 1-based page number for PDFs (and multi-page scans), None otherwise
    heading: str = ""  # heading path like "Install > Linux", "" when the format has none


@dataclass
class OcrStats:
    """What OCR did for one file (extractors/ocr.py)."""

    pages_ocr: int = 0  # pages the engine read now
    pages_cached: int = 0  # pages taken from the OCR cache (the same bytes were read before)
    skipped: list[str] = field(default_factory=list)  # why scanned pages were left out, for the user


@dataclass
class Extracted:
    """One file's text, split into sections in document order."""

    title: str
    kind: str  # "pdf" | "markdown" | "text" | "html" | "docx" | "code" | "image"
    sections: list[Section] = field(default_factory=list)
    ocr: OcrStats | None = None  # set when some page needed OCR
    unread_scans: int = 0  # scanned pages left out: OCR off, past its page limit, or its engine missing


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(extracted: Extracted) -> Extracted:
    """Replace lone surrogates (a title taken from an undecodable file name, a PDF's broken character map)
    with U+FFFD: SQLite text must be UTF-8. One character for one keeps every offset."""
    extracted.title = _LONE_SURROGATE.sub("\ufffd", extracted.title)
    for section in extracted.sections:
        section.text = _LONE_SURROGATE.sub("\ufffd", section.text)
        section.heading = _LONE_SURROGATE.sub("\ufffd", section.heading)
    return extracted


def clean_title(title: object) -> str:
    """Single-line, bounded title; "" for anything that is not usable text."""
    if not isinstance(title, str):
        return ""
    return re.sub(r"\s+", " ", title).strip()[:_MAX_TITLE]


class SectionBuilder:
    """Collects lines into one section per heading, each labelled with its heading path.

    A heading with no text of its own before the next heading is not kept as a section (it would be an
    index entry with nothing to find), but it stays in the path of the sections below it.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._lines: list[str] = []
        self._has_body = False
        self._sections: list[Section] = []
        self._heading_only: list[Section] = []

    def heading(self, level: int, title: str, line: str | None = None) -> None:
        """Start a section under `title`; `line` is how the heading appears in the text (default: title)."""
        self._flush()
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, title))
        self._lines = [title if line is None else line]
        self._has_body = False

    def add(self, line: str) -> None:
        self._lines.append(line)
        if line.strip():
            self._has_body = True

    def build(self) -> list[Section]:
        self._flush()
        # A document made only of headings still has text worth finding.
        return self._sections or self._heading_only

    def _flush(self) -> None:
        text = "\n".join(self._lines).strip("\n")
        if text.strip():
            path = " > ".join(title for _, title in self._stack if title)
            target = self._sections if self._has_body or not self._stack else self._heading_only
            target.append(Section(text=text, page=None, heading=path))
        self._lines = []
        self._has_body = False
