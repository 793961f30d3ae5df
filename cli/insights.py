"""`almanac stats` and `almanac eval`: the query log's numbers, and retrieval quality measured on demand."""

from __future__ import annotations

import argparse
import json
import sys

from almanac.core import drift, evaluate, querylog, self_eval, stats
from almanac.core.cancel import CancelToken
from almanac.core.errors import AlmanacError
from almanac.core.hits import SearchResult
from almanac.core.library import Library
from almanac.core.outcomes import DESCRIPTIONS


def log_search(lib: Library, result: SearchResult) -> None:
    """An interactive search goes to the query log (batch `--queries` runs are scripts, and are not)."""
    qlog = querylog.open_query_log(lib.settings)
    try:
        qlog.record(querylog.from_search(result, relevant=None, embedding_model=lib.embedder.name))
    finally:
        qlog.close()


def cmd_stats(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    try:
        since = stats.parse_since(args.since)
    except ValueError as err:
        raise AlmanacError(f"--since: {err}") from None
    qlog = querylog.open_query_log(lib.settings)
    summary = stats.summarize(qlog, since)
    signals = drift.detect(qlog, drift.corpus_centroid(lib.conn))
    summary["self_eval"] = [r.to_json() for r in qlog.self_eval_runs()]
    summary["drift"] = [s.to_json() for s in signals]
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"Last {args.since}: {summary['queries']} queries ({summary['asks']} questions,"
        f" {summary['searches']} searches)"
    )
    if not summary["queries"]:
        print("Nothing logged in this period.")
    else:
        print(f"\n{'stage':<22}{'p50 ms':>10}{'p95 ms':>10}{'n':>7}")
        for name, v in summary["stages_ms"].items():
            print(f"{name:<22}{v['p50']:>10.1f}{v['p95']:>10.1f}{v['n']:>7}")
        print()
        _line("retrieval hit rate", summary["retrieval_hit_rate"], f"of {summary['retrieval_judged']} judged")
        _line("'not in your files'", summary["not_in_files_rate"], "of questions")
        _line("quick answer shown", summary["quick_answer_rate"], "of questions")
        tok = summary["tokens_per_answer"]
        if tok["p50"] is not None:
            print(
                f"  {'tokens per answer':<24}{tok['p50']:.0f} median, prompt {tok['prompt_p50']:.0f} median"
            )
        cache = summary["cache"]
        _line(
            "cache hit rate",
            cache["hit_rate"],
            f"{cache['hits']} hits, {cache['time_saved_ms'] / 1000:.1f} s saved",
        )
        fb = summary["feedback"]
        print(
            f"  {'feedback':<24}{fb['up']} up, {fb['down']} down; sources: {fb['sources_helped']} helped,"
            f" {fb['sources_not_helped']} did not"
        )
        if summary["error_categories"]:
            print("\nErrors:")
            for cat, n in summary["error_categories"].items():
                print(f"  {cat:<20}{n:>5}  {DESCRIPTIONS.get(cat, '')}")
    if summary["self_eval"]:
        last = summary["self_eval"][-1]
        hybrid = last["scores"].get("hybrid", {})
        print(
            f"\nSelf-evaluation: hybrid MRR@10 {hybrid.get('mrr@10', 0):.3f},"
            f" hit@10 {hybrid.get('hit@10', 0):.3f}"
            f" on {last['items']} known items ({last['missing']} missing), {last['chunks']} chunks"
        )
    print("\nDrift:")
    for s in signals:
        print(f"  {'TRIPPED' if s.tripped else 'ok':<8}{s.name:<20}{s.why}")
    return 0


def _line(label: str, rate: float | None, detail: str) -> None:
    shown = "—" if rate is None else f"{rate:.1%}"
    print(f"  {label:<24}{shown:>7}  {detail}")


def cmd_eval(lib: Library, args: argparse.Namespace, cancel: CancelToken) -> int:
    if bool(args.qrels_dir) == bool(args.self_eval):
        raise AlmanacError("Give a BEIR folder (`almanac eval QRELS_DIR`) or --self, not both.")
    modes = args.mode or ["hybrid", "keyword", "vector"]
    searcher = lib.searcher()
    try:
        if args.self_eval:
            run = self_eval.evaluate_library(
                querylog.open_query_log(lib.settings),
                searcher.conn,
                searcher.search,
                embedding_model=lib.embedder.name,
                rebuild=args.rebuild,
                modes=modes,
            )
            if args.json:
                print(json.dumps(run.to_json(), indent=2))
                return 0
            if not run.items:
                print("The library has no passages long enough to build a known-item set yet.")
                return 0
            print(
                f"Known-item evaluation on {run.items} passages of your library"
                f" ({run.missing} whose file has left the library count as misses):"
            )
            for mode, s in run.scores.items():
                print(f"  {mode:<8} MRR@10 {s['mrr@10']:.3f}   hit@10 {s['hit@10']:.3f}")
            return 0
        queries, qrels = evaluate.load_beir(args.qrels_dir, args.split)

        def progress(done: int, total: int) -> None:
            cancel.checkpoint()
            if sys.stderr.isatty():
                print(f"\r{done}/{total} queries", end="", file=sys.stderr, flush=True)

        scores = evaluate.evaluate(searcher.search, queries, qrels, modes, progress=progress)
        if sys.stderr.isatty():
            print(file=sys.stderr)
    finally:
        searcher.close()
    if args.json:
        print(json.dumps({"split": args.split, "scores": [s.to_json() for s in scores]}, indent=2))
        return 0
    print(f"{len(queries)} judged queries ({args.split}):")
    for s in scores:
        print(f"  {s.mode:<8} nDCG@10 {s.ndcg10:.4f}   Recall@100 {s.recall100:.4f}")
    return 0
