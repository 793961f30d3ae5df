"""The semantic answer cache: hit rate on paraphrases, false hits on near-misses, and lookup time.

    .venv/bin/python -m bench.cache [--threshold T] [--entries N]

Pairs: bench/qa/cache_pairs.jsonl (written for this benchmark; no third-party data): paraphrase pairs that
must share an answer, and near-miss pairs that must not (they differ by a number, a negation or a named
entity). Each pair has a tune/test split: the threshold is chosen on `tune` (the lowest similarity with no
false hit there, guards on, plus a margin of MARGIN because the set is small) and reported on `test` and on
all pairs. The product's DEFAULT_THRESHOLD is the value this prints.

A cached answer's time is measured through the real path: embed the question with the bundled
all-MiniLM-L6-v2, then `AnswerCache.lookup` on an SQLite cache holding N entries plus the source check,
against the embedding alone measured in the same run (the search embeds the question anyway).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from almanac.core.answer_cache import DEFAULT_THRESHOLD, AnswerCache, features, guard_reason
from almanac.core.embedding import SentenceTransformerEmbedder

from .common import ROOT, table
from .util import header, pct

PAIRS = ROOT / "bench" / "qa" / "cache_pairs.jsonl"
MARGIN = 0.05


def load_pairs() -> list[dict]:
    return [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]


def score(pairs: list[dict], sims: np.ndarray, blocked: list[bool], t: float, guards: bool) -> dict[str, tuple]:
    """(hits, pairs) per kind/subtype at threshold t."""
    out: dict[str, list[int]] = {}
    for pair, sim, block in zip(pairs, sims, blocked, strict=True):
        hit = sim >= t and not (guards and block)
        for key in (pair["kind"], f"{pair['kind']}:{pair['subtype']}"):
            got = out.setdefault(key, [0, 0])
            got[0] += int(hit)
            got[1] += 1
    return {k: tuple(v) for k, v in out.items()}


def choose_threshold(pairs, sims, blocked) -> float:
    """The lowest threshold (0.01 steps) with no near-miss false hit on the tune split, guards on, + MARGIN."""
    tune = [i for i, p in enumerate(pairs) if p["split"] == "tune"]
    for t in np.arange(0.60, 1.0001, 0.01):
        false_hits = sum(
            1 for i in tune if pairs[i]["kind"] == "near_miss" and sims[i] >= t and not blocked[i]
        )
        if false_hits == 0:
            return round(float(t) + MARGIN, 2)
    return 1.0


def lookup_timing(embedder, pairs: list[dict], threshold: float, entries: int) -> tuple[list, list, int]:
    """(ms of embed + lookup per query, ms of embed alone, hits) on a cache holding `entries` answers."""
    with tempfile.TemporaryDirectory() as tmp:
        cache = AnswerCache(Path(tmp) / "cache.db", threshold=threshold)
        stored = [p["a"] for p in pairs]
        fillers = [f"Filler question number {i} about topic {i % 97} and item {i * 7}?" for i in range(entries)]
        vectors = embedder.embed(stored + fillers)
        payload = {"answer": "x" * 600, "sources": [{"n": 1, "path": "/a/b.pdf", "text": "y" * 1000}]}
        for q, v in zip(stored + fillers, vectors, strict=True):
            cache.put(q, v, "bench", payload, [(1, "h")], answer_ms=3000.0)
        check = lambda ids: dict.fromkeys(ids, "h")  # noqa: E731 - the library says every source is current
        with_cache, embed_only, hits = [], [], 0
        queries = [p["b"] for p in pairs if p["kind"] == "paraphrase"] + stored[:20]
        embedder.embed(["warm up"])
        for q in queries:
            t0 = time.perf_counter()
            v = embedder.embed([q])[0]
            t1 = time.perf_counter()
            hit = cache.lookup(q, v, "bench", check)
            t2 = time.perf_counter()
            hits += hit is not None
            with_cache.append((t2 - t0) * 1000)
            embed_only.append((t1 - t0) * 1000)
        cache.close()
        return with_cache, embed_only, hits


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threshold", type=float, help="report at this threshold instead of the chosen one")
    p.add_argument("--entries", type=int, default=2000, help="cache size for the lookup timing")
    args = p.parse_args()
    print(header("Semantic answer cache"))
    pairs = load_pairs()
    embedder = SentenceTransformerEmbedder()
    embedder.load()
    va = embedder.embed([x["a"] for x in pairs])
    vb = embedder.embed([x["b"] for x in pairs])
    sims = np.sum(va * vb, axis=1)
    reasons = [guard_reason(features(x["a"]), features(x["b"])) for x in pairs]
    blocked = [r is not None for r in reasons]
    n_para = sum(x["kind"] == "paraphrase" for x in pairs)
    print(f"{n_para} paraphrase pairs, {len(pairs) - n_para} near-miss pairs ({PAIRS.relative_to(ROOT)})\n")

    para = sims[[x["kind"] == "paraphrase" for x in pairs]]
    near = sims[[x["kind"] == "near_miss" for x in pairs]]
    print(f"Cosine similarity: paraphrases median {float(np.median(para)):.3f} (min {float(para.min()):.3f}); near-misses median {float(np.median(near)):.3f} (max {float(near.max()):.3f})")
    guarded_para = sum(b for x, b in zip(pairs, blocked, strict=True) if x["kind"] == "paraphrase")
    guarded_near = sum(b for x, b in zip(pairs, blocked, strict=True) if x["kind"] == "near_miss")
    print(f"Guards block {guarded_near}/{len(pairs) - n_para} near-misses and {guarded_para}/{n_para} paraphrases"
          " at any similarity\n")

    chosen = choose_threshold(pairs, sims, blocked)
    threshold = args.threshold or chosen
    print(f"Threshold chosen on the tune split: {chosen:.2f} (the product uses {DEFAULT_THRESHOLD:.2f})"
          + (f"; reporting at {threshold:.2f}" if args.threshold else ""))
    rows = []
    for t in sorted({0.75, 0.78, 0.80, 0.85, 0.90, 0.95, round(threshold, 2)}):
        for guards in (False, True):
            s = score(pairs, sims, blocked, t, guards)
            test = score([x for x in pairs if x["split"] == "test"],
                         sims[[x["split"] == "test" for x in pairs]],
                         [b for x, b in zip(pairs, blocked, strict=True) if x["split"] == "test"], t, guards)
            ph, pn = s["paraphrase"]
            fh, fn = s["near_miss"]
            rows.append([
                f"{t:.2f}" + (" *" if abs(t - threshold) < 1e-9 else ""), "on" if guards else "off",
                f"{ph}/{pn} ({ph / pn:.0%})", f"{fh}/{fn}",
                f"{s.get('near_miss:number', (0, 0))[0]}", f"{s.get('near_miss:negation', (0, 0))[0]}",
                f"{s.get('near_miss:entity', (0, 0))[0]}",
                f"{test['paraphrase'][0]}/{test['paraphrase'][1]}", f"{test['near_miss'][0]}/{test['near_miss'][1]}",
            ])
    print(table(["threshold", "guards", "paraphrase hits", "false hits", "number", "negation", "entity",
                 "test para", "test false"], rows))

    misses = [x for x, sim, b in zip(pairs, sims, blocked, strict=True)
              if x["kind"] == "paraphrase" and (sim < threshold or b)]
    false = [x for x, sim, b in zip(pairs, sims, blocked, strict=True)
             if x["kind"] == "near_miss" and sim >= threshold and not b]
    for x in false:
        print(f"  FALSE HIT {x['id']}: {x['a']!r} ~ {x['b']!r}")
    print(f"\nParaphrases missed at {threshold:.2f}: {len(misses)} (blocked by a guard: "
          f"{sum(1 for x in misses if blocked[pairs.index(x)])})")

    with_cache, embed_only, hits = lookup_timing(embedder, pairs, threshold, args.entries)
    print(f"\nCached answer time ({args.entries + len(pairs)} entries, {len(with_cache)} queries, {hits} hits):")
    print(table(["path", "p50 ms", "p95 ms", "max ms"], [
        ["embed question only (baseline)", pct(embed_only, 50), pct(embed_only, 95), max(embed_only)],
        ["embed + cache lookup", pct(with_cache, 50), pct(with_cache, 95), max(with_cache)],
    ]))
    print(f"lookup adds {pct(with_cache, 50) - pct(embed_only, 50):.2f} ms at the median "
          f"({pct(with_cache, 50) / pct(embed_only, 50):.2f}x the embedding alone)")


if __name__ == "__main__":
    main()
