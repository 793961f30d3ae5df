"""Split text into chunks sized by the embedding model's own tokenizer.

A chunk never holds more word pieces than the model reads (so nothing is silently truncated), never ends
mid-word, prefers to end at a paragraph or sentence, and overlaps its neighbour by a few tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .embedding import TokenCounter


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offsets into the section text
    end: int
    n_tokens: int


_SENTENCE_END = re.compile(r"[.!?:;][\"')\]]*$")


def chunk_text(text: str, tokens: TokenCounter, *, max_tokens: int, overlap: int = 0) -> list[Chunk]:
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    overlap = max(0, min(overlap, max_tokens // 4))
    spans = tokens.token_spans(text)
    if not spans:
        return []
    n = len(spans)
    # A token starts a word when whitespace (or the text start) lies before it: only there may we cut.
    word_start = [i == 0 or spans[i][0] > spans[i - 1][1] for i in range(n)]

    chunks: list[Chunk] = []
    i = 0
    while i < n:
        if n - i <= max_tokens:
            j = n
        else:
            j = _best_cut(text, spans, word_start, i, i + max_tokens)
        start, end = spans[i][0], spans[j - 1][1]
        chunks.append(Chunk(text[start:end], start, end, j - i))
        if j >= n:
            break
        nxt = max(j - overlap, i + 1)
        while nxt < j and not word_start[nxt]:
            nxt += 1  # the overlap must also begin at a word
        i = nxt
    return chunks


def _best_cut(text: str, spans: list[tuple[int, int]], word_start: list[bool], lo: int, hi: int) -> int:
    """The token index to end before: a paragraph break, else a sentence end, else any word start."""
    floor = lo + (hi - lo) // 2  # don't make chunks tiny just to end on a nice boundary
    best_sentence = best_word = None
    for j in range(hi, floor, -1):
        if not word_start[j]:
            continue
        gap = text[spans[j - 1][1] : spans[j][0]]
        if "\n\n" in gap or "\n\r\n" in gap:
            return j
        if best_sentence is None and (
            _SENTENCE_END.search(text[spans[j - 1][0] : spans[j - 1][1]]) or "\n" in gap
        ):
            best_sentence = j
        if best_word is None:
            best_word = j
    if best_sentence is not None:
        return best_sentence
    if best_word is not None:
        return best_word
    # One "word" longer than half a chunk (a URL, a base64 blob): cut at the nearest word start before
    # `hi`, or, with none, inside it, since a chunk the model would truncate is worse.
    for j in range(floor, lo, -1):
        if word_start[j]:
            return j
    return hi
