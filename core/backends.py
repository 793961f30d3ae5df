"""Answer backends behind one seam: `stream_chat(messages, max_tokens=, cancel=, timeout_s=, result=)`.

`OpenAIBackend` streams from any OpenAI-compatible chat endpoint (llama.cpp's server, llama-cpp-python's
`llama_cpp.server`, Ollama, LM Studio, vLLM); `LocalBackend` wraps the in-process `LocalLLM`. Failures
are `BackendError`s with a named category, so the fallback chain, the stats and the user all see the
same words: timeout, connection, rate_limit, context_overflow, model_error, bad_output, cancelled.
"""

from __future__ import annotations

import http.client
import json
import logging
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import AlmanacError, ModelError
from .llm import SEED, TEMPERATURE
from .outcomes import BACKEND_CATEGORIES, BackendCategory
from .streaming import Cancel, ChatStream, StreamResult

log = logging.getLogger(__name__)

# One vocabulary for the log, the stats and the UI (core/outcomes.py).
Category = BackendCategory
CATEGORIES = BACKEND_CATEGORIES
# Words servers use when a prompt is longer than the model's context (OpenAI, llama.cpp, vLLM, Ollama).
_OVERFLOW_HINTS = ("context length", "context_length", "context window", "maximum context", "too many tokens",
                   "exceeds the available context", "n_ctx", "prompt is too long")
_POLL_S = 0.05  # how often a waiting stream looks at cancel and its deadlines


class BackendError(AlmanacError):
    """One backend failed to answer; `category` says how, `retryable` whether trying again may help."""

    def __init__(
        self, category: Category, message: str, *, retryable: bool = False, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message)
        self.category = category
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `first_token` counts from sending the request (prompt evaluation included); `idle` is the
    longest silence allowed between tokens after the first; `total` bounds the whole answer."""

    connect: float = 5.0
    first_token: float = 60.0
    idle: float = 30.0
    total: float = 300.0


class OpenAIBackend(ChatStream):
    """Streams chat completions from an OpenAI-compatible server (`POST {base_url}/chat/completions`).

    Its stream raises BackendError; a cancel ends it with stopped="cancelled"."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        name: str = "",
        api_key: str | None = None,
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        parts = urllib.parse.urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AlmanacError(f"The server address {base_url!r} is not an http:// or https:// URL.")
        self._parts = parts
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = name or f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
        self._api_key = api_key  # sent in a header only; never logged, never in a message
        self.timeouts = timeouts

    def __repr__(self) -> str:  # no key in reprs that reach logs or crash reports
        return f"OpenAIBackend(name={self.name!r}, base_url={self.base_url!r}, model={self.model!r})"

    def _stream(self, messages: list[dict], max_tokens: int, cancel: Cancel, timeout_s: float | None,
                result: StreamResult) -> Generator[str, None, None]:
        total_s = self.timeouts.total if timeout_s is None else min(timeout_s, self.timeouts.total)
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": TEMPERATURE,
            "seed": SEED,
            "stream": True,
        }
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        conn = self._connection()
        reader = threading.Thread(
            target=self._read, args=(conn, body, events), name=f"backend-{self.name}", daemon=True
        )
        start = time.monotonic()
        total_deadline = start + total_s
        deadline = min(start + self.timeouts.first_token, total_deadline)
        first = True
        pieces = 0
        reader.start()
        try:
            while True:
                if cancel is not None and cancel():
                    result.stopped = "cancelled"
                    return
                now = time.monotonic()
                if now >= deadline:
                    raise self._timed_out(first, now - start, total_deadline <= deadline)
                try:
                    kind, value = events.get(timeout=min(_POLL_S, deadline - now))
                except queue.Empty:
                    continue
                if kind == "error":
                    raise value
                if kind == "usage":
                    result.prompt_tokens = value.get("prompt_tokens", result.prompt_tokens)
                    result.completion_tokens = value.get("completion_tokens", result.completion_tokens)
                elif kind == "piece":
                    first = False
                    pieces += 1
                    deadline = min(time.monotonic() + self.timeouts.idle, total_deadline)
                    yield value
                elif kind == "finish":
                    result.stopped = "length" if value == "length" else "stop"
                    return
                elif kind == "end":
                    if first:
                        raise BackendError("bad_output", f"{self.name} ended its reply without any text.")
                    result.stopped = "stop"
                    return
        except GeneratorExit:
            result.stopped = result.stopped or "cancelled"
            raise
        finally:
            result.completion_tokens = result.completion_tokens or pieces
            _abort(conn)  # unblocks the reader thread, which then exits
            result.stopped = result.stopped or "stop"

    def _timed_out(self, first: bool, waited: float, total: bool) -> BackendError:
        if total:
            what = f"did not finish within {waited:.1f} s"
        elif first:
            what = f"sent no answer within {waited:.1f} s"
        else:
            what = f"stopped sending for {self.timeouts.idle:g} s"
        return BackendError("timeout", f"{self.name} {what}.")

    def _connection(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
        return cls(self._parts.hostname, self._parts.port, timeout=self.timeouts.connect)

    # -- reader thread ----------------------------------------------------------------------------------

    def _read(self, conn: http.client.HTTPConnection, body: dict, events: queue.SimpleQueue) -> None:
        try:
            for event in self._events(conn, body):
                events.put(event)
            events.put(("end", None))
        except BackendError as err:
            events.put(("error", err))
        except Exception as err:  # a failure in this thread must reach the caller, never vanish
            events.put(("error", err))

    def _events(self, conn: http.client.HTTPConnection, body: dict) -> Iterator[tuple[str, Any]]:
        try:
            conn.connect()
        except TimeoutError as err:
            raise BackendError(
                "timeout", f"{self.name} did not accept a connection within {self.timeouts.connect:g} s."
            ) from err
        except OSError as err:
            raise BackendError(
                "connection", f"{self.name} cannot be reached ({err.strerror or err}).", retryable=True
            ) from err
        # From here the caller's deadlines rule; the socket only needs to unblock eventually.
        conn.sock.settimeout(self.timeouts.total)
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        path = (self._parts.path or "") + "/chat/completions"
        try:
            conn.request("POST", path, json.dumps(body).encode("utf-8"), headers)
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as err:
            raise BackendError(
                "connection", f"{self.name} dropped the connection ({err}).", retryable=True
            ) from err
        if response.status != 200:
            raise self._http_error(response)
        try:
            yield from self._sse(response)
        except (OSError, http.client.HTTPException) as err:
            message = f"{self.name} dropped the connection mid-answer ({err})."
            raise BackendError("connection", message) from err

    def _sse(self, response: http.client.HTTPResponse) -> Iterator[tuple[str, Any]]:
        for raw in response:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue  # comments (": ping"), event names and blank separators
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as err:
                raise BackendError("bad_output", f"{self.name} sent something that is not JSON.") from err
            if not isinstance(chunk, dict):
                raise BackendError("bad_output", f"{self.name} sent an unexpected reply.")
            if "error" in chunk:
                raise _error_from_body(self.name, 500, chunk)
            if chunk.get("usage"):
                yield "usage", chunk["usage"]
            choices = chunk.get("choices") or []
            if not choices:
                continue
            choice = choices[0]
            text = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
            if text:
                yield "piece", text
            if choice.get("finish_reason"):
                yield "finish", choice["finish_reason"]
                return

    def _http_error(self, response: http.client.HTTPResponse) -> BackendError:
        try:
            payload = json.loads(response.read(64_000) or b"{}")
        except (ValueError, OSError, http.client.HTTPException):
            payload = {}
        err = _error_from_body(self.name, response.status, payload if isinstance(payload, dict) else {})
        if err.category == "rate_limit":
            retry_after = response.headers.get("Retry-After")
            if retry_after and retry_after.replace(".", "", 1).isdigit():
                err.retry_after_s = float(retry_after)
        return err


def _error_from_body(name: str, status: int, payload: dict) -> BackendError:
    error = payload.get("error")
    message = (error.get("message") if isinstance(error, dict) else error) or payload.get("detail") or ""
    message = str(message)[:300]
    low = message.lower()
    if status == 429:
        return BackendError("rate_limit", f"{name} is busy (rate limited): {message}", retryable=True)
    if any(hint in low for hint in _OVERFLOW_HINTS) or (isinstance(error, dict) and error.get("code") == (
        "context_length_exceeded"
    )):
        return BackendError("context_overflow", f"The prompt is too long for {name}'s model: {message}")
    if status in (401, 403):
        return BackendError("model_error", f"{name} refused the request: check its API key ({status}).")
    if status == 404:
        return BackendError("model_error", f"{name} does not know that model or address (404): {message}")
    transient = status >= 500 or status == 408
    return BackendError("model_error", f"{name} failed ({status}): {message}", retryable=transient)


def _abort(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    conn.close()


class LocalBackend(ChatStream):
    """The in-process model (a LocalLLM, or any object with its `stream_chat`) as a backend; its
    ModelError becomes category model_error."""

    def __init__(self, llm: Any, *, name: str = "") -> None:
        self.llm = llm
        self.name = name or f"local:{llm.name}"

    def _stream(self, messages: list[dict], max_tokens: int, cancel: Cancel, timeout_s: float | None,
                result: StreamResult) -> Generator[str, None, None]:
        stream = self.llm.stream_chat(
            messages, max_tokens=max_tokens, cancel=cancel, timeout_s=timeout_s, result=result
        )
        produced = False
        try:
            for piece in stream:
                produced = True
                yield piece
        except ModelError as err:
            raise BackendError("model_error", str(err)) from err
        finally:
            stream.close()
        if not produced and result.stopped == "timeout":
            raise BackendError("timeout", f"{self.name} wrote nothing within {timeout_s:g} s.")
