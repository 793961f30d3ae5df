"""Hybrid retrieval: vector KNN in sqlite-vec and BM25 in FTS5, fused by reciprocal rank.

Scale: the vector KNN is sqlite-vec's exact float scan at every size. A 1-bit quantized first pass in vec0
(`bit[384]` + Hamming KNN, then exact rescoring through `rowid IN`) was measured slower *and* less accurate
than the exact scan at a million chunks (bench/latency.py, docs/benchmarks.md), so it is gone. The measured
way to 1M-chunk speed is a first pass over the 1-bit codes held in RAM (numpy) and rescoring from a plain
rowid table; see docs/benchmarks.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import db, store
from .embedding import Embedder
from .errors import QueryError
from .hits import Hit, Mode, SearchResult
from .timing import Timings

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_QUERY_TERMS = 64


# Lucene's English stop words (as Anserini's BM25 uses) plus question words: they match nearly every
# chunk, so OR-ing them in costs time at scale and makes any question look like a keyword match.
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there these"
    " they this to was will with what how why when where which who whom whose do does did can could should"
    " would i me my you your".split()
)


def fts_query(text: str) -> str | None:
    """User text as a safe FTS5 query: every word quoted, OR-ed, so no user text is ever FTS5 syntax.

    Stop words are dropped unless the query has nothing else ("to be or not to be").
    """
    words: list[str] = []
    seen = set()
    for w in _WORD.findall(text):
        lw = w.lower()
        if lw not in seen:
            seen.add(lw)
            words.append(w)
    content = [w for w in words if w.lower() not in STOP_WORDS] or words
    quoted = ['"' + w.replace('"', '""') + '"' for w in content[:MAX_QUERY_TERMS]]
    return " OR ".join(quoted) or None


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


class Searcher:
    """Read-only queries on their own connection. One Searcher per thread."""

    def __init__(
        self,
        db_path: Path | str,
        embedder: Embedder,
        *,
        fusion: FusionConfig | None = None,
    ) -> None:
        self.db_path = db_path
        self.conn = db.open_reader(db_path)
        self.embedder = embedder
        self.fusion = fusion or FusionConfig()

    def close(self) -> None:
        self.conn.close()

    def search(
        self, query: str, *, k: int = 10, mode: Mode = "hybrid", folders: list[str] | None = None
    ) -> SearchResult:
        if not query or not query.strip():
            raise QueryError("Type a question or some words to search for.")
        if mode not in ("hybrid", "vector", "keyword"):
            raise QueryError(f"Unknown search mode {mode!r}: use hybrid, vector or keyword.")
        timings = Timings()
        allowed = self._chunk_filter(folders)
        depth = max(k, self.fusion.depth) if mode == "hybrid" else k
        kw: list[tuple[int, float]] = []
        vec: list[tuple[int, float]] = []
        with db.translate_errors(self.db_path):
            if mode in ("hybrid", "vector"):
                vec = self._vector(query, depth, allowed, timings)
            if mode in ("hybrid", "keyword"):
                with timings.stage("keyword search"):
                    kw = self._keyword(query, depth, allowed)
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

    # -- the two retrievers ---------------------------------------------------------------------------------

    def _keyword(self, query: str, depth: int, allowed: set[int] | None) -> list[tuple[int, float]]:
        match = fts_query(query)
        if match is None:
            return []
        limit = depth if allowed is None else depth * 20
        # Column weights: chunk text counts most, then the document title, then its path.
        rows = self.conn.execute(
            "SELECT rowid, bm25(chunks_fts, 1.0, 0.5, 0.2) AS s FROM chunks_fts"
            " WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?",
            (match, limit),
        ).fetchall()
        if allowed is not None:
            rows = [r for r in rows if r[0] in allowed]
        return [(r[0], r[1]) for r in rows[:depth]]

    def _vector(
        self, query: str, depth: int, allowed: set[int] | None, timings: Timings
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
        with timings.stage("vector search"):
            want = depth if allowed is None else depth * 20
            rows = self.conn.execute(
                "SELECT rowid, distance FROM vec_chunks WHERE embedding MATCH ? AND k = ?",
                (q, min(want, 4096)),
            ).fetchall()
        if allowed is not None:
            rows = [r for r in rows if r[0] in allowed]
        return [(r[0], r[1]) for r in rows[:depth]]

    def _chunk_filter(self, folders: list[str] | None) -> set[int] | None:
        if not folders:
            return None
        ids: set[int] = set()
        for folder in folders:
            prefix = str(Path(folder).expanduser().resolve())
            rows = self.conn.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.document_id"
                " WHERE d.path = ? OR substr(d.path, 1, ?) = ?",
                (prefix, len(prefix) + 1, prefix.rstrip("/") + "/"),
            )
            ids.update(r[0] for r in rows)
        return ids

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


def make_snippet(text: str, terms: set[str], width: int = 240) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` around the densest run of query terms, and where those terms are in it.

    Terms match whole words by prefix, so "index" marks "indexing" (FTS5 stems the same way).
    """
    terms = {t for t in terms if t not in _SNIPPET_STOP} or terms
    spans = []
    for m in _WORD.finditer(text):
        word = m.group().lower()
        if any(word.startswith(t) and len(t) >= min(len(word), 3) for t in terms):
            spans.append((m.start(), m.end()))
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
