"""The query log, its stats, self-evaluation and drift: real SQLite, real searches, a fast fake embedder."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
from almanac.core import drift, evaluate, self_eval, stats
from almanac.core.embedding import HashEmbedder
from almanac.core.library import Library
from almanac.core.querylog import QueryLog, QueryRecord, from_search
from almanac.core.search import Searcher
from almanac.core.settings import Settings

DAY = 86400.0


def make_library(root, n_docs=40, seed=7):
    """`n_docs` text files in two folders; each document has its own vocabulary of invented words,
    plus words shared by all, so every document is findable by its distinctive words only."""
    rng = random.Random(seed)
    shared = ["report", "system", "value", "method", "result", "process", "figure", "table"]
    for i in range(n_docs):
        folder = root / ("first" if i % 2 == 0 else "second")
        folder.mkdir(parents=True, exist_ok=True)
        own = [
            "".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(4)) for _ in range(30)
        ]
        paragraphs = []
        for _ in range(3):
            words = [rng.choice(own if rng.random() < 0.6 else shared) for _ in range(70)]
            paragraphs.append(" ".join(words).capitalize() + ".")
        (folder / f"doc{i:02d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "lib"
    make_library(root)
    db = tmp_path / "index.db"
    embedder = HashEmbedder()
    with Library(db, settings=Settings(), embedder=embedder) as lib:
        lib.add_folder(root / "first")
        lib.add_folder(root / "second")
        lib.index()
    return root, db, embedder


# -- the log ---------------------------------------------------------------------------------------------------


def record(ts, **kw):
    base = dict(
        kind="ask", question="q", mode="hybrid", stages_ms={"vector search": 10.0, "first token": 500.0}
    )
    base.update(kw)
    return QueryRecord(ts=ts, **base)


def test_log_records_and_reads_back(tmp_path):
    qlog = QueryLog(tmp_path / "q.db")
    vec = np.arange(4, dtype=np.float32)
    qid = qlog.record(
        record(
            time.time(),
            question="what is the kettle?",
            query_vector=vec,
            answer_tokens=12,
            cache="miss",
            stopped="stop",
            backend="local",
        )
    )
    qlog.feedback(qid, 1)
    qlog.source_feedback(qid, 2, 99, True)
    qlog.flush()
    [row] = qlog.rows()
    assert row.id == qid and row.question == "what is the kettle?" and row.feedback == 1
    assert row.answer_tokens == 12 and row.backend == "local" and row.stages_ms["first token"] == 500.0
    assert np.array_equal(row.query_vector, vec)
    assert qlog.source_feedback_counts() == (1, 0)
    qlog.close()


def test_question_text_can_be_kept_out(tmp_path):
    qlog = QueryLog(tmp_path / "q.db", keep_questions=False)
    qlog.record(record(time.time(), question="my private question", query_vector=np.ones(4, np.float32)))
    qlog.flush()
    [row] = qlog.rows()
    assert row.question is None and row.query_vector is None
    assert b"private" not in (tmp_path / "q.db").read_bytes()
    qlog.close()


def test_disabled_log_writes_nothing(tmp_path):
    qlog = QueryLog(tmp_path / "q.db", enabled=False)
    qlog.record(record(time.time()))
    qlog.flush()
    assert qlog.rows() == []
    qlog.close()


def test_retention_and_clear(tmp_path):
    qlog = QueryLog(tmp_path / "q.db", retention_days=30)
    now = time.time()
    qlog.record(record(now - 40 * DAY, question="old"))
    qlog.record(record(now - 1 * DAY, question="recent"))
    qlog.flush()
    qlog.prune(now)
    qlog.flush()
    assert [r.question for r in qlog.rows()] == ["recent"]
    qlog.clear()
    qlog.flush()
    assert qlog.rows() == []
    qlog.close()


def test_a_log_that_cannot_be_written_never_breaks_the_caller(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    qlog = QueryLog(blocker / "q.db")
    qlog.record(record(time.time()))  # must not raise
    qlog.flush(timeout=5)
    qlog.close()


# -- stats -------------------------------------------------------------------------------------------------------


def test_summary_numbers(tmp_path):
    qlog = QueryLog(tmp_path / "q.db")
    now = time.time()
    # 4 answers: a good one, a declined one, a cached one, a timeout; and 2 searches.
    qlog.record(
        record(
            now - 100,
            relevant=True,
            cited=1,
            answer_tokens=30,
            cache="miss",
            stages_ms={"first token": 400.0, "generation": 600.0},
        )
    )
    qlog.record(
        record(now - 90, relevant=False, stopped="declined", cache="miss", stages_ms={"vector search": 20.0})
    )
    qlog.record(
        record(now - 80, relevant=True, cited=1, answer_tokens=30, cache="semantic", stages_ms={"cache": 5.0})
    )
    qlog.record(
        record(
            now - 70,
            relevant=True,
            stopped="timeout",
            error_category="timeout",
            cache="miss",
            stages_ms={"first token": 5000.0},
        )
    )
    qlog.record(record(now - 60, kind="search", relevant=True, stages_ms={"keyword search": 3.0}))
    bad = qlog.record(record(now - 50, kind="search", relevant=True, stages_ms={"keyword search": 5.0}))
    qlog.feedback(bad, -1)  # the user says this one missed: feedback wins over the signal
    qlog.flush()
    s = stats.summarize(qlog, 7 * DAY, now=now)
    assert (s["queries"], s["asks"], s["searches"]) == (6, 4, 2)
    # hits: answer 1, answer 3, search 1 = 3; misses: declined, timeout (cited nothing), search 2 = 3
    assert s["retrieval_hit_rate"] == 0.5 and s["retrieval_judged"] == 6
    assert s["not_in_files_rate"] == 0.25
    assert s["error_categories"] == {"timeout": 1}
    assert s["cache"]["hits"] == 1 and s["cache"]["semantic"] == 1 and s["cache"]["hit_rate"] == 0.25
    assert s["cache"]["time_saved_ms"] == pytest.approx(1000.0 - 5.0)
    assert s["stages_ms"]["keyword search"] == {"p50": 4.0, "p95": 4.9, "n": 2}
    assert s["feedback"]["down"] == 1
    qlog.close()


def test_parse_since():
    assert stats.parse_since("7d") == 7 * DAY
    assert stats.parse_since("12h") == 12 * 3600
    for bad in ("7", "d", "-1d", "xd"):
        with pytest.raises(ValueError):
            stats.parse_since(bad)


# -- BEIR evaluation ---------------------------------------------------------------------------------------------


def test_ndcg_and_recall_by_hand():
    rels = {"a": 1, "b": 1}
    assert evaluate.ndcg_at(["a", "b", "c"], rels) == pytest.approx(1.0)
    # a relevant doc at rank 2 only: (1/log2 3) / (1 + 1/log2 3)
    assert evaluate.ndcg_at(["x", "a"], rels) == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))
    assert evaluate.recall_at(["x", "a"], rels) == 0.5


def test_beir_folder_scores_a_real_index(library, tmp_path):
    root, db, embedder = library
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    texts = {p.stem: p.read_text() for p in root.rglob("*.txt")}
    queries, lines = [], ["query-id\tcorpus-id\tscore"]
    for i, (doc, text) in enumerate(sorted(texts.items())[:10]):
        words = text.split()
        queries.append(f'{{"_id": "q{i}", "text": "{" ".join(words[5:12])}"}}')
        lines.append(f"q{i}\t{doc}\t1")
    (beir / "queries.jsonl").write_text("\n".join(queries))
    (beir / "qrels" / "test.tsv").write_text("\n".join(lines))
    q, qrels = evaluate.load_beir(beir)
    searcher = Searcher(db, embedder)
    try:
        scores = evaluate.evaluate(searcher.search, q, qrels, ["keyword", "hybrid"])
    finally:
        searcher.close()
    assert [s.mode for s in scores] == ["keyword", "hybrid"]
    assert all(s.queries == 10 for s in scores)
    assert scores[0].ndcg10 > 0.5 and scores[0].recall100 >= 0.9


# -- self-evaluation and drift on a degraded index -------------------------------------------------------------


def test_self_eval_reacts_to_half_the_library_leaving(library, tmp_path):
    root, db, embedder = library
    qlog = QueryLog(tmp_path / "q.db")
    searcher = Searcher(db, embedder)
    try:
        first = self_eval.evaluate_library(
            qlog, searcher.conn, searcher.search, embedding_model=embedder.name
        )
        assert first.items >= 20 and first.missing == 0
        assert first.scores["keyword"]["hit@10"] >= 0.9  # the known items are findable on a healthy index
        again = self_eval.evaluate_library(
            qlog, searcher.conn, searcher.search, embedding_model=embedder.name
        )
        assert again.scores == first.scores  # the set is kept: a rerun on the same index scores the same
    finally:
        searcher.close()
    assert not drift.self_eval_drop(qlog.self_eval_runs()).tripped
    assert self_eval.due(qlog, embedding_model=embedder.name, chunks=first.chunks) is None

    with Library(db, settings=Settings(), embedder=embedder) as lib:
        lib.remove_folder(root / "second")
    searcher = Searcher(db, embedder)
    try:
        chunks = searcher.conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
        assert "changed by" in self_eval.due(qlog, embedding_model=embedder.name, chunks=chunks)
        assert "model changed" in self_eval.due(qlog, embedding_model="another-model", chunks=first.chunks)
        after = self_eval.evaluate_library(
            qlog, searcher.conn, searcher.search, embedding_model=embedder.name
        )
    finally:
        searcher.close()
    assert after.missing >= first.items // 4
    assert after.scores["hybrid"]["mrr@10"] < first.scores["hybrid"]["mrr@10"] - 0.1
    signal = drift.self_eval_drop(qlog.self_eval_runs())
    assert signal.tripped and "left the library" in signal.why
    qlog.close()


def test_self_eval_reacts_to_vectors_from_another_model(library, tmp_path):
    root, db, embedder = library
    qlog = QueryLog(tmp_path / "q.db")
    searcher = Searcher(db, embedder)
    try:
        healthy = self_eval.evaluate_library(
            qlog, searcher.conn, searcher.search, embedding_model=embedder.name, modes=["vector", "hybrid"]
        )
    finally:
        searcher.close()

    class OtherModel(HashEmbedder):
        """Same name and size, different vectors: what a silently swapped model produces."""

        def embed(self, texts):
            return np.roll(super().embed(texts), 17, axis=1)

    searcher = Searcher(db, OtherModel())
    try:
        degraded = self_eval.evaluate_library(
            qlog, searcher.conn, searcher.search, embedding_model=embedder.name, modes=["vector", "hybrid"]
        )
    finally:
        searcher.close()
    assert degraded.scores["vector"]["mrr@10"] < healthy.scores["vector"]["mrr@10"] - 0.3
    assert degraded.scores["hybrid"]["mrr@10"] < healthy.scores["hybrid"]["mrr@10"] - 0.05
    assert drift.self_eval_drop(qlog.self_eval_runs()).tripped
    qlog.close()


def _log_searches(qlog, searcher, embedder, queries, ts):
    for i, q in enumerate(queries):
        result = searcher.search(q, k=5)
        rec = from_search(
            result, relevant=True, embedding_model=embedder.name, query_vector=embedder.embed([q])[0]
        )
        rec.ts = ts + i
        qlog.record(rec)


def test_drift_signals_react_to_off_topic_questions(library, tmp_path):
    root, db, embedder = library
    qlog = QueryLog(tmp_path / "q.db")
    now = time.time()
    texts = [p.read_text() for p in sorted(root.rglob("*.txt"))]
    rng = random.Random(3)
    on_topic = [" ".join(rng.sample(t.split(), 6)) for t in texts for _ in range(1)][:30]
    off_topic = [
        f"quantum {w} chromodynamics lattice gauge {w}"
        for w in ("alpha", "beta", "gamma", "delta", "omega", "sigma", "theta", "kappa", "lambda", "zeta") * 3
    ]
    searcher = Searcher(db, embedder)
    try:
        _log_searches(qlog, searcher, embedder, on_topic, now - 20 * DAY)  # the reference weeks
        qlog.flush()
        centroid = drift.corpus_centroid(searcher.conn)
        assert centroid is not None
        calm = {s.name: s for s in drift.detect(qlog, centroid, now=now)}
        assert not calm["score_shift"].tripped and "too little data" in calm["score_shift"].why
        _log_searches(qlog, searcher, embedder, on_topic, now - 2 * DAY)  # this week, same kind of questions
        qlog.flush()
        same = {s.name: s for s in drift.detect(qlog, centroid, now=now)}
        assert not same["score_shift"].tripped and not same["query_drift"].tripped
        _log_searches(qlog, searcher, embedder, off_topic, now - 1 * DAY)
        qlog.flush()
    finally:
        searcher.close()
    # This week is now mostly about something else: half the questions' top hits got weak.
    current = qlog.rows(since=now - 7 * DAY)
    reference = qlog.rows(until=now - 7 * DAY)
    shifted = drift.score_shift(current, reference)
    assert shifted.tripped, shifted.why
    moved = drift.query_drift([q for q in current if q.question.startswith("quantum")], reference, centroid)
    assert moved.tripped, moved.why
    qlog.close()


def test_not_in_files_rise():
    def rows(n, declined):
        return [stats_row(stopped="declined" if i < declined else "stop") for i in range(n)]

    assert drift.not_in_files_rise(rows(30, 15), rows(30, 3)).tripped
    assert not drift.not_in_files_rise(rows(30, 4), rows(30, 3)).tripped
    assert not drift.not_in_files_rise(rows(5, 5), rows(30, 3)).tripped  # too little data


def stats_row(**kw):
    from almanac.core.querylog import LoggedQuery

    base = dict(
        id=1,
        ts=0.0,
        kind="ask",
        question="",
        mode="hybrid",
        stages_ms={},
        hits=[],
        n_hits=0,
        top_similarity=None,
        relevant=None,
        quick_answer=False,
        quick_tokens=0,
        prompt_tokens=0,
        answer_tokens=0,
        cited=0,
        backend="",
        cache="",
        stopped="stop",
        error_category="",
        embedding_model="",
        query_vector=None,
        feedback=None,
    )
    base.update(kw)
    return LoggedQuery(**base)


def test_ks_statistic():
    a = np.linspace(0, 1, 100)
    assert drift.ks_statistic(a, a) == 0.0
    assert drift.ks_statistic(a, a + 2) == 1.0


# -- the answer pipeline logs every question ---------------------------------------------------------------------


def test_pipeline_logs_answers_and_failures(library, tmp_path):
    from almanac.core.errors import ModelError
    from almanac.core.llm import LocalLLM
    from almanac.core.pipeline import AnswerPipeline
    from almanac.core.querylog import open_query_log
    from test_answer import ScriptedModel

    root, db, embedder = library
    word = (root / "first" / "doc00.txt").read_text().split()[3]
    settings = Settings(answer_cache=False)
    pipeline = AnswerPipeline(db, embedder, settings, model_factory=lambda s: ScriptedModel(f"It is {word} [1]."))
    try:
        answers = [pipeline.ask(f"What about {word}?"), pipeline.ask("zzzz qqqq xxxx?")]
        ids = [pipeline.last_query_id]
        assert answers[0].stopped == "stop" and answers[0].cited == [1]
    finally:
        pipeline.close()
    broken = AnswerPipeline(db, embedder, settings, model_factory=lambda s: LocalLLM(tmp_path / "absent.gguf"))
    try:
        with pytest.raises(ModelError):
            broken.ask(f"Tell me about {word}")
    finally:
        broken.close()
    qlog = open_query_log(settings)
    qlog.flush()
    rows = qlog.rows()
    assert len(rows) == 3 and rows[1].id == ids[0]
    for row, answer in zip(rows, answers, strict=False):
        assert row.kind == "ask" and row.question == answer.question
        assert row.stopped == answer.stopped and row.cited == len(answer.cited)
        assert row.relevant == (answer.stopped not in ("declined", "no context"))
        assert row.answer_tokens == answer.answer_tokens and row.stages_ms
        assert row.query_vector is not None and row.query_vector.shape == (embedder.dim,)
    declined = [r for r in rows[:2] if r.stopped in ("declined", "no context")]
    assert all(r.error_category in ("retrieval_weak", "retrieval_empty") for r in declined)
    assert rows[2].error_category == "model_error" and rows[2].question == f"Tell me about {word}"
    qlog.close()


def test_one_vocabulary_of_outcomes():
    from almanac.core import backends, outcomes

    assert set(backends.CATEGORIES) <= set(outcomes.ERROR_CATEGORIES)
    assert set(outcomes.DESCRIPTIONS) == set(outcomes.ERROR_CATEGORIES)
    for stopped in ("timeout", "connection", "declined", "no context", "cancelled"):
        assert outcomes.category_for_stop(stopped) in outcomes.ERROR_CATEGORIES
    assert outcomes.category_for_stop("stop") == ""
