"""The decline decision on retrieval signals."""

from __future__ import annotations

from almanac.core.decline import DeclinePolicy, Support, assess
from almanac.core.hits import Hit
from almanac.core.quick_answer import rank_sentences


def hit(n: int, text: str, distance: float | None) -> Hit:
    return Hit(n, n, f"/d/{n}.txt", "", None, "", text, text, [], 1.0, vector_distance=distance)


def test_assess_takes_the_closest_passage_and_the_best_sentence():
    hits = [hit(1, "Blorbville is the capital of Freedonia.", 0.4), hit(2, "Cheese is made of milk.", 0.2)]
    ranked = rank_sentences("capital of Freedonia", [(1, hits[0]), (2, hits[1])], None)
    support = assess(hits, ranked)
    assert support.top_distance == 0.2
    assert support.best_lexical == 1.0 and support.best_semantic == 0.0
    assert support.best_score == ranked[0].score
    assert assess([hit(1, "x", None)], []) == Support(1.0, 0.0, 0.0, 0.0)


def test_supported_questions_pass_and_unsupported_ones_are_declined():
    policy = DeclinePolicy()
    strong = Support(top_distance=0.3, best_lexical=1.0, best_semantic=0.7, best_score=1.2)
    weak = Support(top_distance=0.8, best_lexical=0.0, best_semantic=0.1, best_score=0.1)
    assert not policy.declines(strong)
    assert policy.declines(weak)
    assert policy.margin(strong) > 0 > policy.margin(weak)


def test_margin_grows_with_every_signal():
    policy = DeclinePolicy()
    base = Support(top_distance=0.6, best_lexical=0.3, best_semantic=0.3, best_score=0.45)
    closer = Support(0.5, 0.3, 0.3, 0.45)
    wordier = Support(0.6, 0.6, 0.3, 0.6)
    nearer = Support(0.6, 0.3, 0.5, 0.65)
    for better in (closer, wordier, nearer):
        assert policy.margin(better) > policy.margin(base)
