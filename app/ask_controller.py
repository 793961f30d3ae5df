"""The ask thread: owns a Searcher (its own read connection) and the local LLM, loaded once and kept warm.

Questions run here one at a time, beside indexing (WAL lets the reader read while the writer writes). The
answer streams back in batches of text, at most one signal every ~30 ms, then the whole `Answer` follows.
"""

from __future__ import annotations

import copy
import logging
import operator
import threading
from collections.abc import Callable
from pathlib import Path

from almanac.core.answer import Answer, Answerer
from almanac.core.embedding import Embedder
from almanac.core.errors import AlmanacError, Cancelled, QueryError
from almanac.core.library import open_searcher
from almanac.core.llm import LocalLLM
from almanac.core.search import Searcher
from almanac.core.settings import Settings
from PySide6.QtCore import QObject, Signal

from .jobs import FailureFn, JobThread
from .throttle import Throttle

log = logging.getLogger(__name__)

LLMFactory = Callable[[Settings], LocalLLM]
TOKEN_INTERVAL_MS = 30
LLM_FIELDS = ("llm_path", "context_size", "threads", "gpu_layers")


def default_llm(settings: Settings) -> LocalLLM:
    return LocalLLM(
        Path(settings.llm_path) if settings.llm_path else None,
        n_ctx=settings.context_size,
        n_threads=settings.threads,  # 0: core.llm.default_threads()
        n_gpu_layers=settings.gpu_layers,
    )


class AskController(QObject):
    modelStateChanged = Signal(str, str)  # "loading" | "ready" | "error", and words for the status bar
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
        self._db_path = db_path
        self._llm_factory = llm_factory
        self._on_error = on_error
        # Ask-thread state: set here before the first job, then only touched by jobs.
        self._settings = copy.deepcopy(settings)
        self._llm: LocalLLM | None = None
        self._searcher: Searcher | None = None
        self._embedder: Embedder | None = None
        # GUI-thread state.
        self._llm_state = "idle"
        self._embedder_state = "pending"  # "pending" | "loading" | "ready" | "failed" | "error" (no library)
        self._waiting: str | None = None  # asked before the library was open
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

    def ask(self, question: str) -> None:
        if self.busy:
            raise RuntimeError("a question is already being answered")
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
        self._jobs.submit(lambda: self._ask_job(question, stop), success=self._answered, failure=self._fail)

    def _answered(self, answer: Answer) -> None:
        self._tokens.flush()  # every piece before the whole answer
        self._done()
        if self._llm_state == "error" and answer.stopped != "no context":
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
        if self._llm is None:
            self._llm = self._llm_factory(self._settings)
        try:
            return self._llm.load()
        except AlmanacError:
            self._llm = None  # the next question tries again, perhaps with new settings
            raise

    def _embedder_job(self, embedder: Embedder) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
        # Queries get their own copy of the model where it can make one, so a question asked during
        # indexing does not wait behind the indexer's batch.
        clone = getattr(embedder, "clone", None)
        self._embedder = clone() if clone else embedder
        load = getattr(self._embedder, "load", None)
        if load is not None:
            load()  # torch and the model: seconds, better now than on the first question

    def _configure_job(self, settings: Settings, reload_model: bool) -> None:
        self._settings = settings
        if self._searcher is not None:  # fusion weights may have changed
            self._searcher.close()
            self._searcher = None
        if reload_model and self._llm is not None:
            self._llm.close()
            self._llm = None

    def _ask_job(self, question: str, stop: threading.Event) -> Answer:
        if self._llm is None:
            self._load_job()
        assert self._llm is not None and self._embedder is not None
        if self._searcher is None:
            self._searcher = open_searcher(self._db_path, self._embedder, self._settings)
        s = self._settings
        answerer = Answerer(
            self._searcher,
            self._llm,
            top_k=s.top_k,
            max_answer_tokens=s.max_answer_tokens,
            timeout_s=s.answer_timeout_s,
        )
        return answerer.ask(question, on_token=self._tokens.push, cancel=stop.is_set)

    def _close_job(self) -> None:
        if self._searcher is not None:
            self._searcher.close()
            self._searcher = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None
