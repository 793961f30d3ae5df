"""The production answer path end to end: AnswerPipeline over a real index, an answer server on 127.0.0.1
first and the bundled model as fallback, and the semantic cache in front (real embedder, real GGUF)."""

from __future__ import annotations

import pytest
from almanac.core.answer import ANSWER_LOGIC
from almanac.core.library import Library
from almanac.core.pipeline import AnswerPipeline
from almanac.core.settings import Settings
from servers import chat_server, free_port, stream_reply

pytestmark = pytest.mark.slow

QUESTION = "What is the code for the garden gate?"


@pytest.fixture
def library(tmp_path, real_embedder):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "gate.md").write_text(
        "# Garden\n\nThe garden gate code is 4512. The shed key hangs behind the door.\n", encoding="utf-8"
    )
    (folder / "compost.md").write_text("# Compost\n\nTurn the compost every two weeks.\n", encoding="utf-8")
    lib = Library(tmp_path / "lib.db", embedder=real_embedder)
    lib.add_folder(folder)
    lib.index()
    yield lib, folder
    lib.close()


def outcomes(answer):
    return [(a.backend, a.outcome, a.error_category) for a in answer.attempts]


def test_server_answers_then_the_cache_does_until_the_document_changes(library, monkeypatch):
    lib, folder = library
    with chat_server(stream_reply(["The gate code is ", "4512 [1]."])) as (url, requests):
        settings = Settings(answer_servers=[{"name": "office", "base_url": url, "model": "big"}])
        pipeline = AnswerPipeline(lib.db_path, lib.embedder, settings)
        try:
            first = pipeline.ask(QUESTION)
            assert (first.text, first.backend, first.cache) == ("The gate code is 4512 [1].", "office", "miss")
            assert outcomes(first) == [("office", "answered", None)]
            assert len(requests) == 1

            again = pipeline.ask("what is the code for the garden gate")
            assert (again.cache, again.text, again.backend) == ("exact", first.text, "office")
            assert again.cached_at is not None and again.attempts == []
            assert [s.hit.path for s in again.sources] == [s.hit.path for s in first.sources]
            reworded = pipeline.ask("What's the code for the garden gate?")
            assert reworded.cache == "semantic"
            other = pipeline.ask("What is the code for the shed door?")
            assert other.cache == "miss"
            assert len(requests) == 2  # only the miss reached the server

            fresh = pipeline.ask(QUESTION, fresh=True)  # "ask again"
            assert fresh.cache == "miss" and len(requests) == 3

            (folder / "gate.md").write_text("# Garden\n\nThe garden gate code is 9071.\n", encoding="utf-8")
            lib.index()
            changed = pipeline.ask(QUESTION)
            assert changed.cache == "miss" and len(requests) == 4
            assert pipeline.ask(QUESTION).cache == "exact"
            # Code that answers differently (core.answer.ANSWER_LOGIC raised) never serves the old answers.
            monkeypatch.setattr("almanac.core.pipeline.ANSWER_LOGIC", ANSWER_LOGIC + 1)
            assert pipeline.ask(QUESTION).cache == "miss" and len(requests) == 5
        finally:
            pipeline.close()


def test_a_dead_server_falls_back_to_the_bundled_model(library):
    lib, _ = library
    dead = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(
        answer_servers=[{"name": "office", "base_url": dead, "model": "big", "connect_timeout_s": 1}],
        answer_cache=False,
    )
    pipeline = AnswerPipeline(lib.db_path, lib.embedder, settings)
    try:
        answer = pipeline.ask(QUESTION)
    finally:
        pipeline.close()
    assert answer.text and answer.backend.startswith("local:")
    assert outcomes(answer)[-2:] == [("office", "failed", "connection"), (answer.backend, "answered", None)]
    assert answer.to_json()["attempts"][-1] == {
        "backend": answer.backend, "outcome": "answered", "error_category": None,
        "ms": answer.attempts[-1].to_json()["ms"],
    }
