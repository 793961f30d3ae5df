"""The one answer pipeline of the CLI and the GUI: real SQLite index, hash embedder, a scripted model."""

from __future__ import annotations

from pathlib import Path

from almanac.core.answer import QuickAnswerFound, SourcesFound, TokensArrived
from almanac.core.embedding import HashEmbedder
from almanac.core.library import Library
from almanac.core.llm import StreamResult
from almanac.core.pipeline import BUNDLED_ANSWER_TOKENS, BUNDLED_PROMPT_TOKENS, AnswerPipeline, answer_config
from almanac.core.settings import Settings


class Scripted:
    name = "scripted.gguf"
    n_ctx = 2048

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.loaded = False
        self.closed = False
        self.prompts: list[list[dict]] = []

    def load(self) -> float:
        self.loaded = True
        return 5.0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def count_chat_tokens(self, messages: list[dict]) -> int:
        return sum(len(m["content"].split()) + 4 for m in messages)

    def stream_chat(self, messages, *, max_tokens, cancel=None, timeout_s=None, result=None):
        self.prompts.append(messages)
        result = result if result is not None else StreamResult()
        result.stopped = "stop"
        yield from [self.reply]

    def close(self) -> None:
        self.closed = True


def test_bundled_model_gets_a_short_prompt_and_a_capped_answer():
    config = answer_config(Settings(max_answer_tokens=384, top_k=4), n_ctx=4096)
    assert (config.prompt_budget, config.max_answer_tokens, config.top_k) == (
        BUNDLED_PROMPT_TOKENS,
        BUNDLED_ANSWER_TOKENS,
        4,
    )
    assert answer_config(Settings(max_answer_tokens=64), n_ctx=4096).max_answer_tokens == 64


def test_a_chosen_model_reads_more_as_its_context_grows():
    chosen = Settings(llm_path="/models/big.gguf", max_answer_tokens=384)
    assert answer_config(chosen, n_ctx=4096).prompt_budget == 1024
    assert answer_config(chosen, n_ctx=32768).prompt_budget == 2048
    assert answer_config(chosen, n_ctx=1024).prompt_budget == 400
    assert answer_config(chosen, n_ctx=4096).max_answer_tokens == 384


def test_ask_on_a_real_index_and_model_lifecycle(tmp_path: Path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "atlas.md").write_text(
        "# Atlas\n\nThe capital of Freedonia is Blorbville. It lies on the coast.\n"
    )
    (folder / "cheese.txt").write_text("Sylvania exports cheese and timber to its neighbours.\n")
    embedder = HashEmbedder()
    with Library(tmp_path / "index.db", settings=Settings(), embedder=embedder) as lib:
        lib.index([lib.add_folder(folder)])
    models: list[Scripted] = []

    def factory(settings: Settings) -> Scripted:
        models.append(Scripted("Blorbville is the capital [1]."))
        return models[-1]

    pipeline = AnswerPipeline(tmp_path / "index.db", embedder, Settings(), model_factory=factory)
    events: list = []
    answer = pipeline.ask("What is the capital of Freedonia?", on_event=events.append)
    assert [type(e) for e in events] == [SourcesFound, QuickAnswerFound, TokensArrived]
    assert answer.text == "Blorbville is the capital [1]." and answer.cited == [1]
    assert answer.sources[0].hit.path.endswith("atlas.md")
    assert answer.quick_answer is not None and "Blorbville" in answer.quick_answer.text
    assert answer.timings.stages["model load"] == 5.0
    assert len(models) == 1 and models[0].loaded

    pipeline.ask("Who exports cheese?")
    assert len(models) == 1  # kept warm
    pipeline.configure(Settings(top_k=2), reload_model=True)
    assert models[0].closed
    pipeline.ask("What is the capital of Freedonia?")
    assert len(models) == 2
    pipeline.close()
    assert models[1].closed
