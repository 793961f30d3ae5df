"""Which words the library holds at all: a question naming a word no passage holds cannot be answered from
the files (core.decline), unless the word is a misspelling of one it does hold."""

from __future__ import annotations

import re
from collections.abc import Iterable

import apsw

from .search import fts_quote, fts_row_count

MISSPELT_MIN_LETTERS = 5
MISSPELT_MAX_LETTERS = 20  # a longer "word" (a gene sequence, a hash) is no misspelling: ~54 lookups a letter
UNKNOWN_MAX_CHECKED = 32
# Below this many passages (some 400 pages) a word's absence says little: common words are missing by chance.
UNKNOWN_MIN_CHUNKS = 1000
# Thai, Lao, Myanmar, Khmer, CJK (kana and Hangul too), halfwidth kana: scripts without spaces between words
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\ua4cf\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f]"
)


def one_edit(word: str, start: int = 0) -> set[str]:
    """Every string one deletion, swap of neighbours, replacement or insertion of a letter from `word`, its
    first `start` letters kept."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(start, len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    out |= {a + c + b[1:] for a, b in splits if b for c in letters}
    out |= {a + c + b for a, b in splits for c in letters}
    out.discard(word)
    return out


def unknown_words(conn: apsw.Connection, words: Iterable[str], limit: int = 3) -> list[str]:
    """The `words` that no passage of the library holds (text, title or path, as FTS5 matches them: stemmed,
    folded). A word of MISSPELT_MIN_LETTERS or more one edit away from a word the library holds is taken for
    a misspelling of it, not for a word the library lacks. Words of scripts written without spaces (Chinese,
    Japanese, Thai, ...) are never reported: FTS5 indexes a run of them as one token. A library of fewer than
    UNKNOWN_MIN_CHUNKS passages reports none: three notes may lack "about". At most `limit` words are reported
    and UNKNOWN_MAX_CHECKED looked up, so a pasted page costs little."""
    out: list[str] = []
    if fts_row_count(conn) < UNKNOWN_MIN_CHUNKS:
        return out

    def holds(word: str) -> bool:
        sql = "SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT 1"
        return conn.execute(sql, (fts_quote(word),)).fetchone() is not None

    def holds_a_neighbour(word: str) -> bool:
        # Shorter words are one edit from many real words ("TPU" from "GPU"): no edit says they are misspelt.
        if not MISSPELT_MIN_LETTERS <= len(word) <= MISSPELT_MAX_LETTERS:
            return False
        # The first letter kept: misspellings seldom change it, while "gevent" is "event" with a letter more.
        return any(holds(w) for w in one_edit(word.lower(), start=1))

    for w in list(words)[:UNKNOWN_MAX_CHECKED]:
        if not _UNSPACED.search(w) and not holds(w) and not holds_a_neighbour(w):
            out.append(w)
            if len(out) >= limit:
                break
    return out
