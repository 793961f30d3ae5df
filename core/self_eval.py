"""Evaluation on the user's own library, with no labels and no model: a known-item test.

Building the set (once, then kept in the query log): sample passages across the library; from each, take its
most distinctive words (lowest document frequency in the keyword index) as a query, in reading order. A
query must point at one document only: if its words all occur together in another document too (a copy, a
near-duplicate, a quoted passage), the passage is skipped. So each item has one right answer, the document the
passage came from.

Running it: search each query and score where that document ranks (MRR@10 and hit@10 per mode). Items whose
document has left the library count as misses and are reported as `missing`, so a library that lost half its
files shows it. The run is recorded with its date, the embedding model and the index size.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import apsw

from .hits import Mode, SearchResult
from .querylog import QueryLog, SelfEvalRun
from .search import STOP_WORDS

SAMPLE_SIZE = 100
QUERY_TERMS = 5
MIN_PASSAGE_CHARS = 200
# A new run is due when the index grew or shrank this much since the last one, or the model changed.
RERUN_CHANGE = 0.25
_CANDIDATE_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)


@dataclass
class Item:
    query: str
    document_path: str
    chunk_hash: str


def _doc_freq(conn: apsw.Connection, word: str) -> int:
    quoted = '"' + word.replace('"', '""') + '"'
    return conn.execute(
        "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (f"text : {quoted}",)
    ).fetchone()[0]


def _unique_to_document(conn: apsw.Connection, words: list[str], document_id: int) -> bool:
    match = " AND ".join('text : "' + w.replace('"', '""') + '"' for w in words)
    rows = conn.execute(
        "SELECT DISTINCT c.document_id FROM chunks_fts f JOIN chunks c ON c.id = f.rowid"
        " WHERE chunks_fts MATCH ? LIMIT 3",
        (match,),
    ).fetchall()
    return [r[0] for r in rows] == [document_id]


def build_items(conn: apsw.Connection, *, size: int = SAMPLE_SIZE, seed: int = 0) -> list[Item]:
    """Sample up to `size` known items from the index behind `conn` (a reader connection)."""
    lo, hi = conn.execute("SELECT min(id), max(id) FROM chunks").fetchone()
    if lo is None:
        return []
    rng = random.Random(seed)
    items: list[Item] = []
    used_docs: set[int] = set()
    tries = 0
    while len(items) < size and tries < size * 20:
        tries += 1
        row = conn.execute(
            "SELECT c.id, c.document_id, c.text, c.text_hash, d.path FROM chunks c"
            " JOIN documents d ON d.id = c.document_id WHERE c.id >= ? AND d.status = 'indexed'"
            " ORDER BY c.id LIMIT 1",
            (rng.randint(lo, hi),),
        ).fetchone()
        if row is None:
            continue
        _, doc_id, text, digest, path = row
        if len(text) < MIN_PASSAGE_CHARS or (doc_id in used_docs and len(used_docs) < size // 2):
            continue  # spread the sample over documents before taking a second passage from one
        if conn.execute("SELECT count(*) FROM chunks WHERE text_hash = ?", (digest,)).fetchone()[0] > 1:
            continue  # the same passage is in several places
        words: dict[str, int] = {}
        for m in _CANDIDATE_WORD.finditer(text):
            w = m.group().lower()
            if w not in STOP_WORDS and w not in words:
                words[w] = m.start()
        candidates = sorted(words, key=lambda w: (-len(w), words[w]))[:24]
        if len(candidates) < QUERY_TERMS:
            continue
        rare = sorted(candidates, key=lambda w: (_doc_freq(conn, w), words[w]))[:QUERY_TERMS]
        if not _unique_to_document(conn, rare, doc_id):
            continue
        query = " ".join(sorted(rare, key=words.__getitem__))
        items.append(Item(query, path, digest))
        used_docs.add(doc_id)
    return items


def run(
    search: Callable[..., SearchResult],
    items: Iterable[Item],
    present_paths: set[str],
    modes: Iterable[Mode] = ("hybrid", "keyword", "vector"),
) -> tuple[dict[str, dict[str, float]], int]:
    """({mode: {"mrr@10", "hit@10"}}, missing items)."""
    items = list(items)
    missing = sum(it.document_path not in present_paths for it in items)
    scores: dict[str, dict[str, float]] = {}
    for mode in modes:
        rr = hit = 0.0
        for it in items:
            if it.document_path not in present_paths:
                continue
            docs: list[str] = []
            for h in search(it.query, k=30, mode=mode).hits:
                if h.path not in docs:
                    docs.append(h.path)
            if it.document_path in docs[:10]:
                rank = docs.index(it.document_path) + 1
                rr += 1.0 / rank
                hit += 1.0
        n = len(items) or 1
        scores[mode] = {"mrr@10": round(rr / n, 4), "hit@10": round(hit / n, 4)}
    return scores, missing


def due(qlog: QueryLog, *, embedding_model: str, chunks: int) -> str | None:
    """Why a self-evaluation should run now, or None when the last one still stands."""
    runs = qlog.self_eval_runs()
    if not runs:
        return "no self-evaluation yet"
    last = runs[-1]
    if last.embedding_model != embedding_model:
        return f"the embedding model changed ({last.embedding_model} → {embedding_model})"
    if last.chunks and abs(chunks - last.chunks) / last.chunks >= RERUN_CHANGE:
        return f"the index changed by {abs(chunks - last.chunks) / last.chunks:.0%} since the last run"
    return None


def evaluate_library(
    qlog: QueryLog,
    conn: apsw.Connection,
    search: Callable[..., SearchResult],
    *,
    embedding_model: str,
    rebuild: bool = False,
    modes: Iterable[Mode] = ("hybrid", "keyword", "vector"),
) -> SelfEvalRun:
    """Build the known-item set if there is none (or `rebuild`), run it, record and return the run."""
    stored = [] if rebuild else [Item(*row) for row in qlog.self_eval_items()]
    if not stored:
        stored = build_items(conn)
        qlog.set_self_eval_items([(it.query, it.document_path, it.chunk_hash) for it in stored])
    present = {r[0] for r in conn.execute("SELECT path FROM documents WHERE status = 'indexed'")}
    scores, missing = run(search, stored, present, modes)
    documents, chunks = conn.execute(
        "SELECT (SELECT count(*) FROM documents WHERE status = 'indexed'), (SELECT count(*) FROM chunks)"
    ).fetchone()
    result = SelfEvalRun(
        ts=time.time(),
        embedding_model=embedding_model,
        documents=documents,
        chunks=chunks,
        items=len(stored),
        missing=missing,
        scores=scores,
    )
    if stored:  # a library too small for a known-item set has no score to record
        qlog.add_self_eval_run(result)
    return result
