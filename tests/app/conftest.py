"""GUI test setup: windows built on the fast hash embedder and a scripted LLM, always shut down cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from almanac.core.llm import StreamResult
from almanac.core.settings import Settings

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


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def docs(tmp_path):
    """Two readable documents and one that fails to extract (a .docx that is not a zip)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "garden.md").write_text(
        "# Garden notes\n\nThe tomato plants need watering every morning. Basil grows well beside them.\n\n"
        "## Compost\n\nTurn the compost every two weeks to keep it aerobic.\n",
        encoding="utf-8",
    )
    (folder / "trip.txt").write_text(
        "Our trip to Lisbon is planned for May. The flight leaves at 7:40 from gate 12.\n"
        "We will stay at a small hotel in Alfama near the castle.\n",
        encoding="utf-8",
    )
    (folder / "broken.docx").write_bytes(b"this is not a zip archive")
    return folder


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def app_errors() -> Iterator[_ErrorLog]:
    """Fails a test in which the app logged an unexpected error (a bug in a background job, say).

    A test that provokes one on purpose clears `app_errors.records`.
    """
    handler = _ErrorLog()
    logger = logging.getLogger("almanac")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    assert not handler.records, [r.getMessage() for r in handler.records]


@pytest.fixture
def make_window(qtbot, hash_embedder, settings):
    """Build MainWindows (hash embedder, FakeLLM unless given); each is closed and its threads joined."""
    from almanac.app.main_window import MainWindow

    windows = []

    def make(**kwargs):
        kwargs.setdefault("settings", settings)
        kwargs.setdefault("embedder_factory", lambda s: hash_embedder)
        kwargs.setdefault("llm_factory", lambda s: FakeLLM())
        window = MainWindow(**kwargs)
        window.shown_messages = []
        window.reporter.shown.connect(lambda kind, text: window.shown_messages.append((kind, text)))
        windows.append(window)
        window.show()
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.index._jobs.isRunning()
        assert not window.asker._jobs.isRunning()


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
        lambda: window.library_panel._state is not None
        and any(f.path == str(folder) for f in window.library_panel._state.status.folders)
        and not window.index.busy,
        timeout=timeout,
    )
