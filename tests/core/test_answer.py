"""Grounded answers: prompt packing by tokens, citations, and the Answerer with a fake searcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from almanac.core.answer import (
    NO_CONTEXT_TEXT,
    Answer,
    Answerer,
    Source,
    build_prompt,
    find_citations,
)
from almanac.core.errors import QueryError
from almanac.core.hits import Hit, Mode, SearchResult
from almanac.core.llm import LocalLLM
from almanac.core.timing import Timings

RETRIEVAL_STAGES = ["embed query", "vector search", "keyword search", "fusion"]
LOREM = (
    "Almanac keeps an index of the folders you choose and answers questions from them. "
    "Each passage is a chunk of a document with its path, page and heading. "
)


def make_hit(
    n: int,
    text: str,
    *,
    path: str = "",
    page: int | None = None,
    heading: str = "",
    keyword_rank: int | None = 1,
    vector_distance: float | None = 0.3,
) -> Hit:
    return Hit(
        chunk_id=n,
        document_id=n,
        path=path or f"/docs/file{n}.txt",
        title=f"file{n}",
        page=page,
        heading=heading,
        text=text,
        snippet=text[:60],
        snippet_marks=[],
        score=1.0 / (n + 1),
        keyword_rank=keyword_rank,
        vector_rank=n + 1 if vector_distance is not None else None,
        vector_distance=vector_distance,
    )


class FakeSearcher:
    """Returns hand-made hits with retrieval timings, and records how it was called."""

    def __init__(self, hits: list[Hit]) -> None:
        self.hits = hits
        self.calls: list[dict] = []

    def search(
        self, query: str, *, k: int = 10, mode: Mode = "hybrid", folders: list[str] | None = None
    ) -> SearchResult:
        self.calls.append({"query": query, "k": k, "mode": mode, "folders": folders})
        timings = Timings({stage: 1.0 for stage in RETRIEVAL_STAGES})
        return SearchResult(query, mode, self.hits[:k], timings)


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    model = LocalLLM(n_ctx=2048, n_threads=1)
    model.load()
    yield model
    model.close()


@pytest.fixture(scope="module")
def small_llm() -> Iterator[LocalLLM]:
    model = LocalLLM(n_ctx=512, n_threads=1)
    model.load()
    yield model
    model.close()


def never_loads(tmp_path: Path) -> LocalLLM:
    # Any attempt to load it raises ModelError, so a test passing proves the model was not needed.
    return LocalLLM(tmp_path / "absent.gguf")


# -- find_citations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("Blorbville is the capital [1].", 3, [1]),
        ("See [1, 2] and [2].", 3, [1, 2]),
        ("First [1][3], then [2].", 3, [1, 3, 2]),
        ("Both [2-3].", 3, [2, 3]),
        ("En dash [1–2].", 3, [1, 2]),
        ("Out of range [0], [4], [7-9] and [2].", 3, [2]),
        ("A range past the end [2-9999].", 3, [2, 3]),
        ("Mixed [3; 1 and 2].", 3, [3, 1, 2]),
        ("Not citations: [a], [1a], [see 2], [], list[int].", 3, []),
        ("Spaces [ 2 ].", 3, [2]),
        ("No sources at all [1].", 0, []),
        ("Backwards [3-1].", 3, []),
    ],
)
def test_find_citations(text: str, n: int, expected: list[int]) -> None:
    assert find_citations(text, n) == expected


# -- Answer ------------------------------------------------------------------------------------------


def test_answer_to_json_is_serializable() -> None:
    hit = make_hit(0, "The capital of Freedonia is Blorbville.", page=2, heading="Geography")
    timings = Timings({"embed query": 1.234567, "generation": 10.0})
    answer = Answer(
        question="q",
        text="Blorbville [1].",
        sources=[Source(1, hit)],
        cited=[1],
        timings=timings,
        prompt_tokens=50,
        answer_tokens=5,
        tokens_per_s=12.3456,
        ttft_ms=7.891,
        stopped="stop",
        model="m.gguf",
    )
    data = json.loads(json.dumps(answer.to_json()))
    assert set(data) == {
        "question",
        "answer",
        "sources",
        "cited",
        "timings_ms",
        "prompt_tokens",
        "answer_tokens",
        "tokens_per_s",
        "ttft_ms",
        "stopped",
        "model",
    }
    assert data["sources"] == [
        {
            "n": 1,
            "path": hit.path,
            "page": 2,
            "heading": "Geography",
            "score": 1.0,
            "keyword_rank": 1,
            "vector_rank": 1,
            "snippet": hit.snippet,
        }
    ]
    assert data["timings_ms"] == {"embed query": 1.23, "generation": 10.0}
    assert data["answer"] == "Blorbville [1]."


# -- Answerer without the model ----------------------------------------------------------------------


def test_empty_question_raises(tmp_path: Path) -> None:
    answerer = Answerer(FakeSearcher([]), never_loads(tmp_path))
    with pytest.raises(QueryError):
        answerer.ask("   \n")


def test_no_hits_does_not_load_model(tmp_path: Path) -> None:
    searcher = FakeSearcher([])
    llm = never_loads(tmp_path)
    answer = Answerer(searcher, llm, top_k=4).ask(
        " capital of Freedonia? ", folders=["/docs"], mode="keyword"
    )
    assert answer.stopped == "no context"
    assert answer.text == NO_CONTEXT_TEXT
    assert answer.sources == [] and answer.cited == []
    assert not llm.loaded
    assert searcher.calls == [
        {"query": "capital of Freedonia?", "k": 4, "mode": "keyword", "folders": ["/docs"]}
    ]
    assert list(answer.timings.stages) == RETRIEVAL_STAGES
    assert answer.to_json()["stopped"] == "no context"


def test_irrelevant_hits_do_not_load_model(tmp_path: Path) -> None:
    hits = [
        make_hit(0, "Bananas are rich in potassium.", keyword_rank=None, vector_distance=0.9),
        make_hit(1, "Sylvania exports cheese.", keyword_rank=None, vector_distance=0.8),
        make_hit(2, "No ranks at all.", keyword_rank=None, vector_distance=None),
    ]
    llm = never_loads(tmp_path)
    answer = Answerer(FakeSearcher(hits), llm).ask("What is the capital of Freedonia?")
    assert answer.stopped == "no context"
    assert not llm.loaded


def test_relevance_threshold_is_a_parameter(tmp_path: Path) -> None:
    hits = [make_hit(0, "Bananas are rich in potassium.", keyword_rank=None, vector_distance=0.5)]
    strict = Answerer(FakeSearcher(hits), never_loads(tmp_path), max_distance=0.4)
    assert strict.ask("bananas?").stopped == "no context"
    loose = Answerer(FakeSearcher(hits), never_loads(tmp_path), max_distance=0.6)
    assert loose.is_relevant(hits[0])


def test_cancel_before_generation_does_not_load_model(tmp_path: Path) -> None:
    llm = never_loads(tmp_path)
    hits = [make_hit(0, "The capital of Freedonia is Blorbville.")]
    answer = Answerer(FakeSearcher(hits), llm).ask("capital?", cancel=lambda: True)
    assert answer.stopped == "cancelled"
    assert answer.text == ""
    assert not llm.loaded


# -- build_prompt with the real tokenizer ------------------------------------------------------------


def rendered_prompt_tokens(llm: LocalLLM, messages: list[dict]) -> int:
    """Prompt tokens as llama.cpp itself counts them when it runs the chat template."""
    return llm._llama.create_chat_completion(messages=messages, max_tokens=1)["usage"]["prompt_tokens"]


@pytest.mark.slow
def test_build_prompt_fits_small_context(small_llm: LocalLLM) -> None:
    hits = [
        make_hit(i, f"Passage {i}. " + LOREM * 6, page=i + 1, heading="Intro > Details") for i in range(30)
    ]
    max_answer = 128
    messages, sources, prompt_tokens = build_prompt(
        "What does Almanac index?", hits, small_llm, max_answer_tokens=max_answer
    )
    assert small_llm.n_ctx == 512
    assert prompt_tokens + max_answer <= small_llm.n_ctx
    assert rendered_prompt_tokens(small_llm, messages) == prompt_tokens
    # The window is used well: little is left over beyond the safety margin.
    assert prompt_tokens + max_answer >= small_llm.n_ctx - 80
    assert 1 <= len(sources) < len(hits)
    assert [s.n for s in sources] == list(range(1, len(sources) + 1))
    assert [s.hit for s in sources] == hits[: len(sources)]  # best first
    user = messages[-1]["content"]
    for source in sources:
        assert (
            f"[{source.n}] file{source.hit.chunk_id}.txt, page {source.hit.page}, section Intro > Details"
            in user
        )
    assert "What does Almanac index?" in user
    assert messages[0]["role"] == "system" and "square brackets" in messages[0]["content"]


@pytest.mark.slow
def test_build_prompt_truncates_at_word_boundary(small_llm: LocalLLM) -> None:
    words = " ".join(f"word{i}" for i in range(2000))
    hits = [make_hit(0, words)]
    messages, sources, prompt_tokens = build_prompt("What words?", hits, small_llm, max_answer_tokens=100)
    assert len(sources) == 1
    assert prompt_tokens + 100 <= small_llm.n_ctx
    assert rendered_prompt_tokens(small_llm, messages) == prompt_tokens
    user = messages[-1]["content"]
    kept = user.split("\n", 3)[3].split(" … [1]")[0]  # passage text after its label, before the cut
    assert kept.split()[-1].startswith("word")
    assert kept.split() == words.split()[: len(kept.split())]  # whole words only, in order


@pytest.mark.slow
def test_build_prompt_skips_what_cannot_fit_and_keeps_shorter(small_llm: LocalLLM) -> None:
    long_text = LOREM * 30
    short_text = "Blorbville is the capital of Freedonia."
    hits = [make_hit(0, short_text), make_hit(1, long_text), make_hit(2, long_text), make_hit(3, short_text)]
    # Leave so little room that a truncated stub (< 50 tokens) is not worth it.
    base_messages, _, base_tokens = build_prompt("capital?", [], small_llm, max_answer_tokens=0)
    max_answer = small_llm.n_ctx - base_tokens - 16 - 60
    messages, sources, prompt_tokens = build_prompt("capital?", hits, small_llm, max_answer_tokens=max_answer)
    assert prompt_tokens + max_answer <= small_llm.n_ctx
    assert [s.hit.chunk_id for s in sources] == [0, 3]
    assert [s.n for s in sources] == [1, 2]
    assert "[2] file3.txt" in messages[-1]["content"]


@pytest.mark.slow
def test_build_prompt_question_too_long(small_llm: LocalLLM) -> None:
    with pytest.raises(QueryError, match="too long"):
        build_prompt("why " * 600, [make_hit(0, "x")], small_llm, max_answer_tokens=64)


# -- Answerer with the real model --------------------------------------------------------------------


FREEDONIA = [make_hit(0, "The capital of Freedonia is Blorbville.", path="/docs/freedonia.txt")]


@pytest.mark.slow
def test_ask_streams_a_grounded_answer(llm: LocalLLM) -> None:
    pieces: list[str] = []
    answer = Answerer(FakeSearcher(FREEDONIA), llm, max_answer_tokens=64).ask(
        "What is the capital of Freedonia?", on_token=pieces.append
    )
    assert pieces and "".join(pieces).strip() == answer.text
    assert "Blorbville" in answer.text
    assert answer.stopped in ("stop", "length")
    assert [s.n for s in answer.sources] == [1]
    assert answer.sources[0].hit is FREEDONIA[0]
    assert answer.cited == find_citations(answer.text, 1)
    assert answer.prompt_tokens > 0 and answer.answer_tokens > 0
    assert answer.tokens_per_s > 0 and answer.ttft_ms > 0
    assert answer.model == llm.name
    for stage in [*RETRIEVAL_STAGES, "prompt", "first token", "generation"]:
        assert stage in answer.timings.stages
    json.dumps(answer.to_json())


@pytest.mark.slow
def test_ask_times_model_load_only_when_cold() -> None:
    llm = LocalLLM(n_ctx=1024, n_threads=1)
    try:
        answerer = Answerer(FakeSearcher(FREEDONIA), llm, max_answer_tokens=16)
        cold = answerer.ask("What is the capital of Freedonia?")
        warm = answerer.ask("What is the capital of Freedonia?")
    finally:
        llm.close()
    assert cold.timings.stages["model load"] > 0
    assert "model load" not in warm.timings.stages
    assert list(cold.timings.stages) == [
        *RETRIEVAL_STAGES,
        "model load",
        "prompt",
        "first token",
        "generation",
    ]


@pytest.mark.slow
def test_ask_cancel_mid_stream_returns_partial(llm: LocalLLM) -> None:
    pieces: list[str] = []
    hits = [make_hit(0, "The numbers from one to one hundred are listed in this file.")]
    answer = Answerer(FakeSearcher(hits), llm, max_answer_tokens=200).ask(
        "List the numbers from 1 to 100.", on_token=pieces.append, cancel=lambda: len(pieces) >= 2
    )
    assert answer.stopped == "cancelled"
    assert len(pieces) == 2
    assert answer.text == "".join(pieces).strip()
    assert answer.answer_tokens >= 2


@pytest.mark.slow
def test_ask_length_limit(llm: LocalLLM) -> None:
    hits = [make_hit(0, LOREM * 3)]
    answer = Answerer(FakeSearcher(hits), llm, max_answer_tokens=4).ask("Describe Almanac in detail.")
    assert answer.stopped == "length"
    assert answer.answer_tokens <= 5
