"""An ordered chain of answer backends with retries, cool-downs and a record of every attempt.

Rules (documented in the README):
- Backends are tried in order. A transient failure (connection refused or dropped, rate limit, a 5xx) is
  retried on the same backend with exponential backoff, up to `retries` times; other failures move on.
- `context_overflow` is retried on the same backend with a smaller prompt (`shrink`), never another model.
- A backend whose requests failed `cooldown_after` times in a row is skipped for `cooldown_s`, then tried
  again; one success resets it. The last backend (the in-process model) is never skipped.
- Fallback happens only before the first token. After it, a failure ends the answer: what arrived stays,
  `stopped` is the error's category and `note` says what happened.
- Cancelling ends the answer at once with stopped="cancelled"; no other backend is tried.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .backends import BackendError, Category, LocalBackend, OpenAIBackend, Timeouts
from .errors import AlmanacError
from .keys import get_api_key
from .streaming import Cancel, ChatStream, StreamResult


class Backend(ChatStream, Protocol):
    name: str


@dataclass
class Attempt:
    backend: str
    outcome: str  # "answered" | "failed" | "retried" | "skipped" | "cancelled"
    error_category: Category | None
    ms: float
    detail: str = ""  # the error message, for the GUI's "why it fell back"

    def to_json(self) -> dict:
        return {
            "backend": self.backend,
            "outcome": self.outcome,
            "error_category": self.error_category,
            "ms": round(self.ms, 1),
        }


@dataclass
class ChainResult(StreamResult):
    """A StreamResult that also says who answered and what was tried before."""

    backend: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    note: str = ""  # set when an answer was cut off after its first token


class NoBackendAnswered(BackendError):
    """Every backend in the chain failed before its first token."""


@dataclass(frozen=True)
class Policy:
    retries: int = 2
    backoff_s: float = 0.5
    cooldown_after: int = 2
    cooldown_s: float = 60.0


@dataclass
class _Health:
    failures: int = 0  # requests in a row that ended in failure
    cooling_until: float = 0.0
    last_category: Category | None = None


def shrink_longest_paragraph(messages: list[dict]) -> list[dict] | None:
    """A smaller prompt: the longest paragraph of the last user message (a passage) dropped, or None.

    Generic on purpose: it needs no knowledge of the prompt's layout, since the question and instructions
    are short paragraphs and passages long ones.
    """
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            paragraphs = messages[i]["content"].split("\n\n")
            if len(paragraphs) < 3:
                return None
            longest = max(range(len(paragraphs)), key=lambda j: len(paragraphs[j]))
            kept = "\n\n".join(p for j, p in enumerate(paragraphs) if j != longest)
            smaller = dict(messages[i], content=kept)
            return [*messages[:i], smaller, *messages[i + 1 :]]
    return None


class FallbackChain(ChatStream):
    """Answers through the first backend that can; itself a backend (the same `stream_chat` seam).

    Its stream yields the first backend's answer that starts and fills `result` (a ChainResult, by default,
    gets the attempts)."""

    result_type = ChainResult

    def __init__(
        self,
        backends: list[Backend],
        *,
        policy: Policy = Policy(),
        shrink: Callable[[list[dict]], list[dict] | None] | None = shrink_longest_paragraph,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise ValueError("a fallback chain needs at least one backend")
        self.backends = backends
        self.policy = policy
        self.shrink = shrink
        self._clock = clock
        self._health = {b.name: _Health() for b in backends}
        self._lock = threading.Lock()  # health is shared by the GUI's and the CLI's threads
        self.name = " → ".join(b.name for b in backends)

    def health(self, name: str) -> tuple[int, float]:
        """(failures in a row, seconds of cool-down left) for a backend."""
        with self._lock:
            h = self._health[name]
            return h.failures, max(0.0, h.cooling_until - self._clock())

    def _stream(self, messages: list[dict], max_tokens: int, cancel: Cancel, timeout_s: float | None,
                result: StreamResult) -> Generator[str, None, None]:
        attempts: list[Attempt] = result.attempts if isinstance(result, ChainResult) else []
        last_error: BackendError | None = None
        for index, backend in enumerate(self.backends):
            health = self._health[backend.name]
            if index < len(self.backends) - 1 and self._cooling(health):
                attempts.append(Attempt(backend.name, "skipped", health.last_category, 0.0, "cooling down"))
                continue
            prompt = messages
            tries = 0
            while True:
                inner = StreamResult()
                start = time.perf_counter()
                started = False
                stream = backend.stream_chat(
                    prompt, max_tokens=max_tokens, cancel=cancel, timeout_s=timeout_s, result=inner
                )
                try:
                    for piece in stream:
                        if not started:
                            started = True
                            _set(result, backend=backend.name)
                        yield piece
                except BackendError as err:
                    ms = (time.perf_counter() - start) * 1000
                    if started:  # too late to fall back: the user already reads this answer
                        attempts.append(Attempt(backend.name, "failed", err.category, ms, str(err)))
                        self._failed(health, err.category)
                        _copy(inner, result)
                        result.stopped = err.category
                        _set(result, note=f"The answer was cut off: {err}")
                        return
                    if cancel is not None and cancel():
                        attempts.append(Attempt(backend.name, "cancelled", "cancelled", ms))
                        result.stopped = "cancelled"
                        return
                    overflow = err.category == "context_overflow" and self.shrink is not None
                    smaller = self.shrink(prompt) if overflow else None
                    if smaller is not None:
                        attempts.append(Attempt(backend.name, "retried", err.category, ms, str(err)))
                        prompt = smaller
                        continue
                    if err.retryable and tries < self.policy.retries:
                        attempts.append(Attempt(backend.name, "retried", err.category, ms, str(err)))
                        tries += 1
                        delay = err.retry_after_s or self.policy.backoff_s * 2 ** (tries - 1)
                        if _sleep(delay, cancel):
                            result.stopped = "cancelled"
                            return
                        continue
                    attempts.append(Attempt(backend.name, "failed", err.category, ms, str(err)))
                    self._failed(health, err.category)
                    last_error = err
                    break
                finally:
                    stream.close()
                ms = (time.perf_counter() - start) * 1000
                _copy(inner, result)
                if inner.stopped == "cancelled":
                    attempts.append(Attempt(backend.name, "cancelled", "cancelled", ms))
                    return
                attempts.append(Attempt(backend.name, "answered", None, ms))
                _set(result, backend=backend.name)
                self._succeeded(health)
                return
        summary = "; ".join(
            f"{a.backend}: {a.detail or a.outcome}" for a in attempts if a.outcome != "retried"
        )
        category = last_error.category if last_error is not None else "connection"
        raise NoBackendAnswered(category, f"No answer backend could answer. {summary}")

    # -- health --------------------------------------------------------------------------------------

    def _cooling(self, health: _Health) -> bool:
        with self._lock:
            return health.cooling_until > self._clock()

    def _failed(self, health: _Health, category: Category) -> None:
        if category == "cancelled":
            return
        with self._lock:
            health.failures += 1
            health.last_category = category
            if health.failures >= self.policy.cooldown_after:
                health.cooling_until = self._clock() + self.policy.cooldown_s

    def _succeeded(self, health: _Health) -> None:
        with self._lock:
            health.failures = 0
            health.cooling_until = 0.0


def _copy(inner: StreamResult, outer: StreamResult) -> None:
    outer.stopped = inner.stopped
    outer.prompt_tokens = inner.prompt_tokens
    outer.completion_tokens = inner.completion_tokens


def _set(result: StreamResult, **values: str) -> None:
    if isinstance(result, ChainResult):
        for key, value in values.items():
            setattr(result, key, value)


def _sleep(seconds: float, cancel: Callable[[], bool] | None) -> bool:
    """Sleep, waking early on cancel; True if cancelled."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if cancel is not None and cancel():
            return True
        time.sleep(min(left, 0.05))
    return cancel is not None and cancel()


def chain_from_settings(servers: list[dict], local: Backend) -> FallbackChain:
    """The chain the app answers with: the configured servers in order, then the in-process model.

    Each server is {"name", "base_url", "model"} with optional "connect_timeout_s", "first_token_timeout_s",
    "idle_timeout_s", "total_timeout_s" and "enabled"; its API key comes from the key store, under its name
    (or its base URL when it has none).
    """
    backends: list[Backend] = []
    default = Timeouts()
    for spec in servers:
        if not spec.get("enabled", True):
            continue
        try:
            name, base_url, model = spec.get("name") or "", spec["base_url"], spec["model"]
            timeouts = Timeouts(
                connect=float(spec.get("connect_timeout_s", default.connect)),
                first_token=float(spec.get("first_token_timeout_s", default.first_token)),
                idle=float(spec.get("idle_timeout_s", default.idle)),
                total=float(spec.get("total_timeout_s", default.total)),
            )
        except (KeyError, TypeError, ValueError) as err:
            message = f"An answer server in the settings is incomplete or malformed ({err})."
            raise AlmanacError(message) from err
        key_name = name or base_url
        backends.append(
            OpenAIBackend(base_url, model, name=name, api_key=get_api_key(key_name), timeouts=timeouts)
        )
    backends.append(local)
    return FallbackChain(backends)


class ChainedModel(ChatStream):
    """A chat model whose answers come through a fallback chain ending in `local`.

    It is a `core.answer.ChatModel`: loading, token counting and the context size are the local model's
    (the prompt is built with its tokenizer; a server that finds it too long reports context_overflow and
    gets a smaller one), while `stream_chat` goes through the chain.
    """

    result_type = ChainResult

    def __init__(self, local: Any, servers: list[dict]) -> None:
        self.local = local
        self.chain = chain_from_settings(servers, LocalBackend(local))

    def set_servers(self, servers: list[dict]) -> None:
        """Answer through these servers from the next question on (their health starts afresh)."""
        self.chain = chain_from_settings(servers, LocalBackend(self.local))

    @property
    def name(self) -> str:
        return self.local.name

    @property
    def n_ctx(self) -> int:
        return self.local.n_ctx

    @property
    def loaded(self) -> bool:
        return self.local.loaded

    def load(self) -> float:
        return self.local.load()

    def count_tokens(self, text: str) -> int:
        return self.local.count_tokens(text)

    def count_chat_tokens(self, messages: list[dict]) -> int:
        return self.local.count_chat_tokens(messages)

    def _stream(self, messages: list[dict], max_tokens: int, cancel: Cancel, timeout_s: float | None,
                result: StreamResult) -> Generator[str, None, None]:
        return self.chain.stream_chat(
            messages, max_tokens=max_tokens, cancel=cancel, timeout_s=timeout_s, result=result
        )

    def close(self) -> None:
        self.local.close()
