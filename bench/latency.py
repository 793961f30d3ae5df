"""Query latency at scale: synthetic libraries of 10k to 1M chunks, searched the production way.

    .venv/bin/python -m bench.latency [--quick] [--sizes 10k,100k,300k,1m] [--queries 50]
    .venv/bin/python -m bench.latency --build [--sizes ...] [--ann diskann,rescore]   # build only (long)
    .venv/bin/python -m bench.latency --vectors [--sizes ...]                          # the index study
    .venv/bin/python -m bench.latency --keywords [--sizes ...]                         # keyword search study

Each library is built straight into the real schema (db.open_writer + store.ensure_vector_tables, then bulk
inserts of documents, chunks, FTS rows and float vectors in the flat vec0 table), never through the
embedder, and cached in cache_dir("latency") keyed by size and generator version (1M chunks: about 4 GB).

Realistic text and vectors: 2,048 SciFact abstracts are embedded once with the bundled model (cached). A
synthetic document has one such abstract as its topic; each of its 10 chunks is a run of 4-8 sentences of
that abstract plus one or two sentences from two other abstracts, and its vector is the matching mixture of
the three real vectors (topic weight 0.55-0.9) plus Gaussian noise, normalized: clustered like real
embeddings, with text and vector that agree, so keyword and vector lists overlap as they do in real use.

Vector indexes (`--build --ann ...`, then `--vectors`): each of sqlite-vec's index kinds is built in the
same library file from the stored float vectors by the production copy (`vector_index.copy_vectors`, the
rebuild's step; resumable, cached): `rescore(quantizer=bit)`, `rescore(quantizer=int8)`,
`diskann(neighbor_quantizer=binary)` (production's) and `diskann(neighbor_quantizer=int8, n_neighbors=32)`. The study reports build time per chunk, p50/p95 query time and
recall@10 against the exact scan for several runtime settings (rescore oversample, DiskANN search list L),
and the cost of deleting a vector and of re-inserting it (a re-embed), measured inside a transaction that is
rolled back so the cached index stays as built.

Keyword search (`--keywords`): FTS5's bm25 over every word, FTS5 with frequent words left out (the fallback
while keyword_index fills) and keyword_index (production), interleaved per query, with overlap@10 against the
first, and the same inside folder scopes (one subfolder of the library's 100, and half of them); then
keyword_index's size, catch-up time (a library built here is filled like an older library, once)
and write cost: FTS rows added with and without its hook, its fold, and a purge of chunks deleted across
the library, each inside a transaction that is rolled back.

Queries: the first 50 SciFact test claims (held out: claims, not corpus text), embedded with the bundled
model. Retrieval latencies EXCLUDE the query embedding: the Searcher gets an embedder that looks the
precomputed query vector up (so its "embed query" stage is ~0); the model's own query-embedding time is
reported once, separately. Everything else is the production path, `Searcher.search()` with its defaults
(hydration and snippets included), on each vector layout the library has (flat always, DiskANN when built:
the bench points the library's meta at it). Baseline in the same run: sqlite-vec's exact float KNN
`SELECT rowid, distance FROM vec_chunks WHERE embedding MATCH ? AND k = 10`. Modes run interleaved per
query, so the neighbours' load hits every mode alike.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import time
from pathlib import Path

import apsw
import numpy as np
from almanac.core import db, keyword_index, store, vector_index
from almanac.core.embedding import BUNDLED_NAME, SentenceTransformerEmbedder
from almanac.core.search import Searcher, exact_distances

from .common import cache_dir, table
from .util import header, pct, ratio, scifact_docs, scifact_queries, sentences

SIZES = {"10k": 10_000, "100k": 100_000, "300k": 300_000, "1m": 1_000_000}
BASE_DOCS = 2048
CHUNKS_PER_DOC = 10
NOISE = 0.02  # per dimension: a noise vector of norm ~0.4 beside the unit-scale mixture
SEED = 20261126
GENERATOR = 1  # bump when the generator changes: cached libraries are keyed by it
BATCH_DOCS = 5000  # documents per transaction (50,000 chunks)
DIM = 384
EXACT_SQL = "SELECT rowid, distance FROM vec_chunks WHERE embedding MATCH ? AND k = 10"
TARGET_VECTOR_MS, TARGET_KEYWORD_MS, TARGET_HYBRID_MS, TARGET_RECALL = 30.0, 40.0, 50.0, 0.95
_WORD = re.compile(r"\w+", re.UNICODE)


# -- inputs ---------------------------------------------------------------------------------------------


class FixedEmbedder:
    """Looks precomputed query vectors up, so retrieval timings leave the model out."""

    name = BUNDLED_NAME
    dim = DIM
    max_tokens = 254

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


def base_vectors(docs: list[dict]) -> np.ndarray:
    path = cache_dir("latency") / f"base-{len(docs)}.npy"
    if path.exists():
        return np.load(path)
    print(f"embedding {len(docs)} SciFact abstracts once (cached in {path.parent}) ...", flush=True)
    emb = SentenceTransformerEmbedder()
    texts = [f"{d['title']}\n\n{d['text']}" for d in docs]
    parts = []
    start = time.monotonic()
    for i in range(0, len(texts), 256):
        parts.append(emb.embed(texts[i : i + 256]))
        print(f"  {i + len(parts[-1])}/{len(texts)} in {time.monotonic() - start:.0f} s", flush=True)
    vecs = np.concatenate(parts).astype(np.float32)
    np.save(path, vecs)
    return vecs


def query_vectors(queries: list[str]) -> tuple[np.ndarray, list[float]]:
    """The queries embedded by the bundled model, and the model's time per query (ms)."""
    emb = SentenceTransformerEmbedder()
    emb.embed(["warm up"])
    out, ms = [], []
    for q in queries:
        t = time.perf_counter()
        out.append(emb.embed([q])[0])
        ms.append((time.perf_counter() - t) * 1000)
    return np.stack(out).astype(np.float32), ms


# -- building -------------------------------------------------------------------------------------------


def library_path(n: int) -> Path:
    return cache_dir("latency") / f"synthetic-{n}-g{GENERATOR}.db"


def build(n: int, docs: list[dict], base: np.ndarray) -> Path:
    path = library_path(n)
    if path.exists():
        return path
    tmp = path.with_suffix(".building")
    for p in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        p.unlink(missing_ok=True)
    print(f"building a {n:,}-chunk library at {path} (once) ...", flush=True)
    sents = [sentences(d["text"]) or [d["title"]] for d in docs]
    titles = [d["title"] for d in docs]
    rng = np.random.default_rng(SEED)
    pick = random.Random(SEED)
    conn = db.open_writer(tmp)
    store.ensure_vector_tables(conn, BUNDLED_NAME, DIM)
    with conn:  # FTS rows go in directly below; keyword_index reads them afterwards (ensure_keyword_index)
        db.set_meta(conn, keyword_index.META_KEY, "building 0")
    folder_id = store.add_folder(conn, "/synthetic")
    n_docs = n // CHUNKS_PER_DOC
    start = time.monotonic()
    for d0 in range(0, n_docs, BATCH_DOCS):
        d1 = min(n_docs, d0 + BATCH_DOCS)
        topic = rng.integers(len(docs), size=d1 - d0)
        m = (d1 - d0) * CHUNKS_PER_DOC
        prim = np.repeat(topic, CHUNKS_PER_DOC)
        s1, s2 = rng.integers(len(docs), size=(2, m))
        w0 = rng.uniform(0.55, 0.9, m)
        u = rng.uniform(size=m)
        w1, w2 = (1 - w0) * u, (1 - w0) * (1 - u)
        vecs = w0[:, None] * base[prim] + w1[:, None] * base[s1] + w2[:, None] * base[s2]
        vecs += rng.normal(0.0, NOISE, vecs.shape)
        vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
        doc_rows, chunk_rows, fts_rows = [], [], []
        for j, t in enumerate(topic):
            doc_id = d0 + j + 1
            doc_path = f"/synthetic/{doc_id // 1000:04d}/{doc_id:07d}.txt"
            doc_rows.append((doc_id, folder_id, doc_path, 0, 0, f"synthetic-{doc_id}", "text", titles[t], time.time()))
        for c in range(m):
            p = sents[prim[c]]
            length = min(len(p), pick.randint(4, 8))
            first = pick.randrange(len(p))
            run = [p[(first + i) % len(p)] for i in range(length)]
            run.append(pick.choice(sents[s1[c]]))
            if w2[c] > 0.1:
                run.append(pick.choice(sents[s2[c]]))
            text = " ".join(run)
            chunk_id = d0 * CHUNKS_PER_DOC + c + 1
            doc_id = d0 + c // CHUNKS_PER_DOC + 1
            chunk_rows.append((chunk_id, doc_id, c % CHUNKS_PER_DOC, text, store.text_hash(text)))
            fts_rows.append((chunk_id, text, titles[prim[c]], doc_rows[c // CHUNKS_PER_DOC][2]))
        first_id = d0 * CHUNKS_PER_DOC + 1
        with conn:
            conn.executemany(
                "INSERT INTO documents(id, folder_id, path, size, mtime_ns, content_hash, kind, title, status,"
                " indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'indexed', ?)",
                doc_rows,
            )
            conn.executemany(
                "INSERT INTO chunks(id, document_id, ord, heading, start, end, text, text_hash, embedded)"
                " VALUES (?, ?, ?, '', 0, length(?4), ?4, ?5, 1)",
                chunk_rows,
            )
            conn.executemany("INSERT INTO chunks_fts(rowid, text, title, path) VALUES (?, ?, ?, ?)", fts_rows)
            blobs = [(first_id + i, vecs[i].tobytes()) for i in range(m)]
            conn.executemany("INSERT INTO vec_chunks(rowid, embedding) VALUES (?, ?)", blobs)
        done = d1 * CHUNKS_PER_DOC
        el = time.monotonic() - start
        print(f"  {done:,}/{n:,} chunks in {el:.0f} s ({done / el:.0f} chunks/s)", flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    tmp.rename(path)
    print(f"built {n:,} chunks in {time.monotonic() - start:.0f} s, {path.stat().st_size / 2**30:.2f} GiB")
    return path


# -- vector indexes -------------------------------------------------------------------------------------

ANN = {
    # name: (table, DDL index clause, runtime settings to sweep)
    "rescore-bit": ("bench_rescore_bit", " indexed by rescore(quantizer=bit, oversample=8)", ("oversample", (8, 32, 128))),
    "rescore-int8": ("bench_rescore_int8", " indexed by rescore(quantizer=int8, oversample=4)", ("oversample", (4, 16))),
    "diskann": ("bench_diskann", " indexed by diskann(neighbor_quantizer=binary)", ("L", (128, 256, 512, 1024))),
    # 8-bit neighbour codes: better distance estimates steer the search, at 8x the bytes a neighbour (32 of
    # them a node instead of 72 keeps a node at 12 KiB)
    "diskann-int8": ("bench_diskann_int8", " indexed by diskann(neighbor_quantizer=int8, n_neighbors=32)",
                     ("L", (64, 128, 256, 512, 1024))),
}
COPY_BATCH = 1000


def build_ann(path: Path, name: str) -> None:
    """Build one index kind in the library from its stored float vectors (production copy, resumable)."""
    table, clause, _ = ANN[name]
    conn = db.open_writer(path)
    if db.get_meta(conn, f"bench_built_{table}"):
        conn.close()
        return
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
        conn.execute(f"CREATE VIRTUAL TABLE {table} USING vec0(embedding float[{DIM}] distance_metric=cosine{clause})")
    cursor = int(db.get_meta(conn, f"bench_cursor_{table}") or 0)
    spent = float(db.get_meta(conn, f"bench_seconds_{table}") or 0.0)
    total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    print(f"building {name} over {total:,} vectors in {path.name} (resuming at id {cursor:,}) ...", flush=True)
    while True:
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (cursor, COPY_BATCH))]
        if not ids:
            break
        t = time.perf_counter()
        with conn:
            vector_index.copy_vectors(conn, "vec_chunks", table, ids)
            cursor = ids[-1]
            spent += time.perf_counter() - t
            db.set_meta(conn, f"bench_cursor_{table}", str(cursor))
            db.set_meta(conn, f"bench_seconds_{table}", f"{spent:.3f}")
        if cursor % (10 * COPY_BATCH) < COPY_BATCH:
            print(f"  {name}: {cursor:,}/{total:,} in {spent:.0f} s ({spent / cursor * 1000:.2f} ms/vector)", flush=True)
    with conn:
        db.set_meta(conn, f"bench_built_{table}", f"{spent:.3f}")
    conn.close()


def built_ann(conn: apsw.Connection) -> dict[str, float]:
    """Index kinds built in this library -> build seconds."""
    out = {}
    for name, (tbl, _, _) in ANN.items():
        secs = db.get_meta(conn, f"bench_built_{tbl}")
        if secs:
            out[name] = float(secs)
    return out


def knn_ms(conn, table: str, qvecs: np.ndarray, k: int, take: int = 10, rerank: bool = False) -> tuple[list[float], list[set[int]]]:
    """Per-query ms and top-`take` ids of a vec0 KNN; `rerank`: the production way for the graph (its k
    candidates re-ranked by the exact distance from the stored vectors)."""
    ms, got = [], []
    for q in qvecs:
        t = time.perf_counter()
        rows = conn.execute(f"SELECT rowid, distance FROM {table} WHERE embedding MATCH ? AND k = ?", (q.tobytes(), k)).fetchall()
        if rerank:
            rows = exact_distances(conn, table, q.tobytes(), [r[0] for r in rows])
        ms.append((time.perf_counter() - t) * 1000)
        got.append({r[0] for r in rows[:take]})
    return ms, got


def vector_study(path: Path, qvecs: np.ndarray) -> list[list[object]]:
    """Every built index kind x runtime setting: query p50/p95, recall@10 vs exact, build/delete/re-insert cost."""
    conn = db.open_writer(path)  # runtime settings are commands (writes to the vtab)
    n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    for q in qvecs[:3]:
        conn.execute(EXACT_SQL, (q.tobytes(),)).fetchall()
    exact_ms, truth = knn_ms(conn, "vec_chunks", qvecs, 10)
    churn = [r[0] for r in conn.execute("SELECT id FROM chunks ORDER BY id DESC LIMIT 20")]
    rows = [[f"{n:,}", "flat (exact scan)", "-", pct(exact_ms, 50), pct(exact_ms, 95), 1.0, "-", *churn_cost(conn, "vec_chunks", churn)]]
    for name, secs in built_ann(conn).items():
        table, _, (knob, values) = ANN[name]
        dc, rc = churn_cost(conn, table, churn)
        for v in values:
            if knob == "oversample":
                conn.execute(f"INSERT INTO {table}({table}) VALUES ('oversample={v}')")
                k = 10
            else:
                k = v
            knn_ms(conn, table, qvecs[:3], k)  # warm
            for rerank in (False, True) if knob == "L" else (False,):
                ms, got = knn_ms(conn, table, qvecs, k, rerank=rerank)
                recall = float(np.mean([len(g & t) / 10 for g, t in zip(got, truth, strict=True)]))
                setting = f"{knob}={v}" + (" + exact re-rank" if rerank else "")
                rows.append([f"{n:,}", name, setting, pct(ms, 50), pct(ms, 95), recall, secs / n * 1000, dc, rc])
        print(f"  {name} measured", flush=True)
    conn.close()
    return rows


def graph_study(path: Path, qvecs: np.ndarray, lists: list[int]) -> list[list[object]]:
    """The DiskANN graphs only (each one built here), as production searches them (L candidates, exact
    re-rank), for each search list size L: p50/p95 and recall@10 against the exact scan. Every setting runs once untimed first, so each is
    measured with the graph's pages in the page cache (a cold first pass cost 4x at 300k)."""
    conn = db.open_reader(path)
    n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    knn_ms(conn, "vec_chunks", qvecs, 10)
    exact_ms, truth = knn_ms(conn, "vec_chunks", qvecs, 10)
    rows = [[f"{n:,}", "exact scan (baseline)", pct(exact_ms, 50), pct(exact_ms, 95), 1.0, 1.0]]
    graphs = [name for name in built_ann(conn) if name.startswith("diskann")]  # every graph built here
    for name in graphs:
        for size in lists:
            knn_ms(conn, ANN[name][0], qvecs, size, rerank=True)
            ms, got = knn_ms(conn, ANN[name][0], qvecs, size, rerank=True)
            recall = float(np.mean([len(g & t) / 10 for g, t in zip(got, truth, strict=True)]))
            rows.append([f"{n:,}", f"{name} L={size} + re-rank", pct(ms, 50), pct(ms, 95),
                         pct(ms, 50) / pct(exact_ms, 50), recall])
    conn.close()
    return rows


def churn_cost(conn, table: str, ids: list[int]) -> tuple[float, float]:
    """Median ms to delete one vector and to insert it again (a re-embed), rolled back afterwards."""
    dels, ins = [], []
    conn.execute("BEGIN")
    try:
        for cid in ids:
            blob = conn.execute(f"SELECT embedding FROM {table} WHERE rowid = ?", (cid,)).fetchone()[0]
            t = time.perf_counter()
            conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (cid,))
            dels.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            conn.execute(f"INSERT INTO {table}(rowid, embedding) VALUES (?, ?)", (cid, blob))
            ins.append((time.perf_counter() - t) * 1000)
    finally:
        conn.execute("ROLLBACK")
    return pct(dels, 50), pct(ins, 50)


def use_layout(path: Path, name: str) -> None:
    """Point the library's meta at one vector table, as a finished rebuild would."""
    conn = db.open_writer(path)
    table, chosen = ("vec_chunks", vector_index.FLAT) if name == "flat" else (ANN[name][0], vector_index.DISKANN)
    with conn:
        db.set_meta(conn, "vec_table", table)
        db.set_meta(conn, "vec_layout", chosen)
    conn.close()


# -- keyword search -------------------------------------------------------------------------------------


def ensure_keyword_index(path: Path) -> float | None:
    """Fill the library's keyword_index (once; the production catch-up an older library gets). Returns the
    seconds it took when it ran now."""
    conn = db.open_writer(path)
    try:
        if keyword_index.ready(conn):
            return None
        n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        print(f"filling the keyword index of {path.name} ({n:,} chunks, once) ...", flush=True)
        t = time.perf_counter()
        keyword_index.catch_up(conn, progress=lambda d, total: print(f"  {d:,}/{total:,}", flush=True) if d % 131_072 < 16_384 else None)
        secs = time.perf_counter() - t
        with conn:
            db.set_meta(conn, "bench_keyword_index_seconds", f"{secs:.1f}")
        return secs
    finally:
        conn.close()


def keyword_write_cost(path: Path, n_chunks: int = 2000, n_deleted: int = 200) -> list[list[object]]:
    """ms per chunk to add FTS rows, with and without keyword_index's hook, and to fold; rolled back after.
    The rows are copies of existing chunks under new ids (as a re-indexed file's chunks are)."""
    conn = db.open_writer(path)
    top = conn.execute("SELECT max(id) FROM chunks").fetchone()[0]
    src = conn.execute(
        "SELECT c.text, d.title, d.path FROM chunks c JOIN documents d ON d.id = c.document_id"
        " WHERE c.id % 500 = 7 LIMIT ?", (n_chunks,)).fetchall()
    rows = [(top + 1 + i, t, title, store.display_path(p)) for i, (t, title, p) in enumerate(src)]
    gone = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE id % 4999 = 3 LIMIT ?", (n_deleted,))]
    out = []
    conn.execute("BEGIN")
    try:
        t = time.perf_counter()
        conn.executemany("INSERT INTO chunks_fts(rowid, text, title, path) VALUES (?, ?, ?, ?)", rows)
        fts_ms = (time.perf_counter() - t) * 1000 / len(rows)
        saved = keyword_index.FOLD_POSTINGS
        keyword_index.FOLD_POSTINGS = 10**12  # the fold is timed on its own below
        t = time.perf_counter()
        keyword_index.add(conn, rows)
        add_ms = (time.perf_counter() - t) * 1000 / len(rows)
        keyword_index.FOLD_POSTINGS = saved
        postings = conn.execute("SELECT count(*) FROM kw_pending").fetchone()[0]
        t = time.perf_counter()
        keyword_index.fold(conn)
        fold_ms = (time.perf_counter() - t) * 1000 / len(rows)
        out.append([f"add {len(rows):,} chunks ({postings:,} postings)", fts_ms, add_ms, fold_ms])
        t = time.perf_counter()
        conn.execute("DELETE FROM chunks WHERE id IN (SELECT value FROM json_each(?))", (json.dumps(gone),))
        del_ms = (time.perf_counter() - t) * 1000 / len(gone)  # chunks, FTS rows (trigger) and kw_removed
        blocks = len({i >> keyword_index.BLOCK_BITS for i in gone})
        t = time.perf_counter()
        keyword_index.fold(conn, budget_s=keyword_index.PURGE_BUDGET_S)  # as the writer folds while indexing
        first_s = time.perf_counter() - t
        left = conn.execute("SELECT count(DISTINCT chunk_id >> ?) FROM kw_removed", (keyword_index.BLOCK_BITS,))
        left_blocks = left.fetchone()[0]
        t = time.perf_counter()
        keyword_index.fold(conn)
        purge_s = first_s + time.perf_counter() - t
        out.append([f"delete {len(gone)} chunks in {blocks} blocks (purge {purge_s:.1f} s; the writer's first"
                    f" fold {first_s:.2f} s, {blocks - left_blocks} blocks)", del_ms, "-", purge_s * 1000 / len(gone)])
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    return out


SCOPE_QUERIES = 4


def keyword_scope_study(path: Path, queries: list[str]) -> list[list[object]]:
    """Keyword search inside a folder scope (one subfolder of 100, and half of them), FTS5 against
    keyword_index, interleaved per query: p50 and whether the top 10 agree. The first SCOPE_QUERIES queries
    only: FTS5 restricted to a scope takes tens of seconds a query at 1M."""
    from almanac.core import search

    s = Searcher(path, FixedEmbedder({}))
    n = search.fts_row_count(s.conn)
    folders = sorted({p.rsplit("/", 2)[-2] for (p,) in s.conn.execute("SELECT path FROM documents WHERE id % 997 = 1")})
    scopes = {"one subfolder": [f"/synthetic/{folders[len(folders) // 2]}"],
              "half the subfolders": [f"/synthetic/{f}" for f in folders[::2]]}
    saved = search.KEYWORD_INDEX_MIN_CHUNKS, search.PRUNE_DF_FRACTION
    search.PRUNE_DF_FRACTION = 1.0  # FTS5 over every word: the same BM25 as keyword_index
    rows = []
    try:
        for label, scope in scopes.items():
            ms: dict[str, list[float]] = {"FTS5": [], "keyword_index": []}
            top: dict[str, list[list[int]]] = {"FTS5": [], "keyword_index": []}
            for i, q in enumerate(queries[:SCOPE_QUERIES]):
                for way in (("FTS5", "keyword_index") if i % 2 else ("keyword_index", "FTS5")):
                    search.KEYWORD_INDEX_MIN_CHUNKS = 10**12 if way == "FTS5" else saved[0]
                    t = time.perf_counter()
                    hits = s.search(q, k=10, mode="keyword", folders=scope).hits
                    ms[way].append((time.perf_counter() - t) * 1000)
                    top[way].append([h.chunk_id for h in hits])
            same = float(np.mean([a == b for a, b in zip(top["FTS5"], top["keyword_index"], strict=True)]))
            for way in ms:
                rows.append([f"{n:,}", f"{label}, {way} ({len(ms[way])} queries)", pct(ms[way], 50), pct(ms[way], 95),
                             ratio(pct(ms["FTS5"], 50), pct(ms[way], 50)), "-", same])
    finally:
        search.KEYWORD_INDEX_MIN_CHUNKS, search.PRUNE_DF_FRACTION = saved
        s.close()
    return rows


def keyword_study(path: Path, queries: list[str]) -> tuple[list[list[object]], list[list[object]]]:
    """Keyword p50/p95 by FTS5 (every word; frequent words left out, as while the index fills) and by
    keyword_index (production), interleaved per query; overlap@10 with FTS5 over every word. SciFact nDCG
    of the same: bench.scifact --keyword-index."""
    from almanac.core import search

    built = ensure_keyword_index(path)
    s = Searcher(path, FixedEmbedder({}))
    n = search.fts_row_count(s.conn)
    saved = search.PRUNE_DF_FRACTION, search.KEYWORD_INDEX_MIN_CHUNKS
    ways = {
        "FTS5 bm25, every word": (1.0, 10**12),
        "FTS5 bm25, words in > 20% of chunks left out (while the index fills)": (0.2, 10**12),
        "keyword_index (now)": (1.0, saved[1]),
    }

    def run(way: str, q: str) -> list[int]:
        search.PRUNE_DF_FRACTION, search.KEYWORD_INDEX_MIN_CHUNKS = ways[way]
        return [h.chunk_id for h in s.search(q, k=10, mode="keyword").hits]

    ms: dict[str, list[float]] = {w: [] for w in ways}
    got: dict[str, list[list[int]]] = {w: [] for w in ways}
    try:
        for q in queries[:3]:
            for w in ways:
                run(w, q)
        for i, q in enumerate(queries):
            order = list(ways)
            for w in order[i % 3:] + order[:i % 3]:
                t = time.perf_counter()
                got[w].append(run(w, q))
                ms[w].append((time.perf_counter() - t) * 1000)
    finally:
        search.PRUNE_DF_FRACTION, search.KEYWORD_INDEX_MIN_CHUNKS = saved
        s.close()
    base = "FTS5 bm25, every word"
    rows = []
    for w in ways:
        ov = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(got[w], got[base], strict=True)]
        same = [a == b for a, b in zip(got[w], got[base], strict=True)]
        rows.append([f"{n:,}", w, pct(ms[w], 50), pct(ms[w], 95), ratio(pct(ms[base], 50), pct(ms[w], 50)),
                     float(np.mean(ov)), float(np.mean(same))])
    conn = db.open_reader(path)
    fts_bytes = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE 'chunks_fts%'").fetchone()[0]
    kw_bytes = keyword_index.size_bytes(conn)
    secs = built if built is not None else float(db.get_meta(conn, "bench_keyword_index_seconds") or "nan")
    conn.close()
    fill = ["-", "-"] if math.isnan(secs) else [f"{secs:,.0f} s", f"{secs / n * 1000:.2f} ms/chunk"]
    cost = [[f"{n:,}", "size on disk", f"{fts_bytes / 2**20:,.0f} MiB (FTS5)", f"{kw_bytes / 2**20:,.0f} MiB",
             f"{kw_bytes / n:,.0f} B/chunk"],
            [f"{n:,}", "filling it for an older library (catch_up)", "-", *fill]]
    for what, fts_ms, add_ms, fold_ms in keyword_write_cost(path):
        cost.append([f"{n:,}", what, f"FTS5 {fts_ms:.3f} ms/chunk",
                     f"hook {add_ms:.3f} ms/chunk" if add_ms != "-" else "-", f"fold {fold_ms:.3f} ms/chunk"])
    return rows, cost


# -- measuring ------------------------------------------------------------------------------------------


def measure(queries: list[str], qvecs: np.ndarray, searcher: Searcher) -> dict:
    """Latencies (ms) per mode, recall@10 vs exact, and hybrid stage medians; modes interleaved per query."""
    conn = searcher.conn
    out: dict = {m: [] for m in ("exact", "vector", "keyword", "hybrid")}
    out["recall_vector"], out["stages"] = [], {}
    warm = min(5, len(queries))
    for i in range(warm):  # page cache; not timed
        conn.execute(EXACT_SQL, (qvecs[i].tobytes(),)).fetchall()
        for mode in ("vector", "keyword", "hybrid"):
            searcher.search(queries[i], k=10, mode=mode)
    for i, q in enumerate(queries):
        qb = qvecs[i].tobytes()
        t = time.perf_counter()
        rows = conn.execute(EXACT_SQL, (qb,)).fetchall()
        out["exact"].append((time.perf_counter() - t) * 1000)
        truth = {r[0] for r in rows}
        modes = ("vector", "keyword", "hybrid")
        for mode in modes[i % 3 :] + modes[: i % 3]:
            t = time.perf_counter()
            res = searcher.search(q, k=10, mode=mode)
            out[mode].append((time.perf_counter() - t) * 1000)
            if mode == "vector":
                out["recall_vector"].append(len({h.chunk_id for h in res.hits} & truth) / len(truth))
            if mode == "hybrid":
                for name, ms in res.timings.stages.items():
                    out["stages"].setdefault(name, []).append(ms)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10k and 100k only, 30 queries")
    p.add_argument("--sizes", default=None, help="comma list of 10k,100k,300k,1m (default 10k,100k,1m)")
    p.add_argument("--queries", type=int, default=None, help="number of queries (default 50; quick 30)")
    p.add_argument("--build", action="store_true", help="only build the libraries (and --ann indexes)")
    p.add_argument("--ann", default="", help="with --build: index kinds to build, comma list of " + ",".join(ANN))
    p.add_argument("--vectors", action="store_true", help="the vector index study (built kinds only)")
    p.add_argument("--keywords", action="store_true", help="the keyword pruning study")
    p.add_argument("--graph-lists", default="", help="with --vectors: only the DiskANN graphs, with these search "
                   "list sizes (comma list, e.g. 1024,2048), warm page cache")
    args = p.parse_args()
    sizes = args.sizes.split(",") if args.sizes else (["10k", "100k"] if args.quick else ["10k", "100k", "1m"])
    n_queries = args.queries or (30 if args.quick else 50)

    docs = scifact_docs(BASE_DOCS)
    base = base_vectors(docs)
    paths = {s: build(SIZES[s], docs, base) for s in sizes}
    if args.build:
        for s in sizes:
            for name in filter(None, args.ann.split(",")):
                build_ann(paths[s], name)
        return

    queries = scifact_queries("test", n_queries)
    print(header("Query latency at scale (bench/latency.py)"))
    for s in sizes:
        ensure_keyword_index(paths[s])
    if args.keywords:
        rows, cost = [], []
        for s in sizes:
            r, c = keyword_study(paths[s], queries)
            rows += r + keyword_scope_study(paths[s], queries)
            cost += c
        print(f"load avg {os.getloadavg()[0]:.1f} at end")
        print(table(["chunks", "keyword search", "p50 ms", "p95 ms", "speed-up (p50) vs every word",
                     "overlap@10 with every word", "same top 10"], rows))
        print(table(["chunks", "keyword_index cost", "FTS5 alone", "keyword_index", "per chunk"], cost))
        return
    qvecs, embed_ms = query_vectors(queries)
    print(f"{len(queries)} SciFact test claims; query embedding excluded (bundled model: p50 {pct(embed_ms, 50):.1f} ms,"
          f" p95 {pct(embed_ms, 95):.1f} ms per query, reported once)")
    if args.vectors and args.graph_lists:
        lists = [int(v) for v in args.graph_lists.split(",")]
        rows = [row for s in sizes for row in graph_study(paths[s], qvecs, lists)]
        print(f"load avg {os.getloadavg()[0]:.1f} at end")
        print(table(["chunks", "retrieval", "p50 ms", "p95 ms", "p50 / exact p50", "recall@10 vs exact"], rows))
        return
    if args.vectors:
        rows = []
        for s in sizes:
            rows += vector_study(paths[s], qvecs)
        print(table(["chunks", "index", "setting", "p50 ms", "p95 ms", "recall@10 vs exact", "build ms/vector",
                     "delete ms", "re-insert ms"], rows))
        return

    embedder = FixedEmbedder(dict(zip(queries, qvecs, strict=True)))
    rows, stage_rows, targets = [], [], []
    for s in sizes:
        conn = db.open_reader(paths[s])
        layouts = ["flat", *(n for n in built_ann(conn) if n == "diskann")]
        conn.close()
        for lay in layouts:
            use_layout(paths[s], lay)
            searcher = Searcher(paths[s], embedder)
            try:
                r = measure(queries, qvecs, searcher)
            finally:
                searcher.close()
                use_layout(paths[s], "flat")
            base_p50 = pct(r["exact"], 50)
            label = f"{SIZES[s]:,}"
            rows.append([label, "exact float KNN (baseline)", pct(r["exact"], 50), pct(r["exact"], 95), 1.0, 1.0])
            rows.append([label, f"vector ({lay})", pct(r["vector"], 50), pct(r["vector"], 95),
                         ratio(pct(r["vector"], 50), base_p50), float(np.mean(r["recall_vector"]))])
            rows.append([label, "keyword (keyword_index)", pct(r["keyword"], 50), pct(r["keyword"], 95),
                         ratio(pct(r["keyword"], 50), base_p50), "-"])
            rows.append([label, f"hybrid ({lay}, parallel)", pct(r["hybrid"], 50), pct(r["hybrid"], 95),
                         ratio(pct(r["hybrid"], 50), base_p50), "-"])
            stage_rows.append([label, lay, *(pct(r["stages"].get(k, [0.0]), 50) for k in ("embed query", "vector search", "keyword search", "fusion"))])
            if SIZES[s] >= 1_000_000:
                targets.append((lay, pct(r["vector"], 50), float(np.mean(r["recall_vector"])), pct(r["keyword"], 50), pct(r["hybrid"], 50)))
    print(table(["chunks", "retrieval", "p50 ms", "p95 ms", "p50 / exact p50", "recall@10 vs exact"], rows))
    print("\nhybrid, median ms per stage (keyword runs in its own thread beside embed + vector; fusion = RRF +"
          " hydration + snippets):")
    print(table(["chunks", "vector index", "embed query (lookup)", "vector search", "keyword search", "fusion"], stage_rows))
    for lay, v50, rec, k50, h50 in targets:
        ok = v50 <= TARGET_VECTOR_MS and rec >= TARGET_RECALL and k50 <= TARGET_KEYWORD_MS and h50 <= TARGET_HYBRID_MS
        print(f"\ntargets at 1M ({lay}): vector p50 <= {TARGET_VECTOR_MS:.0f} ms with recall@10 >= {TARGET_RECALL},"
              f" keyword p50 <= {TARGET_KEYWORD_MS:.0f} ms, hybrid p50 <= {TARGET_HYBRID_MS:.0f} ms:"
              f" {'MET' if ok else 'MISSED'} (vector {v50:.1f} ms at {rec:.3f}, keyword {k50:.1f} ms, hybrid {h50:.1f} ms)")


if __name__ == "__main__":
    main()
