"""Hybrid retrieval: vector KNN in sqlite-vec and BM25 in FTS5, fused by reciprocal rank.

Vectors: the index that fits the library's size (`vector_index`): vec0's exact scan for small libraries,
its DiskANN graph for large ones; `exact=True` scans every vector instead, for verification. Keywords: BM25
over every content word (one FTS5 query; in a big library keyword_index's numpy scoring, the same numbers),
and before it one FTS5 query over the query's exact sequences (identifiers such as `ERR_CONN_RESET` or
`jit.flush`, and quoted phrases), whose matches rank first. In hybrid mode the keyword
query runs on a second connection in a worker thread while the query is embedded and the vectors searched
(apsw releases the GIL inside SQLite). Folder scopes are filtered inside each query, never afterwards.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import apsw
import numpy as np

from . import db, keyword_index, store, vector_index
from .embedding import Embedder
from .errors import QueryError
from .hits import Hit, Mode, SearchResult
from .timing import Timings

_WORD = re.compile(r"\w+", re.UNICODE)
# What FTS5's unicode61 tokenizer keeps as one token: letters and digits ("_" separates, like "-" or ".").
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
# A run of tokens joined by these, with no space, is one identifier: WOMBAT-OK-14, ERR_CONN_RESET, jit.flush,
# a/b/c.py, user@host. Apostrophes are not joiners ("doesn't" is a word, not an identifier).
_IDENTIFIER = re.compile(r"[^\W_]+(?:[-_.:/@#+]+[^\W_]+)+", re.UNICODE)
_QUOTED = re.compile(r'"([^"]*)"')
MAX_QUERY_TERMS = 64
# Keyword search at scale. FTS5 scores every chunk that matches any query word, so a word found in a large
# share of a big library costs most of the time while adding little to the ranking (its IDF is low). When
# the query's words hold more than PRUNE_MIN_POSTINGS postings, words in more than PRUNE_DF_FRACTION of all
# chunks are left out. Small libraries never get there: their ranking is FTS5's over every word. The
# fraction was chosen on SciFact train with the pruning forced on (0.2 and 0.1 both cost 0.002 nDCG@10; the
# larger one, leaving out fewer words) and read once on test: -0.003 (bench.scifact --prune).
# Above this many chunks, once keyword_index is complete, the words are scored by it (exact: the same BM25 as
# FTS5, without FTS5 scoring every match); scoped searches and smaller libraries ask FTS5. Until the index is
# complete, frequent words are left out instead:
KEYWORD_INDEX_MIN_CHUNKS = 20_000
PRUNE_MIN_POSTINGS = 50_000
PRUNE_DF_FRACTION = 0.2
MAX_PHRASES = 8
IDENTIFIER_MAX_PASSAGES = 20
# A folder scope of at most this many chunks is searched by reading each of its vectors (exact, ~10 µs
# each); a larger one asks the graph for more neighbours and keeps those inside the scope.
SCOPE_SCAN_MAX = 20_000
MAX_ANN_K = 4096
EMBEDDED_RECOUNT_S = 60.0  # how stale the embedded-chunk count behind the graph's L may be


# Lucene's English stop words (as Anserini's BM25 uses) plus question words: they match nearly every
# chunk, so OR-ing them in costs time at scale and makes any question look like a keyword match.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these"
    " they this to was will with what how why when where which who whom whose do does did can could should"
    " would i me my you your".split()
)


def fts_quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


@dataclass
class KeywordQuery:
    """User text split into FTS5 parts; no user text is ever FTS5 syntax (every part is quoted)."""

    words: list[str] = field(default_factory=list)  # content words, OR-ed
    phrases: list[str] = field(default_factory=list)  # quoted by the user: always matched as phrases
    identifiers: list[str] = field(default_factory=list)  # joined tokens (ERR_CONN_RESET), as token phrases

    @classmethod
    def parse(cls, text: str) -> KeywordQuery:
        phrases = [" ".join(t) for m in _QUOTED.finditer(text) if len(t := _TOKEN.findall(m.group(1))) > 1]
        unquoted = _QUOTED.sub(" ", text)
        identifiers = [" ".join(_TOKEN.findall(m.group())) for m in _IDENTIFIER.finditer(unquoted)]
        words: list[str] = []
        seen = set()
        for w in _TOKEN.findall(text):
            lw = w.lower()
            if lw not in seen:
                seen.add(lw)
                words.append(w)
        content = [w for w in words if w.lower() not in STOP_WORDS] or words
        return cls(
            words=content[:MAX_QUERY_TERMS],
            phrases=list(dict.fromkeys(p.lower() for p in phrases))[:MAX_PHRASES],
            identifiers=list(dict.fromkeys(i.lower() for i in identifiers))[:MAX_PHRASES],
        )

    def words_match(self) -> str | None:
        return " OR ".join(fts_quote(w) for w in self.words) or None

    def looks_up(self, identifier: str) -> bool:
        """The query is about this identifier (its tokens are more than a third of the content words), not
        a sentence that mentions one (SciFact claims such as "IL-6 levels rise after ...": ranking those
        passages first cost 0.013-0.076 nDCG@10 on the train split; this rule costs 0.0004)."""
        mine = {t.lower() for t in identifier.split()}
        return 3 * sum(w.lower() in mine for w in self.words) > len(self.words)


def phrases_match(phrases: list[str]) -> str | None:
    """Passages that say one of `phrases` (in their text or title: a match in the file path alone does not
    rank a passage first)."""
    if not phrases:
        return None
    return "{text title} : (" + " OR ".join(fts_quote(p) for p in phrases) + ")"


def fts_query(text: str) -> str | None:
    """User text as a safe FTS5 query over its content words (every word quoted, OR-ed).

    Stop words are dropped unless the query has nothing else ("to be or not to be").
    """
    return KeywordQuery.parse(text).words_match()


def fts_row_count(conn: apsw.Connection) -> int:
    """Rows in chunks_fts, from FTS5's own totals record (a count(*) would read a million-row index)."""
    row = conn.execute("SELECT block FROM chunks_fts_data WHERE id = 1").fetchone()
    return _varint(row[0]) if row and row[0] else 0


def _varint(data: bytes) -> int:
    """SQLite's varint (big-endian 7-bit groups, the ninth byte whole), as FTS5 stores its totals."""
    value = 0
    for i, byte in enumerate(data[:9]):
        if i == 8:
            return (value << 8) | byte
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value
    return value


def exact_distances(conn: apsw.Connection, table: str, q: bytes, ids: list[int]) -> list[tuple[int, float]]:
    """(id, cosine distance) from the stored float vectors, nearest first. Each id is a vec0 point read
    (joined from json_each: vec0 answers `rowid IN (...)` with a full scan)."""
    rows: list[tuple[int, float]] = []
    alive = vector_index.dead_filter(conn, "j.value")
    for i in range(0, len(ids), 10_000):
        rows += conn.execute(
            f"SELECT v.rowid, vec_distance_cosine(v.embedding, ?)"
            f" FROM json_each(?) j JOIN {table} v ON v.rowid = j.value"
            + (f" WHERE {alive}" if alive else ""),
            (q, json.dumps(ids[i : i + 10_000])),
        ).fetchall()
    rows.sort(key=lambda r: (r[1], r[0]))
    return rows


@dataclass
class FusionConfig:
    rrf_k: int = 10
    keyword_weight: float = 0.85
    vector_weight: float = 1.0
    depth: int = 100  # candidates taken from each list before fusing


def rrf(keyword: list[int], vector: list[int], cfg: FusionConfig) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of two ranked id lists -> (id, score), best first."""
    scores: dict[int, float] = {}
    for weight, ranked in ((cfg.keyword_weight, keyword), (cfg.vector_weight, vector)):
        for rank, chunk_id in enumerate(ranked, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (cfg.rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class Scope:
    """Chunks of documents inside some folders, as a subquery every retriever filters with."""

    where: str  # over documents d
    params: tuple

    @classmethod
    def of(cls, folders: list[str]) -> Scope:
        clauses, params = [], []
        for folder in folders:
            base = store.path_to_db(str(Path(folder).expanduser().resolve())).rstrip(os.sep)
            # Paths below `base` sort between "base/" and "base0" ("0" follows "/"): an index range scan.
            clauses.append("d.path = ? OR (d.path >= ? AND d.path < ?)")
            params += [base, base + os.sep, base + chr(ord(os.sep) + 1)]
        return cls(" OR ".join(f"({c})" for c in clauses), tuple(params))

    @property
    def sql(self) -> str:
        return f"SELECT c.id FROM documents d JOIN chunks c ON c.document_id = d.id WHERE {self.where}"

    def count(self, conn: apsw.Connection) -> int:
        return conn.execute(f"SELECT count(*) FROM ({self.sql})", self.params).fetchone()[0]

    def ids(self, conn: apsw.Connection) -> np.ndarray:
        """Every chunk id inside the scope, in no order (one string: rows read one by one, or sorted by
        SQLite, cost 10x more at 500,000 ids)."""
        row = conn.execute(f"SELECT group_concat(id) FROM ({self.sql})", self.params).fetchone()
        return np.fromstring(row[0], np.int64, sep=",") if row[0] else np.zeros(0, np.int64)

    def members(self, conn: apsw.Connection, ids: list[int]) -> set[int]:
        """Which of `ids` are inside the scope."""
        rows = conn.execute(
            "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
            f" WHERE c.id IN (SELECT value FROM json_each(?)) AND ({self.where})",
            (json.dumps(ids), *self.params),
        )
        return {r[0] for r in rows}


class Searcher:
    """Read-only queries on their own connections. One Searcher per thread (it owns one helper thread)."""

    def __init__(
        self,
        db_path: Path | str,
        embedder: Embedder,
        *,
        fusion: FusionConfig | None = None,
        exact: bool = False,
    ) -> None:
        self.db_path = db_path
        self.conn = db.open_reader(db_path)
        self.embedder = embedder
        self.fusion = fusion or FusionConfig()
        self.exact = exact  # scan every vector instead of the graph: slow at scale, for verification
        self._kw_conn: apsw.Connection | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._tokens: dict[int, keyword_index.Tokens] = {}  # per connection: FTS5 query-side stemming
        self._embedded: tuple[int, float] = (0, -math.inf)  # embedded chunks, and when they were counted

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
        if self._kw_conn is not None:
            self._kw_conn.close()
        self.conn.close()

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        mode: Mode = "hybrid",
        folders: list[str] | None = None,
        exact: bool | None = None,
    ) -> SearchResult:
        if not query or not query.strip():
            raise QueryError("Type a question or some words to search for.")
        if mode not in ("hybrid", "vector", "keyword"):
            raise QueryError(f"Unknown search mode {mode!r}: use hybrid, vector or keyword.")
        timings = Timings()
        scope = Scope.of(folders) if folders else None
        exact = self.exact if exact is None else exact
        depth = max(k, self.fusion.depth) if mode == "hybrid" else k
        kw: list[tuple[int, float]] = []
        vec: list[tuple[int, float]] = []
        with db.translate_errors(self.db_path):
            if mode == "hybrid":
                # Keyword search on its own connection and thread, beside embedding + vector search.
                kw_timings = Timings()
                pending = self._keyword_pool().submit(self._timed_keyword, query, depth, scope, kw_timings)
                try:
                    vec = self._vector(query, depth, scope, timings, exact=exact)
                finally:
                    kw = pending.result()
                timings.merge(kw_timings)
            elif mode == "vector":
                vec = self._vector(query, depth, scope, timings, exact=exact)
            else:
                with timings.stage("keyword search"):
                    kw = self._keyword(query, depth, scope)
            with timings.stage("fusion"):
                kw_rank = {cid: (r, s) for r, (cid, s) in enumerate(kw, start=1)}
                vec_rank = {cid: (r, d) for r, (cid, d) in enumerate(vec, start=1)}
                if mode == "hybrid":
                    ranked = rrf([c for c, _ in kw], [c for c, _ in vec], self.fusion)[:k]
                elif mode == "keyword":
                    ranked = [(cid, -s) for cid, s in kw[:k]]
                else:
                    ranked = [(cid, 1.0 - d) for cid, d in vec[:k]]
                hits = self._hydrate(ranked, kw_rank, vec_rank, query)
        return SearchResult(query=query, mode=mode, hits=hits, timings=timings)

    def unknown_words(self, words: Iterable[str], limit: int = 3) -> list[str]:
        """The `words` no passage of the library holds, at most `limit` (core.vocabulary.unknown_words)."""
        from . import vocabulary  # which builds on this module's FTS5 helpers

        with db.translate_errors(self.db_path):
            return vocabulary.unknown_words(self.conn, words, limit)

    def _keyword_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._kw_conn = db.open_reader(self.db_path)
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="almanac-keyword")
        return self._pool

    def _timed_keyword(
        self, query: str, depth: int, scope: Scope | None, timings: Timings
    ) -> list[tuple[int, float]]:
        with timings.stage("keyword search"):
            return self._keyword(query, depth, scope, conn=self._kw_conn)

    # -- keywords ---------------------------------------------------------------------------------------

    def _keyword(
        self, query: str, depth: int, scope: Scope | None, *, conn: apsw.Connection | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, bm25) best first: passages with an exact sequence of the query first, then the rest."""
        conn = conn or self.conn
        parsed = KeywordQuery.parse(query)
        terms = self._index_terms(conn, parsed.words)
        if terms is None:
            parsed.words = self._affordable_words(conn, parsed.words)
        named = [i for i in parsed.identifiers if parsed.looks_up(i) and self._names_few(conn, i)]
        parts: list[Callable[[], list[tuple[int, float]]]] = []
        if (match := phrases_match(parsed.phrases + named)) is not None:
            parts.append(lambda m=match: self._fts(conn, m, depth, scope))
        if terms is not None:

            def indexed() -> list[tuple[int, float]]:  # the scope's ids read only if this part runs
                return keyword_index.search(conn, terms, depth, None if scope is None else scope.ids(conn))

            parts.append(indexed)
        elif (match := parsed.words_match()) is not None:
            parts.append(lambda m=match: self._fts(conn, m, depth, scope))
        out: list[tuple[int, float]] = []
        seen: set[int] = set()
        for part in parts:
            if len(out) >= depth:
                break
            for cid, score in part():
                if cid not in seen:
                    seen.add(cid)
                    out.append((cid, score))
        return out[:depth]

    def _index_terms(self, conn: apsw.Connection, words: list[str]) -> list[str] | None:
        """The words as keyword_index terms, when that index should answer: it is complete, the library is
        big enough for FTS5's scoring to be slow, and every word is one token (FTS5 matches a word that
        splits into several as a phrase)."""
        if not words or not keyword_index.ready(conn) or fts_row_count(conn) < KEYWORD_INDEX_MIN_CHUNKS:
            return None
        terms = []
        for word in words:
            tokens = self._query_tokens(conn, word)
            if len(tokens) != 1:
                return None
            terms.append(tokens[0])
        return terms

    @staticmethod
    def _names_few(conn: apsw.Connection, identifier: str) -> bool:
        """An identifier ranks its passages first when it is rare, as an error code or ticket id is; one found
        in many passages is a topic, which BM25 ranks with the rest of the query."""
        rows = conn.execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?",
            (phrases_match([identifier]), IDENTIFIER_MAX_PASSAGES + 1),
        ).fetchall()
        return len(rows) <= IDENTIFIER_MAX_PASSAGES

    def _affordable_words(self, conn: apsw.Connection, words: list[str]) -> list[str]:
        """`words` less those in more than PRUNE_DF_FRACTION of the chunks, once the query is expensive."""
        if len(words) < 2 or not self._has_vocab(conn):
            return words
        dfs = [self._document_frequency(conn, w) for w in words]
        if sum(dfs) <= PRUNE_MIN_POSTINGS:
            return words
        limit = PRUNE_DF_FRACTION * fts_row_count(conn)
        kept = [w for w, df in zip(words, dfs, strict=True) if df <= limit]
        return kept or [min(zip(dfs, words, strict=True))[1]]

    @staticmethod
    def _has_vocab(conn: apsw.Connection) -> bool:
        return bool(conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'chunks_fts_vocab'").fetchone())

    def _document_frequency(self, conn: apsw.Connection, word: str) -> int:
        """Chunks holding `word` (as FTS5 indexes it: porter-stemmed, folded), from FTS5's own index."""
        tokens = self._query_tokens(conn, word)
        counts = [
            (conn.execute("SELECT doc FROM chunks_fts_vocab WHERE term = ?", (t,)).fetchone() or (0,))[0]
            for t in tokens
        ]
        return min(counts, default=0)

    def _query_tokens(self, conn: apsw.Connection, word: str) -> list[str]:
        """`word` as FTS5 indexes it (porter-stemmed, folded): usually one token."""
        tokens = self._tokens.get(id(conn))
        if tokens is None:
            tokens = self._tokens[id(conn)] = keyword_index.Tokens(conn)
        return tokens.query(word)

    @staticmethod
    def _fts(conn: apsw.Connection, match: str, depth: int, scope: Scope | None) -> list[tuple[int, float]]:
        # Column weights: chunk text counts most, then the document title, then its path.
        sql = "SELECT rowid, bm25(chunks_fts, 1.0, 0.5, 0.2) AS s FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: tuple = (match,)
        if scope is not None:
            # "+rowid": the scope filters FTS5's matches. As a plain rowid constraint SQLite hands it to FTS5,
            # which then evaluates the whole query once per row of the scope: 86 s against 0.11 s for one
            # folder of 10,000 chunks in a 1M library (bench.latency --keywords).
            sql += f" AND +rowid IN ({scope.sql})"
            params += scope.params
        return conn.execute(sql + " ORDER BY s LIMIT ?", (*params, depth)).fetchall()

    # -- vectors ----------------------------------------------------------------------------------------

    def _vector(
        self, query: str, depth: int, scope: Scope | None, timings: Timings, *, exact: bool = False
    ) -> list[tuple[int, float]]:
        if not store.has_vector_tables(self.conn):
            return []
        model = store.vector_model(self.conn)
        if model and model[0] != self.embedder.name:
            return []  # vectors are from another model and are being re-made; keyword search still works
        if not getattr(self.embedder, "loaded", True):
            with timings.stage("embedding model load"):
                self.embedder.load()  # type: ignore[attr-defined]
        with timings.stage("embed query"):
            q = self.embedder.embed([query])[0].astype(np.float32).tobytes()
        # One read transaction: the table named in meta is the one read, even while the writer finishes a
        # rebuild and drops the old table.
        with timings.stage("vector search"), self.conn:
            return self._nearest(q, depth, scope, exact)

    def _embedded_chunks(self) -> int:
        """How many chunks have vectors: counted at most once a minute (a count is tens of ms at 1M)."""
        n, when = self._embedded
        if time.monotonic() - when > EMBEDDED_RECOUNT_S:
            n = self.conn.execute("SELECT count(*) FROM chunks WHERE embedded = 1").fetchone()[0]
            self._embedded = (n, time.monotonic())
        return n

    def _nearest(self, q: bytes, depth: int, scope: Scope | None, exact: bool) -> list[tuple[int, float]]:
        conn = self.conn
        table = vector_index.active_table(conn)
        if table is None:
            return []
        graph = vector_index.layout(conn) == vector_index.DISKANN
        if not graph:
            # vec0's exact scan; a scope is a rowid filter inside it.
            if scope is None:
                return conn.execute(
                    f"SELECT rowid, distance FROM {table} WHERE embedding MATCH ? AND k = ?", (q, depth)
                ).fetchall()
            return conn.execute(
                f"SELECT rowid, distance FROM {table}"
                f" WHERE embedding MATCH ? AND k = ? AND rowid IN ({scope.sql})",
                (q, depth, *scope.params),
            ).fetchall()
        if scope is None:
            if exact:
                alive = vector_index.dead_filter(conn, "rowid")
                return conn.execute(
                    f"SELECT rowid, vec_distance_cosine(embedding, ?) AS d FROM {table}"
                    + (f" WHERE {alive}" if alive else "")
                    + " ORDER BY d LIMIT ?",
                    (q, depth),
                ).fetchall()
            # sqlite-vec searches the graph with a list of max(k, L) candidates: asking for L rows sets L.
            # Its distances are not all exact (0.1.10a4 keeps a 1-bit estimate when that is smaller than the
            # true distance), so the candidates are re-ranked by their stored float vectors.
            near = conn.execute(
                f"SELECT rowid FROM {table} WHERE embedding MATCH ? AND k = ?",
                (q, max(depth, vector_index.search_list(self._embedded_chunks()))),
            ).fetchall()
            return exact_distances(conn, table, q, [r[0] for r in near])[:depth]
        # The graph cannot filter: a small scope reads its own vectors, a large one over-asks the graph.
        if not exact and scope.count(conn) > SCOPE_SCAN_MAX:
            total = self._embedded_chunks()
            want = min(MAX_ANN_K, max(vector_index.search_list(total), 2 * depth * total // SCOPE_SCAN_MAX))
            sql = f"SELECT rowid FROM {table} WHERE embedding MATCH ? AND k = ?"
            near = conn.execute(sql, (q, want)).fetchall()
            rows = exact_distances(conn, table, q, sorted(scope.members(conn, [r[0] for r in near])))
            if len(rows) >= depth:
                return rows[:depth]
        return exact_distances(conn, table, q, [r[0] for r in conn.execute(scope.sql, scope.params)])[:depth]

    # -- results ---------------------------------------------------------------------------------------------

    def _hydrate(
        self,
        ranked: list[tuple[int, float]],
        kw_rank: dict[int, tuple[int, float]],
        vec_rank: dict[int, tuple[int, float]],
        query: str,
    ) -> list[Hit]:
        if not ranked:
            return []
        ids = [cid for cid, _ in ranked]
        marks = ",".join("?" * len(ids))
        rows = {
            r[0]: r
            for r in self.conn.execute(
                "SELECT c.id, c.document_id, d.path, d.title, c.page, c.heading, c.text, c.start, c.end"
                f" FROM chunks c JOIN documents d ON d.id = c.document_id WHERE c.id IN ({marks})",
                ids,
            )
        }
        terms = {w.lower() for w in _WORD.findall(query)}
        hits = []
        for cid, score in ranked:
            row = rows.get(cid)
            if row is None:
                continue  # deleted between the two reads
            snippet, marks_ = make_snippet(row[6], terms)
            kw = kw_rank.get(cid)
            vec = vec_rank.get(cid)
            hits.append(
                Hit(
                    chunk_id=cid,
                    document_id=row[1],
                    path=row[2],
                    title=row[3],
                    page=row[4],
                    heading=row[5],
                    text=row[6],
                    snippet=snippet,
                    snippet_marks=marks_,
                    score=score,
                    keyword_rank=kw[0] if kw else None,
                    keyword_score=kw[1] if kw else None,
                    vector_rank=vec[0] if vec else None,
                    vector_distance=vec[1] if vec else None,
                    start=row[7],
                    end=row[8],
                )
            )
        return hits


_SNIPPET_STOP = STOP_WORDS | frozenset("from has have its were".split())


def term_matches(word: str, terms: set[str]) -> bool:
    """Whether lower-cased `word` is marked for one of `terms`: a term of 3+ letters marks the words it
    starts ("index" marks "indexing", as FTS5 stems), a shorter one only itself (the "s" of "Emma's")."""
    return any(word.startswith(t) and len(t) >= min(len(word), 3) for t in terms)


def term_spans(text: str, terms: set[str]) -> list[tuple[int, int]]:
    """[start, end) of the words of `text` marked for one of `terms` (term_matches)."""
    return [m.span() for m in _WORD.finditer(text) if term_matches(m.group().lower(), terms)]


def make_snippet(text: str, terms: set[str], width: int = 240) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` around the densest run of query terms, and where those terms are in it
    (term_spans)."""
    terms = {t for t in terms if t not in _SNIPPET_STOP} or terms
    spans = term_spans(text, terms)
    if not spans:
        cut = text[:width]
        return (cut + ("…" if len(text) > width else ""), [])
    # The window that holds the most matches.
    best_start, best_count = spans[0][0], 0
    j = 0
    for i, (s, _) in enumerate(spans):
        while j < len(spans) and spans[j][1] <= s + width:
            j += 1
        if j - i > best_count:
            best_start, best_count = s, j - i
    start = max(0, best_start - width // 4)
    while start > 0 and not text[start - 1].isspace():
        start -= 1  # never cut a word
    end = min(len(text), start + width)
    while end < len(text) and not text[end].isspace():
        end += 1
    prefix = "…" if start > 0 else ""
    snippet = prefix + text[start:end] + ("…" if end < len(text) else "")
    shift = len(prefix) - start
    marks = [(s + shift, e + shift) for s, e in spans if s >= start and e <= end]
    return snippet, marks
