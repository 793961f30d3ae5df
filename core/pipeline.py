"""The one answer pipeline that the CLI and the GUI share: a searcher, the model and the answer settings.

Create it, ask with it and close it on one thread (the GUI's ask thread, or the CLI's main thread): the
searcher holds a read connection of that thread's own. The model is loaded on first use and kept warm.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import querylog
from .answer import (
    ANSWER_LOGIC,
    SYSTEM_PROMPT,
    Answer,
    AnswerConfig,
    Answerer,
    ChatModel,
    EventFn,
    SourcesFound,
    TokensArrived,
    quick_answer_found,
)
from .answer_cache import (
    AnswerCache,
    answer_from_payload,
    answer_payload,
    cacheable,
    config_key,
    library_check,
)
from .embedding import Embedder
from .errors import QueryError
from .fallback import ChainedModel
from .hits import Mode
from .library import open_searcher
from .llm import LocalLLM
from .outcomes import NOT_IN_FILES_STOPS, category_for_error
from .search import Searcher
from .settings import Settings
from .timing import Timings

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
        self._cache: AnswerCache | None = None
        self._qlog: querylog.QueryLog | None = None
        self.last_query_id: int | None = None  # the query log's id of the last question (for feedback)

    @property
    def model(self) -> ChatModel:
        if self._model is None:
            # Configured answer servers first, this model last (core/fallback.py).
            self._model = ChainedModel(self._model_factory(self.settings), self.settings.answer_servers)
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
        servers_changed = settings.answer_servers != self.settings.answer_servers
        self.settings = settings
        if self._qlog is not None:  # history settings may have changed
            self._qlog.close()
            self._qlog = None
        self._close_searcher()  # fusion weights may have changed
        if reload_model:
            self.close_model()
        elif servers_changed and isinstance(self._model, ChainedModel):
            self._model.set_servers(settings.answer_servers)  # the local model stays loaded

    def ask(
        self,
        question: str,
        *,
        on_event: EventFn | None = None,
        cancel: Callable[[], bool] | None = None,
        folders: list[str] | None = None,
        mode: Mode = "hybrid",
        fresh: bool = False,
    ) -> Answer:
        """Answer `question`, from the answer cache when it can (unless `fresh`: "ask again").

        Every question, answered or failed, goes to the query log (core/querylog.py) off this thread.
        """
        try:
            answer = self._ask(
                question, on_event=on_event, cancel=cancel, folders=folders, mode=mode, fresh=fresh
            )
        except Exception as err:
            if question.strip() and not isinstance(err, QueryError):
                self._log(
                    querylog.QueryRecord(
                        kind="ask",
                        question=question.strip(),
                        mode=mode,
                        stages_ms={},
                        error_category=category_for_error(err),
                    )
                )
            raise
        answer.query_id = self._log(
            querylog.from_answer(
                answer,
                mode=mode,
                relevant=answer.stopped not in NOT_IN_FILES_STOPS,
                embedding_model=getattr(self.embedder, "name", ""),
                query_vector=self._question_vector(question),
            )
        )
        return answer

    @property
    def query_log(self) -> querylog.QueryLog:
        if self._qlog is None:
            self._qlog = querylog.open_query_log(self.settings)
        return self._qlog

    def _log(self, record: querylog.QueryRecord) -> int:
        self.last_query_id = self.query_log.record(record)
        return self.last_query_id

    def _question_vector(self, question: str) -> Callable[[], np.ndarray] | None:
        """The question's embedding, computed on the log's own thread (never on the answer's path)."""
        embedder = self.embedder
        return None if embedder is None else (lambda: embedder.embed([question.strip()])[0])

    def _ask(
        self,
        question: str,
        *,
        on_event: EventFn | None,
        cancel: Callable[[], bool] | None,
        folders: list[str] | None,
        mode: Mode,
        fresh: bool,
    ) -> Answer:
        if self.embedder is None:
            raise RuntimeError("AnswerPipeline.ask before set_embedder")
        if self._searcher is None:
            self._searcher = open_searcher(self.db_path, self.embedder, self.settings)
        model = self.model
        config = answer_config(self.settings, model.n_ctx)
        cache = self._answer_cache()
        if cache is None or not question.strip():
            answerer = Answerer(self._searcher, model, self.embedder, config)
            return answerer.ask(question, on_event=on_event, cancel=cancel, folders=folders, mode=mode)

        question = question.strip()
        timings = Timings()
        if not getattr(self.embedder, "loaded", True):  # cold: timed apart, as search does
            with timings.stage("embedding model load"):
                self.embedder.load()  # type: ignore[attr-defined]
        with timings.stage("cache lookup"):  # embedding the question included
            key = self._cache_key(model, config, folders, mode)
            vector = self.embedder.embed([question])[0]
            check = library_check(self._searcher.conn)
            if fresh:
                cache.forget(question, key)
            hit = None if fresh else cache.lookup(question, vector, key, check)
        if hit is not None:
            answer = answer_from_payload(question, hit, timings)
            _replay(answer, on_event)
            return answer
        answerer = Answerer(self._searcher, model, self.embedder, config)
        answer = answerer.ask(question, on_event=on_event, cancel=cancel, folders=folders, mode=mode)
        timings.merge(answer.timings)  # a miss shows what looking it up cost, first, as it ran
        answer.timings = timings
        if cacheable(answer):
            ids = [s.hit.chunk_id for s in answer.sources]
            now = check(ids)
            sources = [(chunk, now[chunk]) for chunk in ids if chunk in now]
            payload = answer_payload(answer)
            # What a hit saves: the answer's time without one-off model loading.
            ms = sum(v for stage, v in answer.timings.stages.items() if not stage.endswith("load"))
            cache.put(question, vector, key, payload, sources, answer_ms=ms)
        return answer

    def _answer_cache(self) -> AnswerCache | None:
        if not self.settings.answer_cache:
            return None
        if self._cache is None:
            # Beside the index it belongs to, in its own file (see core/answer_cache.py for why).
            self._cache = AnswerCache(self.db_path.with_name("answer_cache.db"))
        return self._cache

    def _cache_key(
        self, model: ChatModel, config: AnswerConfig, folders: list[str] | None, mode: Mode
    ) -> str:
        """Everything besides the question and the library that an answer depends on."""
        servers = [(s.get("name"), s.get("base_url"), s.get("model")) for s in self.settings.answer_servers]
        return config_key(
            model=model.name,
            servers=servers,
            answer=dataclasses.asdict(config),
            prompt=SYSTEM_PROMPT,
            logic=ANSWER_LOGIC,
            embedder=getattr(self.embedder, "name", ""),
            folders=sorted(folders or []),
            mode=mode,
        )

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
        if self._cache is not None:
            self._cache.close()
            self._cache = None
        if self._qlog is not None:
            self._qlog.close()
            self._qlog = None


def _replay(answer: Answer, on_event: EventFn | None) -> None:
    """A cached answer arrives through the same events as a written one, all at once."""
    if on_event is None:
        return
    on_event(SourcesFound(answer.sources))
    quick = answer.quick_answer
    if quick is not None and 0 < quick.n <= len(answer.sources):
        on_event(quick_answer_found(quick, answer.sources))
    on_event(TokensArrived(answer.text))
