"""The decline decision on retrieval signals."""

from __future__ import annotations

import dataclasses

import pytest
from almanac.core.decline import (
    CALIBRATED,
    WORDS_ONLY,
    DeclinePolicy,
    Support,
    assess,
    checked_words,
    policy_for,
)
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
    # Meaning decides beside the kind check: the fit's threshold lies between 0.398 (unanswerable) and 0.407.
    assert policy.declines(Support(0.3, 1.0, 0.398, 0.0)) and not policy.declines(Support(0.9, 0.0, 0.407, 0.0))


def test_other_embedders_are_judged_on_words():
    policy = policy_for("test-hash-embedder")
    assert policy is policy_for(None) is WORDS_ONLY
    assert policy.declines(Support(0.1, 0.1, 0.99, 0.0))  # a similarity of unknown scale counts for nothing
    assert not policy.declines(Support(0.9, 0.5, 0.0, 0.0))


def test_margin_is_the_weighted_sum():
    policy = DeclinePolicy(w_distance=1.0, w_lexical=0.5, w_semantic=2.0, bias=-1.0)
    assert policy.margin(Support(0.25, 0.5, 0.25, 0.0)) == 0.75 + 0.25 + 0.5 - 1.0


def test_the_words_the_library_must_hold():
    q = "Can Almanac's reader talk HTTP/3 over QUIC, per the docs, in 2nd-gen GC64 builds?"
    # As written; not the asking words, the words pointing at the files, digits, mixed tokens ("2nd", "GC64"),
    # a possessive's "s", or a word one letter from an asking word ("per": "her").
    assert checked_words(q) == ["Almanac", "reader", "talk", "HTTP", "over", "QUIC", "gen", "builds"]
    # Only the sentences that ask: the situation is told in the user's own words.
    q = "My download stalls partway through. Which exception is raised? It is slow."
    assert checked_words(q) == ["exception", "raised"]
    assert checked_words("My download stalls partway through.") == ["download", "stalls", "partway", "through"]
    # Contractions and misspelt asking words are no words of the files.
    assert checked_words("Why isn't the index rebuilt? Whta won't it do?") == ["index", "rebuilt"]


def test_the_reason_names_what_is_missing():
    policy = policy_for("all-MiniLM-L6-v2")
    close = Support(0.2, 0.8, 0.8, 1.2)
    assert policy.reason(close) is None and not policy.declines(close)
    absent = Support(0.2, 0.8, 0.8, 1.2, kind="date", kind_found=False, absent=("quic", "tpus"))
    assert policy.reason(absent) == "Nothing in them mentions “quic” or “tpus”."  # the most telling reason first
    four = Support(0.2, 0.8, 0.8, 1.2, absent=("won", "chess", "marathon", "Reykjavik"))
    assert policy.reason(four) == "Nothing in them mentions “won”, “chess” or “marathon”."  # ABSENT_SHOWN
    assert WORDS_ONLY.declines(absent) and not DeclinePolicy(check_absent=False, check_kind=False).declines(absent)
    no_date = Support(0.2, 0.8, 0.8, 1.2, kind="date", kind_found=False)
    assert policy.reason(no_date) == "The closest passages give no date for it."
    assert policy.reason(Support(0.8, 0.1, 0.3, 0.2)) == "The closest passages are about something else."
    assert absent.to_json()["absent"] == ["quic", "tpus"]


def test_a_missing_value_declines_whatever_the_similarity():
    text = "The Zephyr router was released to great acclaim. It ships with a blue case."
    hits = [hit(1, text, 0.2)]
    ranked = rank_sentences("When was the Zephyr router released?", [(1, hits[0])], None)
    support = assess(hits, ranked, "When was the Zephyr router released?")
    assert support.kind == "date" and support.kind_found is False
    strong = Support(0.1, 1.0, 0.9, 1.4, kind="date", kind_found=False)
    assert policy_for("all-MiniLM-L6-v2").margin(strong) > 0
    assert policy_for("all-MiniLM-L6-v2").declines(strong) and WORDS_ONLY.declines(strong)
    assert not DeclinePolicy(check_kind=False).declines(strong)
    found = assess([hit(1, text + " It came out in March 2021.", 0.2)], ranked, "When was the Zephyr router released?")
    assert found.kind_found is not False  # the ranked sentences still point into the same passage


def test_the_section_name_counts_for_the_kind_of_value():
    """Reference pages name the thing in the heading and the sentence only points at it ("this variable"); a
    section's number, a chapter's or an acronym is no value asked for."""
    text = "Valid values: a filename\n\nIf this environment variable is set then HTTPX will load CA certificates."
    question = "Which environment variable makes HTTPX load its CA certificates from a file?"

    def found(heading: str, question: str = question) -> bool | None:
        h = dataclasses.replace(hit(1, text, 0.2), heading=f"Docs > {heading}" if heading else "")
        return assess([h], rank_sentences(question, [(1, h)], None), question).kind_found

    assert found("") is False and found("`SSL_CERT_FILE`") is True and found("FAQ") is False
    assert found("3.1 `httpx.Client`", "Which HTTPX version loads CA certificates from a file?") is False
    assert found("Chapter 3", "How many CA certificates does HTTPX load from a file?") is False
    assert found("Changes in httpx-0.28", "Which HTTPX version loads CA certificates from a file?") is True


@pytest.mark.slow
def test_near_topic_questions_with_the_real_embedder(real_embedder):
    """The case the kind check is for: the passage is on the subject, its best sentence close in meaning,
    but it does not hold what is asked; the same passage answers a question it does hold."""
    text = (
        "The Zephyr 3 router was designed in Lisbon by a small team of network engineers. "
        "Its admin page listens on port 8443 by default. "
        "The router's case is made of recycled aluminium."
    )
    hits = [hit(1, text, 0.3)]
    policy = policy_for(real_embedder.name)

    def judge(question: str) -> tuple[Support, bool]:
        ranked = rank_sentences(question, [(1, hits[0])], real_embedder)
        support = assess(hits, ranked, question)
        return support, policy.declines(support)

    answerable, declined = judge("Which port does the Zephyr 3 admin page listen on?")
    assert answerable.kind == "number" and answerable.kind_found and not declined
    near, declined = judge("When was the Zephyr 3 router designed?")
    assert near.kind == "date" and near.kind_found is False and declined
    assert policy.margin(near) > 0  # similar in meaning: only the kind check declines it
