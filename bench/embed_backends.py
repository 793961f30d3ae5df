"""Embedding backends compared: speed and SciFact retrieval quality of torch, ONNX and int8 ONNX.

    .venv/bin/python -m bench.embed_backends [--backends torch,onnx,onnx-int8] [--speed-chunks 1024] [--docs N]

The SciFact corpus ("title", blank line, abstract, as bench/scifact.py writes it) is cut into chunks by the
app's chunker at the default settings. Each backend (`SentenceTransformerEmbedder(backend=...)`, the class the
app uses; ONNX exports are made on first use into a cache folder, and that one-off cost is reported apart)
then embeds every chunk and the 300 TEST queries. Quality: vector-only nDCG@10 and Recall@100 by exact cosine
in numpy, each document scored by its best chunk. Also reported: how close each backend's vectors are to
torch's (mean and minimum cosine), and "mixed" rows, queries embedded by one backend against documents
embedded by torch, which is what an index holds after a backend change that does not re-embed.

Speed: chunks per second at batch size 32 on the first `--speed-chunks` chunks, measured twice per backend
in the order A B C C B A (drift in the neighbours' load cancels), best of the two, with CPU time beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import tempfile
import time

import numpy as np
from almanac.core import paths
from almanac.core.chunking import chunk_text
from almanac.core.embedding import BACKENDS, SentenceTransformerEmbedder
from almanac.core.settings import Settings

from .common import eval_dir, table
from .scifact import load, ndcg_at, recall_at
from .util import header


def corpus_chunks(
    embedder: SentenceTransformerEmbedder, size: int | None, keep: set[str]
) -> tuple[list[str], list[str]]:
    """Chunks of the corpus, or of `size` documents: every one in `keep`, the rest a fixed sample."""
    settings = Settings()
    corpus = [json.loads(line) for line in (eval_dir("scifact") / "corpus.jsonl").read_text().splitlines()]
    if size is not None:
        others = [d for d in corpus if d["_id"] not in keep]
        random.Random(14).shuffle(others)
        chosen = keep | {d["_id"] for d in others[: max(0, size - len(keep))]}
        corpus = [d for d in corpus if d["_id"] in chosen]
    texts, docs = [], []
    for d in corpus:
        body = f"{d['title']}\n\n{d['text']}\n"
        for c in chunk_text(body, embedder, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap):
            texts.append(c.text)
            docs.append(d["_id"])
    return texts, docs


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def score(q: np.ndarray, d: np.ndarray, docs: np.ndarray, queries: list[str], qrels: dict) -> tuple[float, float]:
    sims = q @ d.T
    nd, rc = [], []
    for row, qid in enumerate(queries):
        best: dict[str, float] = {}
        for i in np.argsort(-sims[row])[:400]:  # enough chunks to rank 100 documents
            best.setdefault(docs[i], float(sims[row, i]))
        ranked = list(best)
        nd.append(ndcg_at(ranked, qrels[qid]))
        rc.append(recall_at(ranked, qrels[qid]))
    return float(np.mean(nd)), float(np.mean(rc))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", default=",".join(BACKENDS))
    p.add_argument("--speed-chunks", type=int, default=1024, help="0 skips the speed runs")
    p.add_argument("--docs", type=int, default=None,
                   help="a smaller corpus: the documents judged for the test queries plus a fixed sample of the "
                        "others, this many in all (default: all 5,183)")
    args = p.parse_args()
    backends = [b for b in args.backends.split(",") if b]
    # Exports go to a scratch data folder, so the first-use cost is measured and no user cache is touched.
    scratch = tempfile.TemporaryDirectory(prefix="almanac-embed-bench-")
    paths.set_data_dir(scratch.name)
    print(header("Embedding backends: speed and SciFact test nDCG@10 (vector only)"))
    queries, qrels = load("test")
    qids = list(queries)
    embedders = {}
    for b in backends:
        e = SentenceTransformerEmbedder(backend=b)
        t = time.perf_counter()
        e.load()
        embedders[b] = (e, (time.perf_counter() - t) * 1000)
        if e.active_backend != b:
            raise SystemExit(f"backend {b} fell back to {e.active_backend}; see the log")
    judged = {doc for rel in qrels.values() for doc in rel}
    texts, docs = corpus_chunks(next(iter(embedders.values()))[0], args.docs, judged)
    print(f"{len(texts)} chunks from {len(set(docs))} documents, {len(qids)} test queries, "
          f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}", flush=True)

    sample = texts[: args.speed_chunks]
    speed: dict[str, list[tuple[float, float]]] = {b: [(float("nan"), float("nan"))] for b in backends}
    for b in [*backends, *reversed(backends)] if sample else []:
        e = embedders[b][0]
        e.embed(sample[:64])  # warm-up: first-call allocations
        t, c = time.perf_counter(), cpu_seconds()
        e.embed(sample)
        speed[b].append((len(sample) / (time.perf_counter() - t), len(sample) / (cpu_seconds() - c)))
        print(f"{b}: {speed[b][-1][0]:.1f} chunks/s", flush=True)

    vectors = {}
    rows = []
    for b in backends:
        e = embedders[b][0]
        t = time.perf_counter()
        d = e.embed(texts)
        full_s = time.perf_counter() - t
        q = e.embed([queries[i] for i in qids])
        vectors[b] = (q, d)
        nd, rc = score(q, d, np.asarray(docs), qids, qrels)
        print(f"{b}: corpus embedded in {full_s:.0f} s, nDCG@10 {nd:.4f}", flush=True)
        best = max(speed[b], key=lambda v: v[0] if v[0] == v[0] else -1.0)  # NaN when speed was skipped
        rows.append([b, best[0], best[1], len(texts) / full_s, embedders[b][1], nd, rc])
    base = rows[0]
    for r in rows:
        r.insert(2, r[1] / base[1])
    print(table(["backend", "chunks/s", "ratio", "chunks/CPU-s", "corpus chunks/s", "load ms (export incl.)",
                 "nDCG@10", "R@100"], rows))

    ref = backends[0]
    if len(backends) > 1:
        tq, td = vectors[ref]
        agree = []
        for b in backends[1:]:
            q, d = vectors[b]
            cos = np.sum(d * td, axis=1)
            nd_mixed, _ = score(q, td, np.asarray(docs), qids, qrels)
            nd_rev, _ = score(tq, d, np.asarray(docs), qids, qrels)
            agree.append([b, float(cos.mean()), float(cos.min()), nd_mixed, nd_rev])
        print(table(["backend b", f"mean cos to {ref}", "min cos", f"nDCG@10 b-queries/{ref}-docs",
                     f"nDCG@10 {ref}-queries/b-docs"], agree))
    if sample:
        stats = {b: statistics.mean(s[0] for s in speed[b]) for b in backends}
        print("mean of both speed runs (chunks/s): " + ", ".join(f"{b} {v:.1f}" for b, v in stats.items()))
    print(f"load avg at end {os.getloadavg()[0]:.1f}")
    scratch.cleanup()


if __name__ == "__main__":
    main()
