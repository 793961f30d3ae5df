"""Grounded answers: the evidence prompt by tokens, citations, cleaning the reply, declining, and the
Answerer with a fake searcher (a scripted model where only the order of events matters)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from almanac.core.answer import (
    DECLINED_TEXT,
    NO_CONTEXT_TEXT,
    NONE_CLOSE_REASON,
    Answer,
    AnswerConfig,
    Answerer,
    QuickAnswerFound,
    Source,
    SourcesFound,
    TokensArrived,
    build_prompt,
    clean_reply,
    declined_text,
    find_citations,
    quick_answer_found,
    recite,
    restated_source,
    supported,
)
from almanac.core.embedding import HashEmbedder
from almanac.core.errors import QueryError
from almanac.core.evidence import EvidenceBlock
from almanac.core.hits import Hit, Mode, SearchResult
from almanac.core.llm import STOP_SEQUENCES, LocalLLM, StreamResult
from almanac.core.quick_answer import QuickAnswer, rank_sentences
from almanac.core.sentences import Span
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

    def __init__(self, hits: list[Hit], unknown: frozenset[str] = frozenset()) -> None:
        self.hits = hits
        self.unknown = unknown  # words the library lacks
        self.calls: list[dict] = []

    def unknown_words(self, words: Iterable[str], limit: int = 3) -> list[str]:
        self.calls.append({"unknown_words": list(words)})
        return [w for w in self.calls[-1]["unknown_words"] if w.lower() in self.unknown][:limit]

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


class ScriptedModel:
    """Words are tokens and the reply is fixed: for tests of what happens around the model."""

    name = "scripted.gguf"
    n_ctx = 4096
    loaded = True

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[list[dict]] = []

    def load(self) -> float:
        return 0.0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_chat_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream_chat(self, messages, *, max_tokens, cancel=None, timeout_s=None, result=None) -> Iterator[str]:
        self.prompts.append(messages)
        result = result if result is not None else StreamResult()
        for i, word in enumerate(self.reply.split(" ")[:max_tokens]):
            result.completion_tokens += 1
            yield word if i == 0 else " " + word
        result.stopped = "stop"

    def close(self) -> None:
        pass


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
    timings = Timings({"embed query": 1.234567, "quick answer": 3.0, "generation": 10.0})
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
        quick_answer=QuickAnswer("The capital of Freedonia is Blorbville.", 1, 0, 39),
    )
    data = json.loads(json.dumps(answer.to_json()))
    assert set(data) == {
        "question",
        "answer",
        "quick_answer",
        "sources",
        "cited",
        "timings_ms",
        "prompt_tokens",
        "answer_tokens",
        "tokens_per_s",
        "ttft_ms",
        "stopped",
        "model",
        "backend",
        "attempts",
        "note",
        "cache",
        "cached_at",
    }
    assert (data["cache"], data["attempts"], data["cached_at"]) == ("miss", [], None)
    assert data["quick_answer"] == {"text": "The capital of Freedonia is Blorbville.", "n": 1}
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
    assert data["timings_ms"] == {"embed query": 1.23, "quick answer": 3.0, "generation": 10.0}
    answer.quick_answer = None
    assert answer.to_json()["quick_answer"] is None


def test_the_quick_answer_event_carries_each_sentence_s_source() -> None:
    sources = [Source(n, Hit(n, n, f"/d/{n}.md", "", None, "", "text", "text", [], 1.0)) for n in (1, 2)]
    quick = QuickAnswer("A.", 2, 0, 2, also=QuickAnswer("B.", 1, 0, 2))
    found = quick_answer_found(quick, sources)
    assert (found.source.n, found.also_source.n) == (2, 1)
    assert quick_answer_found(QuickAnswer("A.", 1, 0, 2), sources).also_source is None
    stray = QuickAnswer("A.", 1, 0, 2, also=QuickAnswer("B.", 9, 0, 2))  # a source that is not there
    assert quick_answer_found(stray, sources).also_source is None
    assert stray.cited_text() == "A. [1] B. [9]"


# -- cleaning the reply ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Blorbville [1].", "Blorbville [1]."),
        ("Blorbville [1].\n\nQuestion: What is the capital of Sylvania?\nAnswer: Cheese.", "Blorbville [1]."),
        ("Answer: Blorbville is the capital [2].", "Blorbville is the capital [2]."),
        (
            "[2] (atlas.pdf, page 7) The capital of Freedonia is Blorbville.",
            "The capital of Freedonia is Blorbville. [2]",
        ),
        ("It is Blorbville [1]. Sources: [1] atlas", "It is Blorbville [1]."),
        ("Question: what?", "Question: what?"),  # nothing before it: better shown than emptied
        ("## Basic authentication HTTP basic authentication is unencrypted. [4]",
         "Basic authentication HTTP basic authentication is unencrypted. [4]"),  # not shown as a title
        ("It is Blorbville [1].\n### Capital\nSince 1901.", "It is Blorbville [1].\nCapital\nSince 1901."),
        ("Use `#include` and C# [2].", "Use `#include` and C# [2]."),
        ("### Answer: It is Blorbville [1].", "It is Blorbville [1]."),
        ("It is Blorbville [1].\n\n## Question: What else?\nNothing.", "It is Blorbville [1]."),
        ("Run it [1]:\n\n    # the proxy\n    export HTTP_PROXY=x", "Run it [1]:\n\n    # the proxy\n    export HTTP_PROXY=x"),
        ("## Set it [1]:\n```sh\n# the proxy\nexport HTTP_PROXY=x\n```", "Set it [1]:\n```sh\n# the proxy\nexport HTTP_PROXY=x\n```"),
    ],
)
def test_clean_reply(raw: str, clean: str) -> None:
    assert clean_reply(raw) == clean


def test_an_uncited_reply_that_restates_a_block_gets_its_number() -> None:
    atlas = make_hit(0, "The capital of Freedonia is Blorbville, a port city.")
    blocks = [
        EvidenceBlock(2, make_hit(1, "Cheese is made from milk in Sylvania."), [Span(0, 38)]),
        EvidenceBlock(4, atlas, [Span(0, len(atlas.text))]),
    ]
    assert restated_source("Blorbville is the capital of Freedonia.", blocks) == 4
    assert restated_source("Freedonia exports bananas and timber to Sylvania.", blocks) is None
    assert restated_source("Yes.", blocks) is None
    # Cited, but to a block that does not hold it: the block that does; a right citation stays.
    assert restated_source("Blorbville is the capital of Freedonia [2].", blocks, cited=[2]) == 4
    assert restated_source("Blorbville is the capital of Freedonia [4].", blocks, cited=[4]) is None


def test_a_reply_citing_a_passage_that_does_not_hold_it_is_cited_to_the_one_that_does() -> None:
    hits = [
        make_hit(0, "The capital of Freedonia is Blorbville, a port on the coast."),
        make_hit(1, "Cheese is made from milk in Sylvania, far from any coast."),
    ]
    miscited = ScriptedModel("The capital of Freedonia is Blorbville, a port [2].")
    answer = Answerer(FakeSearcher(hits), miscited, HashEmbedder()).ask("What is the capital of Freedonia?")
    assert answer.text == "The capital of Freedonia is Blorbville, a port [1]." and answer.cited == [1]
    assert recite("A port [2], on the coast [2][3].", 1, 3) == "A port [1], on the coast."
    assert recite("A port.", 1, 3) == "A port. [1]"
    assert recite("Use array[0] as in [42].", 1, 3) == "Use array[0] as in [42]. [1]"  # no citations there


# -- Answerer without the model ----------------------------------------------------------------------


def test_empty_question_raises(tmp_path: Path) -> None:
    answerer = Answerer(FakeSearcher([]), never_loads(tmp_path))
    with pytest.raises(QueryError):
        answerer.ask("   \n")


def test_no_hits_does_not_load_model(tmp_path: Path) -> None:
    searcher = FakeSearcher([])
    llm = never_loads(tmp_path)
    answer = Answerer(searcher, llm, config=AnswerConfig(top_k=4)).ask(
        " capital of Freedonia? ", folders=["/docs"], mode="keyword"
    )
    assert answer.stopped == "no context"
    assert answer.text == NO_CONTEXT_TEXT
    assert answer.sources == [] and answer.cited == [] and answer.quick_answer is None
    assert not llm.loaded
    assert searcher.calls == [
        {"query": "capital of Freedonia?", "k": 4, "mode": "keyword", "folders": ["/docs"]}
    ]
    assert list(answer.timings.stages) == RETRIEVAL_STAGES
    assert answer.to_json()["stopped"] == "no context"


def test_irrelevant_hits_are_declined_with_the_closest_listed(tmp_path: Path) -> None:
    hits = [
        make_hit(0, "Bananas are rich in potassium.", keyword_rank=None, vector_distance=0.9),
        make_hit(1, "Sylvania exports cheese.", keyword_rank=None, vector_distance=0.8),
        make_hit(2, "No ranks at all.", keyword_rank=None, vector_distance=None),
    ]
    llm = never_loads(tmp_path)
    events: list = []
    answer = Answerer(FakeSearcher(hits), llm).ask(
        "What is the capital of Freedonia?", on_event=events.append
    )
    assert answer.stopped == "declined" and answer.text == declined_text(NONE_CLOSE_REASON)
    assert answer.text.startswith(DECLINED_TEXT.split(". ")[0])
    assert [s.hit for s in answer.sources] == hits and [s.n for s in answer.sources] == [1, 2, 3]
    assert events == [SourcesFound(answer.sources)]
    assert not llm.loaded


def test_relevance_threshold_is_a_parameter(tmp_path: Path) -> None:
    hits = [make_hit(0, "Bananas are rich in potassium.", keyword_rank=None, vector_distance=0.5)]
    strict = Answerer(FakeSearcher(hits), never_loads(tmp_path), config=AnswerConfig(max_distance=0.4))
    assert strict.ask("bananas?").stopped == "declined"
    loose = Answerer(FakeSearcher(hits), never_loads(tmp_path), config=AnswerConfig(max_distance=0.6))
    assert loose.is_relevant(hits[0])


def test_unsupported_question_is_declined_without_the_model(tmp_path: Path) -> None:
    hits = [make_hit(0, "Espresso is brewed at 9 bar for about 25 seconds.", vector_distance=0.85)]
    llm = never_loads(tmp_path)
    answer = Answerer(FakeSearcher(hits), llm, HashEmbedder()).ask("Who won the 1954 chess marathon?")
    assert answer.stopped == "declined"
    assert answer.text == declined_text("The closest passages are about something else.") == (
        "I couldn't find this in your files. The closest passages are about something else."
        " The closest passages are listed below."
    )
    assert [s.hit for s in answer.sources] == hits  # the closest passages, to look at instead
    assert answer.quick_answer is None and answer.prompt_messages == []
    assert "quick answer" in answer.timings.stages and "first token" not in answer.timings.stages
    assert not llm.loaded


def test_a_question_naming_what_no_file_mentions_is_declined(tmp_path: Path) -> None:
    hits = [make_hit(0, "The client speaks HTTP/1.1 and HTTP/2 over TLS.", vector_distance=0.2)]
    searcher = FakeSearcher(hits, unknown=frozenset({"quic"}))
    answer = Answerer(searcher, never_loads(tmp_path), HashEmbedder()).ask("Can the client talk HTTP/3 over QUIC?")
    assert answer.stopped == "declined" and answer.text == declined_text("Nothing in them mentions “QUIC”.")
    # Not asked at all when the decision is off.
    searcher.calls.clear()
    off = Answerer(searcher, never_loads(tmp_path), HashEmbedder(), AnswerConfig(decline=False))
    assert off.ask("Can the client talk HTTP/3 over QUIC?", cancel=lambda: True).stopped == "cancelled"
    assert not any("unknown_words" in call for call in searcher.calls)
    # The same passages answer a question whose words the library holds.
    answer = Answerer(FakeSearcher(hits), never_loads(tmp_path), HashEmbedder(), AnswerConfig(decline=True)).ask(
        "Which protocols does the client speak over TLS?", cancel=lambda: True
    )
    assert answer.stopped == "cancelled"  # past the decision, before the model


def test_cancel_before_generation_does_not_load_model(tmp_path: Path) -> None:
    llm = never_loads(tmp_path)
    hits = [make_hit(0, "The capital of Freedonia is Blorbville.")]
    answer = Answerer(FakeSearcher(hits), llm, config=AnswerConfig(decline=False)).ask(
        "capital?", cancel=lambda: True
    )
    assert answer.stopped == "cancelled"
    assert answer.text == ""
    assert not llm.loaded


def test_events_come_in_order_quick_answer_before_the_model() -> None:
    hits = [
        make_hit(0, "Freedonia has a long coast and many islands."),
        make_hit(1, "The capital of Freedonia is Blorbville. It lies on the coast.", path="/docs/atlas.md"),
    ]
    model = ScriptedModel("Blorbville is the capital [2].")
    events: list = []

    def record(event) -> None:
        events.append((event, len(model.prompts)))

    answer = Answerer(FakeSearcher(hits), model, HashEmbedder()).ask(
        "What is the capital of Freedonia?", on_event=record
    )
    kinds = [type(e).__name__ for e, _ in events]
    assert kinds[:2] == ["SourcesFound", "QuickAnswerFound"] and set(kinds[2:]) == {"TokensArrived"}
    found, prompts_before = events[1]
    assert prompts_before == 0  # shown before the model was asked anything
    assert isinstance(found, QuickAnswerFound) and found.source is answer.sources[1]
    assert found.quick_answer == answer.quick_answer and answer.quick_answer.n == 2
    assert "Blorbville" in answer.quick_answer.text
    assert "".join(e.text for e, _ in events if isinstance(e, TokensArrived)) == model.reply
    assert answer.text == model.reply and answer.cited == [2]
    assert answer.prompt_messages == model.prompts[0]
    assert "[2] (" in answer.prompt_messages[-1]["content"]  # evidence keeps its passage's number
    stages = list(answer.timings.stages)
    assert stages == [*RETRIEVAL_STAGES, "quick answer", "prompt", "first token", "generation"]


def test_uncited_restatement_is_cited_and_echoed_turns_are_cut() -> None:
    hits = [make_hit(0, "The capital of Freedonia is Blorbville, a port on the coast.")]
    model = ScriptedModel("Blorbville is the capital of Freedonia. Question: And Sylvania? Answer: Cheese.")
    answer = Answerer(FakeSearcher(hits), model, HashEmbedder()).ask("What is the capital of Freedonia?")
    assert answer.text == "Blorbville is the capital of Freedonia. [1]" and answer.cited == [1]
    off = Answerer(
        FakeSearcher(hits),
        ScriptedModel("Blorbville is the capital of Freedonia."),
        HashEmbedder(),
        AnswerConfig(cite_restated=False),
    ).ask("What is the capital of Freedonia?")
    assert off.cited == []


def test_a_reply_that_shows_no_source_gives_way_to_the_quick_answer() -> None:
    hits = [make_hit(0, "The capital of Freedonia is Blorbville, a port of 7 quays on the coast.")]
    answer = Answerer(FakeSearcher(hits), ScriptedModel("Blorbville, 7."), HashEmbedder()).ask(
        "What is the capital of Freedonia?"
    )
    assert answer.quick_answer is not None
    assert answer.text == f"{answer.quick_answer.text} [1]" and answer.cited == [1]


def test_a_made_up_reply_is_replaced_by_the_quick_answer() -> None:
    hits = [make_hit(0, "The capital of Freedonia is Blorbville, a port on the coast.")]
    invented = ScriptedModel("Freedonia is famous for its wine, its opera and its mountain railways [1].")
    answer = Answerer(FakeSearcher(hits), invented, HashEmbedder()).ask("What is the capital of Freedonia?")
    assert answer.quick_answer is not None
    assert answer.text == f"{answer.quick_answer.text} [1]" and answer.cited == [1]
    grounded = ScriptedModel("Its capital is Blorbville [1].")
    kept = Answerer(FakeSearcher(hits), grounded, HashEmbedder()).ask("What is the capital of Freedonia?")
    assert kept.text == "Its capital is Blorbville [1]."


def test_supported_replies_add_only_what_the_evidence_holds() -> None:
    atlas = make_hit(0, "The capital of Freedonia is Blorbville, a port city of 20000 people.")
    blocks = [EvidenceBlock(1, atlas, [Span(0, len(atlas.text))])]
    question = "What is the capital of Freedonia?"

    def ok(reply: str) -> bool:
        return supported(reply, blocks, question, min_share=0.5)

    assert ok("Blorbville is the capital [1].") and ok("Blorbville, a port city [1].")
    assert not ok("Blorbville exports timber and wine.")  # 1 of 4 new words
    assert not ok("Blorbville, a port city of 30000 people.")  # a number the evidence lacks
    assert not ok("The capital of Freedonia.")  # nothing but the question
    assert not ok("[1] (Blorbville) a port city.") and not ok(", a port city [1].")  # pieces of the evidence
    assert ok(".Blorbville is the capital [1].")  # as ".NET 8 is required" opens
    how_many = "How many people live in Blorbville?"
    assert supported("About 20000 people [1].", blocks, how_many, min_share=0.5)
    assert supported("Twelve thousand people live in Blorbville.", [], how_many, min_share=0.0)
    assert not supported("Blorbville is a port city [1].", blocks, how_many, min_share=0.5)  # no number


def test_a_never_declining_config_always_asks_the_model() -> None:
    hits = [make_hit(0, "Espresso is brewed at 9 bar.", vector_distance=0.74)]
    model = ScriptedModel("I don't know.")
    answer = Answerer(FakeSearcher(hits), model, HashEmbedder(), AnswerConfig(decline=False)).ask("chess?")
    assert answer.stopped == "stop" and model.prompts
    declining = Answerer(FakeSearcher(hits), never_loads_model := ScriptedModel("x"), HashEmbedder())
    assert declining.ask("chess?").stopped == "declined" and not never_loads_model.prompts


# -- build_prompt with the real tokenizer ------------------------------------------------------------


def rendered_prompt_tokens(llm: LocalLLM, messages: list[dict]) -> int:
    """Prompt tokens as llama.cpp itself counts them when it runs the chat template."""
    return llm._llama.create_chat_completion(messages=messages, max_tokens=1)["usage"]["prompt_tokens"]


def numbered(hits: list[Hit]) -> list[Source]:
    return [Source(i, h) for i, h in enumerate(hits, start=1)]


@pytest.mark.slow
def test_build_prompt_keeps_to_the_budget(llm: LocalLLM) -> None:
    hits = [make_hit(i, f"Passage {i}. " + LOREM * 6, page=i + 1) for i in range(5)]
    sources = numbered(hits)
    question = "What does Almanac index?"
    ranked = rank_sentences(question, [(s.n, s.hit) for s in sources], None)
    for budget in (150, 400):
        prompt = build_prompt(question, ranked, sources, llm, prompt_budget=budget, max_answer_tokens=128)
        assert prompt.tokens <= budget
        if budget == 150:  # the room is used (at 400, MAX_SENTENCES ends it first)
            assert prompt.tokens >= budget - 60
        assert rendered_prompt_tokens(llm, prompt.messages) == prompt.tokens
        user = prompt.messages[-1]["content"]
        assert user.startswith("Sources:\n[") and user.endswith(f"Question: {question}")
        for block in prompt.blocks:
            assert f"[{block.n}] (file{block.n - 1}, page {block.n}) " in user  # title, page


@pytest.mark.slow
def test_build_prompt_fits_a_small_context(small_llm: LocalLLM) -> None:
    hits = [make_hit(i, LOREM * 6) for i in range(5)]
    sources = numbered(hits)
    ranked = rank_sentences("What does Almanac index?", [(s.n, s.hit) for s in sources], None)
    prompt = build_prompt(
        "What does Almanac index?", ranked, sources, small_llm, prompt_budget=2000, max_answer_tokens=400
    )
    assert prompt.tokens + 400 <= small_llm.n_ctx and prompt.blocks


@pytest.mark.slow
def test_build_prompt_question_too_long(small_llm: LocalLLM) -> None:
    with pytest.raises(QueryError, match="too long"):
        build_prompt(
            "why " * 600, [], numbered([make_hit(0, "x")]), small_llm, prompt_budget=400, max_answer_tokens=64
        )


# -- Answerer with the real model --------------------------------------------------------------------


FREEDONIA = [make_hit(0, "The capital of Freedonia is Blorbville.", path="/docs/freedonia.txt")]


@pytest.mark.slow
def test_ask_streams_a_grounded_answer(llm: LocalLLM) -> None:
    pieces: list[str] = []

    def on_event(event) -> None:
        if isinstance(event, TokensArrived):
            pieces.append(event.text)

    answer = Answerer(FakeSearcher(FREEDONIA), llm, HashEmbedder(), AnswerConfig(max_answer_tokens=64)).ask(
        "What is the capital of Freedonia?", on_event=on_event
    )
    assert pieces  # streamed; the final text is the reply checked against the evidence
    assert "Blorbville" in answer.text
    assert answer.stopped in ("stop", "length")
    assert [s.n for s in answer.sources] == [1]
    assert answer.sources[0].hit is FREEDONIA[0]
    assert answer.cited == [1], answer.text
    assert answer.quick_answer is not None and answer.quick_answer.text == FREEDONIA[0].text
    assert 0 < answer.prompt_tokens <= 400 and answer.answer_tokens > 0
    assert answer.tokens_per_s > 0 and answer.ttft_ms > 0
    assert answer.model == llm.name
    for stage in [*RETRIEVAL_STAGES, "quick answer", "prompt", "first token", "generation"]:
        assert stage in answer.timings.stages
    json.dumps(answer.to_json())


@pytest.mark.slow
def test_generation_stops_before_an_invented_question(llm: LocalLLM) -> None:
    messages = [
        {
            "role": "user",
            "content": "Write these two lines exactly:\nThe sky is blue.\nQuestion: why is it blue?",
        }
    ]
    text = "".join(llm.stream_chat(messages, max_tokens=40))
    assert "Question:" not in text
    assert "Question:" in STOP_SEQUENCES


@pytest.mark.slow
def test_ask_times_model_load_only_when_cold() -> None:
    llm = LocalLLM(n_ctx=1024, n_threads=1)
    try:
        answerer = Answerer(FakeSearcher(FREEDONIA), llm, None, AnswerConfig(max_answer_tokens=16))
        cold = answerer.ask("What is the capital of Freedonia?")
        warm = answerer.ask("What is the capital of Freedonia?")
    finally:
        llm.close()
    assert cold.timings.stages["model load"] > 0
    assert "model load" not in warm.timings.stages
    assert list(cold.timings.stages) == [
        *RETRIEVAL_STAGES,
        "quick answer",
        "model load",
        "prompt",
        "first token",
        "generation",
    ]


@pytest.mark.slow
def test_ask_cancel_mid_stream_returns_partial(llm: LocalLLM) -> None:
    pieces: list[str] = []
    hits = [make_hit(0, "The numbers from one to one hundred are listed in this file.")]

    def on_event(event) -> None:
        if isinstance(event, TokensArrived):
            pieces.append(event.text)

    answer = Answerer(FakeSearcher(hits), llm, None, AnswerConfig(max_answer_tokens=200, decline=False)).ask(
        "List the numbers from 1 to 100.", on_event=on_event, cancel=lambda: len(pieces) >= 2
    )
    assert answer.stopped == "cancelled"
    assert len(pieces) == 2
    assert answer.answer_tokens >= 2


@pytest.mark.slow
def test_ask_length_limit(llm: LocalLLM) -> None:
    hits = [make_hit(0, LOREM * 3)]
    answer = Answerer(FakeSearcher(hits), llm, None, AnswerConfig(max_answer_tokens=4, decline=False)).ask(
        "Describe Almanac in detail."
    )
    assert answer.stopped == "length"
    assert answer.answer_tokens <= 5
