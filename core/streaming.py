"""The one `stream_chat` seam shared by the in-process model, the answer servers and the fallback chain.

`ChatStream` is both the protocol the answer path types against (`core.answer.ChatModel`,
`core.fallback.Backend`) and, subclassed explicitly, the one definition of `stream_chat`: it binds the call
and hands back `_stream`'s generator, so the work (the model's lock, a connection) starts at the first
`next()`. Implementations write only `_stream`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import ClassVar, Protocol

Cancel = Callable[[], bool] | None


@dataclass
class StreamResult:
    """How one `stream_chat` call ended; filled in as the stream runs."""

    stopped: str = ""  # "stop" | "length" | "cancelled" | "timeout"; "" while running
    completion_tokens: int = 0
    prompt_tokens: int = 0


class ChatStream(Protocol):
    """Something that streams a chat reply. `result_type` is what `stream_chat` fills when given none."""

    result_type: ClassVar[type[StreamResult]] = StreamResult

    def stream_chat(
        self,
        messages: list[dict],
        *,
        max_tokens: int,
        cancel: Cancel = None,
        timeout_s: float | None = None,
        result: StreamResult | None = None,
    ) -> Generator[str, None, None]:
        """Yield the reply to `messages` piece by piece; how it ended is written to `result`.

        `cancel()` and `timeout_s` are checked while it runs. Consume the iterator to its end or close it.
        """
        result = result if result is not None else self.result_type()
        return self._stream(messages, max_tokens, cancel, timeout_s, result)

    def _stream(self, messages: list[dict], max_tokens: int, cancel: Cancel, timeout_s: float | None,
                result: StreamResult) -> Generator[str, None, None]:
        raise NotImplementedError
