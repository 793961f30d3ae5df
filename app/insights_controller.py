"""The insights thread: reads the query log for the Insights view, records feedback, checks drift, and
reruns the self-evaluation when the index changed enough (core.self_eval.due).

Everything here runs on its own job thread with its own read connection to the index, so a slow stats
query or a self-evaluation never stalls the window or an answer.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
from almanac.core import db, drift, querylog, self_eval, stats
from almanac.core.embedding import Embedder
from almanac.core.library import open_searcher
from almanac.core.settings import Settings
from PySide6.QtCore import QObject, Signal

from .insights_view import InsightsData
from .jobs import FailureFn, JobThread

log = logging.getLogger(__name__)


class InsightsController(QObject):
    loaded = Signal(object)  # InsightsData
    driftChecked = Signal(object)  # list[core.drift.Signal]
    selfEvaluated = Signal(object)  # core.querylog.SelfEvalRun

    def __init__(
        self, *, db_path: Path, settings: Settings, on_error: FailureFn, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._db_path = db_path
        self._settings = settings
        self._embedder: Embedder | None = None
        self._qlog = querylog.open_query_log(settings)  # used on the job thread only
        self._jobs = JobThread("almanac-insights", on_error=on_error, parent=self)

    # -- GUI thread ------------------------------------------------------------------------------------

    def set_embedder(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def configure(self, settings: Settings) -> None:
        self._settings = dataclasses.replace(settings)
        self._jobs.submit(self._reopen_job)

    def load(self, period: str = "7d") -> None:
        """Compute the Insights figures for `period` ("7d", "30d", ...); `loaded` delivers them."""
        self._jobs.submit(lambda: self._load_job(period), success=self.loaded.emit)

    def check_drift(self) -> None:
        self._jobs.submit(self._drift_job, success=self.driftChecked.emit)

    def after_indexing(self) -> None:
        """Rerun the self-evaluation if the index changed enough since the last run, then check drift."""
        embedder = self._embedder
        if embedder is None:
            return
        self._jobs.submit(lambda: self._self_eval_job(embedder), success=self._self_evaluated)

    def feedback(self, query_id: int | None, value: int) -> None:
        if query_id is not None:
            self._jobs.submit(lambda: self._qlog.feedback(query_id, value))

    def source_feedback(
        self, query_id: int | None, n: int, chunk_id: int | None, helpful: bool | None
    ) -> None:
        if query_id is not None:
            self._jobs.submit(lambda: self._qlog.source_feedback(query_id, n, chunk_id, helpful))

    def clear_history(self) -> None:
        # Every job looks up self._qlog when it runs: a settings change may have reopened it meanwhile.
        self._jobs.submit(lambda: (self._qlog.clear(), self._qlog.flush(timeout=60)))

    def shutdown(self) -> None:
        self._jobs.stop(final=lambda: self._qlog.close())

    def _self_evaluated(self, run: querylog.SelfEvalRun | None) -> None:
        if run is not None:
            self.selfEvaluated.emit(run)
        self.check_drift()

    # -- job thread ------------------------------------------------------------------------------------

    def _reopen_job(self) -> None:
        self._qlog.close()
        self._qlog = querylog.open_query_log(self._settings)

    def _centroid(self) -> np.ndarray | None:
        if not self._db_path.exists():
            return None
        conn = db.open_reader(self._db_path)
        try:
            return drift.corpus_centroid(conn)
        finally:
            conn.close()

    def _load_job(self, period: str) -> InsightsData:
        self._qlog.flush()
        summary = stats.summarize(self._qlog, stats.parse_since(period))
        signals = drift.detect(self._qlog, self._centroid())
        runs = self._qlog.self_eval_runs()
        return InsightsData(summary, [s.to_json() for s in signals], [r.to_json() for r in runs])

    def _drift_job(self) -> list[drift.Signal]:
        self._qlog.flush()
        return drift.detect(self._qlog, self._centroid())

    def _self_eval_job(self, embedder: Embedder) -> querylog.SelfEvalRun | None:
        if not self._db_path.exists():
            return None
        searcher = open_searcher(self._db_path, embedder, self._settings)
        try:
            chunks = searcher.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
            if not chunks:
                return None
            reason = self_eval.due(self._qlog, embedding_model=embedder.name, chunks=chunks)
            if reason is None:
                return None
            log.info("self-evaluation: %s", reason)
            return self_eval.evaluate_library(
                self._qlog, searcher.conn, searcher.search, embedding_model=embedder.name
            )
        finally:
            searcher.close()
