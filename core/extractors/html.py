"""HTML: the visible text with its block structure, one section per h1-h3 heading."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, PageElement, Tag
from bs4.element import PreformattedString

from .model import Extracted, SectionBuilder, clean_title

# Never shown by a browser (head is dropped after its <title> is read).
_HIDDEN = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "embed", "canvas"}
_PARAGRAPH = {
    "html", "body", "p", "div", "section", "article", "main", "header", "footer", "nav", "aside",
    "blockquote", "pre", "form", "fieldset", "figure", "figcaption", "table", "ul", "ol", "dl",
    "address", "details", "summary", "hr", "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_LINE = {"li", "dt", "dd", "tr", "br", "caption", "option", "legend"}
_CELL = {"td", "th"}
_SPLIT_HEADINGS = {"h1": 1, "h2": 2, "h3": 3}

# Private-use control characters mark structure while walking; they are removed from the page text first.
_PARA_MARK, _LINE_MARK, _HEADING_MARK = "\x1d", "\x1e", "\x1c"
_STRIP_MARKS = {ord(_PARA_MARK): None, ord(_LINE_MARK): None, ord(_HEADING_MARK): None}
# A run of marks and the spaces after it. The spaces before a run are trimmed in Python: a pattern that also
# starts with optional spaces backtracks quadratically on a long run of spaces with no mark in it (a <pre> of
# blanks, a table of empty cells): 20,000 spaces took 4 s.
_MARK_RUN = re.compile(r"[\x1d\x1e][ \x1d\x1e]*")
_WHITESPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")
_HEADING_SPLIT = re.compile(r"\x1c([1-3])")


def _pieces(root: Tag) -> Iterator[str]:
    """Text and structure marks in document order (an explicit stack: hostile pages nest very deep)."""
    stack: list[tuple[PageElement, bool]] = [(root, False)]
    in_pre = 0
    while stack:
        node, closing = stack.pop()
        if isinstance(node, Tag):
            name = node.name
            if closing:
                in_pre -= name == "pre"
                if name in _PARAGRAPH:
                    yield _PARA_MARK
                elif name in _LINE:
                    yield _LINE_MARK
                elif name in _CELL:
                    yield " "
                continue
            if name in _HIDDEN or node.has_attr("hidden"):
                continue
            in_pre += name == "pre"
            if name in _SPLIT_HEADINGS:
                yield _PARA_MARK + _HEADING_MARK + str(_SPLIT_HEADINGS[name])
            elif name in _PARAGRAPH:
                yield _PARA_MARK
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            # Comments, CDATA, doctypes are PreformattedString: not page text.
            text = str(node).translate(_STRIP_MARKS)
            yield text.replace("\r\n", "\n") if in_pre else _WHITESPACE.sub(" ", text)


def _visible_text(soup: BeautifulSoup) -> str:
    text = _marks_to_breaks("".join(_pieces(soup)))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text)


def _marks_to_breaks(text: str) -> str:
    """Each run of structure marks becomes a blank line (any paragraph mark in it) or a line break; the
    spaces around the run go."""
    out: list[str] = []
    pos = 0
    for match in _MARK_RUN.finditer(text):
        out.append(text[pos : match.start()].rstrip(" "))
        out.append("\n\n" if _PARA_MARK in match.group() else "\n")
        pos = match.end()
    out.append(text[pos:])
    return "".join(out)


def extract_html(path: Path) -> Extracted:
    # Bytes, not str: BeautifulSoup honours <meta charset> and BOMs when it decodes.
    soup = BeautifulSoup(path.read_bytes(), "lxml")
    title = clean_title(soup.title.get_text(" ")) if soup.title else ""
    parts = _HEADING_SPLIT.split(_visible_text(soup))
    builder = SectionBuilder()
    for line in parts[0].split("\n"):
        builder.add(line)
    for level, chunk in zip(parts[1::2], parts[2::2], strict=True):
        heading, _, body = chunk.strip(" \n").partition("\n")
        heading = clean_title(heading)
        if int(level) == 1 and not title:
            title = heading
        builder.heading(int(level), heading)
        for line in body.split("\n"):
            builder.add(line)
    return Extracted(title=title or path.stem, kind="html", sections=builder.build())
