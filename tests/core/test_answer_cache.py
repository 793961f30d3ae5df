"""The semantic answer cache: exact and near-duplicate hits, the guards, and invalidation by the library."""

from __future__ import annotations

import time

import numpy as np
import pytest
from almanac.core.answer_cache import (
    AnswerCache,
    config_key,
    features,
    guard_reason,
    library_check,
    normalize,
)
from almanac.core.embedding import HashEmbedder
from almanac.core.library import Library

CFG = config_key(model="m.gguf", top_k=5, prompt="v1", embedder="hash")
ALWAYS_CURRENT = lambda ids: dict.fromkeys(ids, "doc-hash")  # noqa: E731


@pytest.fixture
def cache(tmp_path):
    c = AnswerCache(tmp_path / "cache.db", threshold=0.8)
    yield c
    c.close()


def vec(text: str) -> np.ndarray:
    return HashEmbedder().embed([text])[0]


def put(cache, question, answer="A [1].", sources=((1, "doc-hash"),), config=CFG):
    cache.put(question, vec(question), config, {"answer": answer}, list(sources), answer_ms=2500.0)


def test_normalize_ignores_case_spacing_and_punctuation():
    assert normalize("  What is   the gate CODE?! ") == normalize("what is the gate code") == "what is the gate code"
    assert normalize("Is it node.js’s API?") == "is it node.js's api"


def test_exact_hit_and_miss_and_stats(cache):
    put(cache, "What is the garden gate code?")
    hit = cache.lookup("what is the garden gate code", vec("what is the garden gate code"), CFG, ALWAYS_CURRENT)
    assert hit is not None and hit.kind == "exact" and hit.payload == {"answer": "A [1]."}
    assert time.time() - hit.created_at < 60
    assert cache.lookup("Where is the compost?", vec("Where is the compost?"), CFG, ALWAYS_CURRENT) is None
    s = cache.stats()
    assert (s.entries, s.lookups, s.exact_hits, s.semantic_hits) == (1, 2, 1, 0)
    assert s.hit_rate == 0.5 and s.saved_ms == 2500.0


def test_semantic_hit_for_a_reworded_question(cache):
    put(cache, "What is the code for the garden gate?")
    q = "the garden gate code is what?"
    hit = cache.lookup(q, vec(q), CFG, ALWAYS_CURRENT)
    assert hit is not None and hit.kind == "semantic" and hit.similarity >= 0.8


@pytest.mark.parametrize(
    ("stored", "asked", "reason"),
    [
        ("How many bytes is a header with 2 transactions?", "How many bytes is a header with 3 transactions?", "numbers differ"),
        ("How many bytes is a header with two transactions?", "How many bytes is a header with 3 transactions?", "numbers differ"),
        ("Does HTTPX follow redirects by default?", "Does HTTPX not follow redirects by default?", "negation differs"),
        ("Can a function return a string?", "Can't a function return a string?", "negation differs"),
        ("How do I set a timeout in HTTPX?", "How do I set a timeout in Requests?", "names differ"),
        ("Who wrote the paper on Bitcoin?", "Who wrote the paper on Ethereum?", "names differ"),
    ],
)
def test_guards_block_similar_questions_that_need_different_answers(cache, stored, asked, reason):
    assert guard_reason(features(stored), features(asked)) == reason
    put(cache, stored)
    cache.threshold = 0.0  # even at any similarity
    assert cache.lookup(asked, vec(asked), CFG, ALWAYS_CURRENT) is None


def test_guards_let_paraphrases_through():
    pairs = [
        ("Does HTTPX support HTTP/2?", "Is HTTP/2 supported by httpx?"),
        ("How does Bitcoin prevent double spending?", "In what way does bitcoin stop coins being spent twice?"),
        ("What is a list in Python?", "Explain what a Python list is."),
    ]
    for a, b in pairs:
        assert guard_reason(features(a), features(b)) is None, (a, b)


def test_other_config_is_a_miss(cache):
    put(cache, "What is the garden gate code?")
    other = config_key(model="bigger.gguf", top_k=5, prompt="v1", embedder="hash")
    q = "What is the garden gate code?"
    assert cache.lookup(q, vec(q), other, ALWAYS_CURRENT) is None


def test_forget_and_replace(cache):
    put(cache, "What is the gate code?", answer="old")
    put(cache, "what is the gate code", answer="new")  # same normalised question: replaces
    q = "What is the gate code?"
    assert cache.lookup(q, vec(q), CFG, ALWAYS_CURRENT).payload["answer"] == "new"
    cache.forget(q, CFG)
    assert cache.lookup(q, vec(q), CFG, ALWAYS_CURRENT) is None


def test_entry_is_invalid_once_a_document_it_used_changes_or_leaves(tmp_path, cache):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "gate.md").write_text("The garden gate code is 4512.\n", encoding="utf-8")
    (folder / "other.md").write_text("Compost needs turning every two weeks.\n", encoding="utf-8")
    with Library(tmp_path / "lib.db", embedder=HashEmbedder()) as lib:
        lib.add_folder(folder)
        lib.index()
        check = library_check(lib.conn)
        chunks = dict(lib.conn.execute("SELECT d.path, c.id FROM chunks c JOIN documents d ON d.id = c.document_id"))
        gate, other = chunks[str(folder / "gate.md")], chunks[str(folder / "other.md")]
        now = check([gate, other])
        put(cache, "What is the gate code?", sources=[(gate, now[gate])])
        put(cache, "How often to turn compost?", sources=[(other, now[other])])
        q1, q2 = "What is the gate code?", "How often to turn compost?"
        assert cache.lookup(q1, vec(q1), CFG, check) is not None

        (folder / "gate.md").write_text("The garden gate code is 9999.\n", encoding="utf-8")
        lib.index()
        assert cache.lookup(q1, vec(q1), CFG, check) is None  # its document changed
        assert cache.lookup(q2, vec(q2), CFG, check) is not None  # untouched document: still served
        assert cache.stats().entries == 1  # the stale entry was deleted when met

        (folder / "other.md").unlink()
        lib.index()
        assert cache.lookup(q2, vec(q2), CFG, check) is None  # its document left the library


@pytest.mark.slow
def test_real_embedder_paraphrase_hits_and_near_misses_do_not(tmp_path, real_embedder):
    cache = AnswerCache(tmp_path / "c.db")
    try:
        stored = "How do I set a timeout in HTTPX?"
        cache.put(stored, real_embedder.embed([stored])[0], CFG, {"answer": "x"}, [(1, "h")], answer_ms=1.0)
        for asked, expect in [
            ("How can I configure a timeout with httpx?", "semantic"),
            ("How do I set a timeout in Requests?", None),
            ("How do I set a 10 second timeout in HTTPX?", None),
            ("How do I not set a timeout in HTTPX?", None),
        ]:
            hit = cache.lookup(asked, real_embedder.embed([asked])[0], CFG, lambda ids: dict.fromkeys(ids, "h"))
            assert (hit.kind if hit else None) == expect, asked
    finally:
        cache.close()


def test_oldest_entries_beyond_the_cap_are_dropped(tmp_path):
    cache = AnswerCache(tmp_path / "capped.db", max_entries=3)
    try:
        for i in range(5):
            put(cache, f"Question number {i}?")
        assert cache.stats().entries == 3
        q = "Question number 0?"
        assert cache.lookup(q, vec(q), CFG, ALWAYS_CURRENT) is None
        q = "Question number 4?"
        assert cache.lookup(q, vec(q), CFG, ALWAYS_CURRENT).kind == "exact"
        rows = cache._conn.execute("SELECT count(*) FROM entry_sources").fetchone()[0]
        assert rows == 3  # their sources went with them
    finally:
        cache.close()
