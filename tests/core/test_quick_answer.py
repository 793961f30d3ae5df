"""Sentence scoring and the quick answer, with the deterministic hash embedder (the real one: e2e tests)."""

from __future__ import annotations

from almanac.core.embedding import HashEmbedder
from almanac.core.hits import Hit
from almanac.core.quick_answer import content_terms, pick_quick_answer, rank_sentences, stem


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


def test_nothing_qualifies_below_the_threshold():
    ranked = rank_sentences("bananas potassium", [(1, TIMEOUTS)], HashEmbedder())
    assert pick_quick_answer(ranked, [(1, TIMEOUTS)], min_score=0.45) is None
    assert pick_quick_answer([], [], min_score=0.0) is None
