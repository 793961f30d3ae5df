"""LocalLLM against the real bundled SmolLM2-135M GGUF (small enough to load in about a second on CPU)."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from almanac.core import llm as llm_module
from almanac.core.errors import ModelError
from almanac.core.llm import (
    BUNDLED_LLM_FILE,
    LocalLLM,
    StreamResult,
    bundled_llm_path,
    gguf_context_length,
)

COUNT_PROMPT = [{"role": "user", "content": "Count from 1 to 100, separated by commas."}]


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    model = LocalLLM(n_ctx=1024, n_threads=1)
    model.load()
    yield model
    model.close()


def test_bundled_llm_path_is_a_gguf() -> None:
    path = bundled_llm_path()
    assert path.name == BUNDLED_LLM_FILE
    assert path.read_bytes()[:4] == b"GGUF"


def test_bundled_llm_path_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llm_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="not installed"):
        bundled_llm_path()


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def test_gguf_context_length_reads_header(tmp_path: Path) -> None:
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 4)
    header += _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama")
    # Arrays of strings and of numbers before the key, as real files have (tokenizer vocabularies).
    header += _gguf_string("x.words") + struct.pack("<IIQ", 9, 8, 2) + _gguf_string("a") + _gguf_string("bc")
    header += _gguf_string("x.ids") + struct.pack("<IIQ", 9, 5, 3) + struct.pack("<3i", 1, 2, 3)
    header += _gguf_string("llama.context_length") + struct.pack("<II", 4, 2048)
    model = tmp_path / "tiny.gguf"
    model.write_bytes(header)
    assert gguf_context_length(model) == 2048
    assert gguf_context_length(bundled_llm_path()) == 8192
    model.write_bytes(header[:40])
    assert gguf_context_length(model) is None
    assert gguf_context_length(tmp_path / "absent.gguf") is None


def test_missing_file_raises_model_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    model = LocalLLM(missing)
    assert model.name == "nope.gguf"
    with pytest.raises(ModelError, match="nope.gguf"):
        model.load()
    assert not model.loaded


def test_not_gguf_raises_model_error(tmp_path: Path) -> None:
    fake = tmp_path / "notes.gguf"
    fake.write_text("this is not a model", encoding="utf-8")
    with pytest.raises(ModelError, match="not a GGUF"):
        LocalLLM(fake).load()


def test_folder_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="folder"):
        LocalLLM(tmp_path).load()


@pytest.mark.slow
def test_damaged_gguf_raises_model_error(tmp_path: Path) -> None:
    # Right magic, truncated body: llama.cpp's own ValueError must come out as a ModelError.
    damaged = tmp_path / "damaged.gguf"
    damaged.write_bytes(bundled_llm_path().read_bytes()[:100_000])
    with pytest.raises(ModelError, match="damaged.gguf"):
        LocalLLM(damaged).load()


@pytest.mark.slow
def test_load_is_idempotent(llm: LocalLLM) -> None:
    first = llm.load()
    assert llm.loaded
    assert llm.load() == 0.0
    assert first >= 0.0
    assert llm.n_ctx == 1024
    assert llm.name == BUNDLED_LLM_FILE


@pytest.mark.slow
def test_fresh_load_reports_time_and_context_capped_at_trained() -> None:
    model = LocalLLM(n_ctx=1_000_000, n_threads=1)
    try:
        assert model.load() > 0.0
        assert model.n_ctx == 8192  # SmolLM2's trained context, not the million asked for
    finally:
        model.close()
    assert not model.loaded


@pytest.mark.slow
def test_count_tokens(llm: LocalLLM) -> None:
    assert llm.count_tokens("") == 0
    short = llm.count_tokens("hello world")
    assert 1 <= short <= 4
    assert llm.count_tokens("hello world " * 50) > 50


@pytest.mark.slow
def test_count_chat_tokens_matches_llama(llm: LocalLLM) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour. [1] <not a tag>"},
    ]
    usage = llm._llama.create_chat_completion(messages=messages, max_tokens=1)["usage"]
    assert llm.count_chat_tokens(messages) == usage["prompt_tokens"]


@pytest.mark.slow
def test_stream_chat_yields_text(llm: LocalLLM) -> None:
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    result = StreamResult()
    pieces = list(llm.stream_chat(messages, max_tokens=32, result=result))
    text = "".join(pieces)
    assert text.strip()
    assert result.stopped in ("stop", "length")
    assert 1 <= result.completion_tokens <= 32
    assert result.completion_tokens >= len(pieces)
    assert result.prompt_tokens == llm.count_chat_tokens(messages)
    assert llm.last_result is result


@pytest.mark.slow
def test_stream_chat_is_reproducible(llm: LocalLLM) -> None:
    messages = [{"role": "user", "content": "Say something about cats."}]
    first = "".join(llm.stream_chat(messages, max_tokens=12))
    second = "".join(llm.stream_chat(messages, max_tokens=12))
    assert first == second


@pytest.mark.slow
def test_stream_chat_stops_at_max_tokens(llm: LocalLLM) -> None:
    result = StreamResult()
    list(llm.stream_chat(COUNT_PROMPT, max_tokens=5, result=result))
    assert result.stopped == "length"
    assert result.completion_tokens <= 6  # a held-back partial piece may be re-tokenized as one more


@pytest.mark.slow
def test_stream_chat_cancel_stops_early(llm: LocalLLM) -> None:
    pieces: list[str] = []
    result = StreamResult()
    for piece in llm.stream_chat(
        COUNT_PROMPT, max_tokens=200, cancel=lambda: len(pieces) >= 3, result=result
    ):
        pieces.append(piece)
    assert result.stopped == "cancelled"
    assert len(pieces) == 3
    # The lock was released: the model is usable again at once.
    assert "".join(llm.stream_chat(COUNT_PROMPT, max_tokens=3))


@pytest.mark.slow
def test_stream_chat_timeout(llm: LocalLLM) -> None:
    result = StreamResult()
    pieces = list(llm.stream_chat(COUNT_PROMPT, max_tokens=200, timeout_s=0.0, result=result))
    assert result.stopped == "timeout"
    assert len(pieces) <= 1


@pytest.mark.slow
def test_stream_chat_closed_early_releases_lock(llm: LocalLLM) -> None:
    stream = llm.stream_chat(COUNT_PROMPT, max_tokens=200)
    next(stream)
    stream.close()
    done = threading.Event()

    def other() -> None:
        list(llm.stream_chat(COUNT_PROMPT, max_tokens=2))
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(timeout=30)
    assert done.is_set()


@pytest.mark.slow
def test_concurrent_streams_are_serialized(llm: LocalLLM) -> None:
    messages = [{"role": "user", "content": "Say something about dogs."}]
    expected = "".join(llm.stream_chat(messages, max_tokens=8))
    outputs: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            outputs.append("".join(llm.stream_chat(messages, max_tokens=8)))
        except BaseException as err:  # reported below; a crash in a thread would otherwise be lost
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert outputs == [expected] * 3
