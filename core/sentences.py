"""Sentences of a passage, as character spans into its text (so they can be highlighted where they are).

Passages come from PDFs (lines wrapped mid-sentence), Markdown (headings, lists, code) and plain text, so a
"sentence" here is: a run of text ended by . ! or ? before a capital, digit or opening mark, or by a blank
line, a heading, a list item or a code line. Wrapped lines inside a paragraph are joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line that starts a unit of its own: Markdown heading, list item, table row, quoted or code line, prompt.
_BLOCK_START = re.compile(r"^\s*(?:#{1,6}\s|[-*+•]\s|\d{1,3}[.)]\s|\||>|```|\$ |>>> )")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
# Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset("e.g i.e etc vs cf al fig eq sec no dr mr mrs ms st approx".split())
MIN_WORDS = 3


@dataclass(frozen=True)
class Span:
    start: int  # [start, end) in the passage text
    end: int

    def text(self, passage: str) -> str:
        return " ".join(passage[self.start : self.end].split())


def _lines(text: str) -> list[tuple[int, int]]:
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, pos + len(line.rstrip("\r\n"))))
        pos += len(line)
    return out


def _blocks(text: str) -> list[tuple[int, int]]:
    """Paragraph-like blocks: wrapped lines joined, broken at blank lines and block-starting lines."""
    blocks: list[tuple[int, int]] = []
    start = end = None
    for s, e in _lines(text):
        line = text[s:e]
        if not line.strip():
            if start is not None:
                blocks.append((start, end))
            start = end = None
            continue
        if start is not None and (_BLOCK_START.match(line) or _BLOCK_START.match(text[start:end])):
            blocks.append((start, end))
            start = None
        if start is None:
            start = s
        end = e
    if start is not None:
        blocks.append((start, end))
    return blocks


def split_sentences(text: str, *, min_words: int = MIN_WORDS) -> list[Span]:
    """The sentences of `text` in order, each at least `min_words` words, stripped of edge whitespace."""
    spans: list[Span] = []
    for b_start, b_end in _blocks(text):
        cut = b_start
        for m in _SENTENCE_END.finditer(text, b_start, b_end):
            before = text[cut : m.start()].rstrip("\"')]")
            last_word = re.search(r"(\w+)\.$", before)
            if last_word and (last_word.group(1).lower() in _ABBREVIATIONS or len(last_word.group(1)) == 1):
                continue  # "e.g. Foo", "J. Smith": not a sentence end
            spans.append(Span(cut, m.start()))
            cut = m.end()
        spans.append(Span(cut, b_end))
    out = []
    for span in spans:
        piece = text[span.start : span.end]
        lead = len(piece) - len(piece.lstrip())
        trail = len(piece) - len(piece.rstrip())
        span = Span(span.start + lead, span.end - trail)
        if span.end > span.start and len(piece.split()) >= min_words:
            out.append(span)
    return out


SHORT_LINE_WORDS = 3  # a line this short after a sentence is part of it: "(Default 100)"


def line_end(text: str, at: int) -> int:
    """Where the line holding position `at` ends (its newline, or the end of the text)."""
    found = text.find("\n", at)
    return len(text) if found < 0 else found


def belonging_line_end(text: str, start: int, end: int) -> int | None:
    """The end of the line after the sentence at [start, end) when that line belongs to it, else None: the
    sentence was cut at a line break (a wrapped list item: "... or `None` to always" / "allow. (Defaults
    20)") or the next line is a short fragment ("(Default 100)")."""
    stop = line_end(text, end)
    if stop >= len(text):
        return None
    following = text[stop + 1 : line_end(text, stop + 1)]
    cut = not text[start:end].rstrip().endswith((".", "!", "?", ":", ";"))
    if cut or 0 < len(following.split()) <= SHORT_LINE_WORDS:
        return line_end(text, stop + 1)
    return None
