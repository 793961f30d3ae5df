"""PDF: one section per page with text, via pypdf; pages without a text layer (scans) through OCR."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pypdf import PdfReader

from ..errors import ExtractionError
from .model import Extracted, Section, clean_title
from .ocr import MIN_PAGE_CHARS, OcrRun, OcrUnavailable, ocr_pages, page_text, render_pdf_page

# pypdf logs a warning for every small spec violation, which real-world PDFs are full of.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_HYPHEN_BREAK = re.compile(r"([^\W\d_])-\n[ \t]*([^\W\d_])")
_SPACES = re.compile(r"[ \t\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_TITLE_JUNK = {"untitled", "untitled document", "title", "document"}


def _join_hyphen(match: re.Match[str]) -> str:
    # "exam-\nple" is one word broken at the margin; "Jean-\nPaul" keeps its hyphen.
    first, second = match.group(1), match.group(2)
    return first + second if second.islower() else f"{first}-{second}"


def normalize_page_text(text: str) -> str:
    """Moderate cleanup: rejoin words hyphenated at line ends, collapse spaces, keep paragraph breaks."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _HYPHEN_BREAK.sub(_join_hyphen, text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def _metadata_title(reader: PdfReader) -> str:
    try:
        title = clean_title(reader.metadata.title if reader.metadata else None)
    except Exception:  # a broken Info dictionary must not cost us the text
        return ""
    # Placeholder titles that word processors write are worse than the first line of the page.
    junk = title.lower() in _TITLE_JUNK or title.lower().startswith("microsoft word - ")
    return "" if junk else title


def _has_images(page: object) -> bool:
    """Whether a page draws any XObject (a scan is an image, often wrapped in a form); when in doubt, yes."""
    try:
        resources = page.get("/Resources")  # type: ignore[attr-defined]
        resources = resources.get_object() if resources is not None else None
        return bool(resources and resources.get("/XObject"))
    except Exception:
        return True


def _is_scan(text: str, page: object) -> bool:
    return len("".join(text.split())) < MIN_PAGE_CHARS and _has_images(page)


def _ocr(path: Path, scans: list[int], texts: dict[int, str], run: OcrRun) -> tuple[str, int]:
    """Adds the OCR'd text of the scanned pages to `texts`; returns why they were skipped ("" if they were
    not) and how many were left unread."""
    try:
        found = ocr_pages(path, scans, lambda number: render_pdf_page(path, number), run)
    except OcrUnavailable as err:
        run.stats.skipped.append(str(err))
        return str(err), len(scans)
    except (ExtractionError, MemoryError):
        raise
    except Exception as err:  # PDFium or the engine on a damaged page: this file fails, with a reason
        raise ExtractionError(f"OCR of the scanned pages failed ({type(err).__name__}: {err})") from err
    for number, lines in found.items():
        text = normalize_page_text(page_text(lines))
        if len("".join(text.split())) > len("".join(texts.get(number, "").split())):
            texts[number] = text
    return "", len(scans) - len(found)  # past the page limit


def extract_pdf(path: Path, ocr: OcrRun | None = None) -> Extracted:
    """`ocr`: read pages with (almost) no text layer by OCR; None leaves them out (as `extract()` does)."""
    data = path.read_bytes()  # pypdf reads it all anyway; an OSError here is the file's, not the PDF's
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            # Many PDFs are "encrypted" only to set permissions and open with an empty password.
            try:
                opened = reader.decrypt("")
            except Exception:  # e.g. AES without the optional crypto dependency
                opened = False
            if not opened:
                raise ExtractionError("PDF is encrypted")
        if len(reader.pages) == 0:
            raise ExtractionError("PDF has no pages")
        texts: dict[int, str] = {}
        scans: list[int] = []
        for number, page in enumerate(reader.pages, start=1):
            text = normalize_page_text(page.extract_text() or "")
            if text:
                texts[number] = text
            if _is_scan(text, page):
                scans.append(number)
        title = _metadata_title(reader)
    except ExtractionError:
        raise
    except Exception as err:  # pypdf raises many types for damaged files
        raise ExtractionError(f"PDF is damaged or unreadable ({type(err).__name__})") from err
    if scans and ocr is not None and ocr.options.enabled:
        (skipped, unread), stats = _ocr(path, scans, texts, ocr), ocr.stats
    else:
        skipped, unread, stats = "", len(scans), None
    sections = [Section(text=texts[number], page=number, heading="") for number in sorted(texts)]
    if not sections:
        raise ExtractionError(skipped or "PDF has no extractable text (scanned?)")
    if not title:
        # The first line of the first page is usually the title; skip it when it reads like a paragraph.
        first_line = sections[0].text.split("\n", 1)[0]
        title = clean_title(first_line) if len(first_line) <= 120 else ""
    return Extracted(title=title or path.stem, kind="pdf", sections=sections, ocr=stats, unread_scans=unread)
