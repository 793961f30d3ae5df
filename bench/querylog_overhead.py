"""What logging a query costs the answer: the time `QueryLog.record()` takes on the caller's thread.

    .venv/bin/python -m bench.querylog_overhead [--n 2000]

Each record is a realistic answer: 10 hits with ranks and scores, 8 stages, a 384-float question vector
computed on the log's thread (as the pipeline does). Baseline in the same run: the same row written
synchronously in its own transaction, which is what logging would cost without the background writer.
Target: < 2 ms per query on the caller's thread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from almanac.core.querylog import QueryLog, QueryRecord

from .common import machine, table


def make_record(i: int) -> QueryRecord:
    hits = [
        {
            "chunk_id": 1000 + j,
            "document_id": 10 + j,
            "score": 0.1 / (j + 1),
            "keyword_rank": j + 1,
            "keyword_score": -7.5 + j,
            "vector_rank": j + 2,
            "vector_distance": 0.3 + j / 50,
        }
        for j in range(10)
    ]
    stages = {
        s: 1.0 + i % 7
        for s in (
            "embed query",
            "vector search",
            "keyword search",
            "fusion",
            "quick answer",
            "prompt",
            "first token",
            "generation",
        )
    }
    vec = np.random.default_rng(abs(i)).standard_normal(384).astype(np.float32)
    return QueryRecord(
        kind="ask",
        question=f"question number {i} about the garden gate",
        mode="hybrid",
        stages_ms=stages,
        hits=hits,
        top_similarity=0.7,
        relevant=True,
        quick_answer=True,
        prompt_tokens=380,
        answer_tokens=40,
        cited=1,
        backend="local",
        cache="miss",
        stopped="stop",
        query_vector=lambda v=vec: v,
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args(argv)
    print(f"# Query log overhead — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        qlog = QueryLog(Path(tmp) / "q.db")
        qlog.record(make_record(-1))
        qlog.flush()  # the file and the thread exist before timing, as in a running app
        caller = []
        for i in range(args.n):
            rec = make_record(i)
            start = time.perf_counter_ns()
            qlog.record(rec)
            caller.append((time.perf_counter_ns() - start) / 1e6)
            time.sleep(0.0005)  # queries arrive one at a time, not in a burst
        qlog.flush(timeout=120)
        assert len(qlog.rows()) == args.n + 1
        qlog.close()

        sync = QueryLog(Path(tmp) / "sync.db")
        sync.flush()
        direct = []
        for i in range(min(args.n, 500)):
            rec = make_record(i)
            start = time.perf_counter_ns()
            sync.record(rec)
            sync.flush()  # wait for the write: the cost without a background writer
            direct.append((time.perf_counter_ns() - start) / 1e6)
        sync.close()

    def row(name: str, v: list[float]) -> list[object]:
        return [name, len(v), f"{statistics.median(v):.3f}", f"{np.percentile(v, 95):.3f}", f"{max(v):.3f}"]

    print(
        table(
            ["path", "queries", "p50 ms", "p95 ms", "max ms"],
            [row("record() on the caller's thread", caller), row("write and wait (baseline)", direct)],
        )
    )
    ratio = statistics.median(caller) / statistics.median(direct)
    p95 = float(np.percentile(caller, 95))
    print(
        f"caller/baseline median ratio {ratio:.3f}; target < 2 ms per query: {'met' if p95 < 2 else 'missed'}"
        f" (p95 {p95:.3f} ms)"
    )


if __name__ == "__main__":
    main()
