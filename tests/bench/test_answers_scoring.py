"""Scoring of the answer benchmark (bench/answers.py): fact matching, declines, evidence, the QA set itself."""

from __future__ import annotations

import pytest

from bench.answers import (
    QA_PATH,
    evidence_in,
    fact_stated,
    key_terms,
    load_qa,
    says_declined,
    select,
    tokens,
)


def test_tokens_normalise_numbers_and_ligatures():
    assert tokens("21,015,324 passages") == ["21015324", "passages"]
    assert tokens("SHA-256") == ["sha", "256"]
    assert tokens("nearly twenty-one years") == ["nearly", "21", "years"]
    assert tokens("at most two outputs") == ["at", "most", "2", "outputs"]
    assert tokens("eﬃcient ﬁle") == ["efficient", "file"]
    assert tokens("k∈{5, 10}") == ["k", "5", "10"]
    assert tokens("doesn't") == ["does", "not"]


@pytest.mark.parametrize(
    ("key", "reply"),
    [
        ("80 bytes", "A block header without transactions is about 80 bytes [1]."),
        ("8.5 hours", "Building the FAISS index took 8.5 hours on one server [2]."),
        ("21,015,324", "The dump yields 21015324 passages."),
        ("two", "A transaction has at most 2 outputs: the payment and the change."),
        ("twenty-one", "Emma is nearly 21 years old."),
        ("SHA-256", "It uses SHA-256 as the hash [1]."),
        ("400M", "BART-large has 400M parameters [3]."),
        ("26 February 2014", "Bash 4.3 came out on 26 February, 2014."),
        ("Python 3.9+", "HTTPX needs Python 3.9 or newer."),
        ("Gdb and Python", "Both gdb and Python use readline."),
        ("online encoding of the test data", "The metric is based on an online encoding of test data [1]."),
        ("TripAdvisor, Restaurants, Movies, Books, Electronics and Grocery",
         "Reviews come from TripAdvisor, restaurants, movies and books."),  # 4 of 6 words
        ("proxy doesn't support connecting via HTTPS", "Your proxy does not support connecting over HTTPS."),
        ("-O3", "The default level is -O3."),
        ("2", "It retries two times [1]."),
    ],
)
def test_fact_stated(key, reply):
    assert fact_stated(key, reply)


@pytest.mark.parametrize(
    ("key", "reply"),
    [
        ("126", "The return status is 127."),  # numbers are exact
        ("126", "The return status is 1260."),
        ("126", "It returns 12.6."),
        ("8.5 hours", "It took 8 hours."),
        ("73%", "74% of the answers are subjective."),
        ("26 February 2014", "Bash 4.3 came out in February 2014."),  # a number is missing
        ("Brian Fox", "Bash was written by Chet Ramey and Fox News."),  # 1 of 2 words is below 60%
        ("Gdb and Python", "Python uses it."),
        ("TripAdvisor, Restaurants, Movies, Books, Electronics and Grocery",
         "Reviews come from TripAdvisor, restaurants and movies."),  # 3 of 6 words
        ("400M", "It has 400 million parameters."),
        ("Swampy", "It replaced its own package with turtle."),
        ("December 2018", "The 2018 dump of Wikipedia."),
        ("two", "The evidence says so [2]."),  # a citation number is not a stated number
        ("3", "The sources agree [1, 3]."),
    ],
)
def test_fact_not_stated(key, reply):
    assert not fact_stated(key, reply)


def test_key_terms_drop_stop_words_and_lone_letters():
    assert key_terms("connect, read, write and pool") == (set(), {"connect", "read", "write", "pool"})
    assert key_terms("Python 3.9+") == ({"3.9"}, {"python"})
    assert key_terms("400M") == ({"400"}, {"m"})
    with pytest.raises(ValueError):
        fact_stated("the", "anything")


@pytest.mark.parametrize(
    "reply",
    [
        "I don't know.",
        "The passages do not contain the answer.",
        "I couldn't find this in your files. The closest passages are listed below.",
        "Nothing in your library matches this question, so there is nothing to answer from.",
        "The paper does not specify a TCP port.",
        "This is not mentioned in the provided passages.",
        "There is no information about the block size.",
        "I cannot find the answer in the sources.",
    ],
)
def test_declines(reply):
    assert says_declined(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "A block header with no transactions would be about 80 bytes [1].",
        "HTTPX does not follow redirects by default [2].",  # a "not" that answers
        "The default timeout is five seconds [1].",
        "Nodes can leave and rejoin the network at will [3].",
        "If c is omitted, the data is zero-filled [1].",
    ],
)
def test_answers_are_not_declines(reply):
    assert not says_declined(reply)


def test_evidence_in_ignores_markup_and_spacing_but_not_words():
    ev = "These are **connect**, **read**, **write**, and **pool** timeouts."
    assert evidence_in(ev, "[2] timeouts.md\nThese are connect, read,\nwrite, and pool timeouts. [2]")
    assert not evidence_in(ev, "These are connect, read, and pool timeouts.")
    assert evidence_in("ﬁle index", "using file index")
    assert not evidence_in("", "anything")


def test_qa_set_shape():
    items = load_qa(QA_PATH)
    answerable = [x for x in items if x["answerable"]]
    unanswerable = [x for x in items if not x["answerable"]]
    assert len(answerable) >= 45 and len(unanswerable) >= 12
    assert sum(1 for x in unanswerable if x["near_topic"]) * 2 >= len(unanswerable)
    for x in answerable:
        assert x["file"] and x["evidence"] and x["answer"] and len(x["evidence"]) < 300
        numbers, words = key_terms(x["answer"])
        assert numbers or words, x["id"]
        assert (x["page"] is not None) == x["file"].endswith(".pdf"), x["id"]
    tune = [x for x in items if x["split"] == "tune"]
    test = [x for x in items if x["split"] == "test"]
    # The test split is fixed; tune grew with questions written to calibrate the decline rule, and blind
    # held-out batches were added beside test (so tune's share shrinks as they come).
    assert len(test) >= 49 and len(tune) >= 60 and len(tune) / len(items) <= 0.6
    assert {x["answerable"] for x in tune} == {True, False}
    fresh = [x for x in items if x["split"] == "fresh"]  # written blind to the decline rule, never tuned on
    assert len(fresh) >= 40 and {x["answerable"] for x in fresh} == {True, False}
    quick = select(items, split="all", quick=True, limit=None)
    assert 12 <= len(quick) <= 18 and any(not x["answerable"] for x in quick)
