"""Text extraction: turn one file into sections of plain text with page numbers or heading paths.

`extract()` runs in the calling process; use `ExtractionWorker` (worker.py) for files from the user's disk,
since a hostile PDF can hang or crash the parser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import ExtractionError
from .docx import extract_docx
from .html import extract_html
from .image import extract_image
from .kinds import is_binary, kind_of
from .markdown import extract_markdown
from .model import Extracted, Section
from .ocr import OcrOptions, OcrRun
from .pdf import extract_pdf
from .text import extract_text
from .worker import ExtractionWorker

__all__ = [
    "LIGATURES", "Extracted", "ExtractionWorker", "OcrOptions", "OcrRun", "Section", "extract", "is_binary",
    "kind_of",
]

# Typographic ligatures as their letters: LaTeX sets "ﬁ" and "ﬂ" as one glyph, and most papers' PDFs keep it
# in their text ("deﬁne", "ﬁle"), which FTS5 and the embedder read as other words than "define" and "file"
# (814 of them in 8 of the eval library's PDFs). Done here, where the indexer and the preview both read; a
# library read before is mended at its next sync (core.store.mark_ligature_documents).
LIGATURES = str.maketrans(
    {0xFB00: "ff", 0xFB01: "fi", 0xFB02: "fl", 0xFB03: "ffi", 0xFB04: "ffl", 0xFB05: "st", 0xFB06: "st"}
)

_EXTRACTORS: dict[str, Callable[[Path], Extracted]] = {
    "pdf": extract_pdf,
    "markdown": extract_markdown,
    "text": extract_text,
    "code": lambda path: extract_text(path, kind="code"),
    "html": extract_html,
    "docx": extract_docx,
}


def extract(path: Path, ocr: OcrRun | None = None) -> Extracted:
    """Read one file; raises ExtractionError with a plain-language reason when it cannot be read.

    `ocr`: read scanned PDF pages and images by OCR (the worker passes it); None leaves scans out."""
    path = Path(path)
    kind = kind_of(path)
    if kind is None:
        raise ExtractionError("Unsupported file type")
    try:
        if kind == "pdf":
            result = extract_pdf(path, ocr)
        elif kind == "image":
            result = extract_image(path, ocr)
        else:
            result = _EXTRACTORS[kind](path)
    except OSError as err:
        raise ExtractionError(f"Could not open file ({err.strerror or err})") from err
    result.title = result.title.translate(LIGATURES)
    for section in result.sections:
        section.text = section.text.translate(LIGATURES)
        section.heading = section.heading.translate(LIGATURES)
    result.sections = [section for section in result.sections if section.text.strip()]
    if not result.sections:
        raise ExtractionError("No text found")
    return result
