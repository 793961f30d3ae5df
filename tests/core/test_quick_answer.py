"""Sentence scoring and the quick answer, with the deterministic hash embedder (the real one: e2e tests)."""

from __future__ import annotations

import dataclasses

from almanac.core.embedding import HashEmbedder
from almanac.core.hits import Hit
from almanac.core.quick_answer import (
    SECOND_WITHIN,
    QuickAnswer,
    ScoredSentence,
    content_terms,
    pick_quick_answer,
    rank_sentences,
    stem,
)
from almanac.core.sentences import Span


def hit(n: int, text: str) -> Hit:
    return Hit(n, n, f"/docs/f{n}.md", f"f{n}", None, "", text, text[:40], [], 1.0 / n, keyword_rank=n)


TIMEOUTS = hit(
    1,
    "HTTPX is careful to enforce timeouts everywhere. The default behavior is to raise a TimeoutException"
    " after 5 seconds of network inactivity. You can set timeouts for an individual request.",
)
POOL = hit(2, "Connection pools are kept per client. Keep-alive connections expire after a while.")


def test_stem_and_content_terms():
    assert stem("timeouts") == stem("timeout") == "timeout"
    assert stem("indexing") == stem("indexed") == "index"
    assert content_terms("What is the default timeout in HTTPX?") == ["default", "timeout", "httpx"]


def test_the_sentence_holding_the_question_words_ranks_first():
    sources = [(1, TIMEOUTS), (2, POOL)]
    ranked = rank_sentences("What is the default timeout?", sources, HashEmbedder())
    assert ranked[0].n == 1 and "5 seconds" in ranked[0].text
    assert ranked[0].lexical == 1.0 and ranked[0].semantic > 0
    assert all(a.score >= b.score for a, b in zip(ranked, ranked[1:], strict=False))
    assert len(ranked) == 5  # every sentence of both sources is scored


def test_words_alone_without_an_embedder():
    ranked = rank_sentences("default timeout", [(1, TIMEOUTS)], None)
    assert ranked[0].semantic == 0.0 and "5 seconds" in ranked[0].text


def test_quick_answer_has_its_source_number_and_span():
    sources = [(2, POOL), (5, TIMEOUTS)]  # numbers are the caller's, not positions
    quick = pick_quick_answer(rank_sentences("default timeout", sources, HashEmbedder()), sources)
    assert quick is not None and quick.n == 5
    assert TIMEOUTS.text[quick.start : quick.end] == quick.text
    assert quick.text.startswith("The default behavior") and quick.to_json() == {"text": quick.text, "n": 5}


def test_a_short_best_sentence_brings_the_next_one():
    short = hit(1, "The default timeout. It is five seconds for every request you make.")
    quick = pick_quick_answer(
        rank_sentences("default timeout", [(1, short)], None), [(1, short)], min_score=0
    )
    assert quick is not None and quick.text == short.text


def test_the_default_in_parentheses_comes_with_its_sentence():
    """Reference docs put the value after the sentence: "(Default 5)" on its line or the next, or the rest of a
    wrapped list item; the next bullet, a code fence or a footnote stays out."""

    def quick_for(question: str, text: str) -> str:
        h = hit(1, text)
        quick = pick_quick_answer(rank_sentences(question, [(1, h)], None), [(1, h)], min_score=0)
        assert quick is not None and " ".join(h.text[quick.start : quick.end].split()) == quick.text
        return quick.text

    same_line = "- `keepalive_expiry`, time limit on idle keep-alive connections in seconds, or `None`. (Default 5)\n"
    assert quick_for("keepalive expiry seconds", same_line).endswith("(Default 5)")
    next_line = "- `max_connections`, maximum number of allowable connections, or `None`.\n(Default 100)\n- `next`."
    assert quick_for("maximum number of connections", next_line).endswith("(Default 100)")
    wrapped = "- `max_keepalive_connections`, number of allowable keep-alive connections, or `None` to always\nallow."
    assert quick_for("allowable keep-alive connections", wrapped + " (Defaults 20)\n").endswith("(Defaults 20)")
    bullet = "* `h2` - HTTP/2 support for the client connection pool\n* `socksio` - SOCKS proxy support.\n"
    assert quick_for("HTTP/2 support client pool", bullet) == "* `h2` - HTTP/2 support for the client connection pool"
    footnote = "We paid each worker 5 cents per annotation for the labels.\n11https://appen.com\n"
    assert quick_for("worker paid per annotation", footnote).endswith("annotation for the labels.")


def test_nothing_qualifies_below_the_threshold():
    ranked = rank_sentences("bananas potassium", [(1, TIMEOUTS)], HashEmbedder())
    assert pick_quick_answer(ranked, [(1, TIMEOUTS)], min_score=0.45) is None
    assert pick_quick_answer([], [], min_score=0.0) is None


def scored(n: int, hit_: Hit, sentence: str, score: float) -> ScoredSentence:
    start = hit_.text.index(sentence)
    return ScoredSentence(n, Span(start, start + len(sentence)), sentence, score=score)


def test_a_second_sentence_that_scores_nearly_as_well_comes_along():
    """The best two sentences often score alike, and the second is as often the answer: it is shown too,
    with its own source and span; one scoring much less, or saying the same again, is not."""
    sources = [(1, TIMEOUTS), (2, POOL)]
    first = "The default behavior is to raise a TimeoutException after 5 seconds of network inactivity."
    other = "Keep-alive connections expire after a while."
    close = [scored(1, TIMEOUTS, first, 0.9), scored(2, POOL, other, 0.9 - SECOND_WITHIN + 0.01)]
    quick = pick_quick_answer(close, sources)
    assert quick is not None and quick.also is not None and [p.n for p in quick.parts] == [1, 2]
    assert POOL.text[quick.also.start : quick.also.end] == other == quick.also.text
    assert quick.cited_text() == f"{first} [1] {other} [2]"
    assert quick.to_json() == {"text": first, "n": 1, "also": {"text": other, "n": 2}}
    assert QuickAnswer.from_dict(dataclasses.asdict(quick)) == quick  # as the answer cache saves it

    far = [close[0], scored(2, POOL, other, 0.9 - SECOND_WITHIN - 0.01)]
    assert pick_quick_answer(far, sources).also is None
    below = [scored(1, TIMEOUTS, first, 0.5), scored(2, POOL, other, 0.44)]  # under MIN_QUICK_SCORE
    assert pick_quick_answer(below, sources).also is None
    overlapping = hit(3, TIMEOUTS.text)  # overlapping chunks hold a sentence twice
    again = [close[0], scored(3, overlapping, first, 0.9)]
    assert pick_quick_answer(again, [*sources, (3, overlapping)]).also is None
