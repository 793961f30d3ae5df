"""The OLD answer pipeline, frozen: the frozen baseline for bench/answers.py only (never used by the app).

A faithful copy of core/answer.py as it was at commit 0972a38, before issue 9 reworked the answer path,
so `bench.answers` can measure the old and the new pipeline in the same run after core has changed:
top 5 hybrid hits, hits without a keyword match dropped beyond cosine distance 0.75, whole chunks packed
best-first into the context window by token count, the old SYSTEM_PROMPT / ANSWER_INSTRUCTION, at most 384
answer tokens, no stop sequences. Generation is frozen too: it calls the loaded llama.cpp model directly
with the sampling settings core.llm had then (temperature 0.2, repeat penalty 1.1, seed 1234), so later
changes to `LocalLLM.stream_chat` (stop strings, new defaults) cannot move the baseline. Token counting
and the chat template still come from `LocalLLM`: they only describe the model, they do not change it.
Do not "improve" this file; it is the measuring stick's zero.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from almanac.core.hits import Hit, Mode
from almanac.core.llm import LocalLLM
from almanac.core.timing import Timings

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages from the user's files. "
    "After each fact, cite the passage it comes from with its number in square brackets. "
    "If the passages do not contain the answer, say that you don't know."
)
ANSWER_INSTRUCTION = (
    "Answer in one or two sentences using only the passages above, "
    "and cite the number of the passage you used in square brackets."
)
NO_CONTEXT_TEXT = "Nothing in your library matches this question, so there is nothing to answer from."

SAFETY_TOKENS = 16
MIN_TRUNCATED_TOKENS = 50
ELLIPSIS = " …"
TOP_K = 5
MAX_ANSWER_TOKENS = 384
TIMEOUT_S = 120.0
MAX_DISTANCE = 0.75
# core.llm's sampling settings at the frozen commit.
TEMPERATURE = 0.2
SEED = 1234
REPEAT_PENALTY = 1.1


@dataclass
class LegacySource:
    n: int
    hit: Hit


@dataclass
class LegacyAnswer:
    question: str
    text: str
    sources: list[LegacySource]
    cited: list[int]
    timings: Timings
    hits: list[Hit] = field(default_factory=list)  # everything retrieval returned (before the relevance filter)
    messages: list[dict] = field(default_factory=list)  # the prompt sent to the model
    prompt_tokens: int = 0
    answer_tokens: int = 0
    ttft_ms: float = 0.0  # from the start of generation (prompt evaluation included) to the first piece
    stopped: str = "stop"


def _label(n: int, hit: Hit) -> str:
    parts = [f"[{n}] {PurePath(hit.path).name or hit.path}"]
    if hit.page is not None:
        parts.append(f"page {hit.page}")
    if hit.heading:
        parts.append(f"section {hit.heading}")
    return ", ".join(parts)


def _passage(n: int, hit: Hit, text: str) -> str:
    return f"{_label(n, hit)}\n{text.strip()} [{n}]"


def _messages(question: str, passages: list[str]) -> list[dict]:
    body = "\n\n".join(passages) if passages else "(none)"
    user = f"Passages:\n\n{body}\n\nQuestion: {question}\n\n{ANSWER_INSTRUCTION}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _truncate(llm: LocalLLM, n: int, hit: Hit, room: int) -> str | None:
    text = hit.text.strip()
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    lo, hi, best = 1, len(ends) - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = _passage(n, hit, text[: ends[mid - 1]] + ELLIPSIS)
        if llm.count_tokens(candidate + "\n\n") <= room:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def build_prompt(
    question: str, hits: list[Hit], llm: LocalLLM, *, max_answer_tokens: int = MAX_ANSWER_TOKENS
) -> tuple[list[dict], list[LegacySource], int]:
    """Whole passages best-first into the context window (old core.answer.build_prompt)."""
    llm.load()
    budget = llm.n_ctx - max_answer_tokens
    base = llm.count_chat_tokens(_messages(question, []))
    room = budget - base - SAFETY_TOKENS
    passages: list[str] = []
    sources: list[LegacySource] = []
    for hit in hits:
        n = len(sources) + 1
        passage = _passage(n, hit, hit.text)
        cost = llm.count_tokens(passage + "\n\n")
        if cost > room:
            if room < MIN_TRUNCATED_TOKENS:
                continue
            passage = _truncate(llm, n, hit, room)
            if passage is None:
                continue
            cost = llm.count_tokens(passage + "\n\n")
        passages.append(passage)
        sources.append(LegacySource(n, hit))
        room -= cost
    messages = _messages(question, passages)
    prompt_tokens = llm.count_chat_tokens(messages)
    while prompt_tokens > budget and passages:
        passages.pop()
        sources.pop()
        messages = _messages(question, passages)
        prompt_tokens = llm.count_chat_tokens(messages)
    return messages, sources, prompt_tokens


_BRACKET = re.compile(r"\[([^\[\]]{1,60})\]")
_ITEM = re.compile(r"^\s*(\d{1,4})\s*(?:[-–—]\s*(\d{1,4})\s*)?$")
_SEPARATOR = re.compile(r",|;|\band\b")


def find_citations(text: str, n_sources: int) -> list[int]:
    cited: list[int] = []
    seen: set[int] = set()
    for match in _BRACKET.finditer(text):
        items = [_ITEM.match(part) for part in _SEPARATOR.split(match.group(1))]
        if not all(items):
            continue
        for item in items:
            assert item is not None
            first = int(item.group(1))
            last = int(item.group(2)) if item.group(2) else first
            if last < first:
                continue
            for n in range(max(first, 1), min(last, n_sources) + 1):
                if n not in seen:
                    seen.add(n)
                    cited.append(n)
    return cited


def _is_relevant(hit: Hit) -> bool:
    if hit.keyword_rank is not None:
        return True
    return hit.vector_distance is not None and hit.vector_distance <= MAX_DISTANCE


def _frozen_stream(llm: LocalLLM, messages: list[dict], max_tokens: int) -> Any:
    """The old generation call, made on the loaded llama.cpp model itself (see the module docstring)."""
    llm.load()
    llama = getattr(llm, "_llama", None)
    if llama is None:
        raise RuntimeError("LocalLLM no longer exposes its llama.cpp model as _llama: update the frozen baseline")
    return llama.create_chat_completion(
        messages=messages,
        stream=True,
        max_tokens=max_tokens,
        temperature=TEMPERATURE,
        repeat_penalty=REPEAT_PENALTY,
        seed=SEED,
    )


def ask(
    searcher: Any,
    llm: LocalLLM,
    question: str,
    *,
    on_token: Callable[[str], None] | None = None,
    mode: Mode = "hybrid",
) -> LegacyAnswer:
    """The old Answerer.ask with its defaults (top_k 5, 384 answer tokens, 120 s timeout)."""
    question = question.strip()
    timings = Timings()
    result = searcher.search(question, k=TOP_K, mode=mode)
    timings.merge(result.timings)
    hits = [hit for hit in result.hits if _is_relevant(hit)]
    if not hits:
        return LegacyAnswer(question, NO_CONTEXT_TEXT, [], [], timings, hits=result.hits, stopped="no context")
    with timings.stage("prompt"):
        messages, sources, prompt_tokens = build_prompt(question, hits, llm)
    if not sources:
        return LegacyAnswer(question, NO_CONTEXT_TEXT, [], [], timings, hits=result.hits, stopped="no context")

    lock = getattr(llm, "_lock", None)
    pieces: list[str] = []
    stopped = ""
    deadline = time.monotonic() + TIMEOUT_S
    start = time.perf_counter_ns()
    first_ns: int | None = None
    if lock is not None:
        lock.acquire()
    try:
        chunks = _frozen_stream(llm, messages, MAX_ANSWER_TOKENS)
        try:
            for chunk in chunks:
                choice = chunk["choices"][0]
                piece = choice["delta"].get("content") or ""
                if piece:
                    if first_ns is None:
                        first_ns = time.perf_counter_ns()
                    pieces.append(piece)
                    if on_token is not None:
                        on_token(piece)
                if choice.get("finish_reason"):
                    stopped = choice["finish_reason"]
                    break
                if time.monotonic() >= deadline:
                    stopped = "timeout"
                    break
        finally:
            chunks.close()
    finally:
        if lock is not None:
            lock.release()
    end = time.perf_counter_ns()
    first_ns = first_ns if first_ns is not None else end
    ttft_ms = (first_ns - start) / 1e6
    timings.add("first token", ttft_ms)
    timings.add("generation", (end - first_ns) / 1e6)
    raw = "".join(pieces)
    text = raw.strip()
    answer_tokens = max(len(pieces), llm.count_tokens(raw) if raw else 0)
    return LegacyAnswer(
        question=question,
        text=text,
        sources=sources,
        cited=find_citations(text, len(sources)),
        timings=timings,
        hits=result.hits,
        messages=messages,
        prompt_tokens=prompt_tokens,
        answer_tokens=answer_tokens,
        ttft_ms=ttft_ms,
        stopped=stopped or "stop",
    )
