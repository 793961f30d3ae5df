"""Drift: is retrieval getting worse, or are questions moving away from the library?

Four signals, each compared with a reference period (the four weeks before the current week) and each
reported with its value, its reference, its threshold and why it tripped:

- `self_eval_drop`: the latest self-evaluation (hybrid MRR@10) fell at least 0.05 below the median of the
  earlier runs with the same embedding model, or a fifth of its known items left the library. On 100 known
  items MRR@10 moves by about ±0.03 between equivalent runs (sampling noise), so 0.05 is past the noise.
- `score_shift`: the distribution of top-hit similarity this week differs from the reference weeks (two-sample
  Kolmogorov–Smirnov statistic above its 1% critical value) and its median is lower: retrieval finds weaker
  matches than it used to.
- `query_drift`: the centroid of this week's question embeddings is further from the library's centroid than
  the reference weeks' centroid was, by at least 0.1 cosine distance (Phoenix's embedding drift measure):
  people ask about things the library does not hold.
- `not_in_files_rise`: the share of answers that said "not in your files" rose by at least 0.15 and to at
  least 1.5× the reference share.

Each needs at least MIN_QUERIES queries in both periods to speak; with fewer it reports `tripped: False` and
says it has too little data.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import apsw
import numpy as np

from .querylog import LoggedQuery, QueryLog, SelfEvalRun
from .stats import DAY, is_not_in_files

MIN_QUERIES = 20
WEEK = 7 * DAY
REFERENCE = 4 * WEEK
SELF_EVAL_DROP = 0.05
MISSING_SHARE = 0.2
KS_ALPHA_C = 1.628  # c(alpha) for alpha = 0.01
CENTROID_RISE = 0.1
NOT_IN_FILES_RISE = 0.15
NOT_IN_FILES_RATIO = 1.5


@dataclass
class Signal:
    name: str
    tripped: bool
    value: float | None
    reference: float | None
    threshold: str
    why: str

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("value", "reference"):
            if d[key] is not None:
                d[key] = round(d[key], 4)
        return d


def self_eval_drop(runs: list[SelfEvalRun]) -> Signal:
    threshold = f"drop ≥ {SELF_EVAL_DROP} in hybrid MRR@10, or ≥ {MISSING_SHARE:.0%} of items missing"
    if not runs:
        return Signal("self_eval_drop", False, None, None, threshold, "no self-evaluation has run yet")
    last = runs[-1]
    value = last.scores.get("hybrid", {}).get("mrr@10")
    earlier = [
        r.scores.get("hybrid", {}).get("mrr@10")
        for r in runs[:-1]
        if r.embedding_model == last.embedding_model
    ]
    earlier = [v for v in earlier if v is not None]
    missing_share = last.missing / last.items if last.items else 0.0
    if missing_share >= MISSING_SHARE:
        return Signal(
            "self_eval_drop",
            True,
            value,
            None,
            threshold,
            f"{last.missing} of {last.items} known items' files have left the library",
        )
    if value is None or not earlier:
        return Signal(
            "self_eval_drop",
            False,
            value,
            None,
            threshold,
            "only one run with this embedding model: nothing to compare with yet",
        )
    reference = float(np.median(earlier))
    tripped = reference - value >= SELF_EVAL_DROP
    why = (
        f"hybrid MRR@10 fell from {reference:.3f} to {value:.3f}"
        if tripped
        else f"hybrid MRR@10 {value:.3f} is within {SELF_EVAL_DROP} of {reference:.3f}"
    )
    return Signal("self_eval_drop", tripped, value, reference, threshold, why)


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the two empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / len(a)
    cdf_b = np.searchsorted(b, grid, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def score_shift(current: list[LoggedQuery], reference: list[LoggedQuery]) -> Signal:
    cur = np.array([q.top_similarity for q in current if q.top_similarity is not None])
    ref = np.array([q.top_similarity for q in reference if q.top_similarity is not None])
    threshold = "KS statistic above its 1% critical value, with a lower median"
    if len(cur) < MIN_QUERIES or len(ref) < MIN_QUERIES:
        return Signal(
            "score_shift",
            False,
            None,
            None,
            threshold,
            f"too little data ({len(cur)} this week, {len(ref)} in the reference weeks)",
        )
    d = ks_statistic(cur, ref)
    critical = KS_ALPHA_C * math.sqrt((len(cur) + len(ref)) / (len(cur) * len(ref)))
    lower = float(np.median(cur)) < float(np.median(ref))
    tripped = d > critical and lower
    why = (
        f"top-hit similarity median {np.median(cur):.3f} vs {np.median(ref):.3f}"
        f" (KS {d:.2f} > {critical:.2f})"
        if tripped
        else f"top-hit similarity unchanged (KS {d:.2f}, critical {critical:.2f})"
    )
    return Signal("score_shift", tripped, float(np.median(cur)), float(np.median(ref)), threshold, why)


def _cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if not na or not nb:
        return 1.0
    return float(1.0 - np.dot(a, b) / (na * nb))


def query_drift(
    current: list[LoggedQuery], reference: list[LoggedQuery], corpus_centroid: np.ndarray | None
) -> Signal:
    threshold = f"centroid distance to the library rises by ≥ {CENTROID_RISE}"
    dim = None if corpus_centroid is None else corpus_centroid.shape[0]

    def vectors(rows: list[LoggedQuery]) -> list[np.ndarray]:
        return [q.query_vector for q in rows if q.query_vector is not None and q.query_vector.shape[0] == dim]

    if corpus_centroid is None:
        return Signal("query_drift", False, None, None, threshold, "the library has no vectors yet")
    cur, ref = vectors(current), vectors(reference)
    if len(cur) < MIN_QUERIES or len(ref) < MIN_QUERIES:
        return Signal(
            "query_drift",
            False,
            None,
            None,
            threshold,
            f"too little data ({len(cur)} this week, {len(ref)} in the reference weeks)",
        )
    value = _cosine_distance(np.mean(cur, axis=0), corpus_centroid)
    refv = _cosine_distance(np.mean(ref, axis=0), corpus_centroid)
    tripped = value - refv >= CENTROID_RISE
    why = (
        f"questions moved away from the library: centroid distance {value:.3f} vs {refv:.3f}"
        if tripped
        else f"questions are as close to the library as before ({value:.3f} vs {refv:.3f})"
    )
    return Signal("query_drift", tripped, value, refv, threshold, why)


def not_in_files_rise(current: list[LoggedQuery], reference: list[LoggedQuery]) -> Signal:
    threshold = f"rate rises by ≥ {NOT_IN_FILES_RISE} and to ≥ {NOT_IN_FILES_RATIO}× the reference"
    cur = [q for q in current if q.kind == "ask"]
    ref = [q for q in reference if q.kind == "ask"]
    if len(cur) < MIN_QUERIES or len(ref) < MIN_QUERIES:
        return Signal(
            "not_in_files_rise",
            False,
            None,
            None,
            threshold,
            f"too little data ({len(cur)} answers this week, {len(ref)} in the reference weeks)",
        )
    value = sum(map(is_not_in_files, cur)) / len(cur)
    refv = sum(map(is_not_in_files, ref)) / len(ref)
    tripped = value - refv >= NOT_IN_FILES_RISE and value >= NOT_IN_FILES_RATIO * refv
    why = (
        f"'not in your files' rose from {refv:.0%} to {value:.0%} of answers"
        if tripped
        else f"'not in your files' {value:.0%} of answers vs {refv:.0%} before"
    )
    return Signal("not_in_files_rise", tripped, value, refv, threshold, why)


def detect(qlog: QueryLog, corpus_centroid: np.ndarray | None, now: float | None = None) -> list[Signal]:
    now = now or time.time()
    current = qlog.rows(since=now - WEEK, until=now + 1)
    reference = qlog.rows(since=now - WEEK - REFERENCE, until=now - WEEK)
    return [
        self_eval_drop(qlog.self_eval_runs()),
        score_shift(current, reference),
        query_drift(current, reference, corpus_centroid),
        not_in_files_rise(current, reference),
    ]


def corpus_centroid(conn: apsw.Connection, sample: int = 2000) -> np.ndarray | None:
    """The mean of up to `sample` stored chunk vectors (a random sample), or None when there are none."""
    from .vector_index import active_table

    table = active_table(conn)
    if table is None:
        return None
    ids = [
        r[0]
        for r in conn.execute("SELECT id FROM chunks WHERE embedded = 1 ORDER BY random() LIMIT ?", (sample,))
    ]
    vectors = []
    for chunk_id in ids:  # point reads: vec0 answers `rowid = ?` without a scan in every layout
        row = conn.execute(f"SELECT embedding FROM {table} WHERE rowid = ?", (chunk_id,)).fetchone()
        if row is not None:
            vectors.append(np.frombuffer(row[0], dtype=np.float32))
    return np.mean(vectors, axis=0) if vectors else None
