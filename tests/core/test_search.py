"""Retrieval on the real SQLite + FTS5 + sqlite-vec, with the fast fake embedder."""

from __future__ import annotations

import pytest
from almanac.core.embedding import HashEmbedder
from almanac.core.errors import QueryError
from almanac.core.library import Library
from almanac.core.search import FusionConfig, Searcher, fts_query, make_snippet, rrf
from almanac.core.settings import Settings


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    hash_embedder = HashEmbedder()
    tmp_path = tmp_path_factory.mktemp("search")
    root = tmp_path / "lib"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "kettle.md").write_text("# Kettle\n\nDescale the kettle with vinegar every month.\n")
    (root / "a" / "bikes.txt").write_text("Chain lubrication keeps a bicycle drivetrain quiet.\n")
    (root / "b" / "tea.txt").write_text("Green tea brews best below boiling, at 80 degrees.\n")
    (root / "b" / "cjk.txt").write_text("東京は日本の首都です。 Tokyo is the capital.\n")
    db = tmp_path / "index.db"
    with Library(db, settings=Settings(), embedder=hash_embedder) as lib:
        lib.add_folder(root)
        lib.index()
    searcher = Searcher(db, hash_embedder)
    yield root, searcher
    searcher.close()


HOSTILE = [
    '"unbalanced quote',
    "kettle NEAR vinegar",
    "kettle AND OR NOT",
    "title:kettle",
    "kett*",
    "(((kettle",
    "kettle)",
    "^kettle",
    "col:val - + {} [] ; -- DROP TABLE chunks;",
    "東京",
    "NEAR(",
    "\"\"\"",
    "a" * 5000,
]


@pytest.mark.parametrize("query", HOSTILE)
@pytest.mark.parametrize("mode", ["hybrid", "keyword", "vector"])
def test_fts_hostile_queries_never_fail(indexed, query, mode):
    _, searcher = indexed
    result = searcher.search(query, k=5, mode=mode)
    assert isinstance(result.hits, list)


def test_hostile_queries_still_find(indexed):
    _, searcher = indexed
    for q in ["kettle NEAR vinegar", "title:kettle", "(((kettle", '"kettle']:
        hits = searcher.search(q, k=3, mode="keyword").hits
        assert hits and hits[0].path.endswith("kettle.md"), q
    assert searcher.search("東京は日本の首都です", k=3, mode="keyword").hits[0].path.endswith("cjk.txt")


def test_punctuation_only_and_empty(indexed):
    _, searcher = indexed
    assert searcher.search("?!?", k=3, mode="keyword").hits == []
    for q in ["", "   "]:
        with pytest.raises(QueryError):
            searcher.search(q, k=3)


def test_fts_query_quotes_everything():
    assert fts_query('say "hi" NEAR x') == '"say" OR "hi" OR "NEAR" OR "x"'
    assert fts_query("What is the capital of France?") == '"capital" OR "France"'
    assert fts_query("to be or not to be") == '"to" OR "be" OR "or" OR "not"'
    assert fts_query("... !!!") is None


def test_hit_explains_its_rank(indexed):
    _, searcher = indexed
    hit = searcher.search("descale kettle vinegar", k=3).hits[0]
    assert hit.path.endswith("kettle.md")
    assert hit.keyword_rank == 1 and hit.vector_rank is not None
    assert hit.keyword_score < 0 and 0 <= hit.vector_distance <= 2
    assert hit.heading == "Kettle"
    marked = {hit.snippet[s:e].lower() for s, e in hit.snippet_marks}
    assert {"descale", "kettle", "vinegar"} <= marked


def test_folder_filter(indexed):
    root, searcher = indexed
    hits = searcher.search("tea kettle bicycle", k=10, folders=[str(root / "b")]).hits
    assert hits and all("/b/" in h.path for h in hits)


def test_rrf_rewards_agreement_and_weights():
    cfg = FusionConfig(rrf_k=60, keyword_weight=1.0, vector_weight=1.0)
    fused = rrf([1, 2, 3], [3, 4, 1], cfg)
    assert [cid for cid, _ in fused][:2] == [1, 3]
    only_vec = rrf([1, 2], [2, 1], FusionConfig(keyword_weight=0.0))
    assert only_vec[0][0] == 2


class StubEmbedder:
    """Vectors chosen by hand, to build a case where each retriever alone fails."""

    name, dim, max_tokens = "stub", 8, 254

    def __init__(self, table):
        self.table = table

    def token_spans(self, text):
        import re

        return [m.span() for m in re.finditer(r"\S+", text)]

    def embed(self, texts):
        import numpy as np

        rows = []
        for t in texts:
            v = np.array(next((vec for key, vec in self.table.items() if key in t), [0, 0, 0, 1]) + [0] * 4, dtype=np.float32)
            rows.append(v / np.linalg.norm(v))
        return np.stack(rows)


def test_fusion_beats_each_retriever_alone(tmp_path):
    """The right document is 2nd in both lists, while each list's 1st is a decoy only that list likes."""
    root = tmp_path / "lib"
    root.mkdir()
    docs = {
        "answer.txt": "zebra migration routes across the plains",  # good for both
        "kw_decoy.txt": "zebra zebra migration migration routes routes trivia",  # keyword loves it
        "vec_decoy.txt": "semantic twin in embedding space",  # vector loves it
    }
    # Unrelated documents make the query's words rare, as in a real library (BM25 needs that).
    docs |= {f"noise{i}.txt": f"unrelated gardening notes number {i}" for i in range(12)}
    for name, text in docs.items():
        (root / name).write_text(text)
    table = {  # first key found in a text picks its vector
        "plains": [0.9, 0.44, 0, 0],
        "trivia": [0, 1, 0, 0],
        "gardening": [0, 0, 1, 0],
        "semantic twin": [1, 0, 0, 0],
        "zebra migration routes": [1, 0, 0, 0],  # the query itself
    }
    emb = StubEmbedder(table)
    with Library(tmp_path / "i.db", settings=Settings(), embedder=emb) as lib:
        lib.add_folder(root)
        lib.index()
    s = Searcher(tmp_path / "i.db", emb)
    q = "zebra migration routes"
    top = {m: s.search(q, k=1, mode=m).hits[0].path.rsplit("/", 1)[1] for m in ("keyword", "vector", "hybrid")}
    assert top == {"keyword": "kw_decoy.txt", "vector": "vec_decoy.txt", "hybrid": "answer.txt"}
    s.close()


def test_snippet_window_and_marks():
    text = "intro " * 100 + "the kettle needs descaling with vinegar" + " outro" * 100
    snippet, marks = make_snippet(text, {"kettle", "vinegar", "the"})
    assert "kettle" in snippet and snippet.startswith("…") and snippet.endswith("…")
    assert {snippet[s:e] for s, e in marks} == {"kettle", "vinegar"}
