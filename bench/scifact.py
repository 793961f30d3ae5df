"""Retrieval quality on BEIR SciFact: nDCG@10 and Recall@100 for keyword, vector and hybrid search.

    .venv/bin/python -m bench.scifact [--split test|train] [--tune]
    .venv/bin/python -m bench.scifact --keyword      # keyword mode only, both splits (no embedding needed)
    .venv/bin/python -m bench.scifact --prune 0.02,0.05,0.1   # keyword pruning forced on, as at 1M chunks
    .venv/bin/python -m bench.scifact --identifiers  # identifier ranking rules on the train split
    .venv/bin/python -m bench.scifact --keyword-index  # keyword_index vs FTS5 scoring, both splits

Each corpus document becomes one file named after its `_id` ("title", blank line, abstract), indexed by the
real pipeline with the bundled embedder. Chunk hits map back to documents at each document's best rank.
`--tune` grid-searches the fusion settings on the TRAIN split only (never tune on test). `--keyword` scores
keyword search alone on train and test, from the full index when it exists, else from one built without
vectors (phase 1 only, a minute): the quick check for changes to keyword search.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import re
import time
from pathlib import Path

from almanac.core.embedding import SentenceTransformerEmbedder
from almanac.core.library import Library
from almanac.core.search import MAX_QUERY_TERMS, STOP_WORDS, FusionConfig, Searcher, rrf
from almanac.core.settings import Settings
from almanac.core.timing import Timings

from .common import cache_dir, eval_dir, machine, table

PUBLISHED = {"BM25 (BEIR paper)": (0.665, 0.908), "all-MiniLM-L6-v2 (MTEB)": (0.645, 0.925)}


def load(split: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    root = eval_dir("scifact")
    queries = {}
    for line in (root / "queries.jsonl").read_text().splitlines():
        q = json.loads(line)
        queries[q["_id"]] = q["text"]
    qrels: dict[str, set[str]] = {}
    for line in (root / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        qid, doc, score = line.split("\t")
        if int(score) > 0:
            qrels.setdefault(qid, set()).add(doc)
    return {q: queries[q] for q in qrels}, qrels


def corpus_folder() -> Path:
    folder = cache_dir("scifact") / "corpus"
    done = folder / ".complete"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for line in (eval_dir("scifact") / "corpus.jsonl").read_text().splitlines():
            d = json.loads(line)
            (folder / f"{d['_id']}.txt").write_text(f"{d['title']}\n\n{d['text']}\n", encoding="utf-8")
        done.write_text("")
    return folder


def build_index(settings: Settings) -> Path:
    db = cache_dir("scifact") / f"index-{settings.chunk_tokens}-{settings.chunk_overlap}.db"
    folder = corpus_folder()
    start = time.monotonic()
    with Library(db, settings=settings) as lib:
        lib.add_folder(folder)
        report = lib.index()
        s = lib.status()
    print(
        f"index: {s.documents} documents, {s.chunks} chunks ({report.indexed} newly indexed)"
        f" in {time.monotonic() - start:.0f} s"
    )
    return db


def build_keyword_index(settings: Settings) -> Path:
    full = cache_dir("scifact") / f"index-{settings.chunk_tokens}-{settings.chunk_overlap}.db"
    if full.exists():
        return full
    db = cache_dir("scifact") / f"index-{settings.chunk_tokens}-{settings.chunk_overlap}-keyword.db"
    # The bundled model's tokenizer chunks (as in the full index); its encoder is never loaded.
    with Library(db, settings=settings, embedder=SentenceTransformerEmbedder()) as lib:
        lib.add_folder(corpus_folder())
        lib.indexer.sync()
    return db


class BaselineKeyword(Searcher):
    """Keyword search as it was before exact sequences ranked first (commit 0972a38): one FTS5 query, every
    `\\w+` word quoted and OR-ed, stop words dropped. The same-run baseline for `--keyword`."""

    def _keyword(self, query, depth, scope, *, conn=None):
        words = list(dict.fromkeys(w for w in re.findall(r"\w+", query)))
        lowered = {}
        for w in words:
            lowered.setdefault(w.lower(), w)
        words = list(lowered.values())
        content = [w for w in words if w.lower() not in STOP_WORDS] or words
        if not content:
            return []
        match = " OR ".join('"' + w.replace('"', '""') + '"' for w in content[:MAX_QUERY_TERMS])
        return self._fts(conn or self.conn, match, depth, scope)


def keyword_only(settings: Settings) -> None:
    db = build_keyword_index(settings)
    rows = []
    for name, cls in (("baseline: OR of words", BaselineKeyword), ("Almanac keyword (now)", Searcher)):
        searcher = cls(db, SentenceTransformerEmbedder())
        for split in ("train", "test"):
            queries, qrels = load(split)
            nd, rc, p50 = evaluate(searcher, queries, qrels, "keyword")
            rows.append([name, split, len(queries), nd, rc, p50])
        searcher.close()
    print(f"\nSciFact keyword search ({db.name}); {machine()}")
    print(table(["keyword search", "split", "queries", "nDCG@10", "Recall@100", "p50 ms"], rows))


def identifier_rules(settings: Settings) -> None:
    """Keyword nDCG@10 on TRAIN for ways of ranking identifier passages first (search.py's rule varied)."""
    from almanac.core import search

    db = build_keyword_index(settings)
    queries, qrels = load("train")
    cap, looks_up = search.IDENTIFIER_MAX_PASSAGES, search.KeywordQuery.looks_up
    rules = [
        ("none (before)", 0, looks_up),
        ("every joined token ranks first", 10**9, lambda self, i: True),
        *((f"any joined token naming <= {c} passages", c, lambda self, i: True) for c in (5, 20, 50)),
        ("the query is about it and it names <= 20 passages (now)", cap, looks_up),
    ]
    rows = []
    searcher = Searcher(db, SentenceTransformerEmbedder())
    try:
        for name, c, rule in rules:
            search.IDENTIFIER_MAX_PASSAGES, search.KeywordQuery.looks_up = c, rule
            rows.append([name, evaluate(searcher, queries, qrels, "keyword")[0]])
    finally:
        search.IDENTIFIER_MAX_PASSAGES, search.KeywordQuery.looks_up = cap, looks_up
        searcher.close()
    print(f"\nSciFact train keyword nDCG@10 by identifier rule ({db.name}); {machine()}")
    print(table(["identifier rule", "train nDCG@10"], rows))


def prune_sweep(settings: Settings, fractions: list[float]) -> None:
    """What leaving out frequent words costs, as at 1M chunks: the pruning forced on (its postings floor at
    0), for several document-frequency fractions; tune on train, then read test."""
    from almanac.core import search

    db = build_keyword_index(settings)
    floor = search.PRUNE_MIN_POSTINGS
    rows = []
    searcher = Searcher(db, SentenceTransformerEmbedder())
    try:
        for split in ("train", "test"):
            queries, qrels = load(split)
            search.PRUNE_MIN_POSTINGS = floor
            base = evaluate(searcher, queries, qrels, "keyword")
            rows.append(["not forced (production at this size)", split, base[0], base[1], base[2]])
            search.PRUNE_MIN_POSTINGS = 0
            for f in fractions:
                search.PRUNE_DF_FRACTION = f
                nd, rc, p50 = evaluate(searcher, queries, qrels, "keyword")
                rows.append([f"forced, df fraction {f}", split, nd, rc, p50])
    finally:
        search.PRUNE_MIN_POSTINGS = floor
        searcher.close()
    print(f"\nSciFact keyword search with frequent words left out ({db.name}); {machine()}")
    print(table(["pruning", "split", "nDCG@10", "Recall@100", "p50 ms"], rows))


def keyword_index_check(settings: Settings) -> None:
    """Keyword search by keyword_index (as libraries above search.KEYWORD_INDEX_MIN_CHUNKS get it) against
    FTS5 (production at SciFact's size), on train and test: the same BM25, so the same ranking is expected."""
    from almanac.core import db as dbm
    from almanac.core import keyword_index, search

    db = build_keyword_index(settings)
    conn = dbm.open_writer(db)
    try:
        keyword_index.catch_up(conn)  # an index made before keyword_index gets it here
    finally:
        conn.close()
    floor = search.KEYWORD_INDEX_MIN_CHUNKS
    rows = []
    searcher = Searcher(db, SentenceTransformerEmbedder())
    try:
        for split in ("train", "test"):
            queries, qrels = load(split)
            for name, minimum in (("FTS5 bm25 (production at this size)", 10**12), ("keyword_index", 0)):
                search.KEYWORD_INDEX_MIN_CHUNKS = minimum
                nd, rc, p50 = evaluate(searcher, queries, qrels, "keyword")
                rows.append([name, split, nd, rc, p50])
    finally:
        search.KEYWORD_INDEX_MIN_CHUNKS = floor
        searcher.close()
    print(f"\nSciFact keyword search, FTS5 vs keyword_index ({db.name}); {machine()}")
    print(table(["words scored by", "split", "nDCG@10", "Recall@100", "p50 ms"], rows))


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(ranked[:k]) if d in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: list[str], relevant: set[str], k: int = 100) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant)


def ranked_docs(searcher: Searcher, query: str, mode: str, depth: int) -> list[str]:
    docs: list[str] = []
    seen = set()
    for hit in searcher.search(query, k=depth, mode=mode).hits:
        doc = Path(hit.path).stem
        if doc not in seen:
            seen.add(doc)
            docs.append(doc)
    return docs


def evaluate(searcher: Searcher, queries, qrels, mode: str, depth: int = 200) -> tuple[float, float, float]:
    nd, rc, ms = [], [], []
    for qid, text in queries.items():
        t = time.perf_counter()
        docs = ranked_docs(searcher, text, mode, depth)
        ms.append((time.perf_counter() - t) * 1000)
        nd.append(ndcg_at(docs, qrels[qid]))
        rc.append(recall_at(docs, qrels[qid]))
    ms.sort()
    return sum(nd) / len(nd), sum(rc) / len(rc), ms[len(ms) // 2]


def tune(db: Path, embedder) -> FusionConfig:
    """Grid-search fusion on the train split. Each retriever's ranked list is fetched once per query, then
    every setting is scored by fusing those lists (the same `rrf` the searcher uses)."""
    queries, qrels = load("train")
    searcher = Searcher(db, embedder)
    depth = 200
    lists = []
    for qid, text in queries.items():
        kw = [cid for cid, _ in searcher._keyword(text, depth, None)]
        vec = [cid for cid, _ in searcher._vector(text, depth, None, Timings())]
        lists.append((qid, kw, vec))
    doc_of = {
        cid: Path(p).stem
        for cid, p in searcher.conn.execute(
            "SELECT c.id, d.path FROM chunks c JOIN documents d ON d.id = c.document_id"
        )
    }
    searcher.close()

    def score(cfg: FusionConfig) -> tuple[float, float]:
        nd, rc = [], []
        for qid, kw, vec in lists:
            fused = rrf(kw[: cfg.depth], vec[: cfg.depth], cfg)
            docs = list(dict.fromkeys(doc_of[cid] for cid, _ in fused))
            nd.append(ndcg_at(docs, qrels[qid]))
            rc.append(recall_at(docs, qrels[qid]))
        return sum(nd) / len(nd), sum(rc) / len(rc)

    rows = []
    best = (0.0, FusionConfig())
    # Candidate depth stays at `depth`, as in evaluate(): Recall@100 needs that many anyway.
    grid = itertools.product([5, 10, 20, 40, 60, 100], [0.5, 0.6, 0.7, 0.85, 1.0, 1.2, 1.5])
    for rrf_k, kw_w in grid:
        cfg = FusionConfig(rrf_k=rrf_k, keyword_weight=kw_w, vector_weight=1.0, depth=depth)
        nd, rc = score(cfg)
        rows.append([rrf_k, kw_w, nd, rc])
        if nd > best[0]:
            best = (nd, cfg)
    # The single retrievers on the same lists, for the "hybrid beats both parts on train" check.
    for name, weights in (("keyword only", (1.0, 0.0)), ("vector only", (0.0, 1.0))):
        nd, rc = score(FusionConfig(keyword_weight=weights[0], vector_weight=weights[1], depth=depth))
        print(f"train {name}: nDCG@10 {nd:.3f}, Recall@100 {rc:.3f}")
    rows.sort(key=lambda r: -r[2])
    print(table(["rrf_k", "keyword w", "nDCG@10 (train)", "R@100 (train)"], rows[:10]))
    print(f"best on train ({len(queries)} queries): {best[1]}")
    return best[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--tune", action="store_true", help="grid-search fusion settings on the train split")
    p.add_argument("--chunk-tokens", type=int, default=Settings().chunk_tokens)
    p.add_argument("--keyword", action="store_true", help="keyword mode only, train and test")
    p.add_argument("--identifiers", action="store_true", help="identifier ranking rules, train split")
    p.add_argument("--prune", default="", help="keyword pruning forced on, for these df fractions (comma list)")
    p.add_argument("--keyword-index", action="store_true", help="keyword_index vs FTS5 scoring, train and test")
    args = p.parse_args()
    settings = Settings(chunk_tokens=args.chunk_tokens)
    if args.identifiers:
        identifier_rules(settings)
        return
    if args.prune:
        prune_sweep(settings, [float(f) for f in args.prune.split(",")])
        return
    if args.keyword_index:
        keyword_index_check(settings)
        return
    if args.keyword:
        keyword_only(settings)
        return
    embedder = SentenceTransformerEmbedder()
    db = build_index(settings)
    fusion = FusionConfig(
        rrf_k=settings.rrf_k, keyword_weight=settings.keyword_weight, vector_weight=settings.vector_weight
    )
    if args.tune:
        fusion = tune(db, embedder)
    queries, qrels = load(args.split)
    searcher = Searcher(db, embedder, fusion=fusion)
    rows = []
    for mode in ("keyword", "vector", "hybrid"):
        nd, rc, p50 = evaluate(searcher, queries, qrels, mode)
        rows.append([f"Almanac {mode}", nd, rc, p50])
    for name, (nd, rc) in PUBLISHED.items():
        rows.append([f"published: {name}", nd, rc, "-"])
    print(f"\nSciFact {args.split} split, {len(queries)} queries; {machine()}; fusion {fusion}")
    print(table(["system", "nDCG@10", "Recall@100", "p50 ms"], rows))


if __name__ == "__main__":
    main()
