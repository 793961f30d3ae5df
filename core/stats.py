"""Numbers over the query log: latency per stage, volume, retrieval hit rate, declines, tokens, errors,
cache and feedback. `almanac stats` prints them and the Insights view charts them; both use `summarize`.

Retrieval hit rate — a query counts as a retrieval *hit* when:
1. the user gave feedback: thumbs up is a hit, thumbs down a miss (the user knows best); else
2. retrieval passed the calibrated relevance test (the same test that decides "not in your files", fitted
   on labelled questions: see core/decline.py) AND the answer used it: it cited at least one source or
   showed a quick answer.
Queries with neither signal are left out of the rate: plain searches (which rank no sentences, so the
relevance test is not run for them) unless they got feedback, and questions that failed before retrieval.
bench/hit_rate.py checks this definition against labelled data (SciFact test queries and the QA set).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict

import numpy as np

from .outcomes import CACHE_EXACT, CACHE_SEMANTIC, NOT_IN_FILES_STOPS
from .querylog import LoggedQuery, QueryLog

DAY = 86400.0


def parse_since(text: str) -> float:
    """'7d', '12h', '30m', '2w' -> seconds."""
    text = text.strip().lower()
    units = {"m": 60.0, "h": 3600.0, "d": DAY, "w": 7 * DAY}
    if len(text) < 2 or text[-1] not in units:
        raise ValueError(f"use a number and a unit (m, h, d, w), as in 7d — not {text!r}")
    try:
        value = float(text[:-1])
    except ValueError:
        raise ValueError(f"use a number and a unit (m, h, d, w), as in 7d — not {text!r}") from None
    if value <= 0:
        raise ValueError("the period must be positive")
    return value * units[text[-1]]


def is_retrieval_hit(q: LoggedQuery) -> bool | None:
    """The definition above; None when the query carries no signal."""
    if q.feedback:
        return q.feedback > 0
    if q.relevant is None:
        return None
    if q.kind == "search":
        return q.relevant
    return q.relevant and (q.cited > 0 or q.quick_answer)


def is_not_in_files(q: LoggedQuery) -> bool:
    return q.kind == "ask" and q.stopped in NOT_IN_FILES_STOPS


def _pct(values: list[float], p: float) -> float | None:
    return round(float(np.percentile(values, p)), 2) if values else None


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summarize(qlog: QueryLog, since_s: float = 7 * DAY, now: float | None = None) -> dict:
    """Everything `almanac stats --json` prints (keys documented in the README)."""
    now = now or time.time()
    rows = qlog.rows(since=now - since_s, until=now + 1)
    asks = [q for q in rows if q.kind == "ask"]
    searches = [q for q in rows if q.kind == "search"]

    stages: dict[str, list[float]] = defaultdict(list)
    by_day: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_day: Counter[str] = Counter()
    for q in rows:
        day = time.strftime("%Y-%m-%d", time.localtime(q.ts))
        per_day[day] += 1
        for name, ms in q.stages_ms.items():
            stages[name].append(ms)
            by_day[name][day].append(ms)
        stages["total"].append(sum(q.stages_ms.values()))
        by_day["total"][day].append(sum(q.stages_ms.values()))

    judged = [h for q in rows if (h := is_retrieval_hit(q)) is not None]
    answered = [q for q in asks if q.answer_tokens > 0]
    errors = Counter(q.error_category for q in rows if q.error_category)
    cache_hits = [q for q in asks if q.cache in (CACHE_EXACT, CACHE_SEMANTIC)]
    misses = [q for q in asks if q.cache not in (CACHE_EXACT, CACHE_SEMANTIC) and q.answer_tokens > 0]
    # Time saved by the cache: what a miss costs at the median, less what the hit cost.
    miss_ms = float(np.median([sum(q.stages_ms.values()) for q in misses])) if misses else 0.0
    saved = sum(max(0.0, miss_ms - sum(q.stages_ms.values())) for q in cache_hits)
    helped, not_helped = qlog.source_feedback_counts(since=now - since_s)
    return {
        "since": round(now - since_s, 3),
        "until": round(now, 3),
        "queries": len(rows),
        "asks": len(asks),
        "searches": len(searches),
        "queries_per_day": [{"date": d, "queries": n} for d, n in sorted(per_day.items())],
        "stages_ms": {
            name: {"p50": _pct(v, 50), "p95": _pct(v, 95), "n": len(v)} for name, v in sorted(stages.items())
        },
        "stages_ms_by_day": {
            name: [{"date": d, "p50": _pct(v, 50), "p95": _pct(v, 95)} for d, v in sorted(days.items())]
            for name, days in sorted(by_day.items())
        },
        "retrieval_hit_rate": _rate(sum(judged), len(judged)),
        "retrieval_judged": len(judged),
        "not_in_files_rate": _rate(sum(is_not_in_files(q) for q in asks), len(asks)),
        "quick_answer_rate": _rate(sum(q.quick_answer for q in asks), len(asks)),
        "tokens_per_answer": {
            "p50": _pct([q.answer_tokens for q in answered], 50),
            "mean": round(float(np.mean([q.answer_tokens for q in answered])), 2) if answered else None,
            "prompt_p50": _pct([q.prompt_tokens for q in answered], 50),
        },
        "error_categories": dict(sorted(errors.items())),
        "cache": {
            "hits": len(cache_hits),
            "exact": sum(q.cache == CACHE_EXACT for q in cache_hits),
            "semantic": sum(q.cache == CACHE_SEMANTIC for q in cache_hits),
            "hit_rate": _rate(len(cache_hits), len(asks)),
            "time_saved_ms": round(saved, 1),
        },
        "backends": dict(sorted(Counter(q.backend for q in asks if q.backend).items())),
        "feedback": {
            "up": sum(q.feedback == 1 for q in rows),
            "down": sum(q.feedback == -1 for q in rows),
            "sources_helped": helped,
            "sources_not_helped": not_helped,
        },
    }
