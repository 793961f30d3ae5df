"""Split text into chunks sized by the embedding model's own tokenizer.

A chunk never holds more word pieces than the model reads (so nothing is silently truncated), never ends
mid-word, prefers to end at a paragraph or sentence, and overlaps its neighbour by a few tokens.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from .embedding import TokenCounter


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offsets into the section text
    end: int
    n_tokens: int


# Ordinary text averages 4-6 characters per word piece; long identifiers and URLs reach 10. Only a token the
# tokenizer could not split (one "unknown" token for a whole long word) comes near this.
CHARS_PER_TOKEN = 16

_SENTENCE_END = re.compile(r"[.!?:;][\"')\]]*$")


def chunk_text(
    text: str, tokens: TokenCounter, *, max_tokens: int, overlap: int = 0, max_chars: int | None = None
) -> list[Chunk]:
    """Chunks of at most `max_tokens` tokens and `max_chars` characters (default: CHARS_PER_TOKEN per token).

    The character cap never binds on ordinary prose or code; it bounds what the tokenizer counts as one
    token: a WordPiece tokenizer reads any word over 100 characters as a single unknown token, so a 5 MB run
    without spaces would otherwise be one 5 MB chunk. Such a run is cut into pieces of `max_chars`
    characters, each chunked on its own (the one place where a cut falls inside a word).
    """
    if max_tokens < 8:
        raise ValueError("max_tokens must be at least 8")
    max_chars = max_chars or max_tokens * CHARS_PER_TOKEN
    overlap = max(0, min(overlap, max_tokens // 4))
    spans = tokens.token_spans(text)
    if all(end - start <= max_chars for start, end in spans):
        return _chunk_spans(text, spans, max_tokens, overlap, max_chars)
    chunks: list[Chunk] = []
    run: list[tuple[int, int]] = []  # ordinary tokens since the last overlong one
    for start, end in spans:
        if end - start <= max_chars:
            run.append((start, end))
            continue
        chunks += _chunk_spans(text, run, max_tokens, overlap, max_chars)
        run = []
        for at in range(start, end, max_chars):
            piece = text[at : min(at + max_chars, end)]
            piece_spans = [(s + at, e + at) for s, e in tokens.token_spans(piece)]
            chunks += _chunk_spans(text, piece_spans, max_tokens, overlap, max_chars)
    return chunks + _chunk_spans(text, run, max_tokens, overlap, max_chars)


def _chunk_spans(
    text: str, spans: list[tuple[int, int]], max_tokens: int, overlap: int, max_chars: int
) -> list[Chunk]:
    n = len(spans)
    if not n:
        return []
    # A token starts a word when whitespace (or the text start) lies before it: only there may we cut.
    word_start = [i == 0 or spans[i][0] > spans[i - 1][1] for i in range(n)]
    ends = [end for _, end in spans]

    chunks: list[Chunk] = []
    i = 0
    while i < n:
        # The most tokens that fit both limits (every span is at most max_chars long, so at least one does).
        limit = bisect.bisect_right(ends, spans[i][0] + max_chars, i + 1, min(n, i + max_tokens))
        if limit >= n:
            j = n
        else:
            j = _best_cut(text, spans, word_start, i, limit)
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
