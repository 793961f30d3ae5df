"""A semantic answer cache: the same question, or a near-duplicate, answered again without the model.

Key: the normalised question and its embedding, under a `config` key (answer model, prompt settings,
embedding model): a change of any of those leaves old entries unreachable. A near-duplicate is a hit only
when its cosine similarity passes a threshold calibrated by `bench/cache.py` AND the two questions agree on
their numbers, their negations and their names (capitalised words, acronyms, words with digits): embeddings
put "Does X support Y?" and "Does X not support Y?" closer together than many paraphrases, so similarity
alone cannot tell them apart. (Treating words the embedder's vocabulary splits as names too was measured
and dropped: it blocked 16 of 50 paraphrases - "timestamp", "encoder" - and no near-miss the threshold let
through.)

An entry remembers the chunks its answer used with their documents' content hashes; it is served only
while every one of those documents is still in the library, unchanged. Stale entries are deleted when met.

Stored in its own SQLite file beside the index, not in the index: the cache is disposable (deleting the
file loses nothing), it is written from the answering thread while the index keeps its single writer, and
its churn never bloats or locks the index database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import apsw
import numpy as np

from .answer import Answer, Source
from .hits import Hit
from .quick_answer import QuickAnswer
from .timing import Timings

# Calibrated on bench/qa/cache_pairs.jsonl with the bundled all-MiniLM-L6-v2 (docs/benchmarks.md): the
# tune split chose 0.83 with the torch encoder and 0.84 with the int8 ONNX one; 0.85 covers both.
DEFAULT_THRESHOLD = 0.85
MAX_CANDIDATES = 5  # similar entries checked per lookup, best first
# Entries kept per config, newest first: bounds the file and the in-memory matrix (5,000 x 384 floats is
# 7.7 MB, searched in a few milliseconds).
MAX_ENTRIES = 5_000

NEGATIONS = frozenset(
    "not no never none nothing nobody nowhere neither nor without cannot cant dont doesnt isnt arent wasnt"
    " werent wont wouldnt shouldnt couldnt didnt hasnt havent hadnt except unless excluding lack lacks"
    .split()
)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
        " sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS |= {"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000",
                  "million": "1e6", "billion": "1e9", "first": "1", "second": "2", "third": "3",
                  "half": "0.5", "twice": "2", "double": "2", "triple": "3", "once": "1"}
# Capitalised words that carry no name: sentence-initial question words and the pronoun I.
_NOT_NAMES = frozenset("i what how why when where which who whom whose is are do does did can could should"
                       " would will was were the a an in on at for of to and or if".split())
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9+#./'’-]*")
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "s", "ly")


def normalize(question: str) -> str:
    """Lower case, unified quotes and dashes, no punctuation, single spaces: the exact-match key."""
    text = unicodedata.normalize("NFKC", question).lower().replace("’", "'")
    text = re.sub(r"[^\w\s'.+#-]", " ", text)
    text = re.sub(r"(?<!\w)[.'-]+|[.'-]+(?!\w)", " ", text)  # punctuation at word edges
    return " ".join(text.split())


def config_key(**parts: object) -> str:
    """A short stable key for everything an answer depends on besides the question and the library."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


# -- guards ----------------------------------------------------------------------------------------------


def _bare_word(word: str) -> str:
    """Without trailing dots and quotes, and without a possessive 's ("LuaJIT's" is "LuaJIT")."""
    word = word.rstrip(".'’-")
    return re.sub(r"['’]s$", "", word)


def _stem(word: str) -> str:
    word = word.lower().replace("’", "'").strip(".'-")
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


@dataclass(frozen=True)
class Features:
    numbers: frozenset[str]
    negated: bool
    names: frozenset[str]  # stems of capitalised (non-initial) words, acronyms, words with digits
    stems: frozenset[str]


def features(question: str) -> Features:
    words = [_bare_word(w) for w in _WORD.findall(unicodedata.normalize("NFKC", question))]
    words = [w for w in words if w]
    numbers = {n.replace(",", "") for n in _NUMBER.findall(question)}
    negated = False
    names: set[str] = set()
    for i, word in enumerate(words):
        low = word.lower().replace("’", "'")
        bare = low.replace("'", "")
        if low in _NUMBER_WORDS:
            numbers.add(_NUMBER_WORDS[low])
        if bare in NEGATIONS or low.endswith("n't"):
            negated = True
        is_name = (
            (word[0].isupper() and i > 0 and low not in _NOT_NAMES)
            or (len(word) > 1 and word.isupper())
            or (any(c.isdigit() for c in word) and any(c.isalpha() for c in word))
        )
        if is_name:
            names.add(_stem(word))
    return Features(frozenset(numbers), negated, frozenset(names), frozenset(_stem(w) for w in words))


def guard_reason(a: Features, b: Features) -> str | None:
    """Why two similar questions must not share an answer, or None when nothing tells them apart."""
    if a.numbers != b.numbers:
        return "numbers differ"
    if a.negated != b.negated:
        return "negation differs"
    # A name in one question must appear (as any word) in the other; capitalisation may differ.
    if not a.names <= b.stems or not b.names <= a.stems:
        return "names differ"
    return None


# -- storage ---------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries(
    id INTEGER PRIMARY KEY,
    config TEXT NOT NULL,
    question TEXT NOT NULL,
    normalized TEXT NOT NULL,
    embedding BLOB NOT NULL,
    payload TEXT NOT NULL,
    answer_ms REAL NOT NULL,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_key ON entries(config, normalized);
CREATE TABLE IF NOT EXISTS entry_sources(
    entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
    chunk_id INTEGER NOT NULL,
    document_hash TEXT NOT NULL,
    PRIMARY KEY(entry_id, chunk_id)
);
CREATE TABLE IF NOT EXISTS stats(name TEXT PRIMARY KEY, value REAL NOT NULL);
"""

# chunk ids -> {chunk id: content hash of its document now}; ids no longer in the library are absent.
SourceCheck = Callable[[list[int]], dict[int, str]]


@dataclass
class _Index:
    """One config's entries held in memory: ids, guard features and a row-per-entry embedding matrix."""

    ids: list[int]
    features: list[Features]
    matrix: np.ndarray | None

    def similar(self, embedding: np.ndarray, threshold: float) -> list[tuple[int, float]]:
        """(row, similarity) of the best MAX_CANDIDATES rows at or above `threshold`, best first."""
        if self.matrix is None or self.matrix.shape[1] != len(embedding):
            return []
        # einsum, not `@`: a BLAS matrix-vector product waits on BLAS threads, measured 20 ms instead of
        # 0.5 ms for 2,000 entries on a busy 2-core machine.
        sims = np.einsum("ij,j->i", self.matrix, np.asarray(embedding, dtype=np.float32))
        top = np.argsort(-sims)[:MAX_CANDIDATES]
        return [(int(i), float(sims[i])) for i in top if sims[i] >= threshold]


@dataclass
class CacheHit:
    kind: str  # "exact" | "semantic"
    question: str  # the question that was answered
    payload: dict
    created_at: float  # when the answer was made (seconds since the epoch)
    similarity: float
    saved_ms: float


@dataclass
class CacheStats:
    entries: int
    lookups: int
    exact_hits: int
    semantic_hits: int
    saved_ms: float

    @property
    def hit_rate(self) -> float:
        return (self.exact_hits + self.semantic_hits) / self.lookups if self.lookups else 0.0

    def to_json(self) -> dict:
        return {
            "entries": self.entries,
            "lookups": self.lookups,
            "exact_hits": self.exact_hits,
            "semantic_hits": self.semantic_hits,
            "hit_rate": round(self.hit_rate, 4),
            "saved_ms": round(self.saved_ms, 1),
        }


class AnswerCache:
    """Thread-safe; one connection guarded by a lock (every call is a few milliseconds)."""

    def __init__(
        self, path: Path, *, threshold: float = DEFAULT_THRESHOLD, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.path = Path(path)
        self.threshold = threshold
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._conn = apsw.Connection(str(self.path))
        self._conn.set_busy_timeout(5_000)
        # NORMAL: in WAL mode a commit does not wait for the disk; a crash may lose the last hits, never
        # corrupt the cache, and a lost entry only costs one model run.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            # One at a time and read to the end: apsw stops a multi-statement string at the first row.
            self._conn.execute(f"PRAGMA {pragma}").fetchall()
        with self._conn:
            self._conn.execute(_SCHEMA)
        self._index: dict[str, _Index] = {}  # per config, in memory, rebuilt after writes
        # Counters are kept in memory and written with the next put (or stats/close): a write per lookup
        # would cost a commit (~10 ms on a busy disk) on the path that must answer in milliseconds.
        self._pending: dict[str, float] = {}

    def close(self) -> None:
        with self._lock:
            self._flush()
            self._conn.close()

    # -- reading -------------------------------------------------------------------------------------

    def lookup(
        self, question: str, embedding: np.ndarray, config: str, check: SourceCheck
    ) -> CacheHit | None:
        """The cached answer for `question`, or None. Counts the lookup in the stats."""
        with self._lock:
            self._bump("lookups", 1)
            row = self._conn.execute(
                "SELECT id FROM entries WHERE config = ? AND normalized = ?", (config, normalize(question))
            ).fetchone()
            if row is not None:
                hit = self._serve(row[0], "exact", 1.0, check)
                if hit is not None:
                    return hit
            mine = features(question)
            index = self._load(config)
            for i, sim in index.similar(embedding, self.threshold):
                if guard_reason(mine, index.features[i]) is None:
                    hit = self._serve(index.ids[i], "semantic", sim, check)
                    if hit is not None:
                        return hit
            return None

    def _load(self, config: str) -> _Index:
        index = self._index.get(config)
        if index is None:
            rows = self._conn.execute(
                "SELECT id, question, embedding FROM entries WHERE config = ?", (config,)
            ).fetchall()
            index = _Index(
                [r[0] for r in rows],
                [features(r[1]) for r in rows],
                np.vstack([np.frombuffer(r[2], dtype=np.float32) for r in rows]) if rows else None,
            )
            self._index[config] = index
        return index

    def _serve(self, entry_id: int, kind: str, sim: float, check: SourceCheck) -> CacheHit | None:
        sources = self._conn.execute(
            "SELECT chunk_id, document_hash FROM entry_sources WHERE entry_id = ?", (entry_id,)
        ).fetchall()
        now = check([chunk for chunk, _ in sources])
        if any(now.get(chunk) != doc_hash for chunk, doc_hash in sources):
            with self._conn:
                self._conn.execute("DELETE FROM entries WHERE id = ?", (entry_id,))  # a document it used left
            self._index.clear()
            return None
        question, payload, created_at, answer_ms = self._conn.execute(
            "SELECT question, payload, created_at, answer_ms FROM entries WHERE id = ?", (entry_id,)
        ).fetchone()
        self._bump(f"{kind}_hits", 1)
        self._bump("saved_ms", answer_ms)
        return CacheHit(kind, question, json.loads(payload), created_at, sim, answer_ms)

    def stats(self) -> CacheStats:
        with self._lock:
            self._flush()
            values = dict(self._conn.execute("SELECT name, value FROM stats").fetchall())
            (entries,) = self._conn.execute("SELECT count(*) FROM entries").fetchone()
        return CacheStats(
            entries,
            int(values.get("lookups", 0)),
            int(values.get("exact_hits", 0)),
            int(values.get("semantic_hits", 0)),
            float(values.get("saved_ms", 0.0)),
        )

    # -- writing -------------------------------------------------------------------------------------

    def put(
        self,
        question: str,
        embedding: np.ndarray,
        config: str,
        payload: dict,
        sources: Iterable[tuple[int, str]],
        *,
        answer_ms: float,
    ) -> None:
        """Store an answer with the (chunk id, document content hash) pairs it used."""
        vector = np.ascontiguousarray(embedding, dtype=np.float32).tobytes()
        with self._lock, self._conn:
            self._flush()
            self._conn.execute(
                "DELETE FROM entries WHERE config = ? AND normalized = ?", (config, normalize(question))
            )
            self._conn.execute(
                "INSERT INTO entries(config, question, normalized, embedding, payload, answer_ms, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (config, question, normalize(question), vector, json.dumps(payload), answer_ms, time.time()),
            )
            entry_id = self._conn.last_insert_rowid()
            self._conn.executemany(
                "INSERT OR REPLACE INTO entry_sources(entry_id, chunk_id, document_hash) VALUES (?, ?, ?)",
                [(entry_id, chunk, doc_hash) for chunk, doc_hash in sources],
            )
            self._conn.execute(  # the oldest beyond the cap go
                "DELETE FROM entries WHERE id IN (SELECT id FROM entries WHERE config = ?"
                " ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?)",
                (config, self.max_entries),
            )
            self._index.pop(config, None)

    def forget(self, question: str, config: str) -> None:
        """Drop the entry for this exact question ("ask again")."""
        with self._lock, self._conn:
            self._conn.execute(
                "DELETE FROM entries WHERE config = ? AND normalized = ?", (config, normalize(question))
            )
            self._index.pop(config, None)

    def clear(self) -> None:
        with self._lock, self._conn:
            self._conn.execute("DELETE FROM entries; DELETE FROM stats;")
            self._index.clear()
            self._pending.clear()

    def _bump(self, name: str, amount: float) -> None:
        self._pending[name] = self._pending.get(name, 0.0) + amount

    def _flush(self) -> None:
        if not self._pending:
            return
        with self._conn:
            self._conn.executemany(
                "INSERT INTO stats(name, value) VALUES (?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                list(self._pending.items()),
            )
        self._pending.clear()


def library_check(conn: apsw.Connection) -> SourceCheck:
    """A SourceCheck reading the index: each chunk's document content hash, for chunks still indexed."""

    def check(chunk_ids: list[int]) -> dict[int, str]:
        if not chunk_ids:
            return {}
        marks = ",".join("?" * len(chunk_ids))
        rows = conn.execute(
            f"SELECT c.id, d.content_hash FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE c.id IN ({marks}) AND d.status = 'indexed'",
            chunk_ids,
        ).fetchall()
        return {chunk_id: doc_hash for chunk_id, doc_hash in rows}

    return check


# -- answers as cache payloads (core.pipeline) -----------------------------------------------------------


def cacheable(answer: Answer) -> bool:
    """Only whole answers written from sources are kept: never a decline (the library may gain the answer),
    a cancelled, cut-off or failed answer, or one with nothing cited to check against the library."""
    whole = answer.stopped in ("stop", "length") and not answer.note
    return whole and bool(answer.text) and bool(answer.sources)


def answer_payload(answer: Answer) -> dict:
    return {
        "text": answer.text,
        "sources": [{"n": s.n, "hit": dataclasses.asdict(s.hit)} for s in answer.sources],
        "cited": answer.cited,
        "quick_answer": dataclasses.asdict(answer.quick_answer) if answer.quick_answer else None,
        "stopped": answer.stopped,
        "model": answer.model,
        "backend": answer.backend,
        "prompt_tokens": answer.prompt_tokens,
        "answer_tokens": answer.answer_tokens,
    }


def answer_from_payload(question: str, hit: CacheHit, timings: Timings) -> Answer:
    p = hit.payload
    sources = []
    for s in p["sources"]:
        fields = dict(s["hit"], snippet_marks=[tuple(m) for m in s["hit"]["snippet_marks"]])
        sources.append(Source(s["n"], Hit(**fields)))
    quick = QuickAnswer.from_dict(p["quick_answer"]) if p["quick_answer"] else None
    return Answer(
        question=question,
        text=p["text"],
        sources=sources,
        cited=list(p["cited"]),
        timings=timings,
        prompt_tokens=p["prompt_tokens"],
        answer_tokens=p["answer_tokens"],
        stopped=p["stopped"],
        model=p["model"],
        quick_answer=quick,
        backend=p["backend"],
        cache=hit.kind,
        cached_at=hit.created_at,
    )
