"""Query latency at scale: synthetic libraries of 10k, 100k and 1M chunks, searched the production way.

    .venv/bin/python -m bench.latency [--quick] [--sizes 10k,100k,1m] [--queries 50] [--tune]

Each library is built straight into the real schema (db.open_writer + store.ensure_vector_tables, then bulk
inserts of documents, chunks, FTS rows, float and 1-bit vectors), never through the embedder, and cached in
cache_dir("latency") keyed by size and generator version (1M chunks: about 4 GB, built once).

Realistic text and vectors: 2,048 SciFact abstracts are embedded once with the bundled model (cached). A
synthetic document has one such abstract as its topic; each of its 10 chunks is a run of 4-8 sentences of
that abstract plus one or two sentences from two other abstracts, and its vector is the matching mixture of
the three real vectors (topic weight 0.55-0.9) plus Gaussian noise, normalized: clustered like real
embeddings, with text and vector that agree, so keyword and vector lists overlap as they do in real use.

Queries: the first 50 SciFact test claims (held out: claims, not corpus text), embedded with the bundled
model. Retrieval latencies EXCLUDE the query embedding: the Searcher gets an embedder that looks the
precomputed query vector up (so its "embed query" stage is ~0); the model's own query-embedding time is
reported once, separately. Everything else is the production path, `Searcher.search()` with its defaults
(hydration and snippets included). Baseline in the same run: sqlite-vec's exact float KNN
`SELECT rowid, distance FROM vec_chunks WHERE embedding MATCH ? AND k = 10`. Modes run interleaved per
query, so the neighbours' load hits every mode alike.

`--tune` adds, at the largest size, an analysis of the two retrieval stages: recall against the number of
Hamming candidates, the cost of each step in sqlite-vec and in RAM, and keyword-query variants (latency,
overlap, and nDCG@10 on the real SciFact index).
"""

from __future__ import annotations

import argparse
import random
import re
import time
from pathlib import Path

import apsw
import numpy as np
from almanac.core import db, store
from almanac.core.embedding import BUNDLED_NAME, SentenceTransformerEmbedder
from almanac.core.search import MAX_QUERY_TERMS, Searcher

from .common import cache_dir, table
from .util import header, pct, ratio, scifact_docs, scifact_queries, sentences

SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
BASE_DOCS = 2048
CHUNKS_PER_DOC = 10
NOISE = 0.02  # per dimension: a noise vector of norm ~0.4 beside the unit-scale mixture
SEED = 20261126
GENERATOR = 1  # bump when the generator changes: cached libraries are keyed by it
BATCH_DOCS = 5000  # documents per transaction (50,000 chunks)
DIM = 384
EXACT_SQL = "SELECT rowid, distance FROM vec_chunks WHERE embedding MATCH ? AND k = 10"
TARGET_P50_MS, TARGET_RECALL = 50.0, 0.95
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
    # 1-bit codes for the --tune study of a quantized first pass (production no longer keeps them).
    conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS vec_bits USING vec0(embedding bit[{DIM}])")
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
            conn.executemany(
                "INSERT INTO vec_bits(rowid, embedding) VALUES (?, vec_quantize_binary(?))", blobs
            )
        done = d1 * CHUNKS_PER_DOC
        el = time.monotonic() - start
        print(f"  {done:,}/{n:,} chunks in {el:.0f} s ({done / el:.0f} chunks/s)", flush=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    tmp.rename(path)
    print(f"built {n:,} chunks in {time.monotonic() - start:.0f} s, {path.stat().st_size / 2**30:.2f} GiB")
    return path


# -- measuring ------------------------------------------------------------------------------------------

_STOPWORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below"
    " between both but by can could did do does doing down during each few for from further had has have"
    " having he her here hers him his how i if in into is it its itself just me more most my no nor not of"
    " off on once only or other our out over own same she should so some such than that the their them then"
    " there these they this those through to too under until up very was we were what when where which"
    " while who whom why will with would you your".split()
)


class KeywordVariant(Searcher):
    """Keyword-query variants for the sweep: all words (production), no stopwords, or the k rarest terms."""

    variant = "all words"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stem = self.conn.fts5_tokenizer("porter", ["unicode61", "remove_diacritics", "2"])
        self.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, chunks_fts, row)")

    def terms(self, query: str) -> list[str]:
        words = list(dict.fromkeys(_WORD.findall(query)))
        if self.variant == "all words":
            return words
        words = [w for w in words if w.lower() not in _STOPWORDS] or words
        if self.variant == "no stopwords":
            return words
        k = int(self.variant.split()[0])  # "4 rarest terms"
        dfs = []
        for w in words:
            toks = self._stem(w.encode(), apsw.FTS5_TOKENIZE_QUERY, None)
            row = self.conn.execute("SELECT doc FROM temp.vocab WHERE term = ?", (toks[0][2] if toks else w,)).fetchone()
            dfs.append((row[0] if row else 0, w))
        dfs = sorted(x for x in dfs if x[0] > 0) or dfs
        return [w for _, w in dfs[:k]]

    def _keyword(self, query, depth, allowed):
        return super()._keyword(" ".join(self.terms(query)[:MAX_QUERY_TERMS]), depth, allowed)


def measure(path: Path, queries: list[str], qvecs: np.ndarray, searcher: Searcher, exact_ids=None) -> dict:
    """Latencies (ms) per mode, recall@10 vs exact, and hybrid stage medians; modes interleaved per query."""
    conn = searcher.conn
    out: dict = {m: [] for m in ("exact", "vector", "keyword", "hybrid")}
    out["recall_vector"], out["stages"] = [], {}
    warm = min(5, len(queries))
    for i in range(warm):  # page cache and the vector count; not timed
        conn.execute(EXACT_SQL, (qvecs[i].tobytes(),)).fetchall()
        for mode in ("vector", "keyword", "hybrid"):
            searcher.search(queries[i], k=10, mode=mode)
    got_exact = []
    for i, q in enumerate(queries):
        qb = qvecs[i].tobytes()
        if exact_ids is None:
            t = time.perf_counter()
            rows = conn.execute(EXACT_SQL, (qb,)).fetchall()
            out["exact"].append((time.perf_counter() - t) * 1000)
            truth = {r[0] for r in rows}
            got_exact.append(truth)
        else:
            truth = exact_ids[i]
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
    out["exact_ids"] = exact_ids if exact_ids is not None else got_exact
    return out


def plan(searcher: Searcher) -> str:
    return "exact float"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10k and 100k only, 30 queries")
    p.add_argument("--sizes", default=None, help="comma list of 10k,100k,1m (default all three)")
    p.add_argument("--queries", type=int, default=None, help="number of queries (default 50; quick 30)")
    p.add_argument("--tune", action="store_true", help="analyse the vector and keyword stages at the largest size")
    args = p.parse_args()
    sizes = args.sizes.split(",") if args.sizes else (["10k", "100k"] if args.quick else list(SIZES))
    n_queries = args.queries or (30 if args.quick else 50)

    queries = scifact_queries("test", n_queries)
    docs = scifact_docs(BASE_DOCS)
    base = base_vectors(docs)
    paths = {s: build(SIZES[s], docs, base) for s in sizes}

    print(header("Query latency at scale (bench/latency.py)"))
    qvecs, embed_ms = query_vectors(queries)
    embedder = FixedEmbedder(dict(zip(queries, qvecs, strict=True)))
    rows, stage_rows, target = [], [], None
    results = {}
    for s in sizes:
        searcher = Searcher(paths[s], embedder)
        r = measure(paths[s], queries, qvecs, searcher)
        results[s] = r
        base_p50 = pct(r["exact"], 50)
        label = f"{SIZES[s]:,}"
        rows.append([label, "exact float KNN (baseline)", pct(r["exact"], 50), pct(r["exact"], 95), 1.0, 1.0])
        rows.append([label, f"vector: {plan(searcher)}", pct(r["vector"], 50), pct(r["vector"], 95),
                     ratio(pct(r["vector"], 50), base_p50), np.mean(r["recall_vector"])])
        rows.append([label, "keyword (FTS5 bm25)", pct(r["keyword"], 50), pct(r["keyword"], 95),
                     ratio(pct(r["keyword"], 50), base_p50), "-"])
        rows.append([label, "hybrid (RRF)", pct(r["hybrid"], 50), pct(r["hybrid"], 95),
                     ratio(pct(r["hybrid"], 50), base_p50), "-"])
        stage_rows.append([label, *(pct(r["stages"].get(k, [0.0]), 50) for k in ("embed query", "vector search", "keyword search", "fusion"))])
        if s == "1m":
            target = (pct(r["hybrid"], 50), float(np.mean(r["recall_vector"])))
        searcher.close()
    print(f"{len(queries)} SciFact test claims; query embedding excluded (bundled model: p50 {pct(embed_ms, 50):.1f} ms,"
          f" p95 {pct(embed_ms, 95):.1f} ms per query, reported once)")
    print(table(["chunks", "retrieval", "p50 ms", "p95 ms", "p50 / exact p50", "recall@10 vs exact"], rows))
    print("\nhybrid, median ms per stage (fusion = RRF + hydration + snippets):")
    print(table(["chunks", "embed query (lookup)", "vector search", "keyword search", "fusion"], stage_rows))
    if target:
        ok = target[0] <= TARGET_P50_MS and target[1] >= TARGET_RECALL
        print(f"\ntarget at 1M: hybrid p50 <= {TARGET_P50_MS:.0f} ms and recall@10 >= {TARGET_RECALL}:"
              f" {'MET' if ok else 'MISSED'} (p50 {target[0]:.1f} ms, recall@10 {target[1]:.3f})")
    if args.tune:
        tune(paths[sizes[-1]], sizes[-1], queries, qvecs, embedder, results[sizes[-1]])


def tune(path: Path, size: str, queries, qvecs, embedder, reference: dict) -> None:
    """Where the time goes at one size, and what would fix it.

    Vector: recall@10 of "Hamming top-C, then exact rescoring" for several C, computed in numpy on all
    vectors read from the library, and the cost of each step the way production runs it (sqlite-vec) and the
    way it could (1-bit codes held in RAM, rescoring vectors read from a plain rowid table). Keyword: FTS5
    latency at this size and overlap@10 with production for query variants, and nDCG@10 of the same variants
    on the real SciFact index (if bench/scifact.py has built it), the quality check.
    """
    n = SIZES[size]
    conn = db.open_reader(path)
    print(f"\nsweep at {n:,} chunks: reading all vectors ...", flush=True)
    ids, floats, bits = [], [], []
    for rowid, blob in conn.execute("SELECT rowid, embedding FROM vec_chunks"):
        ids.append(rowid)
        floats.append(blob)
    ids = np.array(ids)
    x = np.frombuffer(b"".join(floats), dtype=np.float32).reshape(len(ids), DIM)
    del floats
    bits = np.packbits(x > 0, axis=1).view(np.uint64)
    qbits = np.packbits(qvecs > 0, axis=1).view(np.uint64)
    sims = qvecs @ x.T
    truth = np.argsort(-sims, axis=1)[:, :10]
    ham_ms, hams = [], []
    for qb in qbits:
        t = time.perf_counter()
        h = np.bitwise_count(bits ^ qb).sum(axis=1, dtype=np.uint16)
        np.argpartition(h, 400)[:400]
        ham_ms.append((time.perf_counter() - t) * 1000)
        hams.append(h)
    rows = []
    for c in (400, 800, 1600, 3200, 6400):
        rec = []
        for i, h in enumerate(hams):
            cand = np.argpartition(h, c)[:c]
            best = cand[np.argsort(-sims[i, cand])[:10]]
            rec.append(len(set(best) & set(truth[i])) / 10)
        qb = qvecs[0].tobytes()
        sq_bits, sq_rescore, plain = [], [], []
        for i in range(min(10, len(qvecs))):
            qb = qvecs[i].tobytes()
            t = time.perf_counter()
            got = [r[0] for r in conn.execute(
                "SELECT rowid FROM vec_bits WHERE embedding MATCH vec_quantize_binary(?) AND k = ?", (qb, min(c, 4096)))]
            sq_bits.append((time.perf_counter() - t) * 1000)
            marks = ",".join("?" * len(got))
            t = time.perf_counter()
            conn.execute(f"SELECT rowid, vec_distance_cosine(embedding, ?) AS d FROM vec_chunks WHERE rowid IN ({marks})"
                         " ORDER BY d LIMIT 100", (qb, *got)).fetchall()
            sq_rescore.append((time.perf_counter() - t) * 1000)
            cand = sorted(int(ids[j]) for j in np.argpartition(hams[i], c)[:c])
            marks = ",".join("?" * len(cand))
            t = time.perf_counter()
            # A plain rowid table read of ~1 KB rows: the cost of fetching C float vectors stored that way.
            conn.execute(f"SELECT id, text FROM chunks WHERE id IN ({marks})", cand).fetchall()
            plain.append((time.perf_counter() - t) * 1000)
        rows.append([c, float(np.mean(rec)), pct(sq_bits, 50), pct(sq_rescore, 50), pct(ham_ms, 50), pct(plain, 50)])
        print(f"  C={c} done", flush=True)
    print(f"vector first pass at {n:,} chunks: Hamming top-C, exact rescoring ({len(qvecs)} queries for recall,"
          f" 10 for sqlite timings; query-to-nearest cosine p50 {np.median(sims.max(1)):.3f}, 10th {np.median(np.sort(sims, 1)[:, -10]):.3f})")
    print(table(["C candidates", "recall@10", "sqlite-vec bits KNN ms", "sqlite-vec rescore (rowid IN) ms",
                 "numpy bits in RAM ms (C=400)", "plain-table fetch of C rows ms"], rows))
    del x, sims, bits

    krows = []
    s = KeywordVariant(path, embedder)
    for q in queries[:3]:
        s._keyword(q, 100, None)
    full = {q: [r[0] for r in s._keyword(q, 100, None)] for q in queries}
    variants = ("all words", "no stopwords", "6 rarest terms", "4 rarest terms")
    for v in variants:
        s.variant = v
        ms, ov = [], []
        for q in queries:
            t = time.perf_counter()
            got = [r[0] for r in s._keyword(q, 100, None)]
            ms.append((time.perf_counter() - t) * 1000)
            ov.append(len(set(got[:10]) & set(full[q][:10])) / max(1, min(10, len(full[q]))))
        krows.append([v, pct(ms, 50), pct(ms, 95), float(np.mean(ov))])
    s.close()
    scifact_db = cache_dir("scifact") / "index-200-32.db"
    if scifact_db.exists():
        from .scifact import evaluate, load

        sq, qrels = load("test")
        real = KeywordVariant(scifact_db, embedder)
        for row, v in zip(krows, variants, strict=True):
            real.variant = v
            row.append(evaluate(real, sq, qrels, "keyword")[0])
        real.close()
    else:
        for row in krows:
            row.append("-")
    print(f"\nkeyword query variants at {n:,} chunks (nDCG@10 on the real SciFact test split, bench/scifact.py's index):")
    print(table(["variant", "p50 ms", "p95 ms", "overlap@10 with all words", "SciFact keyword nDCG@10"], krows))


if __name__ == "__main__":
    main()
