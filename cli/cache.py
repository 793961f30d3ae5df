"""`almanac cache [--clear] [--json]`: the answer cache's hit rate and the time it saved."""

from __future__ import annotations

import argparse
import json

from almanac.core import paths
from almanac.core.answer_cache import AnswerCache
from almanac.core.cancel import CancelToken


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cache", help="answer cache statistics: entries, hit rate, time saved")
    p.add_argument("--clear", action="store_true", help="forget every cached answer and the statistics")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, cancel: CancelToken) -> int:
    # The pipeline keeps its cache beside the index (core/pipeline.py).
    cache = AnswerCache(paths.db_path().with_name("answer_cache.db"))
    try:
        if args.clear:
            cache.clear()
        stats = cache.stats()
    finally:
        cache.close()
    if args.json:
        print(json.dumps(stats.to_json(), indent=2))
        return 0
    if args.clear:
        print("Cleared the answer cache.")
    hits = stats.exact_hits + stats.semantic_hits
    print(f"Cached answers: {stats.entries}")
    print(
        f"Lookups: {stats.lookups}, hits: {hits} ({stats.hit_rate:.0%}: {stats.exact_hits} exact,"
        f" {stats.semantic_hits} near-duplicate)"
    )
    print(f"Time saved: {stats.saved_ms / 1000:.1f} s (what the cached answers took to write)")
    return 0
