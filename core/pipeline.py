"""The one answer pipeline that the CLI and the GUI share: a searcher, the model and the answer settings.

Create it, ask with it and close it on one thread (the GUI's ask thread, or the CLI's main thread): the
searcher holds a read connection of that thread's own. The model is loaded on first use and kept warm.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .answer import Answer, AnswerConfig, Answerer, ChatModel, EventFn
from .embedding import Embedder
from .hits import Mode
from .library import open_searcher
from .llm import LocalLLM
from .search import Searcher
from .settings import Settings

ModelFactory = Callable[[Settings], ChatModel]

# The bundled SmolLM2-135M: a ~400-token prompt keeps the time to first token near 2 s on 2 cores, and past
# ~100 tokens its answers only repeat or wander.
BUNDLED_PROMPT_TOKENS = 400
BUNDLED_ANSWER_TOKENS = 128
# A model chosen in Settings reads more evidence: a quarter of its context window, within these bounds.
LARGE_PROMPT_TOKENS = (400, 2048)


def default_model(settings: Settings) -> LocalLLM:
    return LocalLLM(
        Path(settings.llm_path) if settings.llm_path else None,
        n_ctx=settings.context_size,
        n_threads=settings.threads,  # 0: core.llm.default_threads()
        n_gpu_layers=settings.gpu_layers,
    )


def answer_config(settings: Settings, n_ctx: int) -> AnswerConfig:
    """How much evidence the model reads and how long it may write, for the model in `settings`."""
    if not settings.llm_path:
        prompt, answer = BUNDLED_PROMPT_TOKENS, min(settings.max_answer_tokens, BUNDLED_ANSWER_TOKENS)
    else:
        low, high = LARGE_PROMPT_TOKENS
        prompt, answer = max(low, min(n_ctx // 4, high)), settings.max_answer_tokens
    return AnswerConfig(
        top_k=settings.top_k,
        prompt_budget=prompt,
        max_answer_tokens=answer,
        timeout_s=settings.answer_timeout_s,
    )


class AnswerPipeline:
    """Answers questions from the library at `db_path`; see the module docstring for threading."""

    def __init__(
        self,
        db_path: Path,
        embedder: Embedder | None,
        settings: Settings,
        *,
        model_factory: ModelFactory = default_model,
    ) -> None:
        self.db_path = db_path
        self.embedder = embedder
        self.settings = settings
        self._model_factory = model_factory
        self._model: ChatModel | None = None
        self._searcher: Searcher | None = None

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            self._model = self._model_factory(self.settings)
        return self._model

    def load_model(self) -> float:
        """Load the model now (milliseconds spent; 0.0 when it was warm). A failure leaves no model behind,
        so the next call tries again, perhaps with new settings."""
        try:
            return self.model.load()
        except Exception:
            self.close_model()
            raise

    def set_embedder(self, embedder: Embedder) -> None:
        """The model that embeds questions and sentences (the GUI learns it after the library opens)."""
        self._close_searcher()
        self.embedder = embedder

    def configure(self, settings: Settings, *, reload_model: bool) -> None:
        self.settings = settings
        self._close_searcher()  # fusion weights may have changed
        if reload_model:
            self.close_model()

    def ask(
        self,
        question: str,
        *,
        on_event: EventFn | None = None,
        cancel: Callable[[], bool] | None = None,
        folders: list[str] | None = None,
        mode: Mode = "hybrid",
    ) -> Answer:
        if self.embedder is None:
            raise RuntimeError("AnswerPipeline.ask before set_embedder")
        if self._searcher is None:
            self._searcher = open_searcher(self.db_path, self.embedder, self.settings)
        model = self.model
        config = answer_config(self.settings, model.n_ctx)
        answerer = Answerer(self._searcher, model, self.embedder, config)
        return answerer.ask(question, on_event=on_event, cancel=cancel, folders=folders, mode=mode)

    def close_model(self) -> None:
        if self._model is not None:
            self._model.close()
            self._model = None

    def _close_searcher(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None

    def close(self) -> None:
        self._close_searcher()
        self.close_model()
