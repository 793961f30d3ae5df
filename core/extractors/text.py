"""Plain text and source code: encoding detection, old man-page overstrike, line endings."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

import charset_normalizer

from ..errors import ExtractionError
from .model import Extracted, Section

SNIFF_BYTES = 8192
BINARY_REASON = "Looks like binary data, not text"

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
# Encodings a text file on a desktop is likely in: UTF-8, then the Windows code pages for Western, Central
# European, Cyrillic and Greek text, then the Japanese, Chinese and Korean ones. (Latin-1 is not listed: it
# decodes any byte, so it cannot tell text from noise; Western text in it is valid Windows-1252.)
_LIKELY_ENCODINGS = (
    "utf-8", "cp1252", "cp1250", "cp1251", "cp1253", "cp932", "euc_jp", "gb18030", "big5", "cp949"
)  # fmt: skip
_MAX_DECODE_ERRORS = 0.002  # per byte: a stray bad byte or two in real text, never the 1 %+ of noise
_WESTERN_MARGIN = 0.1  # of charset-normalizer's "chaos" (0 = clean, 1 = noise)
_OVERSTRIKE = re.compile(r"[^\x08\n]\x08")


def has_bom(data: bytes) -> bool:
    return any(data.startswith(bom) for bom, _ in _BOMS)


def sample_is_binary(sample: bytes, *, at_start: bool) -> bool:
    """True when these bytes of a file are not text in any common encoding.

    A NUL byte or many control bytes say so at once. Otherwise the sample must decode, with almost no
    errors, as UTF-8 or one of the common legacy encodings. Random or compressed bytes never do: each of
    these encodings leaves some byte values or pairs undefined, which random data hits at 1-50 % of its
    bytes. (charset-normalizer is no judge here: it reads random high bytes as Korean with no "chaos".) A
    sample from inside a file may begin in the middle of a character, so a few start offsets are tried.
    """
    if not sample:
        return False
    if at_start and has_bom(sample):
        return False  # UTF-16/32 text is full of NUL bytes
    if b"\x00" in sample:
        return True
    if len(sample.translate(None, _TEXT_BYTES)) > 0.3 * len(sample):
        return True
    allowed = _MAX_DECODE_ERRORS * len(sample)
    offsets = (0,) if at_start else (0, 1, 2, 3)
    for encoding in _LIKELY_ENCODINGS:
        for skip in offsets:
            decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
            decoded = decoder.decode(sample[skip:], final=False)
            if decoded.count("\ufffd") <= allowed:
                return False
    return True


def sample_offsets(size: int) -> list[int]:
    """Where to take SNIFF_BYTES samples of a file: its start, middle and end (text with a binary payload
    appended, like a self-extracting shell installer, is binary)."""
    if size <= SNIFF_BYTES:
        return [0]
    return sorted({0, (size - SNIFF_BYTES) // 2, size - SNIFF_BYTES})


def data_is_binary(data: bytes) -> bool:
    """`sample_is_binary` on the samples of a file's bytes; after a BOM only the start is judged."""
    if has_bom(data):
        return False
    return any(
        sample_is_binary(data[at : at + SNIFF_BYTES], at_start=at == 0) for at in sample_offsets(len(data))
    )


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
    if data_is_binary(data):
        raise ExtractionError(BINARY_REASON)
    return clean_text(decode_bytes(data))


def extract_text(path: Path, kind: str = "text") -> Extracted:
    return Extracted(title=path.stem, kind=kind, sections=[Section(text=read_text(path))])
