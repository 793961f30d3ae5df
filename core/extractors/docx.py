"""Word .docx: paragraphs and table cells in document order, one section per "Heading N" paragraph."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph

from ..errors import ExtractionError
from .model import Extracted, SectionBuilder, clean_title

_HEADING_STYLE = re.compile(r"Heading ([1-9])$")

# A zip bomb is refused from its directory, before anything is inflated. zipfile never returns more than a
# member's declared size, so the declared sizes bound what parsing can inflate. Word's XML compresses 5-20x;
# deflate cannot exceed about 1,030x, which small bombs approach.
MAX_UNPACKED_BYTES = 250_000_000
MAX_RATIO = 200  # for a member that unpacks to more than RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 4_000_000


def check_unpacked_size(data: bytes) -> None:
    """Raise ExtractionError when the DOCX (a zip) would unpack to too much, or compresses like a bomb."""
    try:
        members = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise ExtractionError("File is not valid DOCX") from err
    total = sum(m.file_size for m in members)
    if total > MAX_UNPACKED_BYTES:
        raise ExtractionError(
            f"DOCX would unpack to {total / 1e6:,.0f} MB (more than {MAX_UNPACKED_BYTES / 1e6:.0f} MB):"
            " not read, it may be a zip bomb"
        )
    for m in members:
        if m.file_size > RATIO_FLOOR_BYTES and m.file_size > MAX_RATIO * max(m.compress_size, 1):
            raise ExtractionError(
                f"DOCX part {m.filename} is compressed {m.file_size / max(m.compress_size, 1):,.0f} to 1:"
                " not read, it may be a zip bomb"
            )


def _style_name(paragraph: Paragraph) -> str:
    try:
        style = paragraph.style
        return (style.name or "") if style is not None else ""
    except Exception:  # a style reference that points nowhere is common in generated files
        return ""


def _table_lines(table: Table) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = " ".join(cell.text.split())
            # A merged cell is returned once per grid column it spans.
            if text and (not cells or cells[-1] != text):
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


def extract_docx(path: Path) -> Extracted:
    data = path.read_bytes()  # an OSError here is about the file, not the format
    check_unpacked_size(data)
    try:
        document = docx.Document(io.BytesIO(data))
        title = clean_title(document.core_properties.title)
        builder = SectionBuilder()
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for line in _table_lines(block):
                    builder.add(line)
                continue
            text = block.text
            style = _style_name(block)
            heading = _HEADING_STYLE.match(style)
            if heading and text.strip():
                builder.heading(int(heading.group(1)), clean_title(text))
                title = title or clean_title(text)
            else:
                if style == "Title" and not title:
                    title = clean_title(text)
                builder.add(text)
        sections = builder.build()
    except Exception as err:  # zipfile, lxml and python-docx each raise their own types
        raise ExtractionError("File is not valid DOCX") from err
    return Extracted(title=title or path.stem, kind="docx", sections=sections)
