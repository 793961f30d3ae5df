"""GUI test setup: windows built on the fast hash embedder and a scripted LLM, always shut down cleanly."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from almanac.core.settings import Settings
from app_helpers import FakeLLM


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
        assert not window.documents._jobs.isRunning()
