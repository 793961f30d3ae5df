"""The quick answer: the sentence of the retrieved passages that best answers the question, before any model.

Every sentence of the sources is scored by how much of the question's (IDF-weighted) content words it holds
and by its embedding similarity to the question, using the embedder already loaded for search. The same
scores choose what evidence the model is given (core.evidence) and feed the decline decision
(core.decline).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .embedding import Embedder
from .hits import Hit
from .search import STOP_WORDS
from .sentences import SHORT_LINE_WORDS, Span, belonging_line_end, line_end, split_sentences

_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ied", "ies", "ed", "es", "ly", "s")
# Words that say what kind of answer is wanted, not what it is about.
QUESTION_WORDS = STOP_WORDS | frozenset(
    "much many long often name named called way kind type tell explain describe say says mention mentioned"
    " give list show its he she his her him we our us them also".split()
)
# Fitted on 42 labelled questions over the eval docs (the 25 of the QA tune split, bench/qa/answers.jsonl,
# and 17 dev questions): with the key fact in the top-5 passages (26 questions), the best sentence held it
# for 18 with words weighted twice meaning (1.0 / 0.5), 17 with equal weights, 17 on words alone, 14-17 on
# meaning alone. Only the best few by words need embedding: 2 to 32 made no difference to that count, and
# each sentence embedded costs 5-40 ms on 2 cores (idle to loaded), so six are (with four, the decline
# threshold's nearest answerable question moved to 0.489, under it).
LEXICAL_WEIGHT = 1.0
SEMANTIC_WEIGHT = 0.5
MAX_EMBEDDED = 6
EMBED_WORDS = 48  # a long "sentence" (a PDF table, a code block) is embedded by its start
# Below this combined score no sentence is offered as a quick answer (every answerable question of the
# tune set whose best sentence held the fact scored above 0.6).
MIN_QUICK_SCORE = 0.45
SHORT_SENTENCE_WORDS = 10  # a best sentence shorter than this brings the next one along
# The best sentence is often one of two that score alike, and the second is as often the one that answers:
# on the QA tuning splits (tune and tune2, 86 answerable questions, bench/answers.py) the best sentence stated
# the fact for 50, the best two for 55 with a second shown when it scores within 0.15 of the best (0.05: 51,
# 0.1: 52, 0.2 and more: 55), at a median of 32 words instead of 20.
SECOND_WITHIN = 0.15


def stem(word: str) -> str:
    """A deliberately crude English stem: enough to match "indexing" with "indexes"."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word  # "leave" and "leaves": "leav"


def content_terms(question: str) -> list[str]:
    """The question's content words, stemmed, in order, without repeats."""
    out: list[str] = []
    for w in _WORD.findall(question):
        lw = w.lower()
        if lw in QUESTION_WORDS or (len(lw) < 2 and not lw.isdigit()):
            continue
        s = stem(lw)
        if s not in out:
            out.append(s)
    return out


def held_terms(terms: list[str], text: str) -> set[str]:
    """The `terms` that `text` holds: as a word's stem, or as the start of a longer word of at least four
    letters ("timeout" in "TimeoutException", "index" in "indexer")."""
    stems = {stem(w) for w in _WORD.findall(text)}
    return {t for t in terms if t in stems or (len(t) >= 4 and any(w.startswith(t) for w in stems))}


@dataclass
class ScoredSentence:
    n: int  # the source number of the passage it is in
    span: Span  # where it is in that passage's text
    text: str  # whitespace collapsed
    lexical: float = 0.0  # IDF-weighted share of the question's content words it holds, 0..1
    semantic: float = 0.0  # cosine similarity to the question (0 when not embedded)
    score: float = 0.0


@dataclass
class QuickAnswer:
    text: str
    n: int  # the source number it comes from
    start: int  # [start, end) in that source's passage text, for highlighting
    end: int
    score: float = 0.0
    also: QuickAnswer | None = None  # another sentence, of any source, that scores nearly as well

    @property
    def parts(self) -> list[QuickAnswer]:
        return [self] if self.also is None else [self, self.also]

    def cited_text(self) -> str:
        """The sentences, each followed by its [n]."""
        return " ".join(f"{p.text} [{p.n}]" for p in self.parts)

    def to_json(self) -> dict:
        out: dict = {"text": self.text, "n": self.n}
        if self.also is not None:
            out["also"] = self.also.to_json()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> QuickAnswer:
        """From dataclasses.asdict() of one (as saved), ignoring keys it does not know."""
        also = data.get("also")
        score = float(data.get("score", 0.0))
        text, n, start, end = str(data["text"]), int(data["n"]), int(data["start"]), int(data["end"])
        return cls(text, n, start, end, score, cls.from_dict(also) if also else None)


def rank_sentences(
    question: str, sources: Sequence[tuple[int, Hit]], embedder: Embedder | None
) -> list[ScoredSentence]:
    """Every sentence of the numbered `sources`, best first.

    score = LEXICAL_WEIGHT * lexical + SEMANTIC_WEIGHT * semantic; sentences not embedded (beyond
    MAX_EMBEDDED, or without an embedder) score on words alone.
    """
    sentences = [
        ScoredSentence(n, span, span.text(hit.text))
        for n, hit in sources
        for span in split_sentences(hit.text)
    ]
    if not sentences:
        return []
    terms = content_terms(question)
    held = [held_terms(terms, s.text) for s in sentences]
    total = len(sentences)
    idf = {t: math.log(1 + total / (1 + sum(t in h for h in held))) for t in terms}
    weight = sum(idf.values())
    if weight > 0:
        for s, h in zip(sentences, held, strict=True):
            s.lexical = sum(idf[t] for t in h) / weight
    rank_of = {n: i for i, (n, _) in enumerate(sources)}
    order = sorted(range(total), key=lambda i: (-sentences[i].lexical, rank_of[sentences[i].n], i))
    chosen = order[:MAX_EMBEDDED]
    if embedder is not None and chosen:
        texts = [" ".join(sentences[i].text.split()[:EMBED_WORDS]) for i in chosen]
        vectors = np.asarray(embedder.embed([question, *texts]), np.float32)
        sims = vectors[1:] @ vectors[0]
        for i, sim in zip(chosen, sims, strict=True):
            sentences[i].semantic = float(sim)
    for s in sentences:
        s.score = LEXICAL_WEIGHT * s.lexical + SEMANTIC_WEIGHT * s.semantic
    return sorted(sentences, key=lambda s: (-s.score, rank_of[s.n], s.span.start))


def pick_quick_answer(
    ranked: list[ScoredSentence], sources: Sequence[tuple[int, Hit]], *, min_score: float = MIN_QUICK_SCORE
) -> QuickAnswer | None:
    """The best sentence (and the next one when it is short), or None when none scores `min_score`; with
    it (`also`), the next in `ranked` that scores within SECOND_WITHIN of it and says something else."""
    if not ranked or ranked[0].score < min_score:
        return None
    passages = dict(sources)
    best = _quick_span(ranked[0], passages[ranked[0].n])
    floor = max(min_score, ranked[0].score - SECOND_WITHIN)
    for s in ranked[1:]:
        if s.score < floor:
            continue
        second = _quick_span(s, passages[s.n])
        if not _repeats(second, best):
            best.also = second
            break
    return best


def _quick_span(best: ScoredSentence, hit: Hit) -> QuickAnswer:
    start, end = best.span.start, best.span.end
    if len(best.text.split()) < SHORT_SENTENCE_WORDS:
        following = [s for s in split_sentences(hit.text) if s.start >= end]
        if following and "\n\n" not in hit.text[end : following[0].start]:
            end = following[0].end
    end = _with_its_fragment(hit.text, start, end)
    return QuickAnswer(" ".join(hit.text[start:end].split()), best.n, start, end, best.score)


REPEAT_SHARE = 0.6  # a second sentence that has this share of its words in the first says it again


def _repeats(second: QuickAnswer, first: QuickAnswer) -> bool:
    """Whether `second` overlaps `first` in its passage, or mostly says the same words: overlapping chunks
    hold a sentence twice, and the bash manual and its man page say the same things in nearly the same
    words."""
    if second.n == first.n and second.start < first.end and first.start < second.end:
        return True
    a, b = _words(second.text), _words(first.text)
    return not a or not b or len(a & b) >= REPEAT_SHARE * min(len(a), len(b))


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2}


def _with_its_fragment(text: str, start: int, end: int) -> int:
    """`end` moved past what completes the sentence in reference docs: a short parenthesis after it on its
    line ("... for no limits. (Default 5)") or on the next line, or the rest of a list item wrapped onto the
    next line ("... to always" / "allow. (Defaults 20)"). Not a next bullet, code fence or footnote."""
    stop = line_end(text, end)
    rest = text[end:stop].strip()
    if rest:
        return stop if rest.startswith("(") and len(rest.split()) <= SHORT_LINE_WORDS else end
    following = belonging_line_end(text, start, end)
    if following is None:
        return end
    tail = text[stop + 1 : following].lstrip()
    return following if tail[:1] == "(" or tail[:1].islower() else end
