"""The decline decision on retrieval signals."""

from __future__ import annotations

from almanac.core.decline import CALIBRATED, WORDS_ONLY, DeclinePolicy, Support, assess, policy_for
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


def test_the_calibrated_policy_declines_below_the_fitted_similarity():
    policy = policy_for("all-MiniLM-L6-v2")
    assert policy is CALIBRATED["all-MiniLM-L6-v2"]
    strong = Support(top_distance=0.3, best_lexical=1.0, best_semantic=0.7, best_score=1.35)
    weak = Support(top_distance=0.8, best_lexical=0.0, best_semantic=0.35, best_score=0.17)
    assert not policy.declines(strong) and policy.declines(weak)
    assert policy.margin(strong) > 0 > policy.margin(weak)
    # Meaning decides: the unanswerable questions of the fit scored up to 0.47, the answerable from 0.52.
    assert policy.declines(Support(0.3, 1.0, 0.47, 0.0)) and not policy.declines(Support(0.9, 0.0, 0.52, 0.0))


def test_other_embedders_are_judged_on_words():
    policy = policy_for("test-hash-embedder")
    assert policy is policy_for(None) is WORDS_ONLY
    assert policy.declines(Support(0.1, 0.1, 0.99, 0.0))  # a similarity of unknown scale counts for nothing
    assert not policy.declines(Support(0.9, 0.5, 0.0, 0.0))


def test_margin_is_the_weighted_sum():
    policy = DeclinePolicy(w_distance=1.0, w_lexical=0.5, w_semantic=2.0, bias=-1.0)
    assert policy.margin(Support(0.25, 0.5, 0.25, 0.0)) == 0.75 + 0.25 + 0.5 - 1.0
