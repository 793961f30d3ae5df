"""Grounded answers: retrieve passages, pack them into the model's context, stream a cited reply.

The model only sees numbered passages from the user's files and is asked to cite them like [1]; the
`Answer` carries those passages, the numbers the reply actually cited, and the timings of every stage.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import PurePath
from typing import Protocol

from .errors import QueryError
from .hits import Hit, Mode, SearchResult
from .llm import LocalLLM, StreamResult
from .timing import Timings

# Wording tuned on SmolLM2-135M: a literal "like [1]" example made it cite [1] whatever passage it used,
# and the plain "in square brackets" cited the right passage more often.
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

# Room kept for tokenization at the seams between separately counted pieces; the final prompt is then
# counted exactly, so this only saves a recount.
SAFETY_TOKENS = 16
MIN_TRUNCATED_TOKENS = 50  # a shorter stub of a passage is more noise than help
ELLIPSIS = " …"


class SearcherLike(Protocol):
    def search(
        self, query: str, *, k: int = 10, mode: Mode = "hybrid", folders: list[str] | None = None
    ) -> SearchResult: ...


@dataclass
class Source:
    n: int  # the [n] the passage carries in the prompt
    hit: Hit

    def to_json(self) -> dict:
        hit = self.hit
        return {
            "n": self.n,
            "path": hit.path,
            "page": hit.page,
            "heading": hit.heading,
            "score": round(hit.score, 6),
            "keyword_rank": hit.keyword_rank,
            "vector_rank": hit.vector_rank,
            "snippet": hit.snippet,
        }


@dataclass
class Answer:
    question: str
    text: str
    sources: list[Source]  # the passages given to the model, numbered from 1
    cited: list[int]  # valid source numbers cited in `text`, in order of first appearance
    timings: Timings
    prompt_tokens: int = 0
    answer_tokens: int = 0
    tokens_per_s: float = 0.0
    ttft_ms: float = 0.0  # from the start of generation (prompt evaluation included) to the first piece
    stopped: str = "stop"  # "stop" | "length" | "cancelled" | "timeout" | "no context"
    model: str = ""

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "sources": [s.to_json() for s in self.sources],
            "cited": list(self.cited),
            "timings_ms": {name: round(ms, 2) for name, ms in self.timings.stages.items()},
            "prompt_tokens": self.prompt_tokens,
            "answer_tokens": self.answer_tokens,
            "tokens_per_s": round(self.tokens_per_s, 2),
            "ttft_ms": round(self.ttft_ms, 2),
            "stopped": self.stopped,
            "model": self.model,
        }


# -- prompt ------------------------------------------------------------------------------------------


def _label(n: int, hit: Hit) -> str:
    parts = [f"[{n}] {PurePath(hit.path).name or hit.path}"]
    if hit.page is not None:
        parts.append(f"page {hit.page}")
    if hit.heading:
        parts.append(f"section {hit.heading}")
    return ", ".join(parts)


def _passage(n: int, hit: Hit, text: str) -> str:
    # The number is repeated after the text: a small model tends to copy the sentence it answers from,
    # and then copies the citation with it (SmolLM2-135M cites far more often this way).
    return f"{_label(n, hit)}\n{text.strip()} [{n}]"


def _messages(question: str, passages: list[str]) -> list[dict]:
    body = "\n\n".join(passages) if passages else "(none)"
    user = f"Passages:\n\n{body}\n\nQuestion: {question}\n\n{ANSWER_INSTRUCTION}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def _truncate(llm: LocalLLM, n: int, hit: Hit, room: int) -> str | None:
    """The longest word-boundary prefix of the passage that fits in `room` tokens, or None."""
    text = hit.text.strip()
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    lo, hi, best = 1, len(ends) - 1, None  # the whole passage already did not fit
    while lo <= hi:
        mid = (lo + hi) // 2
        candidate = _passage(n, hit, text[: ends[mid - 1]] + ELLIPSIS)
        if llm.count_tokens(candidate + "\n\n") <= room:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def build_prompt(
    question: str, hits: list[Hit], llm: LocalLLM, *, max_answer_tokens: int
) -> tuple[list[dict], list[Source], int]:
    """Pack passages best-first into the context window by token count.

    Guarantees prompt tokens + `max_answer_tokens` <= `llm.n_ctx`. A passage that does not fit whole is
    cut at a word boundary when at least MIN_TRUNCATED_TOKENS remain, else skipped (a shorter one later
    may still fit). Returns (chat messages, the sources used numbered from 1, exact prompt tokens).
    """
    llm.load()
    budget = llm.n_ctx - max_answer_tokens
    base = llm.count_chat_tokens(_messages(question, []))
    if base + SAFETY_TOKENS > budget:
        raise QueryError(
            f"The question is too long for the model's context window ({llm.n_ctx} tokens); shorten it."
        )
    # The "(none)" placeholder in the empty prompt is counted in `base` and given back as slack.
    room = budget - base - SAFETY_TOKENS
    passages: list[str] = []
    sources: list[Source] = []
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
        sources.append(Source(n, hit))
        room -= cost

    messages = _messages(question, passages)
    prompt_tokens = llm.count_chat_tokens(messages)
    while prompt_tokens > budget and passages:  # seams tokenized worse than the margin: drop the last
        passages.pop()
        sources.pop()
        messages = _messages(question, passages)
        prompt_tokens = llm.count_chat_tokens(messages)
    return messages, sources, prompt_tokens


# -- citations ---------------------------------------------------------------------------------------

_BRACKET = re.compile(r"\[([^\[\]]{1,60})\]")
_ITEM = re.compile(r"^\s*(\d{1,4})\s*(?:[-–—]\s*(\d{1,4})\s*)?$")
_SEPARATOR = re.compile(r",|;|\band\b")


def find_citations(text: str, n_sources: int) -> list[int]:
    """Source numbers cited in `text` ([1], [1, 2], [1][3], [2-3]), first appearance first, deduplicated.

    Numbers outside 1..n_sources are ignored; so is a bracket holding anything but numbers and ranges.
    """
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
            # Clamped so a stray "[1-9999]" cannot become a huge loop.
            for n in range(max(first, 1), min(last, n_sources) + 1):
                if n not in seen:
                    seen.add(n)
                    cited.append(n)
    return cited


# -- answering ---------------------------------------------------------------------------------------


class Answerer:
    """Answers questions from the user's library with a local model, citing the passages it used."""

    def __init__(
        self,
        searcher: SearcherLike,
        llm: LocalLLM,
        *,
        top_k: int = 5,
        max_answer_tokens: int = 384,
        timeout_s: float = 120.0,
        max_distance: float = 0.75,
    ) -> None:
        self.searcher = searcher
        self.llm = llm
        self.top_k = top_k
        self.max_answer_tokens = max_answer_tokens
        self.timeout_s = timeout_s
        # A hit with no keyword match is only relevant if its cosine distance is at most this.
        self.max_distance = max_distance

    def is_relevant(self, hit: Hit) -> bool:
        if hit.keyword_rank is not None:
            return True
        return hit.vector_distance is not None and hit.vector_distance <= self.max_distance

    def ask(
        self,
        question: str,
        *,
        on_token: Callable[[str], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        folders: list[str] | None = None,
        mode: Mode = "hybrid",
    ) -> Answer:
        """Answer `question`; a cancel returns the partial answer with stopped="cancelled"."""
        question = question.strip()
        if not question:
            raise QueryError("Type a question to ask.")
        timings = Timings()
        result = self.searcher.search(question, k=self.top_k, mode=mode, folders=folders)
        timings.merge(result.timings)

        def partial(stopped: str, text: str = "") -> Answer:
            return Answer(question, text, [], [], timings, stopped=stopped, model=self.llm.name)

        # Unrelated passages only tempt a small model into inventing an answer: don't run it at all.
        hits = [hit for hit in result.hits if self.is_relevant(hit)]
        if not hits:
            return partial("no context", NO_CONTEXT_TEXT)
        if cancel is not None and cancel():
            return partial("cancelled")

        if not self.llm.loaded:
            load_ms = self.llm.load()
            if load_ms > 0:  # 0.0: another thread loaded it meanwhile, so this question did not wait
                timings.add("model load", load_ms)
        if cancel is not None and cancel():
            return partial("cancelled")
        with timings.stage("prompt"):
            messages, sources, prompt_tokens = build_prompt(
                question, hits, self.llm, max_answer_tokens=self.max_answer_tokens
            )
        if not sources:
            return partial("no context", NO_CONTEXT_TEXT)

        pieces: list[str] = []
        stream = StreamResult()
        start = time.perf_counter_ns()
        first_ns: int | None = None
        with closing(
            self.llm.stream_chat(
                messages,
                max_tokens=self.max_answer_tokens,
                cancel=cancel,
                timeout_s=self.timeout_s,
                result=stream,
            )
        ) as pieces_iter:
            for piece in pieces_iter:
                if first_ns is None:
                    first_ns = time.perf_counter_ns()
                pieces.append(piece)
                if on_token is not None:
                    on_token(piece)
        end = time.perf_counter_ns()
        first_ns = first_ns if first_ns is not None else end
        ttft_ms = (first_ns - start) / 1e6
        timings.add("first token", ttft_ms)
        timings.add("generation", (end - first_ns) / 1e6)

        text = "".join(pieces).strip()
        answer_tokens = stream.completion_tokens or (self.llm.count_tokens(text) if text else 0)
        seconds = (end - start) / 1e9
        return Answer(
            question=question,
            text=text,
            sources=sources,
            cited=find_citations(text, len(sources)),
            timings=timings,
            prompt_tokens=prompt_tokens,
            answer_tokens=answer_tokens,
            tokens_per_s=answer_tokens / seconds if seconds > 0 and answer_tokens else 0.0,
            ttft_ms=ttft_ms,
            stopped=stream.stopped or "stop",
            model=self.llm.name,
        )
