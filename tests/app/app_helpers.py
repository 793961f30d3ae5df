"""Shared test helpers for the GUI tests: a scripted LLM, a sample answer, waits on the library."""

from __future__ import annotations

import threading

from almanac.core.answer import Answer, Source
from almanac.core.hits import Hit
from almanac.core.llm import StreamResult
from almanac.core.timing import Timings

REPLY = "Almanac keeps an index of your folders [1]. It answers with the passages it used [2]."


class FakeLLM:
    """The part of LocalLLM that Answerer uses: words are tokens, the reply is scripted.

    `delay_s` paces the tokens (an interruptible wait on the worker thread, not a sleep in a test).
    """

    name = "fake-model.gguf"

    def __init__(self, reply: str = REPLY, *, delay_s: float = 0.0, n_ctx: int = 4096) -> None:
        self.reply = reply
        self.delay_s = delay_s
        self.n_ctx = n_ctx
        self.loaded = False
        self.closed = False
        self.prompts: list[list[dict]] = []
        self._pace = threading.Event()

    def load(self) -> float:
        self.loaded = True
        return 1.0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_chat_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream_chat(self, messages, *, max_tokens, cancel=None, timeout_s=None, result=None):
        result = result if result is not None else StreamResult()
        self.prompts.append(messages)

        def pieces():
            result.prompt_tokens = self.count_chat_tokens(messages)
            for i, word in enumerate(self.reply.split(" ")):
                if i >= max_tokens:
                    result.stopped = "length"
                    return
                if cancel is not None and cancel():
                    result.stopped = "cancelled"
                    return
                result.completion_tokens += 1
                yield word if i == 0 else " " + word
                if self.delay_s:
                    self._pace.wait(self.delay_s)
            result.stopped = "stop"

        return pieces()

    def close(self) -> None:
        self.closed = True


def make_answer(text: str = "Water them every morning [1].") -> Answer:
    hit = Hit(
        chunk_id=7,
        document_id=3,
        path="/docs/garden.md",
        title="Garden",
        page=None,
        heading="Garden notes",
        text="The tomato plants need watering every morning.",
        snippet="…need watering every morning.",
        snippet_marks=[(6, 14)],
        score=0.0325,
        keyword_rank=1,
        keyword_score=-2.5,
        vector_rank=2,
        vector_distance=0.31,
    )
    return Answer(
        question="How often do I water the tomatoes?",
        text=text,
        sources=[Source(1, hit)],
        cited=[1],
        timings=Timings({"embed query": 3.5, "first token": 120.0, "generation": 300.0}),
        prompt_tokens=210,
        answer_tokens=12,
        tokens_per_s=30.0,
        ttft_ms=120.0,
        stopped="stop",
        model="m.gguf",
    )


def wait_for_library(qtbot, window, predicate, timeout: int = 30_000) -> None:
    """Wait until the library panel's state satisfies `predicate(state)`."""
    qtbot.waitUntil(
        lambda: window.library_panel._state is not None and predicate(window.library_panel._state),
        timeout=timeout,
    )


def add_and_index(qtbot, window, folder, timeout: int = 60_000) -> None:
    """Add `folder` and wait until its indexing run has finished."""
    window.index.add_folders([str(folder)])
    qtbot.waitUntil(
        lambda: (
            window.library_panel._state is not None
            and any(f.path == str(folder) for f in window.library_panel._state.status.folders)
            and not window.index.busy
        ),
        timeout=timeout,
    )
