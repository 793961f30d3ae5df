"""A peer side by side: txtai's hybrid index (BM25 + dense) against Almanac on SciFact, same embedding model.

    .venv/bin/python -m bench.peer [--quick | --full]        (needs the bench extra: pip install -e '.[bench]')

Both systems index the same SciFact documents ("title", blank line, abstract) in the same process and run:
  Almanac  Library.index() on one file per document (chunked, FTS5 + sqlite-vec), then Searcher hybrid with the
           default Settings fusion; chunk hits map to documents at their best rank (as bench/scifact.py does).
  txtai    Embeddings(path=<bundled all-MiniLM-L6-v2 folder>, method="sentence-transformers", content=True,
           hybrid=True): one vector per document (the model reads its first 256 word pieces) + BM25.
Indexing time excludes model loading for both (each model is loaded before the clock starts) and is given on
wall and CPU time. Query latency: k=10 searches, query embedding included for both (same model, same CPU),
interleaved query by query. nDCG@10 / Recall@100 use bench/scifact.py's metric code on the test split.

Corpus (a subset keeps the default run short; the same subset is used for both systems):
  default  the documents judged relevant for the 300 test queries + the first other documents, 800 in all
  --quick  the documents judged relevant for the first 100 test queries + others, 300 in all; 100 queries
  --full   the whole corpus (5,183 documents; about 45 minutes on 2 cores)
On a subset nDCG is higher than on the full corpus (fewer distractors); only the ratios are the point.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from almanac.core.embedding import SentenceTransformerEmbedder, bundled_model_path
from almanac.core.library import Library, open_searcher
from almanac.core.settings import Settings

from .common import cache_dir, table
from .scifact import load, ndcg_at, ranked_docs, recall_at
from .util import clock, header, pct, ratio, scifact_docs


def subset(n_docs: int | None, n_queries: int | None):
    queries, qrels = load("test")
    if n_queries:
        keep = list(queries)[:n_queries]
        queries = {q: queries[q] for q in keep}
        qrels = {q: qrels[q] for q in keep}
    docs = scifact_docs()
    if n_docs is None:
        return docs, queries, qrels
    wanted = set().union(*qrels.values())
    chosen = [d for d in docs if d["_id"] in wanted]
    for d in docs:
        if len(chosen) >= n_docs:
            break
        if d["_id"] not in wanted:
            chosen.append(d)
    return chosen, queries, qrels


def write_folder(docs: list[dict], name: str) -> Path:
    folder = cache_dir("peer") / name
    done = folder / ".complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for d in docs:
            (folder / f"{d['_id']}.txt").write_text(f"{d['title']}\n\n{d['text']}\n", encoding="utf-8")
        done.write_text("")
    return folder


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    args = p.parse_args()
    try:
        from txtai import Embeddings
    except ImportError:
        print("SKIP: txtai is not installed (pip install -e '.[bench]')")
        return
    n_docs, n_queries = (300, 100) if args.quick else (None, None) if args.full else (800, None)
    docs, queries, qrels = subset(n_docs, n_queries)
    folder = write_folder(docs, f"scifact-{len(docs)}-{len(queries)}q")
    settings = Settings()
    print(header("Peer: txtai hybrid vs Almanac on SciFact (bench/peer.py)"))

    embedder = SentenceTransformerEmbedder()
    embedder.load()
    embedder.embed(["warm up"])
    model_path = str(bundled_model_path())
    tx = Embeddings(path=model_path, method="sentence-transformers", content=True, hybrid=True)
    tx.index([{"id": "warm", "text": "warm up"}])  # loads txtai's copy of the model outside the clock

    with tempfile.TemporaryDirectory(prefix="almanac-peer-") as tmp:
        db = Path(tmp) / "almanac.db"
        with Library(db, settings=settings, embedder=embedder) as lib:
            lib.add_folder(folder)
            with clock() as a_idx:
                lib.index()
            chunks = lib.status().chunks
        with clock() as t_idx:
            tx.index([{"id": d["_id"], "text": f"{d['title']}\n\n{d['text']}"} for d in docs])
        tx_dir = Path(tmp) / "txtai"
        tx.save(str(tx_dir))

        searcher = open_searcher(db, embedder, settings)
        a_ms, t_ms, a_nd, t_nd, a_rc, t_rc = [], [], [], [], [], []
        for i, (qid, text) in enumerate(queries.items()):
            order = ("a", "t") if i % 2 == 0 else ("t", "a")
            for who in order:
                start = time.perf_counter()
                if who == "a":
                    searcher.search(text, k=10, mode="hybrid")
                    a_ms.append((time.perf_counter() - start) * 1000)
                else:
                    tx.search(text, 10)
                    t_ms.append((time.perf_counter() - start) * 1000)
            ranked_a = ranked_docs(searcher, text, "hybrid", 200)
            ranked_t = [str(r["id"]) for r in tx.search(text, 100)]
            a_nd.append(ndcg_at(ranked_a, qrels[qid]))
            t_nd.append(ndcg_at(ranked_t, qrels[qid]))
            a_rc.append(recall_at(ranked_a, qrels[qid]))
            t_rc.append(recall_at(ranked_t, qrels[qid]))
        searcher.close()
        a_size, t_size = dir_bytes(db), dir_bytes(tx_dir)

    def mean(v: list[float]) -> float:
        return sum(v) / len(v)

    print(f"{len(docs)} SciFact documents ({chunks} Almanac chunks), {len(queries)} test queries;"
          f" same model: bundled all-MiniLM-L6-v2")
    rows = [
        ["index wall s (model load excluded)", a_idx.wall, t_idx.wall, ratio(t_idx.wall, a_idx.wall)],
        ["index CPU s", a_idx.cpu, t_idx.cpu, ratio(t_idx.cpu, a_idx.cpu)],
        ["index size MiB", a_size / 2**20, t_size / 2**20, ratio(t_size, a_size)],
        ["query p50 ms (k=10, query embedding included)", pct(a_ms, 50), pct(t_ms, 50), ratio(pct(t_ms, 50), pct(a_ms, 50))],
        ["query p95 ms", pct(a_ms, 95), pct(t_ms, 95), ratio(pct(t_ms, 95), pct(a_ms, 95))],
        ["nDCG@10", mean(a_nd), mean(t_nd), ratio(mean(t_nd), mean(a_nd))],
        ["Recall@100", mean(a_rc), mean(t_rc), ratio(mean(t_rc), mean(a_rc))],
    ]
    print(table(["measure", "Almanac hybrid", "txtai hybrid", "txtai / Almanac"], rows))


if __name__ == "__main__":
    main()
