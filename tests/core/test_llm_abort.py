"""A cancel or a timeout stops llama.cpp's prompt evaluation too (its abort callback), with the real GGUF."""

from __future__ import annotations

import time

import pytest
from almanac.core.llm import LocalLLM, StreamResult

pytestmark = pytest.mark.slow


def long_prompt(tag: str) -> list[dict]:
    # Distinct words per call: llama-cpp-python reuses a cached prompt prefix, which would make a repeat free.
    words = " ".join(f"{tag}{i}" for i in range(200))
    return [{"role": "user", "content": f"{words}\nWhich word came first?"}]


@pytest.fixture(scope="module")
def llm():
    model = LocalLLM(n_ctx=4096, n_threads=1)  # one thread: a long, steady prompt evaluation
    model.load()
    yield model
    model.close()


def run(llm: LocalLLM, messages: list[dict], **kw) -> tuple[str, StreamResult, float]:
    result = StreamResult()
    started = time.monotonic()
    text = "".join(llm.stream_chat(messages, max_tokens=kw.pop("max_tokens", 1), result=result, **kw))
    return text, result, time.monotonic() - started


def test_cancel_during_prompt_evaluation_stops_it_and_the_model_stays_usable(llm):
    _, full, whole = run(llm, long_prompt("alpha"))  # how long evaluating such a prompt takes here
    assert full.prompt_tokens > 400 and full.completion_tokens == 1

    started = time.monotonic()
    cut = whole * 0.15
    text, result, took = run(llm, long_prompt("beta"), cancel=lambda: time.monotonic() - started > cut)
    assert result.stopped == "cancelled" and text == "" and result.completion_tokens == 0
    print(f"prompt of {full.prompt_tokens} tokens: {whole:.2f} s whole, cancelled after {took:.2f} s")
    assert took < whole * 0.6, (took, whole)  # without the abort callback it would take the whole prompt

    text, result, _ = run(llm, long_prompt("gamma"), timeout_s=whole * 0.15)
    assert result.stopped == "timeout" and text == ""

    # An aborted prompt leaves nothing behind: the same question answers as it does on a fresh model.
    short = [{"role": "user", "content": "Name a colour."}]
    again, result, _ = run(llm, short, max_tokens=12)
    assert result.stopped in ("stop", "length") and again
    fresh = LocalLLM(n_ctx=4096, n_threads=1)
    try:
        assert run(fresh, short, max_tokens=12)[0] == again
    finally:
        fresh.close()
