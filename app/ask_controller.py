"""The ask thread: owns the answer pipeline (core.pipeline: a Searcher on its own read connection and the
local LLM, loaded once and kept warm), the same one the CLI uses.

Questions run here one at a time, beside indexing (WAL lets the reader read while the writer writes). The
quick answer comes back as soon as retrieval has found it, before the model starts; then the answer streams
back in batches of text, at most one signal every ~30 ms, then the whole `Answer` follows.
"""

from __future__ import annotations

import copy
import logging
import operator
import threading
from pathlib import Path

from almanac.core.answer import Answer, AskEvent, QuickAnswerFound, TokensArrived
from almanac.core.embedding import Embedder
from almanac.core.errors import AlmanacError, Cancelled, QueryError
from almanac.core.pipeline import AnswerPipeline, ModelFactory
from almanac.core.pipeline import default_model as default_llm
from almanac.core.settings import Settings
from PySide6.QtCore import QObject, Signal

from .jobs import FailureFn, JobThread
from .throttle import Throttle

log = logging.getLogger(__name__)

LLMFactory = ModelFactory
TOKEN_INTERVAL_MS = 30
LLM_FIELDS = ("llm_path", "context_size", "threads", "gpu_layers")
__all__ = ["LLM_FIELDS", "AskController", "LLMFactory", "default_llm"]


class AskController(QObject):
    modelStateChanged = Signal(str, str)  # "loading" | "ready" | "error", and words for the status bar
    quickAnswered = Signal(object)  # core.answer.QuickAnswerFound, before the model starts
    tokensArrived = Signal(str)  # the next piece of the answer (batched)
    answered = Signal(object)  # core.answer.Answer (stopped tells how it ended)
    askFailed = Signal(object)  # the exception; shown with the turn it belongs to
    busyChanged = Signal(bool)

    def __init__(
        self,
        *,
        db_path: Path,
        settings: Settings,
        llm_factory: LLMFactory = default_llm,
        on_error: FailureFn,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._on_error = on_error
        # Ask-thread state: made here before the first job, then only touched by jobs.
        self._pipeline = AnswerPipeline(db_path, None, copy.deepcopy(settings), model_factory=llm_factory)
        # GUI-thread state.
        self._llm_state = "idle"
        self._embedder_state = "pending"  # "pending" | "loading" | "ready" | "failed" | "error" (no library)
        self._waiting: str | None = None  # asked before the library was open
        self._fresh = False  # the question being asked skips the answer cache ("ask again")
        self._stop: threading.Event | None = None
        self._tokens = Throttle(self.tokensArrived.emit, TOKEN_INTERVAL_MS, merge=operator.add, parent=self)
        self._jobs = JobThread("almanac-ask", on_error=on_error, parent=self)

    # -- GUI thread ------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._stop is not None

    @property
    def model_ready(self) -> bool:
        return self._llm_state == "ready"

    def load_model(self) -> None:
        """Load the LLM in the background so the first question does not wait for it."""
        self._llm_state = "loading"
        self._emit_model_state()
        self._jobs.submit(self._load_job, success=self._loaded, failure=self._load_failed)

    def set_embedder(self, embedder: Embedder | None) -> None:
        """The library's embedder (from the index thread); None when the library could not open."""
        if embedder is None:
            self._embedder_state = "error"
            if self._waiting is not None:
                self._waiting = None
                self._fail(AlmanacError("The library could not be opened, so there is nothing to search."))
            self._emit_model_state()
            return
        self._embedder_state = "loading"
        self._emit_model_state()
        self._jobs.submit(
            lambda: self._embedder_job(embedder), success=self._embedder_loaded, failure=self._embedder_failed
        )
        if self._waiting is not None:
            question, self._waiting = self._waiting, None
            self._submit_ask(question)

    def configure(self, settings: Settings, *, reload_model: bool) -> None:
        settings = copy.deepcopy(settings)
        self._jobs.submit(lambda: self._configure_job(settings, reload_model))
        if reload_model:
            self.load_model()

    def ask(self, question: str, *, fresh: bool = False) -> None:
        if self.busy:
            raise RuntimeError("a question is already being answered")
        self._fresh = fresh
        self._stop = threading.Event()
        self.busyChanged.emit(True)
        if self._embedder_state == "pending":
            self._waiting = question
        elif self._embedder_state == "error":
            self._fail(AlmanacError("The library could not be opened, so there is nothing to search."))
        else:
            self._submit_ask(question)

    def stop(self) -> None:
        """Stop the answer being written; it ends with stopped="cancelled" and keeps what was written."""
        if self._stop is not None:
            self._stop.set()
        if self._waiting is not None:  # never started: end it here, as stopped
            self._waiting = None
            self._fail(Cancelled())

    def shutdown(self) -> None:
        self.stop()
        self._tokens.discard()
        self._jobs.stop(self._close_job)

    def _submit_ask(self, question: str) -> None:
        stop = self._stop
        assert stop is not None
        self._tokens.discard()
        fresh = self._fresh
        self._jobs.submit(
            lambda: self._ask_job(question, stop, fresh), success=self._answered, failure=self._fail
        )

    def _answered(self, answer: Answer) -> None:
        self._tokens.flush()  # every piece before the whole answer
        self._done()
        if self._llm_state == "error" and answer.stopped not in ("no context", "declined"):
            self._loaded(0.0)  # it failed at start-up and loaded for this question
        self.answered.emit(answer)

    def _fail(self, err: BaseException) -> None:
        self._tokens.discard()
        self._done()
        self.askFailed.emit(err)
        if not isinstance(err, QueryError):  # a question problem is said in the chat; no box needed
            self._on_error(err)

    def _done(self) -> None:
        self._stop = None
        self.busyChanged.emit(False)

    def _loaded(self, ms: float) -> None:
        log.info("language model ready (loaded in %.0f ms)", ms)
        self._llm_state = "ready"
        self._emit_model_state(f" (loaded in {ms / 1000:.1f} s)" if ms else "")

    def _load_failed(self, err: BaseException) -> None:
        self._llm_state = "error"
        self._emit_model_state()
        self._on_error(err)

    def _embedder_loaded(self, _: object) -> None:
        self._embedder_state = "ready"
        self._emit_model_state()

    def _embedder_failed(self, err: BaseException) -> None:
        self._embedder_state = "failed"  # questions still go ahead, and say what is wrong
        self._emit_model_state()
        self._on_error(err)

    def _emit_model_state(self, detail: str = "") -> None:
        if self._llm_state == "error":
            self.modelStateChanged.emit("error", "Language model not loaded")
        elif self._embedder_state == "failed":
            self.modelStateChanged.emit("error", "Embedding model not loaded")
        elif self._llm_state == "loading":
            self.modelStateChanged.emit("loading", "Loading language model…")
        elif self._embedder_state in ("pending", "loading"):
            self.modelStateChanged.emit("loading", "Loading embedding model…")
        elif self._llm_state == "ready":
            self.modelStateChanged.emit("ready", "Model ready" + detail)

    # -- ask thread ------------------------------------------------------------------------------------

    def _load_job(self) -> float:
        return self._pipeline.load_model()

    def _embedder_job(self, embedder: Embedder) -> None:
        # Queries get their own copy of the model where it can make one, so a question asked during
        # indexing does not wait behind the indexer's batch.
        clone = getattr(embedder, "clone", None)
        own = clone() if clone else embedder
        self._pipeline.set_embedder(own)
        load = getattr(own, "load", None)
        if load is not None:
            load()  # torch and the model: seconds, better now than on the first question

    def _configure_job(self, settings: Settings, reload_model: bool) -> None:
        self._pipeline.configure(settings, reload_model=reload_model)

    def _ask_job(self, question: str, stop: threading.Event, fresh: bool = False) -> Answer:
        def on_event(event: AskEvent) -> None:
            if isinstance(event, TokensArrived):
                self._tokens.push(event.text)
            elif isinstance(event, QuickAnswerFound):
                self._jobs.post(self.quickAnswered.emit, event)

        return self._pipeline.ask(question, on_event=on_event, cancel=stop.is_set, fresh=fresh)

    def _close_job(self) -> None:
        self._pipeline.close()
