"""The local query log: every search and answer, measured, so quality and speed can be tracked over time.

It lives in its own SQLite file (`querylog.db` beside the index), not in the index, because:
- the index has exactly one writer (the indexer, under its writer lock); logging from the answer thread into
  it would wait on, or fail against, an indexing run;
- "clear history" and the retention limit must never touch the index, and rebuilding a damaged index must
  not lose the history (or the self-evaluation runs that drift detection compares against).

Writes never slow or break an answer: `record()` only puts the entry on a queue; one background thread owns
the write connection, writes in small transactions, and logs (never raises) if the disk says no. Nothing here
leaves the machine.
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import apsw
import numpy as np

log = logging.getLogger(__name__)

_SCHEMA = [
    """
    CREATE TABLE queries(
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        kind TEXT NOT NULL,               -- 'search' | 'ask'
        question TEXT,                    -- NULL when question text is not kept
        mode TEXT NOT NULL,
        stages TEXT NOT NULL,             -- JSON {stage: ms}
        total_ms REAL NOT NULL,
        hits TEXT NOT NULL,               -- JSON [{chunk_id, document_id, keyword_rank, vector_rank, ...}]
        n_hits INTEGER NOT NULL,
        top_similarity REAL,              -- 1 - cosine distance of the best vector hit
        relevant INTEGER,                 -- passed the calibrated relevance test (1/0), NULL unknown
        quick_answer INTEGER NOT NULL DEFAULT 0,
        quick_tokens INTEGER NOT NULL DEFAULT 0,
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        answer_tokens INTEGER NOT NULL DEFAULT 0,
        cited INTEGER NOT NULL DEFAULT 0,
        backend TEXT NOT NULL DEFAULT '',
        cache TEXT NOT NULL DEFAULT '',
        stopped TEXT NOT NULL DEFAULT '',
        error_category TEXT NOT NULL DEFAULT '',
        embedding_model TEXT NOT NULL DEFAULT '',
        qvec BLOB,                        -- float32 query embedding, only when question text is kept
        feedback INTEGER                  -- +1 / -1 from the user, NULL when none
    );
    CREATE INDEX queries_ts ON queries(ts);
    CREATE TABLE source_feedback(
        query_id INTEGER NOT NULL REFERENCES queries(id) ON DELETE CASCADE,
        n INTEGER NOT NULL,
        chunk_id INTEGER,
        helpful INTEGER NOT NULL,
        ts REAL NOT NULL,
        PRIMARY KEY (query_id, n)
    );
    CREATE TABLE self_eval_items(
        id INTEGER PRIMARY KEY,
        query TEXT NOT NULL,
        document_path TEXT NOT NULL,
        chunk_hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE self_eval_runs(
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        embedding_model TEXT NOT NULL,
        documents INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        items INTEGER NOT NULL,
        missing INTEGER NOT NULL,
        scores TEXT NOT NULL              -- JSON {mode: {"mrr@10": x, "hit@10": y}}
    );
    """,
]

DEFAULT_RETENTION_DAYS = 90


@dataclass
class QueryRecord:
    """One search or answer, as the log keeps it."""

    kind: str  # "search" | "ask"
    question: str
    mode: str
    stages_ms: dict[str, float]
    hits: list[dict] = field(default_factory=list)
    top_similarity: float | None = None
    relevant: bool | None = None
    quick_answer: bool = False
    quick_tokens: int = 0
    prompt_tokens: int = 0
    answer_tokens: int = 0
    cited: int = 0
    backend: str = ""
    cache: str = ""
    stopped: str = ""
    error_category: str = ""
    embedding_model: str = ""
    query_vector: np.ndarray | Callable[[], np.ndarray] | None = None  # a callable runs on the log thread
    ts: float = field(default_factory=time.time)
    id: int = field(default_factory=lambda: secrets.randbits(62))  # known before the write lands

    @property
    def total_ms(self) -> float:
        return float(sum(self.stages_ms.values()))


def hit_summary(hits: Iterable[object]) -> list[dict]:
    """What the log keeps of each hit: ids, ranks and scores, never the text."""
    out = []
    for h in hits:
        out.append(
            {
                "chunk_id": getattr(h, "chunk_id", None),
                "document_id": getattr(h, "document_id", None),
                "score": _round(getattr(h, "score", None), 6),
                "keyword_rank": getattr(h, "keyword_rank", None),
                "keyword_score": _round(getattr(h, "keyword_score", None), 4),
                "vector_rank": getattr(h, "vector_rank", None),
                "vector_distance": _round(getattr(h, "vector_distance", None), 4),
            }
        )
    return out


def top_similarity(hits: Iterable[object]) -> float | None:
    """1 - the smallest cosine distance among the hits (the best vector match), or None."""
    distances = [d for h in hits if (d := getattr(h, "vector_distance", None)) is not None]
    return 1.0 - min(distances) if distances else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


def connect(path: Path) -> apsw.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = apsw.Connection(str(path))
    conn.setbusytimeout(2000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # the log may lose its last moment in a power cut; fine
    conn.execute("PRAGMA foreign_keys=ON")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    while version < len(_SCHEMA):
        with conn:
            conn.execute(_SCHEMA[version])
            conn.execute(f"PRAGMA user_version={version + 1}")
        version += 1
    return conn


def _vector_blob(params: tuple) -> tuple:
    """A query record's vector as float32 bytes; a callable is computed here, on the log's thread."""
    if len(params) != 22 or params[-1] is None:
        return params
    vec = params[-1]
    try:
        if callable(vec):
            vec = vec()
        blob = np.asarray(vec, dtype=np.float32).tobytes()
    except Exception:  # a failed embedding must not lose the record
        log.exception("could not embed a logged question")
        blob = None
    return (*params[:-1], blob)


class QueryLog:
    """Records queries on a background thread; reads (stats, feedback) use short-lived connections."""

    def __init__(
        self,
        path: Path,
        *,
        keep_questions: bool = True,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        enabled: bool = True,
    ) -> None:
        self.path = Path(path)
        self.keep_questions = keep_questions
        self.retention_days = retention_days
        self.enabled = enabled
        self._queue: queue.Queue[tuple[str, tuple] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- writing (never blocks the caller) -------------------------------------------------------------

    def record(self, rec: QueryRecord) -> int:
        """Queue `rec` for writing; returns its id (for feedback). Never raises."""
        if not self.enabled:
            return rec.id
        try:
            question = rec.question if self.keep_questions else None
            qvec = rec.query_vector if self.keep_questions else None
            row = (
                rec.id,
                rec.ts,
                rec.kind,
                question,
                rec.mode,
                json.dumps({k: round(v, 3) for k, v in rec.stages_ms.items()}),
                rec.total_ms,
                json.dumps(rec.hits),
                len(rec.hits),
                rec.top_similarity,
                None if rec.relevant is None else int(rec.relevant),
                int(rec.quick_answer),
                rec.quick_tokens,
                rec.prompt_tokens,
                rec.answer_tokens,
                rec.cited,
                rec.backend,
                rec.cache,
                rec.stopped,
                rec.error_category,
                rec.embedding_model,
                qvec,
            )
            self._put("INSERT OR REPLACE INTO queries VALUES (" + ",".join("?" * 22) + ", NULL)", row)
        except Exception:  # the log must never break an answer
            log.exception("could not queue a query log entry")
        return rec.id

    def feedback(self, query_id: int, value: int) -> None:
        """Thumbs up (+1), down (-1), or cleared (0) for one answer."""
        self._put("UPDATE queries SET feedback = ? WHERE id = ?", (value or None, query_id))

    def source_feedback(self, query_id: int, n: int, chunk_id: int | None, helpful: bool | None) -> None:
        """ "This source helped" (True) / "did not" (False) / cleared (None) for source [n] of an answer."""
        if helpful is None:
            self._put("DELETE FROM source_feedback WHERE query_id = ? AND n = ?", (query_id, n))
        else:
            self._put(
                "INSERT OR REPLACE INTO source_feedback VALUES (?, ?, ?, ?, ?)",
                (query_id, n, chunk_id, int(helpful), time.time()),
            )

    def clear(self) -> None:
        """Delete every logged query and its feedback (self-evaluation runs are kept)."""
        self._put("DELETE FROM queries", ())

    def prune(self, now: float | None = None) -> None:
        """Drop entries older than the retention limit (0 keeps everything)."""
        if self.retention_days > 0:
            cutoff = (now or time.time()) - self.retention_days * 86400
            self._put("DELETE FROM queries WHERE ts < ?", (cutoff,))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        done = threading.Event()
        self._queue.put(("__flush__", (done,)))
        self._ensure_thread()
        done.wait(timeout)

    def close(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=5)

    def _put(self, sql: str, params: tuple) -> None:
        self._queue.put((sql, params))
        self._ensure_thread()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="almanac-querylog", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            conn = connect(self.path)
        except (apsw.Error, OSError):
            log.exception("the query log %s cannot be opened; queries are not logged", self.path)
            self._drain_flushes_forever()
            return
        pruned = False
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                while len(batch) < 200:  # whatever else is waiting goes in the same transaction
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._write(conn, batch)
                        return
                    batch.append(nxt)
                self._write(conn, batch)
                if not pruned:
                    pruned = True
                    self.prune()
        finally:
            conn.close()

    def _write(self, conn: apsw.Connection, batch: list[tuple[str, tuple]]) -> None:
        flushes = [params[0] for sql, params in batch if sql == "__flush__"]
        try:
            with conn:
                for sql, params in batch:
                    if sql != "__flush__":
                        conn.execute(sql, _vector_blob(params))
        except apsw.Error:
            log.exception("could not write %d query log entries", len(batch))
        for event in flushes:
            event.set()

    def _drain_flushes_forever(self) -> None:
        while (item := self._queue.get()) is not None:
            if item[0] == "__flush__":
                item[1][0].set()

    # -- reading ------------------------------------------------------------------------------------------

    @contextmanager
    def reader(self) -> Iterator[apsw.Connection]:
        conn = connect(self.path)
        try:
            yield conn
        finally:
            conn.close()

    def rows(self, since: float = 0.0, until: float | None = None) -> list[LoggedQuery]:
        with self.reader() as conn:
            cur = conn.execute(
                "SELECT id, ts, kind, question, mode, stages, hits, n_hits, top_similarity, relevant,"
                " quick_answer, quick_tokens, prompt_tokens, answer_tokens, cited, backend, cache, stopped,"
                " error_category, embedding_model, qvec, feedback FROM queries WHERE ts >= ? AND ts < ?"
                " ORDER BY ts",
                (since, until if until is not None else 1e18),
            )
            out = []
            for r in cur:
                out.append(
                    LoggedQuery(
                        id=r[0],
                        ts=r[1],
                        kind=r[2],
                        question=r[3],
                        mode=r[4],
                        stages_ms=json.loads(r[5]),
                        hits=json.loads(r[6]),
                        n_hits=r[7],
                        top_similarity=r[8],
                        relevant=None if r[9] is None else bool(r[9]),
                        quick_answer=bool(r[10]),
                        quick_tokens=r[11],
                        prompt_tokens=r[12],
                        answer_tokens=r[13],
                        cited=r[14],
                        backend=r[15],
                        cache=r[16],
                        stopped=r[17],
                        error_category=r[18],
                        embedding_model=r[19],
                        query_vector=None if r[20] is None else np.frombuffer(r[20], dtype=np.float32),
                        feedback=r[21],
                    )
                )
            return out

    def source_feedback_counts(self, since: float = 0.0) -> tuple[int, int]:
        """(helped, did not help) over source feedback given since `since`."""
        with self.reader() as conn:
            helped, not_helped = conn.execute(
                "SELECT coalesce(sum(helpful = 1), 0), coalesce(sum(helpful = 0), 0) FROM source_feedback"
                " WHERE ts >= ?",
                (since,),
            ).fetchone()
        return helped, not_helped

    # -- self-evaluation (core/self_eval.py fills these) ----------------------------------------------------

    def self_eval_items(self) -> list[tuple[str, str, str]]:
        with self.reader() as conn:
            return [
                tuple(r)
                for r in conn.execute(
                    "SELECT query, document_path, chunk_hash FROM self_eval_items ORDER BY id"
                )
            ]

    def set_self_eval_items(self, items: Sequence[tuple[str, str, str]]) -> None:
        now = time.time()
        with self.reader() as conn, conn:
            conn.execute("DELETE FROM self_eval_items")
            for q, path, digest in items:
                conn.execute(
                    "INSERT INTO self_eval_items(query, document_path, chunk_hash, created) VALUES (?,?,?,?)",
                    (q, path, digest, now),
                )

    def add_self_eval_run(self, run: SelfEvalRun) -> None:
        with self.reader() as conn, conn:
            conn.execute(
                "INSERT INTO self_eval_runs(ts, embedding_model, documents, chunks, items, missing, scores)"
                " VALUES (?,?,?,?,?,?,?)",
                (
                    run.ts,
                    run.embedding_model,
                    run.documents,
                    run.chunks,
                    run.items,
                    run.missing,
                    json.dumps(run.scores),
                ),
            )

    def self_eval_runs(self) -> list[SelfEvalRun]:
        with self.reader() as conn:
            return [
                SelfEvalRun(
                    ts=r[0],
                    embedding_model=r[1],
                    documents=r[2],
                    chunks=r[3],
                    items=r[4],
                    missing=r[5],
                    scores=json.loads(r[6]),
                )
                for r in conn.execute(
                    "SELECT ts, embedding_model, documents, chunks, items, missing, scores"
                    " FROM self_eval_runs ORDER BY ts"
                )
            ]


@dataclass
class LoggedQuery:
    id: int
    ts: float
    kind: str
    question: str | None
    mode: str
    stages_ms: dict[str, float]
    hits: list[dict]
    n_hits: int
    top_similarity: float | None
    relevant: bool | None
    quick_answer: bool
    quick_tokens: int
    prompt_tokens: int
    answer_tokens: int
    cited: int
    backend: str
    cache: str
    stopped: str
    error_category: str
    embedding_model: str
    query_vector: np.ndarray | None
    feedback: int | None


@dataclass
class SelfEvalRun:
    ts: float
    embedding_model: str
    documents: int
    chunks: int
    items: int
    missing: int  # items whose document has left the library (counted as misses)
    scores: dict[str, dict[str, float]]  # mode -> {"mrr@10", "hit@10"}

    def to_json(self) -> dict:
        return asdict(self)


def open_query_log(settings: object) -> QueryLog:
    """The query log in the data directory, configured from the user's settings."""
    from . import paths

    return QueryLog(
        paths.querylog_path(),
        keep_questions=getattr(settings, "log_question_text", True),
        retention_days=getattr(settings, "log_retention_days", DEFAULT_RETENTION_DAYS),
        enabled=getattr(settings, "log_queries", True),
    )


def from_search(
    result: object,
    *,
    relevant: bool | None,
    embedding_model: str = "",
    query_vector: np.ndarray | Callable[[], np.ndarray] | None = None,
) -> QueryRecord:
    """A log record for one `SearchResult`."""
    hits = list(getattr(result, "hits", []))
    return QueryRecord(
        kind="search",
        question=getattr(result, "query", ""),
        mode=getattr(result, "mode", ""),
        stages_ms=dict(getattr(getattr(result, "timings", None), "stages", {})),
        hits=hit_summary(hits),
        top_similarity=top_similarity(hits),
        relevant=relevant,
        embedding_model=embedding_model,
        query_vector=query_vector,
    )


def from_answer(
    answer: object,
    *,
    mode: str,
    relevant: bool | None,
    error_category: str = "",
    embedding_model: str = "",
    query_vector: np.ndarray | Callable[[], np.ndarray] | None = None,
) -> QueryRecord:
    """A log record for one `Answer` (fields it lacks are left at their defaults)."""
    from .outcomes import category_for_stop

    sources = [getattr(s, "hit", s) for s in getattr(answer, "sources", [])]
    quick = getattr(answer, "quick_answer", None)
    quick_parts = getattr(quick, "parts", [quick]) if quick is not None else []  # its sentence or two
    stopped = getattr(answer, "stopped", "")
    return QueryRecord(
        kind="ask",
        question=getattr(answer, "question", ""),
        mode=mode,
        stages_ms=dict(getattr(getattr(answer, "timings", None), "stages", {})),
        hits=hit_summary(sources),
        top_similarity=top_similarity(sources),
        relevant=relevant,
        quick_answer=quick is not None,
        quick_tokens=sum(len(getattr(p, "text", "").split()) for p in quick_parts),
        prompt_tokens=getattr(answer, "prompt_tokens", 0),
        answer_tokens=getattr(answer, "answer_tokens", 0),
        cited=len(getattr(answer, "cited", [])),
        backend=getattr(answer, "backend", "") or getattr(answer, "model", ""),
        cache=getattr(answer, "cache", "") or "",
        stopped=stopped,
        error_category=error_category or getattr(answer, "error_category", "") or category_for_stop(stopped),
        embedding_model=embedding_model,
        query_vector=query_vector,
    )
