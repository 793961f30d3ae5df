"""Does the logged "retrieval hit rate" track real retrieval quality? Checked on the labelled QA set.

    .venv/bin/python -m bench.hit_rate [--split test|tune|all]

Every QA question (bench/qa/answers.jsonl) goes through the real AnswerPipeline over the cached index of
../shared/eval/docs (the one bench.answers builds), with the query log on, so the signal is computed by the
very code `almanac stats` uses (core.stats.is_retrieval_hit on the logged rows). The model is replaced by one
that writes nothing: the signal must not need the model, and the bench stays fast — so "the answer used it"
reduces to "a quick answer was shown".

Truth: for an answerable question, retrieval succeeded when a source given to the answer is the question's
file; for an unanswerable one, retrieval cannot succeed. The table reports the signal's rate against the true
rate, and its precision and recall as a detector of real hits.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from almanac.core import paths
from almanac.core.embedding import SentenceTransformerEmbedder
from almanac.core.pipeline import AnswerPipeline
from almanac.core.querylog import open_query_log
from almanac.core.settings import Settings
from almanac.core.stats import is_retrieval_hit

from .answers import build_index, load_qa
from .common import eval_dir, machine, table


class SilentModel:
    """Writes nothing: the retrieval signal is measured without the model's cost."""

    name = "silent"
    n_ctx = 4096
    loaded = True

    def load(self) -> float:
        return 0.0

    def count_tokens(self, text: str) -> int:
        return max(1, len(text) // 4)

    def count_chat_tokens(self, messages: list[dict]) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages)

    def stream_chat(self, messages, *, max_tokens, cancel=None, timeout_s=None, result=None) -> Iterator[str]:
        if result is not None:
            result.stopped = "stop"
        yield from ()

    def close(self) -> None:
        pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="test", choices=["test", "tune", "all"])
    args = ap.parse_args(argv)
    docs = eval_dir("docs")  # exits with SKIP when the evaluation data is absent
    items = [q for q in load_qa() if args.split == "all" or q["split"] == args.split]
    print(f"# Retrieval hit rate vs truth — {time.strftime('%Y-%m-%d %H:%M')} — {machine()}")
    embedder = SentenceTransformerEmbedder()
    settings = Settings(answer_cache=False, log_queries=True)
    db, _ = build_index(docs, settings, embedder)
    with tempfile.TemporaryDirectory() as home:
        paths.set_data_dir(home)  # a private query log, not the user's
        pipeline = AnswerPipeline(db, embedder, settings, model_factory=lambda s: SilentModel())
        truth: list[bool] = []
        try:
            for item in items:
                answer = pipeline.ask(item["question"])
                files = {Path(s.hit.path).resolve() for s in answer.sources}
                truth.append(bool(item["answerable"]) and (docs / item["file"]).resolve() in files)
        finally:
            pipeline.close()
        qlog = open_query_log(settings)
        qlog.flush()
        rows = qlog.rows()
        qlog.close()
        paths.set_data_dir(None)
    signal = [bool(is_retrieval_hit(r)) for r in rows]
    assert len(signal) == len(truth), "every question must be logged once"
    tp = sum(s and t for s, t in zip(signal, truth, strict=True))
    fp = sum(s and not t for s, t in zip(signal, truth, strict=True))
    fn = sum(t and not s for s, t in zip(signal, truth, strict=True))
    agree = sum(s == t for s, t in zip(signal, truth, strict=True))
    n = len(truth)
    rows_out = [
        ["questions", n],
        ["true retrieval hit rate", f"{sum(truth) / n:.3f}"],
        ["logged retrieval hit rate", f"{sum(signal) / n:.3f}"],
        ["agreement (signal = truth)", f"{agree / n:.3f}"],
        ["precision of the signal", f"{tp / (tp + fp):.3f}" if tp + fp else "-"],
        ["recall of the signal", f"{tp / (tp + fn):.3f}" if tp + fn else "-"],
    ]
    print(table(["measure", "value"], rows_out))


if __name__ == "__main__":
    main()
