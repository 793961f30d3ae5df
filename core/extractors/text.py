"""Plain text and source code: encoding detection, old man-page overstrike, line endings."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import charset_normalizer

from ..errors import ExtractionError
from .model import Extracted, Section

SNIFF_BYTES = 8192

# UTF-32 before UTF-16: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Bytes that occur in text files (the heuristic `file` uses): printable, whitespace, BEL, BS, ESC.
_TEXT_BYTES = bytes({7, 8, 9, 10, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})
_WESTERN_MARGIN = 0.1  # of charset-normalizer's "chaos" (0 = clean, 1 = noise)
_OVERSTRIKE = re.compile(r"[^\x08\n]\x08")


def looks_binary(head: bytes) -> bool:
    """True when the first bytes of a file are not text: a NUL byte, or mostly control bytes."""
    if not head or any(head.startswith(bom) for bom, _ in _BOMS):
        return False  # UTF-16/32 text is full of NUL bytes
    if b"\x00" in head:
        return True
    return len(head.translate(None, _TEXT_BYTES)) > 0.3 * len(head)


def decode_bytes(data: bytes) -> str:
    """Decode with a BOM if there is one, else UTF-8, else whatever charset-normalizer finds most likely."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        # Passed the binary sniff, so it is text in some 8-bit code page; Windows-1252 loses least.
        return data.decode("cp1252", errors="replace")
    # On short Western text the detector often ranks a Baltic or Mac code page first by a hair; a text
    # that reads as well in Windows-1252 almost always is Windows-1252 (or Latin-1).
    western = next((m for m in matches if m.encoding == "cp1252"), None)
    if western is not None and western.chaos <= best.chaos + _WESTERN_MARGIN:
        return str(western)
    return str(best)


def clean_text(text: str) -> str:
    """LF line endings, no backspace overstrike ("_\\bX" and "X\\bX" both mean X in nroff output)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\x08" in text:
        text = _OVERSTRIKE.sub("", text).replace("\x08", "")
    return text


def read_text(path: Path) -> str:
    data = path.read_bytes()
    if looks_binary(data[:SNIFF_BYTES]):
        raise ExtractionError("File looks binary, not text")
    return clean_text(decode_bytes(data))


def extract_text(path: Path, kind: str = "text") -> Extracted:
    return Extracted(title=path.stem, kind=kind, sections=[Section(text=read_text(path))])
